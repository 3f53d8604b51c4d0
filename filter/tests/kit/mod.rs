//! The core tests' one kit: gates on the demo configuration, requests and peers, deciding, and reading the decision.
//!
//! Every read of a decision's record goes through [`record`], so a change to how
//! `Gate::decide` hands the record back is a change here only.
#![allow(dead_code)]

use serde_json::{json, Value};
use toolgate::enforce::Action;
use toolgate::gate::{Effects, Input, Outcome};
use toolgate::http::{Header, HttpRequest};
use toolgate::identity::Peer;
use toolgate::listing::{Filtered, ListMethod};
use toolgate::reason::Reason;
use toolgate::record::DecisionRecord;
use toolgate::{Gate, Verdict};

pub const READER: &str = "spiffe://toolgate.test/agent/reader";
pub const WRITER: &str = "spiffe://toolgate.test/agent/writer";
pub const PAYMENTS: &str = "spiffe://toolgate.test/agent/payments";

/// The demo's policy files (`examples/demo/*.cedar`), in name order.
pub const DEMO_CEDAR: &[(&str, &str)] = &[
    (
        "a2a.cedar",
        include_str!("../../../examples/demo/a2a.cedar"),
    ),
    (
        "default.cedar",
        include_str!("../../../examples/demo/default.cedar"),
    ),
    (
        "rates.cedar",
        include_str!("../../../examples/demo/rates.cedar"),
    ),
];
/// The demo's `Arguments` type, generated from `examples/demo/mcp/tools.json`.
pub const DEMO_ARGUMENTS: &str = include_str!("../../../examples/demo/arguments.cedarschema");
/// The demo's agents, groups, servers and tool catalog.
pub const DEMO_ENTITIES: &str = include_str!("../../../examples/demo/entities.json");

/// The demo folder as the plugin configuration's `policies`, extending the embedded
/// defaults, the way `scripts/lib/ecds.py` publishes it (files joined after `// file:` lines).
pub fn demo_policies() -> Value {
    let cedar: String = DEMO_CEDAR
        .iter()
        .map(|(name, text)| format!("// file: {name}\n{text}"))
        .collect();
    let entities: Value = serde_json::from_str(DEMO_ENTITIES).expect("demo entities are JSON");
    json!({ "mode": "extend", "cedar": cedar, "arguments_schema": DEMO_ARGUMENTS, "entities": entities })
}

/// [`demo_policies`] with `overrides`: its `cedar` is added after the demo's policies,
/// its other fields (`arguments_schema`, `entities`, `mode`, `schema`) replace the demo's.
pub fn demo_policies_and(overrides: Value) -> Value {
    let mut policies = demo_policies();
    if let (Some(base), Value::Object(overrides)) = (policies.as_object_mut(), overrides) {
        for (key, value) in overrides {
            match (key.as_str(), base.get_mut("cedar"), value.as_str()) {
                ("cedar", Some(Value::String(cedar)), Some(more)) => {
                    cedar.push_str("// file: test.cedar\n");
                    cedar.push_str(more);
                }
                _ => {
                    base.insert(key, value);
                }
            }
        }
    }
    policies
}

/// The demo's base configuration (trust domain `toolgate.test`, server `tools`, the
/// demo policies) with `extra`'s top-level fields on top; `extra` may give its own `policies`.
pub fn config(extra: Value) -> Value {
    let mut config = json!({
        "trust_domains": ["toolgate.test"],
        "server": "tools",
        "policies": demo_policies(),
    });
    if let (Some(base), Value::Object(extra)) = (config.as_object_mut(), extra) {
        base.extend(extra);
    }
    config
}

/// A gate on [`config`]`(extra)`.
pub fn gate_with(extra: Value) -> Gate {
    configure(&config(extra), 1).unwrap_or_else(|e| panic!("configure: {e}"))
}

/// A gate on the demo configuration.
pub fn gate() -> Gate {
    gate_with(json!({}))
}

/// A gate on exactly `config`, nothing added, with the decision id seed `seed`.
pub fn configure(config: &Value, seed: u64) -> Result<Gate, String> {
    Gate::configure(config.to_string().as_bytes(), seed)
}

/// The decision record of a verdict as the access log gets it: its one JSON line,
/// read back. Tests read typed fields from [`Decided::typed`]; this is for the wire form.
pub fn record(verdict: &Verdict) -> Value {
    serde_json::from_str(&verdict.record.to_json()).expect("the record is JSON")
}

/// A JSON-RPC `tools/call` body.
pub fn tool_call(id: Value, name: &str, arguments: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": { "name": name, "arguments": arguments } })
}

