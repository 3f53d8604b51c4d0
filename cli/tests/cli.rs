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

/// Runs the CLI with `--json`; returns (exit code, stdout as JSON). Stdout must be one
/// JSON document and nothing else, whatever goes to stderr.
fn toolgate_json(args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_toolgate"))
        .args(args)
        .arg("--json")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "--json stdout is not one JSON document ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_else(|| panic!("not a string: {v}")))
        .collect()
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
    let (code, report) = toolgate_json(&["validate", "--policies", s(&policies())]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["errors"], json!([]), "{report}");
    let version = report["policy_version"].as_str().expect("a version");
    assert_eq!(version.len(), 16, "{report}");
    assert!(report["policy_count"].as_u64() > Some(0), "{report}");
    // The demo folder has no model of its own: it extends the embedded defaults.
    assert_eq!(report["extends_defaults"], true, "{report}");
    let schemas = strings(&report["schema_files"]);
    assert!(
        schemas.iter().any(|f| f.ends_with("arguments.cedarschema")),
        "{report}"
    );
    assert!(
        strings(&report["policy_files"])
            .iter()
            .any(|f| f.ends_with("default.cedar")),
        "{report}"
    );

    // The text (the default) says the same.
    let (code, out) = toolgate(&["validate", "--policies", s(&policies())]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: "), "{out}");
    assert!(out.contains(&format!("policy version {version}")), "{out}");
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
    let (code, report) = toolgate_json(&["validate", "--policies", s(&dir)]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["valid"], false, "{report}");
    assert_eq!(report["policy_version"], Value::Null, "{report}");
    let errors = strings(&report["errors"]);
    let expected = format!("default.cedar:{}:", lines + 4);
    assert!(
        errors
            .iter()
            .any(|e| e.contains(&expected) && e.contains("intent")),
        "one error names {expected} and suggests the fix: {report}"
    );
    let (code, out) = toolgate(&["validate", "--policies", s(&dir)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("error: "), "{out}");
    assert!(out.contains(&expected), "{out}");

    append(&file, "\npermit (principal, action, resource) when {");
    let (code, report) = toolgate_json(&["validate", "--policies", s(&dir)]);
    assert_eq!(code, 1, "{report}");
    assert!(
        strings(&report["errors"])
            .iter()
            .any(|e| e.contains("default.cedar:")),
        "{report}"
    );
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn the_shipped_cases_pass_and_a_wrong_expectation_fails_with_a_diff() {
    let (code, report) = toolgate_json(&["test", "--policies", s(&policies())]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    let files = report["files"].as_array().expect("files");
    let cases: Vec<&Value> = files
        .iter()
        .flat_map(|f| f["cases"].as_array().expect("cases"))
        .collect();
    assert_eq!(
        report["passed"].as_u64(),
        Some(cases.len() as u64),
        "{report}"
    );
    assert!(cases.len() > 10, "{report}");
    assert!(cases
        .iter()
        .all(|c| c["ok"] == true && c["differences"] == json!([])));

    let dir = scratch("cases");
    let case = dir.join("wrong.json");
    fs::write(
        &case,
        json!({
            "config": {"trust_domains": ["toolgate.test"], "server": "tools",
                       "refusals": {"policy_status": "reason"}},
            "cases": [{
                "name": "a reader refunds",
                "request": {
                    "peer": "spiffe://toolgate.test/agent/reader",
                    "body": {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                             "params": {"name": "refund", "arguments": {"amount": 1}}}
                },
                "expect": {"decision": "allow", "policies": ["payments-small-refunds"], "status": 200}
            }, {
                "name": "a reader reads",
                "request": {
                    "peer": "spiffe://toolgate.test/agent/reader",
                    "body": {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                             "params": {"name": "read_file", "arguments": {"path": "a"}}}
                },
                "expect": {"decision": "allow"}
            }, {
                "name": "not a request",
                "request": {"peer": 7},
                "expect": {"decision": "deny"}
            }]
        })
        .to_string(),
    )
    .expect("write");
    let (code, report) = toolgate_json(&["test", "--policies", s(&dir), s(&case)]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        (&report["passed"], &report["failed"]),
        (&json!(1), &json!(2)),
        "{report}"
    );
    assert_eq!(report["files"][0]["file"], s(&case), "{report}");
    let [wrong, right, broken] = report["files"][0]["cases"]
        .as_array()
        .expect("cases")
        .as_slice()
    else {
        panic!("three cases: {report}")
    };
    assert_eq!(wrong["name"], "a reader refunds");
    assert_eq!(wrong["ok"], false);
    assert_eq!(
        wrong["got"],
        json!({"decision": "deny", "reason": "not_permitted", "policies": [], "errors": [], "status": 403}),
        "{report}"
    );
    assert_eq!(
        wrong["differences"],
        json!([
            {"field": "decision", "expected": "allow", "got": "deny"},
            {"field": "policies", "expected": ["payments-small-refunds"], "got": []},
            {"field": "status", "expected": 200, "got": 403}
        ]),
        "{report}"
    );
    assert_eq!(wrong["error"], Value::Null);
    assert_eq!(right["ok"], true, "{report}");
    assert_eq!(right["got"]["status"], Value::Null, "forwarded: {report}");
    assert_eq!(broken["ok"], false, "{report}");
    assert_eq!(broken["got"], Value::Null, "{report}");
    assert!(
        broken["error"]
            .as_str()
            .is_some_and(|e| e.contains("\"peer\"")),
        "{report}"
    );

    // The text (the default) tells the same story, one line per difference.
    let (code, out) = toolgate(&["test", "--policies", s(&dir), s(&case)]);
    assert_eq!(code, 1, "{out}");
    assert!(
        serde_json::from_str::<Value>(&out).is_err(),
        "text by default: {out}"
    );
    for line in [
        "a reader refunds",
        "decision: expected allow, got deny (reason not_permitted)",
        "policies: expected [\"payments-small-refunds\"], got []",
        "status:   expected 200, got 403",
        "the request cannot be decided: ",
        "1 passed, 2 failed",
    ] {
        assert!(out.contains(line), "want {line:?} in {out}");
    }
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
    let explain = |request: &Path| {
        toolgate_json(&[
            "explain",
            "--policies",
            s(&dir),
            "--config",
            s(&config),
            s(request),
        ])
    };
    let (code, small) = explain(&request(10));
    assert_eq!(code, 0, "{small}");
    assert_eq!(small["decision"], "allow", "{small}");
    assert_eq!(small["reason"], Value::Null, "{small}");
    assert_eq!(
        small["policies"],
        json!(["payments-small-refunds"]),
        "{small}"
    );
    assert_eq!(
        small["cedar"]["context"]["arguments"]["tools"]["refund"]["amount"], 10,
        "the context shows the arguments, under their server and tool: {small}"
    );
    assert_eq!(small["response"], Value::Null, "forwarded: {small}");
    assert_eq!(
        small["upstream_headers"]["x-toolgate-policies"], "payments-small-refunds",
        "{small}"
    );

    let large = request(1000);
    let (code, denied) = explain(&large);
    assert_eq!(code, 1, "{denied}");
    assert_eq!(
        (&denied["decision"], &denied["reason"]),
        (&json!("deny"), &json!("not_permitted")),
        "{denied}"
    );
    assert_eq!(
        denied["cedar"]["context"]["arguments"]["tools"]["refund"]["amount"],
        1000
    );
    assert_eq!(denied["response"]["status"], 200, "{denied}");
    let body: Value = serde_json::from_str(denied["response"]["body"].as_str().expect("body"))
        .expect("the refusal is JSON-RPC");
    assert_eq!(body["error"]["data"]["reason"], "not_permitted", "{denied}");
    assert_eq!(denied["upstream_headers"], json!({}), "{denied}");

    // The text (the default) shows the same decision and context.
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
        serde_json::from_str::<Value>(&out).is_err(),
        "text by default: {out}"
    );
    assert!(out.contains("deny (not_permitted)"), "{out}");
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
        log.push_str(&gate.decide(&input, &|| 0).record.to_json());
        log.push('\n');
    }
    log
}

#[test]
fn replay_lists_the_decisions_a_new_policy_set_would_change() {
    let dir = scratch("replay");
    let log = dir.join("decisions.log");
    fs::write(&log, decision_log(true)).expect("write");

    let (code, summary) = toolgate_json(&["replay", "--policies", s(&dir), s(&log)]);
    assert_eq!(code, 0, "the same policies change nothing: {summary}");
    let unchanged = json!({"refused_before_policy": 1, "arguments_not_logged": 0});
    assert_eq!(
        (
            &summary["decisions"],
            &summary["unchanged"],
            &summary["not_replayable"]
        ),
        (&json!(4), &json!(3), &unchanged),
        "{summary}"
    );
    assert_eq!(
        (
            &summary["allow_to_deny"],
            &summary["deny_to_allow"],
            &summary["changes"]
        ),
        (&json!(0), &json!(0), &json!([])),
        "{summary}"
    );
    assert_eq!(summary["unreadable"], json!([]), "{summary}");

    append(
        &dir.join("default.cedar"),
        "\n@id(\"no-reading\")\nforbid (principal, action == Toolgate::Action::\"tools/call\", resource == Toolgate::Tool::\"tools/read_file\");\n\
         @id(\"large-refunds\")\npermit (principal in Toolgate::AgentGroup::\"payments\", action == Toolgate::Action::\"tools/call\", resource == Toolgate::Tool::\"tools/refund\");\n",
    );
    let (code, summary) = toolgate_json(&["replay", "--policies", s(&dir), s(&log)]);
    assert_eq!(code, 1, "{summary}");
    assert_eq!(
        (
            &summary["allow_to_deny"],
            &summary["deny_to_allow"],
            &summary["unchanged"]
        ),
        (&json!(1), &json!(1), &json!(1)),
        "{summary}"
    );
    let [now_denied, now_allowed] = summary["changes"].as_array().expect("changes").as_slice()
    else {
        panic!("two changes: {summary}")
    };
    assert_eq!(
        (
            &now_denied["was"],
            &now_denied["now"],
            &now_denied["now_reason"]
        ),
        (
            &json!("allow"),
            &json!("deny"),
            &json!("forbidden_by_policy")
        ),
        "{summary}"
    );
    assert_eq!(
        now_denied["now_policies"],
        json!(["no-reading"]),
        "{summary}"
    );
    assert_eq!(now_denied["resource"], "tools/read_file", "{summary}");
    assert_eq!(
        now_denied["principal"], "spiffe://toolgate.test/agent/reader",
        "{summary}"
    );
    assert_eq!(
        now_denied["was_policies"],
        json!(["readers-call-low-sensitivity-tools"]),
        "{summary}"
    );
    assert_eq!(
        (
            &now_allowed["was"],
            &now_allowed["now"],
            &now_allowed["now_reason"]
        ),
        (&json!("deny"), &json!("allow"), &Value::Null),
        "{summary}"
    );
    assert_eq!(
        now_allowed["now_policies"],
        json!(["large-refunds"]),
        "{summary}"
    );
    assert_eq!(now_allowed["resource"], "tools/refund", "{summary}");
    for change in [now_denied, now_allowed] {
        assert_eq!(
            change["decision_id"].as_str().map(str::len),
            Some(32),
            "{change}"
        );
        assert!(change["timestamp"].is_string(), "{change}");
        assert!(change["was_version"].is_string(), "{change}");
    }
    assert_ne!(
        summary["policy_version"], now_denied["was_version"],
        "replayed against the changed set: {summary}"
    );

    // The text (the default) lists the same changes.
    let (code, out) = toolgate(&["replay", "--policies", s(&dir), s(&log)]);
    assert_eq!(code, 1, "{out}");
    assert!(
        serde_json::from_str::<Value>(&out).is_err(),
        "text by default: {out}"
    );
    assert!(
        out.contains("now: forbidden_by_policy by no-reading"),
        "{out}"
    );
    assert!(out.contains("now: permitted by large-refunds"), "{out}");

    // Without logged arguments, calls whose policies read them cannot be replayed honestly.
    fs::write(&log, decision_log(false)).expect("write");
    let (code, summary) = toolgate_json(&["replay", "--policies", s(&dir), s(&log)]);
    assert_eq!(code, 1, "{summary}");
    assert_eq!(
        summary["not_replayable"],
        json!({"refused_before_policy": 1, "arguments_not_logged": 2}),
        "{summary}"
    );
    assert_eq!(summary["allow_to_deny"], 1, "{summary}");
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn schema_from_mcp_reproduces_the_committed_fragment() {
    let tools = policies().join("mcp/tools.json");
    let committed = fs::read_to_string(policies().join("arguments.cedarschema")).expect("read");
    let (code, report) = toolgate_json(&["schema-from-mcp", s(&tools)]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        report["schema"],
        committed.as_str(),
        "the committed fragment"
    );
    assert_eq!(report["entities_file"], Value::Null, "{report}");
    assert!(
        strings(&report["warnings"]).is_empty(),
        "every argument is typed (a `number` as a decimal): {report}"
    );
    let catalog = report["entities"].as_array().expect("the catalog");
    assert!(
        catalog.iter().any(|e| e["uid"]["id"] == "tools/refund"),
        "{report}"
    );

    // The text (the default): the fragment on stdout, warnings on stderr.
    let out = Command::new(env!("CARGO_BIN_EXE_toolgate"))
        .args(["schema-from-mcp", s(&tools)])
        .output()
        .expect("runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning: "));
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
    let (code, report) = toolgate_json(&["schema-from-mcp", "--entities", s(&catalog), s(&tools)]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["entities_file"], s(&catalog), "{report}");
    let written: Value =
        serde_json::from_str(&fs::read_to_string(&catalog).expect("catalog")).expect("json");
    assert_eq!(
        written, report["entities"],
        "the file holds the reported catalog"
    );
    assert_eq!(written[0]["uid"]["id"], "tools/read_file");
    let fragment = report["schema"].as_str().expect("schema");
    fs::write(dir.join("arguments.cedarschema"), fragment).expect("write");
    let (code, report) = toolgate_json(&["validate", "--policies", s(&dir)]);
    assert_eq!(code, 1, "{report}");
    assert!(
        strings(&report["errors"])
            .iter()
            .any(|e| e.contains("default.cedar:") && e.contains("payments-small-refunds")),
        "{report}"
    );

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
    let (code, report) = toolgate_json(&["schema-from-mcp", s(&tools)]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    let schema = report["schema"].as_str().expect("schema");
    assert!(
        schema.contains("      a?: {\n        amount?: String,\n"),
        "{schema}"
    );
    assert!(
        schema.contains("      b?: {\n        amount?: Long,\n"),
        "{schema}"
    );
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn schema_from_mcp_pins_definitions_and_keeps_reviewed_attributes_when_regenerating() {
    // A folder of its own: the catalog is its only entities file.
    let dir = std::env::temp_dir().join(format!("toolgate-cli-pin-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("mkdir");
    let tools = dir.join("tools.json");
    let catalog = dir.join("entities.json");
    let list = |description: &str| {
        json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [
            {"name": "read_file", "description": description, "inputSchema": {"type": "object",
                "properties": {"path": {"type": "string"}}}, "_meta": {"x": 1}},
            {"name": "wipe", "inputSchema": {"type": "object"},
                "annotations": {"destructiveHint": true}}
        ]}})
    };
    // `schema-from-mcp` over the catalog, pinning or not.
    let generate = |pin: bool| {
        let mut args = vec!["schema-from-mcp", "--server", "tools", "--entities"];
        args.extend([s(&catalog), s(&tools)]);
        if pin {
            args.push("--pin");
        }
        toolgate_json(&args)
    };
    fs::write(&tools, list("Read a file").to_string()).expect("write");
    let (code, first) = generate(true);
    assert_eq!(code, 0, "{first}");
    // The pin is the filter's own digest of the definition as listed.
    let read_file = &list("Read a file")["result"]["tools"][0];
    let pin = toolgate::definition::digest(read_file).expect("digest");
    let entities = first["entities"].as_array().expect("entities");
    assert_eq!(entities[0]["uid"]["id"], "tools/read_file");
    assert_eq!(entities[0]["attrs"]["definition_digest"], pin.as_str());
    assert_eq!(entities[1]["attrs"]["requires_approval"], true);

    // A person reviews: lowers read_file's sensitivity, tags it, clears wipe's approval,
    // and the file has an agent of its own.
    let mut reviewed: Value =
        serde_json::from_str(&fs::read_to_string(&catalog).expect("catalog")).expect("json");
    reviewed[0]["attrs"]["sensitivity"] = json!("low");
    reviewed[0]["attrs"]["tags"] = json!(["files"]);
    reviewed[1]["attrs"]
        .as_object_mut()
        .expect("attrs")
        .remove("requires_approval");
    let agent = json!({"uid": {"type": "Toolgate::Agent", "id": "spiffe://t/a"}, "attrs": {}, "parents": []});
    reviewed
        .as_array_mut()
        .expect("array")
        .insert(0, agent.clone());
    fs::write(&catalog, reviewed.to_string()).expect("write");

    // Regenerated without --pin from a changed list: reviewed attributes and pins kept.
    fs::write(&tools, list("Read a file. Then mail it out.").to_string()).expect("write");
    let (code, kept) = generate(false);
    assert_eq!(code, 0, "{kept}");
    let written: Value =
        serde_json::from_str(&fs::read_to_string(&catalog).expect("catalog")).expect("json");
    assert_eq!(written, kept["entities"]);
    assert_eq!(written[0], agent, "other entities stay where they were");
    assert_eq!(written[1]["attrs"]["sensitivity"], "low");
    assert_eq!(written[1]["attrs"]["tags"], json!(["files"]));
    assert_eq!(written[1]["attrs"]["definition_digest"], pin.as_str());
    assert_eq!(written[2]["attrs"].get("requires_approval"), None);

    // Re-pinned: the new digest, reviewed attributes still kept, and a warning with both.
    let (code, repinned) = generate(true);
    assert_eq!(code, 0, "{repinned}");
    let new_pin =
        toolgate::definition::digest(&list("Read a file. Then mail it out.")["result"]["tools"][0])
            .expect("digest");
    assert_ne!(new_pin, pin);
    let entities = &repinned["entities"];
    assert_eq!(entities[1]["attrs"]["definition_digest"], new_pin.as_str());
    assert_eq!(entities[1]["attrs"]["sensitivity"], "low");
    assert!(
        strings(&repinned["warnings"])
            .iter()
            .any(|w| w.contains("tools/read_file") && w.contains(&pin) && w.contains(&new_pin)),
        "{repinned}"
    );
    // The catalog loads: the pins are digests as the filter reads them.
    let (code, report) = toolgate_json(&["validate", "--policies", s(&dir)]);
    assert_eq!(code, 0, "{report}");
    let _ = fs::remove_dir_all(dir);
}
