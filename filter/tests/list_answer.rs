//! List answers filtered on the response side (`list_answer`): JSON and SSE, shadow,
//! `cacheScope`, fail closed on a refusal, list_changed notifications untouched.

mod kit;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use kit::{Request, PAYMENTS, READER};
use serde_json::{json, Value};
use toolgate::config::{Config, ListMode};
use toolgate::gate::Input;
use toolgate::http::HttpRequest;
use toolgate::list_answer::{self, ListAsked, ListFilter, ListOutcome};
use toolgate::listing::{Filtered, ListMethod, META_KEY};
use toolgate::reason::Reason;
use toolgate::record::{Decision, DecisionRecord, ListRecord};
use toolgate::refusal::Refusal;
use toolgate::Gate;

const TOOLS: &str = include_str!("../../examples/demo/mcp/tools.json");

fn answer(id: Value) -> Value {
    let mut list: Value = serde_json::from_str(TOOLS).expect("tools.json");
    list["id"] = id;
    list
}

fn asked(mode: ListMode, shadow: bool, version: Option<&str>) -> ListAsked {
    let record = DecisionRecord {
        rpc_method: Some("tools/list".into()),
        rpc_id: Some(json!(7)),
        decision: if shadow {
            Decision::Deny
        } else {
            Decision::Allow
        },
        enforced: !shadow,
        protocol_version: version.map(str::to_owned),
        batch_size: 1,
        decision_id: "d-1".into(),
        ..DecisionRecord::default()
    };
    let config: Config = serde_json::from_value(json!({"lists": {"mode": mode}})).expect("config");
    list_answer::asked(&config, &record).expect("a list answer to filter")
}

/// Reads `chunks` as the glue does, filtering with the demo gate as `spiffe`.
fn run(
    gate: &Gate,
    spiffe: &str,
    asked: &ListAsked,
    content_type: &str,
    chunks: &[&[u8]],
) -> (Vec<u8>, ListRecord) {
    let request = Request::post(
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}),
        Some(spiffe),
    );
    let mut filter = |method: ListMethod, items: &[Value]| -> Result<Filtered, Refusal> {
        let input = Input::new(
            HttpRequest {
                headers: &request.headers,
                body: &[],
            },
            &request.peer,
            request.unix_nanos,
        );
        gate.filter_list(&input, method, items)
    };
    feed(asked, content_type, chunks, &mut filter)
}

fn feed(
    asked: &ListAsked,
    content_type: &str,
    chunks: &[&[u8]],
    filter: &mut list_answer::FilterFn<'_>,
) -> (Vec<u8>, ListRecord) {
    let mut reader = list_answer::reader(
        &Config::default(),
        asked,
        Some(content_type.as_bytes()),
        None,
    );
    let mut outcome = ListOutcome::default();
    let mut out = Vec::new();
    for (n, chunk) in chunks.iter().enumerate() {
        let mut processor = ListFilter::new(asked, &mut outcome, filter);
        out.extend(reader.feed(&mut processor, chunk, n + 1 == chunks.len()));
    }
    let record = list_answer::record(asked, &reader, &outcome);
    (out, record)
}

fn names(result: &Value) -> Vec<&str> {
    result["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect()
}

fn sse_events(body: &[u8]) -> Vec<Value> {
    std::str::from_utf8(body)
        .expect("utf-8")
        .split("\n\n")
        .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|data| serde_json::from_str(data).expect("json"))
        .collect()
}

