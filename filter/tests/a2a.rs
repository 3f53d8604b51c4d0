//! A2A: both method generations and HTTP+JSON routes read as the same actions, ambiguous
//! input refused, `context.a2a` as policy sees it, and tasks bound to their owner
//! (the answer binds, another principal is refused, policy can share).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::{json, Value};
use toolgate::a2a_tasks::{self, Binder};
use toolgate::config::{A2aTasks, Config};
use toolgate::gate::Outcome;
use toolgate::response::{Asked, Framing, Reader, Shape};
use toolgate::shared::Memory;
use toolgate::Gate;

mod kit;
use kit::{Decided, Request, PAYMENTS, READER, WRITER};

const T0: u64 = 1_800_000_000;

/// Messages from writers to the `tools` agent are permitted; payments agents share tasks.
const POLICIES: &str = r#"
@id("writers-message-tools")
permit (principal in Toolgate::AgentGroup::"writers", action in Toolgate::Action::"a2a_messages", resource == Toolgate::Server::"tools");
@id("readers-message-tools-text-only")
permit (principal in Toolgate::AgentGroup::"readers", action in Toolgate::Action::"a2a_messages", resource == Toolgate::Server::"tools")
when { context has a2a && context.a2a has message && context.a2a.message.file_parts == 0 };
@id("payments-share")
permit (principal in Toolgate::AgentGroup::"payments", action == Toolgate::Action::"a2a/SharedTask", resource)
when { context has a2a && context.a2a has task && context.a2a.task has owner && context.a2a.task.owner in Toolgate::AgentGroup::"readers" };
"#;

fn a2a_config() -> Value {
    json!({
        "jsonrpc_paths": ["/a2a"],
        "http_json_prefixes": ["/rest"],
        "tasks": { "max_entries": 64, "shards": 4, "ttl_seconds": 1000 }
    })
}

fn gate() -> Gate {
    kit::gate_with(
        json!({ "a2a": a2a_config(), "policies": kit::demo_policies_and(json!({ "cedar": POLICIES })) }),
    )
}

fn tasks_config(gate: &Gate) -> A2aTasks {
    gate.config().a2a.clone().expect("a2a configured").tasks
}

fn rpc(method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": 9, "method": method, "params": params })
}

fn post(body: Value, spiffe: &str) -> Request {
    Request::new("POST", "/a2a", body.to_string(), Some(spiffe))
        .header("content-type", "application/json")
        .at(T0)
}

fn decide(gate: &Gate, request: &Request, shared: &Memory) -> Decided {
    request.decide_with(gate, |input| input.shared = Some(shared))
}

fn text_message(task: Option<&str>) -> Value {
    let mut message =
        json!({ "role": "ROLE_USER", "messageId": "m-1", "parts": [{ "text": "hello" }] });
    if let Some(task) = task {
        message["taskId"] = json!(task);
    }
    json!({ "message": message })
}

