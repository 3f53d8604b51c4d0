//! Slicing never changes a decision: for random policy sets and random requests,
//! Cedar on `PolicyStore::policies_for(..)` gives the same decision, determining
//! policies and errors (in the same order) as Cedar on every policy, natively and in wasm.
//!
//! The policy sets mix every scope toolgate's index keys on (any, `==`, `in`,
//! `is`, `is .. in`, action groups) for principal, action and resource, with
//! conditions that hold, fail or error; the requests mix known and unknown agents
//! and resources, the unauthenticated principal, every action, and contexts with
//! and without intent, task and (sometimes ill-typed) arguments. A small seeded
//! PRNG keeps it dependency-free and reproducible: a failure prints its seed.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

mod kit;

use kit::Rng;

use cedar_policy::{
    Authorizer, Decision, PolicySet, Response, Schema, SchemaFragment, ValidationMode,
    ValidationWarning, Validator,
};
use serde_json::{json, Value};
use toolgate::authorize;
use toolgate::call::{Call, ResourceKind, RpcMessage};
use toolgate::cedar_request::{self, Facts, Intent};
use toolgate::config::Config;
use toolgate::identity::{Identity, Principal, SpiffeId};
use toolgate::policy::{PolicyStore, CREDENTIAL_POLICIES, EMBEDDED_SCHEMA};

/// Policy sets, and requests per set. Fewer under wasm, where Cedar runs slower.
#[cfg(not(target_arch = "wasm32"))]
const SETS: u64 = 120;
#[cfg(target_arch = "wasm32")]
const SETS: u64 = 40;
const REQUESTS_PER_SET: usize = 30;

const ACTIONS: &[&str] = &[
    "tools/call",
    "prompts/get",
    "resources/read",
    "initialize",
    "ping",
    "notification",
    "response",
    "stream",
    "terminate",
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "rpc",
    "http",
];
const ACTION_GROUPS: &[&str] = &["session", "discovery"];

/// Agents: a0..a3 are in the entity store (in various groups), a4 is in it with no
/// group, a8 and a9 are unknown; the embedded agents exist in `extend` mode only.
const AGENTS: &[&str] = &[
    "spiffe://t.test/agent/a0",
    "spiffe://t.test/agent/a1",
    "spiffe://t.test/agent/a2",
    "spiffe://t.test/agent/a3",
    "spiffe://t.test/agent/a4",
    "spiffe://t.test/agent/a8",
    "spiffe://t.test/agent/a9",
    "spiffe://toolgate.test/agent/reader",
    "spiffe://toolgate.test/agent/writer",
];
const GROUPS: &[&str] = &["g1", "g2", "g3", "readers", "writers", "nobody"];
/// Servers s1 and s2 are in the store, s3 is not.
const SERVERS: &[&str] = &["s1", "s2", "s3", "tools"];
/// (type, id): some in the store (children of their server), some not.
const RESOURCES: &[(&str, &str)] = &[
    ("Tool", "s1/t0"),
    ("Tool", "s1/t1"),
    ("Tool", "s1/t2"),
    ("Tool", "s2/t0"),
    ("Tool", "s1/t9"),
    ("Tool", "s3/t0"),
    ("Tool", "tools/read_file"),
    ("Prompt", "s1/p0"),
    ("Prompt", "s2/p9"),
    ("McpResource", "s1/docs://a"),
    ("McpResource", "s1/file://b"),
    ("Route", "s2/GET /x"),
    ("Route", "s2/POST /x"),
    ("Server", "s1"),
    ("Server", "s2"),
    ("Server", "s3"),
    ("Server", "tools"),
];
const TYPES: &[&str] = &[
    "Agent",
    "AgentGroup",
    "Unauthenticated",
    "Server",
    "Tool",
    "Prompt",
    "McpResource",
    "Route",
];

/// The arguments the conditions read, typed per server and tool as toolgate types them.
const ARGUMENTS: &str = "namespace Toolgate { type Arguments = {
    s1?: { t0?: { amount?: Long, path?: String, rate?: decimal }, t1?: { amount?: Long }, t9?: { amount?: Long } },
    s2?: { t0?: { amount?: Long } },
    s3?: { t0?: { amount?: Long } },
}; }";
/// The tools [`ARGUMENTS`] types, as `context.arguments` paths.
const TYPED_TOOLS: &[&str] = &["s1.t0", "s1.t1", "s1.t9", "s2.t0", "s3.t0"];

