//! The engine's declared semantics: rate limits by annotation, replay by structure, the
//! revocation control request as its own outcome, and the protocol chosen per path.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::str::FromStr;

use serde_json::{json, Value};
use toolgate::gate::{Input, Outcome, Verdict};
use toolgate::http::{Header, HttpRequest};
use toolgate::identity::Peer;
use toolgate::reason::Reason;
use toolgate::record::{Decision, DecisionRecord, Revoked};
use toolgate::shared::Memory;
use toolgate::Gate;

const AGENT: &str = "spiffe://toolgate.test/agent/echo";
const CONTROLLER: &str = "spiffe://toolgate.test/controller";
const T0: u64 = 1_700_000_000;

fn gate(extra: Value) -> Result<Gate, String> {
    let mut config = json!({ "trust_domains": ["toolgate.test"], "server": "tools" });
    if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        config.extend(extra.clone());
    }
    Gate::configure(config.to_string().as_bytes(), 3)
}

fn request(method: &str, path: &str, body: &[u8]) -> Vec<Header> {
    let mut headers: Vec<Header> = vec![
        (":method".into(), method.as_bytes().to_vec()),
        (":path".into(), path.as_bytes().to_vec()),
    ];
    if !body.is_empty() {
        headers.push(("content-type".into(), b"application/json".to_vec()));
    }
    headers
}

fn decide(gate: &Gate, peer: &str, method: &str, path: &str, body: &[u8], at: u64) -> Verdict {
    let headers = request(method, path, body);
    let peer = Peer::with_uri_san(peer);
    let shared = Memory::new();
    let input = Input {
        shared: Some(&shared),
        ..Input::new(
            HttpRequest {
                headers: &headers,
                body,
            },
            &peer,
            at * 1_000_000_000,
        )
    };
    gate.decide(&input, &|| 0)
}

fn echo(id: u64) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "echo_tool"}})
        .to_string()
        .into_bytes()
}

/// A gate allowing everything but a second `echo_tool` call within a minute.
fn limited(annotation: &str) -> Result<Gate, String> {
    gate(json!({
        "history": {},
        "policies": { "cedar": format!(
            "@id(\"open\") permit (principal, action, resource);\n\
             @id(\"one-echo-a-minute\") {annotation}\n\
             forbid (principal, action == Toolgate::Action::\"tools/call\", resource == Toolgate::Tool::\"tools/echo_tool\")\n\
             when {{ context has rate && context.rate.tool >= 1 }};") },
    }))
}

/// The second call of two, on one shared history.
fn second_echo(gate: &Gate) -> Verdict {
    let headers = request("POST", "/mcp", b"{}");
    let peer = Peer::with_uri_san(AGENT);
    let shared = Memory::new();
    let mut last = None;
    for (n, at) in [(1, T0), (2, T0 + 10)] {
        let body = echo(n);
        let input = Input {
            shared: Some(&shared),
            ..Input::new(
                HttpRequest {
                    headers: &headers,
                    body: &body,
                },
                &peer,
                at * 1_000_000_000,
            )
        };
        last = Some(gate.decide(&input, &|| 0));
    }
    last.expect("two calls")
}

#[test]
fn a_forbid_is_a_rate_limit_because_its_annotation_says_so() {
    let annotated = second_echo(&limited("@refusal(\"rate_limited\")").expect("configures"));
    assert_eq!(annotated.record.reason, Some(Reason::RateLimited));
    assert_eq!(
        annotated.record.retry_after,
        Some(50),
        "the first call leaves the window at T0+60"
    );
    // The same forbid without the annotation reads context.rate too, but says nothing
    // about waiting: it is an ordinary forbid (before, reading context.rate was enough).
    let plain = second_echo(&limited("").expect("configures"));
    assert_eq!(plain.record.reason, Some(Reason::Forbidden));
    assert_eq!(plain.record.retry_after, None);
}

