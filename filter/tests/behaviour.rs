//! Behaviour-aware decisions through `Gate::decide`: session history, rates and risk,
//! over an in-memory stand-in for Envoy's shared data (natively and in wasm).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

mod kit;

use std::cell::Cell;

use kit::{gate_with, Decided, Request, PAYMENTS, READER, WRITER};
use serde_json::{json, Value};
use toolgate::config::History;
use toolgate::gate::Outcome;
use toolgate::history::{self, Recorded, Shard};
use toolgate::record::RiskRecord;
use toolgate::risk::{self, Poll};
use toolgate::shared::{Memory, SharedData, Versioned};
use toolgate::Gate;

const T0: u64 = 1_800_000_000;

/// The Cedar context the deciding call was evaluated with (`null` when Cedar did not run).
fn context(d: &Decided) -> &Value {
    d.typed.cedar.as_ref().map_or(&Value::Null, |c| &c.context)
}

fn history_gate() -> Gate {
    gate_with(json!({ "history": { "idle_seconds": 600 } }))
}

/// Calls `tool` as `agent` in `session` (none: no header) at `seconds` Unix time.
fn call(
    gate: &Gate,
    shared: &dyn SharedData,
    agent: &str,
    session: Option<&str>,
    tool: &str,
    arguments: Value,
    seconds: u64,
) -> Decided {
    let mut request = Request::tool(tool, arguments, agent).at(seconds);
    if let Some(session) = session {
        request = request.header("x-agent-session", session);
    }
    request.decide_with(gate, |input| input.shared = Some(shared))
}

fn secret(gate: &Gate, shared: &dyn SharedData, session: &str, at: u64) -> Decided {
    call(
        gate,
        shared,
        READER,
        Some(session),
        "read_secret",
        json!({ "name": "db" }),
        at,
    )
}

fn webhook(gate: &Gate, shared: &dyn SharedData, agent: &str, session: &str, at: u64) -> Decided {
    let arguments = json!({ "url": "https://example.com/hook", "body": "x" });
    call(
        gate,
        shared,
        agent,
        Some(session),
        "post_webhook",
        arguments,
        at,
    )
}

fn refund(gate: &Gate, shared: &dyn SharedData, at: u64) -> Decided {
    call(
        gate,
        shared,
        PAYMENTS,
        None,
        "refund",
        json!({ "amount": 10 }),
        at,
    )
}

