//! MCP's method table: which action each JSON-RPC method is, and what it names.

use serde_json::{Map, Value};

use crate::action::Action;
use crate::call::{Call, Malformed, ResourceKind, RpcMessage};
use crate::jsonrpc::{invalid, refuse_folded, Message};
use crate::reason::Reason;

/// What a method acts on.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The server itself.
    Server,
    /// A named thing the server offers; the name is in this params field.
    Named(ResourceKind, &'static str),
    /// The server, for a method that names a resource or a task in this params field
    /// (`context.name`).
    ServerNaming(&'static str),
}

/// Every method a client sends in either protocol era (2025-03-26 to 2025-11-25 with
/// `initialize` and sessions; 2026-07-28, stateless, with `server/discover`). Methods
/// not here are `notification` (under `notifications/`) or `rpc`, on the server.
const METHODS: &[(&str, Action, Target)] = &[
    (
        "tools/call",
        Action::ToolsCall,
        Target::Named(ResourceKind::Tool, "name"),
    ),
    (
        "prompts/get",
        Action::PromptsGet,
        Target::Named(ResourceKind::Prompt, "name"),
    ),
    (
        "resources/read",
        Action::ResourcesRead,
        Target::Named(ResourceKind::McpResource, "uri"),
    ),
    ("initialize", Action::Initialize, Target::Server),
    ("ping", Action::Ping, Target::Server),
    ("server/discover", Action::ServerDiscover, Target::Server),
    (
        "subscriptions/listen",
        Action::SubscriptionsListen,
        Target::Server,
    ),
    ("logging/setLevel", Action::LoggingSetLevel, Target::Server),
    (
        "resources/subscribe",
        Action::ResourcesSubscribe,
        Target::ServerNaming("uri"),
    ),
    (
        "resources/unsubscribe",
        Action::ResourcesUnsubscribe,
        Target::ServerNaming("uri"),
    ),
    (
        "completion/complete",
        Action::CompletionComplete,
        Target::Server,
    ),
    (
        "tasks/get",
        Action::TasksGet,
        Target::ServerNaming("taskId"),
    ),
    (
        "tasks/result",
        Action::TasksResult,
        Target::ServerNaming("taskId"),
    ),
    ("tasks/list", Action::TasksList, Target::Server),
    (
        "tasks/cancel",
        Action::TasksCancel,
        Target::ServerNaming("taskId"),
    ),
    (
        "tasks/update",
        Action::TasksUpdate,
        Target::ServerNaming("taskId"),
    ),
    ("tools/list", Action::ToolsList, Target::Server),
    ("prompts/list", Action::PromptsList, Target::Server),
    ("resources/list", Action::ResourcesList, Target::Server),
    (
        "resources/templates/list",
        Action::ResourceTemplatesList,
        Target::Server,
    ),
];

fn lookup(method: &str) -> (Action, Target) {
    match METHODS.iter().find(|(name, ..)| *name == method) {
        Some(&(_, action, target)) => (action, target),
        None if method.starts_with("notifications/") => (Action::Notification, Target::Server),
        None => (Action::Rpc, Target::Server),
    }
}

/// The call one JSON-RPC message makes on an MCP server.
pub fn call(message: Message, server: &str) -> Result<Call, Malformed> {
    let (method, id, params) = match message {
        Message::Response { id } => {
            let rpc = RpcMessage {
                method: "response".into(),
                id,
                protocol_version: None,
            };
            return Ok(Call::on_server(Action::Response, server, Some(rpc)));
        }
        Message::Request { method, id, params } => (method, id, params),
    };
    let (action, target) = lookup(&method);
    let protocol_version = meta_version(&params, &id)?;
    let rpc = RpcMessage {
        method,
        id,
        protocol_version,
    };
    match target {
        Target::Server => Ok(Call::on_server(action, server, Some(rpc))),
        Target::Named(kind, field) => named(action, kind, field, params, server, rpc),
        Target::ServerNaming(field) => {
            let named = named(
                action,
                ResourceKind::McpResource,
                field,
                params,
                server,
                rpc,
            )?;
            Ok(Call {
                name: named.name,
                ..Call::on_server(action, server, named.rpc)
            })
        }
    }
}

/// Where 2026-07-28 carries each request's protocol version.
const META: &str = "_meta";
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

/// The protocol version the request's `_meta` declares. A key that folds to either
/// name is refused: an upstream matching keys ignoring case would read another version.
fn meta_version(
    params: &Map<String, Value>,
    id: &Option<Value>,
) -> Result<Option<String>, Malformed> {
    refuse_folded(params, [META].into_iter(), id)?;
    let meta = match params.get(META) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(meta)) => meta,
        Some(_) => return Err(invalid(Reason::InvalidParams, id.clone())),
    };
    refuse_folded(meta, [META_VERSION].into_iter(), id)?;
    match meta.get(META_VERSION) {
        None => Ok(None),
        Some(Value::String(version)) => Ok(Some(version.clone())),
        Some(_) => Err(invalid(Reason::InvalidParams, id.clone())),
    }
}

/// A call on a named thing the server offers: a tool, a prompt or a resource.
fn named(
    action: Action,
    resource_kind: ResourceKind,
    name_field: &str,
    mut params: Map<String, Value>,
    server: &str,
    rpc: RpcMessage,
) -> Result<Call, Malformed> {
    refuse_folded(&params, [name_field, "arguments"].into_iter(), &rpc.id)?;
    let Some(Value::String(name)) = params.remove(name_field) else {
        return Err(invalid(Reason::InvalidParams, rpc.id));
    };
    let acceptable = match resource_kind {
        ResourceKind::McpResource => acceptable_uri(&name),
        _ => acceptable_name(&name),
    };
    if !acceptable {
        return Err(invalid(Reason::InvalidName, rpc.id));
    }
    let arguments = match params.remove("arguments") {
        None | Some(Value::Null) => None,
        Some(args @ Value::Object(_)) => Some(args),
        Some(_) => return Err(invalid(Reason::InvalidParams, rpc.id)),
    };
    Ok(Call {
        action,
        resource_kind,
        resource_id: format!("{server}/{name}"),
        name: Some(name),
        arguments,
        rpc: Some(rpc),
        a2a: None,
    })
}

/// A body-less request on the MCP endpoint, authorized on the server: GET opens the
/// server's stream, DELETE ends the session.
pub fn endpoint_call(http_method: &str, server: &str) -> Option<Call> {
    let action = match http_method {
        "GET" => Action::Stream,
        "DELETE" => Action::Terminate,
        _ => return None,
    };
    Some(Call::on_server(action, server, None))
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
