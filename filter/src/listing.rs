//! Lists filtered by policy: which tools, prompts and resources of a list result the agent could use, and under what conditions on the arguments.
//!
//! An item is **listed when some call to it could be permitted**, given everything
//! known at list time (principal, intent, task, token, session, rate, risk, server),
//! with the arguments unknown. A prompt or resource has no arguments in the Cedar
//! context, so its `prompts/get` or `resources/read` is decided as the gate decides it.
//! A tool is decided twice: the call without arguments, concretely, and the call with
//! arguments, by Cedar's partial evaluation with `context.arguments.<server>.<tool>`
//! unknown. Then:
//! - no residual and no error, Cedar allows both: listed, without conditions;
//! - a definite deny (a forbid holds, no permit can hold, or a policy errors whatever
//!   the arguments): hidden, with the forbids or "no permit" as the reason;
//! - residuals: the conditions they put on the arguments are read into [`Conditions`],
//!   and a **witness** is searched for: concrete arguments, built from the constants the
//!   residuals compare with (each, one below, one above; pattern instances; fresh
//!   values), decided exactly as a `tools/call` would be (argument types, Cedar, the
//!   delegated actors). A witness lists the tool with its conditions. No witness: when
//!   every residual condition is a comparison, presence test or single `like` on a
//!   top-level scalar argument, those candidates are complete (every combination of
//!   the conditions' truth values that any value can reach, some candidate reaches), so
//!   no call can pass and the tool is hidden; otherwise the tool stays listed, its
//!   conditions marked unverified, as no hiding may rest on a search that could miss.
//!
//! A tool the catalog marks `requires_approval` is listed with the condition that each
//! call needs a human approval. `tests/listing.rs` checks all of it against exhaustive
//! evaluation of real calls on generated policy sets.

use cedar_policy::{Authorizer, Decision, Effect, EntityUid, PartialResponse};
use serde_json::{json, Map, Value};

use crate::action::Action;
use crate::arguments::ArgumentType;
use crate::authorize::authorize;
use crate::call::{Call, ResourceKind, RpcMessage};
use crate::cedar_request::{self, Facts};
use crate::cedar_value::Pair;
use crate::config::History;
use crate::history::Shard;
use crate::identity::Principal;
use crate::policy::PolicyStore;
use crate::reason::Reason;

/// The `_meta` key a listed item's conditions go under.
pub const META_KEY: &str = "toolgate/conditions";

/// The name of the unknown that stands for a tool's arguments.
const UNKNOWN: &str = "arguments";

/// Most argument combinations tried in a witness search, per tool.
const MAX_CANDIDATES: usize = 2048;

/// The four MCP list methods, and what their items are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMethod {
    Tools,
    Prompts,
    Resources,
    ResourceTemplates,
}

impl ListMethod {
    pub fn from_method(method: &str) -> Option<Self> {
        match method {
            "tools/list" => Some(Self::Tools),
            "prompts/list" => Some(Self::Prompts),
            "resources/list" => Some(Self::Resources),
            "resources/templates/list" => Some(Self::ResourceTemplates),
            _ => None,
        }
    }

    pub fn method(self) -> &'static str {
        match self {
            Self::Tools => "tools/list",
            Self::Prompts => "prompts/list",
            Self::Resources => "resources/list",
            Self::ResourceTemplates => "resources/templates/list",
        }
    }

    /// The result's field that holds the items.
    pub fn items_key(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources => "resources",
            Self::ResourceTemplates => "resourceTemplates",
        }
    }

    /// The item's field that names it.
    pub fn name_key(self) -> &'static str {
        match self {
            Self::Tools | Self::Prompts => "name",
            Self::Resources => "uri",
            Self::ResourceTemplates => "uriTemplate",
        }
    }

    /// The call that uses an item: `tools/call`, `prompts/get` or `resources/read`.
    fn action(self) -> Action {
        match self {
            Self::Tools => Action::ToolsCall,
            Self::Prompts => Action::PromptsGet,
            Self::Resources | Self::ResourceTemplates => Action::ResourcesRead,
        }
    }

    fn kind(self) -> ResourceKind {
        match self {
            Self::Tools => ResourceKind::Tool,
            Self::Prompts => ResourceKind::Prompt,
            Self::Resources | Self::ResourceTemplates => ResourceKind::McpResource,
        }
    }
}

/// The agent's session history, read (never written) at list time: it gives each
/// item's call `context.session` and `context.rate`, as a call would get them.
pub struct SessionState<'a, 's> {
    pub config: &'a History,
    pub agent: &'a str,
    pub session: &'a str,
    pub shard: &'a Shard<'s>,
}

/// What a list is filtered with: the gate's policy store and authorizer, and the
/// facts of the list request (the same a call's decision has).
pub struct Lister<'a, 's> {
    pub store: &'a PolicyStore,
    pub authorizer: &'a Authorizer,
    /// Every SPIFFE actor in the token's delegation chain must be permitted too.
    pub actors_checked: bool,
    pub facts: Facts<'a>,
    pub history: Option<SessionState<'a, 's>>,
    /// Where the listed tools' definitions stand (`context.tool_definition`), as the
    /// list itself showed them (see `definition::observe`).
    pub definitions: crate::definition::Observed,
}

/// A filtered list: what to keep (with conditions) and what was hidden, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Filtered {
    pub method: ListMethod,
    pub kept: Vec<Kept>,
    pub hidden: Vec<Hidden>,
}

/// An item that stays in the list.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    /// Its position in the list as the server sent it.
    pub index: usize,
    pub name: String,
    /// `None`: some call is permitted whatever its arguments.
    pub conditions: Option<Conditions>,
}

/// An item taken out of the list.
#[derive(Debug, Clone, PartialEq)]
pub struct Hidden {
    pub index: usize,
    /// Its name (or URI); empty when it had none.
    pub name: String,
    /// The refusal every call to it would get.
    pub reason: Reason,
    /// The forbids that hold, or the policies whose conditions no arguments satisfy.
    pub policies: Vec<String>,
    pub why: String,
}

/// What a call to a listed item must satisfy, as far as toolgate can tell at list time.
#[derive(Debug, Clone, PartialEq)]
pub struct Conditions {
    /// Conditions on the arguments; `None` when there are none.
    pub arguments: Option<ArgumentConditions>,
    /// Each call needs a human approval bound to it (the catalog's `requires_approval`).
    pub approval: bool,
}

/// The residual conditions on a tool's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgumentConditions {
    /// A call is permitted only when this holds; `None`: a permit holds whatever the arguments.
    pub allow_if: Option<Cond>,
    /// A call is refused when this holds; `None`: no forbid depends on the arguments.
    pub deny_if: Option<Cond>,
    /// Every condition could be rendered (else `allow_if`/`deny_if` are not given).
    pub exact: bool,
    /// A permitted call was found (a witness); false only when the search could not
    /// prove there is none, and the tool is listed so as never to hide a usable one.
    pub verified: bool,
    /// Arguments of a call found permitted (`None`: no arguments, or not verified).
    /// For the decision log and tests; not shown to the agent.
    pub witness: Option<Value>,
    /// The one-line form, when it reads better than `allow, unless deny`.
    text: Option<String>,
}

