//! Session history and call rates: what each agent did recently, kept in shared data.
//!
//! One agent's sessions and rate counters live together in one shard (one
//! shared-data key), so a call is decided against, and recorded into, one value
//! with one compare-and-swap: concurrent calls on other workers cannot slip in
//! between. The shards are a fixed set of keys, so the state never grows past
//! `max_entries`, however many agents and sessions come and go.
//!
//! A shard is read on every call of every agent hashed to it, so only the
//! entries a call needs are decoded: each entry is stored as a small header (kind,
//! agent, session or resource, last use) that is read in place, and a payload
//! decoded on demand. The rest is written back as it was read.

use serde::{Deserialize, Serialize};

use crate::config::History;
use crate::shared::SharedData;

/// Rates count the calls of the last minute.
pub const WINDOW_SECONDS: i64 = 60;

/// Bumped whenever the shard format changes, so an old value is never misread.
const KEY_PREFIX: &str = "toolgate/history/v3";

/// The agent's calls without a declared session share this session id.
pub const NO_SESSION: &str = "";

/// What one agent did in one session: only calls that were allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Distinct tools called, by id.
    pub tools: Vec<String>,
    /// Distinct tags of the resources called.
    pub tags: Vec<String>,
    pub calls: u64,
    /// Unix seconds of the first and the last call.
    pub first: i64,
    pub last: i64,
}

/// Allowed calls per second over the last minute, oldest first: (Unix second, calls).
type Buckets = Vec<(i64, u32)>;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Kind {
    Session,
    /// An agent's calls to one resource.
    ResourceRate,
    /// An agent's calls to anything.
    AgentRate,
}

/// One entry as stored: the header is read in place, the payload (a [`Session`] or
/// [`Buckets`]) only when the entry is needed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored<'a> {
    kind: Kind,
    agent: &'a str,
    /// The session id, the resource id, or empty for an agent rate.
    key: &'a str,
    /// Unix second of the last call it counts.
    last: i64,
    payload: &'a [u8],
}

/// An entry's payload: as read, or decoded (and perhaps changed).
#[derive(Debug, Clone)]
enum Payload<'a> {
    Raw(&'a [u8]),
    Session(Session),
    Rate(Buckets),
}

#[derive(Debug, Clone)]
struct Entry<'a> {
    kind: Kind,
    agent: &'a str,
    key: &'a str,
    last: i64,
    payload: Payload<'a>,
}

impl Entry<'_> {
    fn is(&self, kind: Kind, agent: &str, key: &str) -> bool {
        self.kind == kind && self.agent == agent && self.key == key
    }

    /// Still worth keeping at `now`: a session not idle too long, a rate with a call in the window.
    fn live(&self, now: i64, idle_seconds: i64) -> bool {
        match self.kind {
            Kind::Session => now - self.last <= idle_seconds,
            Kind::ResourceRate | Kind::AgentRate => self.last > now - WINDOW_SECONDS,
        }
    }
}

/// One shard: the sessions and rate counters of the agents hashed to it. It
/// borrows the bytes it was decoded from.
#[derive(Debug, Clone, Default)]
pub struct Shard<'a> {
    entries: Vec<Entry<'a>>,
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