fn uid(ty: &str, id: &str) -> String {
    format!("Toolgate::{ty}::{}", json!(id))
}

/// The configured entities, with random group memberships and tool sensitivities.
fn entities(rng: &mut Rng) -> Value {
    let mut all = Vec::new();
    for group in ["g1", "g2", "g3"] {
        all.push(json!({"uid": {"type": "Toolgate::AgentGroup", "id": group}, "attrs": {}, "parents": []}));
    }
    for agent in &AGENTS[..4] {
        let parents: Vec<Value> = ["g1", "g2", "g3"]
            .iter()
            .filter(|_| rng.chance(50))
            .map(|g| json!({"type": "Toolgate::AgentGroup", "id": g}))
            .collect();
        all.push(json!({"uid": {"type": "Toolgate::Agent", "id": agent}, "attrs": {}, "parents": parents}));
    }
    all.push(
        json!({"uid": {"type": "Toolgate::Agent", "id": AGENTS[4]}, "attrs": {}, "parents": []}),
    );
    for server in ["s1", "s2"] {
        all.push(
            json!({"uid": {"type": "Toolgate::Server", "id": server}, "attrs": {}, "parents": []}),
        );
    }
    let parent =
        |id: &str| json!([{"type": "Toolgate::Server", "id": id.split('/').next().unwrap()}]);
    for tool in ["s1/t0", "s1/t1", "s1/t2", "s2/t0"] {
        let sensitivity = rng.pick(&["low", "medium", "high", "critical"]);
        all.push(json!({"uid": {"type": "Toolgate::Tool", "id": tool}, "attrs": {"sensitivity": sensitivity}, "parents": parent(tool)}));
    }
    all.push(json!({"uid": {"type": "Toolgate::Prompt", "id": "s1/p0"}, "attrs": {}, "parents": parent("s1")}));
    all.push(json!({"uid": {"type": "Toolgate::McpResource", "id": "s1/docs://a"}, "attrs": {}, "parents": parent("s1")}));
    all.push(json!({"uid": {"type": "Toolgate::Route", "id": "s2/GET /x"}, "attrs": {"sensitivity": "low"}, "parents": parent("s2")}));
    Value::Array(all)
}

fn principal_scope(rng: &mut Rng) -> String {
    match rng.below(9) {
        0 | 1 => "principal".into(),
        2 => format!("principal == {}", uid("Agent", rng.pick(AGENTS))),
        3 => format!("principal == {}", uid("Unauthenticated", "anonymous")),
        4 | 5 => format!("principal in {}", uid("AgentGroup", rng.pick(GROUPS))),
        6 => format!("principal in {}", uid("Agent", rng.pick(AGENTS))),
        7 => format!(
            "principal is Toolgate::{}",
            rng.pick(&["Agent", "Unauthenticated", "AgentGroup"])
        ),
        _ => format!(
            "principal is Toolgate::Agent in {}",
            uid("AgentGroup", rng.pick(GROUPS))
        ),
    }
}

fn action_scope(rng: &mut Rng) -> String {
    let action = |rng: &mut Rng| uid("Action", rng.pick(ACTIONS));
    match rng.below(7) {
        0 | 1 => "action".into(),
        2 | 3 => format!("action == {}", action(rng)),
        4 => format!("action in {}", uid("Action", rng.pick(ACTION_GROUPS))),
        _ => {
            let mut items: Vec<String> = (0..1 + rng.below(3)).map(|_| action(rng)).collect();
            if rng.chance(50) {
                items.push(uid("Action", rng.pick(ACTION_GROUPS)));
            }
            format!("action in [{}]", items.join(", "))
        }
    }
}

fn resource_scope(rng: &mut Rng) -> String {
    match rng.below(9) {
        0 | 1 => "resource".into(),
        2 | 3 => {
            let (ty, id) = rng.pick(RESOURCES);
            format!("resource == {}", uid(ty, id))
        }
        4 | 5 => format!("resource in {}", uid("Server", rng.pick(SERVERS))),
        6 => {
            let (ty, id) = rng.pick(RESOURCES);
            format!("resource in {}", uid(ty, id))
        }
        7 => format!("resource is Toolgate::{}", rng.pick(TYPES)),
        _ => format!(
            "resource is Toolgate::{} in {}",
            rng.pick(&["Tool", "Prompt", "McpResource", "Route"]),
            uid("Server", rng.pick(SERVERS))
        ),
    }
}