/// A condition on arguments, as rendered for the agent.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Atom(Atom),
}

/// One test of one argument. `path` is the argument's name, then record fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Atom {
    Given(Vec<String>, bool),
    Compare(Vec<String>, Op, Lit),
    /// A Cedar `like` pattern in Cedar's text form (`*` any text, `\*` a star); true: negated.
    Like(Vec<String>, String, bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }

    fn negated(self) -> Self {
        match self {
            Self::Eq => Self::Ne,
            Self::Ne => Self::Eq,
            Self::Lt => Self::Ge,
            Self::Le => Self::Gt,
            Self::Gt => Self::Le,
            Self::Ge => Self::Lt,
        }
    }

    /// `c op x` as `x op' c`.
    fn flipped(self) -> Self {
        match self {
            Self::Eq | Self::Ne => self,
            Self::Lt => Self::Gt,
            Self::Le => Self::Ge,
            Self::Gt => Self::Lt,
            Self::Ge => Self::Le,
        }
    }
}

/// A literal an argument is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Long(i64),
    Str(String),
    Bool(bool),
    /// Cedar decimal, as its text (`"0.2"`).
    Decimal(String),
}

impl Filtered {
    /// The list result's items with hidden ones taken out and each kept item's
    /// conditions in its `_meta` under [`META_KEY`]; `items` is the list as sent.
    pub fn rewrite(&self, items: Vec<Value>) -> Vec<Value> {
        let mut kept = self.kept.iter().peekable();
        let mut out = Vec::with_capacity(self.kept.len());
        for (index, mut item) in items.into_iter().enumerate() {
            let Some(keep) = kept.next_if(|k| k.index == index) else {
                continue;
            };
            if let (Some(conditions), Value::Object(fields)) = (&keep.conditions, &mut item) {
                let meta = fields
                    .entry("_meta")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(meta) = meta {
                    meta.insert(META_KEY.to_owned(), conditions.to_meta());
                }
            }
            out.push(item);
        }
        out
    }
}

impl Conditions {
    /// The `_meta["toolgate/conditions"]` value (see `docs/lists.md`).
    pub fn to_meta(&self) -> Value {
        let mut meta = Map::new();
        if let Some(arguments) = &self.arguments {
            if arguments.exact {
                if let Some(allow) = &arguments.allow_if {
                    meta.insert("allow_if".into(), allow.to_json());
                }
                if let Some(deny) = &arguments.deny_if {
                    meta.insert("deny_if".into(), deny.to_json());
                }
            }
            meta.insert("exact".into(), Value::Bool(arguments.exact));
            if !arguments.verified {
                meta.insert("verified".into(), Value::Bool(false));
            }
        }
        if self.approval {
            meta.insert("approval".into(), Value::Bool(true));
        }
        meta.insert("text".into(), Value::String(self.text()));
        Value::Object(meta)
    }

    /// One line, for a model to read: `amount > 0 and amount <= 100; needs a human approval`.
    pub fn text(&self) -> String {
        let mut parts = Vec::new();
        if let Some(arguments) = &self.arguments {
            parts.push(arguments.text());
        }
        if self.approval {
            parts.push("each call needs a human approval".to_owned());
        }
        parts.join("; ")
    }
}

impl ArgumentConditions {
    pub fn text(&self) -> String {
        if !self.exact {
            return "conditions on its arguments apply".to_owned();
        }
        if let Some(text) = &self.text {
            return text.clone();
        }
        let mut parts = Vec::new();
        if let Some(allow) = &self.allow_if {
            parts.push(allow.text(false));
        }
        if let Some(deny) = &self.deny_if {
            parts.push(format!("unless {}", deny.text(false)));
        }
        match parts.is_empty() {
            true => "conditions on its arguments apply".to_owned(),
            false => parts.join(", "),
        }
    }
}

impl Cond {
    pub fn to_json(&self) -> Value {
        match self {
            Self::All(items) => {
                json!({"all_of": items.iter().map(Cond::to_json).collect::<Vec<_>>()})
            }
            Self::Any(items) => {
                json!({"any_of": items.iter().map(Cond::to_json).collect::<Vec<_>>()})
            }
            Self::Atom(atom) => atom.to_json(),
        }
    }

    fn text(&self, nested: bool) -> String {
        let join = |items: &[Cond], word: &str| {
            let texts: Vec<String> = items.iter().map(|c| c.text(true)).collect();
            let joined = texts.join(word);
            match nested && items.len() > 1 {
                true => format!("({joined})"),
                false => joined,
            }
        };
        match self {
            Self::All(items) => join(items, " and "),
            Self::Any(items) => join(items, " or "),
            Self::Atom(atom) => atom.text(),
        }
    }
}

impl Atom {
    fn to_json(&self) -> Value {
        let arg = |path: &[String]| Value::String(path.join("."));
        match self {
            Self::Given(path, given) => {
                json!({"arg": arg(path), "op": if *given { "given" } else { "not_given" }})
            }
            Self::Compare(path, op, lit) => {
                json!({"arg": arg(path), "op": op.text(), "value": lit.to_json()})
            }
            Self::Like(path, pattern, negated) => {
                json!({"arg": arg(path), "op": if *negated { "not_like" } else { "like" }, "value": pattern})
            }
        }
    }

    fn text(&self) -> String {
        match self {
            Self::Given(path, true) => format!("{} is given", path.join(".")),
            Self::Given(path, false) => format!("{} is not given", path.join(".")),
            Self::Compare(path, op, lit) => {
                format!("{} {} {}", path.join("."), op.text(), lit.text())
            }
            Self::Like(path, pattern, negated) => format!(
                "{} {} {}",
                path.join("."),
                if *negated { "not like" } else { "like" },
                Value::String(pattern.clone())
            ),
        }
    }

    fn path(&self) -> &[String] {
        match self {
            Self::Given(path, _) | Self::Compare(path, ..) | Self::Like(path, ..) => path,
        }
    }
}

impl Lit {
    fn to_json(&self) -> Value {
        match self {
            Self::Long(n) => Value::from(*n),
            Self::Str(s) => Value::String(s.clone()),
            Self::Bool(b) => Value::Bool(*b),
            Self::Decimal(d) => json!({ "decimal": d }),
        }
    }

    fn text(&self) -> String {
        match self {
            Self::Long(n) => n.to_string(),
            Self::Str(s) => Value::String(s.clone()).to_string(),
            Self::Bool(b) => b.to_string(),
            Self::Decimal(d) => d.clone(),
        }
    }
}

/// How one item is to be listed.
enum Verdict {
    Listed(Option<Conditions>),
    Hidden(Reason, Vec<String>, String),
}

