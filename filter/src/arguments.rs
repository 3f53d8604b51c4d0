//! Declared argument types, per server and tool: read from the schema's `Toolgate::Arguments` once, checked on every call.
//!
//! `Arguments` is a record of servers, each a record of tools, each a record of that
//! tool's arguments: a call of tool `t` on server `s` reaches policies as
//! `context.arguments.s.t`, typed by that tool's own declaration, so two servers'
//! tools may declare one argument name with different types.
//!
//! The Cedar request is built without the schema, so a policy comparing an argument
//! with `==` would quietly see `false` for a value of another type (`["/secret"]` is
//! not `"/secret"`), and a `forbid` would not fire. A call whose declared arguments do
//! not have their declared types is refused before Cedar sees it.
//!
//! JSON Schema `number` maps to Cedar `decimal` (four decimal places, the range of a
//! 64-bit integer divided by 10^4): a value declared so becomes `decimal("...")`, and
//! one that does not fit is refused, never passed on untyped.
//!
//! `Toolgate::Path` (the model's `type Path = String`) marks a string argument as a
//! path: one that could resolve outside the prefix it reads as (`/docs/../etc`) is
//! refused, so `like "/docs/*"` on it means what it says. Cedar's JSON form of a schema
//! keeps a common type's name where an attribute uses it, so the mark survives into
//! [`ArgumentTypes::from_schema_json`].

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

use crate::call::{Call, ResourceKind};
use crate::cedar_value::CedarValue;
use crate::json;
use crate::reason::Reason;
use crate::refusal::Refusal;

/// A declared type, as far as a JSON value can be checked against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgumentType {
    String,
    /// `Toolgate::Path`: a string without `.`, `..` or empty segments (see [`path_problem`]).
    Path,
    Long,
    Bool,
    /// Cedar `decimal`: a JSON number with at most four decimal places.
    Decimal,
    Set(Box<ArgumentType>),
    Record(BTreeMap<String, ArgumentType>),
    /// An entity, extension or other named type: not checked here.
    Unchecked,
}

/// Each tool's declared top-level arguments, by tool id (`<server>/<tool>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArgumentTypes {
    tools: BTreeMap<String, BTreeMap<String, ArgumentType>>,
    /// The arguments a tool mirrors into `Mcp-Param-{Name}` headers, by tool id.
    headers: BTreeMap<String, Vec<HeaderArgument>>,
}

/// An argument whose schema carries `x-mcp-header` (MCP 2026-07-28): the client sends
/// its value in a header too, and toolgate checks the two agree. The catalog declares
/// it with `@mcp_header("Name")` on the argument (what `toolgate schema-from-mcp` writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderArgument {
    /// The header, lower-case: `mcp-param-{name}`.
    pub header: String,
    /// The argument's path from the arguments object, through `properties` only.
    pub path: Vec<String>,
}

/// The Cedar schema annotation that declares an argument's mirrored header.
pub const MCP_HEADER_ANNOTATION: &str = "mcp_header";

