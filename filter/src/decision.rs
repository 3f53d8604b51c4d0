//! The gate's input and answer: what the glue hands the core for one request, and what it gets back.

use serde_json::Value;

use crate::approval::ApprovalState;
use crate::call::Call;
use crate::cedar_request::{Built, Intent};
use crate::credential::Credential;
use crate::credential::TokenState;
use crate::enforce::Action;
use crate::http::HttpRequest;
use crate::identity::Identity;
use crate::identity::Peer;
use crate::reason::Reason;
use crate::record::DecisionRecord;
pub use crate::refusal::Refusal;
use crate::revocation::SharedWrite;
use crate::risk;
use crate::shared::SharedData;

/// What the filter saw of one request.
pub struct Input<'a> {
    pub request: HttpRequest<'a>,
    pub peer: &'a Peer,
    /// The Envoy route name, when the configuration needs it (see `Gate::wants_route_name`).
    pub route_name: Option<&'a str>,
    /// The Envoy cluster name, when the server comes from it (see `Gate::wants_cluster_name`).
    pub cluster_name: Option<&'a str>,
    /// The body went past `max_body_bytes`; `request.body` holds none of it.
    pub body_too_large: bool,
    /// What jwt_authn concluded, when credentials are configured.
    pub token: TokenState,
    /// What jwt_authn concluded about an approval token, when one was sent.
    pub approval: ApprovalState,
    /// Shared-data entries found for `Gate::revocation_keys`: (key, stored value).
    pub revocations: Vec<(String, Vec<u8>)>,
    /// Envoy's shared data, for session history and the risk feed when configured.
    pub shared: Option<&'a dyn SharedData>,
    pub unix_nanos: u64,
}

impl<'a> Input<'a> {
    /// A request with nothing but its headers, body and peer: no route or cluster
    /// name, no token, approval or revocation. Override fields as needed.
    pub fn new(request: HttpRequest<'a>, peer: &'a Peer, unix_nanos: u64) -> Self {
        Self {
            request,
            peer,
            route_name: None,
            cluster_name: None,
            body_too_large: false,
            token: TokenState::Absent,
            approval: ApprovalState::Absent,
            revocations: Vec::new(),
            shared: None,
            unix_nanos,
        }
    }

    /// The request's time in whole Unix seconds, as tokens and revocations count it.
    pub fn now_unix(&self) -> i64 {
        i64::try_from(self.unix_nanos / 1_000_000_000).unwrap_or(i64::MAX)
    }
}

/// Which counter a decision increments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    Deny,
    /// Denied because toolgate could not evaluate the request.
    Error,
    /// Would have been denied (or refused as an error), but the route is in shadow mode.
    ShadowDeny,
    /// Could not be evaluated, and let through because the route is fail-open.
    FailOpen,
    /// A controller's revocation was recorded.
    Revocation,
}

impl Outcome {
    /// The counter for an enforced refusal: a policy's (or identity check's) no, or an error.
    pub fn refused(reason: Reason) -> Self {
        if reason.is_policy_decision() {
            Self::Deny
        } else {
            Self::Error
        }
    }
}

/// The gate's answer for one request. The glue applies `action` and `writes`,
/// counts `outcome` and `effects`, and serializes `record` once, for the access log.
#[derive(Debug)]
pub struct Verdict {
    pub action: Action,
    pub outcome: Outcome,
    pub record: DecisionRecord,
    /// Shared-data writes to perform (a revocation).
    pub writes: Vec<SharedWrite>,
    pub effects: Effects,
}

/// Side effects of one decision on shared state, for the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Effects {
    /// Session history entries evicted to make room.
    pub evicted: u64,
    /// Idle entries dropped while recording.
    pub expired: u64,
    /// Times the call was decided again after another worker's write.
    pub conflicts: u64,
    /// The risk signal was stale.
    pub risk_stale: bool,
}

/// What the stages learned about one request, as far as they got: the record and
/// the shape of a refusal are made from it.
#[derive(Default)]
pub(crate) struct Findings {
    pub intent: Intent,
    pub calls: Vec<Call>,
    /// The MCP protocol version the request speaks (its `_meta`, else its header).
    pub protocol_version: Option<String>,
    /// The client speaks JSON-RPC, so a refusal is a JSON-RPC error.
    pub rpc: bool,
    pub batch: bool,
    /// The id of a JSON-RPC message refused before it became a call.
    pub malformed_rpc_id: Option<Value>,
    /// The principal, or the identity a refused client claimed.
    pub principal: Option<String>,
    pub identity: Option<Identity>,
    pub token: Option<Credential>,
    pub risk: Option<risk::View>,
    /// The MCP session the request presented, and where it stands.
    pub mcp_session: Option<crate::record::McpSessionRecord>,
    /// Where the task an A2A call names stands with the caller.
    pub a2a_task: Option<crate::a2a::TaskStanding>,
    pub effects: Effects,
    pub calls_decided: CallsDecided,
}

/// What deciding the calls found; made afresh each time they are decided.
#[derive(Default)]
pub(crate) struct CallsDecided {
    /// Index of the call the record describes: the first refused, else the first.
    pub deciding: usize,
    /// The deciding call's Cedar request, and whether Cedar allowed it.
    pub cedar: Option<(Built, bool)>,
    /// The permits that allowed the calls.
    pub policies: Vec<String>,
    /// The approver of an approval-gated call that went through.
    pub approved_by: Option<String>,
    /// The arguments digest an approval was checked with, and its call's index.
    pub arguments_digest: Option<(usize, String)>,
    /// The deciding tool call's definition state and digests.
    pub definition: Option<crate::definition::Definition>,
}