impl Lister<'_, '_> {
    /// Filters a list result's items (as the server sent them, in order).
    pub fn filter(&self, method: ListMethod, items: &[Value]) -> Filtered {
        let mut filtered = Filtered {
            method,
            kept: Vec::new(),
            hidden: Vec::new(),
        };
        for (index, item) in items.iter().enumerate() {
            let name = item.get(method.name_key()).and_then(Value::as_str);
            let verdict = match name {
                None => Verdict::Hidden(
                    Reason::NotPermitted,
                    Vec::new(),
                    format!("the item has no `{}`", method.name_key()),
                ),
                Some(name) => self.item(method, name),
            };
            let name = name.unwrap_or_default().to_owned();
            match verdict {
                Verdict::Listed(conditions) => filtered.kept.push(Kept {
                    index,
                    name,
                    conditions,
                }),
                Verdict::Hidden(reason, policies, why) => filtered.hidden.push(Hidden {
                    index,
                    name,
                    reason,
                    policies,
                    why,
                }),
            }
        }
        filtered
    }

    fn call(&self, method: ListMethod, name: &str) -> Call {
        Call {
            action: method.action(),
            resource_kind: method.kind(),
            resource_id: format!("{}/{name}", self.facts.server),
            name: Some(name.to_owned()),
            arguments: None,
            rpc: Some(RpcMessage {
                method: method.action().id().to_owned(),
                id: Some(Value::from(0)),
                protocol_version: self.facts.protocol_version.map(str::to_owned),
            }),
            a2a: None,
        }
    }

    fn item(&self, method: ListMethod, name: &str) -> Verdict {
        let call = self.call(method, name);
        match method {
            ListMethod::Tools => self.tool(&call),
            ListMethod::Prompts | ListMethod::Resources => match self.permitted(&call) {
                Ok(()) => Verdict::Listed(None),
                Err(denied) => denied.hidden(),
            },
            ListMethod::ResourceTemplates => self.template(&call),
        }
    }

    /// A resource template: listed unless every read it could make is denied. The
    /// URIs it expands to are unknown, so it is decided as an uncatalogued resource of
    /// the server, and for each catalogued or policy-named resource of the server;
    /// listed with inexact conditions unless the uncatalogued one is permitted.
    fn template(&self, call: &Call) -> Verdict {
        let first = match self.permitted(call) {
            Ok(()) => return Verdict::Listed(None),
            Err(denied) => denied,
        };
        let prefix = format!("{}/", self.facts.server);
        let named = self.store.mcp_resources_named(&prefix);
        let pattern = call
            .name
            .as_deref()
            .map(template_pattern)
            .unwrap_or_default();
        let could = named.iter().any(|id| {
            let uri = id.strip_prefix(&prefix).unwrap_or_default();
            matches_template(&pattern, uri)
                && self
                    .permitted(&Call {
                        resource_id: id.clone(),
                        name: Some(uri.to_owned()),
                        ..call.clone()
                    })
                    .is_ok()
        });
        // `context.name` is the URI read: a policy testing it may allow URIs of the
        // template, which a template's own text does not show. Stay listed then.
        let reads_name = self.reads_name(call);
        match could || reads_name {
            true => Verdict::Listed(Some(Conditions {
                arguments: Some(ArgumentConditions {
                    allow_if: None,
                    deny_if: None,
                    exact: false,
                    verified: could,
                    witness: None,
                    text: None,
                }),
                approval: false,
            })),
            false => first.hidden(),
        }
    }

    /// True when a policy that could apply to reads on this server tests `context.name`.
    fn reads_name(&self, call: &Call) -> bool {
        let Ok(principal) = self.principal_uid() else {
            return true;
        };
        let Some(action) = self.store.action(call.action.id()) else {
            return true;
        };
        let resource = self
            .store
            .types
            .uid(&self.store.types.mcp_resource, &call.resource_id);
        self.store
            .policies_for(&principal, action, &resource)
            .policies
            .policies()
            .any(|p| p.effect() == Effect::Permit && crate::policy::reads_context(p, "name"))
    }

    fn principal_uid(&self) -> Result<EntityUid, ()> {
        let types = &self.store.types;
        Ok(match &self.facts.identity.principal {
            Principal::Agent(id) => types.uid(&types.agent, id.as_str()),
            Principal::Unauthenticated => types.uid(&types.unauthenticated, "anonymous"),
        })
    }

    /// The principals a call must be permitted for: the caller, then each SPIFFE actor
    /// of its token's delegation chain when they are checked.
    fn principals(&self) -> Vec<(EntityUid, bool)> {
        let mut all: Vec<(EntityUid, bool)> = self
            .principal_uid()
            .into_iter()
            .map(|p| (p, false))
            .collect();
        if let (true, Some(credential)) = (self.actors_checked, self.facts.credential) {
            all.extend(
                credential
                    .delegation
                    .iter()
                    .filter(|a| crate::spiffe::SpiffeId::parse(a).is_some())
                    .map(|actor| (self.store.types.uid(&self.store.types.agent, actor), true)),
            );
        }
        all
    }

    fn tool(&self, call: &Call) -> Verdict {
        let approval =
            call.action.needs_approval() && self.store.requires_approval(&call.resource_id);
        let listed = |arguments: Option<ArgumentConditions>| {
            Verdict::Listed((arguments.is_some() || approval).then_some(Conditions {
                arguments,
                approval,
            }))
        };
        let bare = self.permitted(call);
        // A policy that may error on some arguments can vanish from the residuals
        // (see `PolicyStore::may_error`): conditions are then neither exact nor complete.
        let may_error = self.principals().iter().any(|(principal, _)| {
            self.store.action(call.action.id()).is_some_and(|action| {
                let resource = self
                    .store
                    .types
                    .uid(&self.store.types.tool, &call.resource_id);
                self.store
                    .policies_for(principal, action, &resource)
                    .policies
                    .policies()
                    .any(|p| self.store.may_error(p.id().as_ref(), &call.resource_id))
            })
        });
        let mut residuals = Residuals {
            may_error,
            ..Residuals::default()
        };
        for (principal, actor) in self.principals() {
            match self.partial(call, principal, actor) {
                Ok(Partial::Allowed) => {}
                Ok(Partial::Residual(found)) => residuals.add(found),
                Ok(Partial::Denied(denied)) => {
                    // A definite no for the call with arguments; without arguments it may still pass.
                    return match bare {
                        Ok(()) => listed(Some(ArgumentConditions::inexact(true, None))),
                        Err(_) => denied.hidden(),
                    };
                }
                Err(denied) => return denied.hidden(),
            }
        }
        if residuals.is_empty() && residuals.may_error {
            // Allowed for unknown arguments, but an erring policy could refuse some.
            return match bare {
                Ok(()) => listed(Some(ArgumentConditions::inexact(true, None))),
                Err(_) => match self.witness(call, &residuals, false) {
                    Search::Found(witness) => {
                        listed(Some(ArgumentConditions::inexact(true, witness)))
                    }
                    _ => listed(Some(ArgumentConditions::inexact(false, None))),
                },
            };
        }
        if residuals.is_empty() {
            return match bare {
                Ok(()) => listed(None),
                // Allowed with arguments, not without: the call must give arguments.
                Err(_) => listed(Some(ArgumentConditions::inexact(
                    true,
                    Some(Value::Object(Map::new())),
                ))),
            };
        }
        // Residual permits beside a permit that holds, and no residual forbid: they
        // cannot change the decision unless they error, and comparisons on top-level
        // arguments (guarded by `has`, as validation demands) never error.
        if residuals.harmless() && bare.is_ok() {
            return listed(None);
        }
        let (allow_if, deny_if, text) = residuals.conditions();
        let exact = !residuals.opaque && !residuals.may_error;
        let search = self.witness(call, &residuals, bare.is_ok());
        let arguments = |verified: bool, witness: Option<Value>| ArgumentConditions {
            allow_if: allow_if.clone(),
            deny_if: deny_if.clone(),
            exact,
            verified,
            witness,
            text: text.clone(),
        };
        match search {
            Search::Found(witness) => listed(Some(arguments(true, witness))),
            Search::Inconclusive => listed(Some(arguments(false, None))),
            Search::None => Verdict::Hidden(
                Reason::NotPermitted,
                residuals.ids.clone(),
                "no arguments satisfy the policies' conditions".to_owned(),
            ),
        }
    }

