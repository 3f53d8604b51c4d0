//! The decision record: one typed record per decision, one JSON line in Envoy's access log.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Enforcement;
use crate::reason::Reason;

/// Everything needed to reconstruct a decision later, on every path: a normal
/// decision, a refusal before identity is known, a revocation control request, and
/// toolgate's own failure. Every field is on every line; an absent fact is `null`
/// (an empty list for `policies` and `errors`). Lines written by older versions
/// read back with the missing fields as their defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DecisionRecord {
    pub decision_id: String,
    pub timestamp: String,
    pub request_id: Option<String>,
    pub principal: Option<String>,
    pub trust_domain: Option<String>,
    pub authenticated: bool,
    pub insecure_identity: bool,
    /// The trusted hop that vouched for the principal through `x-forwarded-client-cert`.
    pub via: Option<String>,
    /// `null` only when toolgate failed before it could read the request.
    pub server: Option<String>,
    pub http_method: Option<String>,
    pub path: Option<String>,
    /// The Cedar action id (`revoke` for a revocation control request).
    pub action: Option<String>,
    pub resource: Option<String>,
    pub rpc_method: Option<String>,
    pub rpc_id: Option<Value>,
    /// The MCP protocol version the request speaks (its `_meta`, else its header).
    pub protocol_version: Option<String>,
    /// Calls in the request: more than one for a JSON-RPC batch, none when it was
    /// refused before its calls were read.
    pub batch_size: usize,
    pub intent: Option<String>,
    pub task: Option<String>,
    pub session: Option<String>,
    /// The MCP session (`Mcp-Session-Id`) the request presented, or that its answer opened.
    pub mcp_session: Option<McpSessionRecord>,
    /// On an A2A route: the method, binding, version and the task the call names
    /// (and the tasks its answer created).
    pub a2a: Option<A2aRecord>,
    pub decision: Decision,
    /// False when the decision was not applied: shadow mode, or a fail-open route.
    pub enforced: bool,
    pub mode: Enforcement,
    pub route: Option<String>,
    pub reason: Option<Reason>,
    /// The determining policies: the permits that allowed, or the forbids that denied.
    pub policies: Vec<String>,
    pub errors: Vec<String>,
    /// `null` only when toolgate was not configured.
    pub policy_version: Option<String>,
    pub eval_us: u64,
    pub arguments_digest: Option<String>,
    /// For approval-gated tools: approved (by whom), or what was missing.
    pub approval: Option<ApprovalRecord>,
    /// The verified credential, when credentials are configured and one was presented.
    pub token: Option<TokenRecord>,
    /// Raw arguments, only when the configuration asks for them.
    pub arguments: Option<Value>,
    /// The workload's live risk, when the risk feed is configured.
    pub risk: Option<RiskRecord>,
    /// Seconds until a rate-limited call can succeed, as sent in `Retry-After`.
    pub retry_after: Option<u64>,
    /// What a revocation control request revoked.
    pub revoked: Option<Vec<Revoked>>,
    /// The Cedar request of the deciding call and Cedar's answer to it: what
    /// `toolgate replay` re-evaluates. `null` when the request was refused before
    /// policy evaluation (identity, malformed input, ...).
    pub cedar: Option<CedarRecord>,
    /// The status of the response to a forwarded request (the upstream's, or Envoy's
    /// own when it could not reach it); `null` when toolgate answered itself.
    pub upstream_status: Option<u32>,
    /// What the result detectors found in the answer and did about it, when `results`
    /// is configured and the request was a `tools/call`, `resources/read` or `prompts/get`.
    pub response: Option<ResponseRecord>,
    /// What list filtering did to the answer of a `tools/list`, `prompts/list`,
    /// `resources/list` or `resources/templates/list` (`docs/lists.md`).
    pub list: Option<ListRecord>,
    /// For a `tools/call`: where the tool's definition stands (`pinned`, `changed`,
    /// `unpinned`, `unseen`), the catalog's pinned digest and the digest a list showed
    /// (`docs/pinning.md`).
    pub tool_definition: Option<crate::definition::Definition>,
}

/// An A2A call, for the record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct A2aRecord {
    /// As the request spelled it: `SendMessage`, `message/send`, `POST /message:send`.
    pub method: String,
    /// `jsonrpc`, `http_json` or `agent_card`.
    pub binding: String,
    /// The `A2A-Version` header, when sent.
    pub version: Option<String>,
    /// The task the call names (a task method's, or the one its message continues), or
    /// the task it was refused for (possibly one its message only refers to).
    pub task_id: Option<String>,
    /// Where that task stood: `owner`, `other`, `unknown`.
    pub task_binding: Option<String>,
    /// Tasks the answer created, now bound to this principal.
    pub tasks_bound: Vec<String>,
}

/// One filtered list result: what was kept, what was hidden and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListRecord {
    /// `tools/list`, `prompts/list`, `resources/list` or `resources/templates/list`.
    pub method: String,
    /// `filter` or `conditions`.
    pub mode: Option<crate::config::ListMode>,
    /// Items the server sent.
    pub items: usize,
    /// Items left in the list (in shadow mode: that would have been).
    pub listed: usize,
    /// Items taken out (in shadow mode: that would have been), and why.
    pub hidden: Vec<HiddenItem>,
    /// Listed items that carry conditions.
    pub conditions: usize,
    /// Shadow mode: nothing was changed.
    pub shadow: bool,
    /// Filtering itself was refused (identity, revocation, toolgate's own failure):
    /// every item was hidden, for this reason.
    pub refused: Option<Reason>,
    /// The answer carried no list result (an error, or not JSON-RPC).
    pub unfiltered: bool,
    /// The MCP `cacheScope` set on the result (`private` for 2026-07-28 and later).
    pub cache_scope: Option<String>,
    pub errors: Vec<String>,
    /// Time spent reading and filtering the answer, all chunks together.
    pub filter_us: u64,
}

