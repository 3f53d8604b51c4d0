//! MCP 2026-07-28's mirrored headers: refused unless they say what the body says.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

mod kit;

use kit::{configure, Request, READER};
use serde_json::{json, Value};
use toolgate::gate::{Gate, Outcome};

const MODERN: &str = "2026-07-28";

/// A gate whose catalog declares `tools/route` with three mirrored arguments; readers may
/// call `read_file` and `route`, and `delete_database` is forbidden.
fn gate() -> Gate {
    let arguments = r#"namespace Toolgate { type Arguments = { tools?: {
        route?: { @mcp_header("Region") region?: String, @mcp_header("Count") count?: Long,
                  @mcp_header("Dry") dry?: Bool, options?: { @mcp_header("Zone") zone?: String } },
        read_file?: { path?: String } } }; }"#;
    let cedar = r#"
        permit (principal, action == Toolgate::Action::"tools/call", resource in Toolgate::Server::"tools")
        unless { resource == Toolgate::Tool::"tools/delete_database" };"#;
    configure(
        &json!({
            "trust_domains": ["toolgate.test"],
            "server": "tools",
            "policies": { "cedar": cedar, "arguments_schema": arguments },
        }),
        1,
    )
    .expect("configure")
}

/// A 2026-07-28 `tools/call`: the version in `_meta`, as the SDK sends it.
fn modern_call(name: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": name, "arguments": arguments,
        "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN,
                  "io.modelcontextprotocol/clientCapabilities": {}}}})
}

/// With the headers a conforming 2026-07-28 client sends for it.
fn conforming(name: &str, arguments: Value) -> Request {
    Request::post(modern_call(name, arguments), Some(READER))
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tools/call")
        .header("mcp-name", name)
}

fn refused(request: Request) -> String {
    let d = request.decide(&gate());
    assert_eq!(d.outcome, Outcome::Error, "{:?}", d.typed.reason);
    assert_eq!(d.reason(), "header_mismatch", "{:?}", d.typed.errors);
    assert_eq!(d.status(), 400);
    let body = d.body();
    assert_eq!(body["error"]["code"], -32020);
    assert_eq!(body["id"], 7, "the error answers the request");
    d.typed.errors.join("; ")
}

#[test]
fn a_conforming_request_is_decided_and_its_version_recorded() {
    let d = conforming("read_file", json!({"path": "a"})).decide(&gate());
    assert_eq!(d.outcome, Outcome::Allow, "{:?}", d.typed.errors);
    assert_eq!(d.typed.protocol_version.as_deref(), Some(MODERN));
    let cedar = d.typed.cedar.as_ref().expect("cedar ran");
    assert_eq!(cedar.context["protocol_version"], MODERN);
}

#[test]
fn a_header_naming_an_allowed_tool_over_a_body_calling_a_forbidden_one_is_refused() {
    let attack = Request::post(modern_call("delete_database", json!({})), Some(READER))
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "read_file");
    let why = refused(attack);
    assert!(
        why.contains("mcp-name") && why.contains("delete_database"),
        "{why}"
    );
    // The reverse: the header names the forbidden tool, the body an allowed one.
    let reverse = Request::post(modern_call("read_file", json!({"path": "a"})), Some(READER))
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "delete_database");
    refused(reverse);
    // The method, too.
    let method = Request::post(modern_call("read_file", json!({})), Some(READER))
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tools/list")
        .header("mcp-name", "read_file");
    refused(method);
}

#[test]
fn required_headers_missing_on_a_modern_request_are_refused() {
    let body = || modern_call("read_file", json!({"path": "a"}));
    let no_method = Request::post(body(), Some(READER))
        .header("mcp-protocol-version", MODERN)
        .header("mcp-name", "read_file");
    assert!(refused(no_method).contains("mcp-method header is missing"));
    let no_name = Request::post(body(), Some(READER))
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tools/call");
    assert!(refused(no_name).contains("mcp-name header is missing"));
    let no_version = Request::post(body(), Some(READER))
        .header("mcp-method", "tools/call")
        .header("mcp-name", "read_file");
    assert!(refused(no_version).contains("mcp-protocol-version"));
}

#[test]
fn the_version_header_must_be_the_body_s() {
    let d = Request::post(modern_call("read_file", json!({})), Some(READER))
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "read_file");
    assert!(refused(d).contains("not the body's _meta protocolVersion"));
}

#[test]
fn a_legacy_request_needs_no_mirrors_but_any_it_sends_must_agree() {
    let legacy = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                        "params": {"name": "read_file", "arguments": {"path": "a"}}});
    let bare =
        Request::post(legacy.clone(), Some(READER)).header("mcp-protocol-version", "2025-11-25");
    let d = bare.decide(&gate());
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.typed.protocol_version.as_deref(), Some("2025-11-25"));
    let lying = Request::post(legacy, Some(READER))
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-name", "delete_database");
    refused(lying);
}

#[test]
fn an_unknown_version_is_held_to_mirroring() {
    // Not an earlier date: it could be newer, so its headers are required.
    let mut body = modern_call("read_file", json!({}));
    body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("DRAFT-2027");
    let d = Request::post(body, Some(READER)).header("mcp-protocol-version", "DRAFT-2027");
    assert!(refused(d).contains("missing"));
}

