//! List filtering against exhaustive evaluation: on generated policy sets, each tool's
//! listing verdict is checked against real `tools/call` decisions (`Gate::decide`) over a
//! finite domain of arguments that covers every constant the policies mention, values
//! around them, absent arguments, extremes and ill-typed values:
//! - a hidden tool has no permitted call (never hide a callable tool);
//! - a tool listed without argument conditions is permitted for every well-typed call;
//! - a tool listed with verified conditions has a permitted call;
//! - exact conditions predict every well-typed call's decision: reading `allow_if` and
//!   `deny_if` as documented (docs/lists.md) gives the gate's answer;
//! - the approval condition is there exactly when a permitted call needs an approval.
//!
//! A small seeded PRNG keeps it dependency-free and reproducible: a failure prints its seed.

mod kit;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use cedar_policy::{
    PolicySet, Schema, SchemaFragment, ValidationMode, ValidationWarning, Validator,
};
use kit::{Request, Rng};
use serde_json::{json, Value};
use toolgate::gate::{Input, Outcome};
use toolgate::http::HttpRequest;
use toolgate::listing::{ListMethod, META_KEY};
use toolgate::policy::EMBEDDED_SCHEMA;
use toolgate::Gate;

#[cfg(not(target_arch = "wasm32"))]
const SETS: u64 = 100;
#[cfg(target_arch = "wasm32")]
const SETS: u64 = 30;
const PRINCIPALS_PER_SET: usize = 3;

const ARGUMENTS: &str = "namespace Toolgate { type Arguments = {
    s1?: { t0?: { amount?: Long, name?: String }, t1?: { amount?: Long, flag?: Bool }, t2?: { score?: decimal } },
}; }";
const AGENTS: &[&str] = &[
    "spiffe://t.test/agent/a0",
    "spiffe://t.test/agent/a1",
    "spiffe://t.test/agent/a2",
    "spiffe://t.test/agent/a9",
];
const TOOLS: &[&str] = &["t0", "t1", "t2", "t9"];
const LONGS: &[i64] = &[0, 5, 100];

fn uid(ty: &str, id: &str) -> String {
    format!("Toolgate::{ty}::{}", json!(id))
}

fn entities(rng: &mut Rng) -> Value {
    let mut all = vec![
        json!({"uid": {"type": "Toolgate::AgentGroup", "id": "g1"}, "attrs": {}, "parents": []}),
        json!({"uid": {"type": "Toolgate::AgentGroup", "id": "g2"}, "attrs": {}, "parents": []}),
        json!({"uid": {"type": "Toolgate::Server", "id": "s1"}, "attrs": {}, "parents": []}),
    ];
    for agent in &AGENTS[..3] {
        let parents: Vec<Value> = ["g1", "g2"]
            .iter()
            .filter(|_| rng.chance(50))
            .map(|g| json!({"type": "Toolgate::AgentGroup", "id": g}))
            .collect();
        all.push(json!({"uid": {"type": "Toolgate::Agent", "id": agent}, "attrs": {}, "parents": parents}));
    }
    for tool in ["t0", "t1", "t2"] {
        let mut attrs = json!({"sensitivity": rng.pick(&["low", "low", "medium", "critical"])});
        if rng.chance(25) {
            attrs["requires_approval"] = json!(true);
        }
        all.push(
            json!({"uid": {"type": "Toolgate::Tool", "id": format!("s1/{tool}")}, "attrs": attrs,
                        "parents": [{"type": "Toolgate::Server", "id": "s1"}]}),
        );
    }
    Value::Array(all)
}