#[test]
fn both_generations_are_the_same_actions() {
    let gate = gate();
    let shared = Memory::default();
    let pairs = [
        (
            "SendMessage",
            "message/send",
            "a2a/SendMessage",
            text_message(None),
        ),
        (
            "SendStreamingMessage",
            "message/stream",
            "a2a/SendStreamingMessage",
            text_message(None),
        ),
        (
            "GetExtendedAgentCard",
            "agent/getAuthenticatedExtendedCard",
            "a2a/GetExtendedAgentCard",
            json!({}),
        ),
    ];
    for (v1, v03, action, params) in pairs {
        for method in [v1, v03] {
            let decided = decide(&gate, &post(rpc(method, params.clone()), WRITER), &shared);
            assert_eq!(decided.typed.action.as_deref(), Some(action), "{method}");
            assert_eq!(
                decided.outcome,
                Outcome::Allow,
                "{method}: {:?}",
                decided.typed.errors
            );
            let a2a = decided.typed.a2a.clone().expect("an a2a block");
            assert_eq!(
                (a2a.method.as_str(), a2a.binding.as_str()),
                (method, "jsonrpc")
            );
        }
    }
    // Task methods of both generations name the same task, each from its own field.
    let tasks = [
        (
            "GetTask",
            json!({"id": "t-1"}),
            "tasks/get",
            json!({"id": "t-1"}),
            "a2a/GetTask",
        ),
        (
            "CancelTask",
            json!({"id": "t-1"}),
            "tasks/cancel",
            json!({"id": "t-1"}),
            "a2a/CancelTask",
        ),
        (
            "SubscribeToTask",
            json!({"id": "t-1"}),
            "tasks/resubscribe",
            json!({"id": "t-1"}),
            "a2a/SubscribeToTask",
        ),
        (
            "CreateTaskPushNotificationConfig",
            json!({"taskId": "t-1"}),
            "tasks/pushNotificationConfig/set",
            json!({"taskId": "t-1"}),
            "a2a/CreateTaskPushNotificationConfig",
        ),
        (
            "GetTaskPushNotificationConfig",
            json!({"taskId": "t-1", "id": "c"}),
            "tasks/pushNotificationConfig/get",
            json!({"id": "t-1"}),
            "a2a/GetTaskPushNotificationConfig",
        ),
        (
            "ListTaskPushNotificationConfigs",
            json!({"taskId": "t-1"}),
            "tasks/pushNotificationConfig/list",
            json!({"id": "t-1"}),
            "a2a/ListTaskPushNotificationConfigs",
        ),
        (
            "DeleteTaskPushNotificationConfig",
            json!({"taskId": "t-1", "id": "c"}),
            "tasks/pushNotificationConfig/delete",
            json!({"id": "t-1", "pushNotificationConfigId": "c"}),
            "a2a/DeleteTaskPushNotificationConfig",
        ),
    ];
    for (v1, p1, v03, p03, action) in tasks {
        for (method, params) in [(v1, p1.clone()), (v03, p03.clone())] {
            let decided = decide(&gate, &post(rpc(method, params), WRITER), &shared);
            assert_eq!(decided.typed.action.as_deref(), Some(action), "{method}");
            let a2a = decided.typed.a2a.clone().expect("an a2a block");
            assert_eq!(a2a.task_id.as_deref(), Some("t-1"), "{method}");
            // Never created through toolgate: not the caller's.
            assert_eq!(decided.reason(), "task_not_owned", "{method}");
            assert_eq!(a2a.task_binding.as_deref(), Some("unknown"));
        }
    }
}

#[test]
fn unknown_and_case_variant_methods_are_refused() {
    let gate = gate();
    let shared = Memory::default();
    for method in [
        "sendmessage",
        "SENDMESSAGE",
        "Message/Send",
        "tasks/send",
        "tools/call",
        "initialize",
        "rpc",
    ] {
        let decided = decide(
            &gate,
            &post(rpc(method, text_message(None)), WRITER),
            &shared,
        );
        assert_eq!(decided.reason(), "a2a_unknown_method", "{method}");
        assert_eq!(decided.body()["error"]["code"], json!(-32601), "{method}");
        assert_eq!(decided.body()["id"], json!(9), "{method}");
    }
    // A batch, a GET, a response: not A2A requests.
    let batch = Request::new(
        "POST",
        "/a2a",
        json!([rpc("SendMessage", text_message(None))]).to_string(),
        Some(WRITER),
    );
    assert_eq!(decide(&gate, &batch, &shared).reason(), "batch_rejected");
    let get = Request::new("GET", "/a2a", "", Some(WRITER));
    assert_eq!(decide(&gate, &get, &shared).reason(), "a2a_unknown_method");
    let response = post(json!({"jsonrpc": "2.0", "id": 1, "result": {}}), WRITER);
    assert_eq!(
        decide(&gate, &response, &shared).reason(),
        "a2a_unknown_method"
    );
}

/// Every method name of both generations, as the A2A table spells them.
const METHODS: &[&str] = &[
    "SendMessage",
    "message/send",
    "SendStreamingMessage",
    "message/stream",
    "GetTask",
    "tasks/get",
    "ListTasks",
    "CancelTask",
    "tasks/cancel",
    "SubscribeToTask",
    "tasks/resubscribe",
    "CreateTaskPushNotificationConfig",
    "tasks/pushNotificationConfig/set",
    "GetTaskPushNotificationConfig",
    "tasks/pushNotificationConfig/get",
    "ListTaskPushNotificationConfigs",
    "tasks/pushNotificationConfig/list",
    "DeleteTaskPushNotificationConfig",
    "tasks/pushNotificationConfig/delete",
    "GetExtendedAgentCard",
    "agent/getAuthenticatedExtendedCard",
];

