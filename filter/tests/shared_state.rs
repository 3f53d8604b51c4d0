//! Toolgate's state in shared data (revocations, session history, the risk feed)
//! through one model with one failure policy: an entry that cannot be read or does
//! not decode refuses the request with `internal_error`, naming the key.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::cell::Cell;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use toolgate::callout::{Pending, Purpose};
use toolgate::config::History;
use toolgate::gate::{Input, Outcome, Verdict};
use toolgate::history;
use toolgate::http::{Header, HttpRequest};
use toolgate::identity::Peer;
use toolgate::reason::Reason;
use toolgate::record::{DecisionRecord, RiskRecord};
use toolgate::risk::{self, Poll};
use toolgate::shared::{self, Memory, SharedData, StateError, Stored, Text, Versioned};
use toolgate::Gate;

const READER: &str = "spiffe://toolgate.test/agent/reader";
const PAYMENTS: &str = "spiffe://toolgate.test/agent/payments";
const T0: u64 = 1_800_000_000;
const META_KEY: &str = "toolgate/risk/v1/meta";
const FEED_KEY: &str = "toolgate/risk/v1/feed";

mod kit;

/// A gate on the demo configuration (its agents, tools and policies) with `extra`.
fn gate_with(extra: Value) -> Gate {
    kit::gate_with(extra)
}

fn history_gate() -> Gate {
    gate_with(json!({ "history": { "idle_seconds": 600 } }))
}

/// What a decision came to, as the user sees it.
struct Decided {
    outcome: Outcome,
    record: DecisionRecord,
    conflicts: u64,
}

impl Decided {
    fn reason(&self) -> &str {
        self.record.reason.map_or("", Reason::code)
    }

    fn errors(&self) -> String {
        self.record.errors.join("\n")
    }

    /// Refused because toolgate's own state failed, with an error naming `key`.
    fn assert_fails_closed_on(&self, key: &str, why: &str) {
        assert_eq!(self.outcome, Outcome::Error, "{:?}", self.record);
        assert_eq!(self.reason(), "internal_error", "{:?}", self.record);
        let errors = self.errors();
        assert!(errors.contains(key), "the error names {key}: {errors}");
        assert!(errors.contains(why), "the error says {why:?}: {errors}");
    }
}

fn decided(verdict: Verdict) -> Decided {
    Decided {
        outcome: verdict.outcome,
        record: verdict.record,
        conflicts: verdict.effects.conflicts,
    }
}

/// `agent` calls `tool` in `session` at `seconds`, with these revocation entries found.
fn call_with(
    gate: &Gate,
    shared: &dyn SharedData,
    agent: &str,
    session: Option<&str>,
    (tool, arguments): (&str, Value),
    revocations: Vec<(String, Vec<u8>)>,
    seconds: u64,
) -> Decided {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": { "name": tool, "arguments": arguments } })
    .to_string();
    let mut headers: Vec<Header> = vec![
        (":method".into(), b"POST".to_vec()),
        (":path".into(), b"/mcp".to_vec()),
        ("content-type".into(), b"application/json".to_vec()),
    ];
    if let Some(session) = session {
        headers.push(("x-agent-session".into(), session.as_bytes().to_vec()));
    }
    let peer = Peer::with_uri_san(agent);
    let input = Input {
        shared: Some(shared),
        revocations,
        ..Input::new(
            HttpRequest {
                headers: &headers,
                body: body.as_bytes(),
            },
            &peer,
            seconds * 1_000_000_000,
        )
    };
    decided(gate.decide(&input, &|| 0))
}

fn call(
    gate: &Gate,
    shared: &dyn SharedData,
    agent: &str,
    session: Option<&str>,
    tool: (&str, Value),
    seconds: u64,
) -> Decided {
    call_with(gate, shared, agent, session, tool, Vec::new(), seconds)
}

fn secret() -> (&'static str, Value) {
    ("read_secret", json!({ "name": "db" }))
}

fn webhook() -> (&'static str, Value) {
    let arguments = json!({ "url": "https://example.com/hook", "body": "x" });
    ("post_webhook", arguments)
}

fn refund() -> (&'static str, Value) {
    ("refund", json!({ "amount": 10 }))
}

/// The shard format (history's `toolgate/history/v3`), mirrored to damage one
/// entry's payload. Reading real shards with it checks the mirror still matches.
#[derive(Serialize, Deserialize)]
enum Kind {
    Session,
    ResourceRate,
    AgentRate,
}

#[derive(Serialize, Deserialize)]
struct StoredEntry {
    kind: Kind,
    agent: String,
    key: String,
    last: i64,
    payload: Vec<u8>,
}

