//! Which context attributes a policy reads (`context_keys`): what Cedar is given of the context.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use cedar_policy::Policy;
use smol_str::SmolStr;
use toolgate::context_keys::ContextKeys;

fn keys(text: &str) -> ContextKeys {
    ContextKeys::of(&Policy::parse(None, text).expect("policy"))
}

fn only(names: &[&str]) -> ContextKeys {
    ContextKeys::Only(names.iter().copied().map(SmolStr::new).collect())
}

#[test]
fn attributes_read_by_name_index_and_has() {
    let policy = r#"forbid(principal, action, resource) when {
        context.intent == "x" && context["task"] like "T-*" &&
        (context has token && context.token.scopes.contains("admin"))
    } unless { context has arguments.s.t };"#;
    assert_eq!(
        keys(policy),
        only(&["arguments", "intent", "task", "token"])
    );
}

#[test]
fn no_condition_reads_nothing() {
    assert_eq!(keys("permit(principal, action, resource);"), only(&[]));
}

#[test]
fn the_context_as_a_whole_reads_everything() {
    let policy = r#"permit(principal, action, resource) when { context == {"a": 1} };"#;
    assert_eq!(keys(policy), ContextKeys::All);
    let policy = r#"permit(principal, action, resource) when { [context].contains({}) };"#;
    assert_eq!(keys(policy), ContextKeys::All);
}

#[test]
fn a_record_literal_shaped_like_an_access_is_not_one() {
    let policy = r#"permit(principal, action, resource) when {
        context.a == {".": {"left": context, "attr": "b"}}
    };"#;
    assert_eq!(keys(policy), ContextKeys::All);
}

#[test]
fn unions() {
    let union = ContextKeys::union([&only(&["b", "a"]), &only(&["c"])]);
    assert!(union.reads("a") && union.reads("c") && !union.reads("d"));
    assert_eq!(
        ContextKeys::union([&only(&["a"]), &ContextKeys::All]),
        ContextKeys::All
    );
}
