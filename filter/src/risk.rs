//! The live risk feed: workload risk scores and flags, polled on a timer and cached in shared data.
//!
//! One worker polls per interval (a claim in shared data decides which) and stores
//! the feed; every worker reads it from there. A request reads only the small
//! `meta` entry; the feed itself is parsed again only when a newer one was stored.

use std::cell::RefCell;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::RiskFeed;
use crate::shared::{Codec, Json, SharedData, StateError, Stored};

pub const META_KEY: &str = "toolgate/risk/v1/meta";
pub const FEED_KEY: &str = "toolgate/risk/v1/feed";
/// Who polls next: the worker whose claim on this key succeeds.
pub const POLL_CLAIM_KEY: &str = "toolgate/risk/v1/claim";

fn meta_entry() -> Stored<Json<Meta>> {
    Stored::new(META_KEY)
}

fn feed_entry() -> Stored<FeedCodec> {
    Stored::new(FEED_KEY)
}

/// The feed is stored as the feed's own JSON, checked by [`parse_feed`] both ways.
struct FeedCodec;

impl Codec for FeedCodec {
    type Value<'a> = Feed;

    fn decode<'a>(_key: &'a str, bytes: &'a [u8]) -> Result<Feed, String> {
        parse_feed(bytes)
    }

    fn encode(feed: &Feed) -> Result<Vec<u8>, String> {
        let agents: serde_json::Map<String, Value> = feed
            .agents
            .iter()
            .map(|(agent, signal)| {
                let signal = serde_json::json!({ "score": signal.score, "flags": signal.flags });
                (agent.clone(), signal)
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({ "agents": agents })).map_err(|e| e.to_string())
    }
}

/// Largest feed toolgate accepts.
const MAX_FEED_BYTES: usize = 4 * 1024 * 1024;

/// What the last poll left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Meta {
    /// When the stored feed was fetched (Unix nanoseconds); none yet when absent.
    fetched_at_ns: Option<u64>,
    /// The last poll failed; the stored feed is the last good one.
    failing: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// One workload's signal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signal {
    pub score: i64,
    pub flags: Vec<String>,
}

/// The feed, by workload identity (SPIFFE ID).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Feed {
    pub agents: HashMap<String, Signal>,
}

/// Reads a feed: `{"agents": {"<spiffe id>": {"score": 0..100, "flags": ["..."]}}}`.
pub fn parse_feed(body: &[u8]) -> Result<Feed, String> {
    if body.len() > MAX_FEED_BYTES {
        return Err(format!("the feed is larger than {MAX_FEED_BYTES} bytes"));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let agents = value
        .get("agents")
        .and_then(Value::as_object)
        .ok_or("expected {\"agents\": {\"<spiffe id>\": {\"score\": n, \"flags\": [...]}}}")?;
    let mut feed = Feed::default();
    for (agent, entry) in agents {
        let entry = entry
            .as_object()
            .ok_or_else(|| format!("agents.{agent}: expected an object"))?;
        let score = match entry.get("score") {
            None => 0,
            Some(score) => score
                .as_i64()
                .filter(|s| (0..=100).contains(s))
                .ok_or_else(|| format!("agents.{agent}.score: expected an integer 0..100"))?,
        };
        let flags = match entry.get("flags") {
            None => Vec::new(),
            Some(Value::Array(flags)) => flags
                .iter()
                .map(|f| f.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("agents.{agent}.flags: expected strings"))?,
            Some(_) => return Err(format!("agents.{agent}.flags: expected a list")),
        };
        feed.agents.insert(agent.clone(), Signal { score, flags });
    }
    Ok(feed)
}

/// A poll's result as the glue received it.
pub struct Poll<'a> {
    /// The `:status`, or none when the call failed (timeout, reset, no upstream).
    pub status: Option<u32>,
    pub body: &'a [u8],
}