/// A condition that holds, fails, or errors at run time (an unknown tool's
/// attribute, an argument of the wrong type, an overflow).
fn condition(rng: &mut Rng) -> String {
    let word = rng.pick(&["read", "write", "x"]);
    // Argument conditions weigh more since arguments are per tool: one reads a single tool's.
    match rng.below(29) {
        0 => format!("context has intent && context.intent == \"{word}\""),
        1 => "context has task".into(),
        2 => "context.authenticated".into(),
        3 => "context.insecure_identity".into(),
        4 | 11 | 12 | 15 | 16 => {
            let tool = rng.pick(TYPED_TOOLS);
            format!("context has arguments.{tool}.amount && context.arguments.{tool}.amount > 5")
        }
        5 | 13 | 17 | 18 | 27 | 28 => {
            let tool = rng.pick(TYPED_TOOLS);
            format!("context has arguments.{tool}.amount && context.arguments.{tool}.amount + 9223372036854775800 > 0")
        }
        6 => format!("principal in {}", uid("AgentGroup", rng.pick(GROUPS))),
        7 => "resource has sensitivity && resource.sensitivity == \"low\"".into(),
        8 => format!("context.server == \"{}\"", rng.pick(SERVERS)),
        9 => "context has name && context.name like \"docs://*\"".into(),
        10 => "context has rpc_method && context.rpc_method == \"x/y\"".into(),
        // Equality guards the index keys on, some with an error or more after them.
        19 | 20 => {
            let tool = rng.pick(TYPED_TOOLS);
            let amount = rng.pick(&["3", "50", "-1"]);
            let more = rng.pick(&[
                "",
                " && context.arguments.s1.t0.amount > 1",
                " && context.arguments.s1.t0.amount + 9223372036854775800 > 0",
                " && context has arguments.s1.t0.amount && context.arguments.s1.t0.amount * 9223372036854775807 > 0",
            ]);
            format!("context has arguments.{tool}.amount && context.arguments.{tool}.amount == {amount}{more}")
        }
        21 => "context has task && context.task == \"T-1\" && resource.sensitivity == \"high\"".into(),
        22 => format!("\"{}\" == context.server && context has task", rng.pick(SERVERS)),
        23 => format!("context has arguments.s1.t0.path && \"/docs/a\" == context.arguments.s1.t0.path && context.server == \"{}\"", rng.pick(SERVERS)),
        24 => "context has arguments.s1.t0.amount".into(),
        25 => format!("context.authenticated == {} && context has intent", rng.pick(&["true", "false"])),
        26 => format!("context has intent && context.intent == \"{word}\" && context has arguments.s1.t1.amount && context.arguments.s1.t1.amount == 3"),
        // Valid only where the resource is a Tool or Route; errors for one not in the store.
        _ => "resource.sensitivity == \"high\"".into(),
    }
}

fn policy(rng: &mut Rng, n: usize) -> String {
    let effect = if rng.chance(30) { "forbid" } else { "permit" };
    let mut text = format!(
        "@id(\"p{n}\")\n{effect} ({}, {}, {})",
        principal_scope(rng),
        action_scope(rng),
        resource_scope(rng)
    );
    for _ in 0..rng.below(3) {
        let keyword = if rng.chance(25) { "unless" } else { "when" };
        text.push_str(&format!(" {keyword} {{ {} }}", condition(rng)));
    }
    text.push_str(";\n");
    text
}

/// A random policy set that toolgate accepts (invalid draws are redrawn),
/// in `extend` or `replace` mode.
fn store(rng: &mut Rng, validator: &Validator) -> PolicyStore {
    let mut cedar = String::new();
    let count = rng.below(50);
    let mut n = 0;
    while n < count {
        let text = policy(rng, n);
        let Ok(set) = text.parse::<PolicySet>() else {
            panic!("generated policy does not parse: {text}")
        };
        // toolgate also refuses policies that can never apply (Cedar's warnings).
        let result = validator.validate(&set, ValidationMode::Strict);
        let never_applies = result.validation_warnings().any(|w| {
            matches!(
                w,
                ValidationWarning::ImpossiblePolicy(_)
                    | ValidationWarning::InvalidActionApplication(_)
            )
        });
        if result.validation_passed() && !never_applies {
            cedar.push_str(&text);
            n += 1;
        }
    }
    let replace = rng.chance(50);
    let mut policies =
        json!({"cedar": cedar, "entities": entities(rng), "arguments_schema": ARGUMENTS});
    if replace {
        policies["mode"] = json!("replace");
        policies["schema"] = json!(EMBEDDED_SCHEMA.text);
    }
    let config = json!({"trust_domains": ["t.test", "toolgate.test"], "policies": policies});
    let config = Config::from_json(config.to_string().as_bytes()).expect("config");
    let with_credentials = !replace && rng.chance(30);
    PolicyStore::build(
        &config.policies,
        if with_credentials {
            &[CREDENTIAL_POLICIES]
        } else {
            &[]
        },
    )
    .unwrap_or_else(|e| panic!("store: {e}\n{cedar}"))
}

