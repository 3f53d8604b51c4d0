//! Condition guards (`guard`): which leading tests of a policy the index reads, and
//! what they come to on a context, including the cases where Cedar errs and the
//! policy must stay (the property test in `slicing.rs` checks whole decisions).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use cedar_policy::{Authorizer, Context, Entities, EntityUid, Policy, PolicySet, Request};
use serde_json::json;
use toolgate::cedar_value::CedarValue;
use toolgate::guard::{ContextSource, Guard, Literal, Lookup, Selection};

fn guard(text: &str) -> Option<Guard> {
    Guard::of(&Policy::parse(None, text).expect("policy"))
}

/// The guard's selection on this context, read from Cedar's context and from the
/// context as toolgate builds it (`CedarValue`s), which must agree.
fn select(text: &str, context: serde_json::Value) -> Selection {
    let guard = guard(text).expect("a guard");
    let built = match &context {
        serde_json::Value::Object(fields) => fields
            .iter()
            .map(|(k, v)| (k.as_str().into(), value(v)))
            .collect::<Vec<_>>(),
        _ => panic!("a context is an object"),
    };
    let context = Context::from_json_value(context, None).expect("context");
    let from_cedar = Lookup::new(Some((&context).into())).select(&guard.shape);
    let from_built = Lookup::new(Some(ContextSource::Built(&built))).select(&guard.shape);
    assert_eq!(from_built, from_cedar, "{text}");
    from_cedar
}

/// A JSON context value (with Cedar's `__entity` escape) as toolgate builds it.
fn value(json: &serde_json::Value) -> CedarValue {
    use serde_json::Value;
    match json {
        Value::Bool(b) => CedarValue::Bool(*b),
        Value::Number(n) => CedarValue::Long(n.as_i64().expect("a long")),
        Value::String(s) => CedarValue::string(s.as_str()),
        Value::Array(items) => CedarValue::set(items.iter().map(value)),
        Value::Object(fields) => match fields.get("__entity") {
            Some(uid) => CedarValue::Entity(EntityUid::from_json(uid.clone()).expect("uid")),
            None => CedarValue::record(fields.iter().map(|(k, v)| (k.as_str().into(), value(v)))),
        },
        Value::Null => panic!("no null in a context"),
    }
}

/// Cedar's own answer for the policy alone: (decision is allow, errors).
fn cedar(text: &str, context: serde_json::Value) -> (bool, usize) {
    let set: PolicySet = text.parse().expect("policy set");
    let request = Request::new(
        r#"Toolgate::Agent::"a""#.parse().expect("uid"),
        r#"Toolgate::Action::"tools/call""#.parse().expect("uid"),
        r#"Toolgate::Tool::"s/t""#.parse().expect("uid"),
        Context::from_json_value(context, None).expect("context"),
        None,
    )
    .expect("request");
    let response = Authorizer::new().is_authorized(&request, &set, &Entities::empty());
    (
        response.decision() == cedar_policy::Decision::Allow,
        response.diagnostics().errors().count(),
    )
}

const KEYED: &str = r#"permit (principal, action, resource) when { context has arguments.s.t.path && context.arguments.s.t.path == "/secret/1" && context.arguments.s.t.n > 1 };"#;

#[test]
fn the_last_equality_is_keyed_by_its_literal() {
    let guard = guard(KEYED).expect("a guard");
    assert_eq!(guard.literal, Some(Literal::String("/secret/1".into())));
    assert_eq!(guard.shape.before.len(), 1, "{guard:?}");
    // The same shape with another literal is the same group.
    let other = guard_text("/secret/2");
    assert_eq!(other.shape, guard.shape);
    assert_eq!(
        select(
            KEYED,
            json!({"arguments": {"s": {"t": {"path": "/x", "n": 2}}}})
        ),
        Selection::Literal(Some(Literal::String("/x".into())))
    );
}

fn guard_text(literal: &str) -> Guard {
    guard(&KEYED.replace("/secret/1", literal)).expect("a guard")
}

