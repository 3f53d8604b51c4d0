//! Short-lived credentials and delegation chains, from jwt_authn's metadata to the decision.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

mod kit;

use kit::{gate_with, Request, PAYMENTS, READER, WRITER};
use serde_json::json;
use toolgate::credential::{Credential, TokenState};
use toolgate::gate::Outcome;
use toolgate::http::Header;
use toolgate::reason::Reason;
use toolgate::record::DecisionRecord;
use toolgate::wire::encode_pairs;
use toolgate::Gate;

const NOW: i64 = 1_800_000_000;

fn gate() -> Gate {
    gate_with(json!({"credentials": {}}))
}

fn number(n: i64) -> Vec<u8> {
    (n as f64).to_le_bytes().to_vec()
}

/// jwt_authn's payload as Envoy encodes it: a map, nested maps for `act`, lists as keys.
fn payload(sub: &str, ttl: i64, task: Option<&str>, aud: &[&str], actors: &[&str]) -> Vec<u8> {
    let aud_items: Vec<(&[u8], &[u8])> = aud.iter().map(|a| (a.as_bytes(), &b""[..])).collect();
    let aud = encode_pairs(&aud_items);
    let mut act: Option<Vec<u8>> = None;
    for actor in actors.iter().rev() {
        let mut fields: Vec<(&[u8], &[u8])> = vec![(b"sub", actor.as_bytes())];
        if let Some(inner) = &act {
            fields.push((b"act", inner));
        }
        act = Some(encode_pairs(&fields));
    }
    let (iat, exp) = (number(NOW - 10), number(NOW - 10 + ttl));
    let mut fields: Vec<(&[u8], &[u8])> = vec![
        (b"iss", b"https://issuer.toolgate.test"),
        (b"sub", sub.as_bytes()),
        (b"aud", &aud),
        (b"iat", &iat),
        (b"exp", &exp),
        (b"scope", b"tools:read tools:write"),
        (b"jti", b"j-1"),
    ];
    if let Some(task) = task {
        fields.push((b"task", task.as_bytes()));
    }
    if let Some(act) = &act {
        fields.push((b"act", act));
    }
    encode_pairs(&fields)
}

fn decide(
    gate: &Gate,
    peer: &str,
    token: TokenState,
    name: &str,
    task: Option<&str>,
) -> (Outcome, DecisionRecord) {
    let arguments = json!({"path": "a", "content": "b"});
    let mut request = Request::tool(name, arguments, peer).at(NOW as u64);
    if let Some(task) = task {
        request = request
            .header("x-agent-task", task)
            .header("x-agent-intent", "write");
    }
    let decided = request.decide_with(gate, |input| input.token = token);
    (decided.outcome, decided.typed)
}

fn verified(bytes: &[u8]) -> TokenState {
    TokenState::from_envoy(Some(bytes), None)
}

#[test]
fn claims_are_read_from_the_metadata_encoding() {
    let TokenState::Verified(c) = verified(&payload(
        READER,
        300,
        Some("T-1"),
        &["tools", "other"],
        &["spiffe://toolgate.test/agent/planner", "user:alice"],
    )) else {
        panic!("not verified");
    };
    let expected = Credential {
        issuer: "https://issuer.toolgate.test".into(),
        subject: READER.into(),
        audience: vec!["tools".into(), "other".into()],
        scopes: vec!["tools:read".into(), "tools:write".into()],
        task: Some("T-1".into()),
        intent: None,
        jti: Some("j-1".into()),
        issued_at: NOW - 10,
        expires_at: NOW + 290,
        delegation: vec![
            "spiffe://toolgate.test/agent/planner".into(),
            "user:alice".into(),
        ],
    };
    assert_eq!(c, expected);
    assert_eq!((c.ttl_seconds(), c.remaining_seconds(NOW)), (300, 290));
    let failure = encode_pairs(&[(b"code", &number(16)), (b"message", b"Jwt is expired")]);
    assert_eq!(
        TokenState::from_envoy(None, Some(&failure)),
        TokenState::Failed("Jwt is expired".into())
    );
    assert_eq!(
        TokenState::from_envoy(Some(b"garbage"), None),
        TokenState::Unreadable
    );
}

#[test]
fn a_matching_short_lived_token_is_allowed_and_logged() {
    let (outcome, record) = decide(
        &gate(),
        READER,
        verified(&payload(READER, 600, None, &["tools"], &[])),
        "read_file",
        None,
    );
    assert_eq!(outcome, Outcome::Allow, "{record:?}");
    let token = record.token.expect("token");
    assert_eq!(token.subject, READER);
    assert_eq!(token.ttl_seconds, 600);
    assert!(token.delegation.is_empty());
}

