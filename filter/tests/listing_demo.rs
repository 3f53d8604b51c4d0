//! Lists filtered by policy on the demo configuration: who sees which tool, with which conditions.

mod kit;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use kit::{Request, PAYMENTS, READER, WRITER};
use serde_json::{json, Value};
use toolgate::listing::{Filtered, ListMethod, META_KEY};
use toolgate::reason::Reason;
use toolgate::Gate;

const TOOLS: &str = include_str!("../../examples/demo/mcp/tools.json");

fn demo_tools() -> Vec<Value> {
    let list: Value = serde_json::from_str(TOOLS).expect("tools.json");
    list["result"]["tools"].as_array().expect("tools").clone()
}

fn list_request(spiffe: &str) -> Request {
    Request::post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        Some(spiffe),
    )
}

fn filter(gate: &Gate, request: &Request, method: ListMethod, items: &[Value]) -> Filtered {
    kit::filter_list(gate, request, method, items)
}

fn kept(filtered: &Filtered) -> Vec<&str> {
    filtered.kept.iter().map(|k| k.name.as_str()).collect()
}

fn meta(items: &[Value], name: &str) -> Value {
    let item = items
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} listed"));
    item["_meta"][META_KEY].clone()
}

#[test]
fn readers_see_low_sensitivity_tools_and_not_delete_database() {
    let gate = kit::gate();
    let filtered = filter(
        &gate,
        &list_request(READER),
        ListMethod::Tools,
        &demo_tools(),
    );
    assert_eq!(
        kept(&filtered),
        ["read_file", "search_docs", "read_secret", "post_webhook"]
    );
    assert!(filtered.kept.iter().all(|k| k.conditions.is_none()));
    let delete = filtered
        .hidden
        .iter()
        .find(|h| h.name == "delete_database")
        .expect("hidden");
    assert_eq!(delete.reason, Reason::Forbidden);
    assert_eq!(delete.policies, ["forbid-critical-tools"]);
    let refund = filtered
        .hidden
        .iter()
        .find(|h| h.name == "refund")
        .expect("hidden");
    assert_eq!(refund.reason, Reason::NotPermitted);
    assert!(refund.policies.is_empty(), "{refund:?}");
}

#[test]
fn payments_sees_refund_with_its_amount_condition() {
    let gate = kit::gate();
    let tools = demo_tools();
    let filtered = filter(&gate, &list_request(PAYMENTS), ListMethod::Tools, &tools);
    assert_eq!(
        kept(&filtered),
        ["refund", "wire_transfer", "close_account"]
    );
    let items = filtered.rewrite(tools);
    assert_eq!(items.len(), 3);
    assert_eq!(
        meta(&items, "refund"),
        json!({
            "allow_if": {"all_of": [
                {"arg": "amount", "op": ">", "value": 0},
                {"arg": "amount", "op": "<=", "value": 100}
            ]},
            "exact": true,
            "text": "amount > 0 and amount <= 100"
        })
    );
    assert_eq!(
        meta(&items, "wire_transfer"),
        json!({"approval": true, "text": "each call needs a human approval"})
    );
    let refund = &filtered.kept[0];
    let witness = refund
        .conditions
        .as_ref()
        .and_then(|c| c.arguments.as_ref())
        .and_then(|a| a.witness.clone());
    assert_eq!(witness, Some(json!({"amount": 1})));
    // The rest of each tool's definition is left as the server sent it.
    assert_eq!(items[0]["inputSchema"], demo_tools()[5]["inputSchema"]);
}

#[test]
fn writers_see_medium_tools_only_with_a_write_intent_and_task() {
    let gate = kit::gate();
    let tools = demo_tools();
    let plain = filter(&gate, &list_request(WRITER), ListMethod::Tools, &tools);
    assert!(!kept(&plain).contains(&"write_file"));
    let intent = list_request(WRITER)
        .header("x-agent-intent", "write")
        .header("x-agent-task", "T-1");
    let with_intent = filter(&gate, &intent, ListMethod::Tools, &tools);
    assert!(
        kept(&with_intent).contains(&"write_file"),
        "{:?}",
        kept(&with_intent)
    );
}

#[test]
fn an_unauthenticated_client_sees_nothing() {
    let gate = kit::gate();
    let request = Request::post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        None,
    );
    let filtered = filter(&gate, &request, ListMethod::Tools, &demo_tools());
    assert!(filtered.kept.is_empty());
    assert!(filtered
        .hidden
        .iter()
        .all(|h| h.policies.iter().any(|p| p == "forbid-unauthenticated")));
}

