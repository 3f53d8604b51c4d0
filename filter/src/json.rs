//! Strict JSON: the body parser every stage trusts, refusing input a tool server might read differently.
//!
//! serde_json keeps the last of two equal keys; a tool server may keep the first.
//! Either way a gateway and a server that disagree on `name` is a bypass, so a
//! duplicate key at any depth is refused. Go's encoding/json (and so Go MCP SDKs,
//! CVE-2026-27896), Jackson with `ACCEPT_CASE_INSENSITIVE_PROPERTIES` and .NET's web
//! defaults match keys case-insensitively, so two keys equal under [`fold`] are refused
//! too. Keys are compared after unescaping (`"n\u0061me"` is `name`). serde_json
//! already refuses trailing data, NaN-like tokens, invalid UTF-8, lone surrogate
//! escapes and nesting deeper than 128 levels. A number literal must be exactly the
//! value it is held as (see [`crate::number`]).

use std::cell::Cell;
use std::cmp::Ordering;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::reason::Reason;

/// Why a body is not acceptable JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    /// One object has this key twice.
    DuplicateKey(String),
    /// One object has two keys that differ but are equal under [`fold`], in this order.
    FoldedKey(String, String),
    Syntax(String),
    /// A number literal more precise than the value toolgate holds for it.
    Inexact(String),
}

impl JsonError {
    pub fn reason(&self) -> Reason {
        match self {
            Self::DuplicateKey(_) => Reason::DuplicateJsonKey,
            Self::FoldedKey(..) => Reason::FoldedJsonKey,
            Self::Syntax(_) => Reason::InvalidJson,
            Self::Inexact(_) => Reason::InexactNumber,
        }
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateKey(key) => write!(f, "key {key:?} appears twice in one object"),
            Self::FoldedKey(first, second) => write!(
                f,
                "keys {first:?} and {second:?} of one object are equal ignoring case, and an \
                 upstream that matches keys case-insensitively would read either: send one"
            ),
            Self::Syntax(message) | Self::Inexact(message) => f.write_str(message),
        }
    }
}

/// Parses one JSON value, refusing duplicate and case-folded duplicate object keys at any depth.
pub fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    let found = Cell::new(None);
    let floats = Cell::new(false);
    let strict = Strict {
        found: &found,
        floats: &floats,
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = strict
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    // A key error is carried beside serde's error, which only has its text.
    let value = parsed.map_err(|e| {
        found
            .take()
            .unwrap_or_else(|| JsonError::Syntax(e.to_string()))
    })?;
    // Only an f64 can differ from its literal, so only a body with one is scanned.
    if floats.get() {
        if let Some(problem) = crate::number::first_inexact(bytes) {
            return Err(JsonError::Inexact(problem));
        }
    }
    Ok(value)
}

/// A key's case fold, to compare keys as case-insensitive upstreams do. It is closed
/// under every case mapping of every character (a test checks them all), so it equates
/// what Go's simple folding (`ſ`~`s`, Kelvin `K`~`k`, `ẞ`~`ß`), .NET's ordinal
/// ignore-case and Java's `toLowerCase` equate, and a little more (`ß`~`ss`). `İ` folds
/// as in Turkic, to `i` (not `i` + U+0307): `I`, `i`, `ı` and `İ` are one letter, as a
/// Turkish-locale lowercasing has them.
pub fn fold(text: &str) -> impl Iterator<Item = char> + '_ {
    text.chars().flat_map(|c| {
        let c = if c == '\u{130}' { 'I' } else { c };
        c.to_lowercase()
            .flat_map(char::to_uppercase)
            .flat_map(char::to_lowercase)
    })
}

/// True when the two are equal under [`fold`].
pub fn fold_eq(a: &str, b: &str) -> bool {
    fold_cmp(a, b) == Ordering::Equal
}

/// An order in which keys equal under [`fold`] sort together.
fn fold_cmp(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        // The same order as `fold`'s for ASCII, without its work.
        return ascii_lower(a).cmp(ascii_lower(b));
    }
    fold(a).cmp(fold(b))
}

fn ascii_lower(text: &str) -> impl Iterator<Item = u8> + '_ {
    text.bytes().map(|b| b.to_ascii_lowercase())
}

/// The first key of `object` that is not one of `members` but folds to one, and that
/// member: an upstream matching keys case-insensitively reads it as the member, which
/// toolgate, reading keys exactly, never saw.
pub fn folded_member<'a, 'm>(
    object: &'a Map<String, Value>,
    members: impl Iterator<Item = &'m str> + Clone,
) -> Option<(&'a str, &'m str)> {
    object.keys().find_map(|key| {
        members
            .clone()
            .find(|member| key != member && fold_eq(key, member))
            .map(|member| (key.as_str(), member))
    })
}

/// What to tell of `key`, which folds to the member `member` toolgate reads.
pub fn folded_member_error(key: &str, member: &str) -> String {
    format!(
        "key {key:?} is {member:?} in another case: an upstream that matches keys \
         case-insensitively would read it as {member:?}, which toolgate reads exactly; \
         spell it {member:?}"
    )
}

/// True when the key may fold to another spelling: it has an uppercase ASCII or a non-ASCII character.
fn may_fold(key: &str) -> bool {
    key.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii())
}

/// Two keys of an object (all distinct) that are equal under [`fold`], in body order.
fn folded_pair(object: &Map<String, Value>) -> Option<(String, String)> {
    // Sorted by a hash of the fold, then the fold: equal folds end up side by side,
    // each key is folded about once, and nothing is allocated per key.
    let mut keys: Vec<(u64, usize, &str)> = (object.keys().enumerate())
        .map(|(at, key)| (fold_hash(key), at, key.as_str()))
        .collect();
    keys.sort_unstable_by(|(x, _, a), (y, _, b)| x.cmp(y).then_with(|| fold_cmp(a, b)));
    keys.windows(2).find_map(|pair| match pair {
        [(x, i, a), (y, j, b)] if x == y && fold_eq(a, b) => {
            let (first, second) = if i < j { (a, b) } else { (b, a) };
            Some(((*first).to_owned(), (*second).to_owned()))
        }
        _ => None,
    })
}

/// FNV-1a over a key's fold: equal under [`fold`], equal hash.
fn fold_hash(key: &str) -> u64 {
    let mix = |hash: u64, c: u32| (hash ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3);
    let start = 0xcbf2_9ce4_8422_2325;
    if key.is_ascii() {
        ascii_lower(key).fold(start, |hash, b| mix(hash, u32::from(b)))
    } else {
        fold(key).fold(start, |hash, c| mix(hash, u32::from(c)))
    }
}

/// The strict visitor, and where it leaves for [`parse`] a key error and whether it
/// read a number as an f64.
#[derive(Clone, Copy)]
struct Strict<'f> {
    found: &'f Cell<Option<JsonError>>,
    floats: &'f Cell<bool>,
}

impl Strict<'_> {
    fn refuse<E: de::Error>(self, error: JsonError) -> E {
        let message = error.to_string();
        self.found.set(Some(error));
        E::custom(message)
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
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
        self.floats.set(true);
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
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        // Only an object with a key that may fold pays for comparing folds.
        let mut folds = false;
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            if object.contains_key(&key) {
                return Err(self.refuse(JsonError::DuplicateKey(key)));
            }
            folds |= may_fold(&key);
            object.insert(key, value);
        }
        if folds {
            if let Some((first, second)) = folded_pair(&object) {
                return Err(self.refuse(JsonError::FoldedKey(first, second)));
            }
        }
        Ok(Value::Object(object))
    }
}
