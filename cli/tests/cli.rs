//! The `toolgate` binary end to end: real files in, exit codes and output checked.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use toolgate::gate::Input;
use toolgate::http::HttpRequest;
use toolgate::identity::Peer;
use toolgate::Gate;

fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo")
}

/// Runs the CLI; returns (exit code, stdout + stderr).
fn toolgate(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_toolgate"))
        .args(args)
        .output()
        .expect("runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// A scratch copy of the shipped policy folder (top-level files only).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("toolgate-cli-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("mkdir");
    for entry in fs::read_dir(policies()).expect("policies") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            fs::copy(&path, dir.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    dir
}

fn append(path: &Path, text: &str) {
    let mut current = fs::read_to_string(path).expect("read");
    current.push_str(text);
    fs::write(path, current).expect("write");
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn validate_accepts_the_shipped_policies() {
    let (code, out) = toolgate(&["validate", "--policies", s(&policies())]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("policy version"), "{out}");
}

#[test]
fn validate_names_the_file_line_and_fix() {
    let dir = scratch("invalid");
    let file = dir.join("default.cedar");
    let lines = fs::read_to_string(&file).expect("read").lines().count();
    append(
        &file,
        "\n@id(\"typo\")\npermit (principal, action == Toolgate::Action::\"tools/call\", resource)\nwhen { context.intnet == \"read\" };\n",
    );
    let (code, out) = toolgate(&["validate", "--policies", s(&dir)]);
    assert_eq!(code, 1, "{out}");
    let expected = format!("default.cedar:{}:", lines + 4);
    assert!(out.contains(&expected), "want {expected} in {out}");
    assert!(out.contains("intent"), "suggests the fix: {out}");

    append(&file, "\npermit (principal, action, resource) when {");
    let (code, out) = toolgate(&["validate", "--policies", s(&dir)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("default.cedar:"), "{out}");
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn the_shipped_cases_pass_and_a_wrong_expectation_fails_with_a_diff() {
    let (code, out) = toolgate(&["test", "--policies", s(&policies())]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(" 0 failed"), "{out}");

    let dir = scratch("cases");
    let case = dir.join("wrong.json");
    fs::write(
        &case,
        json!({
            "config": {"trust_domains": ["toolgate.test"], "server": "tools"},
            "cases": [{
                "name": "a reader refunds",
                "request": {
                    "peer": "spiffe://toolgate.test/agent/reader",
                    "body": {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                             "params": {"name": "refund", "arguments": {"amount": 1}}}
                },
                "expect": {"decision": "allow", "policies": ["payments-small-refunds"]}
            }]
        })
        .to_string(),
    )
    .expect("write");
    let (code, out) = toolgate(&["test", "--policies", s(&dir), s(&case)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL  a reader refunds"), "{out}");
    assert!(
        out.contains("decision: expected allow, got deny (reason not_permitted)"),
        "{out}"
    );
    assert!(
        out.contains("policies: expected [\"payments-small-refunds\"], got []"),
        "{out}"
    );
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn explain_shows_the_context_and_exits_by_decision() {
    let dir = scratch("explain");
    let request = |amount: i64| {
        let path = dir.join(format!("refund-{amount}.json"));
        fs::write(
            &path,
            json!({
                "peer": "spiffe://toolgate.test/agent/payments",
                "body": {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                         "params": {"name": "refund", "arguments": {"amount": amount}}}
            })
            .to_string(),
        )
        .expect("write");
        path
    };
    let config = dir.join("config.json");
    fs::write(
        &config,
        r#"{"trust_domains": ["toolgate.test"], "server": "tools"}"#,
    )
    .expect("write");
    let small = request(10);
    let (code, out) = toolgate(&[
        "explain",
        "--policies",
        s(&dir),
        "--config",
        s(&config),
        s(&small),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("decision        allow"), "{out}");
    assert!(out.contains("payments-small-refunds"), "{out}");
    assert!(
        out.contains("\"amount\": 10"),
        "the context shows the arguments: {out}"
    );
    let large = request(1000);
    let (code, out) = toolgate(&[
        "explain",
        "--policies",
        s(&dir),
        "--config",
        s(&config),
        s(&large),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("decision        deny (not_permitted)"),
        "{out}"
    );
    assert!(out.contains("response        403"), "{out}");
    let (code, out) = toolgate(&[
        "explain",
        "--policies",
        s(&dir),
        "--config",
        s(&config),
        "--json",
        s(&large),
    ]);
    assert_eq!(code, 1, "{out}");
    let record: Value = serde_json::from_str(&out).expect("--json prints the decision record");
    assert_eq!(
        record["cedar"]["context"]["arguments"]["tools"]["refund"]["amount"],
        1000
    );
    let (code, out) = toolgate(&[
        "explain",
        "--policies",
        s(&dir),
        s(&dir.join("missing.json")),
    ]);
    assert_eq!(code, 2, "{out}");
    let _ = fs::remove_dir_all(dir);
}

/// The demo folder as the plugin configuration's `policies`, as scripts/lib/ecds.py publishes it.
fn demo_policies() -> Value {
    let read = |name: &str| fs::read_to_string(policies().join(name)).expect("demo file");
    let cedar: String = ["default.cedar", "rates.cedar"]
        .iter()
        .map(|name| format!("// file: {name}\n{}", read(name)))
        .collect();
    let entities: Value = serde_json::from_str(&read("entities.json")).expect("json");
    json!({"mode": "extend", "cedar": cedar, "arguments_schema": read("arguments.cedarschema"), "entities": entities})
}

/// Decision records as the filter writes them, for three calls and one identity refusal.
fn decision_log(log_arguments: bool) -> String {
    let gate = Gate::configure(
        json!({"trust_domains": ["toolgate.test"], "server": "tools", "log_arguments": log_arguments, "policies": demo_policies()})
            .to_string()
            .as_bytes(),
        1,
    )
    .expect("gate");
    let calls = [
        (
            "spiffe://toolgate.test/agent/reader",
            "read_file",
            json!({"path": "a"}),
        ),
        (
            "spiffe://toolgate.test/agent/payments",
            "refund",
            json!({"amount": 50}),
        ),
        (
            "spiffe://toolgate.test/agent/payments",
            "refund",
            json!({"amount": 500}),
        ),
        (
            "spiffe://elsewhere.test/agent/x",
            "read_file",
            json!({"path": "a"}),
        ),
    ];
    let mut log = String::new();
    for (peer, tool, arguments) in calls {
        let headers = vec![
            (":method".to_owned(), b"POST".to_vec()),
            (":path".to_owned(), b"/mcp".to_vec()),
            ("content-type".to_owned(), b"application/json".to_vec()),
        ];
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                          "params": {"name": tool, "arguments": arguments}})
        .to_string();
        let peer = Peer::with_uri_san(peer);
        let input = Input::new(
            HttpRequest {
                headers: &headers,
                body: body.as_bytes(),
            },
            &peer,
            0,
        );
        log.push_str(&gate.decide(&input, &|| 0).record);
        log.push('\n');
    }
    log
}

#[test]
fn replay_lists_the_decisions_a_new_policy_set_would_change() {
    let dir = scratch("replay");
    let log = dir.join("decisions.log");
    fs::write(&log, decision_log(true)).expect("write");

    let (code, out) = toolgate(&["replay", "--policies", s(&dir), s(&log)]);
    assert_eq!(code, 0, "the same policies change nothing: {out}");
    assert!(out.contains("unchanged           3"), "{out}");
    assert!(out.contains("1 refused before policy evaluation"), "{out}");

    append(
        &dir.join("default.cedar"),
        "\n@id(\"no-reading\")\nforbid (principal, action == Toolgate::Action::\"tools/call\", resource == Toolgate::Tool::\"tools/read_file\");\n\
         @id(\"large-refunds\")\npermit (principal in Toolgate::AgentGroup::\"payments\", action == Toolgate::Action::\"tools/call\", resource == Toolgate::Tool::\"tools/refund\");\n",
    );
    let (code, out) = toolgate(&["replay", "--policies", s(&dir), s(&log)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("allow -> deny       1"), "{out}");
    assert!(out.contains("deny -> allow       1"), "{out}");
    assert!(
        out.contains("now: forbidden_by_policy by no-reading"),
        "{out}"
    );
    assert!(
        out.contains("tools/refund  now: permitted by large-refunds"),
        "{out}"
    );

    let (code, out) = toolgate(&["replay", "--policies", s(&dir), "--json", s(&log)]);
    assert_eq!(code, 1, "{out}");
    let summary: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(summary["changes"].as_array().map(Vec::len), Some(2));

    // Without logged arguments, calls whose policies read them cannot be replayed honestly.
    fs::write(&log, decision_log(false)).expect("write");
    let (code, out) = toolgate(&["replay", "--policies", s(&dir), s(&log)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("2 with arguments not logged"), "{out}");
    assert!(out.contains("allow -> deny       1"), "{out}");
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn schema_from_mcp_reproduces_the_committed_fragment() {
    let tools = policies().join("mcp/tools.json");
    let (code, out) = toolgate(&["schema-from-mcp", s(&tools)]);
    assert_eq!(code, 0, "{out}");
    let committed = fs::read_to_string(policies().join("arguments.cedarschema")).expect("read");
    assert!(
        out.starts_with(&committed),
        "stdout is the committed fragment:\n{out}"
    );
    assert!(
        !out.contains("warning: "),
        "every argument is typed (a `number` as a decimal): {out}"
    );
}

#[test]
fn a_server_typing_amount_as_text_makes_the_refund_policy_invalid() {
    let dir = scratch("typed");
    let tools = dir.join("tools.json");
    let catalog = dir.join("catalog.json");
    fs::write(
        &tools,
        json!({"tools": [
            {"name": "refund", "inputSchema": {"type": "object",
                "properties": {"amount": {"type": "string"}, "order_id": {"type": "string"}}}},
            {"name": "read_file", "inputSchema": {"type": "object",
                "properties": {"path": {"type": "string"}}}}
        ]})
        .to_string(),
    )
    .expect("write");
    let (code, fragment) = toolgate(&["schema-from-mcp", "--entities", s(&catalog), s(&tools)]);
    assert_eq!(code, 0, "{fragment}");
    let catalog: Value =
        serde_json::from_str(&fs::read_to_string(&catalog).expect("catalog")).expect("json");
    assert_eq!(catalog[0]["uid"]["id"], "tools/read_file");
    let fragment: String = fragment
        .lines()
        .filter(|l| !l.starts_with("wrote "))
        .collect::<Vec<_>>()
        .join("\n");
    fs::write(dir.join("arguments.cedarschema"), fragment).expect("write");
    let (code, out) = toolgate(&["validate", "--policies", s(&dir)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("default.cedar:"), "{out}");
    assert!(out.contains("payments-small-refunds"), "{out}");

    // Two tools declaring one argument with different types: each keeps its own.
    fs::write(
        &tools,
        json!({"tools": [
            {"name": "a", "inputSchema": {"type": "object", "properties": {"amount": {"type": "string"}}}},
            {"name": "b", "inputSchema": {"type": "object", "properties": {"amount": {"type": "integer"}}}}
        ]})
        .to_string(),
    )
    .expect("write");
    let (code, out) = toolgate(&["schema-from-mcp", s(&tools)]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("      a?: {\n        amount?: String,\n"),
        "{out}"
    );
    assert!(
        out.contains("      b?: {\n        amount?: Long,\n"),
        "{out}"
    );
    let _ = fs::remove_dir_all(dir);
}
