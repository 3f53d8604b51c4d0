//! Detectors: where credentials (built-in matchers) and configured patterns occur in a result's bytes.
//!
//! The built-ins are small hand-written matchers over bytes, not regular expressions:
//! one pass each, no allocation but the matches, and they work on text that is not
//! UTF-8. Each says where the secret itself is, so a redaction keeps its context
//! (`Authorization: Bearer [redacted:bearer_token]`, `postgres://app:[redacted:...]@db`).

use std::ops::Range;

use serde::Deserialize;

/// A built-in credential matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Builtin {
    /// An AWS access key id: `AKIA`, `ASIA`, `ABIA` or `ACCA` and 16 upper-case letters or digits.
    AwsAccessKey,
    /// A PEM private key block, `-----BEGIN ... PRIVATE KEY-----` to its `END` line
    /// (to the end of the text when the block is cut short).
    PrivateKey,
    /// A JSON Web Token: `eyJ...` header, `ey...` payload, signature (possibly empty).
    Jwt,
    /// The token after `Bearer ` (any case): at least 16 token characters, not all letters.
    BearerToken,
    /// The password of a URL with credentials: `scheme://user:password@host`.
    ConnectionString,
}

impl Builtin {
    pub const ALL: &'static [Builtin] = &[
        Self::AwsAccessKey,
        Self::PrivateKey,
        Self::Jwt,
        Self::BearerToken,
        Self::ConnectionString,
    ];

    /// The id the configuration and the decision log use.
    pub fn id(self) -> &'static str {
        match self {
            Self::AwsAccessKey => "aws_access_key",
            Self::PrivateKey => "private_key",
            Self::Jwt => "jwt",
            Self::BearerToken => "bearer_token",
            Self::ConnectionString => "connection_string",
        }
    }

    /// Appends where the secrets are in `text`, in order.
    pub fn find(self, text: &[u8], found: &mut Vec<Range<usize>>) {
        match self {
            Self::AwsAccessKey => aws_access_keys(text, found),
            Self::PrivateKey => private_keys(text, found),
            Self::Jwt => jwts(text, found),
            Self::BearerToken => bearer_tokens(text, found),
            Self::ConnectionString => connection_passwords(text, found),
        }
    }
}

