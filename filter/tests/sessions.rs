//! MCP sessions bound to their agent: the answer that mints an `Mcp-Session-Id` binds
//! it to the opener, every other principal presenting it is refused, and the record
//! carries the session and the upstream's status.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::{json, Value};
use toolgate::config::Sessions;
use toolgate::gate::Outcome;
use toolgate::record::{Binding, DecisionRecord, McpSessionRecord};
use toolgate::session::{self, Answer, Answered, Bind};
use toolgate::shared::{Memory, SharedData};
use toolgate::Gate;

mod kit;
use kit::{Decided, Request};

const READER: &str = "spiffe://toolgate.test/agent/reader";
const WRITER: &str = "spiffe://toolgate.test/agent/writer";
const T0: u64 = 1_800_000_000;

fn gate() -> Gate {
    kit::gate_with(json!({ "sessions": { "idle_seconds": 1000 } }))
}

fn rpc(method: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": 7, "method": method })
}

/// A request decided with `shared` as Envoy's shared data.
fn decide(gate: &Gate, request: &Request, shared: &Memory) -> Decided {
    request.decide_with(gate, |input| input.shared = Some(shared))
}

/// The same on the demo's `weather` REST server.
fn decide_on_weather(request: &Request, shared: &Memory) -> Decided {
    let gate = kit::gate_with(json!({ "server": "weather" }));
    request.decide_with(&gate, |input| input.shared = Some(shared))
}

/// The upstream answered a forwarded request with `status` and maybe a session id.
fn answer(
    gate: &Gate,
    record: &mut DecisionRecord,
    status: u32,
    minted: Option<&str>,
    shared: &Memory,
    at: u64,
) -> Answered {
    let answer = Answer {
        status,
        session_id: minted.map(str::as_bytes),
    };
    let now = i64::try_from(at).expect("fits");
    session::answered(gate.config(), record, &answer, shared, now).expect("answered")
}

/// `spiffe` opens session `id`: an allowed initialize whose answer mints it.
fn open(gate: &Gate, shared: &Memory, spiffe: &str, id: &str) -> DecisionRecord {
    let mut decided = decide(
        gate,
        &Request::post(rpc("initialize"), Some(spiffe)).at(T0),
        shared,
    );
    assert_eq!(decided.outcome, Outcome::Allow, "{:?}", decided.typed);
    let answered = answer(gate, &mut decided.typed, 200, Some(id), shared, T0);
    assert_eq!(answered.binding, Some(Binding::Opened));
    decided.typed
}

fn in_session(method: &str, body: Option<Value>, spiffe: &str, id: &str, at: u64) -> Request {
    let request = match body {
        Some(body) => Request::post(body, Some(spiffe)),
        None => Request::new(method, "/mcp", "", Some(spiffe)),
    };
    request.header(session::HEADER, id).at(at)
}

fn mcp_session(decided: &Decided) -> Option<(&str, Binding)> {
    (decided.typed.mcp_session.as_ref()).map(|s| (s.id.as_str(), s.binding))
}

#[test]
fn the_answer_that_mints_a_session_binds_it_to_the_opener() {
    let (gate, shared) = (gate(), Memory::new());
    let record = open(&gate, &shared, READER, "s-1");
    assert_eq!(record.upstream_status, Some(200));
    let line = kit::record(&toolgate::Verdict {
        record: record.clone(),
        ..toolgate::gate::internal_failure("", 0)
    });
    assert_eq!(
        line["mcp_session"],
        json!({"id": "s-1", "binding": "opened"})
    );
    assert_eq!(line["upstream_status"], json!(200));

    let owner = decide(
        &gate,
        &in_session("POST", Some(rpc("tools/list")), READER, "s-1", T0 + 1),
        &shared,
    );
    assert_eq!(owner.outcome, Outcome::Allow, "{:?}", owner.typed);
    assert_eq!(mcp_session(&owner), Some(("s-1", Binding::Owner)));
    assert_eq!(
        owner.record["cedar"]["context"]["mcp_session_id"],
        json!("s-1")
    );
}

#[test]
fn another_agent_cannot_post_stream_or_delete_in_the_session() {
    let (gate, shared) = (gate(), Memory::new());
    open(&gate, &shared, READER, "s-1");
    let attempts = [
        in_session("POST", Some(rpc("tools/list")), WRITER, "s-1", T0 + 1),
        in_session("GET", None, WRITER, "s-1", T0 + 1),
        in_session("DELETE", None, WRITER, "s-1", T0 + 1),
    ];
    for request in &attempts {
        let refused = decide(&gate, request, &shared);
        assert_eq!(refused.reason(), "session_not_owned", "{:?}", refused.typed);
        assert_eq!(refused.outcome, Outcome::Deny);
        assert_eq!(refused.status(), 403);
        assert_eq!(mcp_session(&refused), Some(("s-1", Binding::Other)));
        assert!(
            refused.typed.errors.join(" ").contains(READER),
            "{:?}",
            refused.typed.errors
        );
        // The client learns the reason, never who owns the session.
        assert!(!refused.body().to_string().contains(READER));
    }
    let post = decide(&gate, &attempts[0], &shared);
    assert_eq!(post.body()["error"]["code"], json!(-32011));
    assert_eq!(post.body()["id"], json!(7));
    // No certificate, no ownership.
    let anonymous = Request::new("GET", "/mcp", "", None).header(session::HEADER, "s-1");
    assert_eq!(
        decide(&gate, &anonymous.at(T0 + 1), &shared).reason(),
        "session_not_owned"
    );
}

