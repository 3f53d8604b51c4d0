//! Hostile and broken input: every case is refused with its own reason, or decided exactly.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

mod kit;

use kit::{gate_with, Decided, Request, READER};
use serde_json::{json, Value};
use toolgate::config::Enforcement;
use toolgate::enforce::Action;
use toolgate::gate::Outcome;
use toolgate::http::Header;
use toolgate::identity::Peer;
use toolgate::reason::Reason;
use toolgate::record::Decision;
use toolgate::Gate;

fn decide(gate: &Gate, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Decided {
    decide_on_route(gate, method, path, headers, body, None)
}

fn decide_on_route(
    gate: &Gate,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    route: Option<&str>,
) -> Decided {
    // Envoy always has shared data (an MCP session id is looked up there).
    let shared = toolgate::shared::Memory::new();
    let mut request = Request::new(method, path, body, Some(READER)).at(0);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.decide_with(gate, |input| {
        input.route_name = route;
        input.shared = Some(&shared);
    })
}

fn post(gate: &Gate, body: &[u8]) -> Decided {
    decide(
        gate,
        "POST",
        "/mcp",
        &[("content-type", "application/json")],
        body,
    )
}

fn reason(d: &Decided) -> &str {
    d.reason()
}

const READ: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{}}}"#;

#[test]
fn refusals_have_the_documented_status() {
    let g = gate_with(json!({}));
    let h = [("content-type", "application/json")];
    let status = |d: &Decided| match &d.action {
        Action::Respond { status, .. } => *status,
        Action::Forward { .. } => 200,
    };
    let dup = post(&g, br#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#);
    assert_eq!(status(&dup), 400);
    let bom = post(&g, &[b"\xEF\xBB\xBF".as_slice(), READ].concat());
    assert_eq!(status(&bom), 415);
    let name = post(
        &g,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":" x"}}"#,
    );
    assert_eq!(status(&name), 400);
    let over = decide(
        &g,
        "POST",
        "/mcp",
        &[h[0], ("x-http-method-override", "GET")],
        READ,
    );
    assert_eq!(status(&over), 400);
    assert_eq!(reason(&over), "method_override");
    let Action::Respond { body, .. } = &over.action else {
        panic!()
    };
    let body: Value = serde_json::from_slice(body).expect("json");
    assert_eq!(
        body["error"]["code"], -32600,
        "an MCP request gets a JSON-RPC error"
    );
}

#[test]
fn duplicate_keys_at_any_level_are_refused() {
    let g = gate_with(json!({}));
    let cases: [&[u8]; 4] = [
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","name":"delete_database"}}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call","params":{"name":"delete_database"}}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a","path":"b"}}}"#,
        br#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#,
    ];
    for body in cases {
        let d = post(&g, body);
        assert_eq!(
            reason(&d),
            "duplicate_json_key",
            "{}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(d.outcome, Outcome::Error);
    }
}

#[test]
fn hostile_json_is_refused_cleanly() {
    let g = gate_with(json!({}));
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let trailing = [READ, b" {}".as_slice()].concat();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (deep.into_bytes(), "invalid_json"),
        (trailing, "invalid_json"),
        (br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"x":NaN}}}"#.to_vec(), "invalid_json"),
        (br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"x":1e999}}}"#.to_vec(), "invalid_json"),
        (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"read_\xff\"}}".to_vec(), "invalid_json"),
        ([b"\xEF\xBB\xBF".as_slice(), READ].concat(), "unsupported_charset"),
    ];
    for (body, expected) in cases {
        let d = post(&g, &body);
        assert_eq!(
            reason(&d),
            expected,
            "{}",
            String::from_utf8_lossy(&body[..body.len().min(80)])
        );
    }
    let utf16 = decide(
        &g,
        "POST",
        "/mcp",
        &[("content-type", "application/json; charset=utf-16")],
        READ,
    );
    assert_eq!(reason(&utf16), "unsupported_charset");
    let utf8 = decide(
        &g,
        "POST",
        "/mcp",
        &[("content-type", "application/json; charset=\"UTF-8\"")],
        READ,
    );
    assert_eq!(utf8.outcome, Outcome::Allow);
}

