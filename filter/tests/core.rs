//! The pure core, end to end through `Gate::decide`, natively (`cargo test`) and in wasm (wasm-bindgen-test).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

mod kit;

use kit::{configure, gate, gate_with, tool_call, Request, PAYMENTS, READER, WRITER};
use serde_json::{json, Value};
use toolgate::authorize::authorize;
use toolgate::cedar_request::from_record;
use toolgate::enforce::Action;
use toolgate::gate::Outcome;
use toolgate::record::{CedarRecord, Decision, DecisionRecord};

#[test]
fn reader_may_call_a_low_sensitivity_tool() {
    let d = Request::post(
        tool_call(json!(1), "read_file", json!({"path": "a"})),
        Some(READER),
    )
    .decide(&gate());
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.typed.policies, ["readers-call-low-sensitivity-tools"]);
    let Action::Forward { set, remove } = &d.action else {
        panic!("not forwarded")
    };
    assert!(remove.is_empty());
    let names: Vec<&str> = set.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "x-toolgate-decision-id",
            "x-toolgate-policies",
            "x-toolgate-policy-version",
            "x-toolgate-principal"
        ]
    );
}

#[test]
fn forbidden_tool_is_a_jsonrpc_error_echoing_the_id() {
    let d = Request::post(
        tool_call(json!("abc"), "delete_database", json!({})),
        Some(READER),
    )
    .decide(&gate());
    assert_eq!(d.outcome, Outcome::Deny);
    // HTTP 200, as JSON-RPC means it: every MCP SDK surfaces the error for this one call.
    assert_eq!(d.status(), 200);
    let body = d.body();
    assert_eq!(body["id"], "abc");
    assert_eq!(body["error"]["code"], -32010);
    assert_eq!(body["error"]["data"]["reason"], "forbidden_by_policy");
    assert_eq!(
        body["error"]["data"]["decision_id"],
        d.typed.decision_id.as_str()
    );
}

#[test]
fn policy_refusals_can_keep_their_http_status() {
    let g = gate_with(json!({"refusals": {"policy_status": "reason"}}));
    let d = Request::post(
        tool_call(json!(3), "delete_database", json!({})),
        Some(READER),
    )
    .decide(&g);
    assert_eq!(d.status(), 403);
    assert_eq!(d.body()["error"]["data"]["reason"], "forbidden_by_policy");
}

#[test]
fn a_refused_tool_call_can_be_a_tool_result_the_model_reads() {
    let g = gate_with(json!({"refusals": {"tools_call": "result"}}));
    let d = Request::post(
        tool_call(json!(4), "delete_database", json!({})),
        Some(READER),
    )
    .decide(&g);
    assert_eq!((d.outcome, d.status()), (Outcome::Deny, 200));
    let body = d.body();
    assert_eq!(body["id"], 4);
    assert!(body.get("error").is_none(), "{body}");
    let result = &body["result"];
    assert_eq!(result["isError"], true);
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("toolgate refused this call: the call is forbidden by policy"),
        "{text}"
    );
    assert!(text.contains("forbid-critical-tools"), "{text}");
    assert!(text.contains(&d.typed.decision_id), "{text}");
    assert_eq!(result["_meta"]["toolgate"]["reason"], "forbidden_by_policy");
    // A 2025-era result has no resultType; a 2026-07-28 one must say it (the SDK requires it).
    assert!(result.get("resultType").is_none(), "{result}");
    let mut modern = tool_call(json!(8), "delete_database", json!({}));
    modern["params"]["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28"});
    let d = Request::post(modern, Some(READER))
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "delete_database")
        .decide(&g);
    assert_eq!(d.body()["result"]["resultType"], "complete");
    assert_eq!(d.body()["result"]["isError"], true);
    assert_eq!(
        result["_meta"]["toolgate"]["policies"],
        json!(["forbid-critical-tools"])
    );
    // Only tools/call becomes a result; other methods stay JSON-RPC errors.
    let read =
        json!({"jsonrpc": "2.0", "id": 5, "method": "prompts/get", "params": {"name": "nope"}});
    let other = Request::post(read, Some(READER)).decide(&g);
    assert_eq!(other.body()["error"]["code"], -32010);
    // The caller's and the transport's refusals keep their status and shape.
    let untrusted = Request::post(
        tool_call(json!(6), "read_file", json!({})),
        Some("spiffe://evil.test/agent/x"),
    )
    .decide(&g);
    assert_eq!(untrusted.status(), 403);
    assert_eq!(
        untrusted.body()["error"]["data"]["reason"],
        "untrusted_trust_domain"
    );
}