    /// Decides the call as the gate would, without approval and without recording:
    /// argument types, Cedar (with session and rate), the delegated actors.
    fn permitted(&self, call: &Call) -> Result<(), Denied> {
        if let Some(arguments) = &call.arguments {
            self.store
                .arguments
                .check(call, arguments)
                .map_err(|refusal| Denied {
                    reason: refusal.reason,
                    policies: Vec::new(),
                    why: refusal.errors.join("; "),
                })?;
        }
        let behaviour = self.behaviour(call).map_err(Denied::internal)?;
        let facts = Facts {
            behaviour: &behaviour,
            ..self.facts
        };
        let built =
            cedar_request::build(self.store, call, &facts).map_err(|e| Denied::internal(e.0))?;
        let verdict = authorize(self.authorizer, self.store, &built);
        if let Some(reason) = verdict.denied {
            return Err(Denied::of(
                self.store,
                reason,
                verdict.policies,
                verdict.errors,
            ));
        }
        if self.actors_checked {
            crate::delegation::check(self.authorizer, self.store, call, &facts).map_err(
                |refusal| Denied {
                    reason: refusal.reason,
                    policies: refusal.policies,
                    why: refusal.errors.join("; "),
                },
            )?;
        }
        Ok(())
    }

    /// The same lister, with the definitions the list showed.
    pub fn with_definitions(self, definitions: crate::definition::Observed) -> Self {
        Self {
            definitions,
            ..self
        }
    }

    /// `facts.behaviour`, with the call's `context.session` and `context.rate` when
    /// history is kept, and a tool call's `context.tool_definition`.
    fn behaviour(&self, call: &Call) -> Result<Vec<Pair>, String> {
        let mut behaviour = self.facts.behaviour.to_vec();
        if call.action == Action::ToolsCall {
            behaviour.push(self.definitions.get(&call.resource_id).context());
        }
        if let Some(h) = &self.history {
            let idle = i64::try_from(h.config.idle_seconds).unwrap_or(i64::MAX);
            let now = self.facts.now_unix;
            behaviour.push(crate::behaviour::session(
                self.store, h.shard, h.agent, h.session, now, idle,
            )?);
            behaviour.push(crate::behaviour::rate(
                h.shard,
                h.agent,
                &call.resource_id,
                now,
            )?);
        }
        Ok(behaviour)
    }

    /// Cedar's partial evaluation of the call with its arguments unknown, for one principal.
    fn partial(&self, call: &Call, principal: EntityUid, actor: bool) -> Result<Partial, Denied> {
        let behaviour = self.behaviour(call).map_err(Denied::internal)?;
        // A delegated actor is checked as if it made the call itself, without the token.
        let facts = Facts {
            behaviour: &behaviour,
            credential: if actor { None } else { self.facts.credential },
            ..self.facts
        };
        let built =
            cedar_request::build_unknown_arguments(self.store, principal, call, &facts, UNKNOWN)
                .map_err(|e| Denied::internal(e.0))?;
        let slice = self
            .store
            .policies_for(&built.principal, &built.action, &built.resource);
        let entities = self.store.entities_for(&built.resource);
        let request = built.request().map_err(|e| Denied::internal(e.0))?;
        let response = self
            .authorizer
            .is_authorized_partial(request, &slice.policies, &entities);
        Ok(Partial::read(self.store, &response, actor))
    }

    /// Looks for arguments with which the call is permitted (see the module doc).
    fn witness(&self, call: &Call, residuals: &Residuals, bare_ok: bool) -> Search {
        if bare_ok {
            return Search::Found(None);
        }
        let declared = self.store.arguments.of(call);
        let mut complete = !residuals.opaque && !residuals.may_error;
        let mut fields: Vec<(String, Vec<Value>)> = Vec::new();
        for name in residuals.fields() {
            let ty = declared.and_then(|d| d.get(&name));
            let (values, exact) = candidates(ty, &residuals.atoms_on(&name), &residuals.literals);
            complete &= exact;
            fields.push((name, values));
        }
        let total = fields
            .iter()
            .try_fold(1usize, |n, (_, values)| n.checked_mul(values.len() + 1));
        if total.is_none_or(|n| n > MAX_CANDIDATES) {
            complete = false;
        }
        let mut choice = vec![0usize; fields.len()];
        for _ in 0..MAX_CANDIDATES {
            let mut arguments = Map::new();
            for ((name, values), &at) in fields.iter().zip(&choice) {
                // Position 0 leaves the argument out.
                if let Some(value) = at.checked_sub(1).and_then(|i| values.get(i)) {
                    arguments.insert(name.clone(), value.clone());
                }
            }
            let arguments = Value::Object(arguments);
            let attempt = Call {
                arguments: Some(arguments.clone()),
                ..call.clone()
            };
            if self.permitted(&attempt).is_ok() {
                return Search::Found(Some(arguments));
            }
            if !advance(&mut choice, &fields) {
                return match complete {
                    true => Search::None,
                    false => Search::Inconclusive,
                };
            }
        }
        Search::Inconclusive
    }
}

/// Steps `choice` to the next combination; false after the last.
fn advance(choice: &mut [usize], fields: &[(String, Vec<Value>)]) -> bool {
    for (at, (_, values)) in choice.iter_mut().zip(fields) {
        if *at < values.len() {
            *at += 1;
            return true;
        }
        *at = 0;
    }
    false
}