#[test]
fn an_unknown_session_passes_and_never_becomes_the_presenter_s() {
    let (gate, shared) = (gate(), Memory::new());
    let request = in_session("POST", Some(rpc("tools/list")), WRITER, "s-lost", T0);
    let mut passed = decide(&gate, &request, &shared);
    assert_eq!(passed.outcome, Outcome::Allow, "{:?}", passed.typed);
    assert_eq!(mcp_session(&passed), Some(("s-lost", Binding::Unknown)));
    // Even when the upstream still knows it and echoes it.
    let answered = answer(&gate, &mut passed.typed, 200, Some("s-lost"), &shared, T0);
    assert_eq!(answered, Answered::default());
    assert!(shared.is_empty(), "nothing bound");
}

#[test]
fn session_ids_must_be_one_header_of_visible_ascii() {
    let (gate, shared) = (gate(), Memory::new());
    let long = "x".repeat(session::MAX_ID_BYTES + 1);
    for id in ["", "a b", "s\u{e9}", "tab\there", long.as_str()] {
        let refused = decide(&gate, &in_session("GET", None, READER, id, T0), &shared);
        assert_eq!(refused.reason(), "invalid_header", "{id:?}");
    }
    let twice = in_session("GET", None, READER, "s-1", T0).header(session::HEADER, "s-2");
    assert_eq!(decide(&gate, &twice, &shared).reason(), "invalid_header");
    let widest = "!~".repeat(session::MAX_ID_BYTES / 2);
    let fine = decide(
        &gate,
        &in_session("GET", None, READER, &widest, T0),
        &shared,
    );
    assert_eq!(fine.outcome, Outcome::Allow, "{:?}", fine.typed);
    // An upstream minting an id no client could present binds nothing, and says so.
    let mut record = decide(
        &gate,
        &Request::post(rpc("initialize"), Some(READER)),
        &shared,
    )
    .typed;
    let answered = answer(&gate, &mut record, 200, Some("a b"), &shared, T0);
    assert_eq!(answered.binding, None);
    assert!(
        record.errors.join(" ").contains("visible ASCII"),
        "{:?}",
        record.errors
    );
}

#[test]
fn an_idle_binding_expires_and_the_owner_s_requests_refresh_it_sparingly() {
    let (gate, shared) = (gate(), Memory::new());
    let sessions = gate.config().sessions.clone().expect("on");
    open(&gate, &shared, READER, "s-1");
    let key = session::shard_key(&sessions, "s-1");
    let version = || shared.get(&key).expect("read").map(|(_, cas)| cas);
    let opened = version();
    // Within a tenth of idle_seconds (100 s): no write.
    let owner = |at| in_session("POST", Some(rpc("ping")), READER, "s-1", at);
    assert_eq!(
        decide(&gate, &owner(T0 + 100), &shared).outcome,
        Outcome::Allow
    );
    assert_eq!(version(), opened);
    // Later: one write, pushing the expiry to T0 + 900 + 1000.
    assert_eq!(
        decide(&gate, &owner(T0 + 900), &shared).outcome,
        Outcome::Allow
    );
    assert_ne!(version(), opened);
    let writer = |at| in_session("GET", None, WRITER, "s-1", at);
    assert_eq!(
        decide(&gate, &writer(T0 + 1900), &shared).reason(),
        "session_not_owned"
    );
    // Idle past idle_seconds: unknown, passed to the upstream.
    let later = decide(&gate, &writer(T0 + 1901), &shared);
    assert_eq!(later.outcome, Outcome::Allow, "{:?}", later.typed);
    assert_eq!(mcp_session(&later), Some(("s-1", Binding::Unknown)));
}

