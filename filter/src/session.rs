//! MCP sessions bound to the agent that opened them: who may present an `Mcp-Session-Id`.
//!
//! When the upstream's answer to a forwarded MCP request that presented no session
//! mints one (the `initialize` answer), the id is bound to the request's principal in
//! Envoy's shared data: per Envoy process, seen by every worker VM, not shared between
//! Envoy processes. A request presenting a bound id goes on only for its owner; an
//! id toolgate does not know (never seen, idle too long, evicted) goes on, and the
//! upstream answers for it (404 for a session it does not know). Bindings live in a
//! fixed set of shards, so the state never grows past `max_entries` (shared data has
//! no delete); a shard that does not decode refuses its sessions (fails closed).

use serde::{Deserialize, Serialize};

use crate::cedar_value::{CedarValue, Pair};
use crate::config::{Config, Sessions};
use crate::enforce::{self, Action};
use crate::http::HttpRequest;
use crate::protocol::Protocol;
use crate::reason::Reason;
use crate::record::{Binding, Decision, DecisionRecord, McpSessionRecord};
use crate::refusal::Refusal;
use crate::shared::{self, Json, SharedData, StateError, Stored};

/// The request and response header that carries the session id.
pub const HEADER: &str = "mcp-session-id";

/// Longest session id accepted: far above any server's (a UUID is 36), and it bounds a shard.
pub const MAX_ID_BYTES: usize = 256;

/// Bumped whenever the shard format changes, so an old value is never misread.
const KEY_PREFIX: &str = "toolgate/sessions/v1";

/// Times a write lost to another worker is decided again before failing.
const MAX_CONFLICTS: u32 = 8;

/// One binding as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bound {
    pub id: String,
    /// The principal (SPIFFE ID) that opened the session.
    pub owner: String,
    /// Unix second of its owner's last request, or of its opening.
    pub last: i64,
}

/// One shard: the bindings of the session ids hashed to it, as JSON.
pub type ShardCodec = Json<Vec<Bound>>;

/// A table of bindings: MCP sessions ([`Table::sessions`]) or A2A tasks (`a2a_tasks`), each
/// under its own shared-data key prefix, so an id of one is never read as the other.
#[derive(Debug, Clone, Copy)]
pub struct Table<'a> {
    pub prefix: &'static str,
    pub config: &'a Sessions,
}

impl<'a> Table<'a> {
    /// The MCP sessions table.
    pub fn sessions(config: &'a Sessions) -> Self {
        Self {
            prefix: KEY_PREFIX,
            config,
        }
    }
}

/// The shared-data key of the shard holding this session id's binding.
pub fn shard_key(config: &Sessions, id: &str) -> String {
    Table::sessions(config).shard_key(id)
}

impl Table<'_> {
    /// The shared-data key of the shard holding this id's binding.
    pub fn shard_key(&self, id: &str) -> String {
        // FNV-1a: the same id lands in the same shard on every worker and restart.
        let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        self.shard_key_at(hash % self.config.shards.max(1) as u64)
    }

    /// Every shard key; the shard count is part of the key, so a reconfigured count starts afresh.
    pub fn shard_keys(&self) -> impl Iterator<Item = String> + '_ {
        (0..self.config.shards.max(1) as u64).map(|n| self.shard_key_at(n))
    }

    fn shard_key_at(&self, n: u64) -> String {
        format!("{}/{}/{n}", self.prefix, self.config.shards)
    }
}

/// Every shard key of the MCP sessions table.
pub fn shard_keys(config: &Sessions) -> impl Iterator<Item = String> + '_ {
    (0..config.shards.max(1) as u64).map(move |n| Table::sessions(config).shard_key_at(n))
}

/// Creates the missing shards. Envoy creates a missing key whatever the version
/// asked for, so two workers binding into one missing shard could both "win":
/// shards exist before any binding is written.
pub fn create_shards(shared: &dyn SharedData, config: &Sessions) -> Result<usize, StateError> {
    create_shards_in(shared, Table::sessions(config))
}

