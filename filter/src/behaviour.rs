//! Behaviour context: the agent's session history, call rates and live risk, as Cedar values.

use crate::cedar_value::{CedarValue, Pair};
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
) -> Result<Pair, String> {
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
    let record = CedarValue::record([
        ("id".to_owned(), CedarValue::string(id)),
        (
            "tools".to_owned(),
            CedarValue::set(tools.into_iter().map(CedarValue::Entity)),
        ),
        (
            "tags".to_owned(),
            CedarValue::set(session.tags.into_iter().map(CedarValue::String)),
        ),
        ("calls".to_owned(), CedarValue::count(session.calls)),
        ("high_risk_tools".to_owned(), CedarValue::count(high_risk)),
        ("first_call".to_owned(), CedarValue::Long(session.first)),
        ("last_call".to_owned(), CedarValue::Long(session.last)),
    ]);
    Ok(("session".to_owned(), record))
}

/// `context.rate`: the agent's allowed calls in the last minute, to this resource and to any.
pub fn rate(shard: &Shard, agent: &str, resource: &str, now: i64) -> Result<Pair, String> {
    let count = |resource| {
        let count: history::Count = shard.count(agent, resource, now).map_err(String::from)?;
        Ok::<_, String>(CedarValue::count(count.calls))
    };
    let record = CedarValue::record([
        ("tool".to_owned(), count(Some(resource))?),
        ("agent".to_owned(), count(None)?),
    ]);
    Ok(("rate".to_owned(), record))
}

/// `context.risk`: the workload's score and flags, and whether they are stale.
pub fn risk(view: &risk::View) -> Result<Pair, String> {
    let record = CedarValue::record([
        ("score".to_owned(), CedarValue::Long(view.signal.score)),
        ("flags".to_owned(), CedarValue::strings(&view.signal.flags)),
        ("stale".to_owned(), CedarValue::Bool(view.stale)),
    ]);
    Ok(("risk".to_owned(), record))
}
