//! The decision record: one JSON line per decision, for Envoy's access log.

use serde::Serialize;
use serde_json::Value;

/// Everything needed to reconstruct a decision later. Absent facts are `null`,
/// so every line has the same fields.
#[derive(Debug, Serialize)]
pub struct DecisionRecord<'a> {
    pub decision_id: &'a str,
    pub timestamp: String,
    pub request_id: Option<&'a str>,
    pub principal: Option<&'a str>,
    pub trust_domain: Option<&'a str>,
    pub authenticated: bool,
    pub insecure_identity: bool,
    /// The trusted hop that vouched for the principal through `x-forwarded-client-cert`.
    pub via: Option<&'a str>,
    pub server: &'a str,
    pub http_method: &'a str,
    pub path: &'a str,
    pub action: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub rpc_method: Option<&'a str>,
    pub rpc_id: Option<&'a Value>,
    pub batch_size: usize,
    pub intent: Option<&'a str>,
    pub task: Option<&'a str>,
    pub session: Option<&'a str>,
    pub decision: &'static str,
    /// False when the decision was not applied: shadow mode, or a fail-open route.
    pub enforced: bool,
    pub mode: &'static str,
    pub route: Option<&'a str>,
    pub reason: Option<&'static str>,
    pub policies: &'a [String],
    pub errors: &'a [String],
    pub policy_version: &'a str,
    pub eval_us: u64,
    pub arguments_digest: Option<String>,
    /// For approval-gated tools: approved (by whom), or what was missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRecord<'a>>,
    /// The verified credential, when credentials are configured and one was presented.
    pub token: Option<TokenRecord<'a>>,
    /// Raw arguments, only when the configuration asks for them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<&'a Value>,
    /// The workload's live risk, when the risk feed is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk: Option<RiskRecord<'a>>,
    /// Seconds until a rate-limited call can succeed, as sent in `Retry-After`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The Cedar request of the deciding call and Cedar's answer to it: what
    /// `toolgate replay` re-evaluates. `null` when the request was refused before
    /// policy evaluation (identity, malformed input, ...).
    pub cedar: Option<&'a CedarRecord>,
}

/// One Cedar request exactly as evaluated, in Cedar's JSON forms. The context
/// leaves out `arguments` unless `log_arguments` is set (`arguments_digest` stands in).
#[derive(Debug, Serialize, serde::Deserialize, Clone, PartialEq)]
pub struct CedarRecord {
    pub principal: Value,
    pub action: Value,
    pub resource: Value,
    pub context: Value,
    /// Cedar's decision for this request alone: `allow` or `deny`. It can differ
    /// from the record's `decision` (an approval or a delegated actor was missing).
    pub decision: String,
}

#[derive(Debug, Serialize)]
pub struct ApprovalRecord<'a> {
    pub status: &'static str,
    pub approver: Option<&'a str>,
    /// What to approve (agent, server, tool, args_digest), when it was missing or mismatched.
    pub approve: Option<&'a Value>,
}

/// The risk signal a decision saw, and how old it was.
#[derive(Debug, Serialize)]
pub struct RiskRecord<'a> {
    pub score: i64,
    pub flags: &'a [String],
    pub stale: bool,
    /// Seconds since the feed was fetched; `null` when it never was.
    pub age_seconds: Option<i64>,
}

/// The claims a decision relied on (never the token itself).
#[derive(Debug, Serialize)]
pub struct TokenRecord<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub audience: &'a [String],
    pub scopes: &'a [String],
    pub task: Option<&'a str>,
    pub jti: Option<&'a str>,
    pub ttl_seconds: i64,
    pub expires_at: i64,
    pub delegation: &'a [String],
}

impl DecisionRecord<'_> {
    pub fn to_json(&self) -> String {
        // Serializing plain strings, numbers and JSON values cannot fail; an empty
        // line would still be visible as a broken record rather than a panic.
        serde_json::to_string(self).unwrap_or_default()
    }
}
