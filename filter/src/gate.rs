//! The gate: runs one request through the stages in order; `conclude` shapes the verdict.

use std::cell::Cell;

use cedar_policy::Authorizer;

use crate::a2a::{A2aCall, TaskStanding};
use crate::action::Action;
use crate::authorize::authorize;
use crate::call::{Call, Malformed};
use crate::cedar_request::{self, Facts, Intent};
use crate::cedar_value::Pair;
use crate::config::{Config, History, ServerSource};
use crate::credential::{self, TokenState};
use crate::history::{self, Shard};
use crate::http::HttpRequest;
use crate::identity::{self, ClaimedHeaders, Identity};
use crate::listing::{Filtered, ListMethod, Lister, SessionState};
use crate::policy::PolicyStore;
use crate::protocol::Protocol;
use crate::reason::Reason;
use crate::record::McpSessionRecord;
use crate::shared::SharedData;
use crate::{
    a2a, a2a_tasks, approval, conclude, control, definition, delegation, mirror, protocol, rate,
    revocation, risk, session,
};

pub use crate::conclude::internal_failure;
use crate::decision::{CallsDecided, Findings};
pub use crate::decision::{Effects, Input, Outcome, Refusal, Verdict};

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

/// The agent's shard of session history while its calls are decided.
struct Tracked<'a, 's> {
    config: &'a History,
    agent: &'a str,
    session: &'a str,
    shard: &'a mut Shard<'s>,
    /// A call was recorded: the shard must be written back.
    recorded: bool,
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

