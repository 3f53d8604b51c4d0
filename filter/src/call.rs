//! What is being called: each request becomes one or more calls, an action on a resource.

use serde_json::Value;

use crate::action::Action;

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
    pub action: Action,
    pub resource_kind: ResourceKind,
    /// The resource's id: `<server>/<name>` (or the server's own name for session calls).
    pub resource_id: String,
    /// The tool or prompt name, or resource URI, without the server prefix.
    pub name: Option<String>,
    pub arguments: Option<Value>,
    /// Set for JSON-RPC calls.
    pub rpc: Option<RpcMessage>,
    /// Set for A2A calls: what the request says (`context.a2a`).
    pub a2a: Option<Box<A2aCall>>,
}

impl Call {
    /// A call on the server itself: session set-up, discovery, notifications.
    pub fn on_server(action: Action, server: &str, rpc: Option<RpcMessage>) -> Self {
        Self {
            action,
            resource_kind: ResourceKind::Server,
            resource_id: server.to_owned(),
            name: None,
            arguments: None,
            rpc,
            a2a: None,
        }
    }

    /// The tool's id when this call runs a tool, for session history.
    pub fn tool(&self) -> Option<&str> {
        (self.action == Action::ToolsCall).then_some(self.resource_id.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RpcMessage {
    pub method: String,
    /// The request id; `None` for a notification.
    pub id: Option<Value>,
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]` (2026-07-28 on).
    pub protocol_version: Option<String>,
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

    pub fn into_vec(self) -> Vec<Call> {
        match self {
            Self::Rest(call) | Self::Rpc(call) => vec![call],
            Self::RpcBatch(calls) => calls,
        }
    }

    pub fn is_rpc(&self) -> bool {
        !matches!(self, Self::Rest(_))
    }

    pub fn is_batch(&self) -> bool {
        matches!(self, Self::RpcBatch(_))
    }
}

/// A request the filter refuses before policy, with what it could tell of the call.
#[derive(Debug, Clone, PartialEq)]
pub struct Malformed {
    pub reason: crate::reason::Reason,
    /// The JSON-RPC id, when one could be read, so the error can echo it.
    pub rpc_id: Option<Value>,
    /// True when the body was meant as JSON-RPC, so the error is shaped as one.
    pub rpc: bool,
    /// What exactly is wrong, for the record's `errors`.
    pub error: Option<String>,
}

impl Malformed {
    /// The same refusal, saying what exactly is wrong.
    pub fn because(self, error: impl Into<String>) -> Self {
        Self {
            error: Some(error.into()),
            ..self
        }
    }
}

/// How an A2A request reached the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    JsonRpc,
    HttpJson,
    AgentCard,
}

impl Binding {
    pub fn id(self) -> &'static str {
        match self {
            Self::JsonRpc => "jsonrpc",
            Self::HttpJson => "http_json",
            Self::AgentCard => "agent_card",
        }
    }
}

/// What an A2A request says, beyond its action.
#[derive(Debug, Clone, PartialEq)]
pub struct A2aCall {
    pub binding: Binding,
    /// As the request spelled it: `SendMessage`, `message/send`, `POST /message:send`.
    pub method: String,
    pub version: Option<String>,
    pub extensions: Vec<String>,
    pub message: Option<MessageSummary>,
    /// The task a task method names.
    pub task_id: Option<String>,
}

impl A2aCall {
    /// The task whose owner the call is checked against: the one a task method names,
    /// else the one the message continues.
    pub fn task(&self) -> Option<&str> {
        self.task_id
            .as_deref()
            .or_else(|| self.message.as_ref()?.task_id.as_deref())
    }

    /// Every task the call names, each of which must be the caller's (or shared with
    /// it): its task, and the tasks its message refers to.
    pub fn named_tasks(&self) -> Vec<&str> {
        let mut tasks: Vec<&str> = self.task().into_iter().collect();
        if let Some(message) = &self.message {
            for id in &message.reference_task_ids {
                if !tasks.contains(&id.as_str()) {
                    tasks.push(id);
                }
            }
        }
        tasks
    }
}

/// A message summarized for policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageSummary {
    /// `user` or `agent`.
    pub role: &'static str,
    pub parts: i64,
    pub text_parts: i64,
    pub file_parts: i64,
    pub data_parts: i64,
    pub text_bytes: i64,
    pub file_bytes: i64,
    pub data_bytes: i64,
    pub message_id: Option<String>,
    pub context_id: Option<String>,
    pub task_id: Option<String>,
    pub reference_task_ids: Vec<String>,
}