fn arguments(rng: &mut Rng) -> Option<Value> {
    if rng.chance(20) {
        return None;
    }
    let mut fields = serde_json::Map::new();
    if rng.chance(90) {
        let amount = match rng.below(6) {
            0 => json!(3),
            1 => json!(50),
            2 => json!(1.5),
            3 => json!(1e30),
            4 => json!("ten"),
            _ => Value::Null,
        };
        fields.insert("amount".into(), amount);
    }
    if rng.chance(50) {
        fields.insert("path".into(), json!("/docs/a"));
    }
    // Values of every other kind the context holds (a decimal where declared, a
    // record, a set with a repeat), and a key Cedar's JSON form reserves: the
    // record's `cedar` block must read back as the context Cedar got.
    if rng.chance(20) {
        fields.insert("rate".into(), json!(1.25));
    }
    if rng.chance(20) {
        fields.insert(
            "opts".into(),
            json!({"deep": true, "n": 2, "tags": ["a", "b", "a"]}),
        );
    }
    if rng.chance(5) {
        fields.insert("__extn".into(), json!({"fn": "ip", "arg": "10.0.0.1"}));
    }
    Some(Value::Object(fields))
}

/// A random call, mostly shaped like toolgate's (the resource kind the action
/// takes), sometimes not.
fn call(rng: &mut Rng) -> Call {
    // Tool calls are most of the traffic, and where arguments are.
    let action: &'static str = match rng.chance(40) {
        true => "tools/call",
        false => rng.pick(ACTIONS),
    };
    let kind = match action {
        "tools/call" => "Tool",
        "prompts/get" => "Prompt",
        "resources/read" => "McpResource",
        "http" => "Route",
        _ => "Server",
    };
    let candidates: Vec<&(&str, &str)> = RESOURCES
        .iter()
        .filter(|(ty, _)| rng.chance(10) || *ty == kind)
        .collect();
    let (ty, id) = match candidates.is_empty() {
        true => RESOURCES[0],
        false => *candidates[rng.below(candidates.len())],
    };
    let resource_kind = match ty {
        "Tool" => ResourceKind::Tool,
        "Prompt" => ResourceKind::Prompt,
        "McpResource" => ResourceKind::McpResource,
        "Route" => ResourceKind::Route,
        _ => ResourceKind::Server,
    };
    Call {
        action: toolgate::action::Action::from_id(action).expect("a known action"),
        resource_kind,
        resource_id: id.to_owned(),
        name: id.split_once('/').map(|(_, name)| name.to_owned()),
        arguments: (action == "tools/call").then(|| arguments(rng)).flatten(),
        rpc: (action != "http").then(|| RpcMessage {
            method: if rng.chance(20) { "x/y" } else { action }.to_owned(),
            id: Some(json!(1)),
            protocol_version: None,
        }),
        a2a: None,
    }
}

fn ids(set: &PolicySet) -> Vec<String> {
    set.policies().map(|p| p.id().to_string()).collect()
}

/// How many attributes a request's context holds.
fn context_len(request: &cedar_policy::Request) -> usize {
    match request.context().map(cedar_policy::Context::to_json_value) {
        Some(Ok(serde_json::Value::Object(fields))) => fields.len(),
        _ => usize::MAX,
    }
}