fn condition(rng: &mut Rng) -> String {
    let op = rng.pick(&["<", "<=", ">", ">=", "==", "!="]);
    let c = rng.pick(LONGS);
    match rng.below(16) {
        0..=2 => {
            let tool = rng.pick(&["t0", "t1"]);
            format!("context has arguments.s1.{tool}.amount && context.arguments.s1.{tool}.amount {op} {c}")
        }
        3 => {
            let tool = rng.pick(&["t0", "t1"]);
            format!("!(context has arguments.s1.{tool}.amount) || context.arguments.s1.{tool}.amount {op} {c}")
        }
        4 => format!(
            "context has arguments.s1.t0.name && context.arguments.s1.t0.name {} \"x\"",
            rng.pick(&["==", "!="])
        ),
        5 => "context has arguments.s1.t0.name && context.arguments.s1.t0.name like \"a*\"".into(),
        6 => "context has arguments.s1.t1.flag && context.arguments.s1.t1.flag".into(),
        7 => format!(
            "context has arguments.s1.t2.score && context.arguments.s1.t2.score.{}(decimal(\"0.5\"))",
            rng.pick(&["lessThan", "greaterThanOrEqual"])
        ),
        8 => "context has arguments.s1.t0.amount".into(),
        9 => "context has arguments.s1.t0.amount && context.arguments.s1.t0.amount + 9223372036854775800 > 0".into(),
        10 => "context has arguments.s1.t1".into(),
        11 => format!("principal in {}", uid("AgentGroup", rng.pick(&["g1", "g2"]))),
        12 => "context has intent && context.intent == \"read\"".into(),
        13 => "resource has sensitivity && resource.sensitivity == \"low\"".into(),
        14 => format!(
            "context has arguments.s1.t0.amount && context.arguments.s1.t0.amount {op} {c} && context has arguments.s1.t0.name"
        ),
        _ => "context has task".into(),
    }
}

fn policy(rng: &mut Rng, n: usize) -> String {
    let effect = if rng.chance(35) { "forbid" } else { "permit" };
    let principal = match rng.below(5) {
        0 | 1 => "principal".to_owned(),
        2 => format!("principal == {}", uid("Agent", rng.pick(AGENTS))),
        3 => format!(
            "principal in {}",
            uid("AgentGroup", rng.pick(&["g1", "g2"]))
        ),
        _ => "principal is Toolgate::Agent".to_owned(),
    };
    let action = match rng.chance(80) {
        true => "action == Toolgate::Action::\"tools/call\"".to_owned(),
        false => "action".to_owned(),
    };
    let resource = match rng.below(5) {
        0 | 1 => format!(
            "resource == {}",
            uid("Tool", &format!("s1/{}", rng.pick(TOOLS)))
        ),
        2 => format!("resource in {}", uid("Server", "s1")),
        3 => "resource is Toolgate::Tool".to_owned(),
        _ => "resource".to_owned(),
    };
    let mut text = format!("@id(\"p{n}\")\n{effect} ({principal}, {action}, {resource})");
    for _ in 0..rng.below(3) {
        let keyword = if rng.chance(20) { "unless" } else { "when" };
        text.push_str(&format!(" {keyword} {{ {} }}", condition(rng)));
    }
    text.push_str(";\n");
    text
}

fn gate(rng: &mut Rng, validator: &Validator) -> (Gate, String) {
    let mut cedar = String::new();
    let count = 1 + rng.below(8);
    let mut n = 0;
    while n < count {
        let text = policy(rng, n);
        let set: PolicySet = text.parse().unwrap_or_else(|e| panic!("{e}: {text}"));
        let result = validator.validate(&set, ValidationMode::Strict);
        let never = result.validation_warnings().any(|w| {
            matches!(
                w,
                ValidationWarning::ImpossiblePolicy(_)
                    | ValidationWarning::InvalidActionApplication(_)
            )
        });
        if result.validation_passed() && !never {
            cedar.push_str(&text);
            n += 1;
        }
    }
    let mut policies =
        json!({"cedar": cedar, "entities": entities(rng), "arguments_schema": ARGUMENTS});
    if rng.chance(50) {
        policies["mode"] = json!("replace");
        policies["schema"] = json!(EMBEDDED_SCHEMA.text);
    }
    let config = json!({"trust_domains": ["t.test"], "server": "s1", "policies": policies});
    let gate = kit::configure(&config, 1).unwrap_or_else(|e| panic!("{e}\n{cedar}"));
    (gate, cedar)
}

