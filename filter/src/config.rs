//! Plugin configuration: the JSON Envoy hands the filter, parsed and checked once.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::spiffe::SpiffeId;

/// Everything an operator can set, with the defaults a fresh deployment gets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// SPIFFE trust domains whose workloads may be principals. Empty trusts none.
    pub trust_domains: Vec<String>,
    /// The upstream's name when `server_from` is `config`, and the fallback otherwise.
    pub server: String,
    /// Where the upstream's name comes from.
    pub server_from: ServerSource,
    /// Request headers that carry the agent's declared intent.
    pub headers: IntentHeaders,
    /// SPIFFE IDs of proxies in front of toolgate whose `x-forwarded-client-cert` is
    /// honoured: when the connection's own certificate is one of these, the principal
    /// is the `URI` of the XFCC element that hop appended (the last one). From anyone
    /// else the header is ignored. Envoy must pass it through (`FORWARD_ONLY`).
    pub trusted_hops: Vec<String>,
    /// Short-lived credentials verified by Envoy's jwt_authn in front of toolgate.
    pub credentials: Option<Credentials>,
    /// Revocation of tasks and token ids at task end (off when absent).
    pub revocation: Option<Revocation>,
    /// Where approvals for `requires_approval` tools arrive.
    pub approvals: Approvals,
    /// Session history and call rates for `context.session` and `context.rate` (off when absent).
    pub history: Option<History>,
    /// The live risk feed for `context.risk` (off when absent).
    pub risk_feed: Option<RiskFeed>,
    /// MCP sessions bound to the agent that opened them (on by default; `null` turns it off).
    pub sessions: Option<Sessions>,
    /// Development only: take the SPIFFE ID from this request header when the
    /// connection has no verified peer certificate. Every such decision is logged insecure.
    pub dev_identity_header: Option<String>,
    /// Policies, schema and entities that replace or extend the embedded defaults.
    pub policies: PolicySource,
    /// Log tool arguments verbatim instead of only their digest.
    pub log_arguments: bool,
    /// Largest request body evaluated; larger bodies are refused with 413.
    pub max_body_bytes: usize,
    /// What to do with JSON-RPC batches.
    pub batches: BatchMode,
    /// Paths of MCP endpoints: POSTs there must be JSON-RPC, and body-less GET and
    /// DELETE are the MCP stream and session end.
    pub mcp_paths: Vec<String>,
    /// Per Envoy route name: enforcement mode and fail-open. Takes precedence over `servers`.
    pub routes: BTreeMap<String, RouteMode>,
    /// Per server name: enforcement mode and fail-open.
    pub servers: BTreeMap<String, RouteMode>,
    /// How a policy's refusal of a JSON-RPC request is answered.
    pub refusals: Refusals,
    /// Detectors on tool results, resource contents and prompt messages (off when absent).
    pub results: Option<Results>,
    /// List results (`tools/list`, ...) filtered by policy (`docs/lists.md`).
    pub lists: Lists,
    /// Agent-to-agent (A2A) endpoints and the task ownership kept for them
    /// (`docs/a2a.md`; off when absent).
    pub a2a: Option<A2a>,
}

/// Where A2A is spoken, and how long a task stays bound to the agent that started it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct A2a {
    /// Paths of A2A JSON-RPC endpoints: every POST there must be an A2A JSON-RPC request.
    pub jsonrpc_paths: Vec<String>,
    /// Path prefixes of A2A HTTP+JSON interfaces: `<prefix>/message:send`,
    /// `<prefix>/tasks/{id}`, ... (an optional tenant segment after the prefix).
    pub http_json_prefixes: Vec<String>,
    /// Paths where the agent card is served (a GET there is `a2a/GetAgentCard`).
    pub agent_card_paths: Vec<String>,
    /// Task ids bound to the agent whose message created them.
    pub tasks: A2aTasks,
    /// Largest answer to a message (JSON body, or one SSE event) held to find the
    /// task it creates; past it the answer is refused (fail closed).
    pub max_buffer_bytes: usize,
}

