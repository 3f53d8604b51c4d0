//! A2A (agent-to-agent): JSON-RPC methods of both generations, HTTP+JSON routes and the agent card, as calls on the remote agent.
//!
//! Both method-name generations (v1.0 `SendMessage`, v0.3 `message/send`) map to the
//! same action; names are matched exactly, so a case variant is an unknown method,
//! refused like any other. The remote agent is the call's resource (a `Server`); what
//! the request says (its message summarized, the task it names, its A2A headers) goes
//! into `context.a2a` (see [`context`]).

use cedar_policy::EntityUid;
use serde_json::{Map, Value};

use crate::action::Action;
pub use crate::call::{A2aCall, Binding, MessageSummary};
use crate::call::{Call, Malformed, RpcMessage};
use crate::cedar_value::{CedarValue, Pair};
use crate::config::A2a;
use crate::http::HttpRequest;
use crate::jsonrpc::{self, invalid, refuse_folded, Message};
use crate::reason::Reason;
use crate::{json, mcp};

/// The request header with the A2A version the client speaks (v0.3 clients send none).
pub const VERSION_HEADER: &str = "a2a-version";
/// The request header with the extensions the client asks for, comma-separated.
pub const EXTENSIONS_HEADER: &str = "a2a-extensions";

/// Longest task, context or message id accepted (a UUID is 36).
pub const MAX_ID_BYTES: usize = 256;

/// Where a method's params carry what it acts on.
#[derive(Debug, Clone, Copy)]
enum Params {
    /// Nothing toolgate reads.
    None,
    /// A `SendMessageRequest`: `message`.
    Message,
    /// The task id, in this field.
    Task(&'static str),
}

/// Every JSON-RPC method of A2A v1.0 and v0.3. Not here: refused (`a2a_unknown_method`).
const METHODS: &[(&str, Action, Params)] = &[
    ("SendMessage", Action::A2aSendMessage, Params::Message),
    ("message/send", Action::A2aSendMessage, Params::Message),
    (
        "SendStreamingMessage",
        Action::A2aSendStreamingMessage,
        Params::Message,
    ),
    (
        "message/stream",
        Action::A2aSendStreamingMessage,
        Params::Message,
    ),
    ("GetTask", Action::A2aGetTask, Params::Task("id")),
    ("tasks/get", Action::A2aGetTask, Params::Task("id")),
    ("ListTasks", Action::A2aListTasks, Params::None),
    ("CancelTask", Action::A2aCancelTask, Params::Task("id")),
    ("tasks/cancel", Action::A2aCancelTask, Params::Task("id")),
    (
        "SubscribeToTask",
        Action::A2aSubscribeToTask,
        Params::Task("id"),
    ),
    (
        "tasks/resubscribe",
        Action::A2aSubscribeToTask,
        Params::Task("id"),
    ),
    (
        "CreateTaskPushNotificationConfig",
        Action::A2aCreateTaskPushNotificationConfig,
        Params::Task("taskId"),
    ),
    (
        "tasks/pushNotificationConfig/set",
        Action::A2aCreateTaskPushNotificationConfig,
        Params::Task("taskId"),
    ),
    (
        "GetTaskPushNotificationConfig",
        Action::A2aGetTaskPushNotificationConfig,
        Params::Task("taskId"),
    ),
    (
        "tasks/pushNotificationConfig/get",
        Action::A2aGetTaskPushNotificationConfig,
        Params::Task("id"),
    ),
    (
        "ListTaskPushNotificationConfigs",
        Action::A2aListTaskPushNotificationConfigs,
        Params::Task("taskId"),
    ),
    (
        "tasks/pushNotificationConfig/list",
        Action::A2aListTaskPushNotificationConfigs,
        Params::Task("id"),
    ),
    (
        "DeleteTaskPushNotificationConfig",
        Action::A2aDeleteTaskPushNotificationConfig,
        Params::Task("taskId"),
    ),
    (
        "tasks/pushNotificationConfig/delete",
        Action::A2aDeleteTaskPushNotificationConfig,
        Params::Task("id"),
    ),
    (
        "GetExtendedAgentCard",
        Action::A2aGetExtendedAgentCard,
        Params::None,
    ),
    (
        "agent/getAuthenticatedExtendedCard",
        Action::A2aGetExtendedAgentCard,
        Params::None,
    ),
];

/// The A2A part of a route, if the path is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    JsonRpc,
    /// The path past the configured prefix (starting with `/`).
    HttpJson(&'a str),
    AgentCard,
}

/// The A2A route `path` is on, if any.
pub fn route<'a>(config: &A2a, path: &'a str) -> Option<Route<'a>> {
    if config.jsonrpc_paths.iter().any(|p| p == path) {
        return Some(Route::JsonRpc);
    }
    if config.agent_card_paths.iter().any(|p| p == path) {
        return Some(Route::AgentCard);
    }
    config.http_json_prefixes.iter().find_map(|prefix| {
        let rest = if prefix == "/" {
            path
        } else {
            path.strip_prefix(prefix.as_str())?
        };
        rest.starts_with('/').then_some(Route::HttpJson(rest))
    })
}

