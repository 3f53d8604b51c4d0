//! Declared argument types: read from the schema's `Toolgate::Arguments` once, and checked on every call.
//!
//! The Cedar request is built untyped, so a policy comparing an argument with `==`
//! would quietly see `false` for a value of another type (`["/secret"]` is not
//! `"/secret"`), and a `forbid` would not fire. A call whose declared arguments do
//! not have their declared types is refused before Cedar sees it.

use std::collections::BTreeMap;

use serde_json::Value;

/// A declared type, as far as a JSON value can be checked against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgumentType {
    String,
    Long,
    Bool,
    Set(Box<ArgumentType>),
    Record(BTreeMap<String, ArgumentType>),
    /// An entity, extension or other named type: not checked here.
    Unchecked,
}

/// The top-level fields of `Toolgate::Arguments`; empty when the schema declares none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArgumentTypes {
    fields: BTreeMap<String, ArgumentType>,
}

impl ArgumentTypes {
    /// From schema fragments in Cedar's JSON form (`SchemaFragment::to_json_value`).
    pub fn from_schema_json(fragments: &[Value]) -> Self {
        let fields = fragments
            .iter()
            .filter_map(|fragment| {
                fragment
                    .get("Toolgate")?
                    .get("commonTypes")?
                    .get("Arguments")
            })
            .filter_map(|arguments| match parse(arguments) {
                ArgumentType::Record(fields) => Some(fields),
                _ => None,
            })
            .next()
            .unwrap_or_default();
        Self { fields }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Ok when every declared argument present has its declared type; otherwise
    /// which one does not, and what it should be.
    pub fn check(&self, arguments: &Value) -> Result<(), String> {
        let Value::Object(given) = arguments else {
            return Ok(());
        };
        for (name, expected) in &self.fields {
            if let Some(value) = given.get(name) {
                conforms(value, expected)
                    .map_err(|problem| format!("argument `{name}`{problem}"))?;
            }
        }
        Ok(())
    }
}

fn parse(declared: &Value) -> ArgumentType {
    let named = |name: &str| match name.trim_start_matches("__cedar::") {
        "String" => ArgumentType::String,
        "Long" => ArgumentType::Long,
        "Bool" | "Boolean" => ArgumentType::Bool,
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

/// JSON null is left out of the Cedar context, like an absent field, so it always conforms.
fn conforms(value: &Value, expected: &ArgumentType) -> Result<(), String> {
    let ok = match (expected, value) {
        (_, Value::Null) | (ArgumentType::Unchecked, _) => true,
        (ArgumentType::String, Value::String(_)) => true,
        (ArgumentType::Long, Value::Number(n)) => n.as_i64().is_some(),
        (ArgumentType::Bool, Value::Bool(_)) => true,
        (ArgumentType::Set(element), Value::Array(items)) => {
            for (n, item) in items.iter().enumerate() {
                conforms(item, element).map_err(|problem| format!("[{n}]{problem}"))?;
            }
            true
        }
        (ArgumentType::Record(fields), Value::Object(given)) => {
            for (name, field) in fields {
                if let Some(item) = given.get(name) {
                    conforms(item, field).map_err(|problem| format!(".{name}{problem}"))?;
                }
            }
            true
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            " must be {}, not {}",
            describe(expected),
            json_kind(value)
        ))
    }
}

fn describe(expected: &ArgumentType) -> String {
    match expected {
        ArgumentType::String => "a string".into(),
        ArgumentType::Long => "an integer (64-bit)".into(),
        ArgumentType::Bool => "a boolean".into(),
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