/// The argument domain per tool: every constant the generator uses, one below and
/// above, absent, extremes, and ill-typed values.
fn domain(tool: &str) -> Vec<Option<Value>> {
    let amounts: Vec<Option<Value>> = [None]
        .into_iter()
        .chain([-1, 0, 1, 4, 5, 6, 99, 100, 101, i64::MAX, i64::MIN].map(|n| Some(json!(n))))
        .chain([Some(json!("ten"))])
        .collect();
    let names = [
        None,
        Some(json!("x")),
        Some(json!("a")),
        Some(json!("ab")),
        Some(json!("q")),
        Some(json!("")),
    ];
    let flags = [None, Some(json!(true)), Some(json!(false))];
    let scores = [
        None,
        Some(json!(0.4999)),
        Some(json!(0.5)),
        Some(json!(0.5001)),
        Some(json!(0)),
        Some(json!(-3)),
    ];
    let record = |pairs: &[(&str, &Option<Value>)]| {
        let mut fields = serde_json::Map::new();
        for (key, value) in pairs {
            if let Some(v) = value {
                fields.insert((*key).to_owned(), v.clone());
            }
        }
        Some(Value::Object(fields))
    };
    let mut all = vec![None];
    match tool {
        "t0" => {
            for a in &amounts {
                for n in &names {
                    all.push(record(&[("amount", a), ("name", n)]));
                }
            }
        }
        "t1" => {
            for a in &amounts {
                for f in &flags {
                    all.push(record(&[("amount", a), ("flag", f)]));
                }
            }
        }
        "t2" => all.extend(scores.iter().map(|s| record(&[("score", s)]))),
        _ => all.push(record(&[("amount", &Some(json!(5)))])),
    }
    all
}

fn well_typed(arguments: &Option<Value>) -> bool {
    arguments
        .as_ref()
        .is_none_or(|a| a.get("amount") != Some(&json!("ten")))
}

/// `allow_if`/`deny_if` as docs/lists.md defines them: a test on an argument is false
/// when the argument is not given.
fn holds(cond: &Value, arguments: &Value) -> bool {
    if let Some(items) = cond.get("all_of").and_then(Value::as_array) {
        return items.iter().all(|c| holds(c, arguments));
    }
    if let Some(items) = cond.get("any_of").and_then(Value::as_array) {
        return items.iter().any(|c| holds(c, arguments));
    }
    let arg = cond["arg"].as_str().expect("arg");
    let op = cond["op"].as_str().expect("op");
    let value = arguments.get(arg);
    match (op, value) {
        ("given", v) => v.is_some(),
        ("not_given", v) => v.is_none(),
        (_, None) => false,
        ("like", Some(v)) => glob(
            cond["value"].as_str().expect("pattern"),
            v.as_str().expect("string"),
        ),
        ("not_like", Some(v)) => !glob(
            cond["value"].as_str().expect("pattern"),
            v.as_str().expect("string"),
        ),
        (op, Some(v)) => {
            let expected = &cond["value"];
            let ordering = match (v, expected) {
                (Value::Number(a), Value::Object(d)) => {
                    let b: f64 = d["decimal"]
                        .as_str()
                        .expect("decimal")
                        .parse()
                        .expect("decimal");
                    a.as_f64().expect("number").partial_cmp(&b)
                }
                (Value::Number(a), Value::Number(b)) => a
                    .as_i64()
                    .expect("long")
                    .partial_cmp(&b.as_i64().expect("long")),
                (a, b) => (a == b).then_some(std::cmp::Ordering::Equal),
            };
            match op {
                "==" => ordering == Some(std::cmp::Ordering::Equal),
                "!=" => ordering != Some(std::cmp::Ordering::Equal),
                "<" => ordering == Some(std::cmp::Ordering::Less),
                "<=" => matches!(
                    ordering,
                    Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
                ),
                ">" => ordering == Some(std::cmp::Ordering::Greater),
                ">=" => matches!(
                    ordering,
                    Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
                ),
                other => panic!("op {other}"),
            }
        }
    }
}

fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            text.starts_with(head)
                && (head.len()..=text.len())
                    .any(|i| text.is_char_boundary(i) && glob(rest, &text[i..]))
        }
    }
}