#[test]
fn a_caller_without_identity_keeps_the_http_status() {
    let d = Request::post(tool_call(json!(7), "read_file", json!({})), None).decide(&gate());
    assert_eq!((d.outcome, d.status()), (Outcome::Deny, 403));
    assert_eq!(d.body()["id"], 7);
}

#[test]
fn a_refused_notification_keeps_the_http_status() {
    // No id: there is no JSON-RPC answer to give, so the status carries the refusal.
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let d = Request::post(note, None).decide(&gate());
    assert_eq!((d.outcome, d.status()), (Outcome::Deny, 403));
}

#[test]
fn writes_need_the_declared_intent_and_a_task() {
    let call = tool_call(json!(2), "write_file", json!({"path": "x", "content": "y"}));
    let g = gate();
    assert_eq!(
        Request::post(call.clone(), Some(WRITER))
            .decide(&g)
            .reason(),
        "not_permitted"
    );
    let only_intent = Request::post(call.clone(), Some(WRITER)).header("x-agent-intent", "write");
    assert_eq!(only_intent.decide(&g).outcome, Outcome::Deny);
    let both = Request::post(call, Some(WRITER))
        .header("x-agent-intent", "write")
        .header("x-agent-task", "T-1");
    assert_eq!(both.decide(&g).outcome, Outcome::Allow);
}

#[test]
fn refunds_are_decided_on_the_amount_argument() {
    let g = gate();
    let refund = |amount: Value| {
        Request::post(
            tool_call(json!(3), "refund", json!({ "amount": amount })),
            Some(PAYMENTS),
        )
        .decide(&g)
    };
    assert_eq!(refund(json!(100)).outcome, Outcome::Allow);
    assert_eq!(refund(json!(101)).outcome, Outcome::Deny);
    assert_eq!(refund(json!(0)).outcome, Outcome::Deny);
    // Not the Long the catalog declares: refused before Cedar, saying which argument.
    let float = refund(json!(50.5));
    assert_eq!(float.outcome, Outcome::Error);
    assert_eq!(float.reason(), "invalid_arguments");
    assert_eq!(
        float.typed.errors,
        ["argument `amount` must be an integer (64-bit), not a non-integer number"]
    );
    assert_eq!(refund(json!(u64::MAX)).reason(), "invalid_arguments");
    assert_eq!(refund(json!("50")).reason(), "invalid_arguments");
}

#[test]
fn an_argument_of_another_type_cannot_slip_past_a_forbid() {
    // `==` across types is just false in Cedar: without the type check, a path sent
    // as an array would not match this forbid and the reader's permit would allow it.
    let g = gate_with(json!({
        "trust_domains": ["toolgate.test"], "server": "tools",
        "policies": kit::demo_policies_and(json!({"cedar": "@id(\"no-shadow\") forbid (principal, action == Toolgate::Action::\"tools/call\", resource) when { context has arguments.tools.read_file.path && context.arguments.tools.read_file.path == \"/etc/shadow\" };"}))
    }));
    let read = |path: Value| {
        Request::post(
            tool_call(
                json!(1),
                "read_file",
                json!({ "path": path, "undeclared": [1, {"x": null}] }),
            ),
            Some(READER),
        )
        .decide(&g)
    };
    assert_eq!(read(json!("/etc/shadow")).reason(), "forbidden_by_policy");
    let sneaky = read(json!(["/etc/shadow"]));
    assert_eq!(sneaky.outcome, Outcome::Error);
    assert_eq!(sneaky.reason(), "invalid_arguments");
    match &sneaky.action {
        Action::Respond { status, body, .. } => {
            assert_eq!(*status, 400);
            let body: Value = serde_json::from_slice(body).expect("json");
            assert_eq!(body["error"]["code"], -32602);
        }
        other => panic!("forwarded: {other:?}"),
    }
    // Undeclared arguments, whatever their type, are not the catalog's business.
    assert_eq!(read(json!("README.md")).outcome, Outcome::Allow);
    assert_eq!(read(Value::Null).outcome, Outcome::Allow);
}

