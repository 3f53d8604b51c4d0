//! What other JSON parsers would read from a body: the oracle of the differential fuzz target
//! (and the static gate both fuzz targets decide with).
//!
//! Upstreams are written against Python `json`, JavaScript `JSON.parse`, Go
//! `encoding/json`, Jackson and serde_json. Each reads some bodies toolgate refuses
//! (NaN, lone surrogates, UTF-16, duplicate keys); none of that matters as long as
//! toolgate refuses them. What must never happen is a body toolgate forwards while
//! one of these readers sees a different JSON-RPC call in it. So this module parses
//! as leniently as any of them (keeping every key, in order, and numbers as their
//! literal text) and reads the call the way each would.

use std::sync::OnceLock;

use toolgate::Gate;

/// A gate in a static. The fuzzer runs one input at a time; the gate is only ever
/// used from that thread.
pub struct Shared(Gate);
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

/// The gate `config` configures, built once per fuzzing process into `cell`.
pub fn configured(cell: &'static OnceLock<Shared>, config: &[u8]) -> &'static Gate {
    &cell
        .get_or_init(|| Shared(Gate::configure(config, 1).expect("fuzz configuration")))
        .0
}

/// A JSON value as the most lenient parser sees it: every key kept, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Lax {
    Null,
    Bool(bool),
    /// The literal text: `1e400`, `NaN`, `-Infinity` included.
    Number(String),
    String(String),
    Array(Vec<Lax>),
    Object(Vec<(String, Lax)>),
}

/// How a reader resolves an object's keys into the members it looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// serde_json, Python, JavaScript, Jackson: the last of equal keys wins.
    LastWins,
    /// Streaming and hand-written parsers that stop at the first match.
    FirstWins,
    /// Go's `encoding/json` into a struct: keys equal under case folding are one
    /// field, and the last of them wins.
    GoFold,
}

pub const READERS: [Keys; 3] = [Keys::LastWins, Keys::FirstWins, Keys::GoFold];

/// A JSON-RPC request as a reader sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub method: String,
    /// `params.name` or `params.uri`: what the call names.
    pub target: Option<Lax>,
    pub arguments: Option<Lax>,
}

/// Decodes the body as Python's `json.loads(bytes)` does: BOMs and the NUL pattern
/// of UTF-16/32. None when that decoding fails (the upstream would refuse it too).
pub fn decode(bytes: &[u8]) -> Option<String> {
    let utf16 = |bytes: &[u8], big: bool| {
        let units = bytes
            .chunks(2)
            .map(|c| match (c, big) {
                ([a, b], true) => Some(u16::from_be_bytes([*a, *b])),
                ([a, b], false) => Some(u16::from_le_bytes([*a, *b])),
                _ => None,
            })
            .collect::<Option<Vec<u16>>>()?;
        String::from_utf16(&units).ok()
    };
    let utf32 = |bytes: &[u8], big: bool| {
        bytes
            .chunks(4)
            .map(|c| {
                let word: [u8; 4] = c.try_into().ok()?;
                let code = if big {
                    u32::from_be_bytes(word)
                } else {
                    u32::from_le_bytes(word)
                };
                char::from_u32(code)
            })
            .collect::<Option<String>>()
    };
    let b = |i: usize| bytes.get(i).copied();
    match bytes {
        [0, 0, 0xFE, 0xFF, rest @ ..] => utf32(rest, true),
        [0xFF, 0xFE, 0, 0, rest @ ..] => utf32(rest, false),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, true),
        [0xFF, 0xFE, rest @ ..] => utf16(rest, false),
        [0xEF, 0xBB, 0xBF, rest @ ..] => String::from_utf8(rest.to_vec()).ok(),
        _ if bytes.len() >= 4 && b(0) == Some(0) => {
            if b(1) != Some(0) {
                utf16(bytes, true)
            } else {
                utf32(bytes, true)
            }
        }
        _ if bytes.len() >= 4 && b(1) == Some(0) => {
            if b(2) != Some(0) || b(3) != Some(0) {
                utf16(bytes, false)
            } else {
                utf32(bytes, false)
            }
        }
        [0, _] => utf16(bytes, true),
        [_, 0] => utf16(bytes, false),
        _ => String::from_utf8(bytes.to_vec()).ok(),
    }
}