enum Search {
    /// Permitted with these arguments (`None`: without arguments).
    Found(Option<Value>),
    /// No candidate passes, and the candidates were complete.
    None,
    /// No candidate passes, but the candidates could have missed one.
    Inconclusive,
}

/// Why every call to an item is refused.
struct Denied {
    reason: Reason,
    policies: Vec<String>,
    why: String,
}

impl Denied {
    fn internal(error: impl Into<String>) -> Self {
        Self {
            reason: Reason::PolicyError,
            policies: Vec::new(),
            why: error.into(),
        }
    }

    /// A Cedar denial: a forbid that is a rate limit says so, as the gate's refusal would.
    fn of(store: &PolicyStore, reason: Reason, policies: Vec<String>, errors: Vec<String>) -> Self {
        let rate =
            reason == Reason::Forbidden && policies.iter().any(|p| store.rate_fields(p).is_some());
        let declared = (reason == Reason::Forbidden)
            .then(|| store.declared_refusal(&policies))
            .flatten();
        let reason = match (rate, declared) {
            (true, _) => Reason::RateLimited,
            (false, Some(declared)) => declared,
            (false, None) => reason,
        };
        let why = match (reason, errors.is_empty()) {
            (_, false) => errors.join("; "),
            (Reason::NotPermitted, true) => "no policy permits it".to_owned(),
            (Reason::ToolDefinitionChanged, true) => format!(
                "its definition changed since it was pinned (forbidden by {})",
                policies.join(", ")
            ),
            (_, true) => format!("forbidden by {}", policies.join(", ")),
        };
        Self {
            reason,
            policies,
            why,
        }
    }

    fn hidden(self) -> Verdict {
        Verdict::Hidden(self.reason, self.policies, self.why)
    }
}

/// One principal's partial decision.
enum Partial {
    /// Allowed whatever the arguments: no residual, no error.
    Allowed,
    Denied(Denied),
    Residual(Residuals),
}

impl Partial {
    fn read(store: &PolicyStore, response: &PartialResponse, actor: bool) -> Self {
        let mut errored: Vec<String> = response
            .definitely_errored()
            .map(ToString::to_string)
            .collect();
        errored.sort();
        // Cedar's partial response is unordered: order by id, so conditions read the same every time.
        let mut residuals: Vec<cedar_policy::Policy> = response.nontrivial_residuals().collect();
        residuals.sort_by_key(|p| p.id().to_string());
        let satisfied: Vec<cedar_policy::Policy> = response.definitely_satisfied().collect();
        let mut forbids: Vec<String> = satisfied
            .iter()
            .filter(|p| p.effect() == Effect::Forbid)
            .map(|p| p.id().to_string())
            .collect();
        forbids.sort();
        let deny = |reason, policies: Vec<String>, errors: Vec<String>| {
            let mut denied = Denied::of(store, reason, policies, errors);
            if actor && denied.reason != Reason::PolicyError {
                denied.reason = Reason::DelegatedActorNotPermitted;
                denied.why = format!("a delegated actor: {}", denied.why);
            }
            Self::Denied(denied)
        };
        if !forbids.is_empty() {
            return deny(Reason::Forbidden, forbids, Vec::new());
        }
        let permits = satisfied
            .iter()
            .chain(&residuals)
            .any(|p| p.effect() == Effect::Permit);
        if !permits && errored.is_empty() {
            return deny(Reason::NotPermitted, Vec::new(), Vec::new());
        }
        if residuals.is_empty() {
            return match (errored.is_empty(), response.decision()) {
                (false, _) => deny(
                    Reason::PolicyError,
                    errored.clone(),
                    vec![format!(
                        "policies {} could not be evaluated",
                        errored.join(", ")
                    )],
                ),
                (true, Some(Decision::Allow)) => Self::Allowed,
                (true, _) => deny(Reason::NotPermitted, Vec::new(), Vec::new()),
            };
        }
        let mut found = Residuals {
            satisfied_permit: satisfied.iter().any(|p| p.effect() == Effect::Permit),
            errored: !errored.is_empty(),
            ..Residuals::default()
        };
        for policy in &residuals {
            found.add_policy(policy);
        }
        Self::Residual(found)
    }
}

/// The residual policies of one or more principals' partial decisions.
#[derive(Default)]
struct Residuals {
    /// Per principal: whether a permit holds outright, and its residual permits' conditions.
    permits: Vec<(bool, Vec<Cond3>)>,
    forbids: Vec<Cond3>,
    ids: Vec<String>,
    /// Some residual could not be read as conditions on top-level arguments.
    opaque: bool,
    /// Some policy errored whatever the arguments (then only a search can tell).
    errored: bool,
    /// Some policy that applies could error on some arguments.
    may_error: bool,
    satisfied_permit: bool,
    /// Every literal the residuals mention, for candidates.
    literals: Vec<Lit>,
}

impl Residuals {
    fn is_empty(&self) -> bool {
        self.ids.is_empty() && !self.errored
    }

    fn add_policy(&mut self, policy: &cedar_policy::Policy) {
        self.ids.push(policy.id().to_string());
        let json = policy.to_json().unwrap_or(Value::Null);
        collect_literals(&json, &mut self.literals);
        let condition = json
            .get("conditions")
            .and_then(Value::as_array)
            .map(|conditions| {
                let parts: Vec<Cond3> = conditions
                    .iter()
                    .map(|c| {
                        let body = read(c.get("body").unwrap_or(&Value::Null));
                        match c.get("kind").and_then(Value::as_str) {
                            Some("unless") => body.not(),
                            _ => body,
                        }
                    })
                    .collect();
                Cond3::All(parts).simplified()
            })
            .unwrap_or(Cond3::Opaque);
        self.opaque |= condition.has_opaque();
        match policy.effect() {
            Effect::Permit => match self.permits.last_mut() {
                Some((_, list)) => list.push(condition),
                None => self.permits.push((false, vec![condition])),
            },
            Effect::Forbid => self.forbids.push(condition),
        }
    }

    /// Merges another principal's residuals (each principal's permits stay apart).
    fn add(&mut self, mut other: Residuals) {
        let permits = std::mem::take(&mut other.permits)
            .into_iter()
            .flat_map(|(_, list)| list)
            .collect::<Vec<_>>();
        self.permits.push((other.satisfied_permit, permits));
        self.forbids.append(&mut other.forbids);
        self.ids.append(&mut other.ids);
        self.literals.append(&mut other.literals);
        self.opaque |= other.opaque;
        self.errored |= other.errored;
    }

    /// Only residual permits, each beside a permit that holds, that cannot error.
    fn harmless(&self) -> bool {
        !self.errored
            && !self.may_error
            && !self.opaque
            && self.forbids.is_empty()
            && self
                .permits
                .iter()
                .all(|(satisfied, list)| *satisfied || list.is_empty())
    }