#[test]
fn the_owner_s_accepted_delete_ends_the_binding() {
    let (gate, shared) = (gate(), Memory::new());
    open(&gate, &shared, READER, "s-1");
    let delete = in_session("DELETE", None, READER, "s-1", T0 + 1);
    // Refused by the upstream: still bound.
    let mut refused = decide(&gate, &delete, &shared).typed;
    assert_eq!(
        answer(&gate, &mut refused, 405, None, &shared, T0 + 1),
        Answered::default()
    );
    assert_eq!(refused.upstream_status, Some(405));
    let writer = in_session("GET", None, WRITER, "s-1", T0 + 2);
    assert_eq!(
        decide(&gate, &writer, &shared).reason(),
        "session_not_owned"
    );
    // Accepted: gone.
    let mut accepted = decide(&gate, &delete, &shared).typed;
    let answered = answer(&gate, &mut accepted, 200, None, &shared, T0 + 1);
    assert_eq!(answered.binding, Some(Binding::Ended));
    assert_eq!(
        accepted.mcp_session,
        Some(McpSessionRecord {
            id: "s-1".into(),
            binding: Binding::Ended
        })
    );
    let after = decide(&gate, &writer, &shared);
    assert_eq!(mcp_session(&after), Some(("s-1", Binding::Unknown)));
}

#[test]
fn a_corrupt_shard_refuses_its_sessions_naming_the_key() {
    let (gate, shared) = (gate(), Memory::new());
    let sessions = gate.config().sessions.clone().expect("on");
    let key = session::shard_key(&sessions, "s-1");
    shared.set(&key, b"{not json", 0).expect("set");
    let refused = decide(&gate, &in_session("GET", None, READER, "s-1", T0), &shared);
    assert_eq!(refused.reason(), "internal_error");
    assert!(
        refused.typed.errors.join(" ").contains(&key),
        "{:?}",
        refused.typed.errors
    );
    // An answer minting a session there cannot be bound: it is refused instead.
    let mut record = decide(
        &gate,
        &Request::post(rpc("initialize"), Some(READER)),
        &shared,
    )
    .typed;
    let error = session::answered(
        gate.config(),
        &mut record,
        &Answer {
            status: 200,
            session_id: Some(b"s-1"),
        },
        &shared,
        T0 as i64,
    )
    .expect_err("corrupt");
    let refusal = session::refuse_answer(&mut record, &error.to_string());
    assert!(matches!(
        refusal,
        toolgate::enforce::Action::Respond { status: 403, .. }
    ));
    assert_eq!(record.reason.map(|r| r.code()), Some("internal_error"));
}

#[test]
fn a_full_shard_evicts_its_least_recently_used_binding() {
    let config = Sessions {
        idle_seconds: 1000,
        max_entries: 2,
        shards: 1,
    };
    let shared = Memory::new();
    let now = T0 as i64;
    assert_eq!(
        session::bind(&shared, &config, "a", READER, now),
        Ok(Bind::Bound { evicted: 0 })
    );
    assert_eq!(
        session::bind(&shared, &config, "b", READER, now + 1),
        Ok(Bind::Bound { evicted: 0 })
    );
    assert_eq!(
        session::bind(&shared, &config, "a", WRITER, now + 2),
        Ok(Bind::Taken)
    );
    assert_eq!(
        session::bind(&shared, &config, "c", WRITER, now + 3),
        Ok(Bind::Bound { evicted: 1 })
    );
    let binding =
        |id| session::check(&shared, &config, id, Some(READER), now + 3).map(|p| p.binding);
    assert_eq!(binding("a"), Ok(Binding::Unknown));
    assert_eq!(binding("b"), Ok(Binding::Owner));
    assert_eq!(binding("c"), Ok(Binding::Other));
}

#[test]
fn off_or_off_the_mcp_paths_the_header_is_not_read() {
    let shared = Memory::new();
    let off = kit::gate_with(json!({ "sessions": null }));
    let decided = decide(&off, &in_session("GET", None, WRITER, "a b", T0), &shared);
    assert_eq!(decided.outcome, Outcome::Allow, "{:?}", decided.typed);
    assert_eq!(decided.typed.mcp_session, None);
    let rest = Request::new("GET", "/weather/v1/forecast", "", Some(READER))
        .header(session::HEADER, "a b");
    let decided = decide_on_weather(&rest, &shared);
    assert_eq!(decided.outcome, Outcome::Allow, "{:?}", decided.typed);
    assert!(kit::configure(&kit::config(json!({ "sessions": { "idle": 5 } })), 1).is_err());
    assert!(kit::configure(&kit::config(json!({ "sessions": { "shards": 0 } })), 1).is_err());
}

#[test]
fn the_record_carries_the_upstream_s_status_only_for_forwarded_requests() {
    let (gate, shared) = (gate(), Memory::new());
    let forecast = Request::new("GET", "/weather/v1/forecast", "", Some(READER));
    let mut allowed = decide_on_weather(&forecast, &shared);
    assert_eq!(allowed.outcome, Outcome::Allow, "{:?}", allowed.typed);
    assert_eq!(allowed.record["upstream_status"], Value::Null);
    answer(&gate, &mut allowed.typed, 503, None, &shared, T0);
    assert_eq!(allowed.typed.upstream_status, Some(503));
    assert_eq!(allowed.typed.decision.as_str(), "allow");
    let refused = decide(
        &gate,
        &Request::tool("no_such_tool", json!({}), READER),
        &shared,
    );
    assert_eq!(refused.record["upstream_status"], Value::Null);
}