#[test]
fn a_has_that_is_false_drops_the_policy_as_cedar_does() {
    let context = json!({"arguments": {"s": {}}});
    assert_eq!(select(KEYED, context.clone()), Selection::None);
    assert_eq!(cedar(KEYED, context), (false, 0));
    assert_eq!(select(KEYED, json!({})), Selection::None);
}

#[test]
fn where_cedar_errs_the_policy_is_kept() {
    // No `has`: reading a missing attribute is an error Cedar reports.
    let bare = r#"forbid (principal, action, resource) when { context.intent == "x" };"#;
    assert_eq!(select(bare, json!({})), Selection::All);
    assert_eq!(cedar(bare, json!({})).1, 1);
    // `has` on something that is not a record is an error too.
    let on_string =
        r#"forbid (principal, action, resource) when { context.a has b && context.a.b == 1 };"#;
    assert_eq!(select(on_string, json!({"a": "text"})), Selection::All);
    assert_eq!(cedar(on_string, json!({"a": "text"})).1, 1);
    // An entity's attributes live in the entity store, which the index does not read.
    let entity =
        r#"forbid (principal, action, resource) when { context has e.x && context.e.x == 1 };"#;
    let with_entity = json!({"e": {"__entity": {"type": "Toolgate::Agent", "id": "a"}}});
    assert_eq!(select(entity, with_entity), Selection::All);
}

#[test]
fn a_value_of_another_type_equals_no_literal() {
    let amount =
        r#"forbid (principal, action, resource) when { context has n && context.n == 3 };"#;
    assert_eq!(
        select(amount, json!({"n": "3"})),
        Selection::Literal(Some(Literal::String("3".into())))
    );
    assert_eq!(select(amount, json!({"n": [3]})), Selection::Literal(None));
    assert_eq!(cedar(amount, json!({"n": [3]})), (false, 0));
}

#[test]
fn only_leading_tests_of_a_first_when_are_guards() {
    let unguarded = [
        r#"permit (principal, action, resource) unless { context has a };"#,
        r#"permit (principal, action, resource) when { context.n > 1 && context has a };"#,
        r#"permit (principal, action, resource) when { context has a || context has b };"#,
        r#"permit (principal, action, resource) when { principal == resource };"#,
        r#"permit (principal, action, resource);"#,
    ];
    for text in unguarded {
        assert!(guard(text).is_none(), "{text}");
    }
    // Literal on the left, and a `has` alone, are guards too.
    assert!(
        guard(r#"permit (principal, action, resource) when { "x" == context.intent };"#).is_some()
    );
    assert_eq!(
        select(
            r#"permit (principal, action, resource) when { context has task };"#,
            json!({"task": "t"})
        ),
        Selection::Holds
    );
}

#[test]
fn a_context_with_unknowns_decides_nothing() {
    let guard = guard(KEYED).expect("a guard");
    assert_eq!(Lookup::new(None).select(&guard.shape), Selection::All);
}

#[test]
fn a_built_decimal_equals_no_literal_and_an_unknown_keeps_the_policy() {
    let amount =
        r#"forbid (principal, action, resource) when { context has n && context.n == 3 };"#;
    let shape = guard(amount).expect("a guard").shape;
    let select = |value: CedarValue| {
        let built = [("n".into(), value)];
        Lookup::new(Some(ContextSource::Built(&built))).select(&shape)
    };
    // Cedar's `==` between a decimal and a Long is false, without error.
    let decimal = json!({"n": {"__extn": {"fn": "decimal", "arg": "3.0000"}}});
    assert_eq!(cedar(amount, decimal), (false, 0));
    assert_eq!(
        select(CedarValue::Decimal("3.0000".into())),
        Selection::Literal(None)
    );
    // An unknown (partial evaluation) could be anything: nothing is left out.
    assert_eq!(select(CedarValue::Unknown("n".into())), Selection::All);
}
