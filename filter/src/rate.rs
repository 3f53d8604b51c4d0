//! Rate limits are policies: when a refusal is one, and when the call can succeed again.

use crate::history::{self, Shard};
use crate::policy::PolicyStore;

/// Seconds until a call refused by these determining forbids can succeed, when
/// every one of them is annotated `@refusal("rate_limited")`: the latest time one
/// of the counts they read drops. `None` when any other forbid was among them.
pub fn retry_after(
    store: &PolicyStore,
    policies: &[String],
    shard: &Shard<'_>,
    agent: &str,
    resource: &str,
    now: i64,
) -> Option<u64> {
    let mut drops_at = None;
    for policy in policies {
        let fields = store.rate_fields(policy)?;
        let counts = [
            fields.tool.then(|| shard.count(agent, Some(resource), now)),
            fields.agent.then(|| shard.count(agent, None, now)),
        ];
        // The same counts were read for the policies; one unreadable now is no rate limit.
        for count in counts.into_iter().flatten().filter_map(Result::ok) {
            let at = count.drops_at.unwrap_or(now + history::WINDOW_SECONDS);
            drops_at = Some(drops_at.map_or(at, |d: i64| d.max(at)));
        }
    }
    let after = drops_at.unwrap_or(now + history::WINDOW_SECONDS) - now;
    Some(u64::try_from(after.clamp(1, history::WINDOW_SECONDS)).unwrap_or(1))
}