#[test]
fn nothing_goes_out_of_a_session_that_read_a_secret() {
    let (gate, shared) = (history_gate(), Memory::new());
    assert_eq!(
        webhook(&gate, &shared, READER, "s-1", T0).outcome,
        Outcome::Allow
    );
    assert_eq!(
        secret(&gate, &shared, "s-1", T0 + 1).outcome,
        Outcome::Allow
    );
    let denied = webhook(&gate, &shared, READER, "s-1", T0 + 2);
    assert_eq!(denied.outcome, Outcome::Deny);
    assert_eq!(denied.reason(), "forbidden_by_policy");
    assert_eq!(denied.policies(), ["no-egress-after-secret-read"]);
    // The policy saw the session as it was before this call.
    let session = &context(&denied)["session"];
    assert_eq!(session["id"], "s-1");
    assert_eq!(session["calls"], 2);
    let mut tags: Vec<&str> = session["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    tags.sort_unstable();
    assert_eq!(tags, ["egress", "secret"]);
    assert_eq!(session["first_call"], T0);
    assert_eq!(session["last_call"], T0 + 1);
    // Sessions are per agent and per session id.
    assert_eq!(
        webhook(&gate, &shared, READER, "s-2", T0 + 3).outcome,
        Outcome::Allow
    );
    assert_eq!(
        webhook(&gate, &shared, WRITER, "s-1", T0 + 4).outcome,
        Outcome::Allow
    );
}

#[test]
fn a_denied_call_leaves_no_trace() {
    let (gate, shared) = (history_gate(), Memory::new());
    secret(&gate, &shared, "s-1", T0);
    let key = history::shard_key(&History::default(), READER);
    let before = shared.get(&key).unwrap().unwrap();
    assert_eq!(
        webhook(&gate, &shared, READER, "s-1", T0 + 1).outcome,
        Outcome::Deny
    );
    assert_eq!(
        shared.get(&key).unwrap().unwrap(),
        before,
        "the denied call was recorded"
    );
    let shard = Shard::decode(&before.0).unwrap();
    assert_eq!(
        shard
            .session(READER, "s-1", T0 as i64 + 1, 600)
            .unwrap()
            .map(|s| s.calls),
        Some(1)
    );
}

#[test]
fn sessions_expire_after_the_idle_time() {
    let gate = gate_with(json!({ "history": { "idle_seconds": 2 } }));
    let shared = Memory::new();
    secret(&gate, &shared, "s-1", T0);
    assert_eq!(
        webhook(&gate, &shared, READER, "s-1", T0 + 2).outcome,
        Outcome::Deny
    );
    let later = webhook(&gate, &shared, READER, "s-1", T0 + 3);
    assert_eq!(later.outcome, Outcome::Allow);
    assert_eq!(context(&later)["session"]["calls"], 0);
}

#[test]
fn at_most_two_distinct_high_risk_tools_per_session() {
    let gate = history_gate();
    let shared = Memory::new();
    let payments = |tool: &str, session: &str, at: u64| {
        call(
            &gate,
            &shared,
            PAYMENTS,
            Some(session),
            tool,
            json!({ "amount": 10 }),
            at,
        )
    };
    // refund is high risk; wire_transfer and close_account are too (and need approvals).
    assert_eq!(payments("refund", "t-1", T0).outcome, Outcome::Allow);
    // A high-risk tool already used does not count again.
    assert_eq!(payments("refund", "t-1", T0 + 1).outcome, Outcome::Allow);
    let loaded = history::load(&shared, &History::default(), PAYMENTS).unwrap();
    let shard = loaded.shard().unwrap();
    assert_eq!(
        shard
            .session(PAYMENTS, "t-1", T0 as i64 + 1, 600)
            .unwrap()
            .unwrap()
            .tools,
        ["tools/refund"]
    );
    // Record a second high-risk tool directly (its own policy needs an approval).
    let loaded = history::load(&shared, &History::default(), PAYMENTS).unwrap();
    let mut shard = loaded.shard().unwrap();
    let recorded = Recorded {
        agent: PAYMENTS,
        session: "t-1",
        resource: "tools/wire_transfer",
        tool: Some("tools/wire_transfer"),
        tags: &[],
    };
    shard
        .record(&recorded, T0 as i64 + 2, &History::default())
        .unwrap();
    assert!(shared
        .set(&loaded.key, &shard.encode().unwrap(), loaded.cas)
        .unwrap());
    let third = call(
        &gate,
        &shared,
        PAYMENTS,
        Some("t-1"),
        "close_account",
        json!({}),
        T0 + 3,
    );
    assert_eq!(third.policies(), ["at-most-2-high-risk-tools-per-session"]);
    assert_eq!(context(&third)["session"]["high_risk_tools"], 2);
    // Both tools already used stay usable.
    assert_eq!(payments("refund", "t-1", T0 + 4).outcome, Outcome::Allow);
}

#[test]
fn a_rate_limit_refuses_with_retry_after() {
    let (gate, shared) = (history_gate(), Memory::new());
    for i in 0..5 {
        let allowed = refund(&gate, &shared, T0 + i * 10);
        assert_eq!(allowed.outcome, Outcome::Allow, "refund {i}");
        assert_eq!(context(&allowed)["rate"]["tool"], i);
    }
    let limited = refund(&gate, &shared, T0 + 45);
    assert_eq!(limited.outcome, Outcome::Deny);
    assert_eq!(limited.reason(), "rate_limited");
    // A JSON-RPC error the SDK surfaces for this call; 429 with `policy_status: reason`.
    assert_eq!(limited.status(), 200);
    // The oldest counted refund (at T0) leaves the minute at T0 + 60.
    assert_eq!(limited.header("retry-after"), Some("15"));
    assert_eq!(limited.typed.retry_after, Some(15));
    let body = limited.body();
    assert_eq!(body["error"]["data"]["reason"], "rate_limited");
    assert_eq!(body["error"]["data"]["retry_after"], 15);
    assert_eq!(body["error"]["code"], -32010);
    // The refusal left no trace: at T0 + 60 the first refund is out of the window.
    assert_eq!(refund(&gate, &shared, T0 + 60).outcome, Outcome::Allow);
    assert_eq!(refund(&gate, &shared, T0 + 61).reason(), "rate_limited");
}

#[test]
fn a_rate_limit_is_429_when_refusals_keep_their_status() {
    let gate = gate_with(json!({ "history": {}, "refusals": { "policy_status": "reason" } }));
    let shared = Memory::new();
    for i in 0..5 {
        assert_eq!(refund(&gate, &shared, T0 + i).outcome, Outcome::Allow);
    }
    let limited = refund(&gate, &shared, T0 + 5);
    assert_eq!((limited.reason(), limited.status()), ("rate_limited", 429));
    assert_eq!(limited.header("retry-after"), Some("55"));
}

#[test]
fn a_forbid_that_does_not_read_the_rate_is_not_a_rate_limit() {
    let gate = gate_with(
        json!({ "history": {}, "policies": kit::demo_policies_and(json!({ "cedar":
        "@id(\"no-refunds-for-big-spenders\") forbid (principal, action, resource == Toolgate::Tool::\"tools/refund\") when { context has rate && context.rate.tool >= 1 && context has arguments.tools.refund.amount && context.arguments.tools.refund.amount > 5 };\n\
         @id(\"no-refunds-at-all\") forbid (principal, action, resource == Toolgate::Tool::\"tools/refund\") when { context has session && context.session.calls >= 1 };" })) }),
    );
    let shared = Memory::new();
    assert_eq!(refund(&gate, &shared, T0).outcome, Outcome::Allow);
    let denied = refund(&gate, &shared, T0 + 1);
    let mut policies = denied.policies();
    policies.sort_unstable();
    assert_eq!(
        policies,
        ["no-refunds-at-all", "no-refunds-for-big-spenders"]
    );
    // One of the two forbids is not about rates: waiting would not help.
    assert_eq!(denied.reason(), "forbidden_by_policy");
    assert_eq!(denied.header("retry-after"), None);
}

/// Shared data where another worker records a call of the same agent just before
/// this worker's first write: the write loses the compare-and-swap.
struct Contended<'a> {
    inner: &'a Memory,
    competitor: &'a dyn Fn(&Memory),
    raced: Cell<bool>,
}

