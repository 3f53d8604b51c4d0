//! Where a decision's time goes, natively: `cargo run --release --example profile [POLICY_CONFIG.json]`.
//!
//! Runs the benchmark's request through each core stage many times and prints the
//! mean time per stage. The wasm filter runs the same code under V8, typically 1.5-3x slower.
//! The "after ... asleep/spinning" rows time one decision after a gap, as at agent pace
//! (see docs/performance.md, "Agent pace").

use std::time::Instant;

use cedar_policy::Authorizer;
use serde_json::Value;
use toolgate::cedar_request::{self, Facts, Intent};
use toolgate::config::Config;
use toolgate::gate::Input;
use toolgate::http::{Header, HttpRequest};
use toolgate::identity::{self, Peer};
use toolgate::policy::PolicyStore;
use toolgate::protocol::classify;
use toolgate::shared::SharedData;
use toolgate::Gate;

const ROUNDS: u32 = 20_000;

fn time<T>(label: &str, mut f: impl FnMut() -> T) {
    for _ in 0..1000 {
        std::hint::black_box(f());
    }
    let start = Instant::now();
    for _ in 0..ROUNDS {
        std::hint::black_box(f());
    }
    let per = start.elapsed().as_nanos() as f64 / f64::from(ROUNDS) / 1000.0;
    println!("{label:<40} {per:>8.2} µs");
}

