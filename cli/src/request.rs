//! One request as a file describes it, decided by the filter's core: either an
//! HTTP request as Envoy hands it to the filter, or a Cedar request as recorded.

use std::str::FromStr;

use cedar_policy::{Authorizer, EntityUid};
use serde_json::{json, Map, Value};
use toolgate::authorize::authorize;
use toolgate::cedar_request::from_record;
use toolgate::enforce::Action;
use toolgate::gate::Input;
use toolgate::http::{Header, HttpRequest};
use toolgate::identity::Peer;
use toolgate::record::{CedarRecord, Decision};
use toolgate::shared::SharedData;
use toolgate::Gate;

/// What the core decided, in the terms test cases and `explain` speak.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub decision: String,
    pub reason: Option<String>,
    pub policies: Vec<String>,
    pub errors: Vec<String>,
    /// The Cedar request that was evaluated, when one was.
    pub cedar: Option<Value>,
    /// The filter's full decision record (HTTP requests only).
    pub record: Option<Value>,
    /// What the client would get back instead of the upstream, for a refusal.
    pub response: Option<(u32, String)>,
    /// Headers set on the forwarded request, for an allowed call.
    pub annotations: Vec<(String, String)>,
}

const FIXED_TIME_NANOS: u64 = 1_800_000_000_000_000_000;

/// Decides `request`: a Cedar request when it names a `principal` or an
/// `action`, otherwise an HTTP request (`peer`, `method`, `path`, `headers`, `body`).
/// `shared` stands in for Envoy's shared data: session history carries over
/// between the HTTP requests decided with the same one.
pub fn decide(gate: &Gate, request: &Value, shared: &dyn SharedData) -> Result<Decided, String> {
    let fields = request.as_object().ok_or("a request is a JSON object")?;
    if fields.contains_key("principal") || fields.contains_key("action") {
        decide_cedar(gate, fields)
    } else {
        decide_http(gate, fields, shared)
    }
}

fn decide_http(
    gate: &Gate,
    fields: &Map<String, Value>,
    shared: &dyn SharedData,
) -> Result<Decided, String> {
    known_fields(
        fields,
        &[
            "peer", "method", "path", "headers", "body", "route", "cluster", "now",
        ],
    )?;
    let text = |key: &str, default: &str| -> Result<String, String> {
        match fields.get(key) {
            None => Ok(default.to_owned()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!("\"{key}\" must be a string, not {other}")),
        }
    };
    let body = match fields.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(raw)) => raw.clone().into_bytes(),
        Some(json) => json.to_string().into_bytes(),
    };
    let mut headers: Vec<Header> = vec![
        (":method".into(), text("method", "POST")?.into_bytes()),
        (":path".into(), text("path", "/mcp")?.into_bytes()),
    ];
    match fields.get("headers") {
        None => {}
        Some(Value::Object(given)) => {
            for (name, value) in given {
                let value = value
                    .as_str()
                    .ok_or_else(|| format!("header {name:?} must be a string"))?;
                headers.push((name.to_ascii_lowercase(), value.as_bytes().to_vec()));
            }
        }
        Some(_) => return Err("\"headers\" must be an object of name: value".into()),
    }
    let has = |name: &str| headers.iter().any(|(n, _)| n == name);
    if matches!(fields.get("body"), Some(Value::Object(_) | Value::Array(_)))
        && !has("content-type")
    {
        headers.push(("content-type".into(), b"application/json".to_vec()));
    }
    let peer = match fields.get("peer") {
        None | Some(Value::Null) => Peer::default(),
        Some(Value::String(uri)) => Peer::with_uri_san(uri),
        Some(_) => return Err("\"peer\" must be the SPIFFE ID of the client certificate".into()),
    };
    let route = fields.get("route").and_then(Value::as_str);
    let cluster = fields.get("cluster").and_then(Value::as_str);
    let now = match fields.get("now") {
        None => FIXED_TIME_NANOS,
        Some(v) => v
            .as_u64()
            .map(|seconds| seconds.saturating_mul(1_000_000_000))
            .ok_or("\"now\" is Unix seconds")?,
    };
    let input = Input {
        route_name: route,
        cluster_name: cluster,
        shared: Some(shared),
        ..Input::new(
            HttpRequest {
                headers: &headers,
                body: &body,
            },
            &peer,
            now,
        )
    };
    let verdict = gate.decide(&input, &|| 0);
    let record = verdict.record;
    let (response, annotations) = match verdict.action {
        Action::Respond { status, body, .. } => (
            Some((status, String::from_utf8_lossy(&body).into_owned())),
            Vec::new(),
        ),
        Action::Forward { set, .. } => (
            None,
            set.into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
        ),
    };
    Ok(Decided {
        decision: record.decision.as_str().to_owned(),
        reason: record.reason.map(|r| r.code().to_owned()),
        policies: record.policies.clone(),
        errors: record.errors.clone(),
        cedar: record
            .cedar
            .as_ref()
            .and_then(|c| serde_json::to_value(c).ok()),
        response,
        annotations,
        record: serde_json::to_value(&record).ok(),
    })
}

fn decide_cedar(gate: &Gate, fields: &Map<String, Value>) -> Result<Decided, String> {
    known_fields(fields, &["principal", "action", "resource", "context"])?;
    let store = gate.store();
    let entity = |key: &str, default_type: &str| -> Result<Value, String> {
        let value = fields
            .get(key)
            .ok_or_else(|| format!("a Cedar request needs \"{key}\""))?;
        let Value::String(text) = value else {
            return Ok(value.clone());
        };
        if text.contains("::\"") {
            let uid = EntityUid::from_str(text).map_err(|e| format!("\"{key}\": {e}"))?;
            return Ok(json!({ "type": uid.type_name().to_string(), "id": uid.id().unescaped() }));
        }
        // A bare name: an action's name, or an id of the usual type.
        if key == "action" && store.action(text).is_none() {
            return Err(format!(
                "\"action\": the schema declares no action {text:?}"
            ));
        }
        Ok(json!({ "type": default_type, "id": text }))
    };
    let record = CedarRecord {
        principal: entity("principal", "Toolgate::Agent")?,
        action: entity("action", "Toolgate::Action")?,
        resource: entity("resource", "Toolgate::Tool")?,
        context: fields.get("context").cloned().unwrap_or_else(|| json!({})),
        decision: Decision::Deny,
    };
    let built = from_record(&record).map_err(|e| e.0)?;
    let verdict = authorize(&Authorizer::new(), store, &built);
    let decision = match verdict.denied {
        None => Decision::Allow,
        Some(_) => Decision::Deny,
    };
    let cedar = serde_json::to_value(CedarRecord { decision, ..record }).ok();
    Ok(Decided {
        decision: decision.as_str().to_owned(),
        reason: verdict.denied.map(|r| r.code().to_owned()),
        policies: verdict.policies,
        errors: verdict.errors,
        cedar,
        record: None,
        response: None,
        annotations: Vec::new(),
    })
}

fn known_fields(fields: &Map<String, Value>, known: &[&str]) -> Result<(), String> {
    match fields.keys().find(|key| !known.contains(&key.as_str())) {
        None => Ok(()),
        Some(key) => Err(format!(
            "unknown request field {key:?}; a request has {}",
            known.join(", ")
        )),
    }
}