/// Parses leniently: NaN and Infinity, lone surrogates (as U+FFFD, as Go reads
/// them), any number literal, duplicate keys kept. None when no reader would parse it.
pub fn parse(text: &str) -> Option<Lax> {
    let mut parser = Parser {
        text: text.as_bytes(),
        at: 0,
        depth: 0,
    };
    let value = parser.value()?;
    parser.skip_space();
    (parser.at == parser.text.len()).then_some(value)
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        let found = self.text[self.at..].starts_with(token.as_bytes());
        if found {
            self.at += token.len();
        }
        found
    }

    fn value(&mut self) -> Option<Lax> {
        self.skip_space();
        self.depth += 1;
        if self.depth > 256 {
            return None;
        }
        let value = match self.peek()? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => self.string().map(Lax::String),
            b't' if self.eat("true") => Some(Lax::Bool(true)),
            b'f' if self.eat("false") => Some(Lax::Bool(false)),
            b'n' if self.eat("null") => Some(Lax::Null),
            b'N' if self.eat("NaN") => Some(Lax::Number("NaN".into())),
            b'I' if self.eat("Infinity") => Some(Lax::Number("Infinity".into())),
            b'-' if self.eat("-Infinity") => Some(Lax::Number("-Infinity".into())),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        };
        self.depth -= 1;
        value
    }

    fn object(&mut self) -> Option<Lax> {
        self.at += 1;
        let mut fields = Vec::new();
        self.skip_space();
        if self.eat("}") {
            return Some(Lax::Object(fields));
        }
        loop {
            self.skip_space();
            let key = self.string()?;
            self.skip_space();
            if !self.eat(":") {
                return None;
            }
            fields.push((key, self.value()?));
            self.skip_space();
            if self.eat("}") {
                return Some(Lax::Object(fields));
            }
            if !self.eat(",") {
                return None;
            }
        }
    }

    fn array(&mut self) -> Option<Lax> {
        self.at += 1;
        let mut items = Vec::new();
        self.skip_space();
        if self.eat("]") {
            return Some(Lax::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.skip_space();
            if self.eat("]") {
                return Some(Lax::Array(items));
            }
            if !self.eat(",") {
                return None;
            }
        }
    }

    fn number(&mut self) -> Option<Lax> {
        let start = self.at;
        while matches!(self.peek(), Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) {
            self.at += 1;
        }
        let literal = std::str::from_utf8(&self.text[start..self.at]).ok()?;
        // A loose check is enough: the comparison is by exact decimal value.
        decimal(literal)?;
        Some(Lax::Number(literal.to_owned()))
    }

    fn string(&mut self) -> Option<String> {
        if !self.eat("\"") {
            return None;
        }
        let mut units: Vec<u16> = Vec::new();
        let mut out = String::new();
        let flush = |units: &mut Vec<u16>, out: &mut String| {
            out.extend(char::decode_utf16(units.drain(..)).map(|r| r.unwrap_or('\u{FFFD}')));
        };
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    flush(&mut units, &mut out);
                    return Some(out);
                }
                b'\\' => {
                    self.at += 1;
                    let escaped = self.peek()?;
                    self.at += 1;
                    let unit = match escaped {
                        b'"' => u16::from(b'"'),
                        b'\\' => u16::from(b'\\'),
                        b'/' => u16::from(b'/'),
                        b'b' => 8,
                        b'f' => 12,
                        b'n' => u16::from(b'\n'),
                        b'r' => u16::from(b'\r'),
                        b't' => u16::from(b'\t'),
                        b'u' => {
                            let hex = std::str::from_utf8(self.text.get(self.at..self.at + 4)?).ok()?;
                            self.at += 4;
                            u16::from_str_radix(hex, 16).ok()?
                        }
                        _ => return None,
                    };
                    units.push(unit);
                }
                byte if byte < 0x20 => return None,
                _ => {
                    flush(&mut units, &mut out);
                    let rest = std::str::from_utf8(&self.text[self.at..]).ok()?;
                    let c = rest.chars().next()?;
                    out.push(c);
                    self.at += c.len_utf8();
                }
            }
        }
    }
}