/// The record's `cedar` block reads back as the context Cedar got (with the
/// arguments), and is missing exactly when Cedar cannot write that context as JSON.
/// Returns how it went: written (holding a decimal), or not writable.
fn read_back(built: &cedar_request::Built, seed: u64) -> ReadBack {
    let request = built.request().expect("a request");
    let context = request.context().expect("a concrete context");
    let cedar = context.to_json_value().ok();
    let record = built.record(true, true);
    assert_eq!(
        record.is_some(),
        cedar.is_some(),
        "seed {seed}: {request:?}"
    );
    let Some(record) = record else {
        return ReadBack::Unwritable;
    };
    let read = cedar_policy::Context::from_json_value(record.context.clone(), None)
        .expect("the record's context reads back");
    assert_eq!(
        read.to_json_value().ok(),
        cedar,
        "seed {seed}: {}",
        record.context
    );
    let without = built.record(true, false).expect("without arguments");
    assert!(without.context.get("arguments").is_none());
    ReadBack::Written {
        decimal: record.context.to_string().contains(r#""fn":"decimal""#),
    }
}

#[derive(PartialEq)]
enum ReadBack {
    Written { decimal: bool },
    Unwritable,
}

/// What the gate reads from Cedar's answer: decision, determining policies, errors.
fn summary(response: &Response) -> (Decision, Vec<String>, Vec<String>) {
    let mut reasons: Vec<String> = response
        .diagnostics()
        .reason()
        .map(ToString::to_string)
        .collect();
    reasons.sort();
    let errors = response
        .diagnostics()
        .errors()
        .map(ToString::to_string)
        .collect();
    (response.decision(), reasons, errors)
}

#[test]
fn slices_decide_like_the_whole_policy_set() {
    let fragments = [EMBEDDED_SCHEMA.text, ARGUMENTS].map(|text| {
        SchemaFragment::from_cedarschema_str(text)
            .expect("fragment")
            .0
    });
    let schema = Schema::from_schema_fragments(fragments).expect("schema");
    let validator = Validator::new(schema);
    let authorizer = Authorizer::new();
    let (mut allowed, mut forbidden, mut errors, mut smaller, mut cases) = (0, 0, 0, 0, 0);
    let (mut guarded, mut decimals, mut unwritable, mut reduced) = (0, 0, 0, 0);
    for seed in 0..SETS {
        let mut rng = Rng(seed);
        let store = store(&mut rng, &validator);
        let everything = store.policies.policies().count();
        for _ in 0..REQUESTS_PER_SET {
            let identity = Identity {
                principal: match rng.chance(15) {
                    true => Principal::Unauthenticated,
                    false => Principal::Agent(SpiffeId::parse(rng.pick(AGENTS)).expect("id")),
                },
                insecure: rng.chance(20),
                via: None,
            };
            let mut maybe = |value: &str| rng.chance(50).then(|| value.to_owned());
            let intent = Intent {
                intent: maybe(if seed % 2 == 0 { "read" } else { "write" }),
                task: maybe("T-1"),
                session: maybe("S-1"),
            };
            let call = call(&mut rng);
            let server = call.resource_id.split('/').next().unwrap_or("s1");
            let server = if rng.chance(10) { "s2" } else { server };
            let facts = Facts {
                identity: &identity,
                credential: None,
                now_unix: 1_700_000_000,
                intent: &intent,
                server,
                http_method: "POST",
                path: "/mcp",
                protocol_version: None,
                behaviour: &[],
            };
            let built = cedar_request::build(&store, &call, &facts).expect("request");
            // The gate's own build: nothing asks it for the whole request first.
            let fresh = cedar_request::build(&store, &call, &facts).expect("request");
            let scoped = store.policies_for(&built.principal, &built.action, &built.resource);
            let whole = built.request().expect("the whole request");
            let context = whole.context().expect("a concrete context");
            // The slice the gate evaluates reads the context as toolgate built it; the
            // same guards read from Cedar's own context keep the same policies.
            let slice = authorize::slice(&store, &built).expect("a slice");
            let from_cedar =
                store.policies_deciding(&built.principal, &built.action, &built.resource, context);
            assert_eq!(
                ids(&slice.policies),
                ids(&from_cedar.policies),
                "seed {seed}: {whole:?}"
            );
            match read_back(&built, seed) {
                ReadBack::Written { decimal } => decimals += usize::from(decimal),
                ReadBack::Unwritable => unwritable += 1,
            }
            let entities = store.entities_for(&built.resource);
            let full = authorizer.is_authorized(whole, &store.policies, &entities);
            // What the gate gives Cedar: the slice, and only the context it reads.
            let reading = fresh
                .request_reading(&slice.context_keys)
                .expect("the request the slice reads");
            let sliced = authorizer.is_authorized(&reading, &slice.policies, &entities);
            assert_eq!(
                summary(&sliced),
                summary(&full),
                "seed {seed}: {whole:?}\nslice: {:?}, reading {:?}",
                slice
                    .policies
                    .policies()
                    .map(|p| p.id().to_string())
                    .collect::<Vec<_>>(),
                slice.context_keys
            );
            // ... and the gate's own verdict says the same.
            let verdict = authorize::authorize(&authorizer, &store, &fresh);
            let (decision, mut reasons, errs) = summary(&full);
            let mut determining = verdict.policies.clone();
            determining.sort();
            reasons.sort();
            assert_eq!(
                (
                    verdict.denied.is_none(),
                    determining,
                    verdict.errors.clone()
                ),
                (
                    decision == Decision::Allow && errs.is_empty(),
                    reasons,
                    errs
                ),
                "seed {seed}: {whole:?}"
            );
            reduced += usize::from(context_len(&reading) < context_len(whole));
            // The slice is a subset of the set, in the set's order.
            let order: Vec<String> = store
                .policies
                .policies()
                .map(|p| p.id().to_string())
                .collect();
            let mut at = 0;
            for policy in slice.policies.policies() {
                let id = policy.id().to_string();
                at += order[at..]
                    .iter()
                    .position(|o| *o == id)
                    .expect("in the set, in order")
                    + 1;
            }
            let (decision, reasons, errs) = summary(&full);
            allowed += usize::from(decision == Decision::Allow);
            forbidden += usize::from(decision == Decision::Deny && !reasons.is_empty());
            errors += usize::from(!errs.is_empty());
            smaller += usize::from(slice.policies.policies().count() < everything);
            guarded +=
                usize::from(slice.policies.policies().count() < scoped.policies.policies().count());
            cases += 1;
        }
    }
    // The cases must exercise what they claim to: allows, forbids, errors, and real slicing.
    eprintln!("{allowed} allowed, {forbidden} forbidden, {errors} with errors, {smaller} sliced smaller, {guarded} smaller by guards, {reduced} with a smaller context, of {cases}; {decimals} records with a decimal, {unwritable} not writable");
    assert!(
        decimals > 0 && unwritable > 0,
        "{decimals} decimals, {unwritable} unwritable"
    );
    assert!(allowed * 20 > cases, "{allowed} allowed of {cases}");
    assert!(forbidden * 20 > cases, "{forbidden} forbidden of {cases}");
    assert!(errors * 100 > cases, "{errors} with errors of {cases}");
    assert!(smaller * 2 > cases, "{smaller} sliced smaller of {cases}");
    assert!(
        guarded * 5 > cases,
        "{guarded} smaller by guards of {cases}"
    );
    assert!(
        reduced * 5 > cases,
        "{reduced} with a smaller context of {cases}"
    );
}

/// Many principal/resource combinations, each with its own slice, overflow the
/// slice cache; it starts afresh and every slice stays right.
#[test]
fn slice_cache_overflow_keeps_slices_right() {
    let agents = 60;
    let tools = 60;
    let mut cedar = String::new();
    for a in 0..agents {
        cedar.push_str(&format!(
            "@id(\"agent-{a}\") permit (principal == {}, action == Toolgate::Action::\"tools/call\", resource);\n",
            uid("Agent", &format!("spiffe://t.test/agent/{a}"))
        ));
    }
    for t in 0..tools {
        cedar.push_str(&format!(
            "@id(\"tool-{t}\") forbid (principal, action == Toolgate::Action::\"tools/call\", resource == {});\n",
            uid("Tool", &format!("s1/{t}"))
        ));
    }
    let config = json!({"policies": {"mode": "replace", "schema": EMBEDDED_SCHEMA.text, "arguments_schema": ARGUMENTS, "cedar": cedar}});
    let config = Config::from_json(config.to_string().as_bytes()).expect("config");
    let store = PolicyStore::build(&config.policies, &[]).expect("store");
    let action = "Toolgate::Action::\"tools/call\"".parse().expect("action");
    // Twice round: the second pass finds some slices cached and rebuilds the rest.
    for _ in 0..2 {
        for a in 0..agents {
            let principal = uid("Agent", &format!("spiffe://t.test/agent/{a}"))
                .parse()
                .expect("agent");
            for t in 0..tools {
                let resource = uid("Tool", &format!("s1/{t}")).parse().expect("tool");
                let slice = store.policies_for(&principal, &action, &resource);
                let ids: Vec<String> = ids(&slice.policies);
                assert_eq!(ids, [format!("agent-{a}"), format!("tool-{t}")]);
            }
        }
    }
}
