//! Configuration and policy loading: what is refused at configure time, and how the error reads.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::json;
use toolgate::Gate;

fn refused(config: &str) -> String {
    match Gate::configure(config.as_bytes(), 0) {
        Ok(_) => panic!("configuration accepted: {config}"),
        Err(e) => e,
    }
}

#[test]
fn empty_configuration_means_defaults() {
    let gate = Gate::configure(b"", 0).expect("defaults");
    assert_eq!(
        gate.policy_count(),
        toolgate::policy::EMBEDDED_POLICIES
            .iter()
            .map(|s| s.text.matches("@id(").count())
            .sum::<usize>()
    );
    assert_eq!(gate.policy_version().len(), 16);
}

#[test]
fn malformed_json_and_unknown_fields_are_refused() {
    assert!(refused("{\"trust_domains\": [").contains("line 1 column"));
    assert!(refused("{\"trust_domain\": []}").contains("unknown field `trust_domain`"));
    assert!(refused("{\"trust_domains\": [\"spiffe://x\"]}").contains("not a trust domain"));
    assert!(refused("{\"headers\": {\"intent\": \"X-Intent\"}}").contains("lower-case"));
    assert!(refused("{\"dev_identity_header\": \"x-toolgate-id\"}").contains("reserved prefix"));
}

#[test]
fn policy_syntax_errors_name_the_source_line_and_column() {
    let config = json!({"policies": {"cedar": "permit(principal, action, resource);\n\nforbid(principal, action resource);"}});
    let error = refused(&config.to_string());
    assert!(
        error.starts_with("plugin configuration `policies.cedar`:3:"),
        "{error}"
    );
}

#[test]
fn errors_in_concatenated_files_name_the_file_and_its_line() {
    let cedar = "// file: a.cedar\npermit(principal, action, resource);\n// file: b.cedar\n\nforbid(principal, action resource);\n";
    let error = refused(&json!({"policies": {"cedar": cedar}}).to_string());
    assert!(
        error.starts_with("plugin configuration `policies.cedar`:5:26 (b.cedar:2:26): "),
        "{error}"
    );
}

#[test]
fn schema_violations_name_the_policy_and_suggest_a_fix() {
    let policy = "@id(\"typo\")\npermit(principal, action == Toolgate::Action::\"tools/call\", resource)\nwhen { resource.sensitivty == \"low\" };";
    let error = refused(&json!({"policies": {"cedar": policy}}).to_string());
    assert!(error.contains("`policies.cedar`:3:"), "{error}");
    assert!(error.contains("typo"), "{error}");
}

#[test]
fn duplicate_policy_ids_are_refused() {
    let policy = "@id(\"forbid-critical-tools\")\npermit(principal, action, resource);";
    let error = refused(&json!({"policies": {"cedar": policy}}).to_string());
    assert!(
        error.contains("already used in policies/guardrails.cedar"),
        "{error}"
    );
}

#[test]
fn entities_are_checked_against_the_schema() {
    let entities =
        json!([{"uid": {"type": "Toolgate::Tool", "id": "x/y"}, "attrs": {}, "parents": []}]);
    let error = refused(&json!({"policies": {"entities": entities}}).to_string());
    assert!(
        error.starts_with("plugin configuration `policies.entities`"),
        "{error}"
    );
    assert!(error.contains("sensitivity"), "{error}");
}

#[test]
fn replace_mode_needs_a_schema_and_can_be_empty() {
    assert!(
        refused("{\"policies\": {\"mode\": \"replace\"}}").contains("policies.schema is missing")
    );
    let schema = toolgate::policy::EMBEDDED_SCHEMA.text;
    let arguments = toolgate::policy::EMBEDDED_ARGUMENTS_SCHEMA.text;
    let gate = Gate::configure(
        json!({"policies": {"mode": "replace", "schema": schema, "arguments_schema": arguments}})
            .to_string()
            .as_bytes(),
        0,
    )
    .expect("an empty policy set is allowed (and denies everything)");
    assert_eq!(gate.policy_count(), 0);
}

#[test]
fn the_same_policies_have_the_same_version_in_every_build() {
    // Each Envoy worker builds its own store: they must all name the set alike.
    let versions: Vec<String> = (0..8)
        .map(|seed| {
            Gate::configure(b"{\"credentials\": {}}", seed)
                .expect("defaults")
                .policy_version()
                .to_owned()
        })
        .collect();
    assert!(versions.iter().all(|v| v == &versions[0]), "{versions:?}");
}

