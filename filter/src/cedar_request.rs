//! The Cedar request: principal, action, resource and context for one call.

use std::borrow::Cow;
use std::cell::OnceCell;

use cedar_policy::{Context, EntityUid, Request};
use serde_json::Value;

use crate::call::{Call, ResourceKind};
use crate::cedar_value::{self, CedarValue, Pair};
use crate::context_keys::ContextKeys;
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
    pub behaviour: &'a [Pair],
}

/// A Cedar request and the uids the policy index is keyed by.
pub struct Built {
    pub principal: EntityUid,
    pub action: EntityUid,
    pub resource: EntityUid,
    /// No unknowns in the context: the policy index may read its values.
    pub concrete: bool,
    /// The context as built, which the policy index and the record read; `None` for a
    /// request read back from a record (then they read Cedar's context).
    pub values: Option<Vec<Pair>>,
    /// Cedar's request with the whole context: built up front for a request read back
    /// from a record or with unknowns, and on first use (`request`) for the others,
    /// which a decision gives Cedar with only what its slice reads (`request_reading`).
    whole: OnceCell<Request>,
}

impl Built {
    /// A request whose context is already Cedar's.
    fn with_context(
        principal: EntityUid,
        action: EntityUid,
        resource: EntityUid,
        context: Context,
        concrete: bool,
    ) -> Result<Self, BuildError> {
        let request = cedar_request(&principal, &action, &resource, context)?;
        Ok(Self {
            principal,
            action,
            resource,
            concrete,
            values: None,
            whole: OnceCell::from(request),
        })
    }

    /// Cedar's request with every context attribute.
    pub fn request(&self) -> Result<&Request, BuildError> {
        if let Some(request) = self.whole.get() {
            return Ok(request);
        }
        let request = self.build_request(&ContextKeys::All)?;
        Ok(self.whole.get_or_init(|| request))
    }

    /// Cedar's request with the context attributes these policies read, the others
    /// left out: Cedar decides it as it does the whole one (see `context_keys`).
    pub fn request_reading(&self, keys: &ContextKeys) -> Result<Cow<'_, Request>, BuildError> {
        match (self.whole.get(), keys) {
            (Some(request), _) => Ok(Cow::Borrowed(request)),
            (None, ContextKeys::All) => self.request().map(Cow::Borrowed),
            (None, ContextKeys::Only(_)) => self.build_request(keys).map(Cow::Owned),
        }
    }

    fn build_request(&self, keys: &ContextKeys) -> Result<Request, BuildError> {
        let values = self.values.as_deref().unwrap_or_default();
        let restricted = values
            .iter()
            .filter(|(key, _)| keys.reads(key))
            .map(|(key, value)| {
                let expression = value
                    .to_restricted()
                    .map_err(|e| BuildError(format!("{key}: {e}")))?;
                Ok((key.to_string(), expression))
            })
            .collect::<Result<Vec<_>, BuildError>>()?;
        let context =
            Context::from_pairs(restricted).map_err(|e| BuildError(format!("context: {e}")))?;
        cedar_request(&self.principal, &self.action, &self.resource, context)
    }

    /// This request in Cedar's JSON forms, for the decision record; `arguments`
    /// stays out of the context unless `with_arguments`.
    pub fn record(&self, allowed: bool, with_arguments: bool) -> Option<CedarRecord> {
        let uid = |uid: &EntityUid| {
            Some(
                serde_json::json!({ "type": uid.type_name().to_string(), "id": uid.id().unescaped() }),
            )
        };
        let kept = |key: &str| with_arguments || key != "arguments";
        let context = match &self.values {
            Some(values) => cedar_value::context_json(values.iter().filter(|(k, _)| kept(k)))?,
            None => {
                let mut context = self.whole.get()?.context()?.to_json_value().ok()?;
                if let Value::Object(fields) = &mut context {
                    fields.retain(|key, _| kept(key));
                }
                context
            }
        };
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

/// True when the value is or holds an unknown.
fn value_has_unknown(value: &CedarValue) -> bool {
    match value {
        CedarValue::Unknown(_) => true,
        CedarValue::Set(items) => items.iter().any(value_has_unknown),
        CedarValue::Record(fields) => fields.iter().any(|(_, v)| value_has_unknown(v)),
        CedarValue::Bool(_)
        | CedarValue::Long(_)
        | CedarValue::String(_)
        | CedarValue::Entity(_)
        | CedarValue::Decimal(_) => false,
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
    Built::with_context(principal, action, resource, context, true)
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
        pairs.extend(credential_pairs(store, credential, facts.now_unix));
    }
    if let Some(key) = repeated_key(&pairs) {
        // Cedar's `Context::from_pairs` would refuse it; so does a context it is not given.
        return Err(BuildError(format!(
            "context: the attribute {key:?} is given twice"
        )));
    }
    let concrete = !pairs.iter().any(|(_, value)| value_has_unknown(value));
    let built = Built {
        principal,
        action,
        resource,
        concrete,
        values: Some(pairs),
        whole: OnceCell::new(),
    };
    if !concrete {
        // Partial evaluation reads the whole context; build it now, so that an error
        // shows here as it does for a concrete request's first use.
        built.request()?;
    }
    Ok(built)
}

/// The first context attribute name given twice, if any.
fn repeated_key(pairs: &[Pair]) -> Option<&str> {
    pairs.iter().enumerate().find_map(|(at, (key, _))| {
        pairs
            .iter()
            .take(at)
            .any(|(earlier, _)| earlier == key)
            .then_some(key.as_str())
    })
}

fn cedar_request(
    principal: &EntityUid,
    action: &EntityUid,
    resource: &EntityUid,
    context: Context,
) -> Result<Request, BuildError> {
    Request::new(
        principal.clone(),
        action.clone(),
        resource.clone(),
        context,
        None,
    )
    .map_err(|e| BuildError(format!("request: {e}")))
}

fn context_pairs(
    store: &PolicyStore,
    call: &Call,
    facts: &Facts<'_>,
    unknown_arguments: Option<&str>,
) -> Result<Vec<Pair>, BuildError> {
    let string = |s: &str| CedarValue::string(s);
    let mut pairs = Vec::with_capacity(16 + facts.behaviour.len());
    pairs.extend([
        (
            "authenticated".into(),
            CedarValue::Bool(facts.identity.principal != Principal::Unauthenticated),
        ),
        (
            "insecure_identity".into(),
            CedarValue::Bool(facts.identity.insecure),
        ),
        ("server".into(), string(facts.server)),
        ("http_method".into(), string(facts.http_method)),
        ("path".into(), string(facts.path)),
    ]);
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
            .filter_map(|(key, value)| value.map(|v| (key.into(), string(v)))),
    );
    let arguments = match unknown_arguments {
        Some(name) => Some(unknown_tool_arguments(call, name)?),
        None => tool_arguments(store, call)?,
    };
    if let Some(arguments) = arguments {
        pairs.push(("arguments".into(), arguments));
    }
    pairs.extend_from_slice(facts.behaviour);
    Ok(pairs)
}

