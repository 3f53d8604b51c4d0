//! Session history and call rates: what each agent did recently, kept in shared data.
//!
//! One agent's sessions and rate counters live together in one shard (one
//! shared-data key), so a call is decided against, and recorded into, one value
//! with one compare-and-swap: concurrent calls on other workers cannot slip in
//! between. The shards are a fixed set of keys, so the state never grows past
//! `max_entries`, however many agents and sessions come and go.

use serde::{Deserialize, Serialize};

use crate::config::History;
use crate::shared::SharedData;

/// Rates count the calls of the last minute.
pub const WINDOW_SECONDS: i64 = 60;

/// Bumped whenever the shard format changes, so an old value is never misread.
const KEY_PREFIX: &str = "toolgate/history/v2";

/// The agent's calls without a declared session share this session id.
pub const NO_SESSION: &str = "";

/// One shard: the sessions and rate counters of the agents hashed to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub sessions: Vec<Session>,
    pub rates: Vec<Rate>,
}

/// What one agent did in one session: only calls that were allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub agent: String,
    pub id: String,
    /// Distinct tools called, by id.
    pub tools: Vec<String>,
    /// Distinct tags of the resources called.
    pub tags: Vec<String>,
    pub calls: u64,
    /// Unix seconds of the first and the last call.
    pub first: i64,
    pub last: i64,
}

/// Allowed calls per second over the last minute: an agent's to one resource, or
/// (no resource) to all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    pub agent: String,
    pub resource: Option<String>,
    /// (Unix second, calls), oldest first.
    pub buckets: Vec<(i64, u32)>,
}

impl Rate {
    fn last(&self) -> i64 {
        self.buckets.last().map_or(i64::MIN, |(second, _)| *second)
    }

    fn prune(&mut self, now: i64) {
        self.buckets
            .retain(|(second, _)| *second > now - WINDOW_SECONDS);
    }
}

/// Calls in the window, and when the oldest of them leaves it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    pub calls: u64,
    /// Unix second the count next drops, if it is not zero.
    pub drops_at: Option<i64>,
}

/// A call to record once it is allowed.
#[derive(Debug, Clone, Copy)]
pub struct Recorded<'a> {
    pub agent: &'a str,
    pub session: &'a str,
    /// The resource id (tool, prompt, resource or route) the rate counts.
    pub resource: &'a str,
    /// The tool id, for tool calls.
    pub tool: Option<&'a str>,
    /// The resource's tags in the catalog.
    pub tags: &'a [String],
}

/// What recording and sweeping removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    /// Idle sessions and empty counters.
    pub expired: u64,
    /// Entries dropped for room, oldest first.
    pub evicted: u64,
}

impl Removed {
    pub fn add(&mut self, other: Removed) {
        self.expired += other.expired;
        self.evicted += other.evicted;
    }
}

/// The shared-data key of the shard holding this agent's state.
pub fn shard_key(config: &History, agent: &str) -> String {
    // FNV-1a: the same agent lands in the same shard on every worker and restart.
    let hash = agent.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let shards = config.shards.max(1) as u64;
    shard_key_at(config, hash % shards)
}

/// Every shard key of this configuration; the shard count is part of the key, so
/// a reconfigured count starts afresh instead of misplacing agents.
pub fn shard_keys(config: &History) -> impl Iterator<Item = String> + '_ {
    (0..config.shards.max(1) as u64).map(|n| shard_key_at(config, n))
}

fn shard_key_at(config: &History, n: u64) -> String {
    format!("{KEY_PREFIX}/{}/{n}", config.shards)
}