#[test]
fn listing_agrees_with_exhaustive_calls() {
    let fragments = [EMBEDDED_SCHEMA.text, ARGUMENTS].map(|text| {
        SchemaFragment::from_cedarschema_str(text)
            .expect("fragment")
            .0
    });
    let validator = Validator::new(Schema::from_schema_fragments(fragments).expect("schema"));
    let tools: Vec<Value> = TOOLS.iter().map(|t| json!({"name": t})).collect();
    let (
        mut hidden,
        mut plain,
        mut conditional,
        mut unverified,
        mut exact,
        mut approval,
        mut calls,
    ) = (0, 0, 0, 0, 0, 0, 0);
    for seed in 0..SETS {
        let mut rng = Rng(seed);
        let (gate, cedar) = gate(&mut rng, &validator);
        for _ in 0..PRINCIPALS_PER_SET {
            let agent = rng.pick(AGENTS);
            let intent = rng.chance(50);
            let task = rng.chance(30);
            let headers = |mut r: Request| {
                if intent {
                    r = r.header("x-agent-intent", "read");
                }
                if task {
                    r = r.header("x-agent-task", "T-1");
                }
                r
            };
            let list = headers(Request::post(
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
                Some(agent),
            ));
            let input = Input::new(
                HttpRequest {
                    headers: &list.headers,
                    body: &list.body,
                },
                &list.peer,
                list.unix_nanos,
            );
            let filtered = gate
                .filter_list(&input, ListMethod::Tools, &tools)
                .expect("filtered");
            let rewritten = filtered.rewrite(tools.clone());
            for tool in TOOLS {
                let mut permitted = Vec::new();
                let mut all_well_typed_permitted = true;
                let mut needs_approval = false;
                let mut decisions = Vec::new();
                for arguments in domain(tool) {
                    let body = match &arguments {
                        Some(a) => {
                            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": a}})
                        }
                        None => {
                            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool}})
                        }
                    };
                    let decided = headers(Request::post(body, Some(agent))).decide(&gate);
                    calls += 1;
                    let ok = decided.outcome == Outcome::Allow
                        || decided.reason() == "approval_required";
                    needs_approval |= decided.reason() == "approval_required";
                    if ok {
                        permitted.push(arguments.clone());
                    } else if well_typed(&arguments) {
                        all_well_typed_permitted = false;
                    }
                    decisions.push((arguments, ok, decided.reason().to_owned()));
                }
                let context = || {
                    format!("seed {seed}, agent {agent}, intent {intent}, task {task}, tool {tool}\n{cedar}\nfiltered: {filtered:#?}\ndecisions: {decisions:?}")
                };
                let kept = filtered.kept.iter().find(|k| k.name == *tool);
                let Some(kept) = kept else {
                    hidden += 1;
                    assert!(permitted.is_empty(), "hid a callable tool: {}", context());
                    continue;
                };
                let item = rewritten
                    .iter()
                    .find(|i| i["name"] == *tool)
                    .expect("rewritten");
                let meta = &item["_meta"][META_KEY];
                let conditions = kept.conditions.as_ref();
                let flagged = conditions.is_some_and(|c| c.approval);
                assert!(
                    !needs_approval || flagged,
                    "approval not said: {}",
                    context()
                );
                assert!(
                    !flagged || permitted.is_empty() || needs_approval,
                    "approval said: {}",
                    context()
                );
                approval += usize::from(needs_approval);
                match conditions.and_then(|c| c.arguments.as_ref()) {
                    None => {
                        plain += 1;
                        assert!(
                            all_well_typed_permitted,
                            "listed without conditions, but some call is refused: {}",
                            context()
                        );
                        assert!(meta.get("allow_if").is_none() && meta.get("deny_if").is_none());
                    }
                    Some(arguments) if arguments.verified => {
                        conditional += 1;
                        assert!(
                            !permitted.is_empty(),
                            "listed with conditions no call meets: {}",
                            context()
                        );
                        if arguments.exact {
                            exact += 1;
                            for (args, ok, _) in &decisions {
                                let Some(args) = args.as_ref().filter(|_| well_typed(args)) else {
                                    continue;
                                };
                                let allow = meta.get("allow_if").is_none_or(|c| holds(c, args));
                                let deny = meta.get("deny_if").is_some_and(|c| holds(c, args));
                                assert_eq!(
                                    allow && !deny,
                                    *ok,
                                    "conditions {meta} mispredict {args}: {}",
                                    context()
                                );
                            }
                        }
                    }
                    Some(_) => {
                        unverified += 1;
                        assert_eq!(meta["verified"], json!(false));
                    }
                }
            }
        }
    }
    eprintln!("{calls} calls decided; tools: {hidden} hidden, {plain} listed plainly, {conditional} with verified conditions ({exact} exact), {unverified} unverified, {approval} needing approval");
    // Each kind of verdict must be exercised; the floors are per 100 sets (fewer run in wasm).
    let floor = |per_100: u64| (per_100 * SETS / 100) as usize;
    assert!(
        hidden > floor(50)
            && plain > floor(50)
            && conditional > floor(50)
            && exact > floor(30)
            && approval > floor(10),
        "too few of some verdict over {SETS} sets"
    );
}