/// The call an A2A request makes on the agent `server`.
pub fn classify(
    request: &HttpRequest<'_>,
    route: Route<'_>,
    server: &str,
) -> Result<Call, Malformed> {
    let rpc = route == Route::JsonRpc;
    let refuse = |reason| Malformed {
        reason,
        rpc_id: None,
        rpc,
        error: None,
    };
    let (version, extensions) =
        headers(request).map_err(|e| refuse(Reason::InvalidHeader).because(e))?;
    let method = request.method();
    match route {
        Route::AgentCard => match method {
            "GET" | "HEAD" => {
                let a2a = A2aCall {
                    binding: Binding::AgentCard,
                    method: format!("GET {}", request.path()),
                    version,
                    extensions,
                    message: None,
                    task_id: None,
                };
                Ok(call(Action::A2aGetAgentCard, server, a2a, None))
            }
            _ => Err(refuse(Reason::A2aUnknownMethod)
                .because(format!("{method} on the agent card; only GET reads it"))),
        },
        Route::JsonRpc => {
            if method != "POST" {
                return Err(refuse(Reason::A2aUnknownMethod)
                    .because(format!("{method} on an A2A JSON-RPC endpoint; only POST")));
            }
            let value =
                json::parse(request.body).map_err(|e| refuse(e.reason()).because(e.to_string()))?;
            if value.is_array() {
                return Err(refuse(Reason::BatchRejected).because("A2A has no JSON-RPC batches"));
            }
            let message = match jsonrpc::parse(value, crate::config::BatchMode::Reject)? {
                jsonrpc::Body::One(message) => message,
                jsonrpc::Body::Batch(_) => return Err(refuse(Reason::BatchRejected)),
            };
            jsonrpc_call(message, server, version, extensions)
        }
        Route::HttpJson(rest) => http_json_call(request, rest, server, version, extensions),
    }
}

fn call(action: Action, server: &str, a2a: A2aCall, rpc: Option<RpcMessage>) -> Call {
    Call {
        name: a2a.task_id.clone(),
        a2a: Some(Box::new(a2a)),
        ..Call::on_server(action, server, rpc)
    }
}

/// One JSON-RPC request: its method must be in [`METHODS`], exactly.
fn jsonrpc_call(
    message: Message,
    server: &str,
    version: Option<String>,
    extensions: Vec<String>,
) -> Result<Call, Malformed> {
    let Message::Request { method, id, params } = message else {
        return Err(invalid(Reason::A2aUnknownMethod, None)
            .because("a JSON-RPC response sent to an A2A agent"));
    };
    let Some(&(_, action, reads)) = METHODS.iter().find(|(name, ..)| *name == method) else {
        let error =
            format!("A2A method {method:?} is not one toolgate knows (names are matched exactly)");
        return Err(invalid(Reason::A2aUnknownMethod, id).because(error));
    };
    let (message_summary, task_id) = read_params(&params, reads, &id)?;
    let a2a = A2aCall {
        binding: Binding::JsonRpc,
        method: method.clone(),
        version,
        extensions,
        message: message_summary,
        task_id,
    };
    let rpc = RpcMessage {
        method,
        id,
        protocol_version: None,
    };
    Ok(call(action, server, a2a, Some(rpc)))
}