/// The median time of one call made after a gap, as an agent makes them: sleeping lets
/// the core idle (or run other work) between calls; spinning keeps it busy without
/// touching the decision's code or data. Sleep-slow but spin-fast means the slowness
/// comes from the idle core, not from the time that passed.
fn paced<T>(label: &str, gap: std::time::Duration, spin: bool, mut f: impl FnMut() -> T) {
    let mut times: Vec<f64> = (0..PACED_CALLS)
        .map(|_| {
            if spin {
                let until = Instant::now() + gap;
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
            } else {
                std::thread::sleep(gap);
            }
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed().as_nanos() as f64 / 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    println!("{label:<40} {median:>8.2} µs (median of {PACED_CALLS})");
}

const PACED_CALLS: usize = 50;

fn main() {
    let config_json = match std::env::args().nth(1) {
        Some(path) => std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")),
        None => br#"{"trust_domains":["toolgate.test"],"server":"tools","dev_identity_header":"x-dev-spiffe-id"}"#.to_vec(),
    };
    let config = Config::from_json(&config_json).expect("config");
    let gate = Gate::configure(&config_json, 1).expect("gate");
    let store = PolicyStore::build(
        &config.policies,
        &toolgate::policy::feature_policies(&config),
    )
    .expect("store");
    println!("{} policies", store.policy_count());

    let content = "The quick brown fox jumps over the lazy dog. ".repeat(16);
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{{"name":"read_file","arguments":{{"path":"/docs/guide/getting-started.md","encoding":"utf-8","max_bytes":65536,"content":"{content}"}}}}}}"#
    );
    let headers: Vec<Header> = [
        (":method", "POST"),
        (":path", "/mcp"),
        (":authority", "127.0.0.1"),
        ("content-type", "application/json"),
        ("x-dev-spiffe-id", "spiffe://toolgate.test/agent/reader"),
        ("x-agent-intent", "summarize"),
        ("x-agent-task", "BENCH-1"),
        ("x-agent-session", "bench-session"),
        ("x-request-id", "5e0f4a4c-2d7e-4c43-a2a1-0d4f1f2b7c11"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
    .collect();
    let request = HttpRequest {
        headers: &headers,
        body: body.as_bytes(),
    };
    let peer = Peer::default();

    time("json parse (serde_json::Value)", || {
        serde_json::from_slice::<Value>(body.as_bytes()).unwrap()
    });
    time("classify (parse + JSON-RPC mapping)", || {
        classify(&request, "tools", &config).unwrap()
    });
    let calls = classify(&request, "tools", &config).unwrap();
    let call = &calls.as_slice()[0];
    let identity = identity::resolve(
        &config,
        &peer,
        identity::ClaimedHeaders {
            dev: Some("spiffe://toolgate.test/agent/reader"),
            xfcc: None,
        },
    )
    .unwrap();
    let intent = Intent {
        intent: Some("summarize".into()),
        task: Some("BENCH-1".into()),
        session: Some("bench-session".into()),
    };
    let facts = Facts {
        identity: &identity,
        credential: None,
        now_unix: 0,
        intent: &intent,
        server: "tools",
        http_method: "POST",
        path: "/mcp",
        protocol_version: None,
        behaviour: &[],
    };
    time("context values (uids + values)", || {
        cedar_request::build(&store, call, &facts).unwrap()
    });
    let built = cedar_request::build(&store, call, &facts).unwrap();
    let authorizer = Authorizer::new();
    let sliced = store.policies_for(&built.principal, &built.action, &built.resource);
    println!(
        "{} policies in this request's slice, reading {:?} of the context",
        sliced.policies.policies().count(),
        sliced.context_keys
    );
    time("cedar request, whole context", || {
        let built = cedar_request::build(&store, call, &facts).unwrap();
        built.request().is_ok()
    });
    time("cedar request, what the slice reads", || {
        let built = cedar_request::build(&store, call, &facts).unwrap();
        built.request_reading(&sliced.context_keys).is_ok()
    });
    let cedar = built.request().unwrap();
    time("cedar is_authorized (sliced set)", || {
        authorizer.is_authorized(cedar, &sliced.policies, &store.entities)
    });
    time("slice lookup (policies_for)", || {
        store.policies_for(&built.principal, &built.action, &built.resource)
    });
    time("cedar is_authorized (whole set)", || {
        authorizer.is_authorized(cedar, &store.policies, &store.entities)
    });
    time("arguments digest (sha256)", || {
        toolgate::digest::json_sha256(call.arguments.as_ref().unwrap())
    });
    let input = Input::new(request, &peer, 1);
    time("whole decision (Gate::decide)", || {
        gate.decide(&input, &|| 0)
    });
    if let Ok(seconds) = std::env::var("PROFILE_LOOP_SECONDS") {
        // For a sampling profiler: only the decision and its line, for this long.
        let until = Instant::now() + std::time::Duration::from_secs(seconds.parse().unwrap_or(5));
        while Instant::now() < until {
            for _ in 0..1000 {
                std::hint::black_box(gate.decide(&input, &|| 0).record.to_json());
            }
        }
        return;
    }
    let verdict = gate.decide(&input, &|| 0);
    let line = verdict.record.to_json();
    println!("decision record line: {} bytes", line.len());
    time("decision record line (to_json)", || {
        verdict.record.to_json()
    });
    time("decision and its line, twice (as forwarded)", || {
        let verdict = gate.decide(&input, &|| 0);
        (verdict.record.to_json(), verdict.record.to_json())
    });
    let ms = std::time::Duration::from_millis;
    paced(
        "whole decision, after 100 ms asleep",
        ms(100),
        false,
        || gate.decide(&input, &|| 0),
    );
    paced("whole decision, after 5 ms asleep", ms(5), false, || {
        gate.decide(&input, &|| 0)
    });
    paced(
        "whole decision, after 100 ms spinning",
        ms(100),
        true,
        || gate.decide(&input, &|| 0),
    );

    // The same request with session history, against an in-memory shared data:
    // one session, then a shard full of other sessions.
    let mut with_history: Value = serde_json::from_slice(&config_json).expect("config");
    with_history["history"] = serde_json::json!({});
    let history_gate = Gate::configure(with_history.to_string().as_bytes(), 1).expect("gate");
    let shared = toolgate::shared::Memory::new();
    let input = Input {
        shared: Some(&shared),
        ..Input::new(
            HttpRequest {
                headers: &headers,
                body: body.as_bytes(),
            },
            &peer,
            1_800_000_000_000_000_000,
        )
    };
    time("whole decision, session history (1 session)", || {
        history_gate.decide(&input, &|| 0)
    });
    let full = toolgate::config::History::default();
    let loaded =
        toolgate::history::load(&shared, &full, "spiffe://toolgate.test/agent/reader").unwrap();
    let mut shard = loaded.shard().unwrap();
    let sessions: Vec<String> = (0..full.shard_capacity())
        .map(|n| format!("other-{n}"))
        .collect();
    for session in &sessions {
        let call = toolgate::history::Recorded {
            agent: "spiffe://toolgate.test/agent/reader",
            session,
            resource: "tools/read_file",
            tool: Some("tools/read_file"),
            tags: &[],
        };
        shard.record(&call, 1_800_000_000 - 1, &full).unwrap();
    }
    let bytes = shard.encode().unwrap();
    shared.set(&loaded.key, &bytes, 0).unwrap();
    println!(
        "a full shard: {} entries, {} bytes",
        shard.len(),
        bytes.len()
    );
    time("shard decode + encode (full)", || {
        toolgate::history::Shard::decode(&bytes).unwrap().encode()
    });
    time("whole decision, session history (full shard)", || {
        history_gate.decide(&input, &|| 0)
    });
}
