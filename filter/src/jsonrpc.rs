//! MCP over JSON-RPC 2.0: messages become calls on tools, prompts, resources or the server.

use serde_json::{Map, Value};

use crate::call::{Call, Calls, Malformed, ResourceKind, RpcMessage};
use crate::config::BatchMode;
use crate::reason::Reason;

/// True when a parsed body is meant as JSON-RPC, so it must be a valid one.
pub fn is_jsonrpc(value: &Value) -> bool {
    let marks = |v: &Value| v.get("jsonrpc").is_some() || v.get("method").is_some();
    match value {
        Value::Object(_) => marks(value),
        Value::Array(items) => items.is_empty() || items.iter().any(|v| !v.is_object() || marks(v)),
        _ => false,
    }
}

pub fn calls(value: Value, server: &str, batches: BatchMode) -> Result<Calls, Malformed> {
    match value {
        Value::Array(items) => {
            let malformed = |reason| Malformed {
                reason,
                rpc_id: None,
                rpc: true,
            };
            if batches == BatchMode::Reject {
                return Err(malformed(Reason::BatchRejected));
            }
            if items.is_empty() {
                return Err(malformed(Reason::InvalidJsonRpc));
            }
            items
                .into_iter()
                .map(|item| call(item, server))
                .collect::<Result<Vec<_>, _>>()
                .map(Calls::RpcBatch)
        }
        single => call(single, server).map(Calls::Rpc),
    }
}

fn call(value: Value, server: &str) -> Result<Call, Malformed> {
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
    if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(Reason::InvalidJsonRpc, id));
    }
    let method = match message.remove("method") {
        Some(Value::String(method)) => method,
        // A response to a server-initiated request (sampling, elicitation).
        None if message.contains_key("result") || message.contains_key("error") => {
            return Ok(server_call("response", server, "response".into(), id));
        }
        _ => return Err(invalid(Reason::InvalidJsonRpc, id)),
    };
    let params = match message.remove("params") {
        None => Map::new(),
        Some(Value::Object(params)) => params,
        Some(_) => return Err(invalid(Reason::InvalidParams, id)),
    };
    Ok(match method.as_str() {
        "tools/call" => named_call(
            "tools/call",
            ResourceKind::Tool,
            "name",
            params,
            server,
            method,
            id,
        )?,
        "prompts/get" => named_call(
            "prompts/get",
            ResourceKind::Prompt,
            "name",
            params,
            server,
            method,
            id,
        )?,
        "resources/read" => named_call(
            "resources/read",
            ResourceKind::McpResource,
            "uri",
            params,
            server,
            method,
            id,
        )?,
        "initialize" => server_call("initialize", server, method, id),
        "ping" => server_call("ping", server, method, id),
        "tools/list" => server_call("tools/list", server, method, id),
        "prompts/list" => server_call("prompts/list", server, method, id),
        "resources/list" => server_call("resources/list", server, method, id),
        "resources/templates/list" => server_call("resources/templates/list", server, method, id),
        m if m.starts_with("notifications/") => server_call("notification", server, method, id),
        _ => server_call("rpc", server, method, id),
    })
}

/// A call on a named thing the server offers: a tool, a prompt or a resource.
fn named_call(
    action: &'static str,
    resource_kind: ResourceKind,
    name_field: &str,
    mut params: Map<String, Value>,
    server: &str,
    method: String,
    id: Option<Value>,
) -> Result<Call, Malformed> {
    let Some(Value::String(name)) = params.remove(name_field) else {
        return Err(invalid(Reason::InvalidParams, id));
    };
    let acceptable = match resource_kind {
        ResourceKind::McpResource => acceptable_uri(&name),
        _ => acceptable_name(&name),
    };
    if !acceptable {
        return Err(invalid(Reason::InvalidName, id));
    }
    let arguments = match params.remove("arguments") {
        None | Some(Value::Null) => None,
        Some(args @ Value::Object(_)) => Some(args),
        Some(_) => return Err(invalid(Reason::InvalidParams, id)),
    };
    Ok(Call {
        action,
        resource_kind,
        resource_id: format!("{server}/{name}"),
        name: Some(name),
        arguments,
        rpc: Some(RpcMessage { method, id }),
    })
}

/// A body-less request on the MCP endpoint (`stream` or `terminate`), authorized on the server.
pub fn endpoint_call(action: &'static str, server: &str) -> Call {
    Call {
        rpc: None,
        ..server_call(action, server, String::new(), None)
    }
}

/// A call on the server itself: session set-up, discovery, notifications.
fn server_call(action: &'static str, server: &str, method: String, id: Option<Value>) -> Call {
    Call {
        action,
        resource_kind: ResourceKind::Server,
        resource_id: server.to_owned(),
        name: None,
        arguments: None,
        rpc: Some(RpcMessage { method, id }),
    }
}

fn invalid(reason: Reason, rpc_id: Option<Value>) -> Malformed {
    Malformed {
        reason,
        rpc_id,
        rpc: true,
    }
}

/// Tool and prompt names are matched exactly, byte for byte, so only names that
/// cannot be confused are accepted: 1 to 128 of `A-Z a-z 0-9 _ - . /`, no empty,
/// `.` or `..` segment. Case variants, Unicode look-alikes, zero-width characters,
/// whitespace and path tricks are refused instead of being matched to a policy.
pub fn acceptable_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./".contains(&b))
        && name
            .split('/')
            .all(|segment| !matches!(segment, "" | "." | ".."))
}

/// Resource URIs are free-form, but none with whitespace, control or invisible
/// formatting characters, which would let two URIs look alike.
pub fn acceptable_uri(uri: &str) -> bool {
    (1..=2048).contains(&uri.len())
        && !uri
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || is_invisible(c))
}

fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFF8}' | '\u{E0000}'..='\u{E0FFF}')
}
