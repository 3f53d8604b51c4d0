//! Approvals: a human's signed consent to one exact tool call, checked against the call.
//!
//! An approver signs a short-lived JWT that Envoy's jwt_authn verifies (its own
//! issuer and key) and hands over in metadata. toolgate checks that it is bound to
//! this agent, server, tool and argument digest; expiry is jwt_authn's to check.

use serde_json::{json, Map, Value};

use crate::call::Call;
use crate::cedar_request::Facts;
use crate::credential::JwtState;
use crate::identity::Principal;
use crate::wire;

/// What jwt_authn concluded about the request's approval token.
pub type ApprovalState = JwtState<Approval>;

/// The bindings an approval carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Approval {
    /// The approver (the token's issuer, or its `approver` claim).
    pub approver: String,
    /// The agent's SPIFFE ID.
    pub subject: String,
    pub server: String,
    pub tool: String,
    /// `sha256:<hex>` of the arguments' canonical JSON.
    pub args_digest: String,
}

/// The call an approval must match.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub agent: &'a str,
    pub server: &'a str,
    pub tool: &'a str,
    pub args_digest: &'a str,
}

impl ApprovalState {
    pub fn from_envoy(payload: Option<&[u8]>, failure: Option<&[u8]>) -> Self {
        Self::decode_with(payload, failure, Approval::decode)
    }

    /// `None` when this state approves the call; otherwise why not.
    pub fn refusal(&self, binding: &Binding<'_>) -> Option<String> {
        match self {
            Self::Absent => Some("no approval presented".into()),
            Self::Failed(message) => Some(format!("approval did not verify: {message}")),
            Self::Unreadable => Some("approval metadata could not be read".into()),
            Self::Verified(approval) => approval.mismatch(binding),
        }
    }
}

impl Approval {
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut approval = Self::default();
        let mut issuer = None;
        for (key, value) in wire::decode_pairs(bytes)? {
            let text = std::str::from_utf8(value).ok().map(str::to_owned);
            match key {
                b"iss" => issuer = text,
                b"approver" => approval.approver = text?,
                b"sub" => approval.subject = text?,
                b"server" => approval.server = text?,
                b"tool" => approval.tool = text?,
                b"args_digest" => approval.args_digest = text?,
                _ => {}
            }
        }
        if approval.approver.is_empty() {
            approval.approver = issuer.unwrap_or_default();
        }
        Some(approval)
    }

    /// The first binding that differs from the call, if any.
    fn mismatch(&self, call: &Binding<'_>) -> Option<String> {
        let checks = [
            ("agent", self.subject.as_str(), call.agent),
            ("server", &self.server, call.server),
            ("tool", &self.tool, call.tool),
            ("args_digest", &self.args_digest, call.args_digest),
        ];
        checks
            .into_iter()
            .find(|(_, approved, actual)| approved != actual)
            .map(|(field, approved, actual)| {
                format!("approval is for {field} {approved:?}, not {actual:?}")
            })
    }
}

/// What an orchestrator must get approved for a gated call to pass, and why it did not.
#[derive(Debug, Clone, PartialEq)]
pub struct Needed {
    /// `{agent, server, tool, args_digest}`, returned to the client and logged.
    pub approve: Value,
    pub why: String,
    /// The call's `arguments_digest`, as in `approve`: the record's needs no second hash.
    pub args_digest: String,
}

/// For a `gated` call (a tool the catalog tags `requires_approval`): what to
/// approve, unless `state` holds an approval bound to exactly this agent, server,
/// tool and arguments (`Ok` then carries the arguments digest it was checked with).
pub fn needed(
    gated: bool,
    call: &Call,
    facts: &Facts<'_>,
    state: &ApprovalState,
) -> Result<Option<String>, Needed> {
    if !gated {
        return Ok(None);
    }
    let agent = match &facts.identity.principal {
        Principal::Agent(id) => id.as_str(),
        Principal::Unauthenticated => "",
    };
    let empty = Value::Object(Map::new());
    let args_digest = crate::digest::json_sha256(call.arguments.as_ref().unwrap_or(&empty));
    let tool = call.name.as_deref().unwrap_or("");
    let binding = Binding {
        agent,
        server: facts.server,
        tool,
        args_digest: &args_digest,
    };
    let Some(why) = state.refusal(&binding) else {
        return Ok(Some(args_digest));
    };
    Err(Needed {
        approve: json!({ "agent": agent, "server": facts.server, "tool": tool, "args_digest": args_digest }),
        why,
        args_digest,
    })
}

/// An approval-gated call that went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    pub approver: String,
    /// `arguments_digest` of the call (of `{}` when it has no arguments), as the
    /// approval was checked against: the record's needs no second hash.
    pub args_digest: String,
}

/// A gated call refused for want of its approval.
#[derive(Debug)]
pub struct Unapproved {
    pub refusal: crate::refusal::Refusal,
    /// The call's `arguments_digest`, as the refusal's `approve` names it.
    pub args_digest: String,
}

/// Refuses a gated call without a matching approval; `Some` for one that has it.
pub fn check(
    store: &crate::policy::PolicyStore,
    call: &Call,
    facts: &Facts<'_>,
    state: &ApprovalState,
) -> Result<Option<Approved>, Unapproved> {
    let gated = call.action.needs_approval() && store.requires_approval(&call.resource_id);
    let args_digest = needed(gated, call, facts, state).map_err(|needed| Unapproved {
        refusal: crate::refusal::Refusal {
            errors: vec![needed.why],
            approve: Some(Box::new(needed.approve)),
            ..crate::refusal::Refusal::new(crate::reason::Reason::ApprovalRequired)
        },
        args_digest: needed.args_digest,
    })?;
    Ok(match (state, args_digest) {
        (ApprovalState::Verified(approval), Some(args_digest)) => Some(Approved {
            approver: approval.approver.clone(),
            args_digest,
        }),
        _ => None,
    })
}