#[test]
fn large_numbers_floats_and_nulls_in_arguments_never_allow_by_accident() {
    let g = gate_with(json!({}));
    let call = |args: &str| {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"read_file","arguments":{args}}}}}"#
        );
        post(&g, body.as_bytes())
    };
    assert_eq!(
        call(r#"{"max_bytes": 18446744073709551615, "ratio": 0.5, "path": null}"#).outcome,
        Outcome::Allow
    );
    let huge = format!(r#"{{"content": "{}"}}"#, "x".repeat(500_000));
    assert_eq!(call(&huge).outcome, Outcome::Allow);
}

#[test]
fn json_rpc_in_any_content_type_is_evaluated() {
    let g = gate_with(json!({}));
    let body =
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_database"}}"#;
    for headers in [&[("content-type", "text/plain")][..], &[][..]] {
        for path in ["/mcp", "/other"] {
            let d = decide(&g, "POST", path, headers, body);
            assert_eq!(reason(&d), "forbidden_by_policy", "{path} {headers:?}");
        }
    }
    // On the MCP endpoint, anything that is not JSON-RPC is refused rather than treated as REST.
    assert_eq!(
        reason(&decide(&g, "POST", "/mcp", &[], b"hello")),
        "invalid_json"
    );
    assert_eq!(
        reason(&decide(&g, "POST", "/mcp", &[], b"")),
        "invalid_jsonrpc"
    );
    assert_eq!(
        reason(&decide(&g, "POST", "/mcp", &[], br#"{"a":1}"#)),
        "invalid_jsonrpc"
    );
}

#[test]
fn names_match_exactly_and_confusable_names_are_refused() {
    let g = gate_with(json!({}));
    let call = |name: &str| {
        let body =
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name}});
        post(&g, body.to_string().as_bytes())
    };
    // Exact match: a case variant is another tool, unknown to the catalog, so not permitted.
    assert_eq!(reason(&call("Read_File")), "not_permitted");
    assert_eq!(reason(&call("DELETE_DATABASE")), "not_permitted");
    for name in [
        " read_file",
        "read_file ",
        "read\u{200B}_file",
        "re\u{0430}d_file",
        "ｒｅａｄ_file",
        "read_file\u{FEFF}",
        "../read_file",
        "tools/../read_file",
        "/read_file",
        "read_file/",
        "",
        "a\nb",
    ] {
        assert_eq!(reason(&call(name)), "invalid_name", "{name:?}");
    }
    assert_eq!(reason(&call(&"a".repeat(129))), "invalid_name");
    let uri = |uri: &str| {
        let body =
            json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": uri}});
        post(&g, body.to_string().as_bytes())
    };
    assert_eq!(uri("docs://guide").outcome, Outcome::Allow);
    assert_eq!(reason(&uri("docs://gu\u{200D}ide")), "invalid_name");
    assert_eq!(reason(&uri("docs://a b")), "invalid_name");
}

#[test]
fn mcp_stream_and_session_end_are_session_actions() {
    let g = gate_with(json!({}));
    let get = decide(&g, "GET", "/mcp", &[("accept", "text/event-stream")], b"");
    assert_eq!(
        (get.typed.action.as_deref(), get.outcome),
        (Some("stream"), Outcome::Allow)
    );
    let delete = decide(&g, "DELETE", "/mcp", &[("mcp-session-id", "s-1")], b"");
    assert_eq!(
        (delete.typed.action.as_deref(), delete.outcome),
        (Some("terminate"), Outcome::Allow)
    );
    // A body on GET is still JSON-RPC, and still evaluated.
    let sneaky = decide(
        &g,
        "GET",
        "/mcp",
        &[],
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_database"}}"#,
    );
    assert_eq!(reason(&sneaky), "forbidden_by_policy");
}

#[test]
fn method_override_headers_are_refused() {
    let g = gate_with(json!({}));
    for name in [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    ] {
        let d = decide(
            &g,
            "POST",
            "/mcp",
            &[("content-type", "application/json"), (name, "DELETE")],
            READ,
        );
        assert_eq!(reason(&d), "method_override", "{name}");
    }
}