impl SharedData for Contended<'_> {
    fn get(&self, key: &str) -> Result<Option<Versioned>, String> {
        self.inner.get(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<bool, String> {
        if key.starts_with("toolgate/history/") && !self.raced.replace(true) {
            (self.competitor)(self.inner);
        }
        self.inner.set(key, value, cas)
    }
}

#[test]
fn a_concurrent_call_is_never_lost_and_never_lets_a_limit_through() {
    let (gate, shared) = (history_gate(), Memory::new());
    for i in 0..4 {
        assert_eq!(refund(&gate, &shared, T0 + i).outcome, Outcome::Allow);
    }
    // Another worker's refund (the 5th) lands between this call's read and its write.
    let other_worker = |memory: &Memory| {
        assert_eq!(
            refund(&history_gate(), memory, T0 + 5).outcome,
            Outcome::Allow
        );
    };
    let contended = Contended {
        inner: &shared,
        competitor: &other_worker,
        raced: Cell::new(false),
    };
    let sixth = refund(&gate, &contended, T0 + 5);
    assert_eq!(
        sixth.effects.conflicts, 1,
        "the write should have lost once"
    );
    assert_eq!(
        sixth.reason(),
        "rate_limited",
        "decided again on the competitor's write"
    );
    let loaded = history::load(&shared, &History::default(), PAYMENTS).unwrap();
    let shard = loaded.shard().unwrap();
    assert_eq!(
        shard
            .count(PAYMENTS, Some("tools/refund"), T0 as i64 + 5)
            .unwrap()
            .calls,
        5
    );
}

#[test]
fn without_shared_data_history_fails_closed() {
    let gate = history_gate();
    let denied = Request::tool("read_file", json!({ "path": "a" }), READER)
        .at(T0)
        .decide(&gate);
    assert_eq!(denied.outcome, Outcome::Error);
    let errors = denied.typed.errors.join("\n");
    assert!(errors.contains("no shared data"), "{errors}");
}

#[test]
fn a_full_shard_evicts_the_least_recently_used_entries_first() {
    let mut shard = Shard::default();
    fn record(
        shard: &mut Shard<'static>,
        session: &'static str,
        tool: &'static str,
        at: i64,
    ) -> history::Removed {
        let call = Recorded {
            agent: READER,
            session,
            resource: tool,
            tool: Some(tool),
            tags: &[],
        };
        let config = History {
            shards: 1,
            max_entries: 6,
            ..History::default()
        };
        shard.record(&call, at, &config).unwrap()
    }
    // Session a, the agent's counter and its read_file counter: 3 entries.
    assert_eq!(record(&mut shard, "a", "tools/read_file", 100).evicted, 0);
    // Sessions b and c: 5 entries.
    record(&mut shard, "b", "tools/read_file", 101);
    record(&mut shard, "c", "tools/read_file", 102);
    assert_eq!(shard.len(), 5);
    // Session d and a search_docs counter make 7: the oldest, session a, goes.
    let removed = record(&mut shard, "d", "tools/search_docs", 103);
    assert_eq!(removed.evicted, 1);
    assert_eq!(shard.len(), 6);
    assert!(shard.session(READER, "a", 103, 600).unwrap().is_none());
    assert!(shard.session(READER, "b", 103, 600).unwrap().is_some());
    // The counters of the call being recorded are never the ones evicted.
    let count = |resource| shard.count(READER, resource, 103).unwrap().calls;
    assert_eq!(count(Some("tools/search_docs")), 1);
    assert_eq!(count(None), 4);
}

#[test]
fn a_sweep_drops_idle_sessions_and_empty_counters_and_survives_a_broken_shard() {
    let config = History {
        shards: 2,
        max_entries: 100,
        idle_seconds: 10,
        ..History::default()
    };
    let shared = Memory::new();
    assert_eq!(history::create_shards(&shared, &config).unwrap(), 2);
    assert_eq!(
        history::create_shards(&shared, &config).unwrap(),
        0,
        "created twice"
    );
    let loaded = history::load(&shared, &config, READER).unwrap();
    assert_ne!(loaded.cas, 0, "the shard exists before the first call");
    let mut shard = loaded.shard().unwrap();
    let call = Recorded {
        agent: READER,
        session: "s",
        resource: "tools/read_file",
        tool: None,
        tags: &[],
    };
    shard.record(&call, 100, &config).unwrap();
    assert!(shared
        .set(&loaded.key, &shard.encode().unwrap(), loaded.cas)
        .unwrap());
    let (removed, problems) = history::sweep_all(&shared, &config, 105).unwrap();
    assert_eq!((removed.expired, problems.len()), (0, 0));
    // 61 s later the counters are empty, and the session has been idle for more than 10 s.
    let (removed, _) = history::sweep_all(&shared, &config, 161).unwrap();
    assert_eq!(removed.expired, 3);
    assert!(history::load(&shared, &config, READER)
        .unwrap()
        .shard()
        .unwrap()
        .is_empty());
    // A shard that cannot be read is reset by the sweep (and refuses calls until then).
    let other = history::shard_keys(&config)
        .find(|k| *k != loaded.key)
        .unwrap();
    shared.set(&other, b"{broken", 0).unwrap();
    let (_, problems) = history::sweep_all(&shared, &config, 162).unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        shared.get(&other).unwrap().unwrap().0,
        Shard::default().encode().unwrap()
    );
}

