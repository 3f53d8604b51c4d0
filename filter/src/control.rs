//! The revocation control request: a configured controller revokes tasks or token ids.

use serde_json::json;

use crate::config::Revocation;
use crate::decision::{Effects, Input, Outcome, Verdict};
use crate::enforce::{self, Action};
use crate::reason::Reason;
use crate::record::{Decision, DecisionRecord};
use crate::revocation;

/// Answers a request on the revocation path itself; nothing goes upstream.
pub fn revoke(
    config: &Revocation,
    input: &Input<'_>,
    decision_id: String,
    policy_version: &str,
) -> Verdict {
    let request = &input.request;
    let now_unix = input.now_unix();
    let controller = match input.peer.uri_sans.as_slice() {
        [id] if config.controllers.contains(id) => Some(id.as_str()),
        _ => None,
    };
    let targets = match controller {
        None => Err((Reason::NotAController, None)),
        Some(_) if request.method() != "POST" => {
            Err((Reason::InvalidParams, Some("revoke with POST".to_owned())))
        }
        Some(_) => revocation::parse_request(request.body)
            .map_err(|why| (Reason::InvalidParams, Some(why))),
    };
    let mut record = DecisionRecord {
        decision_id,
        timestamp: crate::time::rfc3339(input.unix_nanos),
        request_id: request.request_id().map(str::to_owned),
        principal: input.peer.uri_sans.first().cloned(),
        authenticated: controller.is_some(),
        http_method: Some(request.method().to_owned()),
        path: Some(request.path().to_owned()),
        action: Some("revoke".to_owned()),
        enforced: true,
        policy_version: Some(policy_version.to_owned()),
        ..DecisionRecord::default()
    };
    match targets {
        Ok(targets) => {
            let body = json!({
                "revoked": targets,
                "expires_at": revocation::expires_at(config, now_unix),
                "decision_id": record.decision_id,
            });
            let action = Action::Respond {
                status: 200,
                headers: vec![
                    ("content-type", "application/json".to_owned()),
                    (enforce::DECISION_ID, record.decision_id.clone()),
                ],
                body: body.to_string().into_bytes(),
            };
            let writes = revocation::writes(config, &targets, now_unix);
            record.decision = Decision::Allow;
            record.revoked = Some(targets);
            Verdict {
                action,
                outcome: Outcome::Revocation,
                record,
                writes,
                effects: Effects::default(),
            }
        }
        Err((reason, why)) => {
            let action = enforce::refuse(
                reason,
                &record.decision_id,
                &[],
                enforce::Refusal::Problem {
                    instance: request.path(),
                },
                enforce::Hints::default(),
            );
            record.decision = Decision::Deny;
            record.reason = Some(reason);
            record.errors = why.into_iter().collect();
            Verdict {
                action,
                outcome: Outcome::refused(reason),
                record,
                writes: Vec::new(),
                effects: Effects::default(),
            }
        }
    }
}