/// [`create_shards`] for any table.
pub fn create_shards_in(shared: &dyn SharedData, table: Table<'_>) -> Result<usize, StateError> {
    let mut created = 0;
    for key in table.shard_keys() {
        let entry = Stored::<ShardCodec>::new(key);
        if entry.load(shared)?.is_none() {
            entry.write(shared, &Vec::new(), 0)?;
            created += 1;
        }
    }
    Ok(created)
}

/// A session id as the MCP spec allows it: visible ASCII (0x21 to 0x7E), here at most
/// [`MAX_ID_BYTES`]; anything else could be read differently by the upstream.
pub fn valid(value: &[u8]) -> Option<&str> {
    let ok = (1..=MAX_ID_BYTES).contains(&value.len())
        && value.iter().all(|b| (0x21..=0x7e).contains(b));
    ok.then(|| std::str::from_utf8(value).ok()).flatten()
}

/// The session id a request presents, if any. Two headers, or a value that is not a
/// valid id, are refused: the upstream might read another one than toolgate checked.
pub fn presented<'a>(request: &HttpRequest<'a>) -> Result<Option<&'a str>, Refusal> {
    let mut values = request.headers.iter().filter(|(name, _)| name == HEADER);
    let Some((_, value)) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Refusal::because(
            Reason::InvalidHeader,
            format!("more than one {HEADER} header"),
        ));
    }
    valid(value).map(Some).ok_or_else(|| {
        Refusal::because(
            Reason::InvalidHeader,
            format!("{HEADER} must be 1 to {MAX_ID_BYTES} visible ASCII characters (0x21-0x7E)"),
        )
    })
}

/// A presented session id and where it stands with the request's principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented<'a> {
    pub id: &'a str,
    pub binding: Binding,
    /// For [`Binding::Owner`] and [`Binding::Other`]: the binding as read.
    pub bound: Option<Bound>,
}

impl Presented<'_> {
    /// For the record.
    pub fn record(&self) -> McpSessionRecord {
        McpSessionRecord {
            id: self.id.to_owned(),
            binding: self.binding,
        }
    }

    /// `context.mcp_session_id`.
    pub fn context(&self) -> Pair {
        let id = CedarValue::string(self.id);
        ("mcp_session_id".into(), id)
    }

    /// The request stage's verdict: a session bound to another principal is refused.
    pub fn admit(&self) -> Result<(), Refusal> {
        match (&self.binding, &self.bound) {
            (Binding::Other, Some(bound)) => Err(Refusal::because(
                Reason::SessionNotOwned,
                format!("MCP session {:?} is bound to {}", self.id, bound.owner),
            )),
            _ => Ok(()),
        }
    }

    /// After an allowed request of the owner: pushes the binding's idle expiry to
    /// `now`, but only once a tenth of the idle time has passed since the last push,
    /// so that a busy session does not write shared data on every request.
    pub fn refresh(
        &self,
        shared: &dyn SharedData,
        config: &Sessions,
        now: i64,
    ) -> Result<(), StateError> {
        let tenth = i64::try_from(config.idle_seconds / 10).unwrap_or(i64::MAX);
        match (&self.binding, &self.bound) {
            (Binding::Owner, Some(bound)) if now.saturating_sub(bound.last) > tenth => {
                refresh(shared, config, self.id, &bound.owner, now)
            }
            _ => Ok(()),
        }
    }
}

fn live(config: &Sessions, bound: &Bound, now: i64) -> bool {
    let idle = i64::try_from(config.idle_seconds).unwrap_or(i64::MAX);
    now.saturating_sub(bound.last) <= idle
}

/// Where the session `id` stands with `principal` (`None`: no verified identity,
/// which owns nothing). One shared-data read.
pub fn check<'a>(
    shared: &dyn SharedData,
    config: &Sessions,
    id: &'a str,
    principal: Option<&str>,
    now: i64,
) -> Result<Presented<'a>, StateError> {
    let bound = lookup(shared, Table::sessions(config), id, now)?;
    let binding = match &bound {
        None => Binding::Unknown,
        Some(b) if Some(b.owner.as_str()) == principal => Binding::Owner,
        Some(_) => Binding::Other,
    };
    Ok(Presented { id, binding, bound })
}