impl Shard {
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        postcard::from_bytes(bytes).map_err(|e| format!("session history shard unreadable: {e}"))
    }

    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.sessions.len() + self.rates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The agent's session, unless it has been idle longer than `idle_seconds`.
    pub fn session(&self, agent: &str, id: &str, now: i64, idle_seconds: i64) -> Option<&Session> {
        self.sessions
            .iter()
            .find(|s| s.agent == agent && s.id == id)
            .filter(|s| now - s.last <= idle_seconds)
    }

    /// The agent's allowed calls in the last minute, to `resource` or (None) to any.
    pub fn count(&self, agent: &str, resource: Option<&str>, now: i64) -> Count {
        let Some(rate) = self
            .rates
            .iter()
            .find(|r| r.agent == agent && r.resource.as_deref() == resource)
        else {
            return Count::default();
        };
        let mut count = Count::default();
        for (second, calls) in &rate.buckets {
            if *second > now - WINDOW_SECONDS {
                count.calls += u64::from(*calls);
                count.drops_at.get_or_insert(second + WINDOW_SECONDS);
            }
        }
        count
    }

    /// Records an allowed call, making room by evicting the oldest entries.
    pub fn record(&mut self, call: &Recorded<'_>, now: i64, config: &History) -> Removed {
        let mut removed = Removed {
            expired: self.sweep(now, idle(config)),
            evicted: 0,
        };
        if !self
            .sessions
            .iter()
            .any(|s| s.agent == call.agent && s.id == call.session)
        {
            self.sessions.push(Session {
                agent: call.agent.to_owned(),
                id: call.session.to_owned(),
                tools: Vec::new(),
                tags: Vec::new(),
                calls: 0,
                first: now,
                last: now,
            });
        }
        if let Some(session) = self
            .sessions
            .iter_mut()
            .find(|s| s.agent == call.agent && s.id == call.session)
        {
            if let Some(tool) = call.tool {
                add_distinct(&mut session.tools, tool);
            }
            for tag in call.tags {
                add_distinct(&mut session.tags, tag);
            }
            session.calls += 1;
            session.last = session.last.max(now);
        }
        for resource in [None, Some(call.resource)] {
            self.count_call(call.agent, resource, now);
        }
        removed.add(self.evict_to(config.shard_capacity(), call));
        removed
    }

    fn count_call(&mut self, agent: &str, resource: Option<&str>, now: i64) {
        let is_it = |r: &Rate| r.agent == agent && r.resource.as_deref() == resource;
        if !self.rates.iter().any(is_it) {
            self.rates.push(Rate {
                agent: agent.to_owned(),
                resource: resource.map(str::to_owned),
                buckets: Vec::new(),
            });
        }
        if let Some(rate) = self.rates.iter_mut().find(|r| is_it(r)) {
            match rate.buckets.last_mut() {
                Some((second, calls)) if *second == now => *calls = calls.saturating_add(1),
                _ => rate.buckets.push((now, 1)),
            }
            rate.prune(now);
        }
    }

    /// Drops idle sessions and counters with no call in the window; returns how many.
    pub fn sweep(&mut self, now: i64, idle_seconds: i64) -> u64 {
        let before = self.len();
        self.sessions.retain(|s| now - s.last <= idle_seconds);
        for rate in &mut self.rates {
            rate.prune(now);
        }
        self.rates.retain(|r| !r.buckets.is_empty());
        (before - self.len()) as u64
    }

    /// Evicts the least recently used entries until at most `capacity` remain,
    /// never the ones `keep` just touched.
    fn evict_to(&mut self, capacity: usize, keep: &Recorded<'_>) -> Removed {
        let mut removed = Removed::default();
        while self.len() > capacity {
            let session = self
                .sessions
                .iter()
                .enumerate()
                .filter(|(_, s)| !(s.agent == keep.agent && s.id == keep.session))
                .min_by_key(|(_, s)| s.last)
                .map(|(at, s)| (s.last, at));
            let rate = self
                .rates
                .iter()
                .enumerate()
                .filter(|(_, r)| {
                    !(r.agent == keep.agent
                        && r.resource.as_deref().is_none_or(|k| k == keep.resource))
                })
                .min_by_key(|(_, r)| r.last())
                .map(|(at, r)| (r.last(), at));
            match (session, rate) {
                (Some((s_last, at)), Some((r_last, _))) if s_last <= r_last => {
                    self.sessions.remove(at);
                }
                (Some((_, at)), None) => {
                    self.sessions.remove(at);
                }
                (_, Some((_, at))) => {
                    self.rates.remove(at);
                }
                (None, None) => break,
            }
            removed.evicted += 1;
        }
        removed
    }
}

fn idle(config: &History) -> i64 {
    i64::try_from(config.idle_seconds).unwrap_or(i64::MAX)
}

fn add_distinct(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_owned());
    }
}

/// A shard as read: its value and the version a write must match.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub key: String,
    pub shard: Shard,
    /// 0 when the key did not exist.
    pub cas: u32,
}

/// Reads the agent's shard.
pub fn load(shared: &dyn SharedData, config: &History, agent: &str) -> Result<Loaded, String> {
    let key = shard_key(config, agent);
    let (shard, cas) = match shared.get(&key)? {
        Some((bytes, cas)) => (Shard::decode(&bytes)?, cas),
        None => (Shard::default(), 0),
    };
    Ok(Loaded { key, shard, cas })
}

/// Creates the shards that don't exist yet. Run when the plugin is configured, so
/// that request-time writes always compare-and-swap against an existing value
/// (Envoy creates a missing key whatever the version given).
pub fn create_shards(shared: &dyn SharedData, config: &History) -> Result<usize, String> {
    let mut created = 0;
    for key in shard_keys(config) {
        if shared.get(&key)?.is_none() {
            shared.set(&key, &Shard::default().encode(), 0)?;
            created += 1;
        }
    }
    Ok(created)
}

/// Sweeps every shard of expired entries; a shard another worker is writing is
/// left for the next sweep. An unreadable shard is reset, and said so.
pub fn sweep_all(
    shared: &dyn SharedData,
    config: &History,
    now: i64,
) -> Result<(Removed, Vec<String>), String> {
    let mut removed = Removed::default();
    let mut problems = Vec::new();
    for key in shard_keys(config) {
        let Some((bytes, cas)) = shared.get(&key)? else {
            continue;
        };
        let (mut shard, unreadable) = match Shard::decode(&bytes) {
            Ok(shard) => (shard, false),
            Err(error) => {
                problems.push(format!("{key}: {error}; reset to empty"));
                (Shard::default(), true)
            }
        };
        let expired = shard.sweep(now, idle(config));
        if (expired > 0 || unreadable) && shared.set(&key, &shard.encode(), cas)? {
            removed.expired += expired;
        }
    }
    Ok((removed, problems))
}