    pub fn wants_cluster_name(&self) -> bool {
        self.config.server_from == ServerSource::ClusterName
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
                return control::revoke(revocation, input, decision_id, &self.store.version);
            }
        }
        let server = self.server(input);
        let mut found = Findings::default();
        let refused = self.evaluate(input, server, &mut found).err();
        let eval_us = monotonic_nanos().saturating_sub(started) / 1_000;
        let decided = conclude::Decided {
            input,
            server,
            mode: self.config.mode_for(input.route_name, server),
            found,
            refused,
            decision_id,
            eval_us,
        };
        conclude::verdict(&self.config, &self.store, decided)
    }

    /// The stages, in order; the first refusal stops them.
    fn evaluate(
        &self,
        input: &Input<'_>,
        server: &str,
        found: &mut Findings,
    ) -> Result<(), Refusal> {
        let request = &input.request;
        // Identity is resolved first so that a refusal of the headers or the body
        // still names who sent it, and refused only after the body is read, so that
        // every refusal, identity ones included, is shaped for the client's protocol.
        let identified = self.identify(input, &mut found.principal);
        found.intent = self.intent(request)?;
        found.calls = self.read_calls(input, server, found)?;
        self.unfilterable_batch(input, server, found)?;
        found.protocol_version = mirror::check(request, &found.calls, &self.store.arguments)?;
        let identity = found.identity.insert(identified?);
        let credential = credential::required(&input.token, self.config.credentials.as_ref())?;
        found.token = credential.cloned();
        revocation::check(&input.revocations, input.now_unix())?;
        let session = self.mcp_session(input, identity.agent(), &mut found.mcp_session)?;
        let mut context = self.risk_context(
            input,
            identity.agent(),
            (&mut found.risk, &mut found.effects),
        )?;
        context.extend(session.as_ref().map(session::Presented::context));
        let a2a = found
            .calls
            .first()
            .and_then(|c| Some((c, c.a2a.as_deref()?)));
        let standings = match a2a {
            Some((_, a2a)) => self.task_standings(input, identity.agent(), a2a)?,
            None => Vec::new(),
        };
        if let Some((_, a2a)) = a2a {
            let task = standings.iter().find(|s| Some(s.id.as_str()) == a2a.task());
            found.a2a_task = task.cloned();
            context.push(self.a2a_context(a2a, task));
        }
        let facts = Facts {
            identity,
            credential,
            now_unix: input.now_unix(),
            intent: &found.intent,
            server,
            http_method: request.method(),
            path: request.path(),
            protocol_version: found.protocol_version.as_deref(),
            behaviour: &context,
        };
        if let Some((call, a2a)) = a2a {
            self.check_tasks(call, a2a, &standings, &facts)
                .map_err(|(refused, refusal)| {
                    // The record names the task refused, though the call may name it
                    // only in `referenceTaskIds`.
                    found.a2a_task = Some(refused.clone());
                    refusal
                })?;
        }
        let decided = (&mut found.calls_decided, &mut found.effects);
        self.decide_in_session(input, &facts, &found.calls, decided)?;
        self.refresh_session(input, session)
    }

    /// A batch (`batches: "evaluate"`) with a list request whose answer would be
    /// filtered: its answer is a batch of answers, which toolgate does not filter, and
    /// a list must never go on unfiltered. Refused; a list sent alone is filtered.
    fn unfilterable_batch(
        &self,
        input: &Input<'_>,
        server: &str,
        found: &Findings,
    ) -> Result<(), Refusal> {
        let filtered =
            self.config.list_mode(input.route_name, Some(server)) != crate::config::ListMode::Off;
        if !found.batch
            || !filtered
            || !crate::list_answer::reads_answers(&self.config, &found.calls)
        {
            return Ok(());
        }
        Err(Refusal::because(
            Reason::BatchRejected,
            "a batch with a list request: lists are filtered one request at a time; send the list alone",
        ))
    }

    /// The MCP session the request presents on an MCP path, where it stands with the
    /// agent; one bound to another principal is refused (see `session`).
    fn mcp_session<'i>(
        &self,
        input: &Input<'i>,
        agent: Option<&str>,
        seen: &mut Option<McpSessionRecord>,
    ) -> Result<Option<session::Presented<'i>>, Refusal> {
        let Some(config) = &self.config.sessions else {
            return Ok(None);
        };
        if Protocol::for_path(&self.config, input.request.path()) != Protocol::Mcp {
            return Ok(None);
        }
        let Some(id) = session::presented(&input.request)? else {
            return Ok(None);
        };
        let presented = session::check(shared_data(input)?, config, id, agent, input.now_unix())
            .map_err(Refusal::internal)?;
        *seen = Some(presented.record());
        presented.admit()?;
        Ok(Some(presented))
    }

    /// A2A: where each task the call names stands with the agent (see `a2a_tasks`).
    fn task_standings(
        &self,
        input: &Input<'_>,
        agent: Option<&str>,
        a2a: &A2aCall,
    ) -> Result<Vec<TaskStanding>, Refusal> {
        let (Some(config), tasks) = (&self.config.a2a, a2a.named_tasks()) else {
            return Ok(Vec::new());
        };
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let shared = shared_data(input)?;
        tasks
            .into_iter()
            .map(|id| a2a_tasks::standing(shared, &config.tasks, id, agent, input.now_unix()))
            .collect::<Result<_, _>>()
            .map_err(Refusal::internal)
    }

    /// `context.a2a`, with the task's standing.
    fn a2a_context(&self, a2a: &A2aCall, task: Option<&TaskStanding>) -> Pair {
        let types = &self.store.types;
        a2a::context(a2a, task, &|owner| types.uid(&types.agent, owner))
    }

    /// A2A: a task the agent does not own (another's, or one toolgate never saw
    /// created) is refused as `task_not_owned`, unless policy permits `a2a/SharedTask`
    /// for it (with `context.a2a.task` that task). Cedar decides, so a deployment can
    /// share tasks, e.g. within a group; the shipped policies share none. Refused: with
    /// the task refused.
    fn check_tasks<'s>(
        &self,
        call: &Call,
        a2a: &A2aCall,
        standings: &'s [TaskStanding],
        facts: &Facts<'_>,
    ) -> Result<(), (&'s TaskStanding, Refusal)> {
        for standing in standings.iter().filter(|s| !s.owned) {
            let mut behaviour: Vec<_> = (facts.behaviour.iter())
                .filter(|(key, _)| key != "a2a")
                .cloned()
                .collect();
            let refused = |refusal| (standing, refusal);
            behaviour.push(self.a2a_context(a2a, Some(standing)));
            let facts = Facts {
                behaviour: &behaviour,
                ..*facts
            };
            let shared = Call {
                action: Action::A2aSharedTask,
                ..call.clone()
            };
            let built = cedar_request::build(&self.store, &shared, &facts)
                .map_err(|e| refused(Refusal::internal(e.0)))?;
            let verdict = authorize(&self.authorizer, &self.store, &built);
            let Some(denied) = verdict.denied else {
                continue;
            };
            let whose = match &standing.owner {
                Some(owner) => format!("bound to {owner}"),
                None => "not known to toolgate".to_owned(),
            };
            let reason = match denied {
                Reason::PolicyError => Reason::PolicyError,
                _ => Reason::TaskNotOwned,
            };
            let mut refusal =
                Refusal::because(reason, format!("task {:?} is {whose}", standing.id));
            refusal.errors.extend(verdict.errors);
            refusal.policies = verdict.policies;
            return Err(refused(refusal));
        }
        Ok(())
    }

    /// An allowed request of the session's owner keeps its binding from going idle.
    fn refresh_session(
        &self,
        input: &Input<'_>,
        presented: Option<session::Presented<'_>>,
    ) -> Result<(), Refusal> {
        match (&self.config.sessions, presented) {
            (Some(config), Some(presented)) => presented
                .refresh(shared_data(input)?, config, input.now_unix())
                .map_err(Refusal::internal),
            _ => Ok(()),
        }
    }

    /// `context.risk`, when the risk feed is configured.
    fn risk_context(
        &self,
        input: &Input<'_>,
        agent: Option<&str>,
        (seen, effects): (&mut Option<risk::View>, &mut Effects),
    ) -> Result<Vec<Pair>, Refusal> {
        let Some(feed) = &self.config.risk_feed else {
            return Ok(Vec::new());
        };
        let view = self
            .risk
            .view(shared_data(input)?, feed, agent, input.unix_nanos)
            .map_err(Refusal::internal)?;
        effects.risk_stale = view.stale;
        let context = crate::behaviour::risk(&view);
        *seen = Some(view);
        Ok(vec![context])
    }

    /// Decides the calls in the agent's session history, when it is kept, and records
    /// the allowed ones in it (see `history::decide` for the compare-and-swap).
    fn decide_in_session(
        &self,
        input: &Input<'_>,
        facts: &Facts<'_>,
        calls: &[Call],
        (decided, effects): (&mut CallsDecided, &mut Effects),
    ) -> Result<(), Refusal> {
        let agent = facts.identity.agent();
        let (Some(config), Some(agent)) = (&self.config.history, agent) else {
            // No identity, no history: nothing is recorded (and nothing is allowed).
            return self.decide_calls(calls, facts, input, None, decided);
        };
        let session = history::session_id(
            facts.credential.and_then(|c| c.task.as_deref()),
            facts.intent.session.as_deref(),
        );
        let settled = history::decide(shared_data(input)?, config, agent, |shard| {
            let mut tracked = Tracked {
                config,
                agent,
                session,
                shard,
                recorded: false,
            };
            let decided = self.decide_calls(calls, facts, input, Some(&mut tracked), decided);
            // A refused request records nothing, not even the calls before the refusal.
            let recorded = decided.is_ok() && tracked.recorded;
            (decided, recorded)
        });
        match settled {
            Ok(settled) => {
                effects.expired += settled.removed.expired;
                effects.evicted += settled.removed.evicted;
                effects.conflicts += u64::from(settled.conflicts);
                settled.outcome
            }
            Err(error) => {
                effects.conflicts += u64::from(error.conflicts());
                Err(Refusal::internal(error))
            }
        }
    }

    /// The declared intent, task and session headers.
    fn intent(&self, request: &HttpRequest<'_>) -> Result<Intent, Refusal> {
        let headers = &self.config.headers;
        Ok(Intent {
            intent: request.declared(&headers.intent)?,
            task: request.declared(&headers.task)?,
            session: request.declared(&headers.session)?,
        })
    }

    /// The body guards, then the route's protocol reads the calls.
    fn read_calls(
        &self,
        input: &Input<'_>,
        server: &str,
        found: &mut Findings,
    ) -> Result<Vec<Call>, Refusal> {
        let request = &input.request;
        found.rpc = request.declares_json();
        if input.body_too_large {
            return Err(Reason::BodyTooLarge.into());
        }
        if request.has_content_encoding() && !request.body.is_empty() {
            return Err(Reason::UnsupportedEncoding.into());
        }
        let calls = protocol::classify(request, server, &self.config).map_err(
            |Malformed {
                 reason,
                 rpc_id,
                 rpc,
                 error,
             }| {
                found.rpc = rpc;
                found.malformed_rpc_id = rpc_id;
                Refusal {
                    errors: error.into_iter().collect(),
                    ..Refusal::new(reason)
                }
            },
        )?;
        found.rpc = calls.is_rpc();
        found.batch = calls.is_batch();
        if request.method_override().is_some() {
            return Err(Reason::MethodOverride.into());
        }
        Ok(calls.into_vec())
    }

    /// Who is calling; a refused identity is still named in the record.
    fn identify(
        &self,
        input: &Input<'_>,
        principal: &mut Option<String>,
    ) -> Result<Identity, Refusal> {
        let claimed = ClaimedHeaders::of(&self.config, &input.request)?;
        let identity = identity::resolve(&self.config, input.peer, claimed).map_err(|refused| {
            *principal = Some(refused.claimed);
            Refusal::new(refused.reason)
        })?;
        *principal = identity.agent().map(str::to_owned);
        Ok(identity)
    }

    /// Decides each call in turn; the first refusal stops them. With `tracked`,
    /// each allowed call is recorded into the agent's shard before the next is decided.
    fn decide_calls(
        &self,
        calls: &[Call],
        facts: &Facts<'_>,
        input: &Input<'_>,
        mut tracked: Option<&mut Tracked<'_, '_>>,
        decided: &mut CallsDecided,
    ) -> Result<(), Refusal> {
        *decided = CallsDecided::default();
        for (index, call) in calls.iter().enumerate() {
            decided.deciding = index;
            self.decide_call(call, facts, input, tracked.as_deref_mut(), decided)?;
        }
        decided.deciding = 0;
        Ok(())
    }

    /// One call: argument types, Cedar, the delegated actors, the approval, then history.
    fn decide_call(
        &self,
        call: &Call,
        facts: &Facts<'_>,
        input: &Input<'_>,
        tracked: Option<&mut Tracked<'_, '_>>,
        decided: &mut CallsDecided,
    ) -> Result<(), Refusal> {
        if let Some(arguments) = &call.arguments {
            self.store.arguments.check(call, arguments)?;
        }
        let mut behaviour = facts.behaviour.to_vec();
        if let Some(t) = tracked.as_deref() {
            let idle = i64::try_from(t.config.idle_seconds).unwrap_or(i64::MAX);
            let now = facts.now_unix;
            let session =
                crate::behaviour::session(&self.store, t.shard, t.agent, t.session, now, idle);
            let rate = crate::behaviour::rate(t.shard, t.agent, &call.resource_id, now);
            behaviour.extend([
                session.map_err(Refusal::internal)?,
                rate.map_err(Refusal::internal)?,
            ]);
        }
        let definition = match call.action {
            crate::action::Action::ToolsCall => {
                let definition = definition::state(input.shared, &self.store, &call.resource_id)
                    .map_err(Refusal::internal)?;
                behaviour.push(definition.context());
                Some(definition)
            }
            _ => None,
        };
        let facts = Facts {
            behaviour: &behaviour,
            ..*facts
        };
        let built =
            cedar_request::build(&self.store, call, &facts).map_err(|e| Refusal::internal(e.0))?;
        let verdict = authorize(&self.authorizer, &self.store, &built);
        // The record carries the deciding call's Cedar request: the first call's
        // until another is refused. Kept as built; turned into JSON once, for the record.
        if let Some(reason) = verdict.denied {
            let retry_after = tracked
                .as_deref()
                .filter(|_| reason == Reason::Forbidden)
                .and_then(|t| {
                    rate::retry_after(
                        &self.store,
                        &verdict.policies,
                        t.shard,
                        t.agent,
                        &call.resource_id,
                        facts.now_unix,
                    )
                });
            decided.cedar = Some((built, false));
            decided.definition = definition;
            return Err(Refusal {
                reason: retry_after.map_or(reason, |_| Reason::RateLimited),
                errors: verdict.errors,
                policies: verdict.policies,
                approve: None,
                retry_after,
            });
        }
        // Cedar allowed this call; a refusal from here on records its request as allowed.
        let delegated = match self.actors_checked() {
            true => delegation::check(&self.authorizer, &self.store, call, &facts),
            false => Ok(()),
        };
        let approver = delegated.and_then(|()| {
            approval::check(&self.store, call, &facts, &input.approval).map_err(|unapproved| {
                // The record's digest is the one the approval was checked with.
                decided.arguments_digest = Some((decided.deciding, unapproved.args_digest));
                Refusal {
                    policies: verdict.policies.clone(),
                    ..unapproved.refusal
                }
            })
        });
        let approver = match approver {
            Ok(approver) => approver,
            Err(refusal) => {
                decided.cedar = Some((built, true));
                decided.definition = definition;
                return Err(refusal);
            }
        };
        if let Some(approved) = approver {
            decided.approved_by = Some(approved.approver);
            decided.arguments_digest = Some((decided.deciding, approved.args_digest));
        }
        for policy in verdict.policies {
            if !decided.policies.contains(&policy) {
                decided.policies.push(policy);
            }
        }
        if let Some(t) = tracked.filter(|_| call.action.is_recorded()) {
            let recorded = history::Recorded {
                agent: t.agent,
                session: t.session,
                resource: &call.resource_id,
                tool: call.tool(),
                tags: self.store.tags(&built.resource),
            };
            // The shard keeps count of what recording removed (see `history::decide`).
            t.shard
                .record(&recorded, facts.now_unix, t.config)
                .map_err(Refusal::internal)?;
            t.recorded = true;
        }
        if decided.cedar.is_none() {
            decided.cedar = Some((built, true));
            decided.definition = definition;
        }
        Ok(())
    }

    /// Filters a list result (`items`, as the server sent them) for the agent of the
    /// list request `input` (its headers, peer, token and shared data; its body is not
    /// read): each item stays when some call to it could be permitted, with its
    /// conditions (see [`crate::listing`]). The facts are found as [`Gate::decide`]
    /// finds them; session history is read, never written. A refusal here (an identity,
    /// credential or revocation refusal, or unreadable shared state) hides every item.
    pub fn filter_list(
        &self,
        input: &Input<'_>,
        method: ListMethod,
        items: &[serde_json::Value],
    ) -> Result<Filtered, Refusal> {
        let request = &input.request;
        let server = self.server(input);
        let identity = self.identify(input, &mut None)?;
        let intent = self.intent(request)?;
        let credential = credential::required(&input.token, self.config.credentials.as_ref())?;
        revocation::check(&input.revocations, input.now_unix())?;
        let (mut view, mut effects) = (None, Effects::default());
        let risk = self.risk_context(input, identity.agent(), (&mut view, &mut effects))?;
        let protocol_version = request.text(mirror::PROTOCOL_VERSION)?;
        let facts = Facts {
            identity: &identity,
            credential,
            now_unix: input.now_unix(),
            intent: &intent,
            server,
            http_method: request.method(),
            path: request.path(),
            protocol_version,
            behaviour: &risk,
        };
        // The definitions this list shows are recorded before it is filtered: a changed
        // tool is dropped from this very list, and refused on every worker from now on.
        let definitions = match method {
            ListMethod::Tools if self.store.pinned_tools().next().is_some() => {
                definition::observe(shared_data(input)?, &self.store, server, items)
                    .map_err(Refusal::internal)?
            }
            _ => definition::Observed::default(),
        };
        let (Some(config), Some(agent)) = (&self.config.history, identity.agent()) else {
            let lister = self.lister(facts, None).with_definitions(definitions);
            return Ok(lister.filter(method, items));
        };
        let session = history::session_id(
            credential.and_then(|c| c.task.as_deref()),
            intent.session.as_deref(),
        );
        let loaded =
            history::load(shared_data(input)?, config, agent).map_err(Refusal::internal)?;
        let shard = loaded.shard().map_err(Refusal::internal)?;
        let state = SessionState {
            config,
            agent,
            session,
            shard: &shard,
        };
        let lister = self
            .lister(facts, Some(state))
            .with_definitions(definitions);
        Ok(lister.filter(method, items))
    }

    /// A list filter with these facts: the lower-level form of [`Gate::filter_list`].
    pub fn lister<'a, 's>(
        &'a self,
        facts: Facts<'a>,
        history: Option<SessionState<'a, 's>>,
    ) -> Lister<'a, 's> {
        Lister {
            store: &self.store,
            authorizer: &self.authorizer,
            actors_checked: self.actors_checked(),
            facts,
            history,
            definitions: definition::Observed::default(),
        }
    }

    /// True when every SPIFFE actor in a token's delegation chain must be permitted the call too.
    fn actors_checked(&self) -> bool {
        self.config
            .credentials
            .as_ref()
            .is_some_and(|c| c.actors_must_be_permitted)
    }

    /// What every decision id this gate gives starts with: its seed, in 16 hex digits.
    pub fn decision_id_prefix(&self) -> String {
        format!("{:016x}", self.id_seed)
    }

    /// A decision id unique across VMs (the seed) and within one (the counter).
    fn next_decision_id(&self) -> String {
        let n = self.decisions.get().wrapping_add(1);
        self.decisions.set(n);
        // `{seed:016x}{n:016x}`, without the formatter.
        crate::digest::hex(&[self.id_seed.to_be_bytes(), n.to_be_bytes()].concat())
    }
}

/// The shared data a configured feature needs; its absence fails closed.
fn shared_data<'a>(input: &Input<'a>) -> Result<&'a dyn SharedData, Refusal> {
    input
        .shared
        .ok_or_else(|| Refusal::internal("no shared data to keep session history and risk in"))
}
