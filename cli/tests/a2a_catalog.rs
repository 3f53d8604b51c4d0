//! `schema-from-a2a`: an agent card becomes a Server and its Skills, entities the filter
//! accepts and policies can name; bad cards are refused with the file and the skill.

use std::fs;
use std::process::Command;

use serde_json::{json, Value};
use toolgate_cli::a2a_catalog::entities;

/// An agent card as A2A v0.3 and v1.0 SDKs serve it (the fields the catalog reads).
fn card() -> Value {
    json!({
        "name": "Payments agent",
        "protocolVersion": "0.3.0",
        "url": "https://payments.example/a2a",
        "skills": [
            {"id": "refund", "name": "Refund a payment", "tags": ["money", "write"], "description": "x"},
            {"id": "balance", "name": "Read a balance"}
        ]
    })
}

#[test]
fn the_card_becomes_a_server_and_its_skills() {
    let out = entities(
        "payments",
        "payments.json",
        &card(),
        &["external".to_owned()],
    )
    .expect("generated");
    assert_eq!(
        out,
        vec![
            json!({"uid": {"type": "Toolgate::Server", "id": "payments"}, "attrs": {"tags": ["a2a", "external"]}, "parents": []}),
            json!({"uid": {"type": "Toolgate::Skill", "id": "payments/refund"}, "attrs": {"name": "Refund a payment", "tags": ["money", "write"]},
                   "parents": [{"type": "Toolgate::Server", "id": "payments"}]}),
            json!({"uid": {"type": "Toolgate::Skill", "id": "payments/balance"}, "attrs": {"name": "Read a balance"},
                   "parents": [{"type": "Toolgate::Server", "id": "payments"}]}),
        ]
    );
    // The filter accepts them as its catalog, and a policy can read them.
    let policy = r#"
        @id("no-a2a-egress-after-secret-read")
        forbid (principal, action in Toolgate::Action::"a2a_messages", resource)
        when { resource has tags && resource.tags.contains("external") && context has session && context.session.tags.contains("secret") };
        @id("skills-of-payments")
        permit (principal, action in Toolgate::Action::"a2a_messages", resource)
        when { Toolgate::Skill::"payments/refund" in resource };
    "#;
    let config = json!({
        "trust_domains": ["toolgate.test"],
        "a2a": {"jsonrpc_paths": ["/a2a"]},
        "policies": {"cedar": policy, "entities": out},
    });
    toolgate::Gate::configure(config.to_string().as_bytes(), 1).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn bad_cards_are_refused_with_where() {
    let cases = [
        ("pay ments", card(), "server name"),
        ("payments", json!([]), "a JSON object"),
        ("payments", json!({"skills": {}}), "must be an array"),
        (
            "payments",
            json!({"skills": [{"name": "x"}]}),
            "skills[0]: a skill needs an `id`",
        ),
        (
            "payments",
            json!({"skills": [{"id": "a b"}]}),
            "skills[0]: skill id \"a b\"",
        ),
        (
            "payments",
            json!({"skills": [{"id": "a"}, {"id": "a"}]}),
            "skills[1]: skill id \"a\" is listed twice",
        ),
        (
            "payments",
            json!({"skills": [{"id": "a", "tags": [1]}]}),
            "`tags` must be strings",
        ),
    ];
    for (server, card, says) in cases {
        let error = entities(server, "card.json", &card, &[]).expect_err("refused");
        assert!(
            error.starts_with("card.json: ") && error.contains(says),
            "{error}"
        );
    }
}

#[test]
fn the_command_prints_the_catalog() {
    let dir = std::env::temp_dir().join(format!("toolgate-a2a-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("payments.json");
    fs::write(&file, card().to_string()).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_toolgate"))
        .args(["schema-from-a2a", "--tag", "external", "--json"])
        .arg(&file)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(report["ok"], true);
    assert_eq!(
        report["entities"][0]["attrs"]["tags"],
        json!(["a2a", "external"])
    );
    assert_eq!(report["entities"][1]["uid"]["id"], "payments/refund");
    // Without --json: the entities themselves, named after the file.
    let out = Command::new(env!("CARGO_BIN_EXE_toolgate"))
        .args(["schema-from-a2a"])
        .arg(&file)
        .output()
        .expect("runs");
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON entities");
    assert_eq!(
        printed[0]["uid"],
        json!({"type": "Toolgate::Server", "id": "payments"})
    );
    // A card that is not JSON: exit 2, naming the file.
    fs::write(&file, "{").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_toolgate"))
        .args(["schema-from-a2a"])
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("payments.json: not JSON"));
    let _ = fs::remove_dir_all(dir);
}
