//! The verdict: what Envoy does with a decided request, and the record of why.

use serde_json::Value;

use crate::config::{Config, Enforcement, PolicyStatus, RouteMode, ToolsCallRefusal};
use crate::decision::Findings;
use crate::decision::{Input, Outcome, Refusal, Verdict};
use crate::enforce::{self, Action};
use crate::identity::{Identity, Principal, XFCC};
use crate::policy::PolicyStore;
use crate::reason::Class;
use crate::record::{
    ApprovalRecord, ApprovalStatus, Decision, DecisionRecord, RiskRecord, TokenRecord,
};

/// A request the stages have finished with.
pub(crate) struct Decided<'a> {
    pub input: &'a Input<'a>,
    pub server: &'a str,
    pub mode: RouteMode,
    pub found: Findings,
    /// The refusal that stopped the stages; `None` when every call was allowed.
    pub refused: Option<Refusal>,
    pub decision_id: String,
    pub eval_us: u64,
}

pub(crate) fn verdict(config: &Config, store: &PolicyStore, decided: Decided<'_>) -> Verdict {
    let Decided {
        input,
        mode,
        refused,
        ..
    } = &decided;
    let forward = |flag| forward(config, store, &decided, flag);
    let (action, outcome, enforced) = match refused {
        None => (forward(None), Outcome::Allow, true),
        // Shadow mode forwards, but the record and the annotation keep the real decision.
        Some(refusal) if mode.mode == Enforcement::Shadow => (
            forward(Some((enforce::WOULD_DENY, refusal.reason.code()))),
            Outcome::ShadowDeny,
            false,
        ),
        Some(refusal) if mode.fail_open && !refusal.reason.is_policy_decision() => (
            forward(Some((enforce::FAIL_OPEN, refusal.reason.code()))),
            Outcome::FailOpen,
            false,
        ),
        Some(refusal) => (
            refuse(config, refusal, &decided.found, input, &decided.decision_id),
            Outcome::refused(refusal.reason),
            true,
        ),
    };
    let effects = decided.found.effects;
    Verdict {
        action,
        outcome,
        record: record(config, store, decided, enforced),
        writes: Vec::new(),
        effects,
    }
}

/// Forwards with toolgate's annotations. Client-asserted identity never travels on:
/// the development header and the approval token always, XFCC unless a trusted hop
/// vouched for it.
fn forward(
    config: &Config,
    store: &PolicyStore,
    decided: &Decided<'_>,
    flag: Option<(&'static str, &'static str)>,
) -> Action {
    let found = &decided.found;
    let vouched = found.identity.as_ref().is_some_and(|i| i.via.is_some());
    let mut asserted: Vec<&str> = config
        .dev_identity_header
        .iter()
        .map(String::as_str)
        .collect();
    asserted.push(&config.approvals.header);
    // An answer toolgate reads must come back uncompressed (a compressed one is refused).
    if crate::results::reads_answers(config, &found.calls)
        || crate::list_answer::reads_answers(config, &found.calls)
    {
        asserted.push("accept-encoding");
    }
    if !config.trusted_hops.is_empty() && !vouched {
        asserted.push(XFCC);
    }
    // Shadow mode and fail-open forward what refused the request, for the upstream to see.
    let policies = match &decided.refused {
        Some(refusal) => &refusal.policies,
        None => &found.calls_decided.policies,
    };
    enforce::forward(
        decided.input.request.headers,
        &asserted,
        &decided.decision_id,
        policies,
        &store.version,
        found.identity.as_ref().and_then(Identity::agent),
        flag,
    )
}

/// True on an A2A HTTP+JSON route, where A2A clients read only A2A's error format.
fn on_a2a_http_json(config: &Config, input: &Input<'_>) -> bool {
    let route = (config.a2a.as_ref()).and_then(|a2a| crate::a2a::route(a2a, input.request.path()));
    matches!(route, Some(crate::a2a::Route::HttpJson(_)))
}

/// The refusal, shaped for the protocol the client speaks. A policy's no to a
/// JSON-RPC request goes out as configured (`refusals`). The transport's and the
/// caller's refusals keep their HTTP status (a caller without identity too, though
/// a policy refused it), and so do messages without an id: there is nothing to answer.
fn refuse(
    config: &Config,
    refusal: &Refusal,
    found: &Findings,
    input: &Input<'_>,
    decision_id: &str,
) -> Action {
    let reason = refusal.reason;
    let shape = if found.rpc {
        let mut ids: Vec<&Value> = found
            .calls
            .iter()
            .filter_map(|c| c.rpc.as_ref().and_then(|r| r.id.as_ref()))
            .collect();
        ids.extend(&found.malformed_rpc_id);
        let authenticated = found
            .identity
            .as_ref()
            .is_some_and(|i| i.principal != Principal::Unauthenticated);
        let on_policy = reason.class() == Class::Policy && authenticated && !ids.is_empty();
        let tool_call = match (found.calls.as_slice(), ids.as_slice(), found.batch) {
            ([call], [id], false) if call.action == crate::action::Action::ToolsCall => Some(*id),
            _ => None,
        };
        match tool_call {
            Some(id) if on_policy && config.refusals.tools_call == ToolsCallRefusal::Result => {
                enforce::Refusal::ToolResult {
                    id,
                    result_type: crate::mirror::mirrors(found.protocol_version.as_deref()),
                }
            }
            _ => enforce::Refusal::JsonRpc {
                status: match config.refusals.policy_status {
                    PolicyStatus::Ok if on_policy => 200,
                    _ => reason.http_status(),
                },
                ids,
                batch: found.batch,
            },
        }
    } else if on_a2a_http_json(config, input) {
        enforce::Refusal::A2aStatus
    } else {
        enforce::Refusal::Problem {
            instance: input.request.path(),
        }
    };
    let hints = enforce::Hints {
        approve: refusal.approve.as_deref(),
        retry_after: refusal.retry_after,
    };
    enforce::refuse(reason, decision_id, &refusal.policies, shape, hints)
}