impl Default for A2a {
    fn default() -> Self {
        Self {
            jsonrpc_paths: Vec::new(),
            http_json_prefixes: Vec::new(),
            agent_card_paths: vec!["/.well-known/agent-card.json".into()],
            tasks: A2aTasks::default(),
            max_buffer_bytes: 1024 * 1024,
        }
    }
}

/// A2A task bindings, kept in Envoy's shared data (per Envoy process).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct A2aTasks {
    /// Bindings kept in total, split evenly over the shards; past that the oldest goes
    /// (its task is then unknown to toolgate, which refuses it to everyone).
    pub max_entries: usize,
    /// Shared-data keys the bindings are spread over, created up front.
    pub shards: usize,
    /// A binding lives this long after the task was created (or last answered).
    pub ttl_seconds: u64,
}

impl Default for A2aTasks {
    fn default() -> Self {
        Self {
            max_entries: 16_384,
            shards: 256,
            ttl_seconds: 86_400,
        }
    }
}

impl A2aTasks {
    /// Bindings one shard holds before the oldest goes.
    pub fn shard_capacity(&self) -> usize {
        self.max_entries / self.shards.max(1)
    }
}

/// How list results are filtered: globally, and per route or server (`RouteMode.lists`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lists {
    /// `conditions` unless set: lists show what the agent may use, with the conditions.
    pub mode: ListMode,
    /// Largest list answer (JSON body, or one SSE event) held to be filtered; past
    /// it the answer is refused (fail closed).
    pub max_buffer_bytes: usize,
}

impl Default for Lists {
    fn default() -> Self {
        Self {
            mode: ListMode::Conditions,
            max_buffer_bytes: 1024 * 1024,
        }
    }
}

/// What toolgate does with a list result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListMode {
    /// Passed through unread.
    Off,
    /// Items no call could use are taken out.
    Filter,
    /// As `filter`, and each kept item's conditions go in its `_meta["toolgate/conditions"]`.
    #[default]
    Conditions,
}

/// What toolgate looks for in the answers to `tools/call`, `resources/read` and
/// `prompts/get` before they reach the agent, and what it does about it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Results {
    /// The detectors, in order; absent means every built-in, tagged `secret`, recorded.
    pub detectors: Vec<Detector>,
    /// Largest JSON body (or single SSE event) held to be inspected.
    pub max_buffer_bytes: usize,
    /// What happens past `max_buffer_bytes`.
    pub over_limit: OverLimit,
}

impl Default for Results {
    fn default() -> Self {
        Self {
            detectors: Builtin::ALL
                .iter()
                .map(|&builtin| Detector {
                    name: String::new(),
                    builtin: Some(builtin),
                    regex: None,
                    tag: "secret".into(),
                    effect: Effect::Record,
                })
                .collect(),
            max_buffer_bytes: 1024 * 1024,
            over_limit: OverLimit::Refuse,
        }
    }
}

/// One detector: a built-in matcher or a configured regular expression, with its tag and effect.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detector {
    /// Named in the decision log and in redactions; a built-in's id when empty.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub builtin: Option<Builtin>,
    #[serde(default)]
    pub regex: Option<Pattern>,
    /// The session tag a match stands for (`context.session.tags`).
    #[serde(default = "secret_tag")]
    pub tag: String,
    pub effect: Effect,
}

fn secret_tag() -> String {
    "secret".into()
}

impl Detector {
    /// The name the log and redactions use.
    pub fn label(&self) -> &str {
        match (&self.builtin, self.name.is_empty()) {
            (Some(builtin), true) => builtin.id(),
            _ => &self.name,
        }
    }
}

pub use crate::detect::Builtin;

/// A configured regular expression, compiled once when the plugin is configured.
/// Byte-oriented, so a result that is not UTF-8 is matched too.
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::bytes::Regex);

/// Compiled patterns are bounded: one VM per worker holds them all.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        regex::bytes::RegexBuilder::new(&text)
            .size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map(Pattern)
            .map_err(|e| serde::de::Error::custom(format!("regex {text:?}: {e}")))
    }
}

/// What a detector's match does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The result passes; its tag goes into the agent's session history.
    Record,
    /// The match is replaced by `[redacted:<name>]` before the agent sees it.
    Redact,
    /// The result is dropped: the agent gets a JSON-RPC error for its request.
    Refuse,
}