#[test]
fn each_token_rule_denies_with_its_policy() {
    let g = gate();
    let cases = [
        (
            payload(WRITER, 600, None, &["tools"], &[]),
            None,
            "token-subject-is-the-caller",
        ),
        (
            payload(READER, 3600, None, &["tools"], &[]),
            None,
            "token-ttl-at-most-15-minutes",
        ),
        (
            payload(READER, 600, Some("T-1"), &["tools"], &[]),
            Some("T-2"),
            "token-task-is-the-declared-task",
        ),
        (
            payload(READER, 600, Some("T-1"), &["tools"], &[]),
            None,
            "token-task-is-the-declared-task",
        ),
        (
            payload(READER, 600, None, &["weather"], &[]),
            None,
            "token-audience-is-the-server",
        ),
        (
            payload(READER, 600, None, &["tools"], &["a:1", "a:2", "a:3", "a:4"]),
            None,
            "delegation-at-most-3-deep",
        ),
    ];
    for (bytes, task, policy) in cases {
        let (outcome, record) = decide(&g, READER, verified(&bytes), "read_file", task);
        assert_eq!(outcome, Outcome::Deny, "{policy}: {record:?}");
        assert!(
            record.policies.iter().any(|p| p == policy),
            "{policy}: {record:?}"
        );
    }
    let (outcome, _) = decide(
        &g,
        READER,
        verified(&payload(READER, 600, Some("T-1"), &["tools"], &[])),
        "read_file",
        Some("T-1"),
    );
    assert_eq!(outcome, Outcome::Allow);
}

#[test]
fn missing_and_failed_tokens_are_refused() {
    let g = gate();
    let (outcome, record) = decide(&g, READER, TokenState::Absent, "read_file", None);
    assert_eq!(
        (outcome, record.reason),
        (Outcome::Deny, Some(Reason::TokenMissing))
    );
    let (_, record) = decide(
        &g,
        READER,
        TokenState::Failed("Jwt is expired".into()),
        "read_file",
        None,
    );
    assert_eq!(record.reason.map(Reason::code), Some("token_invalid"));
    assert_eq!(record.errors, ["jwt_authn: Jwt is expired"]);
}

#[test]
fn delegation_never_widens_access() {
    let g = gate();
    // The writer may write (with intent and task); a reader acting through it may not.
    let chain = |actors: &[&str]| verified(&payload(WRITER, 600, Some("T-9"), &["tools"], actors));
    let (outcome, record) = decide(&g, WRITER, chain(&[]), "write_file", Some("T-9"));
    assert_eq!(outcome, Outcome::Allow, "{record:?}");
    let (outcome, record) = decide(
        &g,
        WRITER,
        chain(&["spiffe://toolgate.test/agent/writer"]),
        "write_file",
        Some("T-9"),
    );
    assert_eq!(outcome, Outcome::Allow, "{record:?}");
    let (outcome, record) = decide(
        &g,
        WRITER,
        chain(&["user:alice", "spiffe://toolgate.test/agent/writer", READER]),
        "write_file",
        Some("T-9"),
    );
    assert_eq!(
        (outcome, record.reason.map(Reason::code)),
        (Outcome::Deny, Some("delegated_actor_not_permitted")),
        "{record:?}"
    );
    assert_eq!(record.token.as_ref().map(|t| t.delegation.len()), Some(3));
}

#[test]
fn approvals_bind_agent_server_tool_and_arguments() {
    use toolgate::approval::{ApprovalState, Binding};
    let approval = |sub: &str, server: &str, tool: &str, digest: &str| {
        ApprovalState::from_envoy(
            Some(&encode_pairs(&[
                (b"iss", b"https://approvals.toolgate.test"),
                (b"sub", sub.as_bytes()),
                (b"server", server.as_bytes()),
                (b"tool", tool.as_bytes()),
                (b"args_digest", digest.as_bytes()),
            ])),
            None,
        )
    };
    let call = Binding {
        agent: READER,
        server: "tools",
        tool: "wire_transfer",
        args_digest: "sha256:aa",
    };
    assert_eq!(
        approval(READER, "tools", "wire_transfer", "sha256:aa").refusal(&call),
        None
    );
    for (state, field) in [
        (
            approval(WRITER, "tools", "wire_transfer", "sha256:aa"),
            "agent",
        ),
        (
            approval(READER, "weather", "wire_transfer", "sha256:aa"),
            "server",
        ),
        (
            approval(READER, "tools", "close_account", "sha256:aa"),
            "tool",
        ),
        (
            approval(READER, "tools", "wire_transfer", "sha256:bb"),
            "args_digest",
        ),
    ] {
        let why = state.refusal(&call).expect("refused");
        assert!(why.contains(field), "{why}");
    }
    assert!(ApprovalState::Absent.refusal(&call).is_some());
    let failure = encode_pairs(&[(b"message", b"Jwt is expired")]);
    let expired = ApprovalState::from_envoy(None, Some(&failure));
    assert!(expired
        .refusal(&call)
        .is_some_and(|why| why.contains("expired")));
}