#[test]
fn shadow_mode_keeps_the_real_decision_and_forwards() {
    let g = gate_with(json!({"routes": {"tools": {"mode": "shadow"}}}));
    let body =
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_database"}}"#;
    let h = [("content-type", "application/json")];
    let shadow = decide_on_route(&g, "POST", "/mcp", &h, body, Some("tools"));
    assert_eq!(shadow.outcome, Outcome::ShadowDeny);
    assert_eq!(shadow.typed.decision, Decision::Deny);
    assert!(!shadow.typed.enforced);
    assert_eq!(shadow.typed.mode, Enforcement::Shadow);
    assert_eq!(reason(&shadow), "forbidden_by_policy");
    let Action::Forward { set, .. } = &shadow.action else {
        panic!("shadow mode blocked")
    };
    assert!(set.contains(&("x-toolgate-would-deny", "forbidden_by_policy".to_owned())));
    // Another route stays enforced; an allowed call in shadow mode is a plain allow.
    let enforced = decide_on_route(&g, "POST", "/mcp", &h, body, Some("other"));
    assert_eq!(
        (enforced.outcome, enforced.typed.enforced),
        (Outcome::Deny, true)
    );
    let allowed = decide_on_route(&g, "POST", "/mcp", &h, READ, Some("tools"));
    assert_eq!(
        (allowed.outcome, allowed.typed.enforced),
        (Outcome::Allow, true)
    );
    let Action::Forward { set, .. } = &allowed.action else {
        panic!()
    };
    assert!(!set.iter().any(|(n, _)| *n == "x-toolgate-would-deny"));
}

#[test]
fn servers_can_be_shadowed_and_routes_override_servers() {
    let g = gate_with(
        json!({"servers": {"tools": {"mode": "shadow"}}, "routes": {"strict": {"mode": "enforce"}}}),
    );
    let body =
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_database"}}"#;
    assert_eq!(
        decide_on_route(&g, "POST", "/mcp", &[], body, None).outcome,
        Outcome::ShadowDeny
    );
    assert_eq!(
        decide_on_route(&g, "POST", "/mcp", &[], body, Some("strict")).outcome,
        Outcome::Deny
    );
}

#[test]
fn fail_open_lets_only_errors_through_and_says_so() {
    let g = gate_with(json!({"routes": {"legacy": {"fail_open": true}}}));
    let broken = decide_on_route(&g, "POST", "/mcp", &[], b"{not json", Some("legacy"));
    assert_eq!(broken.outcome, Outcome::FailOpen);
    assert_eq!(
        (broken.typed.enforced, broken.typed.reason.map(Reason::code)),
        (false, Some("invalid_json"))
    );
    let Action::Forward { set, .. } = &broken.action else {
        panic!("fail-open blocked")
    };
    assert!(set.contains(&("x-toolgate-fail-open", "invalid_json".to_owned())));
    // A policy denial is never failed open.
    let body =
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_database"}}"#;
    assert_eq!(
        decide_on_route(&g, "POST", "/mcp", &[], body, Some("legacy")).outcome,
        Outcome::Deny
    );
    // Elsewhere errors still fail closed.
    assert_eq!(
        decide_on_route(&g, "POST", "/mcp", &[], b"{not json", Some("other")).outcome,
        Outcome::Error
    );
}

#[test]
fn an_empty_policy_set_denies_everything() {
    let schema = toolgate::policy::EMBEDDED_SCHEMA.text;
    let arguments = toolgate::policy::EMBEDDED_ARGUMENTS_SCHEMA.text;
    let g = gate_with(
        json!({"policies": {"mode": "replace", "schema": schema, "arguments_schema": arguments}}),
    );
    assert_eq!(reason(&post(&g, READ)), "not_permitted");
    assert_eq!(
        reason(&decide(&g, "GET", "/mcp", &[], b"")),
        "not_permitted"
    );
}