    /// `allow_if`, `deny_if`, and the one-line text: `allow and not deny` when that is a
    /// plain conjunction (`path like "/docs/*"`), else `allow, unless deny`.
    fn conditions(&self) -> (Option<Cond>, Option<Cond>, Option<String>) {
        let allows: Vec<Cond3> = self
            .permits
            .iter()
            .filter(|(satisfied, _)| !satisfied)
            .map(|(_, list)| Cond3::Any(list.clone()).simplified())
            .collect();
        let allow = Cond3::All(allows).simplified();
        let deny = Cond3::Any(self.forbids.clone()).simplified();
        let (allow_if, deny_if) = (allow.rendered(), deny.rendered());
        let together = Cond3::All(vec![allow, deny.not()]).simplified();
        let plain = match &together {
            Cond3::Atom(_) => true,
            Cond3::All(items) => items.iter().all(|c| matches!(c, Cond3::Atom(_))),
            _ => false,
        };
        let text = match (plain, together.rendered()) {
            (true, Some(cond)) => Some(cond.text(false)),
            _ => None,
        };
        (allow_if, deny_if, text)
    }

    /// The top-level arguments the residuals test.
    fn fields(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        self.each_atom(&mut |atom| {
            if let Some(first) = atom.path().first() {
                if !names.contains(first) {
                    names.push(first.clone());
                }
            }
        });
        names
    }

    fn atoms_on(&self, field: &str) -> Vec<Atom> {
        let mut atoms = Vec::new();
        self.each_atom(&mut |atom| {
            if atom.path().first().map(String::as_str) == Some(field) {
                atoms.push(atom.clone());
            }
        });
        atoms
    }

    fn each_atom(&self, visit: &mut dyn FnMut(&Atom)) {
        for cond in self
            .permits
            .iter()
            .flat_map(|(_, list)| list)
            .chain(&self.forbids)
        {
            cond.each_atom(visit);
        }
    }
}

/// A residual condition while it is read: with constants and what could not be read.
#[derive(Debug, Clone, PartialEq)]
enum Cond3 {
    True,
    False,
    All(Vec<Cond3>),
    Any(Vec<Cond3>),
    Atom(Atom),
    /// Part of the residual that is not a test of a top-level argument against a constant.
    Opaque,
}

impl Cond3 {
    fn not(self) -> Self {
        match self {
            Self::True => Self::False,
            Self::False => Self::True,
            Self::All(items) => Self::Any(items.into_iter().map(Self::not).collect()),
            Self::Any(items) => Self::All(items.into_iter().map(Self::not).collect()),
            Self::Atom(Atom::Given(path, given)) => Self::Atom(Atom::Given(path, !given)),
            // A test on an argument is false when the argument is not given.
            Self::Atom(Atom::Compare(path, op, lit)) => Self::Any(vec![
                Self::Atom(Atom::Given(path.clone(), false)),
                Self::Atom(Atom::Compare(path, op.negated(), lit)),
            ]),
            Self::Atom(Atom::Like(path, pattern, negated)) => Self::Any(vec![
                Self::Atom(Atom::Given(path.clone(), false)),
                Self::Atom(Atom::Like(path, pattern, !negated)),
            ]),
            Self::Opaque => Self::Opaque,
        }
    }

    fn simplified(self) -> Self {
        match self {
            Self::All(items) => {
                let mut out = Vec::new();
                for item in items.into_iter().map(Self::simplified) {
                    match item {
                        Self::True => {}
                        Self::False => return Self::False,
                        Self::All(inner) => out.extend(inner),
                        other => out.push(other),
                    }
                }
                // A test on an argument needs it given: `amount is given` adds nothing
                // beside one, and `amount is not given` is false beside either.
                let tested: Vec<Vec<String>> = out
                    .iter()
                    .filter_map(|c| match c {
                        Self::Atom(a @ (Atom::Compare(..) | Atom::Like(..))) => {
                            Some(a.path().to_vec())
                        }
                        _ => None,
                    })
                    .collect();
                let given: Vec<Vec<String>> = out
                    .iter()
                    .filter_map(|c| match c {
                        Self::Atom(Atom::Given(path, true)) => Some(path.clone()),
                        _ => None,
                    })
                    .chain(tested.iter().cloned())
                    .collect();
                if !given.is_empty() {
                    let mut again = false;
                    for item in &mut out {
                        if let Self::Any(choices) = item {
                            let before = choices.len();
                            choices.retain(|c| {
                                !matches!(c, Self::Atom(Atom::Given(path, false)) if given.contains(path))
                            });
                            again |= choices.len() != before;
                        }
                    }
                    if again {
                        return Self::All(out).simplified();
                    }
                }
                out.retain(|c| match c {
                    Self::Atom(Atom::Given(path, true)) => {
                        !tested.iter().any(|t| t.starts_with(path))
                    }
                    _ => true,
                });
                dedup(&mut out);
                match out.len() {
                    0 => Self::True,
                    1 => out.pop().unwrap_or(Self::True),
                    _ => Self::All(out),
                }
            }
            Self::Any(items) => {
                let mut out = Vec::new();
                for item in items.into_iter().map(Self::simplified) {
                    match item {
                        Self::False => {}
                        Self::True => return Self::True,
                        Self::Any(inner) => out.extend(inner),
                        other => out.push(other),
                    }
                }
                dedup(&mut out);
                match out.len() {
                    0 => Self::False,
                    1 => out.pop().unwrap_or(Self::False),
                    _ => Self::Any(out),
                }
            }
            other => other,
        }
    }

    fn has_opaque(&self) -> bool {
        match self {
            Self::Opaque => true,
            Self::All(items) | Self::Any(items) => items.iter().any(Self::has_opaque),
            _ => false,
        }
    }

    /// The condition for the agent; `None` when it always holds (or never: then a
    /// search decides, and an unsatisfiable condition hides the tool).
    fn rendered(&self) -> Option<Cond> {
        match self {
            Self::True | Self::False | Self::Opaque => None,
            Self::Atom(atom) => Some(Cond::Atom(atom.clone())),
            Self::All(items) => Some(Cond::All(items.iter().filter_map(Self::rendered).collect())),
            Self::Any(items) => Some(Cond::Any(items.iter().filter_map(Self::rendered).collect())),
        }
    }

    fn each_atom(&self, visit: &mut dyn FnMut(&Atom)) {
        match self {
            Self::Atom(atom) => visit(atom),
            Self::All(items) | Self::Any(items) => items.iter().for_each(|c| c.each_atom(visit)),
            _ => {}
        }
    }
}

fn dedup(items: &mut Vec<Cond3>) {
    let mut seen: Vec<Cond3> = Vec::with_capacity(items.len());
    items.retain(|item| {
        let new = !seen.contains(item);
        if new {
            seen.push(item.clone());
        }
        new
    });
}

/// What an expression of the residual's JSON form refers to.
enum Ref<'v> {
    /// The unknown arguments record, then these fields.
    Argument(Vec<String>),
    /// A record literal that holds the unknown somewhere (the context's `arguments`).
    Record(&'v Map<String, Value>),
}