type Read = (Option<MessageSummary>, Option<String>);

fn read_params(
    params: &Map<String, Value>,
    reads: Params,
    id: &Option<Value>,
) -> Result<Read, Malformed> {
    let bad = |error: String| invalid(Reason::InvalidParams, id.clone()).because(error);
    match reads {
        Params::None => Ok((None, None)),
        Params::Task(field) => {
            refuse_folded(params, [field].into_iter(), id)?;
            match params.get(field) {
                Some(Value::String(task)) if acceptable_id(task) => Ok((None, Some(task.clone()))),
                Some(Value::String(_)) => {
                    Err(bad(format!("params.{field} is not an acceptable task id")))
                }
                _ => Err(bad(format!("params.{field} must be the task id, a string"))),
            }
        }
        Params::Message => {
            refuse_folded(params, ["message"].into_iter(), id)?;
            let Some(Value::Object(message)) = params.get("message") else {
                return Err(bad("params.message must be an object".into()));
            };
            summarize(message, id).map(|m| (Some(m), None))
        }
    }
}

/// An id (task, context, message) toolgate compares byte for byte: 1 to 256 bytes,
/// none of them whitespace, control or invisible formatting characters.
pub fn acceptable_id(id: &str) -> bool {
    id.len() <= MAX_ID_BYTES && mcp::acceptable_uri(id)
}

/// The members of a message toolgate reads.
const MESSAGE_MEMBERS: [&str; 6] = [
    "role",
    "parts",
    "messageId",
    "contextId",
    "taskId",
    "referenceTaskIds",
];

/// The content members of a part; a part has exactly one.
const PART_CONTENT: [&str; 5] = ["text", "file", "raw", "url", "data"];

/// A message, summarized: its role, its parts by kind and size, the ids it names.
pub fn summarize(
    message: &Map<String, Value>,
    id: &Option<Value>,
) -> Result<MessageSummary, Malformed> {
    let bad = |error: String| invalid(Reason::InvalidParams, id.clone()).because(error);
    refuse_folded(message, MESSAGE_MEMBERS.into_iter(), id)?;
    let role = match message.get("role").and_then(Value::as_str) {
        Some("user" | "ROLE_USER") => "user",
        Some("agent" | "ROLE_AGENT") => "agent",
        _ => {
            return Err(bad(
                "message.role must be user or agent (ROLE_USER, ROLE_AGENT)".into(),
            ))
        }
    };
    let optional_id = |field: &str| match message.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if acceptable_id(s) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("message.{field} is not an acceptable id"))),
    };
    let mut summary = MessageSummary {
        role,
        message_id: optional_id("messageId")?,
        context_id: optional_id("contextId")?,
        task_id: optional_id("taskId")?,
        ..MessageSummary::default()
    };
    match message.get("referenceTaskIds") {
        None | Some(Value::Null) => {}
        Some(Value::Array(ids)) => {
            for task in ids {
                match task.as_str().filter(|t| acceptable_id(t)) {
                    Some(task) => summary.reference_task_ids.push(task.to_owned()),
                    None => {
                        return Err(bad("message.referenceTaskIds has an unacceptable id".into()))
                    }
                }
            }
        }
        Some(_) => return Err(bad("message.referenceTaskIds must be an array".into())),
    }
    let Some(Value::Array(parts)) = message.get("parts") else {
        return Err(bad("message.parts must be an array".into()));
    };
    for part in parts {
        let Value::Object(part) = part else {
            return Err(bad("each message part must be an object".into()));
        };
        add_part(&mut summary, part, id)?;
    }
    Ok(summary)
}