#[test]
fn xfcc_is_honoured_only_from_a_trusted_hop() {
    let g = gate_with(json!({"trusted_hops": ["spiffe://toolgate.test/gateway"]}));
    let xfcc = r#"By=spiffe://toolgate.test/gateway;Hash=ab;URI=spiffe://evil.test/x,By=spiffe://toolgate.test/gateway;Hash="a,b;c";URI=spiffe://toolgate.test/agent/reader"#;
    let via = |peer: Peer, header: &str| {
        let headers: Vec<Header> = vec![
            (":method".into(), b"POST".to_vec()),
            (":path".into(), b"/mcp".to_vec()),
            ("x-forwarded-client-cert".into(), header.as_bytes().to_vec()),
        ];
        let mut request = Request::new("POST", "/mcp", READ, None).at(0);
        (request.headers, request.peer) = (headers, peer);
        let decided = request.decide(&g);
        (decided.outcome, decided.typed)
    };
    let (outcome, record) = via(Peer::with_uri_san("spiffe://toolgate.test/gateway"), xfcc);
    assert_eq!(outcome, Outcome::Allow);
    assert_eq!(record.principal.as_deref(), Some(READER));
    assert_eq!(
        record.via.as_deref(),
        Some("spiffe://toolgate.test/gateway")
    );
    // Not a trusted hop: the header is ignored and the certificate speaks.
    let (_, record) = via(
        Peer::with_uri_san("spiffe://toolgate.test/agent/payments"),
        xfcc,
    );
    assert_eq!(
        record.principal.as_deref(),
        Some("spiffe://toolgate.test/agent/payments")
    );
    assert_eq!(record.via, None);
    let (outcome, record) = via(Peer::default(), xfcc);
    assert_eq!((outcome, record.principal), (Outcome::Deny, None));
    // What the hop vouches for is checked like a certificate.
    let (_, record) = via(
        Peer::with_uri_san("spiffe://toolgate.test/gateway"),
        "URI=spiffe://evil.test/a",
    );
    assert_eq!(
        record.reason.map(Reason::code),
        Some("untrusted_trust_domain")
    );
    let two = "URI=spiffe://toolgate.test/agent/reader;URI=spiffe://toolgate.test/agent/payments";
    let (_, record) = via(Peer::with_uri_san("spiffe://toolgate.test/gateway"), two);
    assert_eq!(record.reason.map(Reason::code), Some("multiple_uri_sans"));
}

#[test]
fn glue_failures_are_refusals_with_a_record() {
    let verdict = toolgate::gate::internal_failure("cannot read the request body: ParseFailure", 5);
    assert_eq!(verdict.outcome, Outcome::Error);
    assert_eq!(
        (
            verdict.record.decision,
            verdict.record.reason.map(Reason::code)
        ),
        (Decision::Deny, Some("internal_error"))
    );
    assert!(matches!(verdict.action, Action::Respond { .. }));
}

type Headers<'a> = Vec<(&'a str, &'a str)>;

#[test]
fn refusals_before_identity_name_the_verified_peer() {
    let g = gate_with(json!({}));
    let json = [("content-type", "application/json")];
    let batch = format!("[{}]", String::from_utf8_lossy(READ));
    let cases: Vec<(&str, Headers, Vec<u8>)> = vec![
        ("invalid_json", json.to_vec(), b"{".to_vec()),
        (
            "duplicate_json_key",
            json.to_vec(),
            br#"{"id":1,"id":2}"#.to_vec(),
        ),
        ("batch_rejected", json.to_vec(), batch.into_bytes()),
        (
            "unsupported_charset",
            json.to_vec(),
            [b"\xEF\xBB\xBF".as_slice(), READ].concat(),
        ),
        (
            "unsupported_content_encoding",
            vec![json[0], ("content-encoding", "gzip")],
            READ.to_vec(),
        ),
        (
            "method_override",
            vec![json[0], ("x-http-method-override", "GET")],
            READ.to_vec(),
        ),
    ];
    for (expected, headers, body) in cases {
        let d = decide(&g, "POST", "/mcp", &headers, &body);
        assert_eq!(reason(&d), expected);
        assert_eq!(
            d.typed.principal.as_deref(),
            Some(kit::READER),
            "{expected}: the record names who sent it"
        );
    }
    let oversized = Request::new("POST", "/mcp", READ, Some(kit::READER))
        .header("content-type", "application/json")
        .decide_with(&g, |input| input.body_too_large = true);
    assert_eq!(reason(&oversized), "body_too_large");
    assert_eq!(oversized.typed.principal.as_deref(), Some(kit::READER));
    let anonymous = Request::new("POST", "/mcp", b"{".to_vec(), None)
        .header("content-type", "application/json")
        .decide(&g);
    assert_eq!(
        (reason(&anonymous), anonymous.typed.principal.as_deref()),
        ("invalid_json", None)
    );
}

/// A `read_file` call (readers may call it; `n` is undeclared) with `arguments` as raw JSON text.
fn read_with(g: &Gate, id: &str, arguments: &str) -> Decided {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"read_file","arguments":{arguments}}}}}"#
    );
    post(g, body.as_bytes())
}