#[test]
fn a_json_answer_is_rewritten_for_payments_with_the_refund_condition() {
    let gate = kit::gate();
    let body = serde_json::to_vec(&answer(json!(7))).unwrap();
    let asked = asked(ListMode::Conditions, false, None);
    let (out, record) = run(
        &gate,
        PAYMENTS,
        &asked,
        "application/json",
        &[&body[..40], &body[40..]],
    );
    let out: Value = serde_json::from_slice(&out).expect("json");
    let listed = names(&out["result"]);
    assert!(listed.contains(&"refund"), "{listed:?}");
    assert!(!listed.contains(&"delete_database"), "{listed:?}");
    let refund = out["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "refund")
        .unwrap();
    assert_eq!(
        refund["_meta"][META_KEY]["text"],
        "amount > 0 and amount <= 100"
    );
    assert!(
        out["result"].get("cacheScope").is_none(),
        "not a 2026-07-28 request"
    );
    assert_eq!(record.method, "tools/list");
    assert_eq!(record.items, 9);
    assert_eq!(record.listed, listed.len());
    assert_eq!(record.listed + record.hidden.len(), 9);
    assert!(record.conditions >= 1);
    let delete = record
        .hidden
        .iter()
        .find(|h| h.name == "delete_database")
        .expect("hidden");
    assert_eq!(delete.reason, Reason::Forbidden);
    assert_eq!(delete.policies, ["forbid-critical-tools"]);
    assert!(!record.shadow && record.refused.is_none() && record.errors.is_empty());
}

#[test]
fn filter_mode_hides_without_conditions() {
    let gate = kit::gate();
    let body = serde_json::to_vec(&answer(json!(7))).unwrap();
    let (out, record) = run(
        &gate,
        PAYMENTS,
        &asked(ListMode::Filter, false, None),
        "application/json",
        &[&body],
    );
    let out: Value = serde_json::from_slice(&out).expect("json");
    assert!(names(&out["result"]).contains(&"refund"));
    assert!(out.to_string().find(META_KEY).is_none(), "{out}");
    assert!(!record.hidden.is_empty());
}

#[test]
fn an_sse_answer_is_filtered_event_by_event_and_notifications_pass() {
    let gate = kit::gate();
    let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 1, "progress": 1}});
    let changed = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
    let list = answer(json!(7));
    let stream = format!(
        "event: message\ndata: {progress}\n\nevent: message\ndata: {changed}\n\nevent: message\nid: 3\ndata: {list}\n\n"
    );
    let bytes = stream.as_bytes();
    let cut = bytes.len() - 200;
    let (out, record) = run(
        &gate,
        READER,
        &asked(ListMode::Conditions, false, Some("2026-07-28")),
        "text/event-stream",
        &[&bytes[..cut], &bytes[cut..]],
    );
    let text = std::str::from_utf8(&out).unwrap();
    assert!(
        text.starts_with(&format!(
            "event: message\ndata: {progress}\n\nevent: message\ndata: {changed}\n\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("id: 3\n"),
        "the event's other fields are kept"
    );
    let events = sse_events(&out);
    assert_eq!(events.len(), 3);
    assert_eq!(
        names(&events[2]["result"]),
        ["read_file", "search_docs", "read_secret", "post_webhook"]
    );
    assert_eq!(events[2]["result"]["cacheScope"], "private");
    assert_eq!(record.cache_scope.as_deref(), Some("private"));
    assert_eq!(record.hidden.len(), 5);
}

#[test]
fn the_cursor_stays_the_servers_and_a_filtered_2026_page_is_private() {
    let gate = kit::gate();
    let mut page = answer(json!(7));
    page["result"]["nextCursor"] = json!("page-2");
    let body = serde_json::to_vec(&page).unwrap();
    let (out, _) = run(
        &gate,
        READER,
        &asked(ListMode::Conditions, false, Some("2026-07-28")),
        "application/json",
        &[&body],
    );
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["result"]["nextCursor"], "page-2");
    assert_eq!(out["result"]["cacheScope"], "private");
}

#[test]
fn shadow_mode_logs_what_would_be_hidden_and_changes_nothing() {
    let gate = kit::gate();
    let body = serde_json::to_vec(&answer(json!(7))).unwrap();
    let (out, record) = run(
        &gate,
        READER,
        &asked(ListMode::Conditions, true, Some("2026-07-28")),
        "application/json",
        &[&body],
    );
    assert_eq!(out, body, "byte for byte");
    assert!(record.shadow);
    assert_eq!(record.hidden.len(), 5);
    assert!(record.hidden.iter().any(|h| h.name == "delete_database"));
}

#[test]
fn a_refusal_of_the_filtering_hides_everything() {
    let body = serde_json::to_vec(&answer(json!(7))).unwrap();
    let mut refuse = |_: ListMethod, _: &[Value]| -> Result<Filtered, Refusal> {
        Err(Refusal::internal("cannot read revocations"))
    };
    let asked = asked(ListMode::Conditions, false, None);
    let (out, record) = feed(&asked, "application/json", &[&body], &mut refuse);
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["result"]["tools"], json!([]));
    assert_eq!(record.refused, Some(Reason::Internal));
    assert_eq!(record.listed, 0);
    assert_eq!(record.hidden.len(), 9);
    assert_eq!(record.errors, ["cannot read revocations"]);
}

#[test]
fn other_answers_pass_and_a_list_that_is_not_strict_json_is_refused() {
    let mut never =
        |_: ListMethod, _: &[Value]| -> Result<Filtered, Refusal> { panic!("not a list") };
    let asked = asked(ListMode::Conditions, false, None);
    let error = br#"{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"no"}}"#;
    let (out, record) = feed(&asked, "application/json", &[error], &mut never);
    assert_eq!(out, error);
    assert!(record.unfiltered);
    let twice = br#"{"jsonrpc":"2.0","id":7,"result":{"tools":[]},"result":{"tools":[{"name":"delete_database"}]}}"#;
    let (out, record) = feed(&asked, "application/json", &[twice], &mut never);
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["error"]["data"]["reason"], "internal_error", "{out}");
    assert_eq!(record.refused, Some(Reason::Internal));
}

#[test]
fn list_mode_per_route_and_server() {
    let config: Config = serde_json::from_value(json!({
        "lists": {"mode": "off"},
        "servers": {"tools": {"lists": "conditions"}},
        "routes": {"plain": {"lists": "filter"}},
    }))
    .unwrap();
    assert_eq!(config.list_mode(None, Some("weather")), ListMode::Off);
    assert_eq!(config.list_mode(None, Some("tools")), ListMode::Conditions);
    assert_eq!(
        config.list_mode(Some("plain"), Some("tools")),
        ListMode::Filter
    );
    assert_eq!(Config::default().lists.mode, ListMode::Conditions);
    assert!(serde_json::from_value::<Config>(json!({"lists": {"mode": "everything"}})).is_err());
    assert!(serde_json::from_value::<Config>(json!({"lists": {"mod": "off"}})).is_err());
}