/// A number literal's exact value as (negative, digits without leading or
/// trailing zeros, exponent of the last digit); zero is `(false, "", 0)`.
pub fn decimal(literal: &str) -> Option<(bool, String, i64)> {
    let (negative, rest) = match literal.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, literal),
    };
    let (mantissa, exponent) = match rest.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.strip_prefix('+').unwrap_or(e).parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() || !(whole.bytes().chain(fraction.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let exponent = exponent.checked_sub(i64::try_from(fraction.len()).ok()?)?;
    let trimmed_end = digits.trim_end_matches('0');
    let exponent = exponent + i64::try_from(digits.len() - trimmed_end.len()).ok()?;
    let significant = trimmed_end.trim_start_matches('0');
    if significant.is_empty() {
        return Some((false, String::new(), 0));
    }
    Some((negative, significant.to_owned(), exponent))
}

/// Case folding as Go's `encoding/json` compares struct field names (a superset:
/// full lower-after-upper mapping, which also joins `ß` with `ẞ`, `ſ` with `s`).
pub fn fold(key: &str) -> String {
    key.chars()
        .flat_map(char::to_lowercase)
        .flat_map(char::to_uppercase)
        .flat_map(char::to_lowercase)
        .collect()
}

/// The member `name` of an object, as `keys` resolves it.
pub fn member<'a>(fields: &'a [(String, Lax)], name: &str, keys: Keys) -> Option<&'a Lax> {
    let mut matching = fields.iter().filter(|(key, _)| match keys {
        Keys::LastWins | Keys::FirstWins => key == name,
        Keys::GoFold => fold(key) == fold(name),
    });
    match keys {
        Keys::FirstWins => matching.next(),
        Keys::LastWins | Keys::GoFold => matching.last(),
    }
    .map(|(_, value)| value)
}

/// An object with its keys resolved as `keys` reads them: one entry per key
/// (per folded key for Go), holding the value that reader keeps.
pub fn resolved(value: &Lax, keys: Keys) -> Lax {
    match value {
        Lax::Array(items) => Lax::Array(items.iter().map(|item| resolved(item, keys)).collect()),
        Lax::Object(fields) => {
            let name = |key: &str| match keys {
                Keys::GoFold => fold(key),
                Keys::LastWins | Keys::FirstWins => key.to_owned(),
            };
            let mut out: Vec<(String, Lax)> = Vec::new();
            for (key, item) in fields {
                let item = resolved(item, keys);
                match out.iter_mut().find(|(k, _)| *k == name(key)) {
                    Some(slot) if keys != Keys::FirstWins => slot.1 = item,
                    Some(_) => {}
                    None => out.push((name(key), item)),
                }
            }
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Lax::Object(out)
        }
        scalar => scalar.clone(),
    }
}

/// The JSON-RPC request `keys` reads from a parsed body, if it reads one.
pub fn reading(body: &Lax, keys: Keys) -> Option<Reading> {
    let Lax::Object(envelope) = body else {
        return None;
    };
    let Lax::String(method) = member(envelope, "method", keys)? else {
        return None;
    };
    let params = match member(envelope, "params", keys) {
        Some(Lax::Object(params)) => params.as_slice(),
        _ => &[],
    };
    let target = member(params, "name", keys)
        .or_else(|| member(params, "uri", keys))
        .map(|v| resolved(v, keys));
    let arguments = member(params, "arguments", keys).map(|v| resolved(v, keys));
    Some(Reading {
        method: method.clone(),
        target,
        arguments,
    })
}

/// A serde_json value as a [`Lax`] one, with its keys resolved as `keys` reads them.
pub fn from_value(value: &serde_json::Value, keys: Keys) -> Lax {
    let lax = match value {
        serde_json::Value::Null => Lax::Null,
        serde_json::Value::Bool(b) => Lax::Bool(*b),
        serde_json::Value::Number(n) => Lax::Number(n.to_string()),
        serde_json::Value::String(s) => Lax::String(s.clone()),
        serde_json::Value::Array(items) => {
            Lax::Array(items.iter().map(|v| from_value(v, keys)).collect())
        }
        serde_json::Value::Object(fields) => Lax::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), from_value(v, keys)))
                .collect(),
        ),
    };
    resolved(&lax, keys)
}

/// Equal as every reader would compare them: numbers by exact decimal value.
pub fn same(a: &Lax, b: &Lax) -> bool {
    match (a, b) {
        (Lax::Number(x), Lax::Number(y)) => decimal(x).is_some() && decimal(x) == decimal(y),
        (Lax::Array(x), Lax::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Lax::Object(x), Lax::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((ka, a), (kb, b))| ka == kb && same(a, b))
        }
        _ => a == b,
    }
}