#[test]
fn nested_declared_types_are_checked_too() {
    let g = gate_with(json!({
        "trust_domains": ["toolgate.test"], "server": "tools",
        "policies": kit::demo_policies_and(json!({"arguments_schema": "namespace Toolgate { type Arguments = { tools?: { read_file?: { amount?: Long, path?: String, tags?: Set<String>, filter?: { depth: Long } }, refund?: { amount?: Long } } }; }"}))
    }));
    let read = |arguments: Value| {
        Request::post(tool_call(json!(1), "read_file", arguments), Some(READER)).decide(&g)
    };
    assert_eq!(
        read(json!({"tags": ["a", "b"], "filter": {"depth": 2, "other": "x"}})).outcome,
        Outcome::Allow
    );
    let bad_set = read(json!({"tags": ["a", 2]}));
    assert_eq!(
        bad_set.typed.errors,
        ["argument `tags`[1] must be a string, not an integer"]
    );
    let bad_record = read(json!({"filter": {"depth": "deep"}}));
    assert_eq!(bad_record.reason(), "invalid_arguments");
    assert_eq!(
        bad_record.typed.errors,
        ["argument `filter`.depth must be an integer (64-bit), not a string"]
    );
}

#[test]
fn no_certificate_is_the_unauthenticated_principal() {
    let d = Request::post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        None,
    )
    .decide(&gate());
    assert_eq!(d.outcome, Outcome::Deny);
    assert_eq!(d.typed.policies, ["forbid-unauthenticated"]);
    assert!(!d.typed.authenticated);
    assert_eq!(d.typed.principal, None);
}

#[test]
fn untrusted_trust_domains_and_malformed_ids_are_refused() {
    let g = gate();
    let list = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"});
    let evil = Request::post(list.clone(), Some("spiffe://evil.test/agent/reader")).decide(&g);
    assert_eq!(evil.reason(), "untrusted_trust_domain");
    assert_eq!(evil.typed.trust_domain.as_deref(), Some("evil.test"));
    assert_eq!(evil.body()["id"], 9);
    for bad in [
        "https://toolgate.test/agent",
        "spiffe://Toolgate.test/a",
        "spiffe://toolgate.test/a/../b",
        "spiffe://toolgate.test//a",
        "spiffe:///a",
    ] {
        assert_eq!(
            Request::post(list.clone(), Some(bad)).decide(&g).reason(),
            "invalid_spiffe_id",
            "{bad}"
        );
    }
}

#[test]
fn identity_headers_count_only_in_configured_development_mode() {
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let claim = |g: &toolgate::Gate| {
        Request::post(list.clone(), None)
            .header("x-dev-id", READER)
            .decide(g)
    };
    assert_eq!(claim(&gate()).outcome, Outcome::Deny);
    let dev =
        gate_with(json!({"trust_domains": ["toolgate.test"], "dev_identity_header": "x-dev-id"}));
    let d = claim(&dev);
    assert_eq!(d.outcome, Outcome::Allow);
    assert!(d.typed.insecure_identity);
    let Action::Forward { remove, .. } = &d.action else {
        panic!()
    };
    assert_eq!(remove, &["x-dev-id".to_owned()]);
}

#[test]
fn client_annotation_headers_are_removed_or_replaced() {
    let d = Request::post(tool_call(json!(1), "read_file", json!({})), Some(READER))
        .header("x-toolgate-policies", "forged")
        .header("x-toolgate-approved", "yes")
        .decide(&gate());
    let Action::Forward { remove, set } = &d.action else {
        panic!()
    };
    assert_eq!(remove, &["x-toolgate-approved".to_owned()]);
    assert!(set
        .iter()
        .any(|(n, v)| *n == "x-toolgate-policies" && v == "readers-call-low-sensitivity-tools"));
}

#[test]
fn rest_calls_map_to_routes_and_get_problem_documents() {
    let g = gate_with(json!({"trust_domains": ["toolgate.test"], "server": "weather"}));
    let ok = Request::new("GET", "/weather/v1/forecast?city=x", vec![], Some(READER)).decide(&g);
    assert_eq!(ok.outcome, Outcome::Allow);
    assert_eq!(
        ok.typed.resource.as_deref(),
        Some("weather/GET /weather/v1/forecast")
    );
    let denied = Request::new("DELETE", "/weather/v1/forecast", vec![], Some(READER)).decide(&g);
    assert_eq!(denied.status(), 403);
    let Action::Respond { headers, .. } = &denied.action else {
        panic!()
    };
    assert!(headers.contains(&("content-type", "application/problem+json".to_owned())));
    assert_eq!(denied.body()["reason"], "not_permitted");
}

