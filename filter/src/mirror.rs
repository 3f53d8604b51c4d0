//! MCP's mirrored headers (2026-07-28): `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` and `Mcp-Param-*` must say what the body says.
//!
//! Components in front of a server route and limit on these headers without reading
//! the body. toolgate reads the body, so, as the specification requires of anything
//! that does, it refuses a request whose headers say otherwise (HTTP 400, JSON-RPC
//! -32020 `HeaderMismatch`): a header naming an allowed tool over a body calling a
//! forbidden one never gets past it. The version is the request's protocol version,
//! for the Cedar context and the record.

use base64::Engine;
use serde_json::Value;

use crate::arguments::{ArgumentTypes, HeaderArgument};
use crate::call::Call;
use crate::http::HttpRequest;
use crate::reason::Reason;
use crate::refusal::Refusal;

pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
pub const METHOD: &str = "mcp-method";
pub const NAME: &str = "mcp-name";
pub const PARAM_PREFIX: &str = "mcp-param-";

/// The first protocol version that mirrors the body into headers. Any version that is
/// not an earlier date is held to it: an unknown one is not trusted to be older.
const MIRRORING_SINCE: &str = "2026-07-28";

/// Checks the mirrored headers of a request's calls; returns the protocol version the
/// request speaks (its body's `_meta`, else its header), if it says.
pub fn check(
    request: &HttpRequest<'_>,
    calls: &[Call],
    arguments: &ArgumentTypes,
) -> Result<Option<String>, Refusal> {
    let header_version = text(request, PROTOCOL_VERSION)?;
    let rpc_calls: Vec<&Call> = calls.iter().filter(|c| c.rpc.is_some()).collect();
    let [call] = rpc_calls.as_slice() else {
        // A batch, or no JSON-RPC at all: one set of headers can't mirror many
        // messages, and a body-less request has nothing to mirror.
        if rpc_calls.len() > 1 && has_mirrored(request) {
            return Err(mismatch(
                "mirrored Mcp-* headers on a batch, which they cannot describe".into(),
            ));
        }
        return Ok(header_version);
    };
    let Some(rpc) = &call.rpc else {
        return Ok(header_version);
    };
    let version = match (&rpc.protocol_version, header_version) {
        (Some(body), Some(header)) if *body != header => {
            return Err(mismatch(format!(
                "the MCP-Protocol-Version header {header:?} is not the body's _meta protocolVersion {body:?}"
            )))
        }
        (Some(body), _) => Some(body.clone()),
        (None, header) => header,
    };
    // Mirroring is required of requests (an id), not of notifications or responses.
    let required = rpc.id.is_some() && rpc.method != "response" && mirrors(version.as_deref());
    if required && rpc.protocol_version.is_some() && text(request, PROTOCOL_VERSION)?.is_none() {
        return Err(missing(PROTOCOL_VERSION));
    }
    compare(request, METHOD, Some(&rpc.method), required)?;
    compare(request, NAME, call.name.as_deref(), required)?;
    for argument in arguments.headers_of(call) {
        compare_argument(request, call.arguments.as_ref(), argument, required)?;
    }
    Ok(version)
}

/// True when `version` is one that mirrors the body into headers: 2026-07-28 or later
/// (stateless, `resultType` on every result), or not an earlier date.
pub fn mirrors(version: Option<&str>) -> bool {
    let Some(version) = version else {
        return false;
    };
    let is_date = version.len() == 10
        && version.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    !(is_date && version < MIRRORING_SINCE)
}

/// A header that mirrors `body`: absent is fine unless `required` and the body has
/// the value; present, it must decode to exactly the body's value.
fn compare(
    request: &HttpRequest<'_>,
    header: &str,
    body: Option<&str>,
    required: bool,
) -> Result<(), Refusal> {
    match (decoded(request, header)?, body) {
        (None, Some(_)) if required => Err(missing(header)),
        (None, _) => Ok(()),
        (Some(sent), Some(body)) if sent == body => Ok(()),
        (Some(sent), Some(body)) => Err(mismatch(format!(
            "the {header} header {sent:?} is not the body's {body:?}"
        ))),
        (Some(sent), None) => Err(mismatch(format!(
            "the {header} header {sent:?} names what the body does not"
        ))),
    }
}

/// An `Mcp-Param-*` header against the argument it mirrors.
fn compare_argument(
    request: &HttpRequest<'_>,
    arguments: Option<&Value>,
    argument: &HeaderArgument,
    required: bool,
) -> Result<(), Refusal> {
    let value = arguments
        .and_then(|arguments| {
            (argument.path.iter()).try_fold(arguments, |value, step| value.get(step))
        })
        .filter(|value| !value.is_null());
    let header = argument.header.as_str();
    let sent = decoded(request, header)?;
    let agrees = match (&sent, value) {
        (None, None) => return Ok(()),
        (None, Some(_)) if required => return Err(missing(header)),
        (None, Some(_)) => return Ok(()),
        (Some(_), None) => false,
        (Some(sent), Some(Value::String(body))) => sent == body,
        (Some(sent), Some(Value::Bool(body))) => sent == if *body { "true" } else { "false" },
        // Integers compare numerically (`42.0` is `42`), exactly as far as f64 goes:
        // MCP keeps mirrored integers within ±(2^53−1).
        (Some(sent), Some(Value::Number(body))) => {
            let sent = sent.parse::<f64>().ok().filter(|n| n.is_finite());
            body.as_i64().is_some_and(|body| sent == Some(body as f64))
        }
        (Some(_), Some(_)) => false,
    };
    if agrees {
        return Ok(());
    }
    Err(mismatch(format!(
        "the {header} header {:?} is not the body's argument {} ({})",
        sent.unwrap_or_default(),
        argument.path.join("."),
        value.map_or("absent".to_owned(), Value::to_string)
    )))
}

/// A mirrored header's value: `=?base64?…?=` decoded (UTF-8), anything else as sent.
/// Control characters, and a value that does not decode, are a mismatch.
fn decoded(request: &HttpRequest<'_>, header: &str) -> Result<Option<String>, Refusal> {
    let Some(value) = text(request, header)? else {
        return Ok(None);
    };
    let value = match value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| mismatch(format!("the {header} header is not valid base64 UTF-8")))?,
        None => value,
    };
    if value.chars().any(char::is_control) {
        return Err(mismatch(format!(
            "the {header} header has a control character"
        )));
    }
    Ok(Some(value))
}

/// A mirrored header as text. Sent twice, it is refused: a reader may take either.
fn text(request: &HttpRequest<'_>, header: &str) -> Result<Option<String>, Refusal> {
    if request.headers.iter().filter(|(n, _)| n == header).count() > 1 {
        return Err(mismatch(format!(
            "the {header} header is sent more than once"
        )));
    }
    request
        .text(header)
        .map(|value| value.map(str::to_owned))
        .map_err(|_| mismatch(format!("the {header} header is not UTF-8")))
}

fn has_mirrored(request: &HttpRequest<'_>) -> bool {
    request
        .headers
        .iter()
        .any(|(name, _)| name == METHOD || name == NAME || name.starts_with(PARAM_PREFIX))
}

fn missing(header: &str) -> Refusal {
    mismatch(format!(
        "the {header} header is missing; MCP 2026-07-28 requires it to mirror the body"
    ))
}

fn mismatch(why: String) -> Refusal {
    Refusal::because(Reason::HeaderMismatch, why)
}
