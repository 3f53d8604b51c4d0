//! The JSON-RPC 2.0 envelope: messages and batches, with no knowledge of any protocol's methods.

use serde_json::{Map, Value};

use crate::call::Malformed;
use crate::config::BatchMode;
use crate::json;
use crate::reason::Reason;

/// One JSON-RPC message, as the envelope defines it.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request (with an id) or a notification (without).
    Request {
        method: String,
        id: Option<Value>,
        params: Map<String, Value>,
    },
    /// A response to a request the server sent.
    Response { id: Option<Value> },
}

/// A body's messages: one, or a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    One(Message),
    Batch(Vec<Message>),
}

/// The envelope's members, all of which toolgate reads (`result` and `error` tell a response).
const MEMBERS: &[&str] = &["jsonrpc", "id", "method", "params", "result", "error"];

/// True when a parsed body is meant as JSON-RPC, so it must be a valid one. A key
/// that folds to `jsonrpc` or `method` counts: an upstream may match keys ignoring case.
pub fn is_jsonrpc(value: &Value) -> bool {
    let marks = |v: &Value| {
        v.as_object().is_some_and(|object| {
            object
                .keys()
                .any(|key| json::fold_eq(key, "jsonrpc") || json::fold_eq(key, "method"))
        })
    };
    match value {
        Value::Object(_) => marks(value),
        Value::Array(items) => items.is_empty() || items.iter().any(|v| !v.is_object() || marks(v)),
        _ => false,
    }
}

/// The messages of a body; a batch only when batches are accepted.
pub fn parse(value: Value, batches: BatchMode) -> Result<Body, Malformed> {
    match value {
        Value::Array(items) => {
            if batches == BatchMode::Reject {
                return Err(invalid(Reason::BatchRejected, None));
            }
            if items.is_empty() {
                return Err(invalid(Reason::InvalidJsonRpc, None));
            }
            let messages = items.into_iter().map(message).collect::<Result<_, _>>()?;
            Ok(Body::Batch(messages))
        }
        single => message(single).map(Body::One),
    }
}

fn message(value: Value) -> Result<Message, Malformed> {
    let Value::Object(mut message) = value else {
        return Err(invalid(Reason::InvalidJsonRpc, None));
    };
    let id = message.remove("id");
    if !matches!(
        id,
        None | Some(Value::String(_) | Value::Number(_) | Value::Null)
    ) {
        return Err(invalid(Reason::InvalidJsonRpc, None));
    }
    refuse_folded(&message, MEMBERS.iter().copied(), &id)?;
    if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(Reason::InvalidJsonRpc, id));
    }
    let method = match message.remove("method") {
        Some(Value::String(method)) => method,
        None if message.contains_key("result") || message.contains_key("error") => {
            return Ok(Message::Response { id });
        }
        _ => return Err(invalid(Reason::InvalidJsonRpc, id)),
    };
    let params = match message.remove("params") {
        None => Map::new(),
        Some(Value::Object(params)) => params,
        Some(_) => return Err(invalid(Reason::InvalidParams, id)),
    };
    Ok(Message::Request { method, id, params })
}

/// `folded_member` when a key of `object` folds to one of `members` without being it
/// (see [`json::folded_member`]), echoing the id.
pub fn refuse_folded<'m>(
    object: &Map<String, Value>,
    members: impl Iterator<Item = &'m str> + Clone,
    rpc_id: &Option<Value>,
) -> Result<(), Malformed> {
    match json::folded_member(object, members) {
        Some((key, member)) => Err(invalid(Reason::FoldedMember, rpc_id.clone())
            .because(json::folded_member_error(key, member))),
        None => Ok(()),
    }
}

/// A refusal shaped as a JSON-RPC error, echoing the id when there is one.
pub fn invalid(reason: Reason, rpc_id: Option<Value>) -> Malformed {
    Malformed {
        reason,
        rpc_id,
        rpc: true,
        error: None,
    }
}
