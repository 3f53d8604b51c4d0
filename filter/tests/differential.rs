//! No parser differential with an upstream: what mainstream JSON readers fold together
//! or detect on their own is refused, on every path (docs/hardening.md, "Upstream
//! parsers checked against": each row is a test here).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

mod kit;

use kit::{demo_policies_and, gate_with, Decided, Request, DEMO_ARGUMENTS, READER};
use serde_json::json;
use toolgate::encoding::{self, Wide};
use toolgate::gate::Outcome;
use toolgate::json::{self, fold_eq, JsonError};
use toolgate::Gate;

const REST: &str = "/weather/v1/forecast";

fn decide(gate: &Gate, path: &str, content_type: Option<&str>, body: &[u8]) -> Decided {
    let mut request = Request::new("POST", path, body, Some(READER)).at(0);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request.decide(gate)
}

fn mcp(gate: &Gate, body: &[u8]) -> Decided {
    decide(gate, "/mcp", Some("application/json"), body)
}

/// Refused with `reason` and `status`; on the MCP endpoint also with `rpc_code`.
fn assert_refused(d: &Decided, reason: &str, status: u32, rpc_code: Option<i64>, what: &str) {
    assert_eq!(d.reason(), reason, "{what}");
    assert_eq!(d.status(), status, "{what}");
    assert_eq!(d.outcome, Outcome::Error, "{what}");
    if let Some(code) = rpc_code {
        assert_eq!(d.body()["error"]["code"], code, "{what}");
    }
}

/// The body was read as a REST call and reached policy (which permits no POST here).
fn assert_rest(d: &Decided, what: &str) {
    assert_eq!(
        (d.typed.action.as_deref(), d.reason()),
        (Some("http"), "not_permitted"),
        "{what}: {:?}",
        d.typed.errors
    );
}

fn errors(d: &Decided) -> String {
    d.typed.errors.join("\n")
}

// -- the fold -----------------------------------------------------------------------

fn folded(text: &str) -> String {
    json::fold(text).collect()
}

#[test]
fn the_fold_is_closed_under_every_case_mapping_of_every_character() {
    for c in (0..=0x10FFFF_u32).filter_map(char::from_u32) {
        let own = folded(c.encode_utf8(&mut [0; 4]));
        let lower: String = c.to_lowercase().collect();
        let upper: String = c.to_uppercase().collect();
        // Single-character mappings are Go's simple folding; longer ones (`ß` -> `SS`) Java's.
        // `İ`'s lowercase is `i` + U+0307; it folds as in Turkic, to the `i` of `id`.
        if c != '\u{130}' {
            assert_eq!(
                folded(&lower),
                own,
                "{c:?} ({:04X}) and its lowercase",
                c as u32
            );
        }
        assert_eq!(
            folded(&upper),
            own,
            "{c:?} ({:04X}) and its uppercase",
            c as u32
        );
        assert_eq!(folded(&own), own, "folding {c:?} ({:04X}) twice", c as u32);
    }
}

#[test]
fn the_fold_equates_what_go_s_simple_folding_orbits_do() {
    // Go's unicode.SimpleFold orbits of more than two runes (its caseOrbit table), the
    // pairs Unicode's simple folding adds past case mappings, and Turkic `i`s.
    let orbits: &[&[char]] = &[
        &['K', 'k', '\u{212A}'],
        &['S', 's', '\u{17F}'],
        &['\u{B5}', '\u{39C}', '\u{3BC}'],
        &['\u{C5}', '\u{E5}', '\u{212B}'],
        &['\u{DF}', '\u{1E9E}'],
        &['\u{1C4}', '\u{1C5}', '\u{1C6}'],
        &['\u{392}', '\u{3B2}', '\u{3D0}'],
        &['\u{398}', '\u{3B8}', '\u{3D1}', '\u{3F4}'],
        &['\u{399}', '\u{3B9}', '\u{345}', '\u{1FBE}'],
        &['\u{3A3}', '\u{3C3}', '\u{3C2}'],
        &['\u{3A9}', '\u{3C9}', '\u{2126}'],
        &['\u{1E60}', '\u{1E61}', '\u{1E9B}'],
        &['\u{390}', '\u{1FD3}'],
        &['\u{3B0}', '\u{1FE3}'],
        &['\u{FB05}', '\u{FB06}'],
        &['\u{13A0}', '\u{AB70}'],
        &['\u{1C90}', '\u{10D0}'],
        &['I', 'i', '\u{130}', '\u{131}'],
    ];
    for orbit in orbits {
        for a in *orbit {
            for b in *orbit {
                assert!(fold_eq(&a.to_string(), &b.to_string()), "{a:?} ~ {b:?}");
            }
        }
    }
    assert!(fold_eq("stra\u{DF}e", "STRASSE"));
    assert!(!fold_eq("name", "names"));
    assert!(!fold_eq("a", "\u{E0}"), "accents are not case");
}