#[test]
fn a_method_name_one_letter_off_in_case_is_unknown() {
    let gate = gate();
    let shared = Memory::default();
    let mut rng = kit::Rng(0xa2a);
    for _ in 0..200 {
        let name = rng.pick(METHODS);
        let letters: Vec<usize> = name
            .char_indices()
            .filter(|(_, c)| c.is_ascii_alphabetic())
            .map(|(i, _)| i)
            .collect();
        let at = letters[rng.below(letters.len())];
        let mut variant: Vec<u8> = name.bytes().collect();
        variant[at] ^= 0x20;
        let variant = String::from_utf8(variant).expect("ASCII");
        let params = json!({"id": "t", "taskId": "t", "message": {"role": "user", "parts": []}});
        let decided = decide(&gate, &post(rpc(&variant, params), WRITER), &shared);
        assert_eq!(
            decided.reason(),
            "a2a_unknown_method",
            "{name} as {variant} (seed 0xa2a)"
        );
        assert!(
            decided.typed.cedar.is_none(),
            "never evaluated as another action"
        );
    }
}

#[test]
fn ambiguous_messages_are_refused() {
    let gate = gate();
    let shared = Memory::default();
    let refused = |params: Value| decide(&gate, &post(rpc("SendMessage", params), WRITER), &shared);
    let cases = [
        (
            json!({"message": {"role": "user", "parts": [{"text": "a", "data": {}}]}}),
            "invalid_params",
        ),
        (
            json!({"message": {"role": "user", "parts": [{"kind": "data", "text": "a"}]}}),
            "invalid_params",
        ),
        (
            json!({"message": {"role": "User", "parts": []}}),
            "invalid_params",
        ),
        (
            json!({"message": {"role": "user", "parts": [{}]}}),
            "invalid_params",
        ),
        (
            json!({"message": {"role": "user", "parts": "x"}}),
            "invalid_params",
        ),
        (
            json!({"message": {"role": "user", "Role": "agent", "parts": []}}),
            "folded_json_key",
        ),
        (
            json!({"message": {"role": "user", "parts": [], "TaskId": "t"}}),
            "folded_member",
        ),
        (
            json!({"Message": {"role": "user", "parts": []}}),
            "folded_member",
        ),
        (
            json!({"message": {"role": "user", "parts": [], "taskId": "a b"}}),
            "invalid_params",
        ),
        (json!({}), "invalid_params"),
    ];
    for (params, reason) in cases {
        assert_eq!(refused(params.clone()).reason(), reason, "{params}");
    }
    // Duplicate keys are refused by the JSON reader, before A2A reads anything.
    let duplicate = r#"{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"a","id":"b"}}"#;
    let request = Request::new("POST", "/a2a", duplicate, Some(WRITER)).at(T0);
    assert_eq!(
        decide(&gate, &request, &shared).reason(),
        "duplicate_json_key"
    );
}

#[test]
fn a2a_headers_go_into_context_and_ambiguous_ones_are_refused() {
    let gate = gate();
    let shared = Memory::default();
    let body = rpc("SendMessage", text_message(None));
    let decided = decide(
        &gate,
        &post(body.clone(), WRITER)
            .header("a2a-version", "1.0")
            .header(
                "a2a-extensions",
                "https://e.example/a/v1, https://e.example/b/v1",
            )
            .header("a2a-extensions", "https://e.example/a/v1"),
        &shared,
    );
    assert_eq!(decided.outcome, Outcome::Allow);
    let context = &decided.record["cedar"]["context"]["a2a"];
    assert_eq!(context["version"], json!("1.0"));
    assert_eq!(
        context["extensions"],
        json!(["https://e.example/a/v1", "https://e.example/b/v1"])
    );
    assert_eq!(
        decided.typed.a2a.expect("a2a").version.as_deref(),
        Some("1.0")
    );
    // v0.3 clients send no version: absent, not refused.
    let unversioned = decide(&gate, &post(body.clone(), WRITER), &shared);
    assert!(unversioned.record["cedar"]["context"]["a2a"]
        .get("version")
        .is_none());
    for (name, values) in [
        ("a2a-version", vec!["1.0", "0.3"]),
        ("a2a-version", vec!["one"]),
        ("a2a-version", vec!["1"]),
        ("a2a-version", vec!["1.0.0"]),
        ("a2a-extensions", vec!["https://a,,https://b"]),
    ] {
        let request = values
            .iter()
            .fold(post(body.clone(), WRITER), |r, v| r.header(name, v));
        assert_eq!(
            decide(&gate, &request, &shared).reason(),
            "invalid_header",
            "{name}: {values:?}"
        );
    }
}

