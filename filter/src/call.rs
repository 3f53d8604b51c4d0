//! What is being called: each request becomes one or more calls, an action on a resource.

use serde_json::Value;

use crate::config::Config;
use crate::http::HttpRequest;
use crate::json::{self, JsonError};
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

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Works out the calls in a request. A body that looks like JSON must parse
/// strictly, and a JSON body that carries `jsonrpc` or `method`, or any body sent
/// to an MCP endpoint, must be valid JSON-RPC; anything else is a REST call on the route.
pub fn classify(
    request: &HttpRequest<'_>,
    server: &str,
    config: &Config,
) -> Result<Calls, Malformed> {
    let body = request.body;
    let mcp_endpoint = config.mcp_paths.iter().any(|p| p == request.path());
    let refuse = |reason| Malformed {
        reason,
        rpc_id: None,
        rpc: mcp_endpoint || request.declares_json(),
    };
    if body.starts_with(UTF8_BOM) || !request.charset_is_utf8() {
        return Err(refuse(Reason::UnsupportedCharset));
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let looks_like_json = matches!(first, Some(b'{' | b'['));
    if first.is_some() && (looks_like_json || mcp_endpoint || request.declares_json()) {
        let value = json::parse(body).map_err(|e| {
            refuse(match e {
                JsonError::DuplicateKey(_) => Reason::DuplicateJsonKey,
                JsonError::Syntax(_) => Reason::InvalidJson,
            })
        })?;
        if mcp_endpoint || jsonrpc::is_jsonrpc(&value) {
            return jsonrpc::calls(value, server, config.batches);
        }
    }
    if mcp_endpoint && first.is_none() {
        // Streamable HTTP without a body: GET opens the server's stream, DELETE ends the session.
        return match request.method() {
            "GET" => Ok(Calls::Rpc(jsonrpc::endpoint_call("stream", server))),
            "DELETE" => Ok(Calls::Rpc(jsonrpc::endpoint_call("terminate", server))),
            "POST" => Err(refuse(Reason::InvalidJsonRpc)),
            _ => Ok(Calls::Rest(rest::call(request, server))),
        };
    }
    Ok(Calls::Rest(rest::call(request, server)))
}