#[test]
fn forbids_on_arguments_become_unless_conditions() {
    let gate = kit::gate_with(
        json!({"policies": kit::demo_policies_and(json!({"cedar": r#"
        @id("no-big-searches")
        forbid (principal, action == Toolgate::Action::"tools/call", resource == Toolgate::Tool::"tools/search_docs")
        when { context has arguments.tools.search_docs.limit && context.arguments.tools.search_docs.limit > 50 };
        @id("relevant-searches")
        forbid (principal, action == Toolgate::Action::"tools/call", resource == Toolgate::Tool::"tools/search_docs")
        when { context has arguments.tools.search_docs.min_score && context.arguments.tools.search_docs.min_score.lessThan(decimal("0.2")) };
        @id("docs-only")
        forbid (principal, action == Toolgate::Action::"tools/call", resource == Toolgate::Tool::"tools/read_file")
        unless { context has arguments.tools.read_file.path && context.arguments.tools.read_file.path like "/docs/*" };
        @id("refunds-never-negative")
        forbid (principal, action == Toolgate::Action::"tools/call", resource == Toolgate::Tool::"tools/refund")
        when { context has arguments.tools.refund.amount && context.arguments.tools.refund.amount <= 0 };
    "#}))}),
    );
    let tools = demo_tools();
    let reader = filter(&gate, &list_request(READER), ListMethod::Tools, &tools);
    let items = reader.rewrite(tools.clone());
    assert_eq!(
        meta(&items, "search_docs")["text"],
        "unless limit > 50 or min_score < 0.2"
    );
    assert_eq!(
        meta(&items, "search_docs")["deny_if"]["any_of"][1],
        json!({"arg": "min_score", "op": "<", "value": {"decimal": "0.2"}})
    );
    assert_eq!(meta(&items, "read_file")["text"], "path like \"/docs/*\"");
    let payments = filter(&gate, &list_request(PAYMENTS), ListMethod::Tools, &tools);
    let items = payments.rewrite(tools);
    assert_eq!(
        meta(&items, "refund")["text"],
        "amount > 0 and amount <= 100"
    );
}

#[test]
fn a_tool_no_arguments_can_pass_is_hidden() {
    let gate = kit::gate_with(
        json!({"policies": kit::demo_policies_and(json!({"cedar": r#"
        @id("no-refunds-over-10")
        forbid (principal, action == Toolgate::Action::"tools/call", resource == Toolgate::Tool::"tools/refund")
        when { context has arguments.tools.refund.amount && context.arguments.tools.refund.amount > 10 };
        @id("no-refunds-under-50")
        forbid (principal, action == Toolgate::Action::"tools/call", resource == Toolgate::Tool::"tools/refund")
        when { context has arguments.tools.refund.amount && context.arguments.tools.refund.amount < 50 };
    "#}))}),
    );
    let filtered = filter(
        &gate,
        &list_request(PAYMENTS),
        ListMethod::Tools,
        &demo_tools(),
    );
    let refund = filtered
        .hidden
        .iter()
        .find(|h| h.name == "refund")
        .expect("hidden");
    assert_eq!(refund.reason, Reason::NotPermitted);
    assert_eq!(refund.why, "no arguments satisfy the policies' conditions");
}

#[test]
fn conditions_too_complex_to_render_say_so() {
    let gate = kit::gate_with(
        json!({"policies": kit::demo_policies_and(json!({"cedar": r#"
        @id("refund-arithmetic")
        forbid (principal, action == Toolgate::Action::"tools/call", resource == Toolgate::Tool::"tools/refund")
        when { context has arguments.tools.refund.amount && context.arguments.tools.refund.amount * 2 > 150 };
    "#}))}),
    );
    let tools = demo_tools();
    let filtered = filter(&gate, &list_request(PAYMENTS), ListMethod::Tools, &tools);
    let items = filtered.rewrite(tools);
    assert_eq!(
        meta(&items, "refund"),
        json!({"exact": false, "text": "conditions on its arguments apply"})
    );
}

#[test]
fn prompts_and_resources_are_decided_as_their_reads() {
    let gate = kit::gate();
    let resources = vec![
        json!({"uri": "docs://guide", "name": "guide"}),
        json!({"uri": "file:///etc/passwd", "name": "passwd"}),
        json!({"name": "no uri"}),
    ];
    let filtered = filter(
        &gate,
        &list_request(READER),
        ListMethod::Resources,
        &resources,
    );
    assert_eq!(kept(&filtered), ["docs://guide"]);
    assert_eq!(filtered.hidden.len(), 2);
    let prompts = vec![json!({"name": "summarize"})];
    let filtered = filter(&gate, &list_request(READER), ListMethod::Prompts, &prompts);
    assert!(filtered.kept.is_empty());
    assert_eq!(filtered.hidden[0].reason, Reason::NotPermitted);
    // A template: reads by name (`context.name like "docs://*"`) may pass, so it stays, inexact.
    let templates = vec![json!({"uriTemplate": "docs://{page}", "name": "docs"})];
    let filtered = filter(
        &gate,
        &list_request(READER),
        ListMethod::ResourceTemplates,
        &templates,
    );
    assert_eq!(kept(&filtered), ["docs://{page}"]);
    let filtered = filter(
        &gate,
        &list_request(PAYMENTS),
        ListMethod::ResourceTemplates,
        &templates,
    );
    assert!(filtered.kept.is_empty());
}

/// The list `cargo bench -p toolgate --bench answers` times (`lists/fifty_tools`): the
/// demo's tools five times over are each decided as the demo's nine are, and the five the
/// catalog does not know are hidden.
#[test]
fn fifty_tools_are_filtered_as_their_nine() {
    let gate = kit::gate();
    let mut tools: Vec<Value> = (0..5).flat_map(|_| demo_tools()).collect();
    tools.extend((0..5).map(|k| json!({"name": format!("unknown_{k}")})));
    assert_eq!(tools.len(), 50);
    for agent in [PAYMENTS, READER] {
        let request = list_request(agent);
        let nine = filter(&gate, &request, ListMethod::Tools, &demo_tools());
        assert!(!nine.kept.is_empty(), "{agent} sees some demo tool");
        let fifty = filter(&gate, &request, ListMethod::Tools, &tools);
        assert_eq!(kept(&fifty), kept(&nine).repeat(5), "{agent}");
    }
}
