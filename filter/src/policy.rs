//! The policy store: embedded and configured Cedar policies, schema and entities, built and validated once.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::str::FromStr;

use cedar_policy::{
    ActionConstraint, Effect, Entities, Entity, EntityId, EntityTypeName, EntityUid, EvalResult,
    Policy, PolicyId, PolicySet, PrincipalConstraint, ResourceConstraint, Schema, SchemaFragment,
    ValidationMode, ValidationWarning, Validator,
};
use miette::Diagnostic;
use sha2::{Digest, Sha256};

use crate::arguments::ArgumentTypes;
use crate::config::{Config, PolicyMode, PolicySource};
use crate::context_keys::ContextKeys;
use crate::guard::{ContextSource, Guard, Literal, Lookup, Selection, Shape};

/// A named source text, so every error can point at a file and line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

/// The rules for short-lived credentials. Embedded only when `credentials` is
/// configured: without it toolgate never reads a token, `context has token` is
/// always false and these policies could never apply, only cost evaluation time.
pub const CREDENTIAL_POLICIES: Source<'static> = Source {
    name: "policies/credentials.cedar",
    text: include_str!("../../policies/credentials.cedar"),
};

/// Rules on session history. Embedded only when `history` is configured: without
/// it `context has session` and `context has rate` are false.
pub const BEHAVIOUR_POLICIES: Source<'static> = Source {
    name: "policies/behaviour.cedar",
    text: include_str!("../../policies/behaviour.cedar"),
};

/// Rules on live risk. Embedded only when `risk_feed` is configured.
pub const RISK_POLICIES: Source<'static> = Source {
    name: "policies/risk.cedar",
    text: include_str!("../../policies/risk.cedar"),
};

/// What every agent may do on an A2A route (discovery, its own tasks). Embedded only
/// when `a2a` is configured: without it no request is an `a2a/*` call.
pub const A2A_POLICIES: Source<'static> = Source {
    name: "policies/a2a.cedar",
    text: include_str!("../../policies/a2a.cedar"),
};

/// Every feature's embedded rules: what a policy folder is checked with outside Envoy,
/// where no configuration says which features are on.
pub const FEATURE_POLICIES: &[Source<'static>] = &[
    CREDENTIAL_POLICIES,
    BEHAVIOUR_POLICIES,
    RISK_POLICIES,
    A2A_POLICIES,
];

/// The embedded policy files a configuration's features need, besides [`EMBEDDED_POLICIES`].
pub fn feature_policies(config: &Config) -> Vec<Source<'static>> {
    [
        (config.credentials.is_some(), CREDENTIAL_POLICIES),
        (config.history.is_some(), BEHAVIOUR_POLICIES),
        (config.risk_feed.is_some(), RISK_POLICIES),
        (config.a2a.is_some(), A2A_POLICIES),
    ]
    .into_iter()
    .filter_map(|(wanted, source)| wanted.then_some(source))
    .collect()
}

/// The product's own policies, embedded from `policies/` at build time: guardrails
/// that hold whatever a deployment permits, and the protocol methods every agent needs. They name no agent, server or tool (only
/// the model's attributes and tags), so they fit any deployment's catalog. Demo
/// policies and catalogs live in `examples/demo/`, loaded as configuration.
pub const EMBEDDED_POLICIES: &[Source<'static>] = &[
    Source {
        name: "policies/guardrails.cedar",
        text: include_str!("../../policies/guardrails.cedar"),
    },
    Source {
        name: "policies/protocol.cedar",
        text: include_str!("../../policies/protocol.cedar"),
    },
];
/// The Cedar model: entities, actions, context. Its `Arguments` type is in
/// [`EMBEDDED_ARGUMENTS_SCHEMA`] or the configured `policies.arguments_schema`.
pub const EMBEDDED_SCHEMA: Source<'static> = Source {
    name: "policies/toolgate.cedarschema",
    text: include_str!("../../policies/toolgate.cedarschema"),
};
/// `Arguments` when none is configured: empty, so no policy reads an argument.
/// `toolgate schema-from-mcp` generates one from the MCP servers' tools/list results.
pub const EMBEDDED_ARGUMENTS_SCHEMA: Source<'static> = Source {
    name: "policies/arguments.cedarschema",
    text: include_str!("../../policies/arguments.cedarschema"),
};

const CONFIG_POLICIES: &str = "plugin configuration `policies.cedar`";
const CONFIG_SCHEMA: &str = "plugin configuration `policies.schema`";
const CONFIG_ARGUMENTS_SCHEMA: &str = "plugin configuration `policies.arguments_schema`";
const CONFIG_ENTITIES: &str = "plugin configuration `policies.entities`";

/// Entity types the filter creates uids of, parsed once.
pub struct EntityTypes {
    pub agent: EntityTypeName,
    pub unauthenticated: EntityTypeName,
    pub server: EntityTypeName,
    pub tool: EntityTypeName,
    pub prompt: EntityTypeName,
    pub mcp_resource: EntityTypeName,
    pub route: EntityTypeName,
    action: EntityTypeName,
}

impl EntityTypes {
    fn new() -> Result<Self, String> {
        let parse = |name: &str| {
            EntityTypeName::from_str(name).map_err(|e| format!("entity type {name}: {e}"))
        };
        Ok(Self {
            agent: parse("Toolgate::Agent")?,
            unauthenticated: parse("Toolgate::Unauthenticated")?,
            server: parse("Toolgate::Server")?,
            tool: parse("Toolgate::Tool")?,
            prompt: parse("Toolgate::Prompt")?,
            mcp_resource: parse("Toolgate::McpResource")?,
            route: parse("Toolgate::Route")?,
            action: parse("Toolgate::Action")?,
        })
    }

    pub fn uid(&self, ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }
}

/// Policy, schema and entity files to load together, e.g. a policy folder's
/// `*.cedar`, `*.cedarschema` and entity `*.json` files.
#[derive(Debug, Clone, Default)]
pub struct PolicyFiles<'a> {
    /// Cedar policies.
    pub policies: Vec<Source<'a>>,
    /// Cedar schema fragments (human-readable schema syntax), merged into one schema.
    pub schema: Vec<Source<'a>>,
    /// Entities, each a JSON array in Cedar's entity format.
    pub entities: Vec<Source<'a>>,
}

/// The policies a request is evaluated against, and the context attributes they read
/// (Cedar is given only those, see `context_keys`).
pub struct Slice {
    pub policies: Rc<PolicySet>,
    pub context_keys: ContextKeys,
}