/// `token` and `delegation`, from the verified credential.
fn credential_pairs(store: &PolicyStore, credential: &Credential, now_unix: i64) -> [Pair; 2] {
    let string = |s: &str| CedarValue::string(s);
    let mut token = vec![
        ("issuer".into(), string(&credential.issuer)),
        ("subject".into(), string(&credential.subject)),
        (
            "agent".into(),
            CedarValue::Entity(store.types.uid(&store.types.agent, &credential.subject)),
        ),
        ("audience".into(), CedarValue::strings(&credential.audience)),
        ("scopes".into(), CedarValue::strings(&credential.scopes)),
        ("issued_at".into(), CedarValue::Long(credential.issued_at)),
        ("expires_at".into(), CedarValue::Long(credential.expires_at)),
        (
            "ttl_seconds".into(),
            CedarValue::Long(credential.ttl_seconds()),
        ),
        (
            "remaining_seconds".into(),
            CedarValue::Long(credential.remaining_seconds(now_unix)),
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
            .filter_map(|(key, value)| value.as_deref().map(|v| (key.into(), string(v)))),
    );
    let delegation = vec![
        (
            "depth".into(),
            CedarValue::count(credential.delegation.len()),
        ),
        ("actors".into(), CedarValue::strings(&credential.delegation)),
        ("chain".into(), string(&credential.delegation.join(" > "))),
    ];
    [
        ("token".into(), CedarValue::Record(token)),
        ("delegation".into(), CedarValue::Record(delegation)),
    ]
}

/// `arguments` for a tool call whose arguments are unknown: `{<server>: {<tool>: unknown(name)}}`.
fn unknown_tool_arguments(call: &Call, name: &str) -> Result<CedarValue, BuildError> {
    let Some((server, tool)) = call.resource_id.split_once('/') else {
        return Err(BuildError(format!(
            "tool id {:?} has no server prefix",
            call.resource_id
        )));
    };
    Ok(nest(server, tool, CedarValue::Unknown(name.to_owned())))
}

/// `{<server>: {<tool>: value}}`.
fn nest(server: &str, tool: &str, value: CedarValue) -> CedarValue {
    let tool = CedarValue::Record(vec![(tool.into(), value)]);
    CedarValue::Record(vec![(server.into(), tool)])
}

/// `arguments`: a tool call's arguments at `<server>.<tool>`, typed by that tool's
/// declaration (see [`crate::arguments`]). Other calls' arguments (a prompt's) are
/// left out: no schema types them, so no validated policy could read them.
fn tool_arguments(store: &PolicyStore, call: &Call) -> Result<Option<CedarValue>, BuildError> {
    let (ResourceKind::Tool, Some(arguments)) = (call.resource_kind, &call.arguments) else {
        return Ok(None);
    };
    let Some((server, tool)) = call.resource_id.split_once('/') else {
        return Err(BuildError(format!(
            "tool id {:?} has no server prefix",
            call.resource_id
        )));
    };
    let value = crate::arguments::call_to_cedar(arguments, store.arguments.of(call))
        .map_err(|e| BuildError(format!("arguments: {e}")))?;
    Ok(value.map(|value| nest(server, tool, value)))
}