// -- keys an upstream folds together --------------------------------------------------

#[test]
fn two_keys_equal_ignoring_case_are_refused_at_every_depth_on_every_path() {
    let g = gate_with(json!({}));
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","Name":"delete_database"}}"#,
            "name",
            "Name",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"\u212Aind":1,"kind":2}}}"#,
            "\u{212A}ind",
            "kind",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a"}},"paramſ":{"name":"delete_database"}}"#,
            "params",
            "paramſ",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":[{"stra\u00dfe":1,"STRASSE":2}]}}"#,
            "straße",
            "STRASSE",
        ),
        // Compared after unescaping: `\u004e` is `N`.
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","\u004eame":"delete_database"}}"#,
            "name",
            "Name",
        ),
    ];
    for (body, first, second) in cases {
        let d = mcp(&g, body.as_bytes());
        assert_refused(&d, "folded_json_key", 400, Some(-32700), body);
        let named = format!("{first:?} and {second:?}");
        assert!(errors(&d).contains(&named), "{body}: {}", errors(&d));
        for content_type in [Some("text/plain"), None] {
            let rest = decide(&g, REST, content_type, body.as_bytes());
            assert_refused(&rest, "folded_json_key", 400, None, body);
        }
    }
    // A REST body that is no JSON-RPC at all is held to the same rule.
    let rest = decide(
        &g,
        REST,
        Some("text/plain"),
        br#"{"city":"Oslo","CITY":"Rome"}"#,
    );
    assert_refused(&rest, "folded_json_key", 400, None, "REST");
    // Keys that only look alike, or differ by more than case, are distinct keys.
    let fine = r#"{"city":"Oslo","CITY2":"Rome","Straße":1,"Strase":2,"a":1,"\u00e0":2}"#;
    assert_rest(
        &decide(&g, REST, Some("application/json"), fine.as_bytes()),
        "distinct",
    );
}