#[test]
fn a_number_is_held_exactly_or_refused() {
    let g = gate_with(json!({}));
    for literal in [
        "10000000000000000000001",
        "123456789012345678901234567890",
        "18446744073709551616",
        "-9223372036854775809",
        "0.10000000000000001",
        "1.00000000000000000000000000001",
        "1e-400",
        // Not the nearest f64's shortest form (a correctly rounding reader holds 2.225073858507201e-308).
        "2.2250738585072011e-308",
    ] {
        let d = read_with(&g, "1", &format!(r#"{{"n": {literal}}}"#));
        assert_eq!(d.reason(), "inexact_number", "{literal}: {}", d.record);
        assert_eq!(d.outcome, Outcome::Error);
        assert_eq!(d.status(), 400);
        assert_eq!(d.body()["error"]["code"], -32700, "{literal}");
        assert!(
            d.typed.errors.len() == 1
                && d.typed.errors[0].starts_with(&format!(
                    "the number {literal} is not exact: toolgate holds it as "
                )),
            "{literal}: {:?}",
            d.typed.errors
        );
    }
    // Anywhere in the body: the id, params, a nested argument.
    assert_eq!(
        read_with(&g, "10000000000000000000001", "{}").reason(),
        "inexact_number"
    );
    let nested = read_with(
        &g,
        "1",
        r#"{"a": [1, {"b": "1e999 in a string", "c": 0.30000000000000001}]}"#,
    );
    assert_eq!(nested.reason(), "inexact_number");
    assert_eq!(
        nested.typed.errors,
        ["the number 0.30000000000000001 is not exact: toolgate holds it as 0.3 (a 64-bit float); send at most the digits a 64-bit float carries, an integer within 64 bits, or the number as a string"]
    );
    // Beyond the f64 range is no number at all.
    assert_eq!(
        read_with(&g, "1", r#"{"n": 1e400}"#).reason(),
        "invalid_json"
    );
    for literal in [
        "0.1",
        "12.5",
        "12.50",
        "1e22",
        "1E+22",
        "10000000000000000000000",
        "1.0",
        "-0",
        "-0.0",
        "0.30000000000000004",
        "18446744073709551615",
        "-9223372036854775808",
        "5e-324",
        "1.7976931348623157e308",
        "2.225073858507201e-308",
        "100.000e-2",
        "0e999999999999999999999",
    ] {
        let d = read_with(
            &g,
            literal,
            &format!(r#"{{"n": {literal}, "s": "0.10000000000000001"}}"#),
        );
        assert_eq!(d.outcome, Outcome::Allow, "{literal}: {}", d.record);
    }
}

#[test]
fn the_digest_is_of_the_value_so_equal_values_match_and_others_do_not() {
    let g = gate_with(json!({}));
    let digest = |arguments: &str| {
        let d = read_with(&g, "1", arguments);
        assert_eq!(d.outcome, Outcome::Allow, "{arguments}: {}", d.record);
        d.typed.arguments_digest.unwrap_or_default()
    };
    let big = digest(r#"{"n": 10000000000000000000000}"#);
    assert_eq!(digest(r#"{"n": 1e22}"#), big);
    assert_eq!(digest(r#"{"n":1E+22}"#), big);
    assert_ne!(digest(r#"{"n": 9999999999999998000000}"#), big);
    assert_eq!(digest(r#"{"n": 12.50}"#), digest(r#"{"n": 12.5}"#));
    assert_ne!(digest(r#"{"n": 12.5}"#), digest(r#"{"n": "12.5"}"#));
    // The canonical form: keys sorted, no whitespace, numbers as serde_json writes them.
    let canonical = r#"{"a":[1,"x"],"n":1e+22,"r":12.5,"u":18446744073709551615}"#;
    assert_eq!(
        digest(r#"{ "u": 18446744073709551615, "r": 12.50, "n": 1E22, "a": [1, "x"] }"#),
        format!(
            "sha256:{}",
            toolgate::digest::hex(&sha256(canonical.as_bytes()))
        )
    );
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

#[test]
fn an_undeclared_number_beyond_i64_reaches_cedar_as_its_canonical_text() {
    let g = gate_with(json!({"log_arguments": true}));
    let d = read_with(
        &g,
        "1",
        r#"{"a": 10000000000000000000000, "b": 1e22, "c": 18446744073709551615, "d": 12.50, "e": 7}"#,
    );
    assert_eq!(d.outcome, Outcome::Allow, "{}", d.record);
    let context = &d.typed.cedar.as_ref().expect("the Cedar request").context;
    assert_eq!(
        context["arguments"]["tools"]["read_file"],
        json!({"a": "1e+22", "b": "1e+22", "c": "18446744073709551615", "d": "12.5", "e": 7})
    );
}