#[test]
fn mcp_methods_map_to_actions_and_resources() {
    let g = gate();
    let cases = [
        (
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}),
            "initialize",
            "tools",
        ),
        (
            json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
            "ping",
            "tools",
        ),
        (
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            "notification",
            "tools",
        ),
        (
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
            "tools/list",
            "tools",
        ),
        (
            json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": "docs://a"}}),
            "resources/read",
            "tools/docs://a",
        ),
        (
            json!({"jsonrpc": "2.0", "id": 1, "method": "prompts/get", "params": {"name": "p"}}),
            "prompts/get",
            "tools/p",
        ),
        (
            json!({"jsonrpc": "2.0", "id": 1, "method": "sampling/other"}),
            "rpc",
            "tools",
        ),
        (
            json!({"jsonrpc": "2.0", "id": 1, "result": {}}),
            "response",
            "tools",
        ),
    ];
    for (message, action, resource) in cases {
        let d = Request::post(message.clone(), Some(READER)).decide(&g);
        assert_eq!(d.typed.action.as_deref(), Some(action), "{message}");
        assert_eq!(d.typed.resource.as_deref(), Some(resource), "{message}");
    }
    let session = Request::post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"}),
        Some(READER),
    )
    .decide(&g);
    assert_eq!(session.outcome, Outcome::Allow);
    let docs = Request::post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": "docs://a"}}),
        Some(READER),
    );
    assert_eq!(docs.decide(&g).outcome, Outcome::Allow);
    let secret = Request::post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": "file:///etc/shadow"}}),
        Some(READER),
    );
    assert_eq!(secret.decide(&g).outcome, Outcome::Deny);
}

#[test]
fn both_protocol_eras_have_their_actions_and_the_shipped_defaults_permit_the_protocol() {
    // The embedded defaults alone: no deployment policy permits anything.
    let g = configure(
        &json!({"trust_domains": ["toolgate.test"], "server": "tools"}),
        1,
    )
    .expect("defaults");
    let request = |method: &str, params: Value| {
        let message = json!({"jsonrpc": "2.0", "id": 9, "method": method, "params": params});
        Request::post(message, Some(READER)).decide(&g)
    };
    let permitted = [
        ("initialize", json!({"protocolVersion": "2025-11-25"})),
        ("ping", json!({})),
        ("server/discover", json!({})),
        ("subscriptions/listen", json!({})),
        ("logging/setLevel", json!({"level": "info"})),
        ("resources/subscribe", json!({"uri": "docs://a"})),
        ("resources/unsubscribe", json!({"uri": "docs://a"})),
        ("tools/list", json!({})),
        ("prompts/list", json!({})),
        ("resources/list", json!({})),
        ("resources/templates/list", json!({})),
        (
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "p"}}),
        ),
    ];
    for (method, params) in permitted {
        let d = request(method, params);
        assert_eq!(d.typed.action.as_deref(), Some(method));
        assert_eq!(d.typed.resource.as_deref(), Some("tools"), "{method}");
        assert_eq!(d.outcome, Outcome::Allow, "{method}: {:?}", d.typed.reason);
        assert_eq!(d.policies(), ["agents-may-use-the-protocol"], "{method}");
    }
    let subscribe = request("resources/subscribe", json!({"uri": "docs://a"}));
    let cedar = subscribe.typed.cedar.as_ref().expect("cedar ran");
    assert_eq!(cedar.context["name"], "docs://a");
    // Tasks are not bound to the agent that started them: no shipped permit.
    for method in [
        "tasks/get",
        "tasks/result",
        "tasks/list",
        "tasks/cancel",
        "tasks/update",
    ] {
        let d = request(method, json!({"taskId": "t-1"}));
        assert_eq!(d.typed.action.as_deref(), Some(method));
        assert_eq!(d.reason(), "not_permitted", "{method}");
    }
    // Calls, and methods no table names, stay denied.
    assert_eq!(
        request("tools/call", json!({"name": "read_file"})).reason(),
        "not_permitted"
    );
    let unknown = request("vendor/frobnicate", json!({}));
    assert_eq!(
        (unknown.typed.action.as_deref(), unknown.reason()),
        (Some("rpc"), "not_permitted")
    );
    // Nothing for a caller without identity.
    let anonymous = Request::post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover"}),
        None,
    )
    .decide(&g);
    assert_eq!(anonymous.outcome, Outcome::Deny);
}