fn reference(expr: &Value) -> Option<Ref<'_>> {
    if let Some(unknown) = expr.get("unknown") {
        return (unknown.pointer("/0/Value").and_then(Value::as_str) == Some(UNKNOWN))
            .then(|| Ref::Argument(Vec::new()));
    }
    if let Some(Value::Object(fields)) = expr.get("Record") {
        return Some(Ref::Record(fields));
    }
    let access = expr.get(".")?;
    let attr = access.get("attr")?.as_str()?;
    match reference(access.get("left")?)? {
        Ref::Argument(mut path) => {
            path.push(attr.to_owned());
            Some(Ref::Argument(path))
        }
        Ref::Record(fields) => reference(fields.get(attr)?),
    }
}

fn literal(expr: &Value) -> Option<Lit> {
    if let Some(value) = expr.get("Value") {
        return match value {
            Value::Bool(b) => Some(Lit::Bool(*b)),
            Value::String(s) => Some(Lit::Str(s.clone())),
            Value::Number(n) => n.as_i64().map(Lit::Long),
            _ => None,
        };
    }
    let text = expr.get("decimal")?.pointer("/0/Value")?.as_str()?;
    Some(Lit::Decimal(text.to_owned()))
}

/// Reads a residual expression (Cedar's JSON form) as a condition on the arguments.
fn read(expr: &Value) -> Cond3 {
    let Value::Object(node) = expr else {
        return Cond3::Opaque;
    };
    let Some((op, body)) = node.iter().next().filter(|_| node.len() == 1) else {
        return Cond3::Opaque;
    };
    let pair = || Some((body.get("left")?, body.get("right")?));
    match op.as_str() {
        "Value" => match body {
            Value::Bool(true) => Cond3::True,
            Value::Bool(false) => Cond3::False,
            _ => Cond3::Opaque,
        },
        "&&" | "||" => match pair() {
            Some((left, right)) => {
                let parts = vec![read(left), read(right)];
                match op.as_str() {
                    "&&" => Cond3::All(parts),
                    _ => Cond3::Any(parts),
                }
            }
            None => Cond3::Opaque,
        },
        "!" => body.get("arg").map_or(Cond3::Opaque, |arg| read(arg).not()),
        "has" => read_has(body),
        "==" | "!=" | "<" | "<=" | ">" | ">=" => {
            let op = match op.as_str() {
                "==" => Op::Eq,
                "!=" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                _ => Op::Ge,
            };
            pair().map_or(Cond3::Opaque, |(l, r)| compare(l, op, r))
        }
        "lessThan" | "lessThanOrEqual" | "greaterThan" | "greaterThanOrEqual" => {
            let op = match op.as_str() {
                "lessThan" => Op::Lt,
                "lessThanOrEqual" => Op::Le,
                "greaterThan" => Op::Gt,
                _ => Op::Ge,
            };
            match body.as_array().map(Vec::as_slice) {
                Some([l, r]) => compare(l, op, r),
                _ => Cond3::Opaque,
            }
        }
        "like" => {
            let (Some(Ref::Argument(path)), Some(pattern)) = (
                body.get("left").and_then(reference),
                body.get("pattern").and_then(pattern_text),
            ) else {
                return Cond3::Opaque;
            };
            top_level(path).map_or(Cond3::Opaque, |p| {
                Cond3::Atom(Atom::Like(p, pattern, false))
            })
        }
        _ => Cond3::Opaque,
    }
}

/// Only a top-level argument's tests are read as atoms (a nested field may be required,
/// and reading it errors when absent): deeper paths are opaque.
fn top_level(path: Vec<String>) -> Option<Vec<String>> {
    (path.len() == 1).then_some(path)
}

fn read_has(body: &Value) -> Cond3 {
    let attrs: Vec<&str> = match body.get("attr") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => return Cond3::Opaque,
    };
    let Some(mut at) = body.get("left").and_then(reference) else {
        return Cond3::Opaque;
    };
    let mut rest = attrs.into_iter();
    while let Ref::Record(fields) = at {
        let Some(attr) = rest.next() else {
            return Cond3::Opaque;
        };
        at = match fields.get(attr) {
            Some(inner) => match reference(inner) {
                Some(r) => r,
                None => {
                    return if rest.len() == 0 {
                        Cond3::True
                    } else {
                        Cond3::Opaque
                    }
                }
            },
            None => return Cond3::False,
        };
    }
    let Ref::Argument(mut path) = at else {
        return Cond3::Opaque;
    };
    path.extend(rest.map(str::to_owned));
    match path.len() {
        0 => Cond3::True,
        1 => Cond3::Atom(Atom::Given(path, true)),
        _ => Cond3::Opaque,
    }
}

fn compare(left: &Value, op: Op, right: &Value) -> Cond3 {
    let (path, op, lit) = match (
        reference(left),
        literal(right),
        reference(right),
        literal(left),
    ) {
        (Some(Ref::Argument(path)), Some(lit), ..) => (path, op, lit),
        (_, _, Some(Ref::Argument(path)), Some(lit)) => (path, op.flipped(), lit),
        _ => return Cond3::Opaque,
    };
    match top_level(path) {
        Some(path) => Cond3::Atom(Atom::Compare(path, op, lit)),
        None => Cond3::Opaque,
    }
}

/// A `like` pattern in Cedar's JSON form as Cedar text.
fn pattern_text(pattern: &Value) -> Option<String> {
    let mut text = String::new();
    for part in pattern.as_array()? {
        match part {
            Value::String(w) if w == "Wildcard" => text.push('*'),
            other => {
                let literal = other.get("Literal")?.as_str()?;
                text.push_str(&literal.replace('\\', "\\\\").replace('*', "\\*"));
            }
        }
    }
    Some(text)
}

/// The pattern's parts: literal text and wildcards.
fn pattern_parts(pattern: &str) -> Vec<Option<String>> {
    let mut parts: Vec<Option<String>> = Vec::new();
    let mut chars = pattern.chars();
    let mut literal = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => literal.extend(chars.next()),
            '*' => {
                parts.push(Some(std::mem::take(&mut literal)));
                parts.push(None);
            }
            c => literal.push(c),
        }
    }
    parts.push(Some(literal));
    parts
}

