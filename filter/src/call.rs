//! What is being called: each request becomes one or more calls, an action on a resource.

use serde_json::Value;

use crate::config::BatchMode;
use crate::http::HttpRequest;
use crate::reason::Reason;
use crate::{jsonrpc, rest};

/// The kind of Cedar resource a call acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Server,
    Tool,
    Prompt,
    McpResource,
    Route,
}

/// One authorizable call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The Cedar action id, e.g. `tools/call` or `http`.
    pub action: &'static str,
    pub resource_kind: ResourceKind,
    /// The resource's id: `<server>/<name>` (or the server's own name for session calls).
    pub resource_id: String,
    /// The tool or prompt name, or resource URI, without the server prefix.
    pub name: Option<String>,
    pub arguments: Option<Value>,
    /// Set for JSON-RPC calls.
    pub rpc: Option<RpcMessage>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RpcMessage {
    pub method: String,
    /// The request id; `None` for a notification.
    pub id: Option<Value>,
}

/// The calls one HTTP request carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Calls {
    Rest(Call),
    Rpc(Call),
    RpcBatch(Vec<Call>),
}

impl Calls {
    pub fn as_slice(&self) -> &[Call] {
        match self {
            Self::Rest(call) | Self::Rpc(call) => std::slice::from_ref(call),
            Self::RpcBatch(calls) => calls,
        }
    }

    pub fn is_rpc(&self) -> bool {
        !matches!(self, Self::Rest(_))
    }
}

/// A request the filter refuses before policy, with what it could tell of the call.
#[derive(Debug, Clone, PartialEq)]
pub struct Malformed {
    pub reason: Reason,
    /// The JSON-RPC id, when one could be read, so the error can echo it.
    pub rpc_id: Option<Value>,
    /// True when the body was meant as JSON-RPC, so the error is shaped as one.
    pub rpc: bool,
}

/// Works out the calls in a request. A body that looks like JSON must parse, and
/// a JSON object or array that carries `jsonrpc` or `method` is JSON-RPC; anything
/// else is a REST call on the route.
pub fn classify(
    request: &HttpRequest<'_>,
    server: &str,
    batches: BatchMode,
) -> Result<Calls, Malformed> {
    let body = request.body;
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b'{' | b'[')) || request.declares_json() && first.is_some() {
        let value: Value = serde_json::from_slice(body).map_err(|_| Malformed {
            reason: Reason::InvalidJson,
            rpc_id: None,
            rpc: true,
        })?;
        if jsonrpc::is_jsonrpc(&value) {
            return jsonrpc::calls(value, server, batches);
        }
    }
    Ok(Calls::Rest(rest::call(request, server)))
}