/// Everything static about authorization, ready for per-request use.
pub struct PolicyStore {
    /// Every policy. A request evaluates [`PolicyStore::policies_for`], never all of these.
    pub policies: Rc<PolicySet>,
    pub entities: Entities,
    pub types: EntityTypes,
    /// Content hash of policies, schema and entities: names the policy set in every decision.
    pub version: String,
    actions: HashMap<String, EntityUid>,
    index: PolicyIndex,
    /// Ids of catalog tools tagged `requires_approval: true`.
    approval_required: HashSet<String>,
    /// Reviewed definition digests of catalog tools (`definition_digest`), by tool id.
    pins: HashMap<String, String>,
    /// Forbids annotated `@refusal(...)` with a reason other than `rate_limited`.
    declared_refusals: HashMap<String, crate::reason::Reason>,
    /// Tags and risk of catalog tools and routes, for session history.
    catalog: HashMap<EntityUid, CatalogEntry>,
    /// Forbid policies that read `context.rate`, and what of it.
    rate_policies: HashMap<String, RateFields>,
    /// The types `Toolgate::Arguments` declares, checked on every call.
    pub arguments: ArgumentTypes,
    /// Policies that could error on some arguments (see [`may_error`]), with the
    /// tools (`<server>/<tool>`) whose arguments they read; `None`: any tool's.
    may_error: HashMap<String, Option<Vec<String>>>,
}

