//! The gate: runs one request through every stage and returns what Envoy should do and log.

use std::cell::Cell;

use cedar_policy::Authorizer;
use serde_json::Value;

use crate::approval::{self, ApprovalState};
use crate::authorize::authorize;
use crate::call::{self, Call, Calls, Malformed};
use crate::cedar_request::{self, Built, Facts, Intent};
use crate::config::{Config, Credentials, Enforcement, RouteMode, ServerSource};
use crate::credential::{Credential, TokenState};
use crate::enforce::{self, Action, Refusal};
use crate::history::{self, Shard};
use crate::http::HttpRequest;
use crate::identity::{self, ClaimedHeaders, Identity, Peer, Principal};
use crate::policy::PolicyStore;
use crate::reason::Reason;
use crate::record::{ApprovalRecord, DecisionRecord, RiskRecord, TokenRecord};
use crate::revocation::{self, SharedWrite};
use crate::risk;
use crate::shared::SharedData;

const XFCC: &str = "x-forwarded-client-cert";

/// How often a call is decided again because another worker recorded a call of
/// the same agent in between, before toolgate gives up (and fails closed).
const MAX_HISTORY_CONFLICTS: u32 = 16;

/// Built once per plugin configuration; decides every request after that.
pub struct Gate {
    config: Config,
    store: PolicyStore,
    authorizer: Authorizer,
    id_seed: u64,
    decisions: Cell<u64>,
    /// This VM's parsed copy of the risk feed.
    risk: risk::Cache,
}

/// What the filter saw of one request.
pub struct Input<'a> {
    pub request: HttpRequest<'a>,
    pub peer: &'a Peer,
    /// The Envoy route name, when the configuration needs it (see [`Gate::wants_route_name`]).
    pub route_name: Option<&'a str>,
    /// The Envoy cluster name, when the server comes from it (see [`Gate::wants_cluster_name`]).
    pub cluster_name: Option<&'a str>,
    /// The body went past `max_body_bytes`; `request.body` holds none of it.
    pub body_too_large: bool,
    /// What jwt_authn concluded, when credentials are configured.
    pub token: TokenState,
    /// What jwt_authn concluded about an approval token, when one was sent.
    pub approval: ApprovalState,
    /// Shared-data entries found for [`Gate::revocation_keys`]: (key, stored value).
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

/// The gate's answer for one request.
#[derive(Debug)]
pub struct Verdict {
    pub action: Action,
    pub outcome: Outcome,
    /// The decision log line.
    pub record: String,
    /// Shared-data writes to perform (a revocation).
    pub writes: Vec<SharedWrite>,
    /// What the decision did to shared state, for the counters.
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

/// The agent's shard of session history while its calls are decided.
struct Tracked<'a> {
    config: &'a crate::config::History,
    agent: &'a str,
    session: &'a str,
    shard: Shard<'a>,
    /// A call was recorded: the shard must be written back.
    recorded: bool,
    removed: history::Removed,
}

/// What deciding the calls of one request found; made afresh for each attempt.
#[derive(Default)]
struct Decided {
    deciding: usize,
    denied: Option<Reason>,
    policies: Vec<String>,
    errors: Vec<String>,
    approval: Option<approval::Needed>,
    approved_by: Option<String>,
    cedar: Option<(Built, bool)>,
    retry_after: Option<u64>,
}

impl Decided {
    fn denied(mut self, reason: Reason) -> Self {
        self.denied = Some(reason);
        self
    }
}

/// Turns a failure of toolgate's own state into a refusal that says why (fails closed).
fn internal(errors: &mut Vec<String>) -> impl FnOnce(String) -> Reason + '_ {
    |error| {
        errors.push(error);
        Reason::Internal
    }
}

/// The shared data a configured feature needs; its absence fails closed.
fn shared_data<'a>(
    input: &Input<'a>,
    errors: &mut Vec<String>,
) -> Result<&'a dyn SharedData, Reason> {
    input.shared.ok_or_else(|| {
        errors.push("no shared data to keep session history and risk in".into());
        Reason::Internal
    })
}

/// How a decision was applied, for the record.
struct Applied {
    mode: RouteMode,
    enforced: bool,
    eval_us: u64,
}