/// Replaces the payload of `agent`'s entries that `pick` picks with bytes that do
/// not decode, keeping their headers (so they are live and found); returns the key.
fn damage(shared: &Memory, agent: &str, pick: impl Fn(&StoredEntry) -> bool) -> String {
    let key = history::shard_key(&History::default(), agent);
    let (bytes, cas) = shared.get(&key).unwrap().expect("the shard exists");
    let mut entries: Vec<StoredEntry> = postcard::from_bytes(&bytes).expect("the mirror matches");
    let mut damaged = 0;
    for entry in entries.iter_mut().filter(|e| e.agent == agent && pick(e)) {
        // A list of 200 tools, and nothing after it.
        entry.payload = vec![200, 1];
        damaged += 1;
    }
    assert!(damaged > 0, "nothing to damage");
    let bytes = postcard::to_allocvec(&entries).unwrap();
    assert!(shared.set(&key, &bytes, cas).unwrap());
    key
}

#[test]
fn a_corrupt_session_refuses_instead_of_forgetting_the_secret_read() {
    let (gate, shared) = (history_gate(), Memory::new());
    let read = call(&gate, &shared, READER, Some("s-1"), secret(), T0);
    assert_eq!(read.outcome, Outcome::Allow);
    let key = damage(&shared, READER, |e| {
        matches!(e.kind, Kind::Session) && e.key == "s-1"
    });
    // Read as an empty session, this call would pass `no-egress-after-secret-read`.
    let egress = call(&gate, &shared, READER, Some("s-1"), webhook(), T0 + 1);
    egress.assert_fails_closed_on(&key, "the session \"s-1\"");
    assert!(
        egress.errors().contains("does not decode"),
        "{}",
        egress.errors()
    );
    // Only what depends on the entry fails: another session of the agent still
    // works, and recording it keeps the damaged entry as it was.
    let other = call(&gate, &shared, READER, Some("s-2"), webhook(), T0 + 2);
    assert_eq!(other.outcome, Outcome::Allow, "{:?}", other.record);
    let again = call(&gate, &shared, READER, Some("s-1"), webhook(), T0 + 3);
    again.assert_fails_closed_on(&key, "the session \"s-1\"");
}

#[test]
fn a_corrupt_rate_counter_refuses_instead_of_counting_from_zero() {
    let (gate, shared) = (history_gate(), Memory::new());
    for i in 0..5 {
        let allowed = call(&gate, &shared, PAYMENTS, None, refund(), T0 + i);
        assert_eq!(allowed.outcome, Outcome::Allow);
    }
    let key = damage(&shared, PAYMENTS, |e| matches!(e.kind, Kind::ResourceRate));
    // Counted from zero, the sixth refund would get past the limit of five a minute.
    let sixth = call(&gate, &shared, PAYMENTS, None, refund(), T0 + 5);
    sixth.assert_fails_closed_on(&key, "the call rate to tools/refund");
    // A counter whose last call left the window counts nothing, damaged or not.
    let later = call(&gate, &shared, PAYMENTS, None, refund(), T0 + 5 + 60);
    assert_eq!(later.outcome, Outcome::Allow, "{:?}", later.record);
}

#[test]
fn an_unreadable_shard_refuses_and_names_its_key() {
    let (gate, shared) = (history_gate(), Memory::new());
    let key = history::shard_key(&History::default(), READER);
    shared.set(&key, b"{broken", 0).unwrap();
    let refused = call(&gate, &shared, READER, Some("s-1"), secret(), T0);
    refused.assert_fails_closed_on(&key, "is corrupt");
}

/// Shared data whose reads (and writes) under `prefix` fail, as a host call can.
struct Failing<'a> {
    inner: &'a Memory,
    prefix: &'a str,
    reads: bool,
}

impl SharedData for Failing<'_> {
    fn get(&self, key: &str) -> Result<Option<Versioned>, String> {
        if self.reads && key.starts_with(self.prefix) {
            return Err("host said InternalFailure".into());
        }
        self.inner.get(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<bool, String> {
        if key.starts_with(self.prefix) {
            return Err("host said InternalFailure".into());
        }
        self.inner.set(key, value, cas)
    }
}

#[test]
fn history_that_cannot_be_read_or_written_refuses() {
    let (gate, memory) = (history_gate(), Memory::new());
    let key = history::shard_key(&History::default(), READER);
    let unreadable = Failing {
        inner: &memory,
        prefix: "toolgate/history/",
        reads: true,
    };
    let refused = call(&gate, &unreadable, READER, Some("s-1"), secret(), T0);
    refused.assert_fails_closed_on(&key, "host said InternalFailure");
    let unwritable = Failing {
        reads: false,
        ..unreadable
    };
    let refused = call(&gate, &unwritable, READER, Some("s-1"), secret(), T0);
    refused.assert_fails_closed_on(&key, "cannot be used");
}

/// Shared data where another worker always writes first.
struct Contended<'a> {
    inner: &'a Memory,
    lost: Cell<u32>,
}

