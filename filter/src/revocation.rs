//! Revocation: tasks and token ids revoked at task end, held in Envoy's shared data.
//!
//! A controller (a configured SPIFFE ID) POSTs `{"task": ...}` or `{"jti": ...}` to
//! the configured path; the filter answers it itself and records the revocation in
//! shared data, which every worker VM of this Envoy process reads. It is not shared
//! between Envoy processes: a fleet needs the controller to call every gateway.

use serde_json::Value;

use crate::config::Revocation;
use crate::enforce::{self, Action, Refusal};
use crate::gate::{Input, Outcome, Verdict};
use crate::reason::Reason;
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

/// What a control request asks to revoke: `(kind, id)` pairs, or why it is malformed.
pub fn parse_request(body: &[u8]) -> Result<Vec<(&'static str, String)>, String> {
    let value: Value =
        crate::json::parse(body).map_err(|_| "the body must be a JSON object".to_owned())?;
    let Value::Object(fields) = value else {
        return Err("the body must be a JSON object".into());
    };
    let mut targets = Vec::new();
    for (kind, field) in [("task", "task"), ("jti", "jti")] {
        match fields.get(field) {
            None => {}
            Some(Value::String(id)) if !id.is_empty() && id.len() <= 256 => {
                targets.push((kind, id.clone()))
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
pub fn writes(
    config: &Revocation,
    targets: &[(&'static str, String)],
    now_unix: i64,
) -> Vec<SharedWrite> {
    let expires = now_unix.saturating_add(i64::try_from(config.ttl_seconds).unwrap_or(i64::MAX));
    targets
        .iter()
        .map(|(kind, id)| SharedWrite {
            key: key(kind, id),
            // The entry's own codec (text), which cannot fail for a number.
            value: <Expiry as Codec>::encode(&expires).unwrap_or_default(),
        })
        .collect()
}

/// A control request: a configured controller revokes tasks or token ids.
pub fn control(
    config: &Revocation,
    input: &Input<'_>,
    decision_id: &str,
    policy_version: &str,
) -> Verdict {
    let now_unix = input.now_unix();
    let controller = match input.peer.uri_sans.as_slice() {
        [id] if config.controllers.contains(id) => Some(id.as_str()),
        _ => None,
    };
    let request = &input.request;
    let outcome = match controller {
        None => Err((Reason::NotAController, String::new())),
        Some(_) if request.method() != "POST" => {
            Err((Reason::InvalidParams, "revoke with POST".into()))
        }
        Some(_) => parse_request(request.body).map_err(|why| (Reason::InvalidParams, why)),
    };
    let record = |decision: &str,
                  reason: Option<&str>,
                  errors: &[String],
                  revoked: &[(&str, String)]| {
        serde_json::json!({
            "decision_id": decision_id,
            "timestamp": crate::time::rfc3339(input.unix_nanos),
            "request_id": request.request_id(),
            "principal": input.peer.uri_sans.first(),
            "action": "revoke",
            "path": request.path(),
            "revoked": revoked.iter().map(|(kind, id)| serde_json::json!({ *kind: id })).collect::<Vec<_>>(),
            "decision": decision,
            "enforced": true,
            "reason": reason,
            "errors": errors,
            "policy_version": policy_version,
        })
        .to_string()
    };
    match outcome {
        Ok(targets) => {
            let writes = writes(config, &targets, now_unix);
            let expires_at =
                now_unix.saturating_add(i64::try_from(config.ttl_seconds).unwrap_or(i64::MAX));
            let body = serde_json::json!({
                "revoked": targets.iter().map(|(kind, id)| serde_json::json!({ *kind: id })).collect::<Vec<_>>(),
                "expires_at": expires_at,
                "decision_id": decision_id,
            });
            Verdict {
                action: Action::Respond {
                    status: 200,
                    headers: vec![
                        ("content-type", "application/json".to_owned()),
                        (enforce::DECISION_ID, decision_id.to_owned()),
                    ],
                    body: body.to_string().into_bytes(),
                },
                outcome: Outcome::Allow,
                record: record("allow", None, &[], &targets),
                writes,
                effects: Default::default(),
            }
        }
        Err((reason, why)) => {
            let errors: Vec<String> = Some(why).filter(|w| !w.is_empty()).into_iter().collect();
            Verdict {
                action: enforce::refuse(
                    reason,
                    decision_id,
                    &[],
                    Refusal::Problem {
                        instance: request.path(),
                    },
                    enforce::Hints::default(),
                ),
                outcome: Outcome::refused(reason),
                record: record("deny", Some(reason.code()), &errors, &[]),
                writes: Vec::new(),
                effects: Default::default(),
            }
        }
    }
}