/// Counts one part. Its kind is its one content member (v1.0), which must agree with
/// its `kind` when it has one (v0.3): a part two readers could take for two kinds is refused.
fn add_part(
    summary: &mut MessageSummary,
    part: &Map<String, Value>,
    id: &Option<Value>,
) -> Result<(), Malformed> {
    let bad = |error: &str| invalid(Reason::InvalidParams, id.clone()).because(error.to_owned());
    refuse_folded(part, PART_CONTENT.into_iter().chain(["kind"]), id)?;
    let mut present = PART_CONTENT.into_iter().filter(|m| part.contains_key(*m));
    let (Some(content), None) = (present.next(), present.next()) else {
        return Err(bad(
            "a message part must have exactly one of text, file, raw, url, data",
        ));
    };
    let kind = match content {
        "text" => "text",
        "data" => "data",
        _ => "file",
    };
    match part.get("kind") {
        None => {}
        Some(Value::String(declared)) if declared == kind => {}
        Some(_) => return Err(bad("a message part's kind does not match its content")),
    }
    let value = part.get(content).unwrap_or(&Value::Null);
    let size = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    summary.parts += 1;
    match kind {
        "text" => {
            let Some(text) = value.as_str() else {
                return Err(bad("a text part's text must be a string"));
            };
            summary.text_parts += 1;
            summary.text_bytes = summary.text_bytes.saturating_add(size(text.len()));
        }
        "data" => {
            summary.data_parts += 1;
            let bytes = serde_json::to_string(value).map_or(0, |s| s.len());
            summary.data_bytes = summary.data_bytes.saturating_add(size(bytes));
        }
        _ => {
            summary.file_parts += 1;
            // Inline content: v1.0 `raw`, v0.3 `file.bytes` (both base64 as sent).
            let inline = match content {
                "raw" => value.as_str(),
                "file" => value.get("bytes").and_then(Value::as_str),
                _ => None,
            };
            let bytes = inline.map_or(0, str::len);
            summary.file_bytes = summary.file_bytes.saturating_add(size(bytes));
        }
    }
    Ok(())
}

/// The HTTP+JSON routes past the prefix (and an optional tenant or `v1` segment).
fn http_json_call(
    request: &HttpRequest<'_>,
    rest: &str,
    server: &str,
    version: Option<String>,
    extensions: Vec<String>,
) -> Result<Call, Malformed> {
    let method = request.method();
    let refuse = |reason, error: String| Malformed {
        reason,
        rpc_id: None,
        rpc: false,
        error: Some(error),
    };
    let segments: Vec<&str> = rest.split('/').skip(1).collect();
    let direct = http_route(method, &segments);
    let tenanted = match segments.split_first() {
        Some((tenant, rest)) if !tenant.is_empty() => http_route(method, rest),
        _ => None,
    };
    let (action, task_id) = match (direct, tenanted) {
        (Some(a), Some(b)) if a != b => {
            return Err(refuse(
                Reason::A2aUnknownMethod,
                format!("{method} {rest} reads as two A2A routes (with and without a tenant)"),
            ))
        }
        (Some(found), _) | (None, Some(found)) => found,
        (None, None) => {
            return Err(refuse(
                Reason::A2aUnknownMethod,
                format!("{method} {rest} is not an A2A HTTP+JSON route toolgate knows"),
            ))
        }
    };
    let task_id = match task_id {
        Some(task) if acceptable_id(task) && !task.contains(['%', ':']) => Some(task.to_owned()),
        Some(_) => {
            return Err(refuse(
                Reason::InvalidParams,
                "the task id in the path is not acceptable (no '%', ':', whitespace or control characters)".into(),
            ))
        }
        None => None,
    };
    let body = request.body;
    let value = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(json::parse(body).map_err(|e| refuse(e.reason(), e.to_string()))?)
    };
    let as_rest = |m: Malformed| Malformed { rpc: false, ..m };
    let message = match (action, &value) {
        (Action::A2aSendMessage | Action::A2aSendStreamingMessage, Some(Value::Object(body))) => {
            refuse_folded(body, ["message"].into_iter(), &None).map_err(as_rest)?;
            match body.get("message") {
                Some(Value::Object(message)) => Some(summarize(message, &None).map_err(as_rest)?),
                _ => {
                    return Err(refuse(
                        Reason::InvalidParams,
                        "the body's message must be an object".into(),
                    ))
                }
            }
        }
        (Action::A2aSendMessage | Action::A2aSendStreamingMessage, _) => {
            return Err(refuse(
                Reason::InvalidParams,
                "a message needs a JSON body with `message`".into(),
            ))
        }
        (_, Some(Value::Object(body))) => {
            // A body naming another task than the path could be read either way.
            refuse_folded(body, ["taskId"].into_iter(), &None).map_err(as_rest)?;
            match (body.get("taskId"), &task_id) {
                (None, _) => None,
                (Some(Value::String(named)), Some(task)) if named == task => None,
                _ => {
                    return Err(refuse(
                        Reason::InvalidParams,
                        "the body's taskId is not the path's task".into(),
                    ))
                }
            }
        }
        (_, _) => None,
    };
    let a2a = A2aCall {
        binding: Binding::HttpJson,
        method: format!("{method} {rest}"),
        version,
        extensions,
        message,
        task_id,
    };
    Ok(call(action, server, a2a, None))
}

