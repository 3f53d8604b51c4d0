//! Raw headers + body -> decision: the core must never panic, and its answer must be coherent.
//!
//! Input layout: the first byte picks the peer identity (so identity handling is
//! fuzzed too), then `name: value` header lines, a blank line and the body. After
//! the body, sections separated by `\n\n\n` stand for what Envoy hands over: the
//! jwt_authn metadata (as the token, the approval and a revocation entry), the
//! agent's session-history shard, a risk-feed poll's body, and the stored risk
//! feed and its state, so every decoder of host-provided bytes is fuzzed with history and the
//! risk feed configured. A selector from 0xC0 up sends the request to an A2A route.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use toolgate::approval::ApprovalState;
use toolgate::credential::TokenState;
use toolgate::enforce::Action;
use toolgate::gate::{Input, Outcome};
use toolgate::http::{Header, HttpRequest};
use toolgate::identity::Peer;
use toolgate::record::{Decision, DecisionRecord};
use toolgate::shared::{Memory, SharedData};
use toolgate::{history, risk, Gate};
use toolgate_fuzz::{configured, Shared};

fn gate() -> &'static Gate {
    static GATE: OnceLock<Shared> = OnceLock::new();
    let config = br#"{"trust_domains":["toolgate.test"],"server":"tools","batches":"evaluate",
        "dev_identity_header":"x-dev-id","routes":{"shadow":{"mode":"shadow"}},
        "credentials":{"required":false},"revocation":{"controllers":["spiffe://toolgate.test/agent/writer"]},
        "history":{},"risk_feed":{},"a2a":{"jsonrpc_paths":["/a2a"],"http_json_prefixes":["/rest"]}}"#;
    configured(&GATE, config)
}

/// The input after the headers, split at `\n\n\n`.
struct Sections<'a>(Option<&'a [u8]>);

impl<'a> Iterator for Sections<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.0.take()?;
        match rest.windows(3).position(|w| w == b"\n\n\n") {
            Some(at) => {
                self.0 = Some(&rest[at + 3..]);
                Some(&rest[..at])
            }
            None => Some(rest),
        }
    }
}

const PEERS: [Option<&str>; 5] = [
    None,
    Some("spiffe://toolgate.test/agent/reader"),
    Some("spiffe://toolgate.test/agent/writer"),
    Some("spiffe://evil.test/agent/reader"),
    Some("spiffe://toolgate.test/agent/../x"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let split = rest.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(at) => (&rest[..at], &rest[at + 2..]),
        None => (rest, &[][..]),
    };
    let mut sections = Sections(Some(body));
    let body = sections.next().unwrap_or_default();
    let [metadata, shard, feed, stored_feed, stored_meta] =
        std::array::from_fn(|_| sections.next());
    // Selectors from 0xC0 up send the request to an A2A route (JSON-RPC, HTTP+JSON) instead.
    let (method, path): (&[u8], &[u8]) = match selector {
        0xC0..=0xCF => (b"POST", b"/a2a"),
        0xD0..=0xDF => (b"POST", b"/rest/message:send"),
        0xE0..=0xEF => (b"GET", b"/rest/tasks/t-1"),
        0xF0..=0xFF => (b"POST", b"/rest/tasks/t-1:cancel"),
        _ => (b"POST", b"/mcp"),
    };
    let mut headers: Vec<Header> = vec![
        (":method".into(), method.to_vec()),
        (":path".into(), path.to_vec()),
    ];
    for line in head.split(|&b| b == b'\n') {
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase();
            headers.push((name, line[colon + 1..].trim_ascii().to_vec()));
        }
    }
    let peer = match PEERS[usize::from(selector) % PEERS.len()] {
        Some(id) if selector & 0x20 != 0 => Peer {
            uri_sans: vec![id.into(), id.into()],
            unreadable: false,
        },
        Some(id) => Peer::with_uri_san(id),
        None => Peer {
            uri_sans: Vec::new(),
            unreadable: selector & 0x10 != 0,
        },
    };
    let shared = Memory::new();
    let agent = PEERS[usize::from(selector) % PEERS.len()];
    let config = gate().config();
    if let (Some(shard), Some(agent), Some(history)) = (shard, agent, &config.history) {
        let _ = shared.set(&history::shard_key(history, agent), shard, 0);
    }
    if let Some(feed) = feed {
        let poll = risk::Poll {
            status: Some(200),
            body: feed,
        };
        let _ = risk::record_poll(&shared, &poll, u64::from(selector) << 39);
    }
    for (key, stored) in [(risk::FEED_KEY, stored_feed), (risk::META_KEY, stored_meta)] {
        if let Some(stored) = stored {
            let _ = shared.set(key, stored, 0);
        }
    }
    let route = if selector & 0x80 != 0 {
        Some("shadow")
    } else {
        None
    };
    let input = Input {
        route_name: route,
        body_too_large: selector & 0x40 != 0,
        token: TokenState::from_envoy(metadata, None),
        approval: ApprovalState::from_envoy(metadata, None),
        revocations: metadata
            .filter(|_| selector & 0x08 != 0)
            .map(|m| vec![("toolgate/revoked/task/t".to_owned(), m.to_vec())])
            .unwrap_or_default(),
        shared: Some(&shared),
        ..Input::new(
            HttpRequest {
                headers: &headers,
                body,
            },
            &peer,
            u64::from(selector) << 40,
        )
    };
    let verdict = gate().decide(&input, &|| 0);

    let record = &verdict.record;
    // The line the access log gets reads back as the same record.
    let line: DecisionRecord = serde_json::from_str(&record.to_json()).expect("the record is JSON");
    assert_eq!(&line, record);
    let forwarded = matches!(verdict.action, Action::Forward { .. });
    match verdict.outcome {
        Outcome::Allow => {
            assert!(forwarded);
            assert_eq!(record.decision, Decision::Allow);
        }
        Outcome::ShadowDeny => {
            assert!(forwarded && route.is_some());
            assert_eq!(record.decision, Decision::Deny);
            assert!(!record.enforced);
        }
        Outcome::Deny | Outcome::Error => {
            assert!(!forwarded, "a refused request was forwarded");
            assert_eq!(record.decision, Decision::Deny);
            assert!(record.reason.is_some(), "a refusal without a reason");
        }
        Outcome::FailOpen => panic!("no route is fail-open in this configuration"),
        Outcome::Revocation => panic!("no revocation path in this configuration"),
    }
    if let Action::Respond { status, body, .. } = &verdict.action {
        let body: serde_json::Value =
            serde_json::from_slice(body).expect("refusal bodies are JSON");
        if *status == 200 {
            // A policy's no to a JSON-RPC request: the error (or isError result) for its id.
            let reason = record.reason.expect("a refusal has a reason");
            assert_eq!(
                reason.class(),
                toolgate::reason::Class::Policy,
                "{reason:?} sent as 200"
            );
            // A batch is answered with an array of them.
            let answers = match &body {
                serde_json::Value::Array(answers) => answers.iter().collect(),
                one => vec![one],
            };
            assert!(!answers.is_empty(), "{body}");
            for answer in answers {
                assert!(
                    answer.get("error").is_some() || answer["result"]["isError"] == true,
                    "{body}"
                );
            }
        } else {
            assert!((400..500).contains(status));
        }
    }
});