/// Everything the stages learned, for the response and the record.
#[derive(Default)]
struct Evaluation {
    principal: Option<String>,
    identity: Option<Identity>,
    intent: Intent,
    calls: Vec<Call>,
    rpc: bool,
    batch: bool,
    malformed_rpc_id: Option<Value>,
    /// Index of the call the record describes: the first denied, else the first.
    deciding: usize,
    denied: Option<Reason>,
    policies: Vec<String>,
    errors: Vec<String>,
    token: Option<Credential>,
    /// Set when a call needed an approval it did not have.
    approval: Option<approval::Needed>,
    /// The approver of an approval-gated call that went through.
    approved_by: Option<String>,
    /// The deciding call's Cedar request, and whether Cedar allowed it.
    cedar: Option<(Built, bool)>,
    /// The workload's risk, when the feed is configured.
    risk: Option<risk::View>,
    /// Seconds until a rate-limited call can succeed.
    retry_after: Option<u64>,
    effects: Effects,
}

impl Gate {
    /// Builds the gate from the plugin configuration JSON; errors say what to fix.
    pub fn configure(config_json: &[u8], id_seed: u64) -> Result<Self, String> {
        let config = Config::from_json(config_json)?;
        let store =
            PolicyStore::build(&config.policies, &crate::policy::feature_policies(&config))?;
        Ok(Self::with_store(config, store, id_seed))
    }

