//! Revocation: tasks and token ids revoked at task end, held in Envoy's shared data.
//!
//! A controller (a configured SPIFFE ID) POSTs `{"task": ...}` or `{"jti": ...}` to
//! the configured path (see `control`); the revocation is recorded in shared data,
//! which every worker VM of this Envoy process reads. It is not shared
//! between Envoy processes: a fleet needs the controller to call every gateway.

use serde_json::Value;

use crate::config::Revocation;
use crate::reason::Reason;
use crate::record::Revoked;
use crate::refusal::Refusal;
use crate::shared::{Codec, StateError, Stored, Text};

/// A shared-data write the glue performs for the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedWrite {
    pub key: String,
    pub value: Vec<u8>,
}

/// A revocation as stored: when it expires, Unix seconds, as text.
pub type Expiry = Text<i64>;

/// The shared-data key for a revoked task or token id.
pub fn key(kind: &str, id: &str) -> String {
    format!("toolgate/revoked/{kind}/{id}")
}

/// Whether the revocation stored under `key` is still in force. An entry that does
/// not decode is an error, which the gate turns into a refusal (fails closed).
pub fn in_force(key: &str, stored: &[u8], now_unix: i64) -> Result<bool, StateError> {
    let expires = Stored::<Expiry>::new(key).decode(stored)?;
    Ok(expires > now_unix)
}

/// What a control request asks to revoke, or why it is malformed.
pub fn parse_request(body: &[u8]) -> Result<Vec<Revoked>, String> {
    let value: Value =
        crate::json::parse(body).map_err(|_| "the body must be a JSON object".to_owned())?;
    let Value::Object(fields) = value else {
        return Err("the body must be a JSON object".into());
    };
    let mut targets = Vec::new();
    type Kind = fn(String) -> Revoked;
    let kinds: [(&str, Kind); 2] = [("task", Revoked::Task), ("jti", Revoked::Jti)];
    for (field, kind) in kinds {
        match fields.get(field) {
            None => {}
            Some(Value::String(id)) if !id.is_empty() && id.len() <= 256 => {
                targets.push(kind(id.clone()))
            }
            Some(_) => return Err(format!("`{field}` must be a non-empty string")),
        }
    }
    if let Some(unknown) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "task" | "jti"))
    {
        return Err(format!(
            "unknown field `{unknown}`; send {{\"task\": ...}} and/or {{\"jti\": ...}}"
        ));
    }
    if targets.is_empty() {
        return Err("nothing to revoke; send {\"task\": ...} and/or {\"jti\": ...}".into());
    }
    Ok(targets)
}

/// The writes that revoke these targets until `now + ttl`.
pub fn writes(config: &Revocation, targets: &[Revoked], now_unix: i64) -> Vec<SharedWrite> {
    let expires = expires_at(config, now_unix);
    targets
        .iter()
        .map(|target| {
            let (kind, id) = match target {
                Revoked::Task(id) => ("task", id),
                Revoked::Jti(id) => ("jti", id),
            };
            SharedWrite {
                key: key(kind, id),
                // The entry's own codec (text), which cannot fail for a number.
                value: <Expiry as Codec>::encode(&expires).unwrap_or_default(),
            }
        })
        .collect()
}

/// When revocations made now lapse, Unix seconds.
pub fn expires_at(config: &Revocation, now_unix: i64) -> i64 {
    now_unix.saturating_add(i64::try_from(config.ttl_seconds).unwrap_or(i64::MAX))
}

/// The revocation stage: refuses the request when any entry found for it is in force.
/// An entry that does not decode refuses too, as toolgate's own failure.
pub fn check(found: &[(String, Vec<u8>)], now_unix: i64) -> Result<(), Refusal> {
    for (key, stored) in found {
        if in_force(key, stored, now_unix).map_err(Refusal::internal)? {
            return Err(Refusal::because(
                Reason::Revoked,
                format!("{key} is revoked"),
            ));
        }
    }
    Ok(())
}