/// The byte at `at`, or 0 (which no matcher accepts) outside the text.
fn byte(text: &[u8], at: usize) -> u8 {
    text.get(at).copied().unwrap_or(0)
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Where `needle` next occurs in `text` at or after `from` (memchr's vectorized search).
pub fn find_from(text: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let rest = text.get(from..)?;
    memchr::memmem::find(rest, needle).map(|at| from + at)
}

/// The length of the run of bytes from `at` that satisfy `ok`.
fn run(text: &[u8], at: usize, ok: impl Fn(u8) -> bool) -> usize {
    text.get(at..)
        .map_or(0, |rest| rest.iter().take_while(|&&b| ok(b)).count())
}

const AWS_PREFIXES: &[&[u8]] = &[b"AKIA", b"ASIA", b"ABIA", b"ACCA"];

fn aws_access_keys(text: &[u8], found: &mut Vec<Range<usize>>) {
    let mut at = 0;
    while let Some(start) = find_from(text, b"A", at) {
        at = start + 1;
        let prefixed = AWS_PREFIXES
            .iter()
            .any(|p| text.get(start..start + 4) == Some(*p));
        if !prefixed || (start > 0 && is_alnum(byte(text, start - 1))) {
            continue;
        }
        let body = run(text, start + 4, |b| {
            b.is_ascii_uppercase() || b.is_ascii_digit()
        });
        // Exactly 16: a longer run is some other identifier.
        if body == 16 && !is_alnum(byte(text, start + 20)) {
            found.push(start..start + 20);
            at = start + 20;
        }
    }
}

const PEM_BEGIN: &[u8] = b"-----BEGIN ";
const PEM_DASHES: &[u8] = b"-----";

fn private_keys(text: &[u8], found: &mut Vec<Range<usize>>) {
    let mut at = 0;
    while let Some(start) = find_from(text, PEM_BEGIN, at) {
        let label_at = start + PEM_BEGIN.len();
        let label_len = run(text, label_at, |b| {
            b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' '
        });
        let label = text.get(label_at..label_at + label_len).unwrap_or_default();
        let closed = text.get(label_at + label_len..label_at + label_len + 5) == Some(PEM_DASHES);
        if !closed || find_from(label, b"PRIVATE KEY", 0).is_none() {
            at = label_at;
            continue;
        }
        let mut end_line = b"-----END ".to_vec();
        end_line.extend_from_slice(label);
        end_line.extend_from_slice(PEM_DASHES);
        // A block cut short (or without its END line) is a key all the same, to the end.
        let end =
            find_from(text, &end_line, label_at).map_or(text.len(), |end| end + end_line.len());
        found.push(start..end);
        at = end;
    }
}

fn jwts(text: &[u8], found: &mut Vec<Range<usize>>) {
    let mut at = 0;
    while let Some(start) = find_from(text, b"eyJ", at) {
        at = start + 1;
        if start > 0 && (is_base64url(byte(text, start - 1)) || byte(text, start - 1) == b'.') {
            continue;
        }
        let header = run(text, start, is_base64url);
        let payload_at = start + header + 1;
        if header < 10 || byte(text, start + header) != b'.' {
            continue;
        }
        let payload = run(text, payload_at, is_base64url);
        if payload < 10 || text.get(payload_at..payload_at + 2) != Some(b"ey") {
            continue;
        }
        let signature_at = payload_at + payload + 1;
        if byte(text, payload_at + payload) != b'.' {
            continue;
        }
        let end = signature_at + run(text, signature_at, is_base64url);
        found.push(start..end);
        at = end;
    }
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)
}

fn bearer_tokens(text: &[u8], found: &mut Vec<Range<usize>>) {
    let mut at = 0;
    while let Some(offset) = text
        .get(at..)
        .and_then(|rest| memchr::memchr2(b'b', b'B', rest))
    {
        let start = at + offset;
        at = start + 1;
        let word = text.get(start..start + 6).unwrap_or_default();
        if !word.eq_ignore_ascii_case(b"bearer") || (start > 0 && is_alnum(byte(text, start - 1))) {
            continue;
        }
        let gap = run(text, start + 6, |b| b == b' ' || b == b'\t');
        let token_at = start + 6 + gap;
        let token = run(text, token_at, is_token);
        let body = text.get(token_at..token_at + token).unwrap_or_default();
        // Prose says "bearer of"; a token is long and not only letters.
        if gap == 0 || token < 16 || body.iter().all(u8::is_ascii_alphabetic) {
            continue;
        }
        found.push(token_at..token_at + token);
        at = token_at + token;
    }
}

/// Ends a URL's authority (RFC 3986), or the URL itself in text.
fn ends_authority(b: u8) -> bool {
    matches!(
        b,
        b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'`' | b'\\' | b'|' | 0
    ) || b.is_ascii_whitespace()
        || b.is_ascii_control()
}

fn connection_passwords(text: &[u8], found: &mut Vec<Range<usize>>) {
    let mut at = 0;
    while let Some(sep) = find_from(text, b"://", at) {
        at = sep + 3;
        // The scheme: a letter, then letters, digits, '+', '-', '.'.
        let scheme_len = text.get(..sep).map_or(0, |before| {
            before
                .iter()
                .rev()
                .take_while(|&&b| is_alnum(b) || b"+-.".contains(&b))
                .count()
        });
        if scheme_len < 2 || !byte(text, sep - scheme_len).is_ascii_alphabetic() {
            continue;
        }
        let authority = sep + 3;
        let len = run(text, authority, |b| !ends_authority(b));
        let Some(part) = text.get(authority..authority + len) else {
            continue;
        };
        // The last '@' ends the user information; its first ':' starts the password.
        let Some(at_sign) = part.iter().rposition(|&b| b == b'@') else {
            continue;
        };
        let user_info = part.get(..at_sign).unwrap_or_default();
        let Some(colon) = user_info.iter().position(|&b| b == b':') else {
            continue;
        };
        let host = part.get(at_sign + 1..).unwrap_or_default();
        if colon + 1 == at_sign || host.is_empty() {
            continue;
        }
        found.push(authority + colon + 1..authority + at_sign);
        at = authority + len;
    }
}

/// Sorts `ranges` and joins those that overlap or touch.
pub fn merge(ranges: &mut Vec<(Range<usize>, usize)>) {
    ranges.sort_by_key(|(r, _)| (r.start, r.end));
    let mut merged: Vec<(Range<usize>, usize)> = Vec::with_capacity(ranges.len());
    for (range, who) in ranges.drain(..) {
        match merged.last_mut() {
            Some((last, _)) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push((range, who)),
        }
    }
    *ranges = merged;
}