    /// A gate over an already built policy store (the CLI loads one from files).
    pub fn with_store(config: Config, store: PolicyStore, id_seed: u64) -> Self {
        Self {
            config,
            store,
            authorizer: Authorizer::new(),
            id_seed,
            decisions: Cell::new(0),
            risk: risk::Cache::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &PolicyStore {
        &self.store
    }

    pub fn policy_version(&self) -> &str {
        &self.store.version
    }

    pub fn policy_count(&self) -> usize {
        self.store.policy_count()
    }

    pub fn wants_route_name(&self) -> bool {
        self.config.needs_route_name()
    }

    /// jwt_authn metadata keys (payload, failure) to read, when credentials are configured.
    pub fn credential_keys(&self) -> Option<(&str, &str)> {
        self.config.credentials.as_ref().map(|c| {
            (
                c.payload_metadata_key.as_str(),
                c.failure_metadata_key.as_str(),
            )
        })
    }

    /// jwt_authn metadata keys (payload, failure) for the approval, when the request carries one.
    pub fn approval_keys(&self, headers: &[crate::http::Header]) -> Option<(&str, &str)> {
        let approvals = &self.config.approvals;
        headers
            .iter()
            .any(|(name, _)| *name == approvals.header)
            .then_some((
                approvals.payload_metadata_key.as_str(),
                approvals.failure_metadata_key.as_str(),
            ))
    }

    /// Shared-data keys that would revoke this request: its declared task, its
    /// token's task and its token's id. Empty when revocation is off.
    pub fn revocation_keys(
        &self,
        headers: &[crate::http::Header],
        token: &TokenState,
    ) -> Vec<String> {
        if self.config.revocation.is_none() {
            return Vec::new();
        }
        // The same reading of the task header as the Cedar context's `task`.
        let declared = HttpRequest { headers, body: &[] }
            .declared(&self.config.headers.task)
            .ok()
            .flatten()
            .map(|task| revocation::key("task", &task));
        let mut keys: Vec<String> = declared.into_iter().collect();
        if let TokenState::Verified(credential) = token {
            keys.extend(
                credential
                    .task
                    .as_deref()
                    .map(|t| revocation::key("task", t)),
            );
            keys.extend(credential.jti.as_deref().map(|j| revocation::key("jti", j)));
        }
        keys.dedup();
        keys
    }

    pub fn wants_cluster_name(&self) -> bool {
        self.config.server_from == ServerSource::ClusterName
    }

    fn server<'a>(&'a self, input: &Input<'a>) -> &'a str {
        let named = match self.config.server_from {
            ServerSource::Config => None,
            ServerSource::RouteName => input.route_name,
            ServerSource::ClusterName => input.cluster_name,
        };
        named
            .filter(|s| !s.is_empty())
            .unwrap_or(&self.config.server)
    }

    /// Decides one request. `monotonic_nanos` times the evaluation.
    pub fn decide(&self, input: &Input<'_>, monotonic_nanos: &dyn Fn() -> u64) -> Verdict {
        let started = monotonic_nanos();
        let decision_id = self.next_decision_id();
        if let Some(revocation) = &self.config.revocation {
            if input.request.path() == revocation.path {
                return revocation::control(revocation, input, &decision_id, &self.store.version);
            }
        }
        let server = self.server(input);
        let mode = self.config.mode_for(input.route_name, server);
        let eval = self.evaluate(input, server);
        let eval_us = monotonic_nanos().saturating_sub(started) / 1_000;

        let request = &input.request;
        let principal = eval.identity.as_ref().and_then(|i| match &i.principal {
            Principal::Agent(id) => Some(id.as_str()),
            Principal::Unauthenticated => None,
        });
        // Client-asserted identity never travels on: the development header and the
        // approval token always, XFCC unless a trusted hop vouched for it.
        let vouched = eval.identity.as_ref().is_some_and(|i| i.via.is_some());
        let mut asserted: Vec<&str> = self
            .config
            .dev_identity_header
            .iter()
            .map(String::as_str)
            .collect();
        asserted.push(&self.config.approvals.header);
        if !self.config.trusted_hops.is_empty() && !vouched {
            asserted.push(XFCC);
        }
        let forward = |flag: Option<(&'static str, &'static str)>| {
            enforce::forward(
                request.headers,
                &asserted,
                &decision_id,
                &eval.policies,
                &self.store.version,
                principal,
                flag,
            )
        };
        let (action, outcome, enforced) = match eval.denied {
            None => (forward(None), Outcome::Allow, true),
            // Shadow mode forwards, but the record and the annotation keep the real decision.
            Some(reason) if mode.mode == Enforcement::Shadow => (
                forward(Some((enforce::WOULD_DENY, reason.code()))),
                Outcome::ShadowDeny,
                false,
            ),
            Some(reason) if mode.fail_open && !reason.is_policy_decision() => (
                forward(Some((enforce::FAIL_OPEN, reason.code()))),
                Outcome::FailOpen,
                false,
            ),
            Some(reason) => (
                self.refusal(reason, &eval, request, &decision_id),
                Outcome::refused(reason),
                true,
            ),
        };
        let applied = Applied {
            mode,
            enforced,
            eval_us,
        };
        let record = self.record(input, server, &eval, &decision_id, applied);
        Verdict {
            action,
            outcome,
            record,
            writes: Vec::new(),
            effects: eval.effects,
        }
    }

    fn refusal(
        &self,
        reason: Reason,
        eval: &Evaluation,
        request: &HttpRequest<'_>,
        decision_id: &str,
    ) -> Action {
        let shape = if eval.rpc {
            let mut ids: Vec<&Value> = eval
                .calls
                .iter()
                .filter_map(|c| c.rpc.as_ref().and_then(|r| r.id.as_ref()))
                .collect();
            ids.extend(&eval.malformed_rpc_id);
            Refusal::JsonRpc {
                ids,
                batch: eval.batch,
            }
        } else {
            Refusal::Problem {
                instance: request.path(),
            }
        };
        let approve = eval.approval.as_ref().map(|needed| &needed.approve);
        let hints = enforce::Hints {
            approve,
            retry_after: eval.retry_after,
        };
        enforce::refuse(reason, decision_id, &eval.policies, shape, hints)
    }

    fn evaluate(&self, input: &Input<'_>, server: &str) -> Evaluation {
        let mut eval = Evaluation::default();
        if let Err(reason) = self.evaluate_into(&mut eval, input, server) {
            eval.denied = Some(reason);
        }
        eval
    }

    /// Runs the stages in order; the first refusal stops them.
    fn evaluate_into(
        &self,
        eval: &mut Evaluation,
        input: &Input<'_>,
        server: &str,
    ) -> Result<(), Reason> {
        let request = &input.request;
        let headers = &self.config.headers;

        eval.intent = Intent {
            intent: request.declared(&headers.intent)?,
            task: request.declared(&headers.task)?,
            session: request.declared(&headers.session)?,
        };

        // The body is read before identity so that every refusal, identity ones
        // included, is shaped for the protocol the client speaks.
        if input.body_too_large {
            eval.rpc = request.declares_json();
            return Err(Reason::BodyTooLarge);
        }
        if request.has_content_encoding() && !request.body.is_empty() {
            eval.rpc = request.declares_json();
            return Err(Reason::UnsupportedEncoding);
        }
        let calls = call::classify(request, server, &self.config).map_err(
            |Malformed {
                 reason,
                 rpc_id,
                 rpc,
             }| {
                eval.rpc = rpc;
                eval.malformed_rpc_id = rpc_id;
                reason
            },
        )?;
        eval.rpc = calls.is_rpc();
        if request.method_override().is_some() {
            return Err(Reason::MethodOverride);
        }
        eval.batch = matches!(calls, Calls::RpcBatch(_));
        eval.calls = match calls {
            Calls::Rest(call) | Calls::Rpc(call) => vec![call],
            Calls::RpcBatch(calls) => calls,
        };

        let claimed = ClaimedHeaders {
            xfcc: match self.config.trusted_hops.is_empty() {
                true => None,
                false => request.text(XFCC)?,
            },
            dev: match &self.config.dev_identity_header {
                Some(name) => request.text(name)?,
                None => None,
            },
        };
        let identity = identity::resolve(&self.config, input.peer, claimed).map_err(|refused| {
            eval.principal = Some(refused.claimed);
            refused.reason
        })?;
        if let Principal::Agent(id) = &identity.principal {
            eval.principal = Some(id.as_str().to_owned());
        }
        let identity = eval.identity.insert(identity);

        let credential = match (&input.token, &self.config.credentials) {
            (_, None)
            | (
                TokenState::Absent,
                Some(Credentials {
                    required: false, ..
                }),
            ) => None,
            (TokenState::Verified(credential), Some(_)) => Some(credential),
            (TokenState::Absent, Some(_)) => return Err(Reason::TokenMissing),
            (TokenState::Failed(message), Some(_)) => {
                eval.errors.push(format!("jwt_authn: {message}"));
                return Err(Reason::TokenInvalid);
            }
            (TokenState::Unreadable, Some(_)) => {
                eval.errors
                    .push("jwt_authn metadata could not be read".into());
                return Err(Reason::TokenInvalid);
            }
        };
        eval.token = credential.cloned();

        let now_unix = input.now_unix();
        if let Some((key, _)) = input
            .revocations
            .iter()
            .find(|(_, stored)| revocation::in_force(stored, now_unix))
        {
            eval.errors.push(format!("{key} is revoked"));
            return Err(Reason::Revoked);
        }

        let agent = match &identity.principal {
            Principal::Agent(id) => Some(id.as_str().to_owned()),
            Principal::Unauthenticated => None,
        };
        let mut behaviour = Vec::new();
        if let Some(feed) = &self.config.risk_feed {
            let shared = shared_data(input, &mut eval.errors)?;
            let view = self
                .risk
                .view(shared, feed, agent.as_deref(), input.unix_nanos)
                .and_then(|view| Ok((crate::behaviour::risk(&view)?, view)))
                .map_err(internal(&mut eval.errors))?;
            behaviour.push(view.0);
            eval.effects.risk_stale = view.1.stale;
            eval.risk = Some(view.1);
        }
        let facts = Facts {
            identity,
            credential,
            now_unix,
            intent: &eval.intent,
            server,
            http_method: request.method(),
            path: request.path(),
            behaviour: &behaviour,
        };
        let decided = match (&self.config.history, agent.as_deref()) {
            (Some(config), Some(agent)) => {
                let shared = shared_data(input, &mut eval.errors)?;
                // The verified token's task outranks the header the agent declares.
                let session = credential
                    .and_then(|c| c.task.as_deref())
                    .or(eval.intent.session.as_deref())
                    .unwrap_or(history::NO_SESSION);
                let mut conflicts = 0;
                loop {
                    let loaded =
                        history::load(shared, config, agent).map_err(internal(&mut eval.errors))?;
                    let shard = loaded.shard().map_err(internal(&mut eval.errors))?;
                    let mut tracked = Tracked {
                        config,
                        agent,
                        session,
                        shard,
                        recorded: false,
                        removed: history::Removed::default(),
                    };
                    let decided = self.decide_calls(&eval.calls, &facts, input, Some(&mut tracked));
                    if decided.denied.is_some() || !tracked.recorded {
                        break decided;
                    }
                    match shared.set(&loaded.key, &tracked.shard.encode(), loaded.cas) {
                        Ok(true) => {
                            eval.effects.expired += tracked.removed.expired;
                            eval.effects.evicted += tracked.removed.evicted;
                            break decided;
                        }
                        // Another worker recorded a call of this agent first: decide again on what it wrote.
                        Ok(false) if conflicts < MAX_HISTORY_CONFLICTS => {
                            conflicts += 1;
                            eval.effects.conflicts += 1;
                        }
                        Ok(false) => {
                            eval.errors.push(format!(
                                "the session history stayed contended for {} attempts",
                                conflicts + 1
                            ));
                            return Err(Reason::Internal);
                        }
                        Err(e) => {
                            eval.errors.push(format!(
                                "cannot record the call in the session history: {e}"
                            ));
                            return Err(Reason::Internal);
                        }
                    }
                }
            }
            // No identity, no history: nothing is recorded (and nothing is allowed).
            _ => self.decide_calls(&eval.calls, &facts, input, None),
        };
        eval.deciding = decided.deciding;
        eval.policies = decided.policies;
        eval.errors.extend(decided.errors);
        eval.approval = decided.approval;
        eval.approved_by = decided.approved_by;
        eval.cedar = decided.cedar;
        eval.retry_after = decided.retry_after;
        decided.denied.map_or(Ok(()), Err)
    }

    /// Decides each call in turn; the first refusal stops them. With `tracked`,
    /// each allowed call is recorded into the agent's shard before the next is decided.
    fn decide_calls<'c>(
        &'c self,
        calls: &'c [Call],
        facts: &Facts<'_>,
        input: &Input<'_>,
        mut tracked: Option<&mut Tracked<'c>>,
    ) -> Decided {
        let mut decided = Decided::default();
        let now = facts.now_unix;
        for (index, call) in calls.iter().enumerate() {
            decided.deciding = index;
            if let Some(arguments) = &call.arguments {
                if let Err(problem) = self.store.arguments.check(call, arguments) {
                    decided.errors.push(problem);
                    return decided.denied(Reason::InvalidArguments);
                }
            }
            let mut behaviour = facts.behaviour.to_vec();
            if let Some(t) = tracked.as_deref() {
                let idle = i64::try_from(t.config.idle_seconds).unwrap_or(i64::MAX);
                let pairs =
                    crate::behaviour::session(&self.store, &t.shard, t.agent, t.session, now, idle)
                        .and_then(|session| {
                            Ok([
                                session,
                                crate::behaviour::rate(&t.shard, t.agent, &call.resource_id, now)?,
                            ])
                        });
                match pairs {
                    Ok(pairs) => behaviour.extend(pairs),
                    Err(e) => {
                        decided.errors.push(e);
                        return decided.denied(Reason::Internal);
                    }
                }
            }
            let facts = Facts {
                behaviour: &behaviour,
                ..*facts
            };
            let built = match cedar_request::build(&self.store, call, &facts) {
                Ok(built) => built,
                Err(e) => {
                    decided.errors.push(e.0);
                    return decided.denied(Reason::Internal);
                }
            };
            let verdict = authorize(&self.authorizer, &self.store, &built);
            decided.errors.extend(verdict.errors);
            // The record carries the deciding call's Cedar request: the first call's
            // until another is refused. Kept as built; turned into JSON once, for the record.
            if let Some(mut reason) = verdict.denied {
                if let Some(after) = tracked
                    .as_deref()
                    .filter(|_| reason == Reason::Forbidden)
                    .and_then(|t| self.rate_limited(&verdict.policies, t, call, now))
                {
                    reason = Reason::RateLimited;
                    decided.retry_after = Some(after);
                }
                decided.cedar = Some((built, false));
                decided.policies = verdict.policies;
                return decided.denied(reason);
            }
            if let Err((reason, error, policies)) = self.check_actors(call, &facts) {
                decided.cedar = Some((built, true));
                decided.errors.push(error);
                decided.policies = policies;
                return decided.denied(reason);
            }
            let gated =
                call.action == "tools/call" && self.store.requires_approval(&call.resource_id);
            if let Some(needed) = approval::needed(gated, call, &facts, &input.approval) {
                decided.cedar = Some((built, true));
                decided.errors.push(needed.why.clone());
                decided.policies = verdict.policies;
                decided.approval = Some(needed);
                return decided.denied(Reason::ApprovalRequired);
            }
            if gated {
                decided.approved_by = match &input.approval {
                    ApprovalState::Verified(approval) => Some(approval.approver.clone()),
                    _ => None,
                };
            }
            for policy in verdict.policies {
                if !decided.policies.contains(&policy) {
                    decided.policies.push(policy);
                }
            }
            if let Some(t) = tracked
                .as_deref_mut()
                .filter(|_| crate::behaviour::is_recorded(call.action))
            {
                let recorded = history::Recorded {
                    agent: t.agent,
                    session: t.session,
                    resource: &call.resource_id,
                    tool: (call.action == "tools/call").then_some(call.resource_id.as_str()),
                    tags: self.store.tags(&built.resource),
                };
                let removed = t.shard.record(&recorded, now, t.config);
                t.removed.add(removed);
                t.recorded = true;
            }
            if index == 0 {
                decided.cedar = Some((built, true));
            }
        }
        decided.deciding = 0;
        decided
    }

    /// Seconds until a call refused by rate policies can succeed: when every
    /// determining forbid reads `context.rate`, the latest time one of the counts
    /// they read drops. None when any other forbid was among them.
    fn rate_limited(
        &self,
        policies: &[String],
        tracked: &Tracked<'_>,
        call: &Call,
        now: i64,
    ) -> Option<u64> {
        let mut drops_at = None;
        for policy in policies {
            let fields = self.store.rate_fields(policy)?;
            let shard = &tracked.shard;
            let counts = [
                fields
                    .tool
                    .then(|| shard.count(tracked.agent, Some(&call.resource_id), now)),
                fields.agent.then(|| shard.count(tracked.agent, None, now)),
            ];
            for count in counts.into_iter().flatten() {
                let at = count.drops_at.unwrap_or(now + history::WINDOW_SECONDS);
                drops_at = Some(drops_at.map_or(at, |d: i64| d.max(at)));
            }
        }
        let after = drops_at.unwrap_or(now + history::WINDOW_SECONDS) - now;
        Some(u64::try_from(after.clamp(1, history::WINDOW_SECONDS)).unwrap_or(1))
    }

    /// On-behalf-of never widens access: each SPIFFE actor in the delegation chain
    /// must itself be permitted the call. Other actors (people, services without
    /// a SPIFFE ID) are not principals here and are left to policy.
    fn check_actors(
        &self,
        call: &Call,
        facts: &Facts<'_>,
    ) -> Result<(), (Reason, String, Vec<String>)> {
        let enabled = self
            .config
            .credentials
            .as_ref()
            .is_some_and(|c| c.actors_must_be_permitted);
        let Some(credential) = facts.credential.filter(|_| enabled) else {
            return Ok(());
        };
        for actor in credential
            .delegation
            .iter()
            .filter(|a| identity::SpiffeId::parse(a).is_some())
        {
            let principal = self.store.types.uid(&self.store.types.agent, actor);
            // The actor is judged as if it made the call itself, without the subject's token.
            let direct = Facts {
                credential: None,
                ..*facts
            };
            let built = cedar_request::build_as(&self.store, principal, call, &direct)
                .map_err(|e| (Reason::Internal, e.0, Vec::new()))?;
            let verdict = authorize(&self.authorizer, &self.store, &built);
            if verdict.denied.is_some() {
                let error = format!("delegated actor {actor} is not permitted");
                return Err((Reason::DelegatedActorNotPermitted, error, verdict.policies));
            }
        }
        Ok(())
    }

    fn record(
        &self,
        input: &Input<'_>,
        server: &str,
        eval: &Evaluation,
        decision_id: &str,
        applied: Applied,
    ) -> String {
        let Applied {
            mode,
            enforced,
            eval_us,
        } = applied;
        let call = eval.calls.get(eval.deciding);
        let arguments = call.and_then(|c| c.arguments.as_ref());
        let cedar = eval
            .cedar
            .as_ref()
            .and_then(|(built, allowed)| built.record(*allowed, self.config.log_arguments));
        let identity = eval.identity.as_ref();
        DecisionRecord {
            decision_id,
            timestamp: crate::time::rfc3339(input.unix_nanos),
            request_id: input.request.request_id(),
            principal: eval.principal.as_deref(),
            trust_domain: identity
                .and_then(Identity::trust_domain)
                .or_else(|| eval.principal.as_deref().and_then(claimed_trust_domain)),
            authenticated: identity.is_some_and(|i| i.principal != Principal::Unauthenticated),
            insecure_identity: identity.is_some_and(|i| i.insecure),
            via: identity.and_then(|i| i.via.as_deref()),
            server,
            http_method: input.request.method(),
            path: input.request.path(),
            action: call.map(|c| c.action),
            resource: call.map(|c| c.resource_id.as_str()),
            rpc_method: call.and_then(|c| c.rpc.as_ref()).map(|r| r.method.as_str()),
            rpc_id: call
                .and_then(|c| c.rpc.as_ref())
                .and_then(|r| r.id.as_ref())
                .or(eval.malformed_rpc_id.as_ref()),
            batch_size: eval.calls.len(),
            intent: eval.intent.intent.as_deref(),
            task: eval.intent.task.as_deref(),
            session: eval.intent.session.as_deref(),
            decision: if eval.denied.is_some() {
                "deny"
            } else {
                "allow"
            },
            enforced,
            mode: match mode.mode {
                Enforcement::Enforce => "enforce",
                Enforcement::Shadow => "shadow",
            },
            route: input.route_name,
            reason: eval.denied.map(Reason::code),
            policies: &eval.policies,
            errors: &eval.errors,
            policy_version: &self.store.version,
            eval_us,
            arguments_digest: arguments.map(crate::digest::json_sha256),
            approval: match (&eval.approval, &eval.approved_by) {
                (Some(needed), _) => Some(ApprovalRecord {
                    status: "missing_or_mismatched",
                    approver: None,
                    approve: Some(&needed.approve),
                }),
                (None, Some(approver)) => Some(ApprovalRecord {
                    status: "approved",
                    approver: Some(approver),
                    approve: None,
                }),
                (None, None) => None,
            },
            token: eval.token.as_ref().map(|t| TokenRecord {
                issuer: &t.issuer,
                subject: &t.subject,
                audience: &t.audience,
                scopes: &t.scopes,
                task: t.task.as_deref(),
                jti: t.jti.as_deref(),
                ttl_seconds: t.ttl_seconds(),
                expires_at: t.expires_at,
                delegation: &t.delegation,
            }),
            arguments: arguments.filter(|_| self.config.log_arguments),
            risk: eval.risk.as_ref().map(|view| RiskRecord {
                score: view.signal.score,
                flags: &view.signal.flags,
                stale: view.stale,
                age_seconds: view.age_seconds,
            }),
            retry_after: eval.retry_after,
            cedar: cedar.as_ref(),
        }
        .to_json()
    }

    /// A decision id unique across VMs (the seed) and within one (the counter).
    fn next_decision_id(&self) -> String {
        let n = self.decisions.get().wrapping_add(1);
        self.decisions.set(n);
        format!("{:016x}{n:016x}", self.id_seed)
    }
}

/// The verdict when the glue itself cannot do its job (a host call failed, or the
/// plugin is not configured): refuse, log why, count an error.
pub fn internal_failure(why: &str, unix_nanos: u64) -> Verdict {
    let decision_id = format!("internal-{unix_nanos:x}");
    let errors = [why.to_owned()];
    let record = serde_json::json!({
        "decision_id": decision_id,
        "timestamp": crate::time::rfc3339(unix_nanos),
        "decision": "deny",
        "enforced": true,
        "reason": Reason::Internal.code(),
        "errors": errors,
    });
    Verdict {
        action: enforce::refuse(
            Reason::Internal,
            &decision_id,
            &[],
            Refusal::Problem { instance: "" },
            enforce::Hints::default(),
        ),
        outcome: Outcome::Error,
        record: record.to_string(),
        writes: Vec::new(),
        effects: Effects::default(),
    }
}

/// The trust domain of a refused identity, for the log, if it has the SPIFFE shape.
fn claimed_trust_domain(claimed: &str) -> Option<&str> {
    let rest = claimed.strip_prefix("spiffe://")?;
    rest.split('/').next()
}