#[test]
fn exact_duplicates_are_still_their_own_reason_and_named() {
    let g = gate_with(json!({}));
    // `n\u0061me` is `name`: the duplicate is found after unescaping.
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","n\u0061me":"delete_database"}}"#;
    let d = mcp(&g, body);
    assert_refused(
        &d,
        "duplicate_json_key",
        400,
        Some(-32700),
        "escaped duplicate",
    );
    assert!(
        errors(&d).contains("\"name\" appears twice"),
        "{}",
        errors(&d)
    );
    assert_eq!(
        json::parse(br#"{"a":{"B":1,"B":2}}"#),
        Err(JsonError::DuplicateKey("B".into()))
    );
    assert_eq!(
        json::parse(br#"[{"\u017f":1,"s":2}]"#),
        Err(JsonError::FoldedKey("\u{17F}".into(), "s".into()))
    );
}

/// The demo's argument types with more for `read_file`: a camel-case name, a record and a set of records.
fn gate_with_nested_arguments() -> Gate {
    let arguments = DEMO_ARGUMENTS.replacen(
        "read_file?: {\n        path?: String,",
        "read_file?: {\n        path?: String,\n        followLinks?: Bool,\n        \
         options?: { kind?: String, depth?: Long },\n        filters?: Set<{ mode?: String }>,",
        1,
    );
    assert_ne!(
        arguments, DEMO_ARGUMENTS,
        "the demo's read_file declaration moved"
    );
    gate_with(json!({ "policies": demo_policies_and(json!({ "arguments_schema": arguments })) }))
}

#[test]
fn a_key_that_folds_to_a_member_toolgate_reads_is_refused() {
    let g = gate_with_nested_arguments();
    let call = |params: &str| {
        format!(r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{params}}}"#)
    };
    let cases: Vec<(String, &str, &str)> = vec![
        // The envelope.
        (
            r#"{"jsonrpc":"2.0","id":7,"Method":"tools/call","params":{"name":"delete_database"}}"#
                .into(),
            "Method",
            "method",
        ),
        (
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","Params":{"name":"delete_database"}}"#
                .into(),
            "Params",
            "params",
        ),
        (
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","paramſ":{"name":"delete_database"}}"#
                .into(),
            "paramſ",
            "params",
        ),
        (
            r#"{"JSONRPC":"2.0","id":7,"method":"ping"}"#.into(),
            "JSONRPC",
            "jsonrpc",
        ),
        (
            r#"{"jsonrpc":"2.0","Id":7,"method":"ping"}"#.into(),
            "Id",
            "id",
        ),
        // The params a method names.
        (
            call(r#"{"name":"read_file","Arguments":{"path":"/etc/passwd"}}"#),
            "Arguments",
            "arguments",
        ),
        (call(r#"{"NAME":"delete_database"}"#), "NAME", "name"),
        (
            r#"{"jsonrpc":"2.0","id":7,"method":"resources/read","params":{"URI":"docs://guide"}}"#
                .into(),
            "URI",
            "uri",
        ),
        // Declared arguments, at every declared level.
        (
            call(r#"{"name":"read_file","arguments":{"Path":"/etc/passwd"}}"#),
            "Path",
            "path",
        ),
        (
            call(r#"{"name":"read_file","arguments":{"paTh":"/etc/passwd"}}"#),
            "paTh",
            "path",
        ),
        (
            call(r#"{"name":"read_file","arguments":{"followlinks":true}}"#),
            "followlinks",
            "followLinks",
        ),
        (
            call(r#"{"name":"read_file","arguments":{"options":{"\u212Aind":"x"}}}"#),
            "\u{212A}ind",
            "kind",
        ),
        (
            call(r#"{"name":"read_file","arguments":{"filters":[{"mode":"a"},{"MODE":"b"}]}}"#),
            "MODE",
            "mode",
        ),
    ];
    for (body, key, member) in &cases {
        let d = mcp(&g, body.as_bytes());
        assert_refused(&d, "folded_member", 400, Some(-32600), body);
        let named = format!("{key:?} is {member:?} in another case");
        assert!(errors(&d).contains(&named), "{body}: {}", errors(&d));
        for content_type in [Some("text/plain"), None] {
            let rest = decide(&g, REST, content_type, body.as_bytes());
            assert_refused(&rest, "folded_member", 400, None, body);
        }
    }
    let nested = mcp(&g, cases[12].0.as_bytes());
    assert!(
        errors(&nested).contains("argument `filters`[1]"),
        "{}",
        errors(&nested)
    );
    // A body with only case variants of `jsonrpc` and `method` is JSON-RPC to a Go server, so to toolgate.
    let go =
        br#"{"JSONRPC":"2.0","ID":1,"METHOD":"tools/call","PARAMS":{"NAME":"delete_database"}}"#;
    assert_refused(
        &decide(&g, REST, Some("text/plain"), go),
        "folded_member",
        400,
        None,
        "Go",
    );
    // Exact spellings, and undeclared keys that fold to nothing declared, are read as ever.
    let exact = call(
        r#"{"name":"read_file","arguments":{"path":"/tmp/x","followLinks":true,"options":{"kind":"k"},"filters":[{"mode":"a","Other":1}],"Extra":1}}"#,
    );
    let d = mcp(&g, exact.as_bytes());
    assert_eq!(d.outcome, Outcome::Allow, "{:?}", d.typed.errors);
}

// -- what serde_json (toolgate's reader) accepts, next to lenient readers ------------

#[test]
fn values_lenient_readers_accept_are_refused_on_every_path() {
    let g = gate_with(json!({}));
    let with = |value: &[u8]| {
        let call: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"x":"#;
        [call, value, b"}}}"].concat()
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        // Python: NaN and infinities.
        (with(b"NaN"), "NaN"),
        (with(b"Infinity"), "Infinity"),
        (with(b"-Infinity"), "-Infinity"),
        // Python and JavaScript keep lone surrogates; Go reads them as U+FFFD.
        (with(br#""\ud800""#), "a lone leading surrogate"),
        (with(br#""\udc00""#), "a lone trailing surrogate"),
        (with(br#""\ud800\u0041""#), "a leading surrogate before a non-surrogate"),
        (
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","\ud800":1}}"#.to_vec(),
            "a lone surrogate in a key",
        ),
        // Python's bytes reader decodes with surrogatepass: UTF-8-encoded surrogates.
        (with(b"\"\xED\xA0\x80\""), "a UTF-8-encoded surrogate"),
        // Go reads invalid UTF-8 as U+FFFD.
        (with(b"\"\xFF\""), "invalid UTF-8"),
        // Trailing commas (JSON5, lenient readers).
        (br#"{"jsonrpc":"2.0","id":1,"method":"ping",}"#.to_vec(), "a trailing comma"),
    ];
    for (body, what) in &cases {
        assert_refused(&mcp(&g, body), "invalid_json", 400, Some(-32700), what);
        for content_type in [Some("text/plain"), None] {
            assert_refused(
                &decide(&g, REST, content_type, body),
                "invalid_json",
                400,
                None,
                what,
            );
        }
    }
    // A valid surrogate pair is one character, read as ever.
    let pair = with(br#""\ud83d\ude00""#);
    assert_eq!(mcp(&g, &pair).outcome, Outcome::Allow);
}

// -- encodings an upstream detects on its own ----------------------------------------

fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
    text.encode_utf16()
        .flat_map(|u| match big_endian {
            true => u.to_be_bytes(),
            false => u.to_le_bytes(),
        })
        .collect()
}

fn utf32(text: &str, big_endian: bool) -> Vec<u8> {
    text.chars()
        .flat_map(|c| match big_endian {
            true => u32::from(c).to_be_bytes(),
            false => u32::from(c).to_le_bytes(),
        })
        .collect()
}

#[test]
fn the_encoding_is_detected_by_python_s_rule() {
    let wide = |width, big_endian| Some(Wide { width, big_endian });
    assert_eq!(encoding::detect(b"\0{\0\""), wide(2, true));
    assert_eq!(encoding::detect(b"\0\0\0{"), wide(4, true));
    assert_eq!(encoding::detect(b"{\0\"\0"), wide(2, false));
    assert_eq!(encoding::detect(b"{\0\0\""), wide(2, false));
    assert_eq!(encoding::detect(b"{\0\0\0"), wide(4, false));
    assert_eq!(encoding::detect(b"\0{"), wide(2, true));
    assert_eq!(encoding::detect(b"{\0"), wide(2, false));
    assert_eq!(
        encoding::detect(b"{\0\0"),
        None,
        "three bytes are UTF-8 to Python"
    );
    assert_eq!(encoding::detect(b"{\"a\":1}"), None);
}

#[test]
fn utf16_and_utf32_bodies_that_read_as_json_are_refused_on_every_path() {
    let g = gate_with(json!({}));
    let call =
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_database"}}"#;
    for text in [call.to_owned(), format!(" \r\n\t{call}"), "[1]".to_owned()] {
        for bom in ["", "\u{FEFF}"] {
            let text = format!("{bom}{text}");
            let encoded = [
                ("UTF-16LE", utf16(&text, false)),
                ("UTF-16BE", utf16(&text, true)),
                ("UTF-32LE", utf32(&text, false)),
                ("UTF-32BE", utf32(&text, true)),
            ];
            for (name, body) in &encoded {
                let what = format!("{name} {text:?}");
                for content_type in [Some("text/plain"), None] {
                    let rest = decide(&g, REST, content_type, body);
                    assert_refused(&rest, "unsupported_charset", 415, None, &what);
                    let mcp = decide(&g, "/mcp", content_type, body);
                    assert_refused(&mcp, "unsupported_charset", 415, Some(-32700), &what);
                }
            }
        }
    }
    for body in [b"{\0", b"\0["] {
        let d = decide(&g, REST, Some("text/plain"), body);
        assert_refused(&d, "unsupported_charset", 415, None, "two bytes");
    }
    // A BOM alone says another encoding, whatever follows.
    for bom in [
        &b"\xFF\xFE"[..],
        b"\xFE\xFF",
        b"\xEF\xBB\xBF",
        b"\0\0\xFE\xFF",
    ] {
        let body = [bom, b"level=red"].concat();
        let d = decide(&g, REST, Some("text/plain"), &body);
        assert_refused(&d, "unsupported_charset", 415, None, "a BOM");
    }
}

#[test]
fn other_bytes_with_nuls_still_pass_as_rest() {
    let g = gate_with(json!({}));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        (
            "a gRPC frame",
            b"\x00\x00\x00\x00\x07\x0a\x05hello".to_vec(),
        ),
        ("UTF-16LE text", utf16("level=red {x}", false)),
        ("UTF-32BE text", utf32("\t level [x]", true)),
        ("binary", vec![0x01, 0x00, 0x02, 0x00, 0x7B]),
        ("PNG", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec()),
        ("two bytes", b"a\0".to_vec()),
    ];
    for (what, body) in &bodies {
        for content_type in [Some("application/octet-stream"), Some("text/plain"), None] {
            assert_rest(&decide(&g, REST, content_type, body), what);
        }
    }
}

#[test]
fn a_utf8_body_that_starts_like_json_is_strict_json_on_every_path() {
    let g = gate_with(json!({}));
    let refused: &[(&[u8], &str)] = &[
        (b"[1,2", "invalid_json"),
        (b"  [not json]", "invalid_json"),
        (b"\x0c{\"a\":1}", "invalid_json"),
        (br#"{"a":1,}"#, "invalid_json"),
        (br#"{"a":1,"a":2}"#, "duplicate_json_key"),
        (br#"{"a":1,"A":2}"#, "folded_json_key"),
        (
            br#"{"jsonrpc":"2.0","id":1,"method":"ping","x":NaN}"#,
            "invalid_json",
        ),
    ];
    for (body, reason) in refused {
        for content_type in [Some("text/plain"), None] {
            let d = decide(&g, REST, content_type, body);
            let what = String::from_utf8_lossy(body);
            assert_refused(&d, reason, 400, None, &what);
        }
    }
    for body in [&b"level=red [x]"[..], b"\"a string\"", b"42", b"", b"  "] {
        for content_type in [Some("text/plain"), None] {
            assert_rest(&decide(&g, REST, content_type, body), "not JSON");
        }
    }
}
