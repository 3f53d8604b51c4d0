//! What reading an answer costs, natively: `cargo bench -p toolgate --bench answers`.
//!
//! - `results/64_kib`: a 64 KiB `tools/call` result through the five built-in detectors
//!   (effect `redact`), as the glue feeds it: strict JSON parse, every string scanned, the
//!   one key at its end redacted, the answer re-encoded. The text is written to be hard on
//!   the matchers: every sentence holds a URL and the word "bearer".
//! - `results/parse`, `results/reencode`, `results/builtin/<id>`: where that time goes.
//! - `lists/fifty_tools/<agent>`: `Gate::filter_list` on a 50-tool `tools/list` (the demo's
//!   nine tools five times over and five the catalog does not know), for the payments agent
//!   (whose `refund` needs a partial evaluation and a witness search) and a reader.
//!
//! `scripts/bench` measures the same answers through Envoy (its `lists` and `results`
//! tables). `cargo bench -p toolgate --bench answers -- --test` runs each case once.
//! The functional checks on these inputs are tests (`results.rs`, `listing_demo.rs`).

#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(native::benches);

// Benches are native only; this keeps a wasm32 `--all-targets` build compiling.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
#[path = "../tests/kit/mod.rs"]
mod kit;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::hint::black_box;
    use std::time::Duration;

    use criterion::{BenchmarkId, Criterion};
    use serde_json::{json, Value};
    use toolgate::config::Builtin;
    use toolgate::listing::ListMethod;
    use toolgate::response::Asked;
    use toolgate::results::{self, Findings, Scan};

    use super::kit::{self, Request, PAYMENTS, READER};

    const SENTENCE: &str =
        "The quick brown fox jumps over the lazy dog; see https://example.com/docs and bearer of news. ";
    const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
    const TOOLS: &str = include_str!("../../examples/demo/mcp/tools.json");

    fn text_64_kib() -> String {
        let mut text = String::new();
        while text.len() < 64 * 1024 {
            text.push_str(SENTENCE);
        }
        text
    }

    fn tool_result(text: &str) -> Vec<u8> {
        let answer = json!({ "jsonrpc": "2.0", "id": 7,
            "result": { "content": [{ "type": "text", "text": text }], "isError": false } });
        serde_json::to_vec(&answer).expect("JSON")
    }

    fn results_answers(c: &mut Criterion) {
        let detectors: Vec<Value> = Builtin::ALL
            .iter()
            .map(|b| json!({ "builtin": b.id(), "effect": "redact" }))
            .collect();
        let gate = kit::gate_with(json!({ "results": { "detectors": detectors } }));
        let config = gate.config();
        let detectors = config.results.as_ref().expect("results configured");
        let text = text_64_kib();
        let redacted = tool_result(&format!("{text}{KEY}"));
        let clean = tool_result(&text);

        let mut group = c.benchmark_group("results");
        group.bench_function("64_kib", |b| {
            b.iter(|| {
                let asked = Asked {
                    method: Some("tools/call".into()),
                    id: Some(json!(7)),
                    resource: Some("tools/read_file".into()),
                    batch: false,
                    decision_id: "d-1".into(),
                };
                let mut reader = results::reader(config, asked, Some(b"application/json"), None)
                    .expect("a reader");
                let mut findings = Findings::default();
                let mut scan = Scan::new(detectors, &mut findings, true, None);
                black_box(reader.feed(&mut scan, black_box(&redacted), true))
            })
        });
        group.bench_function("parse", |b| {
            b.iter(|| toolgate::json::parse(black_box(&clean)).expect("JSON"))
        });
        group.bench_function("reencode", |b| {
            b.iter(|| {
                let value: Value = serde_json::from_slice(black_box(&clean)).expect("JSON");
                serde_json::to_vec(&value).expect("JSON")
            })
        });
        for builtin in Builtin::ALL {
            group.bench_with_input(
                BenchmarkId::new("builtin", builtin.id()),
                &text,
                |b, text| {
                    let mut ranges = Vec::new();
                    b.iter(|| {
                        ranges.clear();
                        builtin.find(black_box(text.as_bytes()), &mut ranges);
                    })
                },
            );
        }
        group.finish();
    }

    fn fifty_tools() -> Vec<Value> {
        let list: Value = serde_json::from_str(TOOLS).expect("tools.json");
        let demo = list["result"]["tools"].as_array().expect("tools").clone();
        let mut tools: Vec<Value> = (0..5).flat_map(|_| demo.clone()).collect();
        tools.extend((0..5).map(|k| json!({ "name": format!("unknown_{k}") })));
        tools
    }

    fn lists(c: &mut Criterion) {
        let gate = kit::gate();
        let tools = fifty_tools();
        let mut group = c.benchmark_group("lists");
        for (name, agent) in [("payments", PAYMENTS), ("reader", READER)] {
            let request = Request::post(
                json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }),
                Some(agent),
            );
            group.bench_with_input(
                BenchmarkId::new("fifty_tools", name),
                &request,
                |b, request| {
                    b.iter(|| {
                        kit::filter_list(&gate, request, ListMethod::Tools, black_box(&tools))
                    })
                },
            );
        }
        group.finish();
    }

    fn config() -> Criterion {
        Criterion::default()
            .sample_size(30)
            .measurement_time(Duration::from_secs(3))
            .configure_from_args()
    }

    criterion::criterion_group! {
        name = benches;
        config = config();
        targets = results_answers, lists
    }
}
