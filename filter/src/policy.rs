//! The policy store: embedded and configured Cedar policies, schema and entities, built and validated once.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    ActionConstraint, Entities, EntityId, EntityTypeName, EntityUid, EvalResult, Policy, PolicyId,
    PolicySet, ResourceConstraint, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;
use sha2::{Digest, Sha256};

use crate::config::{PolicyMode, PolicySource};

/// A named source text, so every error can point at a file and line.
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
pub const EMBEDDED_SCHEMA: Source<'static> = Source {
    name: "policies/toolgate.cedarschema",
    text: include_str!("../../policies/toolgate.cedarschema"),
};
pub const EMBEDDED_ENTITIES: Source<'static> = Source {
    name: "policies/entities.json",
    text: include_str!("../../policies/entities.json"),
};

const CONFIG_POLICIES: &str = "plugin configuration `policies.cedar`";
const CONFIG_SCHEMA: &str = "plugin configuration `policies.schema`";
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
                .map(|s| Source { ..*s })
                .collect(),
            PolicyMode::Replace => Vec::new(),
        };
        if let Some(text) = &source.cedar {
            policy_sources.push(Source {
                name: CONFIG_POLICIES,
                text,
            });
        }
        let schema_source = match (&source.schema, source.mode) {
            (Some(text), _) => Source {
                name: CONFIG_SCHEMA,
                text,
            },
            (None, PolicyMode::Extend) => Source { ..EMBEDDED_SCHEMA },
            (None, PolicyMode::Replace) => {
                return Err("plugin configuration: policies.mode is \"replace\" but policies.schema is missing; give the Cedar schema text".into())
            }
        };

        let schema = parse_schema(&schema_source)?;
        let (policies, origin) = parse_policies(&policy_sources)?;
        validate(&schema, &policies, &policy_sources, &origin)?;
        let entities = parse_entities(source, &schema)?;

        let version = version_hash(&policy_sources, &schema_source, &entities)?;
        let types = EntityTypes::new()?;
        let action_entities = schema
            .action_entities()
            .map_err(|e| format!("{}: action entities: {e}", schema_source.name))?;
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

fn parse_schema(source: &Source<'_>) -> Result<Schema, String> {
    let (schema, _warnings) = Schema::from_cedarschema_str(source.text)
        .map_err(|e| located(source.name, source.text, &e, "fix the schema"))?;
    Ok(schema)
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

fn validate(
    schema: &Schema,
    policies: &PolicySet,
    sources: &[Source<'_>],
    origin: &HashMap<String, usize>,
) -> Result<(), String> {
    let result = Validator::new(schema.clone()).validate(policies, ValidationMode::Strict);
    let problems: Vec<String> = result
        .validation_errors()
        .map(|error| {
            let id = error.policy_id().to_string();
            let fix = format!("policy {id:?} does not match the schema");
            match origin.get(&id).and_then(|&n| sources.get(n)) {
                Some(source) => located(source.name, source.text, error, &fix),
                None => format!("{fix}: {error}"),
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        // One line, so each log line carries the whole refusal.
        Err(format!("invalid policies: {}", problems.join(" | ")))
    }
}

fn parse_entities(source: &PolicySource, schema: &Schema) -> Result<Entities, String> {
    let mut values = Vec::new();
    if source.mode == PolicyMode::Extend {
        let embedded: serde_json::Value =
            serde_json::from_str(EMBEDDED_ENTITIES.text).map_err(|e| {
                format!(
                    "{}:{}:{}: {e}",
                    EMBEDDED_ENTITIES.name,
                    e.line(),
                    e.column()
                )
            })?;
        values.push((EMBEDDED_ENTITIES.name, embedded));
    }
    if let Some(configured) = &source.entities {
        values.push((CONFIG_ENTITIES, configured.clone()));
    }
    let mut all = Vec::new();
    for (name, value) in values {
        match value {
            serde_json::Value::Array(items) => all.extend(items),
            _ => {
                return Err(format!(
                    "{name}: entities must be a JSON array of Cedar entities"
                ))
            }
        }
    }
    Entities::from_json_value(serde_json::Value::Array(all), Some(schema)).map_err(|e| {
        let name = if source.entities.is_some() {
            CONFIG_ENTITIES
        } else {
            EMBEDDED_ENTITIES.name
        };
        format!(
            "{name}: {}",
            describe(
                &e,
                "check each entity's type, attributes and parents against the schema"
            )
        )
    })
}

fn version_hash(
    policies: &[Source<'_>],
    schema: &Source<'_>,
    entities: &Entities,
) -> Result<String, String> {
    let mut hasher = Sha256::new();
    for source in policies.iter().chain([schema]) {
        hasher.update(source.name.as_bytes());
        hasher.update([0]);
        hasher.update(source.text.as_bytes());
        hasher.update([0]);
    }
    let mut entities_json = Vec::new();
    entities
        .write_to_json(&mut entities_json)
        .map_err(|e| format!("hashing entities: {e}"))?;
    // Cedar writes entities (and their parents) in hash-map order, which differs
    // between VMs: canonicalize, or every worker would name the same set differently.
    let entities_value: serde_json::Value =
        serde_json::from_slice(&entities_json).map_err(|e| format!("hashing entities: {e}"))?;
    hasher.update(canonical_json(&entities_value).as_bytes());
    let digest = hasher.finalize();
    Ok(crate::digest::hex(digest.get(..8).unwrap_or(&digest)))
}

/// JSON with object keys sorted and arrays sorted by their elements' canonical text: in
/// Cedar's entity JSON every array (parents, attribute sets) is a set.
fn canonical_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let mut fields: Vec<String> = map
                .iter()
                .map(|(key, value)| {
                    format!(
                        "{}:{}",
                        serde_json::Value::String(key.clone()),
                        canonical_json(value)
                    )
                })
                .collect();
            fields.sort();
            format!("{{{}}}", fields.join(","))
        }
        serde_json::Value::Array(items) => {
            let mut items: Vec<String> = items.iter().map(canonical_json).collect();
            items.sort();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
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