impl ArgumentTypes {
    /// From schema fragments in Cedar's JSON form (`SchemaFragment::to_json_value`).
    pub fn from_schema_json(fragments: &[Value]) -> Self {
        let record = |ty: ArgumentType| match ty {
            ArgumentType::Record(fields) => Some(fields),
            _ => None,
        };
        let mut tools = BTreeMap::new();
        let mut headers = BTreeMap::new();
        let servers = fragments
            .iter()
            .filter_map(|fragment| {
                fragment
                    .get("Toolgate")?
                    .get("commonTypes")?
                    .get("Arguments")
            })
            .find_map(|arguments| Some((record(parse(arguments))?, arguments)));
        let Some((servers, declaration)) = servers else {
            return Self::default();
        };
        for (server, declared) in servers {
            for (tool, declared) in record(declared).unwrap_or_default() {
                let id = format!("{server}/{tool}");
                let mirrored = [server.as_str(), tool.as_str()]
                    .iter()
                    .try_fold(declaration, |d, name| d.get("attributes")?.get(*name))
                    .map(|d| mirrored_headers(d, &mut Vec::new()))
                    .unwrap_or_default();
                if !mirrored.is_empty() {
                    headers.insert(id.clone(), mirrored);
                }
                if let Some(fields) = record(declared) {
                    tools.insert(id, fields);
                }
            }
        }
        Self { tools, headers }
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// The arguments a tool call mirrors into `Mcp-Param-*` headers.
    pub fn headers_of(&self, call: &Call) -> &[HeaderArgument] {
        match call.resource_kind {
            ResourceKind::Tool => self
                .headers
                .get(&call.resource_id)
                .map_or(&[], Vec::as_slice),
            _ => &[],
        }
    }

    /// The declared arguments of a tool call; none for other calls and undeclared tools.
    pub fn of(&self, call: &Call) -> Option<&BTreeMap<String, ArgumentType>> {
        match call.resource_kind {
            ResourceKind::Tool => self.tools.get(&call.resource_id),
            _ => None,
        }
    }

    /// Ok when every argument `call` declares has its declared type, and no argument
    /// is a declared one in another case; otherwise the refusal, saying which and why.
    pub fn check(&self, call: &Call, arguments: &Value) -> Result<(), Refusal> {
        let (Some(fields), Value::Object(given)) = (self.of(call), arguments) else {
            return Ok(());
        };
        if let Some(problem) = folded_name(given, fields) {
            return Err(problem.refusal("arguments"));
        }
        for (name, expected) in fields {
            if let Some(value) = given.get(name) {
                conforms(value, expected)
                    .map_err(|problem| problem.refusal(&format!("argument `{name}`")))?;
            }
        }
        Ok(())
    }
}

/// Why a call's arguments are refused, below the argument it is in.
enum Problem {
    /// Not the declared type: where (`.a[0]`), and what it must be.
    Type(String),
    /// A key folds to a declared name it is not: where (`.a[0]`), the key, the name.
    Folded(String, String, String),
    /// A declared path that could walk out of its prefix: where, and how.
    Path(String),
}

impl Problem {
    /// The same problem one level further out, at `step` (`.name` or `[n]`).
    fn at(self, step: &str) -> Self {
        match self {
            Self::Type(problem) => Self::Type(format!("{step}{problem}")),
            Self::Folded(at, key, name) => Self::Folded(format!("{step}{at}"), key, name),
            Self::Path(problem) => Self::Path(format!("{step}{problem}")),
        }
    }

