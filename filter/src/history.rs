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
//!
//! A shard or an entry that does not decode is an error, never an empty session:
//! the gate refuses the call (fails closed) instead of deciding on forgotten history.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::config::History;
use crate::shared::{self, Codec, SharedData, StateError};

/// Rates count the calls of the last minute.
pub const WINDOW_SECONDS: i64 = 60;

/// Bumped whenever the shard format changes, so an old value is never misread.
const KEY_PREFIX: &str = "toolgate/history/v3";

/// The agent's calls without a declared session share this session id.
pub const NO_SESSION: &str = "";

/// The session a call is kept in: the verified token's task outranks the session
/// header the agent declares; without either, [`NO_SESSION`].
pub fn session_id<'a>(token_task: Option<&'a str>, declared: Option<&'a str>) -> &'a str {
    token_task.or(declared).unwrap_or(NO_SESSION)
}

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

/// An entry: borrowed from the bytes read, owned when a call created it.
#[derive(Debug, Clone)]
struct Entry<'a> {
    kind: Kind,
    agent: Cow<'a, str>,
    key: Cow<'a, str>,
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
/// borrows the bytes (and the key) it was decoded from.
#[derive(Debug, Clone, Default)]
pub struct Shard<'a> {
    /// The shared-data key it was read from, for errors.
    key: &'a str,
    entries: Vec<Entry<'a>>,
    /// What recording into it removed so far.
    removed: Removed,
}

/// How a shard is stored: postcard, entry headers read in place.
pub struct ShardCodec;

impl Codec for ShardCodec {
    type Value<'a> = Shard<'a>;

    fn decode<'a>(key: &'a str, bytes: &'a [u8]) -> Result<Shard<'a>, String> {
        Shard::decode_at(key, bytes)
    }

    fn encode(shard: &Shard<'_>) -> Result<Vec<u8>, String> {
        shard.encode()
    }
}

