//! The Cedar request: principal, action, resource and context for one call.

use cedar_policy::{Context, EntityUid, Request, RestrictedExpression};
use serde_json::Value;

use crate::call::{Call, ResourceKind};
use crate::credential::Credential;
use crate::identity::{Identity, Principal};
use crate::policy::PolicyStore;
use crate::record::{CedarRecord, Decision};

/// The agent's declared intent, from request headers; absent stays absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intent {
    pub intent: Option<String>,
    pub task: Option<String>,
    pub session: Option<String>,
}

/// Request facts the context carries besides the call itself.
pub struct Facts<'a> {
    pub identity: &'a Identity,
    pub credential: Option<&'a Credential>,
    pub now_unix: i64,
    pub intent: &'a Intent,
    pub server: &'a str,
    pub http_method: &'a str,
    pub path: &'a str,
    /// The MCP protocol version the request speaks, when it says.
    pub protocol_version: Option<&'a str>,
    /// More context: what the agent did before and its live risk (see `behaviour`).
    pub behaviour: &'a [(String, RestrictedExpression)],
}

/// A Cedar request and the uids the policy index is keyed by.
pub struct Built {
    pub request: Request,
    pub principal: EntityUid,
    pub action: EntityUid,
    pub resource: EntityUid,
    /// No unknowns in the context: the policy index may read its values.
    pub concrete: bool,
}

impl Built {
    fn new(
        principal: EntityUid,
        action: EntityUid,
        resource: EntityUid,
        context: Context,
        concrete: bool,
    ) -> Result<Self, BuildError> {
        let request = Request::new(
            principal.clone(),
            action.clone(),
            resource.clone(),
            context,
            None,
        )
        .map_err(|e| BuildError(format!("request: {e}")))?;
        Ok(Self {
            request,
            principal,
            action,
            resource,
            concrete,
        })
    }

    /// This request in Cedar's JSON forms, for the decision record; `arguments`
    /// stays out of the context unless `with_arguments`.
    pub fn record(&self, allowed: bool, with_arguments: bool) -> Option<CedarRecord> {
        let uid = |uid: &EntityUid| {
            Some(
                serde_json::json!({ "type": uid.type_name().to_string(), "id": uid.id().unescaped() }),
            )
        };
        let mut context = self.request.context()?.to_json_value().ok()?;
        if !with_arguments {
            if let Value::Object(fields) = &mut context {
                fields.remove("arguments");
            }
        }
        Some(CedarRecord {
            principal: uid(&self.principal)?,
            action: uid(&self.action)?,
            resource: uid(&self.resource)?,
            context,
            decision: if allowed {
                Decision::Allow
            } else {
                Decision::Deny
            },
        })
    }
}

/// Rebuilds a recorded request (from a decision log or a test case) for evaluation.
/// The context is read as the filter builds it at run time: untyped, not checked
/// against the schema, so a replay sees exactly what the filter saw.
pub fn from_record(record: &CedarRecord) -> Result<Built, BuildError> {
    let uid = |field: &str, value: &Value| {
        EntityUid::from_json(value.clone()).map_err(|e| {
            BuildError(format!(
                "{field}: {e} (write an entity as {{\"type\": \"Toolgate::Agent\", \"id\": \"...\"}})"
            ))
        })
    };
    let principal = uid("principal", &record.principal)?;
    let action = uid("action", &record.action)?;
    let resource = uid("resource", &record.resource)?;
    let context = Context::from_json_value(record.context.clone(), None)
        .map_err(|e| BuildError(format!("context: {e}")))?;
    Built::new(principal, action, resource, context, true)
}

/// Why a Cedar request could not be built; every one fails closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError(pub String);

pub fn build(store: &PolicyStore, call: &Call, facts: &Facts<'_>) -> Result<Built, BuildError> {
    let principal = match &facts.identity.principal {
        Principal::Agent(id) => store.types.uid(&store.types.agent, id.as_str()),
        Principal::Unauthenticated => store.types.uid(&store.types.unauthenticated, "anonymous"),
    };
    build_as(store, principal, call, facts)
}