    /// The refusal, the problem's place told from `argument` on.
    fn refusal(self, argument: &str) -> Refusal {
        match self {
            Self::Type(problem) => {
                Refusal::because(Reason::InvalidArguments, format!("{argument}{problem}"))
            }
            Self::Folded(at, key, name) => Refusal::because(
                Reason::FoldedMember,
                format!("{argument}{at}: {}", json::folded_member_error(&key, &name)),
            ),
            Self::Path(problem) => {
                Refusal::because(Reason::UnsafePath, format!("{argument}{problem}"))
            }
        }
    }
}

/// A key of `given` that folds to a declared name it is not. Other undeclared keys
/// are not checked, as no policy can read them (policies are validated against the
/// schema); but an upstream matching keys ignoring case would read this one as the
/// declared argument, which toolgate, matching exactly, never saw.
fn folded_name(
    given: &Map<String, Value>,
    fields: &BTreeMap<String, ArgumentType>,
) -> Option<Problem> {
    json::folded_member(given, fields.keys().map(String::as_str))
        .map(|(key, name)| Problem::Folded(String::new(), key.to_owned(), name.to_owned()))
}

/// Converts a JSON argument value to a Cedar value, as `declared` (if known) types it:
/// numbers declared `decimal` become decimals, other integers Longs; any other number
/// becomes a String of its canonical text (`1e+22` for `10000000000000000000000`,
/// `12.5` for `12.50`: the digest's form, exact since `number.rs`), so a policy
/// comparing it as a Long errors (and fails closed) rather than silently missing it. JSON null has no Cedar counterpart and is
/// left out. Errors when a value does not fit its declared type ([`ArgumentTypes::check`]
/// refuses those first).
pub fn to_cedar(
    value: &Value,
    declared: Option<&ArgumentType>,
) -> Result<Option<CedarValue>, String> {
    Ok(Some(match (value, declared) {
        (Value::Null, _) => return Ok(None),
        (Value::Bool(b), _) => CedarValue::Bool(*b),
        (Value::Number(n), Some(ArgumentType::Decimal)) => CedarValue::Decimal(
            decimal_text(n).ok_or_else(|| format!("{n} does not fit a Cedar decimal"))?,
        ),
        (Value::Number(n), _) => match n.as_i64() {
            Some(i) => CedarValue::Long(i),
            None => CedarValue::String(n.to_string().into()),
        },
        (Value::String(s), _) => CedarValue::string(s),
        (Value::Array(items), declared) => {
            let element = match declared {
                Some(ArgumentType::Set(element)) => Some(element.as_ref()),
                _ => None,
            };
            let mut elements = Vec::with_capacity(items.len());
            for item in items {
                elements.extend(to_cedar(item, element)?);
            }
            CedarValue::Set(elements)
        }
        (Value::Object(fields), declared) => {
            let declared = match declared {
                Some(ArgumentType::Record(fields)) => Some(fields),
                _ => None,
            };
            record_to_cedar(fields, declared)?
        }
    }))
}

/// A JSON object's fields, typed by `declared` (if known); nulls left out.
fn record_to_cedar(
    fields: &Map<String, Value>,
    declared: Option<&BTreeMap<String, ArgumentType>>,
) -> Result<CedarValue, String> {
    let mut converted = Vec::with_capacity(fields.len());
    for (key, item) in fields {
        if let Some(v) = to_cedar(item, declared.and_then(|d| d.get(key)))? {
            converted.push((key.as_str().into(), v));
        }
    }
    Ok(CedarValue::Record(converted))
}

/// The arguments of one call (a JSON object), typed by its tool's declaration.
pub fn call_to_cedar(
    arguments: &Value,
    declared: Option<&BTreeMap<String, ArgumentType>>,
) -> Result<Option<CedarValue>, String> {
    let Value::Object(fields) = arguments else {
        return to_cedar(arguments, None);
    };
    record_to_cedar(fields, declared).map(Some)
}

/// A JSON number as a Cedar decimal literal (`-12.5` -> `"-12.5000"`); none when it
/// has more than four decimal places or is out of range.
pub fn decimal_text(n: &Number) -> Option<String> {
    // Cedar stores a decimal as an i64 count of 10^-4.
    let scaled: i128 = match n.as_i64() {
        Some(i) => i128::from(i).checked_mul(10_000)?,
        None => scaled_from_text(&n.to_string())?,
    };
    let scaled = i64::try_from(scaled).ok()?;
    let sign = if scaled < 0 { "-" } else { "" };
    let magnitude = scaled.unsigned_abs();
    Some(format!(
        "{sign}{}.{:04}",
        magnitude / 10_000,
        magnitude % 10_000
    ))
}

/// `-1.25e2` -> -1_250_000 (ten-thousandths); none when finer than 10^-4 or too large.
fn scaled_from_text(text: &str) -> Option<i128> {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: String = format!("{whole}{fraction}");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // The value is digits * 10^(exponent - fraction digits); make that 10^-4.
    let mut shift = exponent.checked_sub(i32::try_from(fraction.len()).ok()?)? + 4;
    while shift < 0 {
        digits = digits.strip_suffix('0')?.to_owned();
        shift += 1;
    }
    let digits = digits.trim_start_matches('0');
    if digits.len() + usize::try_from(shift).ok()? > 30 {
        return None;
    }
    let value = if digits.is_empty() {
        0
    } else {
        digits.parse::<i128>().ok()?
    };
    let value = value.checked_mul(10_i128.checked_pow(u32::try_from(shift).ok()?)?)?;
    Some(if negative { -value } else { value })
}

fn parse(declared: &Value) -> ArgumentType {
    let named = |name: &str| match name.trim_start_matches("__cedar::") {
        "String" => ArgumentType::String,
        "Path" | "Toolgate::Path" => ArgumentType::Path,
        "Long" => ArgumentType::Long,
        "Bool" | "Boolean" => ArgumentType::Bool,
        "decimal" => ArgumentType::Decimal,
        _ => ArgumentType::Unchecked,
    };
    match declared.get("type").and_then(Value::as_str) {
        Some("Set") => declared
            .get("element")
            .map_or(ArgumentType::Unchecked, |element| {
                ArgumentType::Set(Box::new(parse(element)))
            }),
        Some("Record") => ArgumentType::Record(
            declared
                .get("attributes")
                .and_then(Value::as_object)
                .map(|attributes| {
                    attributes
                        .iter()
                        .map(|(name, attribute)| (name.clone(), parse(attribute)))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        Some("EntityOrCommon") => declared
            .get("name")
            .and_then(Value::as_str)
            .map_or(ArgumentType::Unchecked, named),
        Some(other) => named(other),
        None => ArgumentType::Unchecked,
    }
}

/// The `@mcp_header` arguments under a record declaration, `path` the way there.
/// Only `properties` lead to one (MCP's rule), so only records are walked.
fn mirrored_headers(declared: &Value, path: &mut Vec<String>) -> Vec<HeaderArgument> {
    let mut found = Vec::new();
    let attributes = declared.get("attributes").and_then(Value::as_object);
    for (name, attribute) in attributes.into_iter().flatten() {
        path.push(name.clone());
        let annotation = attribute
            .pointer(&format!("/annotations/{MCP_HEADER_ANNOTATION}"))
            .and_then(Value::as_str);
        if let Some(header) = annotation {
            found.push(HeaderArgument {
                header: format!("mcp-param-{}", header.to_ascii_lowercase()),
                path: path.clone(),
            });
        }
        found.extend(mirrored_headers(attribute, path));
        path.pop();
    }
    found
}

/// JSON null is left out of the Cedar context, like an absent field, so it always conforms.
fn conforms(value: &Value, expected: &ArgumentType) -> Result<(), Problem> {
    let ok = match (expected, value) {
        (_, Value::Null) | (ArgumentType::Unchecked, _) => true,
        (ArgumentType::String, Value::String(_)) => true,
        (ArgumentType::Path, Value::String(path)) => match path_problem(path) {
            None => true,
            Some(problem) => {
                return Err(Problem::Path(format!(" is not a safe path: it {problem}")))
            }
        },
        (ArgumentType::Long, Value::Number(n)) => n.as_i64().is_some(),
        (ArgumentType::Bool, Value::Bool(_)) => true,
        (ArgumentType::Decimal, Value::Number(n)) => decimal_text(n).is_some(),
        (ArgumentType::Set(element), Value::Array(items)) => {
            for (n, item) in items.iter().enumerate() {
                conforms(item, element).map_err(|problem| problem.at(&format!("[{n}]")))?;
            }
            true
        }
        (ArgumentType::Record(fields), Value::Object(given)) => {
            if let Some(problem) = folded_name(given, fields) {
                return Err(problem);
            }
            for (name, field) in fields {
                if let Some(item) = given.get(name) {
                    conforms(item, field).map_err(|problem| problem.at(&format!(".{name}")))?;
                }
            }
            true
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        // A number that does not fit a decimal is shown: its kind would not say why.
        let given = match (expected, value) {
            (ArgumentType::Decimal, Value::Number(n)) => n.to_string(),
            (_, other) => json_kind(other).to_owned(),
        };
        Err(Problem::Type(format!(
            " must be {}, not {given}",
            describe(expected)
        )))
    }
}

/// Characters that Unicode compatibility normalization (NFKC) or a Windows best-fit
/// code page turns into `.`, `/` or `\` on a server that applies one.
const SEPARATOR_LOOKALIKES: &[char] = &[
    '\u{FF0E}', '\u{FF0F}', '\u{FF3C}', '\u{2024}', '\u{2025}', '\u{FE52}', '\u{FE68}', '\u{2215}',
];

/// Why `path` could name something outside the prefix it reads as, if it could: a
/// server resolves `/docs/../etc` to `/etc`, `/docs//x` may be `/x`, `\` is a
/// separator on Windows, and a server that percent-decodes sees `%2e%2e` as `..`.
/// A leading `/` and a trailing `/` are fine.
pub fn path_problem(path: &str) -> Option<String> {
    if let Some(c) = path.chars().find(|c| c.is_control()) {
        return Some(format!("has a control character (U+{:04X})", u32::from(c)));
    }
    if path.contains('\\') {
        return Some("has a backslash, a separator on Windows".into());
    }
    if let Some(c) = path.chars().find(|c| SEPARATOR_LOOKALIKES.contains(c)) {
        return Some(format!(
            "has U+{:04X}, which a server may normalize to `.`, `/` or `\\`",
            u32::from(c)
        ));
    }
    for (at, _) in path.match_indices('%') {
        let decoded = path
            .get(at + 1..at + 3)
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        // 0xC0 and 0xC1 start only overlong encodings (`%c0%ae` is `.` to a lax decoder).
        if let Some(byte @ (b'.' | b'/' | b'\\' | b'%' | 0xC0 | 0xC1)) = decoded {
            let shown = path.get(at..at + 3).unwrap_or_default();
            return Some(match byte {
                0xC0 | 0xC1 => format!("has `{shown}`, which starts an overlong encoding"),
                _ => format!("has `{shown}`, a percent-encoded `{}`", char::from(byte)),
            });
        }
    }
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (n, segment) in segments.iter().enumerate() {
        match *segment {
            "." | ".." => return Some(format!("has a `{segment}` segment")),
            "" if n != 0 && n != last => return Some("has an empty segment (`//`)".into()),
            _ => {}
        }
    }
    None
}

fn describe(expected: &ArgumentType) -> String {
    match expected {
        ArgumentType::String => "a string".into(),
        ArgumentType::Path => "a string (a path)".into(),
        ArgumentType::Long => "an integer (64-bit)".into(),
        ArgumentType::Bool => "a boolean".into(),
        ArgumentType::Decimal => "a number with at most 4 decimal places, between -922337203685477.5808 and 922337203685477.5807 (a Cedar decimal)".into(),
        ArgumentType::Set(element) => format!(
            "an array of {}",
            describe(element)
                .trim_start_matches("a ")
                .trim_start_matches("an ")
        ),
        ArgumentType::Record(_) => "an object".into(),
        ArgumentType::Unchecked => "anything".into(),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() => "an integer",
        Value::Number(n) if n.is_u64() => "an integer out of range",
        Value::Number(_) => "a non-integer number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
