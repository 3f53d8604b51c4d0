//! Digests: SHA-256 of canonical JSON, so logs can match arguments without holding them.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// `sha256:<hex>` of the value's canonical JSON: object keys sorted, no whitespace.
pub fn json_sha256(value: &Value) -> String {
    // serde_json's map is ordered by key (no preserve_order), so this is canonical.
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}
