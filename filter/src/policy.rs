//! The policy store: embedded and configured Cedar policies, schema and entities, built and validated once.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    ActionConstraint, Entities, EntityId, EntityTypeName, EntityUid, EvalResult, Policy, PolicyId,
    PolicySet, ResourceConstraint, Schema, SchemaFragment, ValidationMode, ValidationWarning,
    Validator,
};
use miette::Diagnostic;
use sha2::{Digest, Sha256};

use crate::config::{PolicyMode, PolicySource};

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

/// The policies, schema and entities embedded from `policies/` at build time.
pub const EMBEDDED_POLICIES: &[Source<'static>] = &[
    Source {
        name: "policies/default.cedar",
        text: include_str!("../../policies/default.cedar"),
    },
    Source {
        name: "policies/guardrails.cedar",
        text: include_str!("../../policies/guardrails.cedar"),
    },
];
/// The Cedar model: entities, actions, context. Its `Arguments` type is in
/// [`EMBEDDED_ARGUMENTS_SCHEMA`].
pub const EMBEDDED_SCHEMA: Source<'static> = Source {
    name: "policies/toolgate.cedarschema",
    text: include_str!("../../policies/toolgate.cedarschema"),
};
/// The `Arguments` type, generated from the MCP servers' tools/list results in
/// `policies/mcp/` by [`crate::mcp_schema::generate`].
pub const EMBEDDED_ARGUMENTS_SCHEMA: Source<'static> = Source {
    name: "policies/arguments.cedarschema",
    text: include_str!("../../policies/arguments.cedarschema"),
};
pub const EMBEDDED_ENTITIES: Source<'static> = Source {
    name: "policies/entities.json",
    text: include_str!("../../policies/entities.json"),
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

/// Everything static about authorization, ready for per-request use.
pub struct PolicyStore {
    pub policies: PolicySet,
    pub entities: Entities,
    pub types: EntityTypes,
    /// Content hash of policies, schema and entities: names the policy set in every decision.
    pub version: String,
    actions: HashMap<String, EntityUid>,
    index: PolicyIndex,
    /// Ids of catalog tools tagged `requires_approval: true`.
    approval_required: HashSet<String>,
}