/// What to do after a poll: the shared-data writes (key, value), and the error if it failed.
pub struct Polled {
    pub writes: Vec<(&'static str, Vec<u8>)>,
    pub error: Option<String>,
}

/// Turns a poll into writes: a good feed replaces the stored one; a failed poll
/// keeps it and marks it failing, which makes it stale. When the state a failed
/// poll would update cannot be read, nothing is written: requests keep failing
/// closed on it until a poll succeeds, instead of forgetting the last good feed.
pub fn polled(shared: &dyn SharedData, poll: &Poll<'_>, now_ns: u64) -> Polled {
    let checked = match poll.status {
        Some(200) => parse_feed(poll.body),
        Some(status) => Err(format!("the feed answered HTTP {status}")),
        None => Err("the feed did not answer (unreachable or timed out)".to_owned()),
    };
    let (writes, error) = match checked {
        Ok(feed) => {
            let meta = Meta {
                fetched_at_ns: Some(now_ns),
                failing: false,
                error: None,
            };
            // The feed first: a reader that sees the new meta finds the new feed.
            let writes = encoded(FEED_KEY, FeedCodec::encode(&feed))
                .and_then(|feed| Ok(vec![feed, encoded(META_KEY, Json::encode(&meta))?]));
            match writes {
                Ok(writes) => (writes, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            }
        }
        Err(error) => {
            let meta = read_meta(shared).and_then(|previous| {
                let meta = Meta {
                    fetched_at_ns: previous.fetched_at_ns,
                    failing: true,
                    error: Some(error.clone()),
                };
                encoded(META_KEY, Json::encode(&meta))
            });
            match meta {
                Ok(meta) => (vec![meta], Some(error)),
                Err(e) => (Vec::new(), Some(format!("{error}; and {e}"))),
            }
        }
    };
    Polled { writes, error }
}

/// Stores a poll's result for every worker: [`polled`], then its writes. The
/// error says why the poll failed, or why its result could not be stored.
pub fn record_poll(shared: &dyn SharedData, poll: &Poll<'_>, now_ns: u64) -> Result<(), String> {
    let polled = polled(shared, poll, now_ns);
    for (key, value) in &polled.writes {
        shared
            .set(key, value, 0)
            .map_err(|e| format!("cannot store the risk feed ({key}): {e}"))?;
    }
    polled.error.map_or(Ok(()), Err)
}

/// A value encoded for `key`, or the error that names it.
fn encoded(
    key: &'static str,
    bytes: Result<Vec<u8>, String>,
) -> Result<(&'static str, Vec<u8>), StateError> {
    bytes
        .map(|bytes| (key, bytes))
        .map_err(|error| StateError::Unavailable {
            key: key.to_owned(),
            error: format!("cannot encode: {error}"),
        })
}

/// The last poll's state; none yet is the default.
fn read_meta(shared: &dyn SharedData) -> Result<Meta, StateError> {
    Ok(meta_entry()
        .read(shared)?
        .map(|(meta, _)| meta)
        .unwrap_or_default())
}

/// The principal's risk as the policies see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub signal: Signal,
    /// Never fetched, the last poll failed, or older than `max_age_seconds`.
    pub stale: bool,
    /// Seconds since the feed was fetched; none when it never was.
    pub age_seconds: Option<i64>,
}

/// The parsed feed of this VM, kept until a newer one is stored.
#[derive(Default)]
pub struct Cache {
    parsed: RefCell<Option<(u64, Feed)>>,
}

impl Cache {
    /// The agent's risk now; `agent` is none for an unauthenticated caller.
    pub fn view(
        &self,
        shared: &dyn SharedData,
        config: &RiskFeed,
        agent: Option<&str>,
        now_ns: u64,
    ) -> Result<View, String> {
        let meta = read_meta(shared)?;
        let Some(fetched_at) = meta.fetched_at_ns else {
            return Ok(View {
                stale: true,
                ..View::default()
            });
        };
        let age_seconds =
            i64::try_from(now_ns.saturating_sub(fetched_at) / 1_000_000_000).unwrap_or(i64::MAX);
        let max_age = i64::try_from(config.max_age_seconds).unwrap_or(i64::MAX);
        let signal = self.signal(shared, fetched_at, agent)?;
        Ok(View {
            signal,
            stale: meta.failing || age_seconds > max_age,
            age_seconds: Some(age_seconds),
        })
    }

    fn signal(
        &self,
        shared: &dyn SharedData,
        fetched_at: u64,
        agent: Option<&str>,
    ) -> Result<Signal, StateError> {
        let mut parsed = self.parsed.borrow_mut();
        if parsed.as_ref().is_none_or(|(at, _)| *at != fetched_at) {
            let entry = feed_entry();
            let (feed, _) = entry.read(shared)?.ok_or_else(|| {
                entry.corrupt(format!("missing, though {META_KEY} says it was fetched"))
            })?;
            *parsed = Some((fetched_at, feed));
        }
        Ok(parsed
            .as_ref()
            .and_then(|(_, feed)| agent.and_then(|a| feed.agents.get(a)))
            .cloned()
            .unwrap_or_default())
    }
}
