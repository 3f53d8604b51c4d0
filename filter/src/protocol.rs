//! The protocol boundary: reads a request's body the way its route's protocol says, into calls.
//!
//! A route's protocol comes from configuration (`a2a`, then `mcp_paths`); every other path is REST.
//! A JSON-RPC body is never let through as a REST call: on a REST route it is read
//! with the MCP table too, since the upstream may well serve JSON-RPC there.

use crate::call::{Calls, Malformed};
use crate::config::Config;
use crate::http::HttpRequest;
use crate::json;
use crate::jsonrpc::Body;
use crate::reason::Reason;
use crate::{a2a, encoding, jsonrpc, mcp, rest};

/// The protocol a route speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// MCP over Streamable HTTP: every POST must be JSON-RPC.
    Mcp,
    /// A plain HTTP tool API.
    Rest,
    /// A2A: a JSON-RPC endpoint, an HTTP+JSON interface or the agent card (`a2a.rs`).
    A2a,
}

impl Protocol {
    pub fn for_path(config: &Config, path: &str) -> Self {
        if (config.a2a.as_ref()).is_some_and(|a2a| a2a::route(a2a, path).is_some()) {
            Self::A2a
        } else if config.mcp_paths.iter().any(|p| p == path) {
            Self::Mcp
        } else {
            Self::Rest
        }
    }
}

/// Works out the calls in a request. A body an upstream might read in another
/// encoding is refused first ([`encoding`]). Then a body that looks like JSON (its
/// first byte past whitespace `{` or `[`) must parse strictly, on every path and
/// whatever its content type, and a JSON body that carries `jsonrpc` or `method`, or
/// any body sent to an MCP endpoint, must be valid JSON-RPC; anything else is a REST
/// call on the route.
pub fn classify(
    request: &HttpRequest<'_>,
    server: &str,
    config: &Config,
) -> Result<Calls, Malformed> {
    if let Some(route) = (config.a2a.as_ref()).and_then(|a2a| a2a::route(a2a, request.path())) {
        let refuse = |reason| Malformed {
            reason,
            rpc_id: None,
            rpc: route == a2a::Route::JsonRpc,
            error: None,
        };
        encoding::check(request.body).map_err(refuse)?;
        if !request.charset_is_utf8() {
            return Err(refuse(Reason::UnsupportedCharset));
        }
        let call = a2a::classify(request, route, server)?;
        return Ok(match route {
            a2a::Route::JsonRpc => Calls::Rpc(call),
            _ => Calls::Rest(call),
        });
    }
    let protocol = Protocol::for_path(config, request.path());
    let mcp_endpoint = protocol == Protocol::Mcp;
    let body = request.body;
    let refuse = |reason| Malformed {
        reason,
        rpc_id: None,
        rpc: mcp_endpoint || request.declares_json(),
        error: None,
    };
    encoding::check(body).map_err(refuse)?;
    if !request.charset_is_utf8() {
        return Err(refuse(Reason::UnsupportedCharset));
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let looks_like_json = matches!(first, Some(b'{' | b'['));
    if first.is_some() && (looks_like_json || mcp_endpoint || request.declares_json()) {
        let value = json::parse(body).map_err(|e| refuse(e.reason()).because(e.to_string()))?;
        if mcp_endpoint || jsonrpc::is_jsonrpc(&value) {
            return match jsonrpc::parse(value, config.batches)? {
                Body::One(message) => mcp::call(message, server).map(Calls::Rpc),
                Body::Batch(messages) => messages
                    .into_iter()
                    .map(|message| mcp::call(message, server))
                    .collect::<Result<_, _>>()
                    .map(Calls::RpcBatch),
            };
        }
    }
    if mcp_endpoint && first.is_none() {
        return match mcp::endpoint_call(request.method(), server) {
            Some(call) => Ok(Calls::Rpc(call)),
            None if request.method() == "POST" => Err(refuse(Reason::InvalidJsonRpc)),
            None => Ok(Calls::Rest(rest::call(request, server))),
        };
    }
    Ok(Calls::Rest(rest::call(request, server)))
}
