//! What a decision costs as the policy set grows: `cargo bench -p toolgate --bench decide`.
//!
//! At 10, 1,000 and 10,000 generated policies (on top of the embedded guardrails) it times
//! - `decide/N`: the whole `Gate::decide` on a realistic MCP `tools/call` (about 1 KiB,
//!   intent headers, an mTLS agent identity), which evaluates the request's slice;
//! - `authorize/sliced/N`: Cedar on `PolicyStore::policies_for(..)`, the slice lookup included;
//! - `authorize/unsliced/N`: Cedar on every policy, what toolgate would do without the index.
//! - `decide-forbids/N`, `authorize-forbids/sliced/N` (N = 1,000 and 10,000): the same
//!   request over the other shape (`forbids`): one policy in ten a general forbid on an
//!   argument value, which every tool call must consider.
//!
//! `cargo bench -p toolgate --bench decide -- --test` runs each once, timing nothing.
//! `cargo test` runs them once too, in a debug build, at 10 and 1,000 policies only:
//! building the 10,000-policy set unoptimized takes longer than all the other tests.
//!
//! The generated set is a catalog like a real deployment's: per-tool, per-agent and
//! per-team policies, nearly all of which cannot apply to any one call (see `catalog`).
//! `forbids` is the shape of `scripts/lib/gen_policies.py` (for `scripts/bench`): per-tool
//! permits plus one general forbid in ten on an argument value, which every tool call
//! must consider (the condition guards leave at most one of them to evaluate).

#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(native::benches);