/// The action and task id of an HTTP+JSON route (segments past the prefix and tenant).
fn http_route<'p>(method: &str, segments: &[&'p str]) -> Option<(Action, Option<&'p str>)> {
    let custom = |segment: &'p str, verb: &str| {
        segment
            .strip_suffix(verb)
            .and_then(|s| s.strip_suffix(':'))
            .filter(|task| !task.is_empty())
    };
    let found = match (method, segments) {
        ("POST", ["message:send"]) => (Action::A2aSendMessage, None),
        ("POST", ["message:stream"]) => (Action::A2aSendStreamingMessage, None),
        ("GET", ["tasks"]) => (Action::A2aListTasks, None),
        ("GET", ["extendedAgentCard"] | ["card"]) => (Action::A2aGetExtendedAgentCard, None),
        ("POST", ["tasks", segment]) if custom(segment, "cancel").is_some() => {
            (Action::A2aCancelTask, custom(segment, "cancel"))
        }
        ("GET" | "POST", ["tasks", segment]) if custom(segment, "subscribe").is_some() => {
            (Action::A2aSubscribeToTask, custom(segment, "subscribe"))
        }
        ("GET", ["tasks", task]) if !task.contains(':') => (Action::A2aGetTask, Some(*task)),
        ("POST", ["tasks", task, "pushNotificationConfigs"]) => {
            (Action::A2aCreateTaskPushNotificationConfig, Some(*task))
        }
        ("GET", ["tasks", task, "pushNotificationConfigs"]) => {
            (Action::A2aListTaskPushNotificationConfigs, Some(*task))
        }
        ("GET", ["tasks", task, "pushNotificationConfigs", config]) if !config.is_empty() => {
            (Action::A2aGetTaskPushNotificationConfig, Some(*task))
        }
        ("DELETE", ["tasks", task, "pushNotificationConfigs", config]) if !config.is_empty() => {
            (Action::A2aDeleteTaskPushNotificationConfig, Some(*task))
        }
        _ => return None,
    };
    match found {
        (_, Some("")) => None,
        found => Some(found),
    }
}