#[test]
fn the_shard_of_an_agent_is_the_same_on_every_worker_and_per_configuration() {
    let config = History::default();
    assert_eq!(
        history::shard_key(&config, READER),
        history::shard_key(&config, READER)
    );
    let keys: std::collections::HashSet<String> = history::shard_keys(&config).collect();
    assert_eq!(keys.len(), config.shards);
    assert!(keys.contains(&history::shard_key(&config, READER)));
    let fewer = History {
        shards: 8,
        ..History::default()
    };
    assert!(
        !keys.contains(&history::shard_key(&fewer, READER)),
        "a new count starts afresh"
    );
}

fn risk_gate() -> Gate {
    gate_with(json!({ "risk_feed": { "max_age_seconds": 30 } }))
}

fn poll(shared: &Memory, status: Option<u32>, body: &str, seconds: u64) -> Option<String> {
    let polled = risk::polled(
        shared,
        &Poll {
            status,
            body: body.as_bytes(),
        },
        seconds * 1_000_000_000,
    );
    for (key, value) in &polled.writes {
        shared.set(key, value, 0).unwrap();
    }
    polled.error
}

#[test]
fn the_risk_feed_flags_compromised_workloads_and_stale_data_guards_high_risk_tools() {
    let (gate, shared) = (risk_gate(), Memory::new());
    let read = |at: u64| {
        call(
            &gate,
            &shared,
            READER,
            None,
            "read_file",
            json!({ "path": "a" }),
            at,
        )
    };
    let pay = |at: u64| refund(&gate, &shared, at);
    // Never fetched: stale. Low-risk tools still go, high-risk ones do not.
    assert_eq!(read(T0).outcome, Outcome::Allow);
    assert!(read(T0).effects.risk_stale);
    let stale = pay(T0);
    assert_eq!(stale.policies(), ["forbid-sensitive-tools-on-risk"]);
    let risk = stale.typed.risk.as_ref().expect("risk");
    assert!(risk.stale);
    assert_eq!(risk.age_seconds, None);

    let flagged = json!({ "agents": { PAYMENTS: { "score": 10, "flags": ["compromised"] } } });
    assert_eq!(poll(&shared, Some(200), &flagged.to_string(), T0), None);
    let denied = call(
        &gate,
        &shared,
        PAYMENTS,
        None,
        "read_file",
        json!({ "path": "a" }),
        T0 + 1,
    );
    assert_eq!(denied.policies(), ["forbid-compromised-workloads"]);
    assert_eq!(
        denied.typed.risk,
        Some(RiskRecord {
            score: 10,
            flags: vec!["compromised".into()],
            stale: false,
            age_seconds: Some(1)
        })
    );
    assert_eq!(
        read(T0 + 1).outcome,
        Outcome::Allow,
        "the reader is not in the feed"
    );

    assert_eq!(poll(&shared, Some(200), r#"{"agents": {}}"#, T0 + 2), None);
    assert_eq!(pay(T0 + 3).outcome, Outcome::Allow);
    // Older than max_age_seconds: stale.
    assert_eq!(
        pay(T0 + 2 + 31).policies(),
        ["forbid-sensitive-tools-on-risk"]
    );
    // A failed poll keeps the data but makes it stale at once.
    assert_eq!(poll(&shared, Some(200), r#"{"agents": {}}"#, T0 + 40), None);
    assert_eq!(pay(T0 + 41).outcome, Outcome::Allow);
    let error = poll(&shared, Some(503), "", T0 + 42).expect("a failed poll");
    assert!(error.contains("503"), "{error}");
    let after = pay(T0 + 43);
    let risk = after.typed.risk.as_ref().expect("risk");
    assert!(risk.stale);
    assert_eq!(risk.age_seconds, Some(3));
    assert!(after.effects.risk_stale);
    assert!(poll(&shared, None, "", T0 + 44)
        .unwrap()
        .contains("did not answer"));
    assert!(
        poll(&shared, Some(200), "{\"agents\": []}", T0 + 45).is_some(),
        "a malformed feed is a failed poll"
    );
    assert_eq!(poll(&shared, Some(200), r#"{"agents": {}}"#, T0 + 46), None);
    assert_eq!(pay(T0 + 47).outcome, Outcome::Allow);
}

#[test]
fn feeds_are_checked_before_they_are_stored() {
    for (feed, expected) in [
        (r#"{"agents": {"a": {"score": 101}}}"#, "0..100"),
        (r#"{"agents": {"a": {"score": 1.5}}}"#, "0..100"),
        (r#"{"agents": {"a": {"flags": "x"}}}"#, "a list"),
        (r#"{"agents": {"a": {"flags": [1]}}}"#, "strings"),
        (r#"{"agents": {"a": 3}}"#, "an object"),
        (r#"["x"]"#, "expected {"),
        ("not json", "not JSON"),
    ] {
        let error = risk::parse_feed(feed.as_bytes()).expect_err(feed);
        assert!(error.contains(expected), "{feed}: {error}");
    }
    let feed =
        risk::parse_feed(br#"{"agents": {"a": {"flags": ["degraded"]}, "b": {"score": 70}}}"#)
            .unwrap();
    assert_eq!(feed.agents["a"].score, 0);
    assert_eq!(feed.agents["b"].flags, Vec::<String>::new());
}

#[test]
fn one_worker_claims_each_interval() {
    let shared = Memory::new();
    let second = 1_000_000_000;
    assert!(toolgate::shared::claim(&shared, "job", 10 * second, 5 * second).unwrap());
    assert!(!toolgate::shared::claim(&shared, "job", 12 * second, 5 * second).unwrap());
    assert!(toolgate::shared::claim(&shared, "job", 15 * second, 5 * second).unwrap());
}

#[test]
fn history_configuration_mistakes_are_refused_with_the_fix() {
    for (history, expected) in [
        (json!({ "shards": 0 }), "between 1 and 65536"),
        (
            json!({ "shards": 10, "max_entries": 5 }),
            "raise max_entries or lower shards",
        ),
        (json!({ "idle_seconds": 0 }), "at least 1"),
        (json!({ "idle": 5 }), "unknown field"),
    ] {
        let config = json!({ "history": history }).to_string();
        let error = Gate::configure(config.as_bytes(), 1)
            .err()
            .expect("refused");
        assert!(error.contains(expected), "{history}: {error}");
    }
    let error = Gate::configure(br#"{"risk_feed": {"path": "risk"}}"#, 1)
        .err()
        .expect("refused");
    assert!(error.contains("starting with '/'"), "{error}");
}
