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
        ("id".into(), CedarValue::string(id)),
        (
            "tools".into(),
            CedarValue::set(tools.into_iter().map(CedarValue::Entity)),
        ),
        ("tags".into(), CedarValue::strings(&session.tags)),
        ("calls".into(), CedarValue::count(session.calls)),
        ("high_risk_tools".into(), CedarValue::count(high_risk)),
        ("first_call".into(), CedarValue::Long(session.first)),
        ("last_call".into(), CedarValue::Long(session.last)),
    ]);
    Ok(("session".into(), record))
}

/// `context.rate`: the agent's allowed calls in the last minute, to this resource and to any.
pub fn rate(shard: &Shard, agent: &str, resource: &str, now: i64) -> Result<Pair, String> {
    let count = |resource| {
        let count: history::Count = shard.count(agent, resource, now).map_err(String::from)?;
        Ok::<_, String>(CedarValue::count(count.calls))
    };
    let record = CedarValue::record([
        ("tool".into(), count(Some(resource))?),
        ("agent".into(), count(None)?),
    ]);
    Ok(("rate".into(), record))
}

/// `context.risk`: the workload's score and flags, and whether they are stale.
pub fn risk(view: &risk::View) -> Pair {
    let record = CedarValue::record([
        ("score".into(), CedarValue::Long(view.signal.score)),
        ("flags".into(), CedarValue::strings(&view.signal.flags)),
        ("stale".into(), CedarValue::Bool(view.stale)),
    ]);
    ("risk".into(), record)
}