/// The live binding of `id` in `table`, if any. One shared-data read.
pub fn lookup(
    shared: &dyn SharedData,
    table: Table<'_>,
    id: &str,
    now: i64,
) -> Result<Option<Bound>, StateError> {
    let entry = Stored::<ShardCodec>::new(table.shard_key(id));
    let shard = entry
        .read(shared)?
        .map(|(shard, _)| shard)
        .unwrap_or_default();
    Ok(shard
        .into_iter()
        .find(|b| b.id == id && live(table.config, b, now)))
}

/// What [`bind`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    /// Bound (or already bound) to the owner; `evicted` live bindings made room.
    Bound { evicted: u64 },
    /// Already bound to another principal, which keeps it.
    Taken,
}

/// Binds `id` to `owner`, dropping idle bindings of its shard, then the least
/// recently used when the shard is full.
pub fn bind(
    shared: &dyn SharedData,
    config: &Sessions,
    id: &str,
    owner: &str,
    now: i64,
) -> Result<Bind, StateError> {
    bind_in(shared, Table::sessions(config), id, owner, now)
}

/// [`bind`] in any table.
pub fn bind_in(
    shared: &dyn SharedData,
    table: Table<'_>,
    id: &str,
    owner: &str,
    now: i64,
) -> Result<Bind, StateError> {
    let config = table.config;
    let entry = Stored::<ShardCodec>::new(table.shard_key(id));
    let capacity = config.shard_capacity().max(1);
    let updated = shared::update(shared, &entry, MAX_CONFLICTS, |shard| {
        shard.retain(|b| live(config, b, now));
        if let Some(bound) = shard.iter_mut().find(|b| b.id == id) {
            if bound.owner != owner {
                return (Bind::Taken, false);
            }
            bound.last = now;
            return (Bind::Bound { evicted: 0 }, true);
        }
        let mut evicted = 0;
        while shard.len() >= capacity {
            let oldest = (shard.iter().enumerate())
                .min_by_key(|(_, b)| b.last)
                .map(|(n, _)| n);
            if let Some(n) = oldest {
                shard.remove(n);
            }
            evicted += 1;
        }
        shard.push(Bound {
            id: id.to_owned(),
            owner: owner.to_owned(),
            last: now,
        });
        (Bind::Bound { evicted }, true)
    })?;
    Ok(updated.outcome)
}

/// Pushes the owner's binding's idle expiry to `now` (see [`Presented::refresh`]).
pub fn refresh(
    shared: &dyn SharedData,
    config: &Sessions,
    id: &str,
    owner: &str,
    now: i64,
) -> Result<(), StateError> {
    let entry = Stored::<ShardCodec>::new(shard_key(config, id));
    shared::update(shared, &entry, MAX_CONFLICTS, |shard| {
        match shard.iter_mut().find(|b| b.id == id && b.owner == owner) {
            Some(bound) => {
                bound.last = now;
                ((), true)
            }
            None => ((), false),
        }
    })?;
    Ok(())
}

/// Forgets the owner's binding of `id`; true when there was one.
pub fn end(
    shared: &dyn SharedData,
    config: &Sessions,
    id: &str,
    owner: &str,
) -> Result<bool, StateError> {
    let entry = Stored::<ShardCodec>::new(shard_key(config, id));
    let updated = shared::update(shared, &entry, MAX_CONFLICTS, |shard| {
        let before = shard.len();
        shard.retain(|b| !(b.id == id && b.owner == owner));
        let removed = shard.len() < before;
        (removed, removed)
    })?;
    Ok(updated.outcome)
}

/// The upstream's answer to a forwarded request, as far as sessions need it.
pub struct Answer<'a> {
    pub status: u32,
    /// The answer's `mcp-session-id`, if any.
    pub session_id: Option<&'a [u8]>,
}

/// What the answer changed, for the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Answered {
    /// The binding the answer made or ended, if any.
    pub binding: Option<Binding>,
    /// Live bindings evicted to make room.
    pub evicted: u64,
}