// Benches are native only; this keeps a wasm32 `--all-targets` build compiling.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::hint::black_box;
    use std::time::Duration;

    use cedar_policy::Authorizer;
    use criterion::{BenchmarkId, Criterion};
    use serde_json::{json, Value};
    use toolgate::authorize;
    use toolgate::cedar_request::{self, Facts, Intent};
    use toolgate::config::Config;
    use toolgate::gate::{Input, Outcome};
    use toolgate::http::{Header, HttpRequest};
    use toolgate::identity::{self, Peer};
    use toolgate::policy::PolicyStore;
    use toolgate::Gate;

    const SIZES: [usize; 3] = [10, 1_000, 10_000];
    /// Under `cargo test` (no `--bench` argument): the sizes worth a debug build's time.
    const TEST_SIZES: [usize; 2] = [10, 1_000];
    const SERVERS: usize = 10;
    const TEAMS: usize = 10;
    const AGENT: &str = "spiffe://toolgate.test/agent/gen-0";

    fn agent(k: usize) -> String {
        format!("spiffe://toolgate.test/agent/gen-{k}")
    }

    /// A plugin configuration with `n` generated policies and the entities they name.
    ///
    /// Policy `i` is in decade `d = i / 10`; agent `gen-d` is in team `d % 10`. Per decade:
    /// five per-tool permits for team `d % 10` on tools of server `srv-(d % 10)`
    /// (`resource == Tool`, when a declared intent matches); two permits for agent `gen-d`
    /// on all tools of two servers (`principal ==`, `resource in Server`); one for its
    /// session and discovery calls on a server; one per-agent forbid on one tool; and one
    /// team-wide forbid on a secret path in server `srv-(d / 10 % 10)` (`principal in
    /// AgentGroup`, `resource in Server`). The tools are in the catalog, in their server.
    ///
    /// The slice for agent `gen-0` calling `srv-0/tool-0` holds five policies at 10 or
    /// 1,000 (three generated, and the defaults' two general forbids) and fourteen at
    /// 10,000, where team 0 has ten forbids on `srv-0`.
    fn catalog(n: usize) -> Value {
        let mut cedar = String::new();
        let mut tools = Vec::new();
        let tool = |uid: String| format!("Toolgate::Tool::\"{uid}\"");
        for i in 0..n {
            let d = i / 10;
            let team = format!("Toolgate::AgentGroup::\"team-{}\"", d % TEAMS);
            let me = format!("Toolgate::Agent::\"{}\"", agent(d));
            let server = |k: usize| format!("Toolgate::Server::\"srv-{}\"", k % SERVERS);
            let call = "Toolgate::Action::\"tools/call\"";
            let policy = match i % 10 {
                0..=4 => {
                    let id = format!("srv-{}/tool-{i}", d % SERVERS);
                    let scope = tool(id.clone());
                    tools.push(id);
                    format!(
                        "permit (principal in {team}, action == {call}, resource == {scope})\n\
                         when {{ context has intent && context.intent == \"task-{}\" }};",
                        i % 7
                    )
                }
                5 | 6 => format!(
                    "permit (principal == {me}, action == {call}, resource in {})\n\
                     when {{ context has task }};",
                    server(d + i % 10 - 5)
                ),
                7 => format!(
                    "permit (principal == {me}, action in [Toolgate::Action::\"session\", \
                     Toolgate::Action::\"discovery\"], resource == {});",
                    server(d)
                ),
                8 => format!(
                    "forbid (principal == {me}, action == {call}, resource == {})\n\
                     unless {{ context has intent && context.intent == \"audit\" }};",
                    tool(format!("srv-{}/tool-{}", d % SERVERS, i - 7))
                ),
                // Arguments are typed per tool: this reads `tool-0`'s, on the forbid's server.
                _ => {
                    let k = d / TEAMS % SERVERS;
                    let path = format!("context.arguments[\"srv-{k}\"][\"tool-0\"]");
                    format!(
                        "forbid (principal in {team}, action == {call}, resource in {})\n\
                         when {{ context has arguments && context.arguments has \"srv-{k}\" && \
                         context.arguments[\"srv-{k}\"] has \"tool-0\" && {path} has path && \
                         {path}.path like \"/secret/{i}/*\" }};",
                        server(d / TEAMS)
                    )
                }
            };
            cedar.push_str(&format!("@id(\"gen-{i}\")\n{policy}\n"));
        }
        let mut entities = Vec::new();
        for t in 0..TEAMS {
            entities.push(json!({"uid": {"type": "Toolgate::AgentGroup", "id": format!("team-{t}")}, "attrs": {}, "parents": []}));
        }
        for s in 0..SERVERS {
            entities.push(json!({"uid": {"type": "Toolgate::Server", "id": format!("srv-{s}")}, "attrs": {}, "parents": []}));
        }
        for d in 0..n.div_ceil(10) {
            entities.push(json!({"uid": {"type": "Toolgate::Agent", "id": agent(d)}, "attrs": {},
                "parents": [{"type": "Toolgate::AgentGroup", "id": format!("team-{}", d % TEAMS)}]}));
        }
        for id in tools {
            let server = id.split('/').next().unwrap_or_default().to_owned();
            entities.push(
                json!({"uid": {"type": "Toolgate::Tool", "id": id}, "attrs": {"sensitivity": "low"},
                "parents": [{"type": "Toolgate::Server", "id": server}]}),
            );
        }
        let servers: Vec<String> = (0..SERVERS)
            .map(|s| format!("\"srv-{s}\"?: {{ \"tool-0\"?: {{ path?: String }} }}"))
            .collect();
        let arguments = format!(
            "namespace Toolgate {{ type Arguments = {{ {} }}; }}",
            servers.join(", ")
        );
        json!({
            "trust_domains": ["toolgate.test"],
            "server": "srv-0",
            "policies": {"cedar": cedar, "entities": entities, "arguments_schema": arguments},
        })
    }

    /// The other shape, `scripts/lib/gen_policies.py`'s: nine policies in ten a per-tool
    /// permit for team 0 with an intent condition (`resource == Tool`, `context.intent ==
    /// "task-<i>"`), one in ten a general forbid on `srv-0/tool-0`'s `path` argument
    /// (`context.arguments["srv-0"]["tool-0"].path == "/secret/<i>"`, behind `has`
    /// tests), on any principal and resource: every tool call must consider all of them.
    /// The request is allowed by permit 0 and matches none of the forbids.
    fn argument_forbids(n: usize) -> Value {
        let mut cedar = String::new();
        let mut tools = Vec::new();
        let call = "Toolgate::Action::\"tools/call\"";
        for i in 0..n {
            let policy = if i % 10 == 9 {
                let path = "context.arguments[\"srv-0\"][\"tool-0\"]";
                format!(
                    "forbid (principal, action == {call}, resource)\n\
                     when {{ context has arguments && context.arguments has \"srv-0\" && \
                     context.arguments[\"srv-0\"] has \"tool-0\" && {path} has path && \
                     {path}.path == \"/secret/{i}\" }};"
                )
            } else {
                let id = format!("srv-0/tool-{i}");
                let scope = format!("Toolgate::Tool::\"{id}\"");
                tools.push(id);
                format!(
                    "permit (principal in Toolgate::AgentGroup::\"team-0\", action == {call}, \
                     resource == {scope})\n\
                     when {{ context has intent && context.intent == \"task-{i}\" }};"
                )
            };
            cedar.push_str(&format!("@id(\"gen-{i}\")\n{policy}\n"));
        }
        let mut entities = vec![
            json!({"uid": {"type": "Toolgate::AgentGroup", "id": "team-0"}, "attrs": {}, "parents": []}),
            json!({"uid": {"type": "Toolgate::Server", "id": "srv-0"}, "attrs": {}, "parents": []}),
            json!({"uid": {"type": "Toolgate::Agent", "id": agent(0)}, "attrs": {},
                "parents": [{"type": "Toolgate::AgentGroup", "id": "team-0"}]}),
        ];
        entities.extend(tools.into_iter().map(|id| {
            json!({"uid": {"type": "Toolgate::Tool", "id": id}, "attrs": {"sensitivity": "low"},
                "parents": [{"type": "Toolgate::Server", "id": "srv-0"}]})
        }));
        let arguments =
            "namespace Toolgate { type Arguments = { \"srv-0\"?: { \"tool-0\"?: { path?: String } } }; }";
        json!({
            "trust_domains": ["toolgate.test"],
            "server": "srv-0",
            "policies": {"cedar": cedar, "entities": entities, "arguments_schema": arguments},
        })
    }

    /// The request: agent `gen-0` calls `srv-0/tool-0`, which its team may call for intent `task-0`.
    struct Request {
        headers: Vec<Header>,
        body: Vec<u8>,
        peer: Peer,
    }

    fn request() -> Request {
        let content = "The quick brown fox jumps over the lazy dog. ".repeat(16);
        let body = json!({"jsonrpc": "2.0", "id": 42, "method": "tools/call", "params": {
            "name": "tool-0",
            "arguments": {"path": "/docs/guide/getting-started.md", "encoding": "utf-8",
                          "max_bytes": 65536, "content": content}}});
        let headers = [
            (":method", "POST"),
            (":path", "/mcp"),
            (":authority", "127.0.0.1"),
            ("content-type", "application/json"),
            ("x-agent-intent", "task-0"),
            ("x-agent-task", "BENCH-1"),
            ("x-agent-session", "bench-session"),
            ("x-request-id", "5e0f4a4c-2d7e-4c43-a2a1-0d4f1f2b7c11"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect();
        Request {
            headers,
            body: body.to_string().into_bytes(),
            peer: Peer::with_uri_san(AGENT),
        }
    }

    fn decide_and_authorize(c: &mut Criterion) {
        let request = request();
        let http = HttpRequest {
            headers: &request.headers,
            body: &request.body,
        };
        let input = Input::new(http, &request.peer, 1_700_000_000_000_000_000);
        let sizes: &[usize] = match std::env::args().any(|arg| arg == "--bench") {
            true => &SIZES,
            false => &TEST_SIZES,
        };
        for &n in sizes {
            bench_shape(c, "", &catalog(n), n, &input, &request.peer, true);
        }
        for &n in sizes.iter().filter(|&&n| n >= 1_000) {
            let config = argument_forbids(n);
            bench_shape(c, "-forbids", &config, n, &input, &request.peer, false);
        }
    }

    /// `decide{suffix}/n` and `authorize{suffix}/sliced/n` (and `unsliced`) on one
    /// generated configuration.
    fn bench_shape(
        c: &mut Criterion,
        suffix: &str,
        config: &Value,
        n: usize,
        input: &Input<'_>,
        peer: &Peer,
        unsliced: bool,
    ) {
        let authorizer = Authorizer::new();
        let config_json = config.to_string();
        let gate = Gate::configure(config_json.as_bytes(), 1).expect("gate");
        let verdict = gate.decide(input, &|| 0);
        assert_eq!(verdict.outcome, Outcome::Allow, "{:?}", verdict.record);

        // The same request as a Cedar request, for authorization alone.
        let config = Config::from_json(config_json.as_bytes()).expect("config");
        let store = PolicyStore::build(&config.policies, &[]).expect("store");
        let calls = toolgate::protocol::classify(&input.request, "srv-0", &config).expect("call");
        let identity = identity::resolve(
            &config,
            peer,
            identity::ClaimedHeaders {
                dev: None,
                xfcc: None,
            },
        )
        .expect("identity");
        let intent = Intent {
            intent: Some("task-0".into()),
            task: Some("BENCH-1".into()),
            session: Some("bench-session".into()),
        };
        let facts = Facts {
            identity: &identity,
            credential: None,
            now_unix: 1_700_000_000,
            intent: &intent,
            server: "srv-0",
            http_method: "POST",
            path: "/mcp",
            protocol_version: None,
            behaviour: &[],
        };
        let built = cedar_request::build(&store, &calls.as_slice()[0], &facts).expect("request");
        let deciding = || authorize::slice(&store, &built).expect("a slice");
        eprintln!(
            "{n} generated policies{suffix}: {} in all, {} in this request's scope slice, {} evaluated",
            store.policy_count(),
            store
                .policies_for(&built.principal, &built.action, &built.resource)
                .policies.policies()
                .count(),
            deciding().policies.policies().count()
        );

        c.bench_with_input(
            BenchmarkId::new(format!("decide{suffix}"), n),
            input,
            |b, input| b.iter(|| gate.decide(black_box(input), &|| 0).record.to_json()),
        );
        let mut group = c.benchmark_group(format!("authorize{suffix}"));
        if n >= 10_000 {
            // About 10 ms an iteration unsliced: ten samples are plenty.
            group.sample_size(10);
        }
        group.bench_function(BenchmarkId::new("sliced", n), |b| {
            b.iter(|| {
                let slice = deciding();
                let request = built.request_reading(&slice.context_keys).expect("request");
                authorizer.is_authorized(black_box(&request), &slice.policies, &store.entities)
            })
        });
        if unsliced {
            group.bench_function(BenchmarkId::new("unsliced", n), |b| {
                b.iter(|| {
                    authorizer.is_authorized(
                        black_box(built.request().expect("request")),
                        &store.policies,
                        &store.entities,
                    )
                })
            });
        }
        group.finish();
    }

    criterion::criterion_group! {
        name = benches;
        // Nine benchmarks in well under two minutes on a busy two-core machine.
        config = Criterion::default()
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .sample_size(30);
        targets = decide_and_authorize
    }
}
