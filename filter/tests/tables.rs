//! The tables the code declares once (refusal reasons, actions, record fields) and
//! what the docs and the Cedar model say of them must agree; a drift fails here.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::collections::BTreeSet;

use toolgate::action::{Action, Level};
use toolgate::reason::{Class, Reason};
use toolgate::record::DecisionRecord;

fn decision_log_doc() -> String {
    include_str!("../../docs/decision-log.md").to_owned()
}

/// The rows of the Markdown table under `heading` whose first cell is a `code` name.
fn table_rows(doc: &str, heading: &str) -> Vec<Vec<String>> {
    let section = doc
        .split("\n## ")
        .chain(doc.split("\n### "))
        .find(|s| s.starts_with(heading))
        .unwrap_or_else(|| panic!("docs/decision-log.md has no section {heading:?}"));
    section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            line.trim_matches('|')
                .split(" | ")
                .map(|cell| cell.trim().trim_matches('`').to_owned())
                .collect()
        })
        .collect()
}

#[test]
fn the_reason_table_in_the_docs_is_the_code_s() {
    let rows = table_rows(&decision_log_doc(), "Responses");
    let documented: BTreeSet<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    let declared: BTreeSet<&str> = Reason::ALL.iter().map(|r| r.code()).collect();
    assert_eq!(
        documented, declared,
        "docs/decision-log.md's reason table must list exactly the reasons in filter/src/reason.rs"
    );
    for row in &rows {
        let reason = Reason::from_code(&row[0]).expect("a known reason");
        let class = match reason.class() {
            Class::Policy => "policy",
            Class::Identity => "identity",
            Class::Protocol => "protocol",
            Class::Internal => "internal",
        };
        let counter = if reason.is_policy_decision() {
            "deny"
        } else {
            "error"
        };
        let want = [
            reason.code().to_owned(),
            class.to_owned(),
            reason.http_status().to_string(),
            reason.jsonrpc_code().to_string(),
            counter.to_owned(),
        ];
        assert_eq!(
            row.get(..5),
            Some(&want[..]),
            "docs/decision-log.md: the row for `{}` must say: {}",
            reason.code(),
            want.join(" | ")
        );
    }
}

#[test]
fn reasons_have_distinct_codes_and_read_back_from_them() {
    let codes: BTreeSet<&str> = Reason::ALL.iter().map(|r| r.code()).collect();
    assert_eq!(codes.len(), Reason::ALL.len(), "two reasons share a code");
    for &reason in Reason::ALL {
        assert_eq!(Reason::from_code(reason.code()), Some(reason));
        let json = serde_json::to_string(&reason).expect("serializes");
        assert_eq!(json, format!("\"{}\"", reason.code()));
        assert_eq!(serde_json::from_str::<Reason>(&json).ok(), Some(reason));
        // A fail-open route lets only these through: never a policy's or identity's no.
        let lets_through = matches!(reason.class(), Class::Protocol | Class::Internal);
        assert_eq!(lets_through, !reason.is_policy_decision(), "{reason:?}");
    }
    assert!(serde_json::from_str::<Reason>("\"no_such_reason\"").is_err());
}

#[test]
fn the_record_field_table_in_the_docs_is_the_record_type() {
    let rows = table_rows(&decision_log_doc(), "Decision log");
    let documented: BTreeSet<String> = rows.iter().map(|r| r[0].clone()).collect();
    let fields: BTreeSet<String> = DecisionRecord::field_names().into_iter().collect();
    assert!(fields.len() > 30, "{fields:?}");
    assert_eq!(
        documented, fields,
        "docs/decision-log.md's field table must list exactly DecisionRecord's fields (filter/src/record.rs)"
    );
}

#[test]
fn every_field_is_on_every_line() {
    // The shortest record there is, toolgate's own failure, has them all.
    let verdict = toolgate::gate::internal_failure("the host call failed", 1);
    let line: serde_json::Value = serde_json::from_str(&verdict.record.to_json()).expect("JSON");
    let keys: BTreeSet<String> = line.as_object().expect("object").keys().cloned().collect();
    assert_eq!(keys, DecisionRecord::field_names().into_iter().collect());
}

#[test]
fn the_action_table_is_the_cedar_model_s() {
    let schema = toolgate::policy::EMBEDDED_SCHEMA.text;
    for &action in Action::ALL {
        assert_eq!(Action::from_id(action.id()), Some(action));
        let quoted = format!("\"{}\"", action.id());
        let declaration = schema
            .lines()
            .find(|line| line.trim_start().starts_with("action ") && line.contains(&quoted))
            .unwrap_or_else(|| {
                panic!(
                    "{}: no action {quoted}",
                    toolgate::policy::EMBEDDED_SCHEMA.name
                )
            });
        let group = match action.level() {
            Level::Session => Some("in [session]"),
            Level::Discovery => Some("in [discovery]"),
            Level::Tasks => Some("in [tasks]"),
            Level::A2aMessages => Some("in [a2a_messages]"),
            Level::A2aTasks => Some("in [a2a_tasks]"),
            Level::A2aDiscovery => Some("in [a2a_discovery]"),
            Level::Call | Level::Server => None,
        };
        match group {
            Some(group) => assert!(declaration.contains(group), "{quoted} must be {group}"),
            None => assert!(!declaration.contains(" in ["), "{quoted} is in no group"),
        }
    }
}