#[test]
fn malformed_messages_fail_closed_with_jsonrpc_codes() {
    let g = gate();
    let cases: [(&[u8], &str, i64); 6] = [
        (b"{\"jsonrpc\":\"2.0\",\"id\":1,", "invalid_json", -32700),
        (b"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", "invalid_jsonrpc", -32600),
        (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}", "invalid_jsonrpc", -32600),
        (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{}}", "invalid_params", -32602),
        (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"read_file\",\"arguments\":[1]}}", "invalid_params", -32602),
        (b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", "batch_rejected", -32600),
    ];
    for (body, reason, code) in cases {
        let d = Request::new("POST", "/mcp", body.to_vec(), Some(READER))
            .header("content-type", "application/json")
            .decide(&g);
        assert_eq!(
            d.outcome,
            Outcome::Error,
            "{}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(d.reason(), reason);
        assert_eq!(d.body()["error"]["code"], code);
    }
}

#[test]
fn evaluated_batches_are_denied_whole_if_any_element_is() {
    let g = gate_with(
        json!({"trust_domains": ["toolgate.test"], "server": "tools", "batches": "evaluate"}),
    );
    let ok = json!([tool_call(json!(1), "read_file", json!({})), {"jsonrpc": "2.0", "method": "notifications/progress"}]);
    assert_eq!(
        Request::post(ok, Some(READER)).decide(&g).outcome,
        Outcome::Allow
    );
    let mixed = json!([
        tool_call(json!(1), "read_file", json!({})),
        tool_call(json!(2), "delete_database", json!({}))
    ]);
    let d = Request::post(mixed, Some(READER)).decide(&g);
    assert_eq!(d.outcome, Outcome::Deny);
    assert_eq!(d.typed.resource.as_deref(), Some("tools/delete_database"));
    let ids: Vec<Value> = d
        .body()
        .as_array()
        .expect("batch of errors")
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(ids, [json!(1), json!(2)]);
    assert_eq!(
        Request::post(json!([]), Some(READER)).decide(&g).reason(),
        "invalid_jsonrpc"
    );
}

#[test]
fn oversized_and_encoded_bodies_are_refused() {
    let g = gate();
    let too_large =
        Request::post(json!({}), Some(READER)).decide_with(&g, |input| input.body_too_large = true);
    assert_eq!(
        (too_large.status(), too_large.reason()),
        (413, "body_too_large")
    );
    let gz = Request::post(tool_call(json!(1), "read_file", json!({})), Some(READER))
        .header("content-encoding", "gzip")
        .decide(&g);
    assert_eq!(
        (gz.status(), gz.reason()),
        (415, "unsupported_content_encoding")
    );
}

#[test]
fn the_record_has_every_field_and_digests_arguments() {
    let d = Request::post(
        tool_call(json!(5), "read_file", json!({"b": 1, "a": [true, null]})),
        Some(READER),
    )
    .header("x-agent-intent", "summarize")
    .header("x-agent-session", "")
    .decide(&gate());
    // The typed record, as the gate returned it.
    let r = &d.typed;
    assert_eq!(r.timestamp, "2023-11-14T22:13:20.123456Z");
    assert_eq!(r.intent.as_deref(), Some("summarize"));
    assert_eq!(r.session, None, "an empty header is no session");
    assert_eq!(r.request_id.as_deref(), Some("rid-1"));
    assert_eq!(r.decision_id.len(), 32);
    assert_eq!(r.decision, Decision::Allow);
    // printf '{"a":[true,null],"b":1}' | sha256sum
    assert_eq!(
        r.arguments_digest.as_deref(),
        Some("sha256:51705a2c9eb3e7e410a58f696a770c3ac3885a0cf43eb7fc88f5e47c11d4d30d")
    );
    assert_eq!(r.arguments, None, "not logged unless log_arguments");
    // Its log line has every field, absent ones as null.
    let line = d.record.as_object().expect("an object");
    for field in DecisionRecord::field_names() {
        assert!(line.contains_key(&field), "missing {field}");
    }
    assert_eq!(line.get("arguments"), Some(&Value::Null));
}

#[test]
fn the_record_carries_the_cedar_request_and_it_replays_to_the_same_answer() {
    let g = gate_with(
        json!({ "trust_domains": ["toolgate.test"], "server": "tools", "log_arguments": true }),
    );
    let store = g.store();
    let authorizer = cedar_policy::Authorizer::new();
    for (amount, decision) in [(50, "allow"), (500, "deny")] {
        let d = Request::post(
            tool_call(
                json!(1),
                "refund",
                json!({"amount": amount, "order_id": "o-1"}),
            ),
            Some(PAYMENTS),
        )
        .decide(&g);
        let cedar = &d.record["cedar"];
        assert_eq!(cedar["decision"], decision, "{cedar}");
        assert_eq!(cedar["principal"]["id"], PAYMENTS, "{cedar}");
        assert_eq!(
            cedar["resource"],
            json!({"type": "Toolgate::Tool", "id": "tools/refund"})
        );
        assert_eq!(
            cedar["context"]["arguments"]["tools"]["refund"]["amount"],
            amount
        );
        let recorded: CedarRecord = serde_json::from_value(cedar.clone()).expect("cedar block");
        let built = from_record(&recorded).expect("rebuilds");
        let replayed = authorize(&authorizer, store, &built);
        assert_eq!(replayed.denied.is_none(), decision == "allow");
        assert_eq!(replayed.policies, d.typed.policies);
    }
    // Without log_arguments the context leaves the arguments out.
    let d = Request::post(
        tool_call(json!(1), "refund", json!({"amount": 5})),
        Some(PAYMENTS),
    )
    .decide(&gate());
    let context = d.typed.cedar.as_ref().map(|c| &c.context).expect("cedar");
    assert!(context.get("arguments").is_none());
    assert_eq!(context["server"], "tools");
    // Refused before Cedar ran: no request to record.
    let d = Request::post(
        tool_call(json!(1), "refund", json!({})),
        Some("spiffe://elsewhere.test/x"),
    )
    .decide(&gate());
    assert_eq!(d.typed.cedar, None);
}

#[test]
fn every_decision_gets_a_distinct_id() {
    let g = gate();
    let req = Request::post(tool_call(json!(1), "read_file", json!({})), Some(READER));
    let (a, b) = (req.decide(&g), req.decide(&g));
    assert_ne!(a.typed.decision_id, b.typed.decision_id);
}

#[test]
fn a_server_wide_forbid_covers_tools_the_catalog_does_not_list() {
    // `resource in Server::"tools"` must match every call to server `tools`, listed or
    // not: a forbid written that way must not fail open for a new tool.
    let g = gate_with(json!({
        "policies": kit::demo_policies_and(json!({"cedar":
            "@id(\"open-to-readers\") permit (principal in Toolgate::AgentGroup::\"readers\", action, resource in Toolgate::Server::\"tools\");\n\
             @id(\"tools-closed\") forbid (principal, action == Toolgate::Action::\"tools/call\", resource in Toolgate::Server::\"tools\") when { context has task && context.task == \"freeze\" };"}))
    }));
    let call = |tool: &str, task: Option<&str>| {
        let mut request = Request::post(tool_call(json!(1), tool, json!({})), Some(READER));
        if let Some(task) = task {
            request = request.header("x-agent-task", task);
        }
        request.decide(&g)
    };
    // An uncatalogued tool is a child of its server: the permit scoped to it applies...
    assert_eq!(call("brand_new_tool", None).outcome, Outcome::Allow);
    // ...and so does the forbid, for it as for a catalogued one.
    for tool in ["brand_new_tool", "read_file"] {
        let frozen = call(tool, Some("freeze"));
        assert_eq!(frozen.reason(), "forbidden_by_policy", "{tool}");
        assert_eq!(frozen.typed.policies, ["tools-closed"], "{tool}");
    }
    // Prompts the catalog does not list are children of their server too.
    let prompt =
        json!({"jsonrpc": "2.0", "id": 1, "method": "prompts/get", "params": {"name": "p"}});
    assert_eq!(
        Request::post(prompt, Some(READER)).decide(&g).outcome,
        Outcome::Allow
    );
}

#[test]
fn argument_types_are_per_server_and_tool() {
    // search_docs declares `limit` an integer; read_file does not declare it at all.
    let g = gate();
    let read = Request::post(
        tool_call(json!(1), "read_file", json!({"path": "a", "limit": "10"})),
        Some(READER),
    )
    .decide(&g);
    assert_eq!(read.outcome, Outcome::Allow, "{}", read.record);
    let search = Request::post(
        tool_call(
            json!(1),
            "search_docs",
            json!({"query": "q", "limit": "10"}),
        ),
        Some(READER),
    )
    .decide(&g);
    assert_eq!(search.reason(), "invalid_arguments");
    assert_eq!(
        search.typed.errors,
        ["argument `limit` must be an integer (64-bit), not a string"]
    );
    // A second server whose tool declares `limit` a string: each server's own type holds.
    let arguments = "namespace Toolgate { type Arguments = { tools?: { search_docs?: { limit?: Long }, refund?: { amount?: Long } }, wiki?: { search_docs?: { limit?: String } } }; }";
    let policy = "@id(\"wiki-limit\") permit (principal, action == Toolgate::Action::\"tools/call\", resource) when { context has arguments.wiki.search_docs.limit && context.arguments.wiki.search_docs.limit == \"10\" };";
    let wiki = gate_with(json!({"server": "wiki",
        "policies": kit::demo_policies_and(json!({"cedar": policy, "arguments_schema": arguments}))}));
    let d = Request::post(
        tool_call(json!(1), "search_docs", json!({"limit": "10"})),
        Some(READER),
    )
    .decide(&wiki);
    assert_eq!(d.outcome, Outcome::Allow, "{}", d.record);
    assert_eq!(d.typed.policies, ["wiki-limit"]);
}

#[test]
fn a_json_schema_number_is_a_cedar_decimal_and_what_does_not_fit_is_refused() {
    // search_docs declares `min_score` a JSON Schema `number`: a Cedar decimal.
    let policy = "@id(\"no-low-scores\") forbid (principal, action == Toolgate::Action::\"tools/call\", resource) when { context has arguments.tools.search_docs.min_score && context.arguments.tools.search_docs.min_score.lessThan(decimal(\"0.2\")) };";
    let g = gate_with(json!({"log_arguments": true,
        "policies": kit::demo_policies_and(json!({"cedar": policy}))}));
    let search = |score: Value| {
        Request::post(
            tool_call(
                json!(1),
                "search_docs",
                json!({"query": "q", "min_score": score}),
            ),
            Some(READER),
        )
        .decide(&g)
    };
    let low = search(json!(0.1));
    assert_eq!(low.reason(), "forbidden_by_policy", "{}", low.record);
    assert_eq!(
        low.typed
            .cedar
            .as_ref()
            .map(|c| &c.context["arguments"]["tools"]["search_docs"]["min_score"]),
        Some(&json!({"__extn": {"fn": "decimal", "arg": "0.1000"}}))
    );
    // Integers are decimals too where a number is declared.
    for (fine, allowed) in [
        (json!(0.5), true),
        (json!(3), true),
        (json!(1e3), true),
        (json!(-0.25), false),
    ] {
        let d = search(fine.clone());
        assert_eq!(d.outcome == Outcome::Allow, allowed, "{fine}: {}", d.record);
    }
    for (unfit, shown) in [
        (json!(0.12345), "0.12345"),
        (json!(1e300), "1e+300"),
        (json!(1e-7), "1e-7"),
    ] {
        let d = search(unfit);
        assert_eq!(d.reason(), "invalid_arguments", "{shown}");
        assert_eq!(
            d.typed.errors,
            [format!("argument `min_score` must be a number with at most 4 decimal places, between -922337203685477.5808 and 922337203685477.5807 (a Cedar decimal), not {shown}")]
        );
    }
}

/// A `like "/docs/*"` permit for the payments agent (no other policy lets it read files),
/// on `read_file`'s `path` declared `Toolgate::Path` or, for contrast, `String`.
fn docs_prefix_gate(path_type: &str) -> toolgate::Gate {
    let arguments = format!("namespace Toolgate {{ type Arguments = {{ tools?: {{ read_file?: {{ path?: {path_type} }}, copy_files?: {{ sources?: Set<Path>, target?: {{ path: Path, note?: String }} }}, refund?: {{ amount?: Long }} }} }}; }}");
    let policy = r#"@id("payments-read-docs") permit (principal in Toolgate::AgentGroup::"payments", action == Toolgate::Action::"tools/call", resource == Toolgate::Tool::"tools/read_file") when { context has arguments.tools.read_file.path && context.arguments.tools.read_file.path like "/docs/*" };"#;
    gate_with(json!({
        "policies": kit::demo_policies_and(json!({"cedar": policy, "arguments_schema": arguments}))
    }))
}

#[test]
fn a_path_argument_cannot_walk_out_of_a_like_prefix() {
    let read = |g: &toolgate::Gate, path: &str| {
        Request::post(
            tool_call(json!(7), "read_file", json!({ "path": path })),
            Some(PAYMENTS),
        )
        .decide(g)
    };
    // Declared a String, `like "/docs/*"` admits a path that resolves to /etc/passwd.
    let string = docs_prefix_gate("String");
    assert_eq!(read(&string, "/docs/../etc/passwd").outcome, Outcome::Allow);
    let g = docs_prefix_gate("Path");
    for (path, problem) in [
        ("/docs/../etc/passwd", "has a `..` segment"),
        ("/docs/./x", "has a `.` segment"),
        ("/docs/..", "has a `..` segment"),
        ("/docs//x", "has an empty segment (`//`)"),
        ("/docs/%2e%2e/x", "has `%2e`, a percent-encoded `.`"),
        ("/docs/%2E%2e/x", "has `%2E`, a percent-encoded `.`"),
        ("/docs/..%2fetc", "has `%2f`, a percent-encoded `/`"),
        ("/docs/x%5C..", "has `%5C`, a percent-encoded `\\`"),
        ("/docs/%252e%252e/x", "has `%25`, a percent-encoded `%`"),
        (
            "/docs/%c0%ae%c0%ae/x",
            "has `%c0`, which starts an overlong encoding",
        ),
        ("/docs\\..\\x", "has a backslash, a separator on Windows"),
        ("/docs/x\u{0}.md", "has a control character (U+0000)"),
        ("/docs/\n/x", "has a control character (U+000A)"),
        (
            "/docs/\u{FF0E}\u{FF0E}/x",
            "has U+FF0E, which a server may normalize to `.`, `/` or `\\`",
        ),
    ] {
        let d = read(&g, path);
        assert_eq!(d.reason(), "unsafe_path", "{path:?}: {}", d.record);
        assert_eq!(d.outcome, Outcome::Error, "{path:?}");
        assert_eq!(d.status(), 400, "{path:?}");
        assert_eq!(d.body()["error"]["code"], -32602, "{path:?}");
        assert_eq!(d.body()["id"], 7, "{path:?}");
        assert_eq!(
            d.typed.errors,
            [format!("argument `path` is not a safe path: it {problem}")],
            "{path:?}"
        );
    }
    for path in [
        "/docs/readme.md",
        "/docs/guides/setup.md",
        "/docs/.well-known/x",
        "/docs/a..b",
        "/docs/",
    ] {
        let d = read(&g, path);
        assert_eq!(d.outcome, Outcome::Allow, "{path:?}: {}", d.record);
        assert_eq!(d.policies(), ["payments-read-docs"]);
    }
    assert_eq!(read(&g, "/etc/passwd").reason(), "not_permitted");
    // A Path is still a string: another type is `invalid_arguments`, as for a String.
    let number = Request::post(
        tool_call(json!(1), "read_file", json!({ "path": 1 })),
        Some(PAYMENTS),
    )
    .decide(&g);
    assert_eq!(number.reason(), "invalid_arguments");
    assert_eq!(
        number.typed.errors,
        ["argument `path` must be a string (a path), not an integer"]
    );
}

#[test]
fn paths_in_sets_and_records_are_checked_too() {
    let g = docs_prefix_gate("Path");
    let copy = |arguments: Value| {
        Request::post(tool_call(json!(1), "copy_files", arguments), Some(PAYMENTS)).decide(&g)
    };
    let in_set = copy(json!({"sources": ["/docs/a.md", "/docs/../b"]}));
    assert_eq!(in_set.reason(), "unsafe_path", "{}", in_set.record);
    assert_eq!(
        in_set.typed.errors,
        ["argument `sources`[1] is not a safe path: it has a `..` segment"]
    );
    let in_record = copy(json!({"target": {"path": "/docs//x", "note": "a/../b"}}));
    assert_eq!(in_record.reason(), "unsafe_path");
    assert_eq!(
        in_record.typed.errors,
        ["argument `target`.path is not a safe path: it has an empty segment (`//`)"]
    );
    // Safe paths (and a `String` beside them, whatever it holds) pass the check; no
    // policy permits copy_files, so Cedar says no.
    let safe =
        copy(json!({"sources": ["/docs/a.md"], "target": {"path": "/out/", "note": "a/../b"}}));
    assert_eq!(safe.reason(), "not_permitted", "{}", safe.record);
}
