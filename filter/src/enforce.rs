//! Enforcement: what Envoy does next, either forward with annotations or answer with a refusal.

use serde_json::{json, Value};

use crate::reason::Reason;

/// Every header toolgate sets starts with this; clients may not send any.
pub const ANNOTATION_PREFIX: &str = "x-toolgate-";
pub const DECISION_ID: &str = "x-toolgate-decision-id";
pub const POLICIES: &str = "x-toolgate-policies";
pub const POLICY_VERSION: &str = "x-toolgate-policy-version";
pub const PRINCIPAL: &str = "x-toolgate-principal";
/// Set in shadow mode on a call that policy denied: the reason it would have been refused.
pub const WOULD_DENY: &str = "x-toolgate-would-deny";
/// Set on a fail-open route on a call toolgate could not evaluate: why.
pub const FAIL_OPEN: &str = "x-toolgate-fail-open";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send the request upstream after these header edits.
    Forward {
        remove: Vec<String>,
        set: Vec<(&'static str, String)>,
    },
    /// Answer the client; nothing goes upstream.
    Respond {
        status: u32,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
}

/// How a refusal is shaped for the client.
pub enum Refusal<'a> {
    /// A JSON-RPC error per request id (one with a null id when there are none),
    /// sent with this HTTP status.
    JsonRpc {
        ids: Vec<&'a Value>,
        batch: bool,
        status: u32,
    },
    /// A `tools/call` result with `isError: true` (HTTP 200), which the model reads.
    /// `result_type`: 2026-07-28 results must say `resultType` (the SDK refuses one without).
    ToolResult { id: &'a Value, result_type: bool },
    /// An RFC 9457 problem document.
    Problem { instance: &'a str },
    /// A2A's HTTP+JSON error (A2A §11.6): a `google.rpc.Status` whose ErrorInfo names
    /// the A2A error a reason is (see [`a2a_error`]), so A2A clients raise that error.
    A2aStatus,
}

/// The `google.rpc.ErrorInfo` domain of A2A's own errors.
pub const A2A_DOMAIN: &str = "a2a-protocol.org";
/// The ErrorInfo domain of a refusal A2A has no error for.
pub const TOOLGATE_DOMAIN: &str = "toolgate.dev";

/// The A2A error (its ErrorInfo reason, A2A §5.4) a refusal is, found by its JSON-RPC
/// code as A2A's two bindings pair them; `None`: A2A has none (a policy's no, an
/// identity refusal), then the ErrorInfo carries toolgate's reason in toolgate's domain.
pub fn a2a_error(reason: Reason) -> Option<&'static str> {
    match reason.jsonrpc_code() {
        -32001 => Some("TASK_NOT_FOUND"),
        -32601 => Some("METHOD_NOT_FOUND"),
        -32602 => Some("INVALID_PARAMS"),
        -32600 => Some("INVALID_REQUEST"),
        _ => None,
    }
}

/// The `google.rpc.Code` name for an HTTP status, as google.rpc maps them.
fn rpc_status(http_status: u32) -> &'static str {
    match http_status {
        400 | 413 | 415 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        500..=599 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    }
}

/// What a refused client needs to know to succeed later.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hints<'a> {
    /// For `approval_required`: what an orchestrator must get approved before retrying.
    pub approve: Option<&'a Value>,
    /// For `rate_limited`: seconds to wait, also sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