#[test]
fn the_message_is_summarized_for_policy() {
    let gate = gate();
    let shared = Memory::default();
    // v0.3 parts with kinds, and v1.0 parts without.
    let params = json!({"message": {
        "kind": "message", "role": "user", "messageId": "m-9", "contextId": "ctx-1",
        "referenceTaskIds": [],
        "parts": [
            {"kind": "text", "text": "héllo"},
            {"kind": "file", "file": {"bytes": "aGVsbG8=", "mimeType": "text/plain"}},
            {"raw": "AAAA"},
            {"url": "https://files.example/x"},
            {"data": {"a": 1}}
        ]
    }});
    let decided = decide(&gate, &post(rpc("message/send", params), WRITER), &shared);
    assert_eq!(
        decided.outcome,
        Outcome::Allow,
        "{:?}",
        decided.typed.errors
    );
    let message = &decided.record["cedar"]["context"]["a2a"]["message"];
    assert_eq!(message["role"], json!("user"));
    assert_eq!(
        [
            &message["parts"],
            &message["text_parts"],
            &message["file_parts"],
            &message["data_parts"]
        ],
        [&json!(5), &json!(1), &json!(3), &json!(1)]
    );
    assert_eq!(message["text_bytes"], json!("héllo".len()));
    assert_eq!(message["file_bytes"], json!(8 + 4));
    assert_eq!(message["data_bytes"], json!(r#"{"a":1}"#.len()));
    assert_eq!(message["context_id"], json!("ctx-1"));
    // A reader's message with a file is not permitted; the same text-only is.
    let decided = decide(
        &gate,
        &post(
            rpc(
                "SendMessage",
                json!({"message": {"role": "ROLE_USER", "parts": [{"raw": "AA"}]}}),
            ),
            READER,
        ),
        &shared,
    );
    assert_eq!(decided.reason(), "not_permitted");
    let decided = decide(
        &gate,
        &post(rpc("SendMessage", text_message(None)), READER),
        &shared,
    );
    assert_eq!(decided.outcome, Outcome::Allow);
}

#[test]
fn http_json_routes_are_the_same_actions() {
    let gate = gate();
    let shared = Memory::default();
    let routes = [
        (
            "POST",
            "/rest/message:send",
            Some(text_message(None)),
            "a2a/SendMessage",
            None,
        ),
        (
            "POST",
            "/rest/v1/message:stream",
            Some(text_message(None)),
            "a2a/SendStreamingMessage",
            None,
        ),
        (
            "POST",
            "/rest/tenant-a/message:send",
            Some(text_message(None)),
            "a2a/SendMessage",
            None,
        ),
        ("GET", "/rest/tasks/t-1", None, "a2a/GetTask", Some("t-1")),
        ("GET", "/rest/tasks", None, "a2a/ListTasks", None),
        (
            "POST",
            "/rest/tasks/t-1:cancel",
            None,
            "a2a/CancelTask",
            Some("t-1"),
        ),
        (
            "GET",
            "/rest/tasks/t-1:subscribe",
            None,
            "a2a/SubscribeToTask",
            Some("t-1"),
        ),
        (
            "POST",
            "/rest/tasks/t-1:subscribe",
            None,
            "a2a/SubscribeToTask",
            Some("t-1"),
        ),
        (
            "POST",
            "/rest/tasks/t-1/pushNotificationConfigs",
            Some(json!({"taskId": "t-1"})),
            "a2a/CreateTaskPushNotificationConfig",
            Some("t-1"),
        ),
        (
            "GET",
            "/rest/tasks/t-1/pushNotificationConfigs",
            None,
            "a2a/ListTaskPushNotificationConfigs",
            Some("t-1"),
        ),
        (
            "GET",
            "/rest/tasks/t-1/pushNotificationConfigs/c-1",
            None,
            "a2a/GetTaskPushNotificationConfig",
            Some("t-1"),
        ),
        (
            "DELETE",
            "/rest/tasks/t-1/pushNotificationConfigs/c-1",
            None,
            "a2a/DeleteTaskPushNotificationConfig",
            Some("t-1"),
        ),
        (
            "GET",
            "/rest/extendedAgentCard",
            None,
            "a2a/GetExtendedAgentCard",
            None,
        ),
        (
            "GET",
            "/.well-known/agent-card.json",
            None,
            "a2a/GetAgentCard",
            None,
        ),
    ];
    for (method, path, body, action, task) in routes {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = Request::new(method, path, body, Some(WRITER)).at(T0);
        let decided = decide(&gate, &request, &shared);
        assert_eq!(
            decided.typed.action.as_deref(),
            Some(action),
            "{method} {path}: {:?}",
            decided.typed.errors
        );
        let a2a = decided.typed.a2a.clone().expect("a2a");
        assert_eq!(a2a.task_id.as_deref(), task, "{method} {path}");
        if action == "a2a/GetAgentCard"
            || action == "a2a/GetExtendedAgentCard"
            || action.contains("Message")
        {
            assert_eq!(
                decided.outcome,
                Outcome::Allow,
                "{method} {path}: {:?}",
                decided.typed.policies
            );
        }
    }
    let refused = [
        ("POST", "/rest/tasks/t-1", "a2a_unknown_method"),
        ("PUT", "/rest/message:send", "a2a_unknown_method"),
        ("GET", "/rest/a/b/tasks", "a2a_unknown_method"),
        ("GET", "/rest/tasks/t%2D1", "invalid_params"),
        ("POST", "/rest/tasks/:cancel", "a2a_unknown_method"),
        ("POST", "/.well-known/agent-card.json", "a2a_unknown_method"),
        // "tasks" as a tenant (list) or as a task id (get): two readings.
        ("GET", "/rest/tasks/tasks", "a2a_unknown_method"),
    ];
    for (method, path, reason) in refused {
        let request = Request::new(method, path, "", Some(WRITER)).at(T0);
        let decided = decide(&gate, &request, &shared);
        assert_eq!(decided.reason(), reason, "{method} {path}");
        assert_eq!(
            decided.status(),
            if reason == "invalid_params" { 400 } else { 404 }
        );
        // On HTTP+JSON routes, A2A's own error (§11.6); elsewhere (the card) a problem document.
        let a2a_error = if reason == "invalid_params" {
            "INVALID_PARAMS"
        } else {
            "METHOD_NOT_FOUND"
        };
        let body = decided.body();
        match path.starts_with("/rest/") {
            true => assert_eq!(
                body["error"]["details"][0]["reason"],
                json!(a2a_error),
                "{method} {path}: {body}"
            ),
            false => assert_eq!(body["reason"], json!(reason), "{method} {path}: {body}"),
        }
    }
    let mismatch = Request::new(
        "POST",
        "/rest/tasks/t-1/pushNotificationConfigs",
        json!({"taskId": "t-2"}).to_string(),
        Some(WRITER),
    );
    assert_eq!(decide(&gate, &mismatch, &shared).reason(), "invalid_params");
}

/// A policy's no on HTTP+JSON: A2A has no error for it, so the `google.rpc.Status`
/// carries toolgate's reason in toolgate's domain, with the decision and policies.
#[test]
fn a_policy_refusal_on_http_json_is_an_a2a_status() {
    let gate = gate();
    let shared = Memory::default();
    let message = json!({ "message": { "role": "ROLE_USER", "messageId": "m-1",
        "parts": [{ "raw": "AAAA", "filename": "a.bin" }] } });
    let request = Request::new(
        "POST",
        "/rest/message:send",
        message.to_string(),
        Some(READER),
    )
    .at(T0);
    let decided = decide(&gate, &request, &shared);
    assert_eq!((decided.reason(), decided.status()), ("not_permitted", 403));
    assert_eq!(decided.header("content-type"), Some("application/json"));
    let body = decided.body();
    let error = &body["error"];
    assert_eq!(
        (&error["code"], &error["status"], &error["message"]),
        (
            &json!(403),
            &json!("PERMISSION_DENIED"),
            &json!("toolgate: no policy permits the call")
        ),
        "{body}"
    );
    let info = &error["details"][0];
    assert_eq!(
        (&info["reason"], &info["domain"]),
        (&json!("NOT_PERMITTED"), &json!("toolgate.dev"))
    );
    // ErrorInfo metadata is a map of strings.
    let metadata = info["metadata"].as_object().expect("metadata");
    assert!(metadata.values().all(Value::is_string), "{body}");
    assert_eq!(
        (&metadata["reason"], &metadata["decision_id"]),
        (&json!("not_permitted"), &json!(decided.typed.decision_id))
    );
}

/// The answer's body as the glue hands it over, read by the task binder.
fn answer(
    gate: &Gate,
    shared: &Memory,
    owner: &str,
    framing: Framing,
    body: &str,
) -> (Vec<String>, Option<String>) {
    let config = tasks_config(gate);
    let asked = Asked {
        method: Some("SendMessage".into()),
        id: Some(json!(9)),
        ..Asked::default()
    };
    let mut reader = Reader::new(
        asked,
        framing,
        1 << 20,
        toolgate::config::OverLimit::Refuse,
        Shape {
            tools_call: Default::default(),
        },
    );
    let mut bound = Vec::new();
    let now = i64::try_from(T0).expect("fits");
    let mut binder = Binder::new(shared, &config, owner, now, &mut bound);
    // In two chunks, split mid-way: the binder sees whole messages.
    let (head, tail) = body.as_bytes().split_at(body.len() / 2);
    let mut out = reader.feed(&mut binder, head, false);
    out.extend(reader.feed(&mut binder, tail, true));
    let refused = reader.stats().refused.map(|r| r.code().to_owned());
    assert!(
        refused.is_some() || out == body.as_bytes(),
        "a bound answer goes on unchanged"
    );
    (bound, refused)
}

#[test]
fn the_answer_binds_the_task_and_only_its_owner_may_use_it() {
    let gate = gate();
    let shared = Memory::default();
    // v1.0 JSON: {"task": {...}}.
    let (bound, refused) = answer(
        &gate,
        &shared,
        READER,
        Framing::Json,
        &json!({"jsonrpc": "2.0", "id": 9, "result": {"task": {"id": "t-r", "contextId": "c"}}})
            .to_string(),
    );
    assert_eq!((bound, refused), (vec!["t-r".to_owned()], None));
    let get = |who: &str, task: &str| {
        decide(
            &gate,
            &post(rpc("GetTask", json!({"id": task})), who),
            &shared,
        )
    };
    let owner = get(READER, "t-r");
    assert_eq!(owner.outcome, Outcome::Allow, "{:?}", owner.typed.errors);
    assert_eq!(
        owner
            .typed
            .a2a
            .as_ref()
            .and_then(|a| a.task_binding.as_deref()),
        Some("owner")
    );
    assert_eq!(
        owner.record["cedar"]["context"]["a2a"]["task"]["owned"],
        json!(true)
    );
    assert_eq!(owner.policies(), ["agents-may-follow-their-a2a-tasks"]);
    // Another agent: refused as if the task did not exist (A2A TaskNotFoundError).
    let other = get(WRITER, "t-r");
    assert_eq!(other.reason(), "task_not_owned");
    assert_eq!(other.status(), 200);
    assert_eq!(other.body()["error"]["code"], json!(-32001));
    assert_eq!(
        other
            .typed
            .a2a
            .as_ref()
            .and_then(|a| a.task_binding.as_deref()),
        Some("other")
    );
    // Continuing another's task, or referring to it, is refused the same way.
    let continued = decide(
        &gate,
        &post(rpc("SendMessage", text_message(Some("t-r"))), WRITER),
        &shared,
    );
    assert_eq!(continued.reason(), "task_not_owned");
    let mut referring = text_message(None);
    referring["message"]["referenceTaskIds"] = json!(["t-r"]);
    let referring = decide(&gate, &post(rpc("SendMessage", referring), WRITER), &shared);
    assert_eq!(referring.reason(), "task_not_owned");
    // The record names the task refused, though the message only refers to it.
    let named = |decided: &Decided| {
        let a2a = decided.typed.a2a.clone().expect("a2a");
        (a2a.task_id, a2a.task_binding)
    };
    let refused_for = (Some("t-r".to_owned()), Some("other".to_owned()));
    assert_eq!(named(&referring), refused_for);
    assert_eq!(named(&continued), refused_for);
    // Over HTTP+JSON: 404 in A2A's error format (§11.6), as A2A's TaskNotFoundError.
    let rest = decide(
        &gate,
        &Request::new("GET", "/rest/tasks/t-r", "", Some(WRITER)).at(T0),
        &shared,
    );
    assert_eq!((rest.reason(), rest.status()), ("task_not_owned", 404));
    assert_eq!(named(&rest), refused_for);
    let error = &rest.body()["error"];
    assert_eq!(
        (&error["code"], &error["status"]),
        (&json!(404), &json!("NOT_FOUND"))
    );
    let info = &error["details"][0];
    assert_eq!(
        info["@type"],
        json!("type.googleapis.com/google.rpc.ErrorInfo")
    );
    assert_eq!(
        (&info["reason"], &info["domain"]),
        (&json!("TASK_NOT_FOUND"), &json!("a2a-protocol.org"))
    );
    assert_eq!(info["metadata"]["reason"], json!("task_not_owned"));
    assert_eq!(
        info["metadata"]["decision_id"],
        json!(rest.typed.decision_id)
    );
    // Policy shares the readers' tasks with the payments agents, through a2a/SharedTask.
    let shared_with = get(PAYMENTS, "t-r");
    assert_eq!(
        shared_with.outcome,
        Outcome::Allow,
        "{:?}",
        shared_with.typed.errors
    );
    // ...but theirs are not shared with readers.
    answer(
        &gate,
        &shared,
        PAYMENTS,
        Framing::Json,
        &json!({"jsonrpc": "2.0", "id": 9, "result": {"kind": "task", "id": "t-p"}}).to_string(),
    );
    assert_eq!(get(PAYMENTS, "t-p").outcome, Outcome::Allow);
    assert_eq!(get(READER, "t-p").reason(), "task_not_owned");
    // No identity owns nothing.
    let anonymous = decide(
        &gate,
        &Request::new(
            "POST",
            "/a2a",
            rpc("GetTask", json!({"id": "t-r"})).to_string(),
            None,
        )
        .at(T0),
        &shared,
    );
    assert_ne!(anonymous.outcome, Outcome::Allow);
}

#[test]
fn every_answer_shape_carries_its_task() {
    let gate = gate();
    let shared = Memory::default();
    let json_answers = [
        (
            json!({"jsonrpc": "2.0", "id": 9, "result": {"message": {"role": "ROLE_AGENT", "taskId": "a", "parts": []}}}),
            "a",
        ),
        (
            json!({"jsonrpc": "2.0", "id": 9, "result": {"kind": "message", "taskId": "b", "parts": []}}),
            "b",
        ),
        (json!({"task": {"id": "c"}}), "c"),
        (json!({"message": {"taskId": "d"}}), "d"),
    ];
    for (body, task) in json_answers {
        let (bound, _) = answer(&gate, &shared, READER, Framing::Json, &body.to_string());
        assert_eq!(bound, [task], "{body}");
    }
    // A message without a task, and an error, bind nothing.
    for body in [
        json!({"jsonrpc": "2.0", "id": 9, "result": {"kind": "message", "parts": []}}),
        json!({"jsonrpc": "2.0", "id": 9, "error": {"code": -32000, "message": "x"}}),
    ] {
        assert_eq!(
            answer(&gate, &shared, READER, Framing::Json, &body.to_string()).0,
            Vec::<String>::new()
        );
    }
    // A stream: v0.3 status updates, v1.0 statusUpdate, bound once.
    let events = [
        json!({"jsonrpc": "2.0", "id": 9, "result": {"kind": "status-update", "taskId": "s1", "final": false}}),
        json!({"jsonrpc": "2.0", "id": 9, "result": {"statusUpdate": {"taskId": "s1"}}}),
        json!({"jsonrpc": "2.0", "id": 9, "result": {"artifactUpdate": {"taskId": "s1"}}}),
    ];
    let stream: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    let (bound, refused) = answer(&gate, &shared, READER, Framing::Sse, &stream);
    assert_eq!((bound, refused), (vec!["s1".to_owned()], None));
    // An answer naming another agent's task is refused, not passed on.
    let (_, refused) = answer(&gate, &shared, WRITER, Framing::Sse, &stream);
    assert_eq!(refused.as_deref(), Some("task_not_owned"));
    // An id toolgate cannot bind fails closed.
    let (_, refused) = answer(
        &gate,
        &shared,
        READER,
        Framing::Json,
        &json!({"task": {"id": "a b"}}).to_string(),
    );
    assert_eq!(refused.as_deref(), Some("internal_error"));
}

#[test]
fn unreadable_task_state_fails_closed() {
    let gate = gate();
    let shared = Memory::default();
    let config = tasks_config(&gate);
    let sessions = a2a_tasks::table_config(&config);
    let table = toolgate::session::Table {
        prefix: "toolgate/a2a-tasks/v1",
        config: &sessions,
    };
    use toolgate::shared::SharedData;
    shared
        .set(&table.shard_key("t-x"), b"not json", 0)
        .expect("set");
    let decided = decide(
        &gate,
        &post(rpc("GetTask", json!({"id": "t-x"})), READER),
        &shared,
    );
    assert_eq!(decided.reason(), "internal_error");
    // Without shared data at all, too.
    let decided = post(rpc("GetTask", json!({"id": "t-x"})), READER).decide(&gate);
    assert_eq!(decided.reason(), "internal_error");
}

#[test]
fn configuration_is_checked() {
    let config = |a2a: Value| Config::from_json(json!({ "a2a": a2a }).to_string().as_bytes());
    assert!(config(json!({})).is_ok());
    for (a2a, says) in [
        (json!({"jsonrpc_paths": ["a2a"]}), "must start with '/'"),
        (
            json!({"jsonrpc_paths": ["/mcp"]}),
            "both an MCP path and an A2A path",
        ),
        (
            json!({"http_json_prefixes": ["/rest/"]}),
            "must not end with '/'",
        ),
        (json!({"tasks": {"shards": 0}}), "a2a.tasks.shards"),
        (json!({"tasks": {"ttl_seconds": 0}}), "ttl_seconds"),
        (json!({"tasks": {"ttl": 5}}), "unknown field"),
        (json!({"paths": ["/a2a"]}), "unknown field"),
    ] {
        let error = config(a2a.clone()).expect_err("refused");
        assert!(error.contains(says), "{a2a}: {error}");
    }
}

#[test]
fn session_history_carries_over_to_messages() {
    // The docs' guardrail: no message to an external agent once the session read a secret.
    let guardrail = r#"
        @id("no-a2a-egress-after-secret-read")
        forbid (principal, action in Toolgate::Action::"a2a_messages", resource)
        when { resource has tags && resource.tags.contains("external") &&
               context has session && context.session.tags.contains("secret") };
        @id("readers-message-partner")
        permit (principal in Toolgate::AgentGroup::"readers", action in Toolgate::Action::"a2a_messages", resource == Toolgate::Server::"partner");
    "#;
    let mut entities: Value = serde_json::from_str(kit::DEMO_ENTITIES).expect("JSON");
    entities.as_array_mut().expect("a list").push(json!({
        "uid": {"type": "Toolgate::Server", "id": "partner"}, "attrs": {"tags": ["a2a", "external"]}, "parents": []
    }));
    let gate = kit::gate_with(json!({
        "a2a": a2a_config(), "history": {}, "server_from": "route_name",
        "policies": kit::demo_policies_and(json!({ "cedar": guardrail, "entities": entities })),
    }));
    let shared = Memory::default();
    let message = |session: &str| {
        let request =
            post(rpc("SendMessage", text_message(None)), READER).header("x-agent-session", session);
        request.decide_with(&gate, |input| {
            input.shared = Some(&shared);
            input.route_name = Some("partner");
        })
    };
    assert_eq!(message("s-1").outcome, Outcome::Allow);
    let secret = Request::tool("read_secret", json!({"name": "db"}), READER)
        .header("x-agent-session", "s-1")
        .at(T0 + 1)
        .decide_with(&gate, |input| {
            input.shared = Some(&shared);
            input.route_name = Some("tools");
        });
    assert_eq!(secret.outcome, Outcome::Allow, "{:?}", secret.typed.errors);
    let after = message("s-1");
    assert_eq!(after.reason(), "forbidden_by_policy");
    assert_eq!(after.policies(), ["no-a2a-egress-after-secret-read"]);
    // Another session did not read one.
    assert_eq!(message("s-2").outcome, Outcome::Allow);
}