fn record(
    config: &Config,
    store: &PolicyStore,
    decided: Decided<'_>,
    enforced: bool,
) -> DecisionRecord {
    let Decided {
        input,
        server,
        mode,
        found,
        refused,
        decision_id,
        eval_us,
    } = decided;
    let request = &input.request;
    let calls_decided = found.calls_decided;
    let deciding = if refused.is_some() {
        calls_decided.deciding
    } else {
        0
    };
    let call = found.calls.get(deciding);
    let arguments = call.and_then(|c| c.arguments.as_ref());
    let rpc = call.and_then(|c| c.rpc.as_ref());
    let identity = found.identity.as_ref();
    let owned = |s: &str| s.to_owned();
    let trust_domain = identity
        .and_then(Identity::trust_domain)
        .or_else(|| found.principal.as_deref().and_then(claimed_trust_domain))
        .map(owned);
    // The approval stage hashed the deciding call's arguments already, when it is gated.
    let approval_digest = calls_decided
        .arguments_digest
        .as_ref()
        .and_then(|(index, digest)| (*index == deciding).then(|| digest.clone()));
    let arguments_digest = arguments
        .map(|arguments| approval_digest.unwrap_or_else(|| crate::digest::json_sha256(arguments)));
    let (reason, policies, errors, approval, retry_after) = match refused {
        Some(refusal) => (
            Some(refusal.reason),
            refusal.policies,
            refusal.errors,
            refusal.approve.map(|approve| ApprovalRecord {
                status: ApprovalStatus::MissingOrMismatched,
                approver: None,
                approve: Some(*approve),
            }),
            refusal.retry_after,
        ),
        None => (
            None,
            calls_decided.policies,
            Vec::new(),
            calls_decided.approved_by.map(|approver| ApprovalRecord {
                status: ApprovalStatus::Approved,
                approver: Some(approver),
                approve: None,
            }),
            None,
        ),
    };
    DecisionRecord {
        decision_id,
        timestamp: crate::time::rfc3339(input.unix_nanos),
        request_id: request.request_id().map(owned),
        principal: found.principal,
        trust_domain,
        authenticated: identity.is_some_and(|i| i.principal != Principal::Unauthenticated),
        insecure_identity: identity.is_some_and(|i| i.insecure),
        via: identity.and_then(|i| i.via.clone()),
        server: Some(server.to_owned()),
        http_method: Some(request.method().to_owned()),
        path: Some(request.path().to_owned()),
        action: call.map(|c| c.action.id().to_owned()),
        resource: call.map(|c| c.resource_id.clone()),
        rpc_method: rpc.map(|r| r.method.clone()),
        rpc_id: rpc.and_then(|r| r.id.clone()).or(found.malformed_rpc_id),
        protocol_version: found.protocol_version,
        batch_size: found.calls.len(),
        intent: found.intent.intent,
        task: found.intent.task,
        session: found.intent.session,
        mcp_session: found.mcp_session,
        a2a: call
            .and_then(|c| c.a2a.as_deref())
            .map(|a2a| crate::a2a::record(a2a, found.a2a_task.as_ref())),
        decision: match reason {
            Some(_) => Decision::Deny,
            None => Decision::Allow,
        },
        enforced,
        mode: mode.mode,
        route: input.route_name.map(owned),
        reason,
        policies,
        errors,
        policy_version: Some(store.version.clone()),
        eval_us,
        arguments_digest,
        approval,
        token: found.token.map(|t| TokenRecord {
            ttl_seconds: t.ttl_seconds(),
            expires_at: t.expires_at,
            issuer: t.issuer,
            subject: t.subject,
            audience: t.audience,
            scopes: t.scopes,
            task: t.task,
            jti: t.jti,
            delegation: t.delegation,
        }),
        arguments: arguments.filter(|_| config.log_arguments).cloned(),
        risk: found.risk.map(|view| RiskRecord {
            score: view.signal.score,
            flags: view.signal.flags,
            stale: view.stale,
            age_seconds: view.age_seconds,
        }),
        retry_after,
        revoked: None,
        cedar: calls_decided
            .cedar
            .and_then(|(built, allowed)| built.record(allowed, config.log_arguments)),
        upstream_status: None,
        response: None,
        list: None,
        tool_definition: calls_decided.definition,
    }
}

/// The verdict when the glue itself cannot do its job (a host call failed, or the
/// plugin is not configured): refuse, log why, count an error.
pub fn internal_failure(why: &str, unix_nanos: u64) -> Verdict {
    let reason = crate::reason::Reason::Internal;
    let record = DecisionRecord {
        decision_id: format!("internal-{unix_nanos:x}"),
        timestamp: crate::time::rfc3339(unix_nanos),
        decision: Decision::Deny,
        enforced: true,
        reason: Some(reason),
        errors: vec![why.to_owned()],
        ..DecisionRecord::default()
    };
    Verdict {
        action: enforce::refuse(
            reason,
            &record.decision_id,
            &[],
            enforce::Refusal::Problem { instance: "" },
            enforce::Hints::default(),
        ),
        outcome: Outcome::Error,
        record,
        writes: Vec::new(),
        effects: Default::default(),
    }
}

/// The trust domain of a refused identity, for the log, if it has the SPIFFE shape.
fn claimed_trust_domain(claimed: &str) -> Option<&str> {
    let rest = claimed.strip_prefix("spiffe://")?;
    rest.split('/').next()
}