fn collect_literals(json: &Value, found: &mut Vec<Lit>) {
    match json {
        Value::Object(fields) => {
            if let Some(lit) = literal(json) {
                if !found.contains(&lit) {
                    found.push(lit);
                }
            }
            fields.values().for_each(|v| collect_literals(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_literals(v, found)),
        _ => {}
    }
}

/// Candidate values for one top-level argument, and whether they are complete for
/// `atoms` (every truth assignment of the atoms some value reaches, a candidate reaches).
/// `literals`: every constant of the residuals, tried too (not needed for completeness).
fn candidates(ty: Option<&ArgumentType>, atoms: &[Atom], literals: &[Lit]) -> (Vec<Value>, bool) {
    let mut values: Vec<Value> = Vec::new();
    let mut push = |v: Value| {
        if !values.contains(&v) {
            values.push(v);
        }
    };
    let only_given = atoms.iter().all(|a| matches!(a, Atom::Given(..)));
    let exact = match ty {
        Some(ArgumentType::Long) => {
            let mut exact = true;
            let mut constants: Vec<i64> = Vec::new();
            for atom in atoms {
                match atom {
                    Atom::Compare(_, _, Lit::Long(c)) => constants.push(*c),
                    Atom::Given(..) => {}
                    _ => exact = false,
                }
            }
            constants.extend(literals.iter().filter_map(|l| match l {
                Lit::Long(c) => Some(*c),
                _ => None,
            }));
            constants.push(0);
            for c in constants {
                for d in [-1i64, 0, 1] {
                    if let Some(v) = c.checked_add(d) {
                        push(Value::from(v));
                    }
                }
            }
            exact
        }
        Some(ArgumentType::Decimal) => {
            let mut exact = true;
            let mut constants: Vec<i64> = Vec::new();
            for atom in atoms {
                match atom {
                    Atom::Compare(_, _, Lit::Decimal(c)) => match decimal_units(c) {
                        Some(units) => constants.push(units),
                        None => exact = false,
                    },
                    Atom::Given(..) => {}
                    _ => exact = false,
                }
            }
            constants.extend(literals.iter().filter_map(|l| match l {
                Lit::Decimal(c) => decimal_units(c),
                _ => None,
            }));
            constants.push(0);
            for c in constants {
                for d in [-1i64, 0, 1] {
                    match c.checked_add(d).and_then(decimal_json) {
                        Some(v) => push(v),
                        None => exact = false,
                    }
                }
            }
            exact
        }
        Some(ArgumentType::Bool) => {
            push(Value::Bool(true));
            push(Value::Bool(false));
            atoms
                .iter()
                .all(|a| matches!(a, Atom::Given(..) | Atom::Compare(_, _, Lit::Bool(_))))
        }
        Some(ArgumentType::String | ArgumentType::Path) => {
            let mut exact = true;
            let mut constants: Vec<String> = Vec::new();
            let mut patterns: Vec<String> = Vec::new();
            for atom in atoms {
                match atom {
                    Atom::Compare(_, Op::Eq | Op::Ne, Lit::Str(s)) => constants.push(s.clone()),
                    Atom::Like(_, p, _) => {
                        if !patterns.contains(p) {
                            patterns.push(p.clone());
                        }
                    }
                    Atom::Given(..) => {}
                    _ => exact = false,
                }
            }
            exact &= patterns.len() <= 1;
            let spare = constants.len() + 1;
            let literal_chars: String = patterns.iter().flat_map(|p| p.chars()).collect();
            let filler = ['q', 'z', 'j', 'k', 'v', 'x', '_']
                .into_iter()
                .find(|c| !literal_chars.contains(*c));
            if filler.is_none() && !patterns.is_empty() {
                exact = false;
            }
            for s in &constants {
                push(Value::String(s.clone()));
            }
            for lit in literals {
                if let Lit::Str(s) = lit {
                    push(Value::String(s.clone()));
                }
            }
            let filler = filler.unwrap_or('q');
            for n in 0..spare {
                // Strings of a character no pattern has: they match no pattern with a literal.
                push(Value::String(filler.to_string().repeat(n)));
                for p in &patterns {
                    let parts = pattern_parts(p);
                    let text: String = parts
                        .iter()
                        .map(|part| match part {
                            Some(literal) => literal.clone(),
                            None => filler.to_string().repeat(n),
                        })
                        .collect();
                    push(Value::String(text));
                }
            }
            exact
        }
        Some(ArgumentType::Set(_)) => {
            push(Value::Array(Vec::new()));
            only_given
        }
        Some(ArgumentType::Record(_)) => {
            push(Value::Object(Map::new()));
            only_given
        }
        Some(ArgumentType::Unchecked) | None => false,
    };
    (values, exact)
}

/// `"0.2"` as ten-thousandths, 2000.
fn decimal_units(text: &str) -> Option<i64> {
    let number: serde_json::Number = serde_json::from_str(text).ok()?;
    let scaled = crate::arguments::decimal_text(&number)?;
    scaled.replace('.', "").parse().ok()
}

/// Ten-thousandths as a JSON number that reads back as exactly that decimal.
fn decimal_json(units: i64) -> Option<Value> {
    let sign = if units < 0 { "-" } else { "" };
    let magnitude = units.unsigned_abs();
    let text = format!("{sign}{}.{:04}", magnitude / 10_000, magnitude % 10_000);
    let number: serde_json::Number = serde_json::from_str(&text).ok()?;
    (crate::arguments::decimal_text(&number).and_then(|t| decimal_units(&t)) == Some(units))
        .then_some(Value::Number(number))
}

impl ArgumentConditions {
    /// Conditions toolgate could not render: listed, verified or not.
    fn inexact(verified: bool, witness: Option<Value>) -> Self {
        Self {
            allow_if: None,
            deny_if: None,
            exact: false,
            verified,
            witness,
            text: None,
        }
    }
}

/// An RFC 6570 template's literal parts, its expressions as wildcards.
fn template_pattern(template: &str) -> Vec<Option<String>> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut in_expression = false;
    for c in template.chars() {
        match (c, in_expression) {
            ('{', false) => {
                parts.push(Some(std::mem::take(&mut literal)));
                parts.push(None);
                in_expression = true;
            }
            ('}', true) => in_expression = false,
            (_, true) => {}
            (c, false) => literal.push(c),
        }
    }
    parts.push(Some(literal));
    parts
}

/// True when `text` matches literal parts and wildcards (`None`) in order.
fn matches_template(parts: &[Option<String>], text: &str) -> bool {
    match parts.split_first() {
        None => text.is_empty(),
        Some((Some(literal), rest)) => text
            .strip_prefix(literal.as_str())
            .is_some_and(|rest_text| matches_template(rest, rest_text)),
        Some((None, rest)) => (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .any(|i| {
                text.get(i..)
                    .is_some_and(|tail| matches_template(rest, tail))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_their_expansions() {
        let parts = template_pattern("file:///{dir}/{name}.txt");
        assert!(matches_template(&parts, "file:///docs/a.txt"));
        assert!(!matches_template(&parts, "file:///docs/a.md"));
    }

    #[test]
    fn patterns_read_back() {
        assert_eq!(
            pattern_parts("a\\*b*c"),
            vec![Some("a*b".into()), None, Some("c".into())]
        );
    }

    #[test]
    fn decimals_round_trip() {
        assert_eq!(decimal_units("0.2"), Some(2000));
        assert_eq!(decimal_json(1999), Some(json!(0.1999)));
        assert_eq!(decimal_json(-5), Some(json!(-0.0005)));
    }
}