/// The shared-data entry of the shard under `key`.
fn stored(key: String) -> shared::Stored<ShardCodec> {
    shared::Stored::new(key)
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
        Self::decode_at("", bytes)
    }

    /// [`Shard::decode`] for the shard stored under `key`, which its errors name.
    pub fn decode_at(key: &'a str, bytes: &'a [u8]) -> Result<Self, String> {
        if bytes.is_empty() {
            return Ok(Self {
                key,
                ..Self::default()
            });
        }
        let stored: Vec<Stored<'a>> = postcard::from_bytes(bytes)
            .map_err(|e| format!("session history shard unreadable: {e}"))?;
        let entries = stored
            .into_iter()
            .map(|s| Entry {
                kind: s.kind,
                agent: Cow::Borrowed(s.agent),
                key: Cow::Borrowed(s.key),
                last: s.last,
                payload: Payload::Raw(s.payload),
            })
            .collect();
        Ok(Self {
            key,
            entries,
            removed: Removed::default(),
        })
    }

    /// The shard as stored; an error (never an empty value) when it cannot be encoded.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let payloads = self
            .entries
            .iter()
            .map(|entry| match &entry.payload {
                Payload::Raw(_) => Ok(Vec::new()),
                Payload::Session(session) => postcard::to_allocvec(session),
                Payload::Rate(buckets) => postcard::to_allocvec(buckets),
            })
            .collect::<Result<Vec<Vec<u8>>, _>>()
            .map_err(|e| format!("session history entry: {e}"))?;
        let stored: Vec<Stored<'_>> = self
            .entries
            .iter()
            .zip(&payloads)
            .map(|(entry, encoded)| Stored {
                kind: entry.kind,
                agent: &entry.agent,
                key: &entry.key,
                last: entry.last,
                payload: match entry.payload {
                    Payload::Raw(raw) => raw,
                    _ => encoded,
                },
            })
            .collect();
        postcard::to_allocvec(&stored).map_err(|e| format!("session history shard: {e}"))
    }

    /// What recording into this shard removed so far.
    pub fn removed(&self) -> Removed {
        self.removed
    }

    /// The error for an entry whose payload does not decode.
    fn corrupt(&self, entry: &Entry<'_>, error: postcard::Error) -> StateError {
        let what = match entry.kind {
            Kind::Session => format!("the session {:?}", entry.key),
            Kind::ResourceRate => format!("the call rate to {}", entry.key),
            Kind::AgentRate => "the call rate".to_owned(),
        };
        shared::corrupt(
            self.key,
            format!("{what} of {} does not decode: {error}", entry.agent),
        )
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The agent's session, unless it has been idle longer than `idle_seconds`.
    /// A session that does not decode is an error: deciding on it as if empty
    /// would forget what it did (a secret read, say).
    pub fn session(
        &self,
        agent: &str,
        id: &str,
        now: i64,
        idle_seconds: i64,
    ) -> Result<Option<Session>, StateError> {
        let Some(entry) = self
            .entries
            .iter()
            .find(|e| e.is(Kind::Session, agent, id) && e.live(now, idle_seconds))
        else {
            return Ok(None);
        };
        match &entry.payload {
            Payload::Session(session) => Ok(Some(session.clone())),
            Payload::Raw(raw) => postcard::from_bytes(raw)
                .map(Some)
                .map_err(|e| self.corrupt(entry, e)),
            Payload::Rate(_) => Ok(None),
        }
    }

    /// The agent's allowed calls in the last minute, to `resource` or (None) to any.
    /// A counter with a call in the window that does not decode is an error.
    pub fn count(
        &self,
        agent: &str,
        resource: Option<&str>,
        now: i64,
    ) -> Result<Count, StateError> {
        let (kind, key) = rate_key(resource);
        let Some(entry) = self
            .entries
            .iter()
            // A counter whose last call left the window counts nothing, whatever it holds.
            .find(|e| e.is(kind, agent, key) && e.live(now, 0))
        else {
            return Ok(Count::default());
        };
        let decoded;
        let buckets = match &entry.payload {
            Payload::Rate(buckets) => buckets,
            Payload::Raw(raw) => {
                decoded =
                    postcard::from_bytes::<Buckets>(raw).map_err(|e| self.corrupt(entry, e))?;
                &decoded
            }
            Payload::Session(_) => return Ok(Count::default()),
        };
        let mut count = Count::default();
        for (second, calls) in buckets {
            if *second > now - WINDOW_SECONDS {
                count.calls += u64::from(*calls);
                count.drops_at.get_or_insert(second + WINDOW_SECONDS);
            }
        }
        Ok(count)
    }

    /// Records an allowed call, making room by evicting the oldest entries. An entry
    /// of the call that does not decode is an error; the shard is then half-changed
    /// and must not be written back.
    pub fn record(
        &mut self,
        call: &Recorded<'_>,
        now: i64,
        config: &History,
    ) -> Result<Removed, StateError> {
        let mut removed = Removed {
            expired: self.sweep(now, idle(config)),
            evicted: 0,
        };
        let session = self.decoded(Kind::Session, call.agent, call.session, now)?;
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
            let rate = self.decoded(kind, call.agent, key, now)?;
            if let Some(Payload::Rate(buckets)) = rate.map(|e| &mut e.payload) {
                match buckets.last_mut() {
                    Some((second, calls)) if *second == now => *calls = calls.saturating_add(1),
                    _ => buckets.push((now, 1)),
                }
                buckets.retain(|(second, _)| *second > now - WINDOW_SECONDS);
            }
        }
        removed.evicted = self.evict_to(config.shard_capacity(), call);
        self.removed.add(removed);
        Ok(removed)
    }

    /// Adds `tags` an answer carried to the agent's session (created when missing),
    /// making room as [`Shard::record`] does. True when the shard must be written.
    pub fn tag(
        &mut self,
        agent: &str,
        session: &str,
        tags: &[String],
        now: i64,
        config: &History,
    ) -> Result<bool, StateError> {
        let expired = self.sweep(now, idle(config));
        let mut changed = expired > 0;
        let entry = self.decoded(Kind::Session, agent, session, now)?;
        if let Some(Payload::Session(session)) = entry.map(|e| &mut e.payload) {
            for tag in tags {
                if !session.tags.contains(tag) {
                    session.tags.push(tag.clone());
                    changed = true;
                }
            }
            session.last = session.last.max(now);
        }
        let keep = Recorded {
            agent,
            session,
            resource: "",
            tool: None,
            tags: &[],
        };
        let evicted = self.evict_to(config.shard_capacity(), &keep);
        self.removed.add(Removed { expired, evicted });
        Ok(changed || evicted > 0)
    }

    /// The entry, decoded for change and marked used at `now`; created when missing.
    fn decoded(
        &mut self,
        kind: Kind,
        agent: &str,
        key: &str,
        now: i64,
    ) -> Result<Option<&mut Entry<'a>>, StateError> {
        if !self.entries.iter().any(|e| e.is(kind, agent, key)) {
            self.entries.push(Entry {
                kind,
                agent: Cow::Owned(agent.to_owned()),
                key: Cow::Owned(key.to_owned()),
                last: now,
                payload: match kind {
                    Kind::Session => Payload::Session(Session::default()),
                    Kind::ResourceRate | Kind::AgentRate => Payload::Rate(Buckets::new()),
                },
            });
        }
        let at = self.entries.iter().position(|e| e.is(kind, agent, key));
        let Some(entry) = at.and_then(|at| self.entries.get(at)) else {
            return Ok(None);
        };
        if let Payload::Raw(raw) = entry.payload {
            let payload = match kind {
                Kind::Session => postcard::from_bytes(raw).map(Payload::Session),
                Kind::ResourceRate | Kind::AgentRate => {
                    postcard::from_bytes(raw).map(Payload::Rate)
                }
            }
            .map_err(|e| self.corrupt(entry, e))?;
            if let Some(entry) = at.and_then(|at| self.entries.get_mut(at)) {
                entry.payload = payload;
            }
        }
        let mut entry = at.and_then(|at| self.entries.get_mut(at));
        if let Some(entry) = entry.as_deref_mut() {
            entry.last = entry.last.max(now);
        }
        Ok(entry)
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
    pub fn shard(&self) -> Result<Shard<'_>, StateError> {
        Shard::decode_at(&self.key, &self.bytes).map_err(|e| shared::corrupt(&self.key, e))
    }
}