impl SharedData for Contended<'_> {
    fn get(&self, key: &str) -> Result<Option<Versioned>, String> {
        self.inner.get(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<bool, String> {
        self.lost.set(self.lost.get() + 1);
        // The competitor rewrites the entry as it was: only its version moves on.
        let current = self.inner.get(key)?.map(|(bytes, _)| bytes);
        self.inner.set(key, &current.unwrap_or_default(), 0)?;
        self.inner.set(key, value, cas)
    }
}

#[test]
fn a_shard_that_stays_contended_refuses_after_the_last_retry() {
    let (gate, memory) = (history_gate(), Memory::new());
    // Created up front, as on configure: a write to a missing key is never compared.
    history::create_shards(&memory, &History::default()).unwrap();
    let shared = Contended {
        inner: &memory,
        lost: Cell::new(0),
    };
    let key = history::shard_key(&History::default(), READER);
    let refused = call(&gate, &shared, READER, Some("s-1"), secret(), T0);
    refused.assert_fails_closed_on(&key, "stayed contended");
    assert_eq!(shared.lost.get(), history::MAX_CONFLICTS + 1);
    assert_eq!(refused.conflicts, u64::from(history::MAX_CONFLICTS));
}

#[test]
fn a_corrupt_revocation_refuses_with_internal_error_naming_the_key() {
    let gate = gate_with(json!({ "revocation": {
        "controllers": ["spiffe://toolgate.test/controller"], "ttl_seconds": 60 } }));
    let shared = Memory::new();
    let key = "toolgate/revoked/task/T-7".to_owned();
    let read = |stored: &[u8]| {
        let found = vec![(key.clone(), stored.to_vec())];
        let tool = ("read_file", json!({ "path": "a" }));
        call_with(&gate, &shared, READER, None, tool, found, T0)
    };
    let expiry = |at: u64| at.to_string().into_bytes();
    assert_eq!(read(&expiry(T0 + 30)).reason(), "revoked");
    assert_eq!(read(&expiry(T0 - 1)).outcome, Outcome::Allow);
    for corrupt in [&b"garbage"[..], b"", b"\xff\xfe", b"12abc"] {
        read(corrupt).assert_fails_closed_on(&key, "is corrupt");
    }
}

fn risk_gate() -> Gate {
    gate_with(json!({ "risk_feed": { "max_age_seconds": 30 } }))
}

fn poll(shared: &Memory, status: Option<u32>, body: &str, seconds: u64) -> Result<(), String> {
    let poll = Poll {
        status,
        body: body.as_bytes(),
    };
    risk::record_poll(shared, &poll, seconds * 1_000_000_000)
}

fn read_file() -> (&'static str, Value) {
    ("read_file", json!({ "path": "a" }))
}

#[test]
fn corrupt_risk_state_refuses_and_a_good_poll_repairs_it() {
    let (gate, shared) = (risk_gate(), Memory::new());
    let flagged = json!({ "agents": { PAYMENTS: { "score": 10, "flags": ["compromised"] } } });
    poll(&shared, Some(200), &flagged.to_string(), T0).unwrap();
    let denied = call(&gate, &shared, PAYMENTS, None, read_file(), T0 + 1);
    assert_eq!(denied.reason(), "forbidden_by_policy");

    // Corrupt meta: every worker refuses instead of deciding without the flags.
    shared.set(META_KEY, b"{not json", 0).unwrap();
    let refused = call(&gate, &shared, PAYMENTS, None, read_file(), T0 + 2);
    refused.assert_fails_closed_on(META_KEY, "is corrupt");
    // A failed poll cannot update it: it leaves it (refusing) and says so, rather
    // than marking the feed never fetched, which would forget the compromised flag.
    let error = poll(&shared, Some(503), "", T0 + 3).unwrap_err();
    assert!(error.contains("503") && error.contains(META_KEY), "{error}");
    assert_eq!(shared.get(META_KEY).unwrap().unwrap().0, b"{not json");
    // A good poll replaces it.
    poll(&shared, Some(200), &flagged.to_string(), T0 + 4).unwrap();
    let denied = call(&gate, &shared, PAYMENTS, None, read_file(), T0 + 5);
    assert_eq!(denied.reason(), "forbidden_by_policy");

    // A corrupt or emptied feed (while meta says one was fetched) refuses too, on
    // a worker that has not parsed it yet.
    for feed in [&b"{\"agents\": []}"[..], b""] {
        let fresh = risk_gate();
        shared.set(FEED_KEY, feed, 0).unwrap();
        let refused = call(&fresh, &shared, PAYMENTS, None, read_file(), T0 + 6);
        refused.assert_fails_closed_on(FEED_KEY, "is corrupt");
    }
}

#[test]
fn a_stored_feed_reads_back_as_it_was_polled() {
    let (gate, shared) = (risk_gate(), Memory::new());
    let feed = json!({ "agents": {
        PAYMENTS: { "score": 42, "flags": ["degraded", "new"] },
        READER: {} } });
    poll(&shared, Some(200), &feed.to_string(), T0).unwrap();
    let stored = shared.get(FEED_KEY).unwrap().unwrap().0;
    let parsed = risk::parse_feed(&stored).unwrap();
    assert_eq!(
        parsed,
        risk::parse_feed(feed.to_string().as_bytes()).unwrap()
    );
    let seen = call(&gate, &shared, PAYMENTS, None, read_file(), T0 + 1);
    assert_eq!(
        seen.record.risk,
        Some(RiskRecord {
            score: 42,
            flags: vec!["degraded".into(), "new".into()],
            stale: false,
            age_seconds: Some(1)
        })
    );
}

#[test]
fn the_model_reads_writes_and_updates_with_one_failure_policy() {
    let shared = Memory::new();
    let counter = Stored::<Text<u64>>::new("test/counter");
    assert_eq!(counter.read(&shared).unwrap(), None);
    assert!(counter.write(&shared, &41, 0).unwrap());
    let (value, cas) = counter.read(&shared).unwrap().unwrap();
    assert_eq!(value, 41);
    // A write at an old version loses.
    assert!(counter.write(&shared, &42, cas).unwrap());
    assert!(!counter.write(&shared, &43, cas).unwrap());

    let updated = shared::update(&shared, &counter, 3, |n| {
        *n += 1;
        (*n, true)
    })
    .unwrap();
    assert_eq!(
        (updated.outcome, updated.written, updated.conflicts),
        (43, true, 0)
    );
    let unchanged = shared::update(&shared, &counter, 3, |n| (*n, false)).unwrap();
    assert!(!unchanged.written);

    // Another worker writes first, once: decided again on what it wrote.
    let contended = Contended {
        inner: &shared,
        lost: Cell::new(0),
    };
    let err = shared::update(&contended, &counter, 3, |n| {
        *n += 1;
        (*n, true)
    })
    .unwrap_err();
    assert_eq!(
        err,
        StateError::Contended {
            key: "test/counter".into(),
            attempts: 4
        }
    );
    assert_eq!(err.conflicts(), 3);

    shared.set("test/counter", b"forty-four", 0).unwrap();
    let corrupt = counter.read(&shared).unwrap_err();
    assert!(matches!(corrupt, StateError::Corrupt { .. }), "{corrupt:?}");
    assert_eq!(corrupt.key(), "test/counter");
    assert!(
        corrupt.to_string().contains("\"forty-four\""),
        "the error shows what was found: {corrupt}"
    );
    let never = shared::update(&shared, &counter, 3, |_| -> ((), bool) {
        panic!("decided on a corrupt value")
    });
    assert_eq!(never.unwrap_err(), corrupt);
}

#[test]
fn a_corrupt_claim_is_taken_over_so_polls_and_sweeps_go_on() {
    let shared = Memory::new();
    let second = 1_000_000_000;
    shared.set("job", b"garbage", 0).unwrap();
    assert!(shared::claim(&shared, "job", 10 * second, 5 * second).unwrap());
    assert!(!shared::claim(&shared, "job", 12 * second, 5 * second).unwrap());
}

#[test]
fn a_callout_answer_is_routed_by_its_token_and_unknown_tokens_are_ignored() {
    let mut pending = Pending::default();
    assert_eq!(pending.answered(7), None, "nothing was dispatched");
    assert_eq!(pending.dispatched(7, Purpose::RiskFeed), None);
    assert_eq!(pending.dispatched(9, Purpose::RiskFeed), None);
    assert_eq!(
        pending.answered(8),
        None,
        "a token this VM never dispatched"
    );
    assert_eq!(pending.answered(9), Some(Purpose::RiskFeed));
    assert_eq!(pending.answered(9), None, "each callout is answered once");
    assert_eq!(pending.answered(7), Some(Purpose::RiskFeed));
    assert!(pending.is_empty());
    // Bounded: callouts a host never answers are forgotten, oldest first.
    let dropped: Vec<_> = (0..20)
        .filter_map(|token| pending.dispatched(token, Purpose::RiskFeed))
        .collect();
    assert_eq!(dropped.len(), 4);
    assert_eq!(pending.len(), 16);
    assert_eq!(pending.answered(0), None, "the oldest was forgotten");
    assert_eq!(pending.answered(19), Some(Purpose::RiskFeed));
}