/// Past `max_buffer_bytes`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverLimit {
    /// The result is dropped: the agent gets a JSON-RPC error (fail closed).
    #[default]
    Refuse,
    /// The result passes uninspected; the decision log says so.
    Pass,
}

/// How a policy's refusal of a JSON-RPC request reaches the agent. Refusals of the
/// transport or the caller (identity, bad body, size, encoding) keep their HTTP status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Refusals {
    /// The HTTP status of the JSON-RPC error.
    pub policy_status: PolicyStatus,
    /// How a refused `tools/call` is answered.
    pub tools_call: ToolsCallRefusal,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyStatus {
    /// 200, as JSON-RPC means it: every MCP SDK surfaces the error for that one
    /// call and the session carries on.
    #[default]
    Ok,
    /// The reason's own status (403; 429 for `rate_limited`). The Python `mcp` 1.x
    /// client ends its whole session on it.
    Reason,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolsCallRefusal {
    /// A JSON-RPC error: the agent's code sees it.
    #[default]
    Error,
    /// A tool result with `isError: true` and the reason as text: the model reads it
    /// and can adapt (ask for approval, change arguments).
    Result,
}

/// Where jwt_authn leaves the verified token, and what toolgate demands of it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Credentials {
    /// Refuse requests without a verified token (`token_missing`).
    pub required: bool,
    /// jwt_authn provider's `payload_in_metadata`.
    pub payload_metadata_key: String,
    /// jwt_authn provider's `failed_status_in_metadata`.
    pub failure_metadata_key: String,
    /// Every SPIFFE actor in the token's delegation chain must itself be permitted
    /// the call: acting on behalf of someone never widens access.
    pub actors_must_be_permitted: bool,
}

impl Default for Credentials {
    fn default() -> Self {
        Self {
            required: true,
            payload_metadata_key: "agent_token".into(),
            failure_metadata_key: "agent_token_failure".into(),
            actors_must_be_permitted: true,
        }
    }
}

/// The control endpoint that revokes tasks and token ids.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Revocation {
    /// Path the filter answers itself; never forwarded.
    pub path: String,
    /// SPIFFE IDs allowed to revoke.
    pub controllers: Vec<String>,
    /// How long a revocation lasts: the longest token TTL.
    pub ttl_seconds: u64,
}

impl Default for Revocation {
    fn default() -> Self {
        Self {
            path: "/.toolgate/revoke".into(),
            controllers: Vec::new(),
            ttl_seconds: 900,
        }
    }
}

/// Session history and call rates, kept in Envoy's shared data (per Envoy process).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct History {
    /// A session with no allowed call for this long is forgotten.
    pub idle_seconds: u64,
    /// Sessions and rate counters kept in total, split evenly over the shards.
    pub max_entries: usize,
    /// Shared-data keys the state is spread over; one agent's state lives in one.
    pub shards: usize,
    /// How often expired entries are swept.
    pub sweep_seconds: u64,
}

impl Default for History {
    fn default() -> Self {
        Self {
            idle_seconds: 1800,
            max_entries: 8192,
            shards: 64,
            sweep_seconds: 5,
        }
    }
}

impl History {
    /// Entries one shard holds before the oldest goes.
    pub fn shard_capacity(&self) -> usize {
        self.max_entries / self.shards.max(1)
    }
}

/// MCP sessions (`Mcp-Session-Id`) bound to their agent, kept in Envoy's shared data (per Envoy process).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sessions {
    /// A binding no request of its owner refreshed for this long is forgotten.
    pub idle_seconds: u64,
    /// Bindings kept in total, split evenly over the shards; past that the least
    /// recently used goes (its session is then unknown to toolgate).
    pub max_entries: usize,
    /// Shared-data keys the bindings are spread over, created up front.
    pub shards: usize,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            idle_seconds: 3600,
            max_entries: 16_384,
            shards: 1024,
        }
    }
}

impl Sessions {
    /// Bindings one shard holds before the least recently used goes.
    pub fn shard_capacity(&self) -> usize {
        self.max_entries / self.shards.max(1)
    }
}