/// Reads the agent's shard.
pub fn load(shared: &dyn SharedData, config: &History, agent: &str) -> Result<Loaded, StateError> {
    let key = shard_key(config, agent);
    let (bytes, cas) = stored(key.clone()).load(shared)?.unwrap_or_default();
    Ok(Loaded { key, bytes, cas })
}

/// How often a request is decided again because another worker recorded a call
/// of the same agent in between, before toolgate gives up (and fails closed).
pub const MAX_CONFLICTS: u32 = 16;

/// What [`decide`] ended with.
#[derive(Debug)]
pub struct Settled<R> {
    /// What the last attempt decided.
    pub outcome: R,
    /// What recording removed, once written.
    pub removed: Removed,
    /// Attempts decided again after another worker's write.
    pub conflicts: u32,
}

/// Decides a request against its agent's shard and records it there: `attempt`
/// gets the shard as stored, records allowed calls into it, and says whether it
/// did. Then the shard is written back with one compare-and-swap; when another
/// worker wrote first, `attempt` runs again on what that worker wrote, at most
/// [`MAX_CONFLICTS`] times. A shard or entry that cannot be read, or a write that
/// keeps losing, is an error, and the caller refuses the request.
pub fn decide<R>(
    shared: &dyn SharedData,
    config: &History,
    agent: &str,
    mut attempt: impl FnMut(&mut Shard<'_>) -> (R, bool),
) -> Result<Settled<R>, StateError> {
    let entry = stored(shard_key(config, agent));
    let updated = shared::update(shared, &entry, MAX_CONFLICTS, |shard| {
        let (outcome, recorded) = attempt(shard);
        ((outcome, shard.removed()), recorded)
    })?;
    let (outcome, removed) = updated.outcome;
    Ok(Settled {
        outcome,
        removed: if updated.written {
            removed
        } else {
            Removed::default()
        },
        conflicts: updated.conflicts,
    })
}

/// Adds the tags an answer carried to the agent's session, with the same
/// compare-and-swap as [`decide`]: what a result fed the session is never lost to
/// a concurrent call on another worker.
pub fn add_tags(
    shared: &dyn SharedData,
    config: &History,
    agent: &str,
    session: &str,
    tags: &[String],
    now: i64,
) -> Result<Settled<()>, StateError> {
    let settled = decide(shared, config, agent, |shard| {
        match shard.tag(agent, session, tags, now, config) {
            Ok(changed) => (Ok(()), changed),
            Err(error) => (Err(error), false),
        }
    })?;
    let Settled {
        outcome,
        removed,
        conflicts,
    } = settled;
    outcome.map(|()| Settled {
        outcome: (),
        removed,
        conflicts,
    })
}

/// Creates the shards that don't exist yet. Run when the plugin is configured, so
/// that request-time writes always compare-and-swap against an existing value
/// (Envoy creates a missing key whatever the version given).
pub fn create_shards(shared: &dyn SharedData, config: &History) -> Result<usize, StateError> {
    let mut created = 0;
    for key in shard_keys(config) {
        let entry = stored(key);
        if entry.load(shared)?.is_none() {
            entry.write(shared, &Shard::default(), 0)?;
            created += 1;
        }
    }
    Ok(created)
}

/// Sweeps every shard of expired entries; a shard another worker is writing is
/// left for the next sweep. An unreadable shard is reset, and said so: it refused
/// its agents' calls until then.
pub fn sweep_all(
    shared: &dyn SharedData,
    config: &History,
    now: i64,
) -> Result<(Removed, Vec<String>), StateError> {
    let mut removed = Removed::default();
    let mut problems = Vec::new();
    for key in shard_keys(config) {
        let entry = stored(key);
        let Some((bytes, cas)) = entry.load(shared)? else {
            continue;
        };
        let (mut shard, unreadable) = match entry.decode(&bytes) {
            Ok(shard) => (shard, false),
            Err(error) => {
                problems.push(format!("{error}; reset to empty"));
                (Shard::default(), true)
            }
        };
        let expired = shard.sweep(now, idle(config));
        if (expired > 0 || unreadable) && entry.write(shared, &shard, cas)? {
            removed.expired += expired;
        }
    }
    Ok((removed, problems))
}
