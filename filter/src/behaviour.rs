//! Behaviour context: the agent's session history, call rates and live risk, as Cedar values.

use cedar_policy::RestrictedExpression;

use crate::history::{self, Shard};
use crate::policy::PolicyStore;
use crate::risk;

/// `context.session`: the agent's session before this call (empty when it has none yet).
pub fn session(
    store: &PolicyStore,
    shard: &Shard,
    agent: &str,
    id: &str,
    now: i64,
    idle_seconds: i64,
) -> Result<(String, RestrictedExpression), String> {
    // A session not seen yet (or forgotten) is empty: no calls, first and last 0.
    let session = shard
        .session(agent, id, now, idle_seconds)?
        .unwrap_or_default();
    let tools: Vec<_> = session
        .tools
        .iter()
        .map(|tool| store.types.uid(&store.types.tool, tool))
        .collect();
    let high_risk = tools.iter().filter(|t| store.is_high_risk(t)).count();
    let long = |n: u64| RestrictedExpression::new_long(i64::try_from(n).unwrap_or(i64::MAX));
    let record = RestrictedExpression::new_record([
        (
            "id".to_owned(),
            RestrictedExpression::new_string(id.to_owned()),
        ),
        (
            "tools".to_owned(),
            RestrictedExpression::new_set(
                tools.into_iter().map(RestrictedExpression::new_entity_uid),
            ),
        ),
        (
            "tags".to_owned(),
            RestrictedExpression::new_set(
                session
                    .tags
                    .into_iter()
                    .map(RestrictedExpression::new_string),
            ),
        ),
        ("calls".to_owned(), long(session.calls)),
        ("high_risk_tools".to_owned(), long(high_risk as u64)),
        (
            "first_call".to_owned(),
            RestrictedExpression::new_long(session.first),
        ),
        (
            "last_call".to_owned(),
            RestrictedExpression::new_long(session.last),
        ),
    ])
    .map_err(|e| format!("context.session: {e}"))?;
    Ok(("session".to_owned(), record))
}

/// `context.rate`: the agent's allowed calls in the last minute, to this resource and to any.
pub fn rate(
    shard: &Shard,
    agent: &str,
    resource: &str,
    now: i64,
) -> Result<(String, RestrictedExpression), String> {
    let long = |c: history::Count| {
        RestrictedExpression::new_long(i64::try_from(c.calls).unwrap_or(i64::MAX))
    };
    let count = |resource| shard.count(agent, resource, now).map_err(String::from);
    let record = RestrictedExpression::new_record([
        ("tool".to_owned(), long(count(Some(resource))?)),
        ("agent".to_owned(), long(count(None)?)),
    ])
    .map_err(|e| format!("context.rate: {e}"))?;
    Ok(("rate".to_owned(), record))
}

/// `context.risk`: the workload's score and flags, and whether they are stale.
pub fn risk(view: &risk::View) -> Result<(String, RestrictedExpression), String> {
    let record = RestrictedExpression::new_record([
        (
            "score".to_owned(),
            RestrictedExpression::new_long(view.signal.score),
        ),
        (
            "flags".to_owned(),
            RestrictedExpression::new_set(
                view.signal
                    .flags
                    .iter()
                    .cloned()
                    .map(RestrictedExpression::new_string),
            ),
        ),
        (
            "stale".to_owned(),
            RestrictedExpression::new_bool(view.stale),
        ),
    ])
    .map_err(|e| format!("context.risk: {e}"))?;
    Ok(("risk".to_owned(), record))
}