/// The same request with another principal: how each delegated actor is checked.
pub fn build_as(
    store: &PolicyStore,
    principal: EntityUid,
    call: &Call,
    facts: &Facts<'_>,
) -> Result<Built, BuildError> {
    build_with(store, principal, call, facts, None)
}

/// The request for a tool call whose arguments are not known yet: `context.arguments`
/// is `{<server>: {<tool>: unknown(name)}}`, for Cedar's partial evaluation (how
/// `listing` decides a listed tool). `call.arguments` is not read.
pub fn build_unknown_arguments(
    store: &PolicyStore,
    principal: EntityUid,
    call: &Call,
    facts: &Facts<'_>,
    name: &str,
) -> Result<Built, BuildError> {
    build_with(store, principal, call, facts, Some(name))
}

fn build_with(
    store: &PolicyStore,
    principal: EntityUid,
    call: &Call,
    facts: &Facts<'_>,
    unknown_arguments: Option<&str>,
) -> Result<Built, BuildError> {
    let types = &store.types;
    let action = store.action(call.action.id()).cloned().ok_or_else(|| {
        BuildError(format!(
            "the schema declares no action {:?}",
            call.action.id()
        ))
    })?;
    let resource_type = match call.resource_kind {
        ResourceKind::Server => &types.server,
        ResourceKind::Tool => &types.tool,
        ResourceKind::Prompt => &types.prompt,
        ResourceKind::McpResource => &types.mcp_resource,
        ResourceKind::Route => &types.route,
    };
    let resource = types.uid(resource_type, &call.resource_id);
    let mut pairs = context_pairs(store, call, facts, unknown_arguments)?;
    if let Some(credential) = facts.credential {
        pairs.extend(credential_pairs(store, credential, facts.now_unix)?);
    }
    let context = Context::from_pairs(pairs).map_err(|e| BuildError(format!("context: {e}")))?;
    Built::new(
        principal,
        action,
        resource,
        context,
        unknown_arguments.is_none(),
    )
}

fn context_pairs(
    store: &PolicyStore,
    call: &Call,
    facts: &Facts<'_>,
    unknown_arguments: Option<&str>,
) -> Result<Vec<(String, RestrictedExpression)>, BuildError> {
    let string = |s: &str| RestrictedExpression::new_string(s.to_owned());
    let mut pairs = vec![
        (
            "authenticated".to_owned(),
            RestrictedExpression::new_bool(facts.identity.principal != Principal::Unauthenticated),
        ),
        (
            "insecure_identity".to_owned(),
            RestrictedExpression::new_bool(facts.identity.insecure),
        ),
        ("server".to_owned(), string(facts.server)),
        ("http_method".to_owned(), string(facts.http_method)),
        ("path".to_owned(), string(facts.path)),
    ];
    let optional = [
        ("trust_domain", facts.identity.trust_domain()),
        (
            "rpc_method",
            call.rpc.as_ref().map(|rpc| rpc.method.as_str()),
        ),
        ("name", call.name.as_deref()),
        ("protocol_version", facts.protocol_version),
        ("intent", facts.intent.intent.as_deref()),
        ("task", facts.intent.task.as_deref()),
    ];
    pairs.extend(
        optional
            .into_iter()
            .filter_map(|(key, value)| value.map(|v| (key.to_owned(), string(v)))),
    );
    let arguments = match unknown_arguments {
        Some(name) => Some(unknown_tool_arguments(call, name)?),
        None => tool_arguments(store, call)?,
    };
    if let Some(arguments) = arguments {
        pairs.push(("arguments".to_owned(), arguments));
    }
    pairs.extend_from_slice(facts.behaviour);
    Ok(pairs)
}

