//! Body bytes -> decision, against lenient parsers: a forwarded body must mean one call to every reader.
//!
//! For each body toolgate forwards, the readers of `toolgate_fuzz` (serde_json and
//! Python last-wins, first-wins, Go's case-folding struct decoding, after Python's
//! encoding detection) must either read no JSON-RPC request in it, or read the
//! same method, name and arguments toolgate decided on. A body refused by toolgate
//! is never a failure: the upstream never sees it.
//!
//! Input layout: the first byte picks the path and content type; the rest is the body.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use toolgate::enforce::Action;
use toolgate::gate::Input;
use toolgate::http::{Header, HttpRequest};
use toolgate::identity::Peer;
use toolgate::Gate;
use toolgate_fuzz::{configured, decode, from_value, parse, reading, same, Lax, Shared, READERS};

/// Everything permitted, so that as much as possible is forwarded and compared.
fn gate() -> &'static Gate {
    static GATE: OnceLock<Shared> = OnceLock::new();
    let config = br#"{"trust_domains":["toolgate.test"],"server":"tools","log_arguments":true,
        "policies":{"cedar":"@id(\"everything\") permit(principal, action, resource);"}}"#;
    configured(&GATE, config)
}

const PATHS: [&str; 2] = ["/mcp", "/api/v1/items"];
const CONTENT_TYPES: [Option<&str>; 4] = [
    None,
    Some("text/plain"),
    Some("application/json"),
    Some("application/octet-stream"),
];
/// Methods whose `params.name` or `params.uri` toolgate reads as the resource.
const NAMED: [&str; 5] = [
    "tools/call",
    "prompts/get",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let path = PATHS[usize::from(selector & 1)];
    let mut headers: Vec<Header> = vec![
        (":method".into(), b"POST".to_vec()),
        (":path".into(), path.as_bytes().to_vec()),
    ];
    if let Some(content_type) = CONTENT_TYPES[usize::from(selector >> 1) % CONTENT_TYPES.len()] {
        headers.push(("content-type".into(), content_type.as_bytes().to_vec()));
    }
    let peer = Peer::with_uri_san("spiffe://toolgate.test/agent/reader");
    let input = Input::new(HttpRequest { headers: &headers, body }, &peer, 1 << 60);
    let verdict = gate().decide(&input, &|| 0);
    if !matches!(verdict.action, Action::Forward { .. }) {
        return;
    }
    let Some(parsed) = decode(body).as_deref().and_then(parse) else {
        return;
    };
    let record = &verdict.record;
    for keys in READERS {
        if let Lax::Array(items) = &parsed {
            let read = items.iter().find_map(|item| reading(item, keys));
            assert!(read.is_none(), "a batch was forwarded, and {keys:?} reads {read:?} in it");
            continue;
        }
        let Some(read) = reading(&parsed, keys) else {
            continue;
        };
        let Some(method) = record.rpc_method.as_deref() else {
            panic!("forwarded as {:?} while {keys:?} reads the JSON-RPC request {read:?}", record.action);
        };
        assert_eq!(method, read.method, "{keys:?} reads another method");
        if NAMED.contains(&method) {
            let ours = record.resource.as_deref().and_then(|r| r.strip_prefix("tools/"));
            assert_eq!(
                ours.map(|name| Lax::String(name.to_owned())),
                read.target,
                "{keys:?} reads another {method} target"
            );
        }
        if method == "tools/call" {
            let ours = record.arguments.as_ref().map(|v| from_value(v, keys));
            let agree = match (&ours, &read.arguments) {
                (Some(ours), Some(theirs)) => same(ours, theirs),
                (None, None | Some(Lax::Null)) => true,
                (Some(Lax::Object(empty)), None) => empty.is_empty(),
                _ => false,
            };
            assert!(agree, "{keys:?} reads other arguments: toolgate {ours:?}, {keys:?} {:?}", read.arguments);
        }
    }
});