/// A feed of workload risk scores and flags, polled from an Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskFeed {
    /// The Envoy cluster serving the feed.
    pub cluster: String,
    pub path: String,
    /// The `:authority` of the poll.
    pub authority: String,
    pub poll_seconds: u64,
    pub timeout_ms: u64,
    /// Data older than this counts as stale, as does a failed last poll.
    pub max_age_seconds: u64,
}

impl Default for RiskFeed {
    fn default() -> Self {
        Self {
            cluster: "risk_feed".into(),
            path: "/risk".into(),
            authority: "risk-feed".into(),
            poll_seconds: 5,
            timeout_ms: 2000,
            max_age_seconds: 30,
        }
    }
}

/// The approval token's header and jwt_authn provider metadata keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Approvals {
    pub header: String,
    pub payload_metadata_key: String,
    pub failure_metadata_key: String,
}

impl Default for Approvals {
    fn default() -> Self {
        Self {
            header: "x-approval-token".into(),
            payload_metadata_key: "approval".into(),
            failure_metadata_key: "approval_failure".into(),
        }
    }
}

/// How decisions are applied on a route or server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteMode {
    pub mode: Enforcement,
    /// Let requests through when toolgate cannot evaluate them (never on a policy
    /// denial). Every such request is logged with `enforced: false`.
    pub fail_open: bool,
    /// Overrides `lists.mode` on this route or server.
    pub lists: Option<ListMode>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// Denials block the call.
    #[default]
    Enforce,
    /// Denials are logged and annotated, and the call goes through.
    Shadow,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            trust_domains: Vec::new(),
            trusted_hops: Vec::new(),
            credentials: None,
            approvals: Approvals::default(),
            history: None,
            risk_feed: None,
            sessions: Some(Sessions::default()),
            revocation: None,
            server: "default".into(),
            server_from: ServerSource::Config,
            headers: IntentHeaders::default(),
            dev_identity_header: None,
            policies: PolicySource::default(),
            log_arguments: false,
            max_body_bytes: 1024 * 1024,
            batches: BatchMode::Reject,
            mcp_paths: vec!["/mcp".into()],
            routes: BTreeMap::new(),
            servers: BTreeMap::new(),
            refusals: Refusals::default(),
            results: None,
            lists: Lists::default(),
            a2a: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerSource {
    /// Always `server`.
    Config,
    /// The name of the Envoy route that matched.
    RouteName,
    /// The Envoy cluster the route sends to.
    ClusterName,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntentHeaders {
    pub intent: String,
    pub task: String,
    pub session: String,
}

impl Default for IntentHeaders {
    fn default() -> Self {
        Self {
            intent: "x-agent-intent".into(),
            task: "x-agent-task".into(),
            session: "x-agent-session".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySource {
    pub mode: PolicyMode,
    /// Cedar policy text.
    pub cedar: Option<String>,
    /// Cedar schema text: the whole schema. When given, no embedded schema fragment is used.
    pub schema: Option<String>,
    /// A Cedar schema fragment declaring `Toolgate::Arguments` (what `toolgate
    /// schema-from-mcp` writes). It replaces the embedded, empty `policies/arguments.cedarschema`,
    /// or is added to `schema` when that is given.
    pub arguments_schema: Option<String>,
    /// Entities in Cedar's JSON format.
    pub entities: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyMode {
    /// The embedded model and guardrails (and the configured features' rules) plus the configured policies and entities.
    #[default]
    Extend,
    /// Only the configured policies, schema and entities.
    Replace,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchMode {
    /// Refuse JSON-RPC batches (MCP 2025-06-18 removed them).
    #[default]
    Reject,
    /// Evaluate every element; one denial denies the whole batch.
    Evaluate,
}

impl Config {
    /// The mode for a request on this route and server: the route's entry, else the server's.
    pub fn mode_for(&self, route: Option<&str>, server: &str) -> RouteMode {
        route
            .and_then(|r| self.routes.get(r))
            .or_else(|| self.servers.get(server))
            .copied()
            .unwrap_or_default()
    }

    /// The list mode on this route and server: the route's or server's override, else `lists.mode`.
    pub fn list_mode(&self, route: Option<&str>, server: Option<&str>) -> ListMode {
        let entry = route
            .and_then(|r| self.routes.get(r))
            .or_else(|| server.and_then(|s| self.servers.get(s)));
        entry.and_then(|e| e.lists).unwrap_or(self.lists.mode)
    }

    /// True when some route or server filters lists (their answers are then read).
    pub fn lists_on(&self) -> bool {
        self.lists.mode != ListMode::Off
            || self
                .routes
                .values()
                .chain(self.servers.values())
                .any(|m| m.lists.is_some_and(|l| l != ListMode::Off))
    }

    /// True when decisions need the Envoy route name.
    pub fn needs_route_name(&self) -> bool {
        self.server_from == ServerSource::RouteName || !self.routes.is_empty()
    }

    /// Parses the plugin configuration; empty input means all defaults.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let config: Self = serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "plugin configuration, line {} column {}: {e}; fix the JSON in the wasm filter's `configuration` value",
                e.line(),
                e.column()
            )
        })?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        for domain in &self.trust_domains {
            if domain.is_empty() || domain.contains('/') || domain.contains(':') {
                return Err(format!(
                    "plugin configuration: trust_domains entry {domain:?} is not a trust domain; write a bare name like \"example.org\""
                ));
            }
        }
        if let Some(hop) = self
            .trusted_hops
            .iter()
            .find(|h| SpiffeId::parse(h).is_none())
        {
            return Err(format!(
                "plugin configuration: trusted_hops entry {hop:?} is not a SPIFFE ID; write the hop's full ID, e.g. \"spiffe://example.org/gateway\""
            ));
        }
        if self.server.is_empty() {
            return Err(
                "plugin configuration: `server` is empty; name the upstream, e.g. \"tools\"".into(),
            );
        }
        let headers = [
            &self.headers.intent,
            &self.headers.task,
            &self.headers.session,
        ];
        for name in headers.into_iter().chain(&self.dev_identity_header) {
            if name.is_empty() || name.bytes().any(|b| b.is_ascii_uppercase() || b == b':') {
                return Err(format!(
                    "plugin configuration: header name {name:?} must be non-empty lower-case, without ':'"
                ));
            }
            if name.starts_with(crate::enforce::ANNOTATION_PREFIX) {
                return Err(format!(
                    "plugin configuration: header name {name:?} uses toolgate's reserved prefix {:?}",
                    crate::enforce::ANNOTATION_PREFIX
                ));
            }
        }
        if let Some(path) = self.mcp_paths.iter().find(|p| !p.starts_with('/')) {
            return Err(format!(
                "plugin configuration: mcp_paths entry {path:?} must start with '/'"
            ));
        }
        if let Some(a2a) = &self.a2a {
            a2a.check(&self.mcp_paths)?;
        }
        if self.max_body_bytes == 0 {
            return Err("plugin configuration: max_body_bytes must be at least 1".into());
        }
        if let Some(history) = &self.history {
            if history.shards == 0 || history.shards > 65_536 {
                return Err(
                    "plugin configuration: history.shards must be between 1 and 65536".into(),
                );
            }
            if history.shard_capacity() == 0 {
                return Err(format!(
                    "plugin configuration: history.max_entries ({}) must be at least history.shards ({}); raise max_entries or lower shards",
                    history.max_entries, history.shards
                ));
            }
            if history.idle_seconds == 0 || history.sweep_seconds == 0 {
                return Err("plugin configuration: history.idle_seconds and history.sweep_seconds must be at least 1".into());
            }
        }
        if let Some(sessions) = &self.sessions {
            if sessions.shards == 0 || sessions.shards > 65_536 || sessions.shard_capacity() == 0 {
                return Err(format!(
                    "plugin configuration: sessions.shards must be between 1 and 65536 and at most sessions.max_entries ({})",
                    sessions.max_entries
                ));
            }
            if sessions.idle_seconds == 0 {
                return Err(
                    "plugin configuration: sessions.idle_seconds must be at least 1".into(),
                );
            }
        }
        if self.lists.max_buffer_bytes == 0 {
            return Err("plugin configuration: lists.max_buffer_bytes must be at least 1".into());
        }
        if let Some(results) = &self.results {
            results.check(self.history.is_some())?;
        }
        if let Some(feed) = &self.risk_feed {
            if feed.cluster.is_empty() || !feed.path.starts_with('/') {
                return Err("plugin configuration: risk_feed needs a `cluster` and a `path` starting with '/'".into());
            }
            if feed.poll_seconds == 0 || feed.timeout_ms == 0 || feed.max_age_seconds == 0 {
                return Err("plugin configuration: risk_feed.poll_seconds, timeout_ms and max_age_seconds must be at least 1".into());
            }
        }
        Ok(())
    }
}

impl A2a {
    fn check(&self, mcp_paths: &[String]) -> Result<(), String> {
        let lists = [
            ("jsonrpc_paths", &self.jsonrpc_paths),
            ("http_json_prefixes", &self.http_json_prefixes),
            ("agent_card_paths", &self.agent_card_paths),
        ];
        for (name, paths) in lists {
            if let Some(path) = paths
                .iter()
                .find(|p| !p.starts_with('/') || p.contains(['?', '#', '%']))
            {
                return Err(format!(
                    "plugin configuration: a2a.{name} entry {path:?} must start with '/' and have no '?', '#' or '%'"
                ));
            }
        }
        if let Some(prefix) =
            (self.http_json_prefixes.iter()).find(|p| p.len() > 1 && p.ends_with('/'))
        {
            return Err(format!(
                "plugin configuration: a2a.http_json_prefixes entry {prefix:?} must not end with '/' (\"/\" alone is the root)"
            ));
        }
        let exact = self.jsonrpc_paths.iter().chain(&self.agent_card_paths);
        if let Some(path) = exact.clone().find(|p| mcp_paths.contains(p)) {
            return Err(format!(
                "plugin configuration: {path:?} is both an MCP path and an A2A path; a path speaks one protocol"
            ));
        }
        if let Some(path) = self
            .jsonrpc_paths
            .iter()
            .find(|p| self.agent_card_paths.contains(p))
        {
            return Err(format!(
                "plugin configuration: {path:?} is both an A2A JSON-RPC path and an agent card path"
            ));
        }
        let tasks = &self.tasks;
        if tasks.shards == 0 || tasks.shards > 65_536 || tasks.shard_capacity() == 0 {
            return Err(format!(
                "plugin configuration: a2a.tasks.shards must be between 1 and 65536 and at most a2a.tasks.max_entries ({})",
                tasks.max_entries
            ));
        }
        if tasks.ttl_seconds == 0 {
            return Err("plugin configuration: a2a.tasks.ttl_seconds must be at least 1".into());
        }
        if self.max_buffer_bytes == 0 {
            return Err("plugin configuration: a2a.max_buffer_bytes must be at least 1".into());
        }
        Ok(())
    }
}

impl Results {
    fn check(&self, history: bool) -> Result<(), String> {
        if self.max_buffer_bytes == 0 {
            return Err("plugin configuration: results.max_buffer_bytes must be at least 1".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for detector in &self.detectors {
            let label = detector.label();
            match (&detector.builtin, &detector.regex) {
                (Some(_), None) | (None, Some(_)) => {}
                _ => {
                    return Err(format!(
                        "plugin configuration: results detector {label:?} needs exactly one of `builtin` and `regex`"
                    ))
                }
            }
            if label.is_empty() {
                return Err(
                    "plugin configuration: a results detector with `regex` needs a `name`".into(),
                );
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(format!(
                    "plugin configuration: results detector name {label:?} may only have letters, digits, '_' and '-'"
                ));
            }
            if !names.insert(label) {
                return Err(format!(
                    "plugin configuration: two results detectors are named {label:?}"
                ));
            }
            if detector.tag.is_empty() {
                return Err(format!(
                    "plugin configuration: results detector {label:?} has an empty tag"
                ));
            }
            if detector.effect == Effect::Record && !history {
                return Err(format!(
                    "plugin configuration: results detector {label:?} records its tag in the session, which needs `history`; configure `history` or give it another effect"
                ));
            }
            if let Some(Pattern(regex)) = &detector.regex {
                if regex.is_match(b"") {
                    return Err(format!(
                        "plugin configuration: results detector {label:?}: the regex matches the empty string"
                    ));
                }
            }
        }
        Ok(())
    }
}