impl PolicyStore {
    /// Builds the store from the embedded defaults (with `features`, the embedded
    /// rules of the configured features: see [`feature_policies`]) and the configured sources.
    pub fn build(source: &PolicySource, features: &[Source<'static>]) -> Result<Self, String> {
        let mut policy_sources: Vec<Source<'_>> = match source.mode {
            PolicyMode::Extend => EMBEDDED_POLICIES.iter().chain(features).copied().collect(),
            PolicyMode::Replace => Vec::new(),
        };
        if let Some(text) = &source.cedar {
            policy_sources.push(Source {
                name: CONFIG_POLICIES,
                text,
            });
        }
        let arguments = source.arguments_schema.as_deref().map(|text| Source {
            name: CONFIG_ARGUMENTS_SCHEMA,
            text,
        });
        let schema_sources: Vec<Source<'_>> = match (&source.schema, source.mode) {
            (Some(text), _) => [Source {
                name: CONFIG_SCHEMA,
                text,
            }]
            .into_iter()
            .chain(arguments)
            .collect(),
            (None, PolicyMode::Extend) => vec![
                EMBEDDED_SCHEMA,
                arguments.unwrap_or(EMBEDDED_ARGUMENTS_SCHEMA),
            ],
            (None, PolicyMode::Replace) => {
                return Err("plugin configuration: policies.mode is \"replace\" but policies.schema is missing; give the Cedar schema text".into())
            }
        };
        let mut entities = Vec::new();
        if let Some(configured) = &source.entities {
            entities.push((CONFIG_ENTITIES, configured.clone()));
        }
        Self::from_parts(&policy_sources, &schema_sources, entities)
    }

    /// Builds the store from exactly these files, nothing embedded: how a policy
    /// folder is checked outside Envoy, with the filter's parsing and strict validation.
    pub fn from_files(files: &PolicyFiles<'_>) -> Result<Self, String> {
        let entities = files
            .entities
            .iter()
            .map(|source| Ok((source.name, entity_json(source)?)))
            .collect::<Result<Vec<_>, String>>()?;
        Self::from_parts(&files.policies, &files.schema, entities)
    }

    /// Builds the store as `"mode": "extend"` does, with these files as the
    /// configuration: the embedded guardrails and `features`' rules, the embedded
    /// model, and (when `files` gives no schema) the embedded empty `Arguments`.
    /// How a folder of configuration, like `examples/demo/`, is checked outside Envoy.
    pub fn extending(
        files: &PolicyFiles<'_>,
        features: &[Source<'static>],
    ) -> Result<Self, String> {
        let policies: Vec<Source<'_>> = EMBEDDED_POLICIES
            .iter()
            .chain(features)
            .chain(&files.policies)
            .copied()
            .collect();
        let arguments = files.schema.is_empty().then_some(EMBEDDED_ARGUMENTS_SCHEMA);
        let schema: Vec<Source<'_>> = std::iter::once(EMBEDDED_SCHEMA)
            .chain(arguments)
            .chain(files.schema.iter().copied())
            .collect();
        let entities = files
            .entities
            .iter()
            .map(|source| Ok((source.name, entity_json(source)?)))
            .collect::<Result<Vec<_>, String>>()?;
        Self::from_parts(&policies, &schema, entities)
    }

    fn from_parts(
        policy_sources: &[Source<'_>],
        schema_sources: &[Source<'_>],
        entity_values: Vec<(&str, serde_json::Value)>,
    ) -> Result<Self, String> {
        let (schema, arguments) = parse_schema(schema_sources)?;
        let (policies, origin) = parse_policies(policy_sources)?;
        validate(&schema, &policies, policy_sources, &origin)?;
        let entities = parse_entities(&entity_values, &schema)?;
        let version = version_hash(&policies, schema_sources, &entity_values);
        let types = EntityTypes::new()?;
        let action_entities = schema
            .action_entities()
            .map_err(|e| format!("{}: action entities: {e}", names(schema_sources)))?;
        let actions: HashMap<String, EntityUid> = action_entities
            .iter()
            .map(|entity| entity.uid())
            .filter(|uid| uid.type_name() == &types.action)
            .map(|uid| (uid.id().unescaped().to_owned(), uid))
            .collect();
        let policies = Rc::new(policies);
        let index = PolicyIndex::build(&policies, &actions, &action_entities, &entities)?;
        let approval_required = entities
            .iter()
            .filter(|entity| entity.uid().type_name() == &types.tool)
            .filter(|entity| {
                matches!(
                    entity.attr("requires_approval"),
                    Some(Ok(EvalResult::Bool(true)))
                )
            })
            .map(|entity| entity.uid().id().unescaped().to_owned())
            .collect();
        let catalog = catalog(&entities, &types);
        let (rate_policies, declared_refusals) = rate_policies(&policies, policy_sources, &origin)?;
        let pins = pins(&entities, &types)?;
        let may_error = policies
            .policies()
            .filter(|p| may_error(p))
            .map(|p| (p.id().to_string(), tools_read(p)))
            .collect();
        Ok(Self {
            policies,
            entities,
            types,
            version,
            actions,
            index,
            approval_required,
            catalog,
            rate_policies,
            arguments,
            may_error,
            pins,
            declared_refusals,
        })
    }

    /// The catalog tags of a tool or route; none for anything else.
    pub fn tags(&self, resource: &EntityUid) -> &[String] {
        self.catalog
            .get(resource)
            .map_or(&[], |entry| entry.tags.as_slice())
    }

    /// True for catalog tools whose sensitivity is "high" or "critical".
    pub fn is_high_risk(&self, resource: &EntityUid) -> bool {
        self.catalog
            .get(resource)
            .is_some_and(|entry| entry.high_risk)
    }

    /// For a forbid annotated `@refusal("rate_limited")`: which counts of
    /// `context.rate` it reads (both when it reads neither), to tell when it lapses.
    /// `None` for every other policy.
    pub fn rate_fields(&self, policy_id: &str) -> Option<RateFields> {
        self.rate_policies.get(policy_id).copied()
    }

    /// The action uid for an MCP method or toolgate action name, if the schema declares it.
    pub fn action(&self, name: &str) -> Option<&EntityUid> {
        self.actions.get(name)
    }

    /// The policies whose scope matches this principal, action and resource. The
    /// others are false for this request without evaluating their conditions, so
    /// Cedar gives the same decision, determining policies and errors on this slice
    /// as on all of [`PolicyStore::policies`] (see `PolicyIndex`; `tests/slicing.rs` checks it).
    pub fn policies_for(
        &self,
        principal: &EntityUid,
        action: &EntityUid,
        resource: &EntityUid,
    ) -> Rc<Slice> {
        self.slice(principal, action, resource, &mut Lookup::new(None))
    }

    /// [`PolicyStore::policies_for`], less the policies whose [`Guard`] this concrete
    /// context makes false without error (see `guard`): same decision, determining
    /// policies and errors. A context with unknowns must use `policies_for`.
    pub fn policies_deciding<'c>(
        &self,
        principal: &EntityUid,
        action: &EntityUid,
        resource: &EntityUid,
        context: impl Into<ContextSource<'c>>,
    ) -> Rc<Slice> {
        let mut lookup = Lookup::new(Some(context.into()));
        self.slice(principal, action, resource, &mut lookup)
    }

    fn slice(
        &self,
        principal: &EntityUid,
        action: &EntityUid,
        resource: &EntityUid,
        context: &mut Lookup<'_>,
    ) -> Rc<Slice> {
        let parent = self.uncatalogued_parent(resource);
        self.index
            .slice(
                principal,
                action,
                resource,
                parent.as_ref(),
                &self.entities,
                context,
            )
            .unwrap_or_else(|| Rc::clone(&self.index.whole))
    }

    /// The entities to evaluate a call on `resource` with. A tool, prompt, resource or
    /// route the catalog does not list is still a child of its server, so `resource in
    /// Server::"x"` matches every call to server `x` (a forbid written so must not miss
    /// an uncatalogued tool); it has no attributes. Catalogued resources and servers
    /// use the store as it is; the others cost a copy of it (its entries are shared).
    pub fn entities_for(&self, resource: &EntityUid) -> Cow<'_, Entities> {
        let Some(server) = self.uncatalogued_parent(resource) else {
            return Cow::Borrowed(&self.entities);
        };
        let entity = Entity::new_no_attrs(resource.clone(), HashSet::from([server]));
        match self.entities.clone().add_entities([entity], None) {
            Ok(entities) => Cow::Owned(entities),
            // Cannot happen for a uid the store lacks; evaluating without the parent
            // only narrows what `resource in` matches for permits, and the slice
            // (see `policies_for`) still holds the server's forbids.
            Err(_) => Cow::Borrowed(&self.entities),
        }
    }

    /// The server of a resource the catalog does not list; none for servers, for
    /// catalogued resources and for ids without a `<server>/` prefix.
    fn uncatalogued_parent(&self, resource: &EntityUid) -> Option<EntityUid> {
        let types = &self.types;
        let ty = resource.type_name();
        let child = [
            &types.tool,
            &types.prompt,
            &types.mcp_resource,
            &types.route,
        ]
        .contains(&ty);
        if !child || self.entities.get(resource).is_some() {
            return None;
        }
        let (server, _) = resource.id().unescaped().split_once('/')?;
        Some(types.uid(&types.server, server))
    }

    /// Ids of the MCP resources starting with `prefix` that the catalog lists or a
    /// policy's scope names (`resource == ..` or `resource in ..`).
    pub fn mcp_resources_named(&self, prefix: &str) -> Vec<String> {
        let ty = &self.types.mcp_resource;
        let scoped = self
            .policies
            .policies()
            .filter_map(|p| match p.resource_constraint() {
                ResourceConstraint::Eq(uid) | ResourceConstraint::In(uid) => Some(uid),
                _ => None,
            });
        let mut ids: Vec<String> = self
            .entities
            .iter()
            .map(Entity::uid)
            .chain(scoped)
            .filter(|uid| uid.type_name() == ty)
            .map(|uid| uid.id().unescaped().to_owned())
            .filter(|id| id.starts_with(prefix))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// True when the policy could error for some values of the arguments. Cedar's
    /// partial evaluation drops a residual `r && false` as false, though `r` could
    /// error (and any error denies), so such a policy makes a list verdict inexact.
    /// `tool` is `<server>/<tool>`: only a policy reading that tool's arguments can
    /// error differently for different arguments of it.
    pub fn may_error(&self, policy_id: &str, tool: &str) -> bool {
        match self.may_error.get(policy_id) {
            None => false,
            Some(None) => true,
            Some(Some(tools)) => tools.iter().any(|t| t == tool),
        }
    }

    /// True when the catalog tags this tool (`<server>/<name>`) `requires_approval`.
    pub fn requires_approval(&self, tool_id: &str) -> bool {
        self.approval_required.contains(tool_id)
    }

    /// The catalog's reviewed definition digest of a tool (`definition_digest`).
    pub fn pin(&self, tool_id: &str) -> Option<&str> {
        self.pins.get(tool_id).map(String::as_str)
    }

    /// The ids of the tools whose definition the catalog pins.
    pub fn pinned_tools(&self) -> impl Iterator<Item = &str> {
        self.pins.keys().map(String::as_str)
    }

    /// The reason a refusal by these determining forbids gives when every one of them
    /// declares the same one (`@refusal("tool_definition_changed")`); `None` otherwise.
    pub fn declared_refusal(&self, policies: &[String]) -> Option<crate::reason::Reason> {
        let mut reasons = policies.iter().map(|p| self.declared_refusals.get(p));
        let first = reasons.next()??;
        reasons.all(|r| r == Some(first)).then_some(*first)
    }

    pub fn policy_count(&self) -> usize {
        self.policies.policies().count()
    }
}

/// The catalog tools' `definition_digest` pins. One that is not a digest as toolgate
/// writes it (see `digest::is_sha256`) is a configuration error: it could never match.
fn pins(entities: &Entities, types: &EntityTypes) -> Result<HashMap<String, String>, String> {
    let mut pins = HashMap::new();
    for entity in entities.iter() {
        if entity.uid().type_name() != &types.tool {
            continue;
        }
        let id = entity.uid().id().unescaped().to_owned();
        match entity.attr("definition_digest") {
            None => {}
            Some(Ok(EvalResult::String(digest))) if crate::digest::is_sha256(&digest) => {
                pins.insert(id, digest);
            }
            Some(_) => {
                return Err(format!(
                    "entities: tool {id:?}: definition_digest must be \"sha256:\" and 64 lowercase hex \
                     digits, as `toolgate schema-from-mcp --pin` writes it"
                ))
            }
        }
    }
    Ok(pins)
}

/// A catalog tool's or route's facts that session history keeps.
struct CatalogEntry {
    tags: Vec<String>,
    high_risk: bool,
}

fn catalog(entities: &Entities, types: &EntityTypes) -> HashMap<EntityUid, CatalogEntry> {
    entities
        .iter()
        .filter(|e| [&types.tool, &types.route].contains(&e.uid().type_name()))
        .filter_map(|entity| {
            let tags: Vec<String> = match entity.attr("tags") {
                Some(Ok(EvalResult::Set(set))) => set
                    .iter()
                    .filter_map(|tag| match tag {
                        EvalResult::String(tag) => Some(tag.clone()),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let high_risk = matches!(
                entity.attr("sensitivity"),
                Some(Ok(EvalResult::String(s))) if s == "high" || s == "critical"
            );
            (!tags.is_empty() || high_risk)
                .then(|| (entity.uid(), CatalogEntry { tags, high_risk }))
        })
        .collect()
}

/// Which counts of `context.rate` a policy reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateFields {
    pub tool: bool,
    pub agent: bool,
}

/// True when the policy reads `context.<attr>` (an attribute access or a `has`
/// test on it) or the context as a whole, judged from its structure, not its text.
pub fn reads_context(policy: &Policy, attr: &str) -> bool {
    ContextKeys::of(policy).reads(attr)
}

/// True when a policy has an operation that can error on well-typed values:
/// arithmetic (overflow), datetime and duration arithmetic, tags, or a read of a
/// nested argument field (a required field of an object argument may be missing).
/// Judged from its structure; a policy without a JSON form may error.
pub fn may_error(policy: &Policy) -> bool {
    const ERRING: &[&str] = &[
        "+",
        "-",
        "*",
        "neg",
        "offset",
        "durationSince",
        "toDate",
        "toTime",
        "getTag",
    ];
    /// The length of a `.` chain from `context`, when `node` is one.
    fn depth(node: &serde_json::Value) -> Option<usize> {
        if node.get("Var").and_then(serde_json::Value::as_str) == Some("context") {
            return Some(0);
        }
        depth(node.get(".")?.get("left")?).map(|d| d + 1)
    }
    fn walk(node: &serde_json::Value) -> bool {
        use serde_json::Value;
        match node {
            Value::Object(fields) => {
                // context.arguments.S.T.field is 4 deep; a field's own fields are deeper.
                ERRING.iter().any(|op| fields.contains_key(*op))
                    || depth(node).is_some_and(|d| d > 4)
                    || fields.values().any(walk)
            }
            Value::Array(items) => items.iter().any(walk),
            _ => false,
        }
    }
    policy.to_json().map_or(true, |json| walk(&json))
}

/// The tools whose arguments a policy reads (`context.arguments.S.T...`, as `S/T`);
/// `None` when it reads `context.arguments` or `context.arguments.S` as a whole.
fn tools_read(policy: &Policy) -> Option<Vec<String>> {
    use serde_json::Value;
    /// The attribute path from `context` of a `.` chain.
    fn chain(node: &Value) -> Option<Vec<String>> {
        if node.get("Var").and_then(Value::as_str) == Some("context") {
            return Some(Vec::new());
        }
        let access = node.get(".")?;
        let mut path = chain(access.get("left")?)?;
        path.push(access.get("attr")?.as_str()?.to_owned());
        Some(path)
    }
    fn walk(node: &Value, paths: &mut Vec<Vec<String>>) {
        match node {
            Value::Object(fields) => {
                if let Some(path) = chain(node) {
                    paths.push(path);
                }
                if let Some(has) = fields.get("has") {
                    if let Some(mut path) = has.get("left").and_then(chain) {
                        match has.get("attr") {
                            Some(Value::String(a)) => path.push(a.clone()),
                            Some(Value::Array(attrs)) => path
                                .extend(attrs.iter().filter_map(Value::as_str).map(str::to_owned)),
                            _ => {}
                        }
                        paths.push(path);
                    }
                }
                fields.values().for_each(|v| walk(v, paths));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, paths)),
            _ => {}
        }
    }
    let mut paths = Vec::new();
    walk(&policy.to_json().ok()?, &mut paths);
    let arguments: Vec<&Vec<String>> = paths
        .iter()
        .filter(|p| p.first().map(String::as_str) == Some("arguments"))
        .collect();
    let mut tools = Vec::new();
    for path in &arguments {
        match path.get(1..3) {
            Some([server, tool]) => tools.push(format!("{server}/{tool}")),
            // A shorter path used whole (no longer path extends it) reads every tool's.
            _ if !arguments
                .iter()
                .any(|q| q.len() > path.len() && q.starts_with(path)) =>
            {
                return None
            }
            _ => {}
        }
    }
    tools.sort_unstable();
    tools.dedup();
    Some(tools)
}

/// The annotation that says what kind of refusal a forbid is.
pub const REFUSAL_ANNOTATION: &str = "refusal";

/// Reasons a forbid may declare with `@refusal`, besides `rate_limited`.
const DECLARABLE_REFUSALS: &[crate::reason::Reason] =
    &[crate::reason::Reason::ToolDefinitionChanged];

/// The forbids that say what kind of refusal they are: rate limits, with what they
/// read of `context.rate`, and the others (`tool_definition_changed`). A `@refusal`
/// with any other value, or on a permit, is a configuration error.
type DeclaredRefusals = (
    HashMap<String, RateFields>,
    HashMap<String, crate::reason::Reason>,
);

fn rate_policies(
    policies: &PolicySet,
    sources: &[Source<'_>],
    origin: &HashMap<String, usize>,
) -> Result<DeclaredRefusals, String> {
    use crate::reason::Reason;
    let rate_limited = Reason::RateLimited.code();
    let (mut rates, mut others) = (HashMap::new(), HashMap::new());
    for policy in policies.policies() {
        let Some(refusal) = policy.annotation(REFUSAL_ANNOTATION) else {
            continue;
        };
        let id = policy.id().to_string();
        let file = origin
            .get(&id)
            .and_then(|&at| sources.get(at))
            .map_or("policies", |s| s.name);
        let declared = Reason::from_code(refusal).filter(|r| DECLARABLE_REFUSALS.contains(r));
        if policy.effect() != Effect::Forbid || (refusal != rate_limited && declared.is_none()) {
            let codes: Vec<&str> = std::iter::once(rate_limited)
                .chain(DECLARABLE_REFUSALS.iter().map(|r| r.code()))
                .collect();
            return Err(format!(
                "{file}: policy `{id}`: @{REFUSAL_ANNOTATION}(\"{refusal}\") is not a refusal a policy can declare; \
                 the ones there are: {}, on a forbid (remove the annotation, or make the policy a forbid)",
                codes.join(", ")
            ));
        }
        if let Some(reason) = declared {
            others.insert(id, reason);
            continue;
        }
        let read = rate_fields(policy).unwrap_or(RateFields {
            tool: true,
            agent: true,
        });
        rates.insert(id, read);
    }
    Ok((rates, others))
}

/// What a policy reads of `context.rate`, from its JSON form; none when it reads
/// none of it. `context has rate` alone is not a read.
fn rate_fields(policy: &Policy) -> Option<RateFields> {
    let json = policy.to_json().ok()?;
    let mut found = None;
    find_rate_reads(&json, &mut found);
    found
}

fn find_rate_reads(node: &serde_json::Value, found: &mut Option<RateFields>) {
    use serde_json::Value;
    let is_context_rate = |v: Option<&Value>| {
        v.and_then(|v| v.get(".")).is_some_and(|a| {
            a.get("left") == Some(&serde_json::json!({"Var": "context"}))
                && a.get("attr") == Some(&Value::from("rate"))
        })
    };
    match node {
        Value::Object(fields) => {
            for op in [".", "has"] {
                if let Some(access) = fields.get(op) {
                    if is_context_rate(access.get("left")) {
                        let read = found.get_or_insert_with(RateFields::default);
                        match access.get("attr").and_then(Value::as_str) {
                            Some("tool") => read.tool = true,
                            Some("agent") => read.agent = true,
                            _ => (read.tool, read.agent) = (true, true),
                        }
                        return;
                    }
                }
            }
            if is_context_rate(Some(node)) {
                // The whole record, e.g. compared or passed along: it reads both.
                *found = Some(RateFields {
                    tool: true,
                    agent: true,
                });
                return;
            }
            fields.values().for_each(|v| find_rate_reads(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| find_rate_reads(v, found)),
        _ => {}
    }
}

/// Policies sliced by scope at configure time, so a request evaluates only the
/// policies whose scope can match it.
///
/// Cedar evaluates a policy as `principal-scope && action-scope && resource-scope
/// && conditions`, left to right, and a scope test never errors. A policy whose
/// scope does not match a request is therefore false without error: it cannot
/// allow, deny, determine or fail the decision. Leaving such policies out gives
/// the same decision, the same determining policies and the same errors, in the
/// same order (a slice keeps the policy set's order).
///
/// Each policy is filed, per action its action scope admits, in one bucket keyed
/// by its exact principal and resource scopes (`any`, `== E`, `in E`, `is T`,
/// `is T in E`). A request collects the buckets whose keys hold for its principal
/// and resource: `== E` when the entity is E, `is T` when its type is T, `in E`
/// when E is the entity or one of its ancestors in the entity store (the
/// hierarchy the evaluator reads), `is T in E` when both hold. Those buckets hold
/// exactly the policies whose scope matches; the rest of the set is never looked at.
struct PolicyIndex {
    /// Every policy, in the policy set's order; buckets hold positions in it.
    policies: Vec<Policy>,
    /// The context attributes each policy reads, by position.
    context_keys: Vec<ContextKeys>,
    /// Every policy, for a request the index cannot slice.
    whole: Rc<Slice>,
    by_action: HashMap<EntityUid, ScopeMap<ScopeMap<usize>>>,
    buckets: Vec<Bucket>,
    /// Part id -> positions of its policies, ascending. A slice is a union of parts.
    parts: Vec<Vec<usize>>,
    /// Slices built so far, keyed by their sorted part ids. Part combinations are
    /// set by the configuration (only entities the policies name make a bucket
    /// match, only literals they compare with pick a guarded part), not by request
    /// values; the cache is still bounded, see `SLICE_CACHE_POLICIES`.
    slices: RefCell<SliceCache>,
}

/// The policies of one principal/action/resource scope combination: those without a
/// [`Guard`] in one part, and those with one grouped by the guard's shape.
#[derive(Default)]
struct Bucket {
    unguarded: Option<usize>,
    guarded: Vec<GuardGroup>,
}

/// Policies whose guards differ only in the last literal they compare with.
struct GuardGroup {
    shape: Shape,
    /// Part holding every policy of the group.
    all: usize,
    /// Part per literal, for a last check `context.P == literal`.
    by_literal: HashMap<Literal, usize>,
}

/// Most policies the slice cache holds, summed over its slices, before it starts
/// afresh. Bounds memory when many principal/resource combinations each need their
/// own slice; a miss costs building the slice (about half a microsecond per policy
/// in it), never a wrong answer.
const SLICE_CACHE_POLICIES: usize = 8192;

#[derive(Default)]
struct SliceCache {
    sets: HashMap<Box<[usize]>, Rc<Slice>>,
    /// Policies held across `sets`, plus one per slice.
    held: usize,
}

/// A principal or resource scope, as a key.
enum Scope {
    Any,
    Eq(EntityUid),
    In(EntityUid),
    Is(EntityTypeName),
    IsIn(EntityTypeName, EntityUid),
}

impl Scope {
    fn principal(policy: &Policy) -> Self {
        match policy.principal_constraint() {
            PrincipalConstraint::Any => Self::Any,
            PrincipalConstraint::Eq(uid) => Self::Eq(uid),
            PrincipalConstraint::In(uid) => Self::In(uid),
            PrincipalConstraint::Is(ty) => Self::Is(ty),
            PrincipalConstraint::IsIn(ty, uid) => Self::IsIn(ty, uid),
        }
    }

    fn resource(policy: &Policy) -> Self {
        match policy.resource_constraint() {
            ResourceConstraint::Any => Self::Any,
            ResourceConstraint::Eq(uid) => Self::Eq(uid),
            ResourceConstraint::In(uid) => Self::In(uid),
            ResourceConstraint::Is(ty) => Self::Is(ty),
            ResourceConstraint::IsIn(ty, uid) => Self::IsIn(ty, uid),
        }
    }
}

/// Values keyed by principal (or resource) scope.
struct ScopeMap<T> {
    any: Option<T>,
    eq: HashMap<EntityUid, T>,
    is: HashMap<EntityTypeName, T>,
    within: HashMap<EntityUid, T>,
    /// `is T in E`, keyed by E, then T.
    is_within: HashMap<EntityUid, HashMap<EntityTypeName, T>>,
}

impl<T> Default for ScopeMap<T> {
    fn default() -> Self {
        Self {
            any: None,
            eq: HashMap::new(),
            is: HashMap::new(),
            within: HashMap::new(),
            is_within: HashMap::new(),
        }
    }
}

impl<T> ScopeMap<T> {
    /// The value for exactly this scope, made by `new` if there is none yet.
    fn slot(&mut self, scope: Scope, new: impl FnOnce() -> T) -> &mut T {
        match scope {
            Scope::Any => self.any.get_or_insert_with(new),
            Scope::Eq(uid) => self.eq.entry(uid).or_insert_with(new),
            Scope::In(uid) => self.within.entry(uid).or_insert_with(new),
            Scope::Is(ty) => self.is.entry(ty).or_insert_with(new),
            Scope::IsIn(ty, uid) => self
                .is_within
                .entry(uid)
                .or_default()
                .entry(ty)
                .or_insert_with(new),
        }
    }

    /// Calls `found` with every value whose scope holds for `entity`, given its
    /// ancestors in the entity store.
    fn matching<'s>(
        &'s self,
        entity: &EntityUid,
        ancestors: &[&EntityUid],
        mut found: impl FnMut(&'s T),
    ) {
        let ty = entity.type_name();
        self.any.iter().for_each(&mut found);
        if !self.eq.is_empty() {
            self.eq.get(entity).into_iter().for_each(&mut found);
        }
        if !self.is.is_empty() {
            self.is.get(ty).into_iter().for_each(&mut found);
        }
        // `in E` holds when E is the entity itself or one of its ancestors.
        for within in std::iter::once(entity).chain(ancestors.iter().copied()) {
            if !self.within.is_empty() {
                self.within.get(within).into_iter().for_each(&mut found);
            }
            if !self.is_within.is_empty() {
                self.is_within
                    .get(within)
                    .and_then(|typed| typed.get(ty))
                    .into_iter()
                    .for_each(&mut found);
            }
        }
    }
}
impl PolicyIndex {
    fn build(
        policies: &Rc<PolicySet>,
        actions: &HashMap<String, EntityUid>,
        action_entities: &Entities,
        entities: &Entities,
    ) -> Result<Self, String> {
        let all: Vec<Policy> = policies.policies().cloned().collect();
        let guards: Vec<Option<Guard>> = all.iter().map(Guard::of).collect();
        let context_keys: Vec<ContextKeys> = all.iter().map(ContextKeys::of).collect();
        let whole = Rc::new(Slice {
            policies: Rc::clone(policies),
            context_keys: ContextKeys::union(&context_keys),
        });
        let mut by_action = HashMap::with_capacity(actions.len());
        let mut buckets: Vec<Vec<usize>> = Vec::new();
        for action in actions.values() {
            // `action in [G]` holds when G is the action or one of its groups. The
            // schema and the entity store declare the same groups; either is enough.
            let mut groups: Vec<&EntityUid> = vec![action];
            groups.extend(action_entities.ancestors(action).into_iter().flatten());
            groups.extend(entities.ancestors(action).into_iter().flatten());
            let mut scopes: ScopeMap<ScopeMap<usize>> = ScopeMap::default();
            for (position, policy) in all.iter().enumerate() {
                let applies = match policy.action_constraint() {
                    ActionConstraint::Any => true,
                    ActionConstraint::Eq(uid) => &uid == action,
                    ActionConstraint::In(uids) => uids.iter().any(|uid| groups.contains(&uid)),
                };
                if !applies {
                    continue;
                }
                let bucket = *scopes
                    .slot(Scope::principal(policy), ScopeMap::default)
                    .slot(Scope::resource(policy), || {
                        buckets.push(Vec::new());
                        buckets.len() - 1
                    });
                buckets
                    .get_mut(bucket)
                    .ok_or("indexing policies: a bucket went missing")?
                    .push(position);
            }
            by_action.insert(action.clone(), scopes);
        }
        let mut parts: Vec<Vec<usize>> = Vec::new();
        let buckets = buckets
            .into_iter()
            .map(|positions| Bucket::build(positions, &guards, &mut parts))
            .collect();
        Ok(Self {
            policies: all,
            context_keys,
            whole,
            by_action,
            buckets,
            parts,
            slices: RefCell::default(),
        })
    }

    /// The policies whose scope matches the request, in the policy set's order;
    /// `None` when the action is not indexed or the slice cannot be built (then
    /// the caller evaluates every policy). `parent`: the server of an uncatalogued
    /// resource, which is its only ancestor.
    fn slice(
        &self,
        principal: &EntityUid,
        action: &EntityUid,
        resource: &EntityUid,
        parent: Option<&EntityUid>,
        entities: &Entities,
        context: &mut Lookup<'_>,
    ) -> Option<Rc<Slice>> {
        let scopes = self.by_action.get(action)?;
        let principal_ancestors: Vec<&EntityUid> = entities
            .ancestors(principal)
            .into_iter()
            .flatten()
            .collect();
        let resource_ancestors: Vec<&EntityUid> = match parent {
            Some(parent) => vec![parent],
            None => entities.ancestors(resource).into_iter().flatten().collect(),
        };
        let mut buckets: Vec<usize> = Vec::new();
        scopes.matching(principal, &principal_ancestors, |by_resource| {
            by_resource.matching(resource, &resource_ancestors, |&bucket| {
                buckets.push(bucket)
            })
        });
        buckets.sort_unstable();
        buckets.dedup();
        let mut ids: Vec<usize> = Vec::new();
        for bucket in buckets {
            self.buckets.get(bucket)?.parts(context, &mut ids);
        }
        ids.sort_unstable();
        self.cached(&ids)
    }

    /// The union of these parts, from the cache or built (and cached).
    fn cached(&self, ids: &[usize]) -> Option<Rc<Slice>> {
        if let Some(set) = self
            .slices
            .try_borrow()
            .ok()
            .and_then(|cache| cache.sets.get(ids).cloned())
        {
            return Some(set);
        }
        let mut positions: Vec<usize> = Vec::new();
        for &id in ids {
            positions.extend(self.parts.get(id)?);
        }
        positions.sort_unstable();
        positions.dedup();
        let policies = positions
            .iter()
            .map(|&position| self.policies.get(position).cloned())
            .collect::<Option<Vec<Policy>>>()?;
        let context_keys = ContextKeys::union(
            positions
                .iter()
                .map(|&position| self.context_keys.get(position))
                .collect::<Option<Vec<_>>>()?,
        );
        let set = Rc::new(Slice {
            policies: Rc::new(PolicySet::from_policies(policies).ok()?),
            context_keys,
        });
        if let Ok(mut cache) = self.slices.try_borrow_mut() {
            let cost = positions.len() + 1;
            if cache.held + cost > SLICE_CACHE_POLICIES {
                *cache = SliceCache::default();
            }
            cache.held += cost;
            cache.sets.insert(ids.into(), Rc::clone(&set));
        }
        Some(set)
    }
}

impl Bucket {
    /// Splits a bucket's positions (ascending) into parts: the unguarded, and per
    /// guard shape all of them and each literal's.
    fn build(positions: Vec<usize>, guards: &[Option<Guard>], parts: &mut Vec<Vec<usize>>) -> Self {
        let mut part = |positions: Vec<usize>| {
            parts.push(positions);
            parts.len() - 1
        };
        /// A group's positions, before they become parts.
        struct Positions {
            shape: Shape,
            all: Vec<usize>,
            by_literal: HashMap<Literal, Vec<usize>>,
        }
        let mut unguarded = Vec::new();
        let mut groups: Vec<Positions> = Vec::new();
        for position in positions {
            let Some(Some(guard)) = guards.get(position) else {
                unguarded.push(position);
                continue;
            };
            let group = match groups.iter().position(|g| g.shape == guard.shape) {
                Some(at) => groups.get_mut(at),
                None => {
                    groups.push(Positions {
                        shape: guard.shape.clone(),
                        all: Vec::new(),
                        by_literal: HashMap::new(),
                    });
                    groups.last_mut()
                }
            };
            if let Some(group) = group {
                group.all.push(position);
                if let Some(literal) = &guard.literal {
                    group
                        .by_literal
                        .entry(literal.clone())
                        .or_default()
                        .push(position);
                }
            }
        }
        Self {
            unguarded: (!unguarded.is_empty()).then(|| part(unguarded)),
            guarded: groups
                .into_iter()
                .map(|group| GuardGroup {
                    shape: group.shape,
                    all: part(group.all),
                    by_literal: group
                        .by_literal
                        .into_iter()
                        .map(|(literal, positions)| (literal, part(positions)))
                        .collect(),
                })
                .collect(),
        }
    }

    /// The parts of this bucket a request with this context must evaluate.
    fn parts(&self, context: &mut Lookup<'_>, ids: &mut Vec<usize>) {
        ids.extend(self.unguarded);
        for group in &self.guarded {
            match context.select(&group.shape) {
                Selection::None => {}
                Selection::All | Selection::Holds => ids.push(group.all),
                Selection::Literal(value) => {
                    ids.extend(value.and_then(|value| group.by_literal.get(&value)));
                }
            }
        }
    }
}

/// Parses each schema fragment (errors point into its own text), then merges them
/// (errors about one fragment's declarations point into that fragment).
fn parse_schema(sources: &[Source<'_>]) -> Result<(Schema, ArgumentTypes), String> {
    let mut fragments = Vec::with_capacity(sources.len());
    let mut fragments_json = Vec::with_capacity(sources.len());
    for source in sources {
        let (fragment, _warnings) = SchemaFragment::from_cedarschema_str(source.text)
            .map_err(|e| located(source.name, source.text, &e, "fix the schema"))?;
        fragments_json.push(
            fragment
                .clone()
                .to_json_value()
                .map_err(|e| format!("{}: {e}", source.name))?,
        );
        fragments.push(fragment);
    }
    let arguments = ArgumentTypes::from_schema_json(&fragments_json);
    let schema = Schema::from_schema_fragments(fragments).map_err(|e| {
        let fix = "fix the schema";
        match source_of(sources, &e) {
            Some(source) => located(source.name, source.text, &e, fix),
            None => format!("{}: {}", names(sources), describe(&e, fix)),
        }
    })?;
    Ok((schema, arguments))
}

/// The source a diagnostic's first label points into: the one whose text at the
/// label's span is what the diagnostic shows there.
fn source_of<'s, 'a>(
    sources: &'s [Source<'a>],
    diagnostic: &dyn Diagnostic,
) -> Option<&'s Source<'a>> {
    let label = diagnostic.labels()?.next()?;
    let code = diagnostic.source_code()?;
    let shown = code.read_span(label.inner(), 0, 0).ok()?;
    let shown = shown.data();
    let span = label.offset()..label.offset() + label.len();
    let mut matching = sources
        .iter()
        .filter(|source| source.text.as_bytes().get(span.clone()) == Some(shown));
    let first = matching.next()?;
    // Ambiguous when two fragments have the same text there: name none rather than the wrong one.
    match matching.next() {
        None => Some(first),
        Some(_) => None,
    }
}

fn names(sources: &[Source<'_>]) -> String {
    let names: Vec<&str> = sources.iter().map(|s| s.name).collect();
    names.join(" + ")
}

/// Parses every source; policies are named by their `@id`, and `origin` maps each id to its source.
fn parse_policies(sources: &[Source<'_>]) -> Result<(PolicySet, HashMap<String, usize>), String> {
    let mut set = PolicySet::new();
    let mut origin: HashMap<String, usize> = HashMap::new();
    for (index, source) in sources.iter().enumerate() {
        let parsed = PolicySet::from_str(source.text)
            .map_err(|e| located(source.name, source.text, &e, "fix the policy syntax"))?;
        // A template is never linked here, so it would never apply: refuse it rather than drop it.
        if let Some(template) = parsed.templates().next() {
            let id = template.annotation("id").unwrap_or("a policy");
            return Err(format!(
                "{}: {id:?} is a template (it has ?principal or ?resource); toolgate links no templates, so write it as a static policy",
                source.name
            ));
        }
        for (n, policy) in parsed.policies().enumerate() {
            let id = policy
                .annotation("id")
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{}#{n}", source.name));
            if let Some(first) = origin.insert(id.clone(), index) {
                let first = sources.get(first).map_or("", |s| s.name);
                return Err(format!(
                    "{}: policy id {id:?} is already used in {first}; give each policy a unique @id(\"...\")",
                    source.name
                ));
            }
            set.add(policy.new_id(PolicyId::new(&id)))
                .map_err(|e| format!("{}: policy {id:?}: {e}", source.name))?;
        }
    }
    Ok((set, origin))
}

/// Strict validation. A policy that can never apply (always false, or no action
/// fits its scope) is refused too: it is almost always a test of an argument or
/// attribute the schema leaves out, and a `forbid` that never fires fails open.
fn validate(
    schema: &Schema,
    policies: &PolicySet,
    sources: &[Source<'_>],
    origin: &HashMap<String, usize>,
) -> Result<(), String> {
    let result = Validator::new(schema.clone()).validate(policies, ValidationMode::Strict);
    let locate = |id: String, diagnostic: &dyn Diagnostic, fix: &str| match origin
        .get(&id)
        .and_then(|&n| sources.get(n))
    {
        Some(source) => located(source.name, source.text, diagnostic, fix),
        None => format!("{fix}: {diagnostic}"),
    };
    let errors = result.validation_errors().map(|error| {
        let id = error.policy_id().to_string();
        let fix = format!("policy {id:?} does not match the schema");
        locate(id, error, &fix)
    });
    let never_apply = result
        .validation_warnings()
        .filter(|warning| {
            matches!(
                warning,
                ValidationWarning::ImpossiblePolicy(_)
                    | ValidationWarning::InvalidActionApplication(_)
            )
        })
        .map(|warning| {
            let id = warning.policy_id().to_string();
            let fix = format!(
                "policy {id:?} can never apply; if it tests (`has`) an argument or attribute, the schema must declare it with a type"
            );
            locate(id, warning, &fix)
        });
    let problems: Vec<String> = errors.chain(never_apply).collect();
    if problems.is_empty() {
        Ok(())
    } else {
        // One line, so each log line carries the whole refusal.
        Err(format!("invalid policies: {}", problems.join(" | ")))
    }
}

fn entity_json(source: &Source<'_>) -> Result<serde_json::Value, String> {
    serde_json::from_str(source.text)
        .map_err(|e| format!("{}:{}:{}: {e}", source.name, e.line(), e.column()))
}

fn parse_entities(
    values: &[(&str, serde_json::Value)],
    schema: &Schema,
) -> Result<Entities, String> {
    let mut all = Vec::new();
    for (name, value) in values {
        match value {
            serde_json::Value::Array(items) => all.extend(items.iter().cloned()),
            _ => {
                return Err(format!(
                    "{name}: entities must be a JSON array of Cedar entities"
                ))
            }
        }
    }
    let fix = "check each entity's type, attributes and parents against the schema";
    Entities::from_json_value(serde_json::Value::Array(all), Some(schema)).map_err(|e| {
        // Name the source that fails on its own; if none does, they clash with each other.
        let culprit = values
            .iter()
            .find(|(_, value)| Entities::from_json_value(value.clone(), Some(schema)).is_err())
            .map(|(name, _)| (*name).to_owned());
        let name = culprit.unwrap_or_else(|| {
            let names: Vec<&str> = values.iter().map(|(name, _)| *name).collect();
            names.join(" + ")
        });
        format!("{name}: {}", describe(&e, fix))
    })
}

/// The policy version: a hash of what was loaded, not of where it came from, how
/// it was split into files or in what order (Cedar policy sets are unordered), so
/// every VM, an ECDS copy (one joined text) and `toolgate validate` on the folder agree.
fn version_hash(
    policies: &PolicySet,
    schema: &[Source<'_>],
    entities: &[(&str, serde_json::Value)],
) -> String {
    // Each policy's own text, with its annotations; comments between policies do not count.
    let mut policy_texts: Vec<String> = policies.policies().map(ToString::to_string).collect();
    let mut schema_texts: Vec<String> = schema.iter().map(|s| s.text.to_owned()).collect();
    // serde_json maps are sorted by key, so this is a canonical form.
    let mut entity_texts: Vec<String> = entities.iter().map(|(_, v)| v.to_string()).collect();
    policy_texts.sort_unstable();
    schema_texts.sort_unstable();
    entity_texts.sort_unstable();
    let mut hasher = Sha256::new();
    for (tag, texts) in [
        (b"policy".as_slice(), &policy_texts),
        (b"schema", &schema_texts),
        (b"entities", &entity_texts),
    ] {
        for text in texts {
            hasher.update(tag);
            hasher.update((text.len() as u64).to_le_bytes());
            hasher.update(text.as_bytes());
        }
    }
    let digest = hasher.finalize();
    crate::digest::hex(digest.get(..8).unwrap_or(&digest))
}

/// Marks where a file starts in a source that concatenates files (`scripts/lib/ecds.py`
/// writes `policies.cedar` that way): `// file: NAME` on a line of its own.
const FILE_MARKER: &str = "// file: ";

/// Formats a Cedar diagnostic as `file:line:column: message (help)`. In a source that
/// concatenates marked files, the position in the original file follows in parentheses.
pub fn located(file: &str, text: &str, diagnostic: &dyn Diagnostic, fix: &str) -> String {
    let position = diagnostic
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| line_column(text, label.offset()));
    let at = position
        .map(|(line, column)| format!(":{line}:{column}"))
        .unwrap_or_default();
    let within = position
        .and_then(|(line, column)| {
            marked_file(text, line).map(|(name, line)| format!(" ({name}:{line}:{column})"))
        })
        .unwrap_or_default();
    format!("{file}{at}{within}: {}", describe(diagnostic, fix))
}

/// The marked file that line `line` (1-based) of `text` belongs to, and its line there.
fn marked_file(text: &str, line: usize) -> Option<(&str, usize)> {
    text.lines()
        .take(line)
        .enumerate()
        .filter_map(|(n, l)| l.strip_prefix(FILE_MARKER).map(|name| (name.trim(), n + 1)))
        .last()
        .filter(|(_, marker)| *marker < line)
        .map(|(name, marker)| (name, line - marker))
}

/// A diagnostic's message, its causes, and its help (or `fix` when it has none).
fn describe(diagnostic: &dyn Diagnostic, fix: &str) -> String {
    let mut message = diagnostic.to_string();
    let mut cause = std::error::Error::source(diagnostic);
    while let Some(inner) = cause {
        message.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    match diagnostic.help() {
        Some(help) => message.push_str(&format!(" (help: {help})")),
        None => message.push_str(&format!(" ({fix})")),
    }
    message
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