/// After the answer to a forwarded request: notes its status in the record, binds
/// a session the answer minted to the request's principal (only when the request
/// presented none: an unknown id an agent presents never becomes its own), and
/// forgets a session whose owner's DELETE the upstream accepted.
///
/// An error means a minted session could not be bound: the answer, which carries
/// the id, must not reach the client ([`refuse_answer`]).
pub fn answered(
    config: &Config,
    record: &mut DecisionRecord,
    answer: &Answer<'_>,
    shared: &dyn SharedData,
    now: i64,
) -> Result<Answered, StateError> {
    record.upstream_status = Some(answer.status);
    let (Some(sessions), true) = (&config.sessions, (200..300).contains(&answer.status)) else {
        return Ok(Answered::default());
    };
    let path = record.path.as_deref().unwrap_or_default();
    let owner = record.principal.clone().filter(|_| record.authenticated);
    let (Protocol::Mcp, Some(owner)) = (Protocol::for_path(config, path), owner) else {
        return Ok(Answered::default());
    };
    let ending = record.http_method.as_deref() == Some("DELETE");
    match (&record.mcp_session, answer.session_id) {
        (Some(s), _) if s.binding == Binding::Owner && ending => {
            Ok(ended(shared, sessions, record, &owner))
        }
        (None, Some(minted)) => opened(shared, sessions, record, minted, &owner, now),
        _ => Ok(Answered::default()),
    }
}

/// The owner's DELETE was accepted: the binding goes. A failure to forget it only
/// leaves a binding to expire, so it is noted, not refused.
fn ended(
    shared: &dyn SharedData,
    config: &Sessions,
    record: &mut DecisionRecord,
    owner: &str,
) -> Answered {
    let Some(session) = &mut record.mcp_session else {
        return Answered::default();
    };
    match end(shared, config, &session.id, owner) {
        Ok(_) => {
            session.binding = Binding::Ended;
            Answered {
                binding: Some(Binding::Ended),
                evicted: 0,
            }
        }
        Err(error) => {
            record.errors.push(error.to_string());
            Answered::default()
        }
    }
}

/// The answer minted a session: bound to `owner` before the client learns it.
fn opened(
    shared: &dyn SharedData,
    config: &Sessions,
    record: &mut DecisionRecord,
    minted: &[u8],
    owner: &str,
    now: i64,
) -> Result<Answered, StateError> {
    let Some(id) = valid(minted) else {
        // Every request presenting it will be refused as invalid_header.
        record.errors.push(format!(
            "the upstream minted an {HEADER} that is not 1 to {MAX_ID_BYTES} visible ASCII characters"
        ));
        return Ok(Answered::default());
    };
    let (binding, evicted) = match bind(shared, config, id, owner, now)? {
        Bind::Bound { evicted } => (Binding::Opened, evicted),
        Bind::Taken => {
            let error = format!("the upstream minted {id:?}, already bound to another agent");
            record.errors.push(error);
            (Binding::Other, 0)
        }
    };
    record.mcp_session = Some(McpSessionRecord {
        id: id.to_owned(),
        binding,
    });
    Ok(Answered {
        binding: Some(binding).filter(|b| *b == Binding::Opened),
        evicted,
    })
}

/// The refusal sent instead of an answer whose minted session could not be bound
/// (fails closed), and the record saying so.
pub fn refuse_answer(record: &mut DecisionRecord, error: &str) -> Action {
    let reason = Reason::Internal;
    record.decision = Decision::Deny;
    record.reason = Some(reason);
    record.errors.push(error.to_owned());
    let shape = match &record.rpc_id {
        Some(id) => enforce::Refusal::JsonRpc {
            ids: vec![id],
            batch: false,
            status: reason.http_status(),
        },
        None => enforce::Refusal::Problem {
            instance: record.path.as_deref().unwrap_or_default(),
        },
    };
    enforce::refuse(
        reason,
        &record.decision_id,
        &[],
        shape,
        enforce::Hints::default(),
    )
}
