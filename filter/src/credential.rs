//! The credential: the short-lived JWT that Envoy's jwt_authn verified, and its delegation chain.
//!
//! jwt_authn does the cryptography and writes the verified payload (or why it
//! failed) to dynamic metadata; toolgate only reads what it verified.

use crate::wire;

/// What jwt_authn concluded about one of its providers' tokens.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum JwtState<T> {
    /// No token reached toolgate (or toolgate was not asked to look).
    #[default]
    Absent,
    /// jwt_authn rejected the token (expired, bad signature, wrong issuer...): its message.
    Failed(String),
    /// The metadata could not be read; treated like a failed token.
    Unreadable,
    Verified(T),
}

impl<T> JwtState<T> {
    /// From a provider's metadata: the payload (`payload_in_metadata`) and the
    /// failure status (`failed_status_in_metadata`), each in proxy-wasm's encoding.
    pub fn decode_with(
        payload: Option<&[u8]>,
        failure: Option<&[u8]>,
        decode: impl FnOnce(&[u8]) -> Option<T>,
    ) -> Self {
        match failure.map(failure_message) {
            Some(None) => Self::Absent,
            Some(Some(message)) => Self::Failed(message),
            None => match payload {
                None => Self::Absent,
                Some(bytes) => decode(bytes).map_or(Self::Unreadable, Self::Verified),
            },
        }
    }
}

/// The agent's short-lived credential.
pub type TokenState = JwtState<Credential>;

/// The verified claims toolgate authorizes on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Credential {
    pub issuer: String,
    pub subject: String,
    pub audience: Vec<String>,
    pub scopes: Vec<String>,
    pub task: Option<String>,
    pub intent: Option<String>,
    pub jti: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    /// RFC 8693 `act` claims, outermost first: the actor calling on behalf of `subject`, then its actor...
    pub delegation: Vec<String>,
}

/// jwt_authn's status message for a request without a token.
const JWT_MISSING: &str = "Jwt is missing";

/// The message of a jwt_authn failure status (`failed_status_in_metadata`), or
/// `None` when the "failure" is only that no token was sent.
pub fn failure_message(status: &[u8]) -> Option<String> {
    let message = wire::decode_pairs(status)
        .and_then(|pairs| pairs.into_iter().find(|(key, _)| *key == b"message"))
        .map_or_else(
            || "verification failed".to_owned(),
            |(_, value)| String::from_utf8_lossy(value).into_owned(),
        );
    (!message.eq_ignore_ascii_case(JWT_MISSING)).then_some(message)
}

/// Deepest `act` nesting read; deeper chains are refused as unreadable.
const MAX_CHAIN: usize = 16;

impl TokenState {
    pub fn from_envoy(payload: Option<&[u8]>, failure: Option<&[u8]>) -> Self {
        Self::decode_with(payload, failure, Credential::decode)
    }
}

impl Credential {
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut credential = Self::default();
        let mut has = (false, false, false);
        for (key, value) in wire::decode_pairs(bytes)? {
            let text = || std::str::from_utf8(value).ok().map(str::to_owned);
            let seconds = || {
                wire::decode_number(value)
                    .filter(|n| n.is_finite())
                    .map(|n| n as i64)
            };
            match key {
                b"iss" => credential.issuer = text()?,
                b"sub" => {
                    credential.subject = text()?;
                    has.0 = true;
                }
                b"aud" => credential.audience = strings(value)?,
                b"scope" => {
                    credential.scopes = text()?.split_whitespace().map(str::to_owned).collect()
                }
                b"scp" | b"scopes" => credential.scopes = strings(value)?,
                b"task" => credential.task = text(),
                b"intent" => credential.intent = text(),
                b"jti" => credential.jti = text(),
                b"iat" => {
                    credential.issued_at = seconds()?;
                    has.1 = true;
                }
                b"exp" => {
                    credential.expires_at = seconds()?;
                    has.2 = true;
                }
                b"act" => credential.delegation = actors(value, 0)?,
                _ => {}
            }
        }
        // Without a subject and both timestamps the TTL rules cannot be checked.
        (has == (true, true, true)).then_some(credential)
    }

    pub fn ttl_seconds(&self) -> i64 {
        self.expires_at.saturating_sub(self.issued_at)
    }

    pub fn remaining_seconds(&self, now_unix: i64) -> i64 {
        self.expires_at.saturating_sub(now_unix)
    }
}

/// A claim that may be one string or a list of strings.
fn strings(value: &[u8]) -> Option<Vec<String>> {
    match wire::decode_list(value) {
        Some(items) if !items.is_empty() => items
            .into_iter()
            .map(|item| std::str::from_utf8(item).ok().map(str::to_owned))
            .collect(),
        _ => std::str::from_utf8(value).ok().map(|s| vec![s.to_owned()]),
    }
}

/// The `act` chain: `{"sub": A, "act": {"sub": B, ...}}` becomes `[A, B, ...]`.
fn actors(value: &[u8], depth: usize) -> Option<Vec<String>> {
    if depth >= MAX_CHAIN {
        return None;
    }
    let mut subject = None;
    let mut rest = Vec::new();
    for (key, inner) in wire::decode_pairs(value)? {
        match key {
            b"sub" => subject = Some(std::str::from_utf8(inner).ok()?.to_owned()),
            b"act" => rest = actors(inner, depth + 1)?,
            _ => {}
        }
    }
    let mut chain = vec![subject?];
    chain.extend(rest);
    Some(chain)
}

/// The credential stage: the verified token when there is one, or a refusal when
/// the configuration requires one and it is missing or did not verify.
pub fn required<'t>(
    token: &'t TokenState,
    config: Option<&crate::config::Credentials>,
) -> Result<Option<&'t Credential>, crate::refusal::Refusal> {
    use crate::reason::Reason;
    use crate::refusal::Refusal;
    let Some(config) = config else {
        return Ok(None);
    };
    match token {
        TokenState::Verified(credential) => Ok(Some(credential)),
        TokenState::Absent if !config.required => Ok(None),
        TokenState::Absent => Err(Refusal::new(Reason::TokenMissing)),
        TokenState::Failed(message) => Err(Refusal::because(
            Reason::TokenInvalid,
            format!("jwt_authn: {message}"),
        )),
        TokenState::Unreadable => Err(Refusal::because(
            Reason::TokenInvalid,
            "jwt_authn metadata could not be read",
        )),
    }
}