/// `token` and `delegation`, from the verified credential.
fn credential_pairs(
    store: &PolicyStore,
    credential: &Credential,
    now_unix: i64,
) -> Result<Vec<(String, RestrictedExpression)>, BuildError> {
    let string = |s: &str| RestrictedExpression::new_string(s.to_owned());
    let set = |items: &[String]| RestrictedExpression::new_set(items.iter().map(|s| string(s)));
    let mut token = vec![
        ("issuer".to_owned(), string(&credential.issuer)),
        ("subject".to_owned(), string(&credential.subject)),
        (
            "agent".to_owned(),
            RestrictedExpression::new_entity_uid(
                store.types.uid(&store.types.agent, &credential.subject),
            ),
        ),
        ("audience".to_owned(), set(&credential.audience)),
        ("scopes".to_owned(), set(&credential.scopes)),
        (
            "issued_at".to_owned(),
            RestrictedExpression::new_long(credential.issued_at),
        ),
        (
            "expires_at".to_owned(),
            RestrictedExpression::new_long(credential.expires_at),
        ),
        (
            "ttl_seconds".to_owned(),
            RestrictedExpression::new_long(credential.ttl_seconds()),
        ),
        (
            "remaining_seconds".to_owned(),
            RestrictedExpression::new_long(credential.remaining_seconds(now_unix)),
        ),
    ];
    let optional = [
        ("task", &credential.task),
        ("intent", &credential.intent),
        ("jti", &credential.jti),
    ];
    token.extend(
        optional
            .into_iter()
            .filter_map(|(key, value)| value.as_deref().map(|v| (key.to_owned(), string(v)))),
    );
    let depth = i64::try_from(credential.delegation.len()).unwrap_or(i64::MAX);
    let delegation = vec![
        ("depth".to_owned(), RestrictedExpression::new_long(depth)),
        ("actors".to_owned(), set(&credential.delegation)),
        (
            "chain".to_owned(),
            string(&credential.delegation.join(" > ")),
        ),
    ];
    let record = |fields| {
        RestrictedExpression::new_record(fields).map_err(|e| BuildError(format!("token: {e}")))
    };
    Ok(vec![
        ("token".to_owned(), record(token)?),
        ("delegation".to_owned(), record(delegation)?),
    ])
}

/// `arguments` for a tool call whose arguments are unknown: `{<server>: {<tool>: unknown(name)}}`.
fn unknown_tool_arguments(call: &Call, name: &str) -> Result<RestrictedExpression, BuildError> {
    let Some((server, tool)) = call.resource_id.split_once('/') else {
        return Err(BuildError(format!(
            "tool id {:?} has no server prefix",
            call.resource_id
        )));
    };
    let nest = |key: &str, value| {
        RestrictedExpression::new_record([(key.to_owned(), value)])
            .map_err(|e| BuildError(format!("arguments: {e}")))
    };
    nest(server, nest(tool, RestrictedExpression::new_unknown(name))?)
}

/// `arguments`: a tool call's arguments at `<server>.<tool>`, typed by that tool's
/// declaration (see [`crate::arguments`]). Other calls' arguments (a prompt's) are
/// left out: no schema types them, so no validated policy could read them.
fn tool_arguments(
    store: &PolicyStore,
    call: &Call,
) -> Result<Option<RestrictedExpression>, BuildError> {
    let (ResourceKind::Tool, Some(arguments)) = (call.resource_kind, &call.arguments) else {
        return Ok(None);
    };
    let Some((server, tool)) = call.resource_id.split_once('/') else {
        return Err(BuildError(format!(
            "tool id {:?} has no server prefix",
            call.resource_id
        )));
    };
    let invalid = |e: String| BuildError(format!("arguments: {e}"));
    let Some(value) =
        crate::arguments::call_to_cedar(arguments, store.arguments.of(call)).map_err(invalid)?
    else {
        return Ok(None);
    };
    let nest = |key: &str, value| {
        RestrictedExpression::new_record([(key.to_owned(), value)])
            .map_err(|e| invalid(e.to_string()))
    };
    Ok(Some(nest(server, nest(tool, value)?)?))
}