#[test]
fn base64_values_are_decoded_before_comparing() {
    // "Zürich 1" is not plain ASCII, so the client sends it base64-wrapped.
    let ok = conforming("route", json!({"region": "Zürich 1"}))
        .header("mcp-param-region", "=?base64?WsO8cmljaCAx?=");
    assert_eq!(ok.decide(&gate()).outcome, Outcome::Allow);
    let wrong = conforming("route", json!({"region": "Zürich 2"}))
        .header("mcp-param-region", "=?base64?WsO8cmljaCAx?=");
    refused(wrong);
    let broken =
        conforming("route", json!({"region": "x"})).header("mcp-param-region", "=?base64?***?=");
    assert!(refused(broken).contains("base64"));
    let name = Request::post(modern_call("read_file", json!({})), Some(READER))
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "=?base64?cmVhZF9maWxl?=");
    assert_eq!(name.decide(&gate()).outcome, Outcome::Allow);
}

#[test]
fn declared_argument_headers_are_checked_by_type() {
    let args = json!({"region": "eu-west-1", "count": 3, "dry": true, "options": {"zone": "b"}});
    let all = |request: Request| {
        request
            .header("mcp-param-region", "eu-west-1")
            .header("mcp-param-dry", "true")
            .header("mcp-param-zone", "b")
    };
    let ok = all(conforming("route", args.clone())).header("mcp-param-count", "3");
    assert_eq!(ok.decide(&gate()).outcome, Outcome::Allow);
    // Integers compare numerically.
    let numeric = all(conforming("route", args.clone())).header("mcp-param-count", "3.0");
    assert_eq!(numeric.decide(&gate()).outcome, Outcome::Allow);
    let other = all(conforming("route", args.clone())).header("mcp-param-count", "4");
    assert!(refused(other).contains("count"));
    // A declared argument in the body without its header.
    let missing = all(conforming("route", args.clone()));
    assert!(refused(missing).contains("mcp-param-count header is missing"));
    // A header for an argument the body does not carry.
    let phantom = conforming("route", json!({})).header("mcp-param-region", "eu");
    refused(phantom);
    // Nested through properties.
    let mut nested = args.clone();
    nested["options"]["zone"] = json!("c");
    let zone = all(conforming("route", nested)).header("mcp-param-count", "3");
    assert!(refused(zone).contains("options.zone"));
    // Absent or null arguments need no header.
    let none = conforming("route", json!({"region": null}));
    assert_eq!(none.decide(&gate()).outcome, Outcome::Allow);
    // A header the catalog does not declare is forwarded and ignored (MCP's rule).
    let unknown = conforming("read_file", json!({})).header("mcp-param-other", "x");
    assert_eq!(unknown.decide(&gate()).outcome, Outcome::Allow);
}

#[test]
fn a_mirrored_header_sent_twice_is_refused() {
    let twice = conforming("read_file", json!({})).header("mcp-name", "read_file");
    assert!(refused(twice).contains("more than once"));
}

#[test]
fn tasks_name_their_task_id_and_notifications_need_no_mirrors() {
    let task = json!({"jsonrpc": "2.0", "id": 7, "method": "tasks/get", "params": {"taskId": "t-1",
        "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN}}});
    let wrong = Request::post(task.clone(), Some(READER))
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tasks/get")
        .header("mcp-name", "t-2");
    refused(wrong);
    let right = Request::post(task, Some(READER))
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tasks/get")
        .header("mcp-name", "t-1");
    let d = right.decide(&gate());
    assert_eq!(
        d.reason(),
        "not_permitted",
        "decided on policy: {:?}",
        d.typed.errors
    );
    let note = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": MODERN}}});
    let d = Request::post(note, Some(READER))
        .header("mcp-protocol-version", MODERN)
        .decide(&gate());
    assert_ne!(d.reason(), "header_mismatch");
}

#[test]
fn an_input_required_retry_is_decided_as_the_call_it_is() {
    // 2026-07-28: the client retries the same call with `inputResponses` and the
    // server's `requestState` beside `name` and `arguments`.
    let first = conforming("route", json!({"region": "eu", "count": 2}))
        .header("mcp-param-region", "eu")
        .header("mcp-param-count", "2")
        .decide(&gate());
    let mut retry_body = modern_call("route", json!({"region": "eu", "count": 2}));
    retry_body["params"]["inputResponses"] =
        json!({"ask": {"action": "accept", "content": {"name": "Ada"}}});
    retry_body["params"]["requestState"] = json!("v1.opaque");
    let retry = Request::post(retry_body, Some(READER))
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "route")
        .header("mcp-param-region", "eu")
        .header("mcp-param-count", "2")
        .decide(&gate());
    assert_eq!(
        (first.outcome, retry.outcome),
        (Outcome::Allow, Outcome::Allow)
    );
    assert_eq!(retry.typed.action.as_deref(), Some("tools/call"));
    assert_eq!(retry.typed.resource.as_deref(), Some("tools/route"));
    assert!(first.typed.arguments_digest.is_some());
    assert_eq!(retry.typed.arguments_digest, first.typed.arguments_digest);
}