impl PolicyStore {
    /// Builds the store from the embedded defaults (with the credential rules when
    /// `with_credentials`) and the configured sources.
    pub fn build(source: &PolicySource, with_credentials: bool) -> Result<Self, String> {
        let mut policy_sources: Vec<Source<'_>> = match source.mode {
            PolicyMode::Extend => EMBEDDED_POLICIES
                .iter()
                .chain(with_credentials.then_some(&CREDENTIAL_POLICIES))
                .copied()
                .collect(),
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
        if source.mode == PolicyMode::Extend {
            entities.push((EMBEDDED_ENTITIES.name, entity_json(&EMBEDDED_ENTITIES)?));
        }
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

    fn from_parts(
        policy_sources: &[Source<'_>],
        schema_sources: &[Source<'_>],
        entity_values: Vec<(&str, serde_json::Value)>,
    ) -> Result<Self, String> {
        let schema = parse_schema(schema_sources)?;
        let (policies, origin) = parse_policies(policy_sources)?;
        validate(&schema, &policies, policy_sources, &origin)?;
        let entities = parse_entities(&entity_values, &schema)?;
        let version = version_hash(policy_sources, schema_sources, &entity_values);
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
        let index = PolicyIndex::build(&policies, &actions, &action_entities)?;
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
        Ok(Self {
            policies,
            entities,
            types,
            version,
            actions,
            index,
            approval_required,
        })
    }

    /// The action uid for an MCP method or toolgate action name, if the schema declares it.
    pub fn action(&self, name: &str) -> Option<&EntityUid> {
        self.actions.get(name)
    }

    /// The policies that can apply to this action and resource; the rest cannot match their scope.
    pub fn policies_for(&self, action: &EntityUid, resource: &EntityUid) -> &PolicySet {
        self.index
            .lookup(action, resource)
            .unwrap_or(&self.policies)
    }

    /// True when the catalog tags this tool (`<server>/<name>`) `requires_approval`.
    pub fn requires_approval(&self, tool_id: &str) -> bool {
        self.approval_required.contains(tool_id)
    }

    pub fn policy_count(&self) -> usize {
        self.policies.policies().count()
    }
}

/// Policies sliced by action and resource scope at configure time, so a request
/// evaluates only the policies whose scope could match it. With a thousand
/// tool-specific policies this is the difference between evaluating 1,000 and a handful.
struct PolicyIndex {
    by_action: HashMap<EntityUid, ActionSlice>,
}

struct ActionSlice {
    /// Policies whose resource scope is not `== uid`.
    general: PolicySet,
    /// General policies plus those scoped `resource == uid`.
    by_resource: HashMap<EntityUid, PolicySet>,
}

impl PolicyIndex {
    fn build(
        policies: &PolicySet,
        actions: &HashMap<String, EntityUid>,
        action_entities: &Entities,
    ) -> Result<Self, String> {
        let mut by_action = HashMap::with_capacity(actions.len());
        for action in actions.values() {
            let mut scope = vec![action.clone()];
            if let Some(ancestors) = action_entities.ancestors(action) {
                scope.extend(ancestors.cloned());
            }
            let mut general = Vec::new();
            let mut specific: HashMap<EntityUid, Vec<Policy>> = HashMap::new();
            for policy in policies.policies() {
                let applies = match policy.action_constraint() {
                    ActionConstraint::Any => true,
                    ActionConstraint::Eq(uid) => &uid == action,
                    ActionConstraint::In(uids) => uids.iter().any(|uid| scope.contains(uid)),
                };
                if !applies {
                    continue;
                }
                match policy.resource_constraint() {
                    ResourceConstraint::Eq(uid) => {
                        specific.entry(uid).or_default().push(policy.clone())
                    }
                    _ => general.push(policy.clone()),
                }
            }
            let set = |extra: Vec<Policy>| {
                PolicySet::from_policies(general.iter().cloned().chain(extra))
                    .map_err(|e| format!("indexing policies: {e}"))
            };
            let by_resource = specific
                .into_iter()
                .map(|(uid, extra)| Ok((uid, set(extra)?)))
                .collect::<Result<_, String>>()?;
            by_action.insert(
                action.clone(),
                ActionSlice {
                    general: set(Vec::new())?,
                    by_resource,
                },
            );
        }
        Ok(Self { by_action })
    }

    fn lookup(&self, action: &EntityUid, resource: &EntityUid) -> Option<&PolicySet> {
        let slice = self.by_action.get(action)?;
        Some(slice.by_resource.get(resource).unwrap_or(&slice.general))
    }
}

/// Parses each schema fragment (errors point into its own text), then merges them
/// (errors about one fragment's declarations point into that fragment).
fn parse_schema(sources: &[Source<'_>]) -> Result<Schema, String> {
    let mut fragments = Vec::with_capacity(sources.len());
    for source in sources {
        let (fragment, _warnings) = SchemaFragment::from_cedarschema_str(source.text)
            .map_err(|e| located(source.name, source.text, &e, "fix the schema"))?;
        fragments.push(fragment);
    }
    Schema::from_schema_fragments(fragments).map_err(|e| {
        let fix = "fix the schema";
        match source_of(sources, &e) {
            Some(source) => located(source.name, source.text, &e, fix),
            None => format!("{}: {}", names(sources), describe(&e, fix)),
        }
    })
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

/// The policy version: a hash of what was loaded, not of where it came from or in
/// what order (Cedar policy sets are unordered), so every VM, the ECDS copy and
/// `toolgate validate` on the same files agree.
fn version_hash(
    policies: &[Source<'_>],
    schema: &[Source<'_>],
    entities: &[(&str, serde_json::Value)],
) -> String {
    let sorted = |texts: &mut Vec<String>| texts.sort_unstable();
    let mut policy_texts: Vec<String> = policies.iter().map(|s| s.text.to_owned()).collect();
    let mut schema_texts: Vec<String> = schema.iter().map(|s| s.text.to_owned()).collect();
    // serde_json maps are sorted by key, so this is a canonical form.
    let mut entity_texts: Vec<String> = entities.iter().map(|(_, v)| v.to_string()).collect();
    sorted(&mut policy_texts);
    sorted(&mut schema_texts);
    sorted(&mut entity_texts);
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

/// Formats a Cedar diagnostic as `file:line:column: message (help)`.
pub fn located(file: &str, text: &str, diagnostic: &dyn Diagnostic, fix: &str) -> String {
    let position = diagnostic
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| line_column(text, label.offset()))
        .map(|(line, column)| format!(":{line}:{column}"))
        .unwrap_or_default();
    format!("{file}{position}: {}", describe(diagnostic, fix))
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