/// An approval-gated call's record digests its arguments as the approval binds
/// them, whether the approval is missing or matches (the approval stage's hash is
/// the record's, computed once).
#[test]
fn a_gated_calls_record_digests_its_arguments_as_the_approval_does() {
    use toolgate::approval::ApprovalState;
    let g = gate_with(json!({}));
    let arguments = json!({"amount": 120, "to_account": "ACC-2", "from_account": "ACC-1"});
    let expected = toolgate::digest::json_sha256(&arguments);
    let request = || Request::tool("wire_transfer", arguments.clone(), PAYMENTS).at(NOW as u64);
    let refused = request().decide_with(&g, |_| {});
    assert_eq!(
        refused.typed.reason.map(Reason::code),
        Some("approval_required")
    );
    let approve = refused
        .typed
        .approval
        .as_ref()
        .and_then(|a| a.approve.as_ref());
    assert_eq!(
        approve.and_then(|a| a["args_digest"].as_str()),
        Some(expected.as_str())
    );
    assert_eq!(
        refused.typed.arguments_digest.as_deref(),
        Some(expected.as_str())
    );
    let approval = encode_pairs(&[
        (b"iss", b"https://approvals.toolgate.test"),
        (b"sub", PAYMENTS.as_bytes()),
        (b"server", b"tools"),
        (b"tool", b"wire_transfer"),
        (b"args_digest", expected.as_bytes()),
        (b"approver", b"alice"),
    ]);
    let approved = request().decide_with(&g, |input| {
        input.approval = ApprovalState::from_envoy(Some(&approval), None)
    });
    assert_eq!(approved.outcome, Outcome::Allow, "{:?}", approved.typed);
    assert!(approved
        .typed
        .approval
        .is_some_and(|a| a.approver.is_some()));
    assert_eq!(
        approved.typed.arguments_digest.as_deref(),
        Some(expected.as_str())
    );
}

fn revocation_gate() -> Gate {
    gate_with(json!({
        "revocation": {"controllers": ["spiffe://toolgate.test/controller"], "ttl_seconds": 60}}))
}

fn control(gate: &Gate, peer: &str, method: &str, body: &[u8]) -> toolgate::gate::Verdict {
    Request::new(method, "/.toolgate/revoke", body, Some(peer))
        .at(NOW as u64)
        .verdict_with(gate, |_| {})
}

#[test]
fn only_controllers_revoke_and_revocations_expire() {
    use toolgate::enforce::Action;
    let g = revocation_gate();
    let ok = control(
        &g,
        "spiffe://toolgate.test/controller",
        "POST",
        br#"{"task": "T-7", "jti": "j-1"}"#,
    );
    assert!(matches!(ok.action, Action::Respond { status: 200, .. }));
    let keys: Vec<&str> = ok.writes.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(
        keys,
        ["toolgate/revoked/task/T-7", "toolgate/revoked/jti/j-1"]
    );
    assert_eq!(ok.writes[0].value, (NOW + 60).to_string().into_bytes());
    let stranger = control(&g, READER, "POST", br#"{"task": "T-7"}"#);
    assert!(matches!(
        stranger.action,
        Action::Respond { status: 403, .. }
    ));
    assert!(stranger.writes.is_empty());
    for bad in [
        &br#"{"task": ""}"#[..],
        b"{}",
        br#"{"task": 7}"#,
        br#"{"user": "x"}"#,
        b"nope",
    ] {
        let v = control(&g, "spiffe://toolgate.test/controller", "POST", bad);
        assert!(
            matches!(v.action, Action::Respond { status: 400, .. }),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    // A request whose task is revoked is refused until the entry expires.
    let headers: Vec<Header> = vec![
        (":method".into(), b"POST".to_vec()),
        (":path".into(), b"/mcp".to_vec()),
        ("x-agent-task".into(), b"T-7".to_vec()),
    ];
    assert_eq!(
        g.revocation_keys(&headers, &TokenState::Absent),
        ["toolgate/revoked/task/T-7"]
    );
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file"}}"#;
    let mut request = Request::new("POST", "/mcp", &body[..], Some(READER)).at(NOW as u64);
    request.headers = headers.clone();
    let decide = |stored: &str| {
        let decided = request.decide_with(&g, |input| {
            input.revocations = vec![(
                "toolgate/revoked/task/T-7".into(),
                stored.as_bytes().to_vec(),
            )]
        });
        decided.typed.reason.map(Reason::code)
    };
    assert_eq!(decide(&(NOW + 30).to_string()), Some("revoked"));
    assert_eq!(decide(&(NOW - 1).to_string()), None);
    // An unreadable entry fails closed, as every corrupt shared state does
    // (tests/shared_state.rs checks the error names the key).
    assert_eq!(decide("garbage"), Some("internal_error"));
}
