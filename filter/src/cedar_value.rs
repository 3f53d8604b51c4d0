//! Context values as toolgate builds them: one tree that Cedar gets, the policy index reads and the record writes.
//!
//! Cedar's public API lets a context be built from restricted expressions and read back
//! only by copying values out (`Context::get`, `Context::to_json_value`). Building the
//! context from this tree instead, and keeping it, lets the condition guards read the
//! request's values and the decision record write them without those copies: the
//! guards read `context.arguments.<server>.<tool>.<name>` without converting every
//! argument, and the record leaves `arguments` out without converting it first.

use cedar_policy::{EntityUid, RestrictedExpression};
use serde_json::{Map, Value};
use smol_str::SmolStr;

/// One context value, as it is handed to Cedar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CedarValue {
    Bool(bool),
    Long(i64),
    /// Cedar's own string type: up to 23 bytes held inline, without an allocation.
    String(SmolStr),
    Set(Vec<CedarValue>),
    /// Fields in the order given; a key given twice is Cedar's error when the
    /// context is built (see [`CedarValue::to_restricted`]).
    Record(Vec<Pair>),
    Entity(EntityUid),
    /// A Cedar `decimal`, by the text its constructor is called with.
    Decimal(String),
    /// A value left unknown for partial evaluation, by name.
    Unknown(String),
}

/// A context attribute and its value.
pub type Pair = (SmolStr, CedarValue);

/// Keys Cedar's JSON form reserves for its escapes: a record holding one cannot be
/// written as JSON (Cedar's own `to_json_value` refuses it too).
const RESERVED_KEYS: [&str; 3] = ["__entity", "__extn", "__expr"];

impl CedarValue {
    pub fn string(text: &str) -> Self {
        Self::String(SmolStr::new(text))
    }

    /// A record of these fields.
    pub fn record(fields: impl IntoIterator<Item = Pair>) -> Self {
        Self::Record(fields.into_iter().collect())
    }

    /// A set of these elements.
    pub fn set(elements: impl IntoIterator<Item = CedarValue>) -> Self {
        Self::Set(elements.into_iter().collect())
    }

    /// A set of strings.
    pub fn strings<'s>(items: impl IntoIterator<Item = &'s String>) -> Self {
        Self::set(items.into_iter().map(|s| Self::string(s)))
    }

    /// A count as a Long, saturating.
    pub fn count(n: impl TryInto<i64>) -> Self {
        Self::Long(n.try_into().unwrap_or(i64::MAX))
    }

    /// The same value as a Cedar restricted expression. Errs as Cedar does on a record
    /// with a key given twice.
    pub fn to_restricted(&self) -> Result<RestrictedExpression, String> {
        Ok(match self {
            Self::Bool(b) => RestrictedExpression::new_bool(*b),
            Self::Long(n) => RestrictedExpression::new_long(*n),
            Self::String(s) => RestrictedExpression::new_string(s.to_string()),
            Self::Set(elements) => RestrictedExpression::new_set(
                elements
                    .iter()
                    .map(Self::to_restricted)
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Self::Record(fields) => RestrictedExpression::new_record(
                fields
                    .iter()
                    .map(|(key, value)| Ok((key.to_string(), value.to_restricted()?)))
                    .collect::<Result<Vec<_>, String>>()?,
            )
            .map_err(|e| e.to_string())?,
            Self::Entity(uid) => RestrictedExpression::new_entity_uid(uid.clone()),
            Self::Decimal(text) => RestrictedExpression::new_decimal(text.clone()),
            Self::Unknown(name) => RestrictedExpression::new_unknown(name.clone()),
        })
    }

    /// Cedar's JSON form of the value, as `Context::to_json_value` writes it and
    /// `Context::from_json_value` reads it back: entities as `{"__entity": {"type",
    /// "id"}}`, decimals as `{"__extn": {"fn": "decimal", "arg"}}`. `None` where Cedar's
    /// would fail: a record with a reserved key, an unknown. (Cedar writes a set's
    /// elements deduplicated and in its own order; this writes them as given, which
    /// reads back as the same set.)
    pub fn to_json(&self) -> Option<Value> {
        Some(match self {
            Self::Bool(b) => Value::Bool(*b),
            Self::Long(n) => Value::from(*n),
            Self::String(s) => Value::String(s.to_string()),
            Self::Set(elements) => Value::Array(
                elements
                    .iter()
                    .map(Self::to_json)
                    .collect::<Option<Vec<_>>>()?,
            ),
            Self::Record(fields) => Value::Object(object(fields, true)?),
            Self::Entity(uid) => escape(
                "__entity",
                [
                    ("type", Value::String(uid.type_name().to_string())),
                    ("id", Value::String(uid.id().unescaped().to_owned())),
                ],
            ),
            Self::Decimal(text) => escape(
                "__extn",
                [
                    ("fn", Value::String("decimal".to_owned())),
                    ("arg", Value::String(text.clone())),
                ],
            ),
            Self::Unknown(_) => return None,
        })
    }
}

/// The value of the attribute (or record field) `key`, if there is one.
pub fn find<'p>(pairs: &'p [Pair], key: &str) -> Option<&'p CedarValue> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// A context's attributes as Cedar's JSON form of the context (see
/// [`CedarValue::to_json`]), keys in byte order. As in Cedar's own, the top-level keys
/// are not checked for reserved names (toolgate's are fixed ones).
pub fn context_json<'p>(pairs: impl IntoIterator<Item = &'p Pair>) -> Option<Value> {
    object(pairs, false).map(Value::Object)
}

fn object<'p>(
    fields: impl IntoIterator<Item = &'p Pair>,
    check_reserved: bool,
) -> Option<Map<String, Value>> {
    let mut sorted: Vec<&Pair> = fields.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut object = Map::new();
    for (key, value) in sorted {
        if check_reserved && RESERVED_KEYS.contains(&key.as_str()) {
            return None;
        }
        object.insert(key.to_string(), value.to_json()?);
    }
    Some(object)
}

fn escape<const N: usize>(key: &str, fields: [(&str, Value); N]) -> Value {
    let inner: Map<String, Value> = fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let mut outer = Map::new();
    outer.insert(key.to_owned(), Value::Object(inner));
    Value::Object(outer)
}