impl<'a> Shard<'a> {
    /// Reads the entries' headers; payloads stay undecoded until needed.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, String> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        let stored: Vec<Stored<'a>> = postcard::from_bytes(bytes)
            .map_err(|e| format!("session history shard unreadable: {e}"))?;
        let entries = stored
            .into_iter()
            .map(|s| Entry {
                kind: s.kind,
                agent: s.agent,
                key: s.key,
                last: s.last,
                payload: Payload::Raw(s.payload),
            })
            .collect();
        Ok(Self { entries })
    }

    pub fn encode(&self) -> Vec<u8> {
        let payloads: Vec<Vec<u8>> = self
            .entries
            .iter()
            .map(|entry| match &entry.payload {
                Payload::Raw(_) => Vec::new(),
                Payload::Session(session) => postcard::to_allocvec(session).unwrap_or_default(),
                Payload::Rate(buckets) => postcard::to_allocvec(buckets).unwrap_or_default(),
            })
            .collect();
        let stored: Vec<Stored<'_>> = self
            .entries
            .iter()
            .zip(&payloads)
            .map(|(entry, encoded)| Stored {
                kind: entry.kind,
                agent: entry.agent,
                key: entry.key,
                last: entry.last,
                payload: match entry.payload {
                    Payload::Raw(raw) => raw,
                    _ => encoded,
                },
            })
            .collect();
        postcard::to_allocvec(&stored).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The agent's session, unless it has been idle longer than `idle_seconds`.
    pub fn session(&self, agent: &str, id: &str, now: i64, idle_seconds: i64) -> Option<Session> {
        let entry = self
            .entries
            .iter()
            .find(|e| e.is(Kind::Session, agent, id) && e.live(now, idle_seconds))?;
        match &entry.payload {
            Payload::Session(session) => Some(session.clone()),
            // An unreadable payload is an empty session: the header said when it was used.
            Payload::Raw(raw) => Some(postcard::from_bytes(raw).unwrap_or_default()),
            Payload::Rate(_) => None,
        }
    }

    /// The agent's allowed calls in the last minute, to `resource` or (None) to any.
    pub fn count(&self, agent: &str, resource: Option<&str>, now: i64) -> Count {
        let (kind, key) = rate_key(resource);
        let Some(entry) = self.entries.iter().find(|e| e.is(kind, agent, key)) else {
            return Count::default();
        };
        let decoded;
        let buckets = match &entry.payload {
            Payload::Rate(buckets) => buckets,
            Payload::Raw(raw) => {
                decoded = postcard::from_bytes::<Buckets>(raw).unwrap_or_default();
                &decoded
            }
            Payload::Session(_) => return Count::default(),
        };
        let mut count = Count::default();
        for (second, calls) in buckets {
            if *second > now - WINDOW_SECONDS {
                count.calls += u64::from(*calls);
                count.drops_at.get_or_insert(second + WINDOW_SECONDS);
            }
        }
        count
    }

    /// Records an allowed call, making room by evicting the oldest entries.
    pub fn record(&mut self, call: &Recorded<'a>, now: i64, config: &History) -> Removed {
        let mut removed = Removed {
            expired: self.sweep(now, idle(config)),
            evicted: 0,
        };
        let session = self.decoded(Kind::Session, call.agent, call.session, now);
        if let Some(Payload::Session(session)) = session.map(|e| &mut e.payload) {
            if let Some(tool) = call.tool {
                add_distinct(&mut session.tools, tool);
            }
            for tag in call.tags {
                add_distinct(&mut session.tags, tag);
            }
            if session.calls == 0 {
                session.first = now;
            }
            session.calls += 1;
            session.last = session.last.max(now);
        }
        for resource in [None, Some(call.resource)] {
            let (kind, key) = rate_key(resource);
            let rate = self.decoded(kind, call.agent, key, now);
            if let Some(Payload::Rate(buckets)) = rate.map(|e| &mut e.payload) {
                match buckets.last_mut() {
                    Some((second, calls)) if *second == now => *calls = calls.saturating_add(1),
                    _ => buckets.push((now, 1)),
                }
                buckets.retain(|(second, _)| *second > now - WINDOW_SECONDS);
            }
        }
        removed.evicted = self.evict_to(config.shard_capacity(), call);
        removed
    }

    /// The entry, decoded for change and marked used at `now`; created when missing.
    fn decoded(
        &mut self,
        kind: Kind,
        agent: &'a str,
        key: &'a str,
        now: i64,
    ) -> Option<&mut Entry<'a>> {
        if !self.entries.iter().any(|e| e.is(kind, agent, key)) {
            self.entries.push(Entry {
                kind,
                agent,
                key,
                last: now,
                payload: match kind {
                    Kind::Session => Payload::Session(Session::default()),
                    Kind::ResourceRate | Kind::AgentRate => Payload::Rate(Buckets::new()),
                },
            });
        }
        let entry = self.entries.iter_mut().find(|e| e.is(kind, agent, key))?;
        if let Payload::Raw(raw) = entry.payload {
            entry.payload = match kind {
                Kind::Session => Payload::Session(postcard::from_bytes(raw).unwrap_or_default()),
                Kind::ResourceRate | Kind::AgentRate => {
                    Payload::Rate(postcard::from_bytes(raw).unwrap_or_default())
                }
            };
        }
        entry.last = entry.last.max(now);
        Some(entry)
    }

    /// Drops idle sessions and counters with no call in the window; returns how many.
    pub fn sweep(&mut self, now: i64, idle_seconds: i64) -> u64 {
        let before = self.entries.len();
        self.entries.retain(|e| e.live(now, idle_seconds));
        (before - self.entries.len()) as u64
    }

    /// Evicts the least recently used entries until at most `capacity` remain,
    /// never the ones `keep` just touched.
    fn evict_to(&mut self, capacity: usize, keep: &Recorded<'_>) -> u64 {
        let mut evicted = 0;
        while self.entries.len() > capacity {
            let kept = |e: &Entry<'_>| {
                e.agent == keep.agent
                    && match e.kind {
                        Kind::Session => e.key == keep.session,
                        Kind::ResourceRate => e.key == keep.resource,
                        Kind::AgentRate => true,
                    }
            };
            let oldest = self
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| !kept(e))
                .min_by_key(|(_, e)| e.last)
                .map(|(at, _)| at);
            let Some(at) = oldest else { break };
            self.entries.remove(at);
            evicted += 1;
        }
        evicted
    }
}

fn rate_key(resource: Option<&str>) -> (Kind, &str) {
    match resource {
        Some(resource) => (Kind::ResourceRate, resource),
        None => (Kind::AgentRate, ""),
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

/// A shard as read: its bytes and the version a write must match.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub key: String,
    pub bytes: Vec<u8>,
    /// 0 when the key did not exist.
    pub cas: u32,
}

impl Loaded {
    pub fn shard(&self) -> Result<Shard<'_>, String> {
        Shard::decode(&self.bytes)
    }
}

/// Reads the agent's shard.
pub fn load(shared: &dyn SharedData, config: &History, agent: &str) -> Result<Loaded, String> {
    let key = shard_key(config, agent);
    let (bytes, cas) = shared.get(&key)?.unwrap_or_default();
    Ok(Loaded { key, bytes, cas })
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
