//! The gate's input and answer: what the glue hands the core for one request, and what it gets back.

use crate::approval::ApprovalState;
use crate::credential::TokenState;
use crate::enforce::Action;
use crate::http::HttpRequest;
use crate::identity::Peer;
use crate::reason::Reason;
use crate::record::DecisionRecord;
use crate::revocation::SharedWrite;
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

/// Why a stage stopped the request: the reason, and what the record should say.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub reason: Reason,
    /// What went wrong, for the record's `errors` (never sent to the client).
    pub errors: Vec<String>,
    /// The determining policies, when policy refused.
    pub policies: Vec<String>,
    /// For `approval_required`: what to approve, and why the presented one did not do.
    pub approval: Option<Box<crate::approval::Needed>>,
    /// For `rate_limited`: seconds until the call can succeed.
    pub retry_after: Option<u64>,
}

impl Refusal {
    /// A refusal with nothing more to say than its reason.
    pub fn new(reason: Reason) -> Self {
        Self {
            reason,
            errors: Vec::new(),
            policies: Vec::new(),
            approval: None,
            retry_after: None,
        }
    }

    /// A refusal and the error behind it.
    pub fn because(reason: Reason, error: impl Into<String>) -> Self {
        Self {
            errors: vec![error.into()],
            ..Self::new(reason)
        }
    }

    /// toolgate's own state failed it: fail closed, and say why.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::because(Reason::Internal, error.to_string())
    }
}

impl From<Reason> for Refusal {
    fn from(reason: Reason) -> Self {
        Self::new(reason)
    }
}