/// `A2A-Version` and `A2A-Extensions`. A repeated version, or one that is not
/// `<major>.<minor>`, is refused: the upstream may read another one. Repeated
/// extension headers are one list, as HTTP joins them.
fn headers(request: &HttpRequest<'_>) -> Result<(Option<String>, Vec<String>), String> {
    let mut versions = request.headers.iter().filter(|(n, _)| n == VERSION_HEADER);
    let version = match (versions.next(), versions.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => return Err(format!("more than one {VERSION_HEADER} header")),
        (Some((_, value)), None) => {
            let text = std::str::from_utf8(value).map(str::trim).unwrap_or("");
            let valid = text.split_once('.').is_some_and(|(major, minor)| {
                [major, minor]
                    .iter()
                    .all(|n| (1..=4).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()))
            });
            if !valid {
                return Err(format!(
                    "{VERSION_HEADER} must be <major>.<minor>, e.g. 1.0"
                ));
            }
            Some(text.to_owned())
        }
    };
    let mut extensions = Vec::new();
    for (_, value) in request
        .headers
        .iter()
        .filter(|(n, _)| n == EXTENSIONS_HEADER)
    {
        let text =
            std::str::from_utf8(value).map_err(|_| format!("{EXTENSIONS_HEADER} is not UTF-8"))?;
        for uri in text.split(',').map(str::trim) {
            if !mcp::acceptable_uri(uri) {
                return Err(format!(
                    "{EXTENSIONS_HEADER} has an empty or unacceptable URI"
                ));
            }
            if !extensions.iter().any(|e| e == uri) {
                extensions.push(uri.to_owned());
            }
        }
    }
    Ok((version, extensions))
}

/// Where the task a call names stands with the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStanding {
    pub id: String,
    /// The principal whose message created it, if toolgate bound it.
    pub owner: Option<String>,
    pub owned: bool,
}

/// `context.a2a`; `agent` makes an Agent uid of a principal.
pub fn context(
    a2a: &A2aCall,
    task: Option<&TaskStanding>,
    agent: &dyn Fn(&str) -> EntityUid,
) -> Pair {
    let string = |s: &str| CedarValue::string(s);
    let long = CedarValue::Long;
    let set = CedarValue::strings;
    let mut fields = vec![
        ("method".into(), string(&a2a.method)),
        ("binding".into(), string(a2a.binding.id())),
        ("extensions".into(), set(&a2a.extensions)),
    ];
    if let Some(version) = &a2a.version {
        fields.push(("version".into(), string(version)));
    }
    if let Some(m) = &a2a.message {
        let mut message = vec![
            ("role".into(), string(m.role)),
            ("parts".into(), long(m.parts)),
            ("text_parts".into(), long(m.text_parts)),
            ("file_parts".into(), long(m.file_parts)),
            ("data_parts".into(), long(m.data_parts)),
            ("text_bytes".into(), long(m.text_bytes)),
            ("file_bytes".into(), long(m.file_bytes)),
            ("data_bytes".into(), long(m.data_bytes)),
            ("reference_task_ids".into(), set(&m.reference_task_ids)),
        ];
        let ids = [
            ("message_id", &m.message_id),
            ("context_id", &m.context_id),
            ("task_id", &m.task_id),
        ];
        message.extend(
            ids.into_iter()
                .filter_map(|(key, value)| value.as_deref().map(|v| (key.into(), string(v)))),
        );
        fields.push(("message".into(), CedarValue::Record(message)));
    }
    if let Some(task) = task {
        let mut standing = vec![
            ("id".into(), string(&task.id)),
            ("owned".into(), CedarValue::Bool(task.owned)),
        ];
        if let Some(owner) = &task.owner {
            standing.push(("owner".into(), CedarValue::Entity(agent(owner))));
        }
        fields.push(("task".into(), CedarValue::Record(standing)));
    }
    ("a2a".into(), CedarValue::Record(fields))
}

/// The record's `a2a` block; `task` is where the task the call names stood (for a
/// refused call, the task it was refused for).
pub fn record(a2a: &A2aCall, task: Option<&TaskStanding>) -> crate::record::A2aRecord {
    crate::record::A2aRecord {
        method: a2a.method.clone(),
        binding: a2a.binding.id().to_owned(),
        version: a2a.version.clone(),
        // The standing's task: the call's own, or the referenced task it was refused for.
        task_id: (task.map(|t| t.id.as_str()))
            .or_else(|| a2a.task())
            .map(str::to_owned),
        task_binding: task.map(|t| {
            match (t.owned, &t.owner) {
                (true, _) => "owner",
                (false, Some(_)) => "other",
                (false, None) => "unknown",
            }
            .to_owned()
        }),
        tasks_bound: Vec::new(),
    }
}