#[test]
fn extended_policies_change_the_version() {
    let base = Gate::configure(b"{}", 0).expect("base");
    let extended = Gate::configure(
        json!({"policies": {"cedar": "@id(\"extra\") permit(principal, action, resource) when { context.server == \"none\" };"}})
            .to_string()
            .as_bytes(),
        0,
    )
    .expect("extended");
    assert_ne!(base.policy_version(), extended.policy_version());
    assert_eq!(extended.policy_count(), base.policy_count() + 1);
}

#[test]
fn the_version_names_the_content_not_how_it_was_delivered() {
    use toolgate::policy::{EMBEDDED_ARGUMENTS_SCHEMA, EMBEDDED_POLICIES, EMBEDDED_SCHEMA};
    let embedded = Gate::configure(b"{}", 0).expect("defaults");
    // What scripts/reload sends over ECDS: the same files, joined into one text.
    let joined = |policies: String| {
        let config = json!({"policies": {
            "mode": "replace",
            "cedar": policies,
            "schema": EMBEDDED_SCHEMA.text,
            "arguments_schema": EMBEDDED_ARGUMENTS_SCHEMA.text,
        }});
        Gate::configure(config.to_string().as_bytes(), 0).expect("replaced")
    };
    let files: Vec<String> = EMBEDDED_POLICIES
        .iter()
        .rev()
        .map(|s| format!("// file: {}\n{}\n", s.name, s.text))
        .collect();
    assert_eq!(
        joined(files.concat()).policy_version(),
        embedded.policy_version()
    );
    let changed = files.concat().replace("\"critical\"", "\"high\"");
    assert_ne!(changed, files.concat());
    assert_ne!(joined(changed).policy_version(), embedded.policy_version());
}

#[test]
fn templates_are_refused_not_dropped() {
    let error = refused(
        &json!({"policies": {"cedar": "@id(\"per-agent\") permit (principal == ?principal, action, resource);"}})
            .to_string(),
    );
    assert!(error.contains("\"per-agent\" is a template"), "{error}");
    assert!(
        error.contains("plugin configuration `policies.cedar`"),
        "{error}"
    );
}

/// A user's own server, catalog and typed arguments, as `toolgate schema-from-mcp`
/// writes them: nothing embedded may name the demo's tools or read their arguments.
const OWN_ARGUMENTS: &str = "namespace Toolgate { type Arguments = { billing?: { charge?: { amount?: String, customer?: String } } }; }";
const OWN_POLICY: &str = "@id(\"charges-for-acme\") permit (principal, action == Toolgate::Action::\"tools/call\", resource in Toolgate::Server::\"billing\") when { context has arguments.billing.charge.customer && context.arguments.billing.charge.customer == \"acme\" };";

#[test]
fn a_users_own_server_schema_and_policies_start_in_extend_and_replace_mode() {
    let entities = json!([
        {"uid": {"type": "Toolgate::Server", "id": "billing"}, "attrs": {}, "parents": []},
        {"uid": {"type": "Toolgate::Tool", "id": "billing/charge"}, "attrs": {"sensitivity": "high"},
         "parents": [{"type": "Toolgate::Server", "id": "billing"}]}
    ]);
    let extend = json!({"server": "billing", "credentials": {}, "history": {}, "policies": {
        "cedar": OWN_POLICY, "arguments_schema": OWN_ARGUMENTS, "entities": entities}});
    let gate = Gate::configure(extend.to_string().as_bytes(), 0).unwrap_or_else(|e| panic!("{e}"));
    assert!(gate.policy_count() > 1, "the guardrails are there too");
    let replace = json!({"server": "billing", "policies": {"mode": "replace",
        "schema": toolgate::policy::EMBEDDED_SCHEMA.text,
        "cedar": OWN_POLICY, "arguments_schema": OWN_ARGUMENTS, "entities": entities}});
    let gate = Gate::configure(replace.to_string().as_bytes(), 0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gate.policy_count(), 1);
}

#[test]
fn the_embedded_policies_name_no_demo_agent_server_or_tool() {
    use toolgate::policy::{EMBEDDED_POLICIES, FEATURE_POLICIES};
    for source in EMBEDDED_POLICIES.iter().chain(FEATURE_POLICIES) {
        for demo in [
            "AgentGroup::",
            "Agent::",
            "Server::",
            "Tool::",
            "Route::",
            "context.arguments",
        ] {
            assert!(
                !source.text.contains(demo),
                "{} names {demo}: demo rules belong in examples/demo/",
                source.name
            );
        }
    }
}
