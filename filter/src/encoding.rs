//! Body encodings an upstream detects on its own: a byte order mark, or UTF-16/32 that reads as JSON, is refused on every path.
//!
//! Python's `json.loads(bytes)` and Jackson pick the encoding from the first bytes: a
//! byte order mark, or where the NULs are. Sent as `text/plain` to a path that is not an
//! MCP endpoint, a JSON-RPC call in UTF-16 would be a REST call to toolgate, while such
//! an upstream reads the call toolgate never evaluated. So a body with a BOM is refused,
//! and so is one whose NULs say UTF-16 or UTF-32 (Python's rule) and which, read so,
//! starts with `{` or `[`. Other such bytes (a gRPC frame, a binary upload) are no JSON
//! to any of them and go on. A UTF-8 body is left to the protocol stage, which reads
//! any that starts with `{` or `[` as strict JSON.

use crate::reason::Reason;

/// UTF-32 (BE, LE), UTF-16 (BE, LE) and UTF-8: toolgate reads no BOM; Python and
/// Jackson skip it and read the rest (Python a UTF-8 one too, when given bytes).
const BOMS: [&[u8]; 5] = [
    b"\x00\x00\xFE\xFF",
    b"\xFF\xFE\x00\x00",
    b"\xFE\xFF",
    b"\xFF\xFE",
    b"\xEF\xBB\xBF",
];

/// A UTF-16 or UTF-32 encoding: the code unit's width in bytes, and its byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wide {
    pub width: usize,
    pub big_endian: bool,
}

/// Ok unless an upstream could detect an encoding other than UTF-8 in the body and
/// read JSON from it; then `unsupported_charset`.
pub fn check(body: &[u8]) -> Result<(), Reason> {
    if BOMS.iter().any(|bom| body.starts_with(bom)) {
        return Err(Reason::UnsupportedCharset);
    }
    match detect(body) {
        Some(wide) if starts_json(body, wide) => Err(Reason::UnsupportedCharset),
        _ => Ok(()),
    }
}

/// The encoding Python's `json.detect_encoding` picks from the NULs among the first
/// bytes of a body without a BOM; `None` for UTF-8.
pub fn detect(body: &[u8]) -> Option<Wide> {
    let wide = |width, big_endian| Some(Wide { width, big_endian });
    match body {
        // 00 XX -- -- UTF-16BE, 00 00 -- -- UTF-32BE
        [0, second, _, _, ..] => wide(if *second == 0 { 4 } else { 2 }, true),
        // XX 00 XX -- or XX 00 -- XX UTF-16LE, XX 00 00 00 UTF-32LE
        [_, 0, third, fourth, ..] => wide(if *third == 0 && *fourth == 0 { 4 } else { 2 }, false),
        [0, _] => wide(2, true),
        [_, 0] => wide(2, false),
        _ => None,
    }
}

/// True when the body, read as `wide`, starts with `{` or `[` after JSON whitespace.
fn starts_json(body: &[u8], wide: Wide) -> bool {
    let unit = |bytes: &[u8]| {
        let big = |n: u32, b: &u8| n << 8 | u32::from(*b);
        match wide.big_endian {
            true => bytes.iter().fold(0, big),
            false => bytes.iter().rev().fold(0, big),
        }
    };
    body.chunks_exact(wide.width)
        .map(unit)
        .find(|&u| !matches!(u, 0x20 | 0x09 | 0x0A | 0x0D))
        .is_some_and(|u| u == u32::from(b'{') || u == u32::from(b'['))
}
