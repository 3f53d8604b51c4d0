//! Exact numbers: every number literal in a body must be exactly the value toolgate holds for it.
//!
//! serde_json holds an integer beyond 64 bits, and a literal with more digits than an
//! f64 carries, as the nearest f64: `10000000000000000000001` and `1e22` become one
//! number with one digest, while a Python, Go `json.Number` or Jackson `BigDecimal`
//! upstream reads two, and an approval for one would pass the other. So a literal is
//! accepted only when its decimal value equals the value of what serde_json holds,
//! written as serde_json writes it (integers as digits, other numbers in shortest
//! round-trip form). A value then has one canonical text, and the digest is exact.
//!
//! Integers within 64 bits are exact, so json.rs scans only a body in which serde_json
//! read a number as an f64. The comparison is decimal (digits and an exponent), never
//! through a float.

use serde_json::Number;

/// The first number literal of `json` (a body serde_json accepted) whose value is not
/// the value toolgate holds for it: what it is, and what toolgate would have held.
pub fn first_inexact(json: &[u8]) -> Option<String> {
    let mut at = 0;
    while let Some(&byte) = json.get(at) {
        match byte {
            b'"' => at = string_end(json, at + 1),
            b'-' | b'0'..=b'9' => {
                let start = at;
                while matches!(
                    json.get(at),
                    Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                ) {
                    at += 1;
                }
                let literal = json.get(start..at).unwrap_or_default();
                if let Err(held) = exact(literal) {
                    let literal = String::from_utf8_lossy(literal);
                    return Some(format!(
                        "the number {} is not exact: toolgate holds it as {held} (a 64-bit float); \
                         send at most the digits a 64-bit float carries, an integer within 64 bits, or the number as a string",
                        shorten(&literal)
                    ));
                }
            }
            _ => at += 1,
        }
    }
    None
}

/// The index after the closing quote of the string whose content starts at `at`.
fn string_end(json: &[u8], mut at: usize) -> usize {
    while let Some(&byte) = json.get(at) {
        match byte {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    at
}

/// Ok when `literal` is exactly the number serde_json holds for it; otherwise that
/// number's text.
fn exact(literal: &[u8]) -> Result<(), String> {
    // Up to 18 digits without a fraction or exponent always fits an i64.
    if literal.len() <= 18 && literal.iter().all(|b| b.is_ascii_digit() || *b == b'-') {
        return Ok(());
    }
    // serde_json reads one number the same alone as inside a document.
    let held = match serde_json::from_slice::<Number>(literal) {
        Ok(held) => held.to_string(),
        Err(_) => return Err("no number (it does not parse alone)".into()),
    };
    match (Decimal::parse(literal), Decimal::parse(held.as_bytes())) {
        (Some(sent), Some(kept)) if sent == kept => Ok(()),
        _ => Err(held),
    }
}

/// A number as `digits × 10^exponent`, without leading or trailing zero digits, so two
/// texts of one value are equal. Zero has no digits and is equal whatever its sign.
#[derive(Debug)]
struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exponent: i128,
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        self.digits == other.digits
            && (self.digits.is_empty()
                || (self.negative == other.negative && self.exponent == other.exponent))
    }
}

impl Decimal {
    /// A JSON number (`-12.50e+3`); none for anything else.
    fn parse(text: &[u8]) -> Option<Self> {
        let (negative, text) = match text.strip_prefix(b"-") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match text.iter().position(|b| matches!(b, b'e' | b'E')) {
            Some(e) => (text.get(..e)?, Some(text.get(e + 1..)?)),
            None => (text, None),
        };
        let (whole, fraction) = match mantissa.iter().position(|b| *b == b'.') {
            Some(dot) => (mantissa.get(..dot)?, mantissa.get(dot + 1..)?),
            None => (mantissa, &[][..]),
        };
        if whole.is_empty() || !whole.iter().chain(fraction).all(u8::is_ascii_digit) {
            return None;
        }
        let mut exponent = match exponent {
            Some(text) => parse_exponent(text)?,
            None => 0,
        };
        // i128 cannot overflow: the exponent saturates at i64 and a body is far
        // shorter than 2^64 digits.
        exponent -= i128::try_from(fraction.len()).ok()?;
        let mut digits: Vec<u8> = whole
            .iter()
            .chain(fraction)
            .copied()
            .skip_while(|d| *d == b'0')
            .collect();
        while digits.last() == Some(&b'0') {
            digits.pop();
            exponent += 1;
        }
        Some(Self {
            negative,
            digits,
            exponent,
        })
    }
}

/// An exponent's `[+-]digits`, saturating at the range of an i64: far beyond any f64,
/// so a saturated one can only ever differ from what serde_json holds.
fn parse_exponent(text: &[u8]) -> Option<i128> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude = digits.iter().fold(0_i64, |n, d| {
        n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
    });
    let magnitude = i128::from(magnitude);
    Some(if negative { -magnitude } else { magnitude })
}

/// A literal in a message: at most 40 characters.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!(
            "{}... ({} characters)",
            text.get(..cut).unwrap_or_default(),
            text.len()
        ),
        None => text.to_owned(),
    }
}