pub fn refuse(
    reason: Reason,
    decision_id: &str,
    policies: &[String],
    shape: Refusal<'_>,
    hints: Hints<'_>,
) -> Action {
    let mut data =
        json!({ "decision_id": decision_id, "reason": reason.code(), "policies": policies });
    if let Some(fields) = data.as_object_mut() {
        if let Some(approve) = hints.approve {
            fields.insert("approve".into(), approve.clone());
        }
        if let Some(seconds) = hints.retry_after {
            fields.insert("retry_after".into(), seconds.into());
        }
    }
    let message = format!("toolgate: {}", reason.message());
    let (status, content_type, body) = match shape {
        Refusal::JsonRpc { ids, batch, status } => {
            let error = |id: &Value| {
                json!({
                    "jsonrpc": "2.0",
                    "id": id,
                    "error": { "code": reason.jsonrpc_code(), "message": message, "data": data },
                })
            };
            let body = match (ids.as_slice(), batch) {
                ([], _) => error(&Value::Null),
                ([id], false) => error(id),
                (ids, _) => Value::Array(ids.iter().map(|id| error(id)).collect()),
            };
            (status, "application/json", body)
        }
        Refusal::ToolResult { id, result_type } => {
            let text = readable(reason, decision_id, policies, hints);
            let mut result = json!({
                "content": [{ "type": "text", "text": text }],
                "isError": true,
                "_meta": { "toolgate": data },
            });
            if let (true, Some(fields)) = (result_type, result.as_object_mut()) {
                fields.insert("resultType".into(), "complete".into());
            }
            let body = json!({ "jsonrpc": "2.0", "id": id, "result": result });
            (200, "application/json", body)
        }
        Refusal::Problem { instance } => (
            reason.http_status(),
            "application/problem+json",
            json!({
                "type": format!("https://toolgate.dev/problems/{}", reason.code()),
                "title": message,
                "status": reason.http_status(),
                "detail": reason.message(),
                "instance": instance,
                "decision_id": decision_id,
                "reason": reason.code(),
                "policies": policies,
            }),
        ),
        Refusal::A2aStatus => {
            let (error_reason, domain) = match a2a_error(reason) {
                Some(a2a) => (a2a.to_owned(), A2A_DOMAIN),
                None => (reason.code().to_ascii_uppercase(), TOOLGATE_DOMAIN),
            };
            // ErrorInfo metadata is a map of strings.
            let metadata: serde_json::Map<String, Value> = (data.as_object().into_iter())
                .flatten()
                .map(|(key, value)| {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        Value::Array(items) => (items.iter().filter_map(Value::as_str))
                            .collect::<Vec<_>>()
                            .join(","),
                        other => other.to_string(),
                    };
                    (key.clone(), Value::String(text))
                })
                .collect();
            let status = reason.http_status();
            let body = json!({
                "error": {
                    "code": status,
                    "status": rpc_status(status),
                    "message": message,
                    "details": [{
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": error_reason,
                        "domain": domain,
                        "metadata": metadata,
                    }],
                }
            });
            (status, "application/json", body)
        }
    };
    let mut headers = vec![
        ("content-type", content_type.to_owned()),
        (DECISION_ID, decision_id.to_owned()),
    ];
    if let Some(seconds) = hints.retry_after {
        headers.push(("retry-after", seconds.to_string()));
    }
    Action::Respond {
        status,
        headers,
        body: serde_json::to_vec(&body).unwrap_or_default(),
    }
}

/// The refusal as one paragraph a model can act on.
fn readable(reason: Reason, decision_id: &str, policies: &[String], hints: Hints<'_>) -> String {
    let mut text = format!(
        "toolgate refused this call: {} (reason {}, decision {decision_id}",
        reason.message(),
        reason.code()
    );
    if !policies.is_empty() {
        text.push_str(&format!(", policies {}", policies.join(", ")));
    }
    text.push_str(").");
    if let Some(approve) = hints.approve {
        text.push_str(&format!(
            " Ask a human to approve this exact call, then retry with the approval token: {approve}."
        ));
    }
    if let Some(seconds) = hints.retry_after {
        text.push_str(&format!(" Retry after {seconds} s."));
    }
    text
}

/// Forwards with toolgate's annotations, after removing any the client sent and
/// any header that carried a client-asserted identity.
pub fn forward(
    headers: &[crate::http::Header],
    drop_also: &[&str],
    decision_id: &str,
    policies: &[String],
    version: &str,
    principal: Option<&str>,
    flag: Option<(&'static str, &str)>,
) -> Action {
    let set: Vec<(&'static str, String)> = [
        (DECISION_ID, Some(decision_id.to_owned())),
        (POLICIES, Some(policies.join(","))),
        (POLICY_VERSION, Some(version.to_owned())),
        (PRINCIPAL, principal.map(str::to_owned)),
    ]
    .into_iter()
    .chain(flag.map(|(name, value)| (name, Some(value.to_owned()))))
    .filter_map(|(name, value)| value.map(|v| (name, v)))
    .collect();
    let mut remove: Vec<String> = headers
        .iter()
        .map(|(name, _)| name)
        .filter(|name| {
            (name.starts_with(ANNOTATION_PREFIX) && !set.iter().any(|(n, _)| n == name))
                || drop_also.contains(&name.as_str())
        })
        .cloned()
        .collect();
    remove.dedup();
    Action::Forward { remove, set }
}
