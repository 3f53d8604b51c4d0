//! Digests: SHA-256 of canonical JSON, so logs can match arguments without holding them.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// `sha256:<hex>` of the value's canonical JSON: object keys sorted, no whitespace.
pub fn json_sha256(value: &Value) -> String {
    // The canonical JSON goes straight into the hash, never held whole.
    let mut hasher = Hashing(Sha256::new());
    write_canonical(value, &mut hasher);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    push_hex(&hasher.0.finalize(), &mut out);
    out
}

/// The hash as an `io::Write`, for serde_json's writer (sha2 is built without `std`).
struct Hashing(Sha256);

impl std::io::Write for Hashing {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// True for `sha256:` and 64 lowercase hex digits, as [`json_sha256`] writes it.
pub fn is_sha256(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Writes JSON with object keys in byte order at every level. serde_json keeps
/// insertion order when another crate in the build enables `preserve_order`, so
/// the order is imposed here rather than assumed.
fn write_canonical(value: &Value, out: &mut impl std::io::Write) {
    // Writing into the hash cannot fail; serde_json's own errors are for non-string
    // keys and failing writers, neither possible here.
    match value {
        Value::Array(items) => {
            let _ = out.write_all(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    let _ = out.write_all(b",");
                }
                write_canonical(item, out);
            }
            let _ = out.write_all(b"]");
        }
        Value::Object(fields) => {
            let mut sorted: Vec<_> = fields.iter().collect();
            sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
            let _ = out.write_all(b"{");
            for (i, (key, field)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    let _ = out.write_all(b",");
                }
                // A key is escaped as a string value is.
                let _ = serde_json::to_writer(&mut *out, key.as_str());
                let _ = out.write_all(b":");
                write_canonical(field, out);
            }
            let _ = out.write_all(b"}");
        }
        scalar => {
            let _ = serde_json::to_writer(out, scalar);
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(bytes, &mut out);
    out
}

fn push_hex(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            out.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
}