/// An item a list left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HiddenItem {
    /// Its name (a URI or URI template for resources).
    pub name: String,
    /// The refusal every call to it would get.
    pub reason: Reason,
    /// The forbids that hold, or the permits whose conditions no arguments satisfy.
    pub policies: Vec<String>,
}

/// The response side of a decision: what was read of the answer, what matched
/// (never the matched text), and what was done.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResponseRecord {
    /// `json`, `sse` or `other`, from the answer's content type.
    pub framing: Option<crate::response::Framing>,
    /// Bytes of the upstream's body read.
    pub bytes: u64,
    /// JSON-RPC messages (or SSE events) inspected.
    pub messages: u64,
    /// Each detector that matched: its name, tag, effect and how many times.
    pub detections: Vec<Detection>,
    /// What was done: `passed`, `recorded`, `redacted` or `refused`.
    pub effect: ResultEffect,
    /// False in shadow mode: `effect` is what would have been done.
    pub enforced: bool,
    /// Tags added to the agent's session history.
    pub recorded_tags: Vec<String>,
    /// Why the answer was refused (`result_refused`, `result_too_large`, ...).
    pub reason: Option<Reason>,
    /// The body (or one SSE event) was larger than `results.max_buffer_bytes`.
    pub over_limit: bool,
    pub errors: Vec<String>,
    /// Time spent in the detectors and framing, all chunks together.
    pub inspect_us: u64,
}

/// One detector's matches in one answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detection {
    pub detector: String,
    pub tag: String,
    pub effect: crate::config::Effect,
    pub count: u64,
}

/// What toolgate did with an answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultEffect {
    /// Sent on unchanged; nothing recorded.
    #[default]
    Passed,
    /// Sent on unchanged; tags recorded in the session.
    Recorded,
    /// Sent on with matches replaced.
    Redacted,
    /// Not sent on: the agent got an error.
    Refused,
}

/// An MCP session id and what toolgate knows of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpSessionRecord {
    pub id: String,
    pub binding: Binding,
}

/// Where an MCP session id stands with the request's principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Binding {
    /// The upstream's answer minted it: now bound to the principal.
    Opened,
    /// Bound to the principal, who presented it.
    Owner,
    /// Bound to another principal: refused.
    Other,
    /// Not bound (never seen, or expired): passed through, the upstream decides.
    Unknown,
    /// The owner's DELETE was accepted: the binding is gone.
    Ended,
}

/// The decision as applied or, in shadow mode and on fail-open routes, as it would be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    #[default]
    Deny,
}

impl Decision {
    /// The word the log and the CLI use: `allow` or `deny` (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

/// One Cedar request exactly as evaluated, in Cedar's JSON forms. The context
/// leaves out `arguments` unless `log_arguments` is set (`arguments_digest` stands in).
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct CedarRecord {
    pub principal: Value,
    pub action: Value,
    pub resource: Value,
    pub context: Value,
    /// Cedar's decision for this request alone. It can differ from the record's
    /// `decision` (an approval or a delegated actor was missing).
    pub decision: Decision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Approved,
    MissingOrMismatched,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub status: ApprovalStatus,
    pub approver: Option<String>,
    /// What to approve (agent, server, tool, args_digest), when it was missing or mismatched.
    pub approve: Option<Value>,
}

/// The risk signal a decision saw, and how old it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskRecord {
    pub score: i64,
    pub flags: Vec<String>,
    pub stale: bool,
    /// Seconds since the feed was fetched; `null` when it never was.
    pub age_seconds: Option<i64>,
}

/// The claims a decision relied on (never the token itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub issuer: String,
    pub subject: String,
    pub audience: Vec<String>,
    pub scopes: Vec<String>,
    pub task: Option<String>,
    pub jti: Option<String>,
    pub ttl_seconds: i64,
    pub expires_at: i64,
    pub delegation: Vec<String>,
}

/// One revoked task or token id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Revoked {
    Task(String),
    Jti(String),
}

/// Bytes reserved for a decision line before it is written.
const LINE_CAPACITY: usize = 2048;

impl DecisionRecord {
    /// The access-log line. Serializing strings, numbers and JSON values cannot fail;
    /// should it, the line says so rather than vanishing.
    pub fn to_json(&self) -> String {
        // A line is about 1.5 to 2 KiB: one allocation, not four reallocations from 128 bytes.
        let mut line = Vec::with_capacity(LINE_CAPACITY);
        let written = serde_json::to_writer(&mut line, self)
            .map_err(|e| e.to_string())
            .and_then(|()| String::from_utf8(line).map_err(|e| e.to_string()));
        written.unwrap_or_else(|e| {
            format!(
                r#"{{"decision_id":{:?},"decision":"deny","errors":["the record could not be serialized: {e}"]}}"#,
                self.decision_id
            )
        })
    }

    /// A record's field names, in order, as written on every line.
    pub fn field_names() -> Vec<String> {
        match serde_json::to_value(Self::default()) {
            Ok(Value::Object(fields)) => fields.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }
}
