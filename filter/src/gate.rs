//! The gate: runs one request through every stage and returns what Envoy should do and log.

use std::cell::Cell;

use cedar_policy::Authorizer;
use serde_json::Value;

use crate::authorize::authorize;
use crate::call::{self, Call, Calls, Malformed};
use crate::cedar_request::{self, Facts, Intent};
use crate::config::{Config, ServerSource};
use crate::enforce::{self, Action, Refusal};
use crate::http::HttpRequest;
use crate::identity::{self, Identity, Peer, Principal};
use crate::policy::PolicyStore;
use crate::reason::Reason;
use crate::record::DecisionRecord;

/// Built once per plugin configuration; decides every request after that.
pub struct Gate {
    config: Config,
    store: PolicyStore,
    authorizer: Authorizer,
    id_seed: u64,
    decisions: Cell<u64>,
}

/// What the filter saw of one request.
pub struct Input<'a> {
    pub request: HttpRequest<'a>,
    pub peer: &'a Peer,
    /// The route or cluster name, when the configuration takes the server from it.
    pub server_hint: Option<&'a str>,
    /// The body went past `max_body_bytes`; `request.body` holds none of it.
    pub body_too_large: bool,
    pub unix_nanos: u64,
}

/// Which counter a decision increments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    Deny,
    /// Denied because toolgate could not evaluate the request.
    Error,
}

/// The gate's answer for one request.
#[derive(Debug)]
pub struct Verdict {
    pub action: Action,
    pub outcome: Outcome,
    /// The decision log line.
    pub record: String,
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
}

impl Gate {
    /// Builds the gate from the plugin configuration JSON; errors say what to fix.
    pub fn configure(config_json: &[u8], id_seed: u64) -> Result<Self, String> {
        let config = Config::from_json(config_json)?;
        let store = PolicyStore::build(&config.policies)?;
        Ok(Self {
            config,
            store,
            authorizer: Authorizer::new(),
            id_seed,
            decisions: Cell::new(0),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn policy_version(&self) -> &str {
        &self.store.version
    }

    pub fn policy_count(&self) -> usize {
        self.store.policy_count()
    }

    /// The Envoy property holding the server name, when configured to read one.
    pub fn server_property(&self) -> Option<&'static [&'static str]> {
        match self.config.server_from {
            ServerSource::Config => None,
            ServerSource::RouteName => Some(&["xds", "route_name"]),
            ServerSource::ClusterName => Some(&["xds", "cluster_name"]),
        }
    }

    /// Decides one request. `monotonic_nanos` times the evaluation.
    pub fn decide(&self, input: &Input<'_>, monotonic_nanos: &dyn Fn() -> u64) -> Verdict {
        let started = monotonic_nanos();
        let decision_id = self.next_decision_id();
        let server = input
            .server_hint
            .filter(|s| !s.is_empty())
            .unwrap_or(&self.config.server);
        let eval = self.evaluate(input, server);
        let eval_us = monotonic_nanos().saturating_sub(started) / 1_000;

        let request = &input.request;
        let action = match eval.denied {
            None => enforce::forward(
                request.headers,
                self.config.dev_identity_header.as_deref(),
                &decision_id,
                &eval.policies,
                &self.store.version,
                eval.identity.as_ref().and_then(|i| match &i.principal {
                    Principal::Agent(id) => Some(id.as_str()),
                    Principal::Unauthenticated => None,
                }),
            ),
            Some(reason) => {
                let shape = if eval.rpc {
                    let mut ids: Vec<&Value> = eval
                        .calls
                        .iter()
                        .filter_map(|c| c.rpc.as_ref().and_then(|r| r.id.as_ref()))
                        .collect();
                    if let Some(id) = &eval.malformed_rpc_id {
                        ids.push(id);
                    }
                    Refusal::JsonRpc {
                        ids,
                        batch: eval.batch,
                    }
                } else {
                    Refusal::Problem {
                        instance: request.path(),
                    }
                };
                enforce::refuse(reason, &decision_id, &eval.policies, shape)
            }
        };
        let outcome = match eval.denied {
            None => Outcome::Allow,
            Some(reason) if reason.is_policy_decision() => Outcome::Deny,
            Some(_) => Outcome::Error,
        };
        let record = self.record(input, server, &eval, &decision_id, eval_us);
        Verdict {
            action,
            outcome,
            record,
        }
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
        let calls = call::classify(request, server, self.config.batches).map_err(
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
        eval.batch = matches!(calls, Calls::RpcBatch(_));
        eval.calls = match calls {
            Calls::Rest(call) | Calls::Rpc(call) => vec![call],
            Calls::RpcBatch(calls) => calls,
        };

        let dev_header = match &self.config.dev_identity_header {
            Some(name) => request.text(name)?,
            None => None,
        };
        let identity =
            identity::resolve(&self.config, input.peer, dev_header).map_err(|refused| {
                eval.principal = Some(refused.claimed);
                refused.reason
            })?;
        if let Principal::Agent(id) = &identity.principal {
            eval.principal = Some(id.as_str().to_owned());
        }
        let identity = eval.identity.insert(identity);

        let facts = Facts {
            identity,
            intent: &eval.intent,
            server,
            http_method: request.method(),
            path: request.path(),
        };
        for (index, call) in eval.calls.iter().enumerate() {
            let built = cedar_request::build(&self.store, call, &facts).map_err(|e| {
                eval.errors.push(e.0);
                eval.deciding = index;
                Reason::Internal
            })?;
            let verdict = authorize(&self.authorizer, &self.store, &built);
            eval.errors.extend(verdict.errors);
            if let Some(reason) = verdict.denied {
                eval.deciding = index;
                eval.policies = verdict.policies;
                return Err(reason);
            }
            for policy in verdict.policies {
                if !eval.policies.contains(&policy) {
                    eval.policies.push(policy);
                }
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
        eval_us: u64,
    ) -> String {
        let call = eval.calls.get(eval.deciding);
        let arguments = call.and_then(|c| c.arguments.as_ref());
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
            enforced: true,
            reason: eval.denied.map(Reason::code),
            policies: &eval.policies,
            errors: &eval.errors,
            policy_version: &self.store.version,
            eval_us,
            arguments_digest: arguments.map(crate::digest::json_sha256),
            arguments: arguments.filter(|_| self.config.log_arguments),
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

/// The trust domain of a refused identity, for the log, if it has the SPIFFE shape.
fn claimed_trust_domain(claimed: &str) -> Option<&str> {
    let rest = claimed.strip_prefix("spiffe://")?;
    rest.split('/').next()
}