#[test]
fn a_refusal_annotation_policy_cannot_make_is_a_configuration_error() {
    for bad in [
        "@refusal(\"not_permitted\")",
        "@refusal(\"internal_error\")",
    ] {
        let error = limited(bad).err().expect("refused");
        assert!(
            error.contains("one-echo-a-minute")
                && error.contains("the ones there are: rate_limited, tool_definition_changed"),
            "{error}"
        );
    }
    let on_a_permit = gate(json!({ "policies": { "cedar":
        "@id(\"p\") @refusal(\"rate_limited\") permit (principal, action, resource);" } }));
    assert!(on_a_permit.err().is_some_and(|e| e.contains("on a forbid")));
}

#[test]
fn replay_judges_what_a_policy_reads_from_its_structure() {
    let reads = |src: &str| {
        let policy = cedar_policy::Policy::from_str(src).expect("parses");
        toolgate::policy::reads_context(&policy, "arguments")
    };
    assert!(reads(
        "permit (principal, action, resource) when { context has arguments };"
    ));
    assert!(reads(
        "permit (principal, action, resource) when { context.arguments.amount < 5 };"
    ));
    // The word alone is not a read (before, the policy's text was searched for it).
    assert!(!reads(
        "permit (principal, action, resource) when { context.intent == \"arguments\" };"
    ));
    assert!(!reads(
        "@id(\"arguments\") permit (principal, action, resource);"
    ));
}

fn revocation_gate() -> Gate {
    gate(json!({ "revocation": { "controllers": [CONTROLLER], "ttl_seconds": 60 } }))
        .expect("configures")
}

#[test]
fn a_revocation_is_its_own_outcome_with_the_one_record_type() {
    let g = revocation_gate();
    let body = br#"{"task": "T-1"}"#;
    let revoked = decide(&g, CONTROLLER, "POST", "/.toolgate/revoke", body, T0);
    // Counted as a revocation, not as an allowed call (before: Outcome::Allow).
    assert_eq!(revoked.outcome, Outcome::Revocation);
    assert_eq!(revoked.writes.len(), 1);
    let record = &revoked.record;
    assert_eq!(record.decision, Decision::Allow);
    assert_eq!(record.action.as_deref(), Some("revoke"));
    assert_eq!(record.revoked, Some(vec![Revoked::Task("T-1".into())]));
    assert_eq!(record.principal.as_deref(), Some(CONTROLLER));
    // The log line reads back as the same typed record.
    let line: DecisionRecord = serde_json::from_str(&record.to_json()).expect("a record");
    assert_eq!(&line, record);

    let refused = decide(&g, AGENT, "POST", "/.toolgate/revoke", body, T0);
    assert_eq!(refused.outcome, Outcome::Deny);
    assert_eq!(refused.record.reason, Some(Reason::NotAController));
    assert!(refused.writes.is_empty());
}

#[test]
fn the_protocol_is_chosen_per_path_from_configuration() {
    let g = gate(json!({ "mcp_paths": ["/rpc"] })).expect("configures");
    // An empty POST to an MCP endpoint is a broken JSON-RPC message...
    let on_rpc = decide(&g, AGENT, "POST", "/rpc", b"", T0);
    assert_eq!(on_rpc.record.reason, Some(Reason::InvalidJsonRpc));
    // ...and on a path that is not one, a REST call on the route.
    let on_mcp = decide(&g, AGENT, "POST", "/mcp", b"", T0);
    assert_eq!(on_mcp.record.action.as_deref(), Some("http"));
    assert_eq!(on_mcp.record.resource.as_deref(), Some("tools/POST /mcp"));
}

/// The determining policies are named as Cedar displays their ids, whatever the id.
#[test]
fn policy_ids_read_as_cedar_displays_them() {
    for id in [
        "readers-call-low-sensitivity-tools",
        "with space and ~!@#$%^&*()",
        "quote\"d",
        "apo'strophe",
        "back\\slash",
        "tab\there",
        "new\nline",
        "é and ☃",
        "zero\u{200b}width",
        "",
    ] {
        let policy_id = cedar_policy::PolicyId::new(id);
        assert_eq!(
            toolgate::authorize::policy_id(&policy_id),
            policy_id.to_string(),
            "{id:?}"
        );
    }
}
