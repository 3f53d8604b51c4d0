//! Strict JSON: the body parser every stage trusts, refusing input a tool server might read differently.
//!
//! serde_json keeps the last of two equal keys; a tool server may keep the first.
//! Either way a gateway and a server that disagree on `name` is a bypass, so a
//! duplicate key at any depth is refused. serde_json already refuses trailing
//! data, NaN-like tokens, invalid UTF-8 and nesting deeper than 128 levels. A number
//! literal must be exactly the value it is held as (see [`crate::number`]).

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a body is not acceptable JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    DuplicateKey(String),
    Syntax(String),
    /// A number literal more precise than the value toolgate holds for it.
    Inexact(String),
}

/// Parses one JSON value, refusing duplicate object keys at any depth.
pub fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = deserializer
        .deserialize_any(StrictVisitor)
        .map_err(classify)?;
    deserializer.end().map_err(classify)?;
    exact(bytes, &value)?;
    Ok(value)
}

/// A separate pass over the accepted body: only an f64 can differ from its literal.
/// (A walk over the value, not a flag set in `visit_f64`: the visitor stays stateless.)
fn exact(bytes: &[u8], value: &Value) -> Result<(), JsonError> {
    if !crate::number::has_float(value) {
        return Ok(());
    }
    crate::number::first_inexact(bytes).map_or(Ok(()), |problem| Err(JsonError::Inexact(problem)))
}

const DUPLICATE: &str = "duplicate key ";

fn classify(error: serde_json::Error) -> JsonError {
    let message = error.to_string();
    match message.strip_prefix(DUPLICATE) {
        Some(rest) => {
            JsonError::DuplicateKey(rest.split(" at line").next().unwrap_or(rest).to_owned())
        }
        None => JsonError::Syntax(message),
    }
}

struct StrictVisitor;

struct Strict(Value);

impl<'de> de::Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("{DUPLICATE}{key:?}")));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}