/// One HTTP request to decide: headers, body and the peer's certificate.
pub struct Request {
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
    pub peer: Peer,
    pub unix_nanos: u64,
}

impl Request {
    /// `method path` with a request id, from `spiffe` (none: no certificate).
    pub fn new(method: &str, path: &str, body: impl Into<Vec<u8>>, spiffe: Option<&str>) -> Self {
        Self {
            headers: vec![
                (":method".into(), method.as_bytes().to_vec()),
                (":path".into(), path.as_bytes().to_vec()),
                ("x-request-id".into(), b"rid-1".to_vec()),
            ],
            body: body.into(),
            peer: spiffe.map(Peer::with_uri_san).unwrap_or_default(),
            unix_nanos: 1_700_000_000_123_456_789,
        }
    }

    /// A JSON POST to `/mcp`.
    pub fn post(body: Value, spiffe: Option<&str>) -> Self {
        Self::new("POST", "/mcp", body.to_string(), spiffe)
            .header("content-type", "application/json")
    }

    /// A `tools/call` of `name` as `spiffe`.
    pub fn tool(name: &str, arguments: Value, spiffe: &str) -> Self {
        Self::post(tool_call(json!(1), name, arguments), Some(spiffe))
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.as_bytes().to_vec()));
        self
    }

    /// At `seconds` Unix time.
    pub fn at(mut self, seconds: u64) -> Self {
        self.unix_nanos = seconds * 1_000_000_000;
        self
    }

    pub fn decide(&self, gate: &Gate) -> Decided {
        self.decide_with(gate, |_| {})
    }

    /// Decides with `adjust` setting what else Envoy would hand over (token, shared data, route...).
    pub fn decide_with<'a>(&'a self, gate: &Gate, adjust: impl FnOnce(&mut Input<'a>)) -> Decided {
        decided(self.verdict_with(gate, adjust))
    }

    /// The raw verdict, for what [`Decided`] does not carry (shared-data writes).
    pub fn verdict_with<'a>(&'a self, gate: &Gate, adjust: impl FnOnce(&mut Input<'a>)) -> Verdict {
        let mut input = Input::new(
            HttpRequest {
                headers: &self.headers,
                body: &self.body,
            },
            &self.peer,
            self.unix_nanos,
        );
        adjust(&mut input);
        gate.decide(&input, &|| 0)
    }
}

/// What a decision says, read once.
pub struct Decided {
    /// The record, typed, as the gate returned it.
    pub typed: DecisionRecord,
    /// The same record as its access-log line reads.
    pub record: Value,
    pub outcome: Outcome,
    pub action: Action,
    pub effects: Effects,
}

pub fn decided(verdict: Verdict) -> Decided {
    Decided {
        record: record(&verdict),
        typed: verdict.record,
        outcome: verdict.outcome,
        action: verdict.action,
        effects: verdict.effects,
    }
}

impl Decided {
    /// The refusal's code, or "" when allowed.
    pub fn reason(&self) -> &str {
        self.typed.reason.map_or("", Reason::code)
    }

    /// The determining policies.
    pub fn policies(&self) -> Vec<&str> {
        self.typed.policies.iter().map(String::as_str).collect()
    }

    /// The HTTP status the client gets (200 when forwarded).
    pub fn status(&self) -> u32 {
        match &self.action {
            Action::Respond { status, .. } => *status,
            Action::Forward { .. } => 200,
        }
    }

    /// A header of the refusal; none when forwarded.
    pub fn header(&self, name: &str) -> Option<&str> {
        match &self.action {
            Action::Respond { headers, .. } => headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str()),
            Action::Forward { .. } => None,
        }
    }

    /// The refusal's body as JSON; panics when forwarded.
    pub fn body(&self) -> Value {
        match &self.action {
            Action::Respond { body, .. } => serde_json::from_slice(body).expect("JSON body"),
            Action::Forward { .. } => panic!("forwarded, not refused"),
        }
    }
}

/// SplitMix64: tiny, seedable, good enough to pick shapes for the property tests
/// (`slicing.rs`, `listing.rs`); a failure prints its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// `request`'s list answer `items` filtered for its agent, as `Gate::filter_list` does it.
pub fn filter_list(
    gate: &Gate,
    request: &Request,
    method: ListMethod,
    items: &[Value],
) -> Filtered {
    let input = Input::new(
        HttpRequest {
            headers: &request.headers,
            body: &request.body,
        },
        &request.peer,
        request.unix_nanos,
    );
    gate.filter_list(&input, method, items).expect("filtered")
}
