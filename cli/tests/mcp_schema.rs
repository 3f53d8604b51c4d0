//! Typed policies: the `Arguments` schema fragment generated from MCP tools/list results,
//! and what strict validation then refuses at load.

use serde_json::{json, Value};
use toolgate::policy::{PolicyFiles, PolicyStore, Source};
use toolgate::Gate;
use toolgate_cli::mcp_schema::{self, Generated, McpSchemaError, Options, ServerTools};

/// The demo's tools/list files in `examples/demo/mcp/`, by server name (the file stem).
const MCP_FILES: &[(&str, &str, &str)] = &[(
    "tools",
    "examples/demo/mcp/tools.json",
    include_str!("../../examples/demo/mcp/tools.json"),
)];
/// The demo's `Arguments`, generated from [`MCP_FILES`].
const DEMO_ARGUMENTS: Source<'static> = Source {
    name: "examples/demo/arguments.cedarschema",
    text: include_str!("../../examples/demo/arguments.cedarschema"),
};

fn server(name: &str, tools: Value) -> ServerTools {
    ServerTools {
        server: name.into(),
        file: format!("{name}.json"),
        list: tools,
    }
}

fn tool(name: &str, properties: Value) -> Value {
    json!({"name": name, "inputSchema": {"type": "object", "properties": properties}})
}

fn generate(servers: &[ServerTools]) -> Generated {
    mcp_schema::generate(servers, &Options::default()).unwrap_or_else(|e| panic!("generate: {e}"))
}

fn generate_err(servers: &[ServerTools]) -> McpSchemaError {
    match mcp_schema::generate(servers, &Options::default()) {
        Ok(generated) => panic!("generated:\n{}", generated.schema),
        Err(e) => e,
    }
}

/// The argument lines of the first tool in a generated fragment, comments dropped.
fn fields(schema: &str) -> Vec<String> {
    let tool = |line: &&str| line.starts_with("      ") && !line.starts_with("       ");
    schema
        .lines()
        .skip_while(|line| !(tool(line) && line.ends_with("?: {")))
        .skip(1)
        .take_while(|line| *line != "      },")
        .map(str::trim)
        .filter(|line| !line.starts_with("//") && !line.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The embedded model plus `arguments` (a generated fragment) and `policy`, as the filter loads them.
fn load(arguments: &str, policy: &str) -> Result<PolicyStore, String> {
    PolicyStore::from_files(&PolicyFiles {
        policies: vec![Source {
            name: "policies/refunds.cedar",
            text: policy,
        }],
        schema: vec![
            toolgate::policy::EMBEDDED_SCHEMA,
            Source {
                name: "policies/arguments.cedarschema",
                text: arguments,
            },
        ],
        entities: Vec::new(),
    })
}

#[test]
fn json_schema_types_map_to_cedar_types() {
    let generated = generate(&[server(
        "s",
        json!([tool(
            "t",
            json!({
                "name": {"type": "string", "format": "email"},
                "mode": {"enum": ["a", "b"]},
                "level": {"type": "string", "enum": ["low", "high"]},
                "count": {"type": "integer"},
                "force": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "ids": {"type": "array", "items": {"type": "integer"}},
                "note": {"type": ["string", "null"]},
                "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": null},
                "target": {
                    "type": "object",
                    "properties": {
                        "host": {"type": "string"},
                        "port": {"type": "integer"},
                        "weight": {"type": "number"},
                        "labels": {"type": ["array", "null"], "items": {"type": "string"}}
                    },
                    "required": ["host", "weight", "labels"]
                }
            })
        )]),
    )]);
    assert_eq!(
        fields(&generated.schema),
        [
            "count?: Long,",
            "force?: Bool,",
            "ids?: Set<Long>,",
            "level?: String,",
            "maybe?: Long,",
            "mode?: String,",
            "name?: String,",
            "note?: String,",
            "tags?: Set<String>,",
            "target?: {",
            // `required` makes a nested field required, unless it may be null.
            "host: String,",
            "labels?: Set<String>,",
            "port?: Long,",
            // A JSON Schema `number` is a Cedar decimal.
            "weight: decimal,",
            "},",
        ]
        .iter()
        .filter(|l| !l.starts_with("//"))
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
    );
    assert!(
        generated
            .schema
            .contains("    s?: {\n      t?: {\n        count?: Long,\n"),
        "{}",
        generated.schema
    );
    assert!(!generated.schema.contains("left out"));
    load(&generated.schema, "").unwrap_or_else(|e| panic!("{e}\n{}", generated.schema));
    assert!(generated.warnings.is_empty(), "{:?}", generated.warnings);
}

#[test]
fn local_refs_are_followed_and_recursion_is_left_out() {
    let schema = json!({
        "type": "object",
        "$defs": {
            "Money": {"type": "object", "properties": {"units": {"type": "integer"}, "currency": {"type": "string"}}, "required": ["units"]},
            "Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}, "label": {"type": "string"}}}
        },
        "properties": {
            "price": {"$ref": "#/$defs/Money"},
            "tree": {"$ref": "#/$defs/Node"},
            "remote": {"$ref": "https://example.com/schema.json"}
        }
    });
    let generated = generate(&[server(
        "shop",
        json!([{"name": "buy", "inputSchema": schema}]),
    )]);
    let schema = &generated.schema;
    assert!(
        schema.contains(
            "price?: {\n          currency?: String,\n          units: Long,\n        },"
        ),
        "{schema}"
    );
    assert!(
        schema.contains("tree?: {\n          label?: String,\n          // left out: `child`: `$ref` \"#/$defs/Node\" is recursive"),
        "{schema}"
    );
    assert!(
        schema.contains("// left out: `remote`: `$ref` \"https://example.com/schema.json\" is not a definition in the same inputSchema\n"),
        "{schema}"
    );
    assert_eq!(generated.warnings.len(), 1, "{:?}", generated.warnings);
}

#[test]
fn a_ref_bomb_is_cut_short() {
    // Each level refers to the next one ten times: 10^12 schemas if followed naively.
    let mut defs = serde_json::Map::new();
    for level in 0..12 {
        let next = json!({"$ref": format!("#/$defs/L{}", level + 1)});
        let properties: serde_json::Map<String, Value> =
            (0..10).map(|i| (format!("p{i}"), next.clone())).collect();
        defs.insert(
            format!("L{level}"),
            json!({"type": "object", "properties": properties}),
        );
    }
    defs.insert("L12".into(), json!({"type": "string"}));
    let schema =
        json!({"type": "object", "$defs": defs, "properties": {"bomb": {"$ref": "#/$defs/L0"}}});
    let generated = generate(&[server("s", json!([{"name": "t", "inputSchema": schema}]))]);
    assert!(
        generated
            .schema
            .contains("// left out: `bomb`: its schema expands to more than 10000 schemas\n"),
        "{}",
        generated.schema
    );
    assert!(generated.schema.len() < 1000);
}

#[test]
fn untyped_arguments_are_left_out_with_the_reason() {
    let generated = generate(&[server(
        "s",
        json!({"tools": [tool(
            "t",
            json!({
                "anything": {},
                "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                "pair": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
                "bag": {"type": "object"},
                "list": {"type": "array"}
            })
        )]}),
    )]);
    assert_eq!(fields(&generated.schema), Vec::<String>::new());
    let schema = &generated.schema;
    for expected in [
        "// left out: `anything`: no `type`\n",
        "// left out: `either`: `oneOf` has no single Cedar type\n",
        "// left out: `pair`: array with a tuple `items` list",
        "// left out: `bag`: object without `properties`",
        "// left out: `list`: array without `items`",
    ] {
        assert!(schema.contains(expected), "{expected}\n{schema}");
    }
    assert_eq!(generated.warnings.len(), 5, "{:?}", generated.warnings);
    assert!(generated
        .warnings
        .iter()
        .all(|w| w.starts_with("s.json: tool s/t: argument `")));
    // The fragment is valid Cedar even with nothing typed.
    load(schema, "").unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn each_server_and_tool_has_its_own_argument_types() {
    // One argument name, two types: each tool keeps its own, so nothing conflicts.
    let refund = tool(
        "refund",
        json!({"amount": {"type": "integer"}, "order_id": {"type": "string"}}),
    );
    let generated = generate(&[
        server("payments", json!([refund])),
        server(
            "billing",
            json!([tool(
                "charge",
                json!({"amount": {"type": "string"}, "to": {"type": "object", "properties": {"x": {"type": "integer"}}}})
            )]),
        ),
    ]);
    let schema = &generated.schema;
    assert!(
        schema.contains("    billing?: {\n      charge?: {\n        amount?: String,\n        to?: {\n          x?: Long,\n        },\n      },\n    },\n"),
        "{schema}"
    );
    assert!(
        schema.contains("    payments?: {\n      refund?: {\n        amount?: Long,\n        order_id?: String,\n      },\n    },\n"),
        "{schema}"
    );
    // Policies read each tool's arguments with that tool's type.
    let policies = "@id(\"a\") permit (principal, action, resource) when { context has arguments.payments.refund.amount && context.arguments.payments.refund.amount <= 100 };\n\
                    @id(\"b\") permit (principal, action, resource) when { context has arguments.billing.charge.amount && context.arguments.billing.charge.amount == \"10\" };";
    load(schema, policies).unwrap_or_else(|e| panic!("{e}\n{schema}"));
}

#[test]
fn an_argument_untyped_for_one_tool_stays_typed_for_another() {
    let generated = generate(&[server(
        "s",
        json!([
            tool("a", json!({"amount": {"type": "integer"}})),
            tool(
                "b",
                json!({"amount": {"oneOf": [{"type": "string"}, {"type": "integer"}]}})
            )
        ]),
    )]);
    assert_eq!(fields(&generated.schema), ["amount?: Long,"]);
    assert!(
        generated.schema.contains("      b?: {\n        // left out: `amount`: `oneOf` has no single Cedar type\n      },\n"),
        "{}",
        generated.schema
    );
    assert_eq!(
        generated.warnings,
        ["s.json: tool s/b: argument `amount` left out: `oneOf` has no single Cedar type"]
    );
}

#[test]
fn the_three_input_shapes_are_accepted_and_bad_input_is_named() {
    let tools = json!([tool("t", json!({"q": {"type": "string"}}))]);
    let shapes = [
        json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}}),
        json!({"tools": tools}),
        tools.clone(),
    ];
    let outputs: Vec<String> = shapes
        .into_iter()
        .map(|list| generate(&[server("s", list)]).schema)
        .collect();
    assert!(outputs.iter().all(|o| o == &outputs[0]));
    assert_eq!(fields(&outputs[0]), ["q?: String,"]);

    let not_json = ServerTools::from_json("s", "lists/s.json", "{\"tools\": [\n  oops]}");
    let message = not_json.map(|_| ()).unwrap_err().to_string();
    assert!(
        message.starts_with("lists/s.json:2:3: not JSON"),
        "{message}"
    );

    let rpc_error = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "Method not found"}});
    let message = generate_err(&[server("s", rpc_error)]).to_string();
    assert!(message.starts_with("s.json: not an MCP tools/list result: it is a JSON-RPC error response (Method not found)"), "{message}");

    let message = generate_err(&[server("s", json!({"result": {}}))]).to_string();
    assert!(message.contains("no `tools` array"), "{message}");

    let message = generate_err(&[server("s", json!([{"description": "nameless"}]))]).to_string();
    assert!(message.contains("has no `name` string"), "{message}");

    let message = generate_err(&[server("a/b", tools.clone())]).to_string();
    assert!(
        message.contains("server name \"a/b\" contains '/'"),
        "{message}"
    );

    let twice = ServerTools {
        file: "again.json".into(),
        ..server("s", tools.clone())
    };
    let message = generate_err(&[server("s", tools.clone()), twice]).to_string();
    assert_eq!(
        message,
        "tool s/t is listed twice (again.json and s.json); give each server's tools once"
    );

    let bad_schema = json!([{"name": "t", "inputSchema": {"type": "string"}}]);
    let message = generate_err(&[server("s", bad_schema)]).to_string();
    assert!(
        message.contains("tool s/t: `inputSchema` has type \"string\""),
        "{message}"
    );
}

#[test]
fn odd_names_are_quoted_and_comments_stay_on_one_line() {
    let generated = generate(&[server(
        "s",
        json!([tool(
            "t",
            json!({"dry-run": {"type": "boolean"}, "in": {"type": "string"}, "say \"hi\"\n": {"type": "string"}, "": {"type": "string"}})
        )]),
    )]);
    assert_eq!(
        fields(&generated.schema),
        [
            "\"\"?: String,",
            "\"dry-run\"?: Bool,",
            "\"in\"?: String,",
            "\"say \\\"hi\\\"\\n\"?: String,"
        ]
    );
    let policy = "@id(\"p\") permit(principal, action == Toolgate::Action::\"tools/call\", resource)\nwhen { context has arguments.s.t && context.arguments.s.t has \"dry-run\" && context.arguments.s.t[\"dry-run\"] && context.arguments.s.t has \"say \\\"hi\\\"\\n\" };";
    load(&generated.schema, policy).unwrap_or_else(|e| panic!("{e}\n{}", generated.schema));
}

#[test]
fn generation_is_deterministic_whatever_the_input_order() {
    let a = server(
        "a",
        json!([
            tool("x", json!({"p": {"type": "string"}})),
            tool("w", json!({"q": {"type": "integer"}}))
        ]),
    );
    let b = server("b", json!([tool("y", json!({"p": {"type": "string"}}))]));
    let one = generate(&[a.clone(), b.clone()]);
    let two = generate(&[b, a]);
    assert_eq!(one, two);
    assert!(one.schema.starts_with(
        "// Generated by `toolgate schema-from-mcp` from the MCP tools/list results of: a, b.\n"
    ));
}

#[test]
fn the_catalog_has_one_tool_entity_per_tool() {
    let tools = json!([
        {"name": "wipe", "inputSchema": {"type": "object"}, "annotations": {"destructiveHint": true}},
        {"name": "peek", "inputSchema": {"type": "object"}, "annotations": {"destructiveHint": true, "readOnlyHint": true}},
        {"name": "poke", "inputSchema": {"type": "object"}}
    ]);
    let generated = mcp_schema::generate(
        &[server("s", tools)],
        &Options {
            sensitivity: "medium".into(),
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        generated.entities,
        json!([
            {"uid": {"type": "Toolgate::Tool", "id": "s/peek"}, "attrs": {"sensitivity": "medium"},
             "parents": [{"type": "Toolgate::Server", "id": "s"}]},
            {"uid": {"type": "Toolgate::Tool", "id": "s/poke"}, "attrs": {"sensitivity": "medium"},
             "parents": [{"type": "Toolgate::Server", "id": "s"}]},
            {"uid": {"type": "Toolgate::Tool", "id": "s/wipe"}, "attrs": {"sensitivity": "medium", "requires_approval": true},
             "parents": [{"type": "Toolgate::Server", "id": "s"}]},
        ])
    );
    assert_eq!(Options::default().sensitivity, "high");
}

const AMOUNT_POLICY: &str = "// Small refunds only.\n@id(\"small-refunds\")\npermit (principal, action == Toolgate::Action::\"tools/call\", resource == Toolgate::Tool::\"billing/refund\")\nwhen { context has arguments.billing.refund.amount && context.arguments.billing.refund.amount <= 100 };\n";

/// A `billing/refund` tool whose `amount` has this JSON Schema.
fn refund_catalog(amount: Value) -> String {
    let tools = json!([tool(
        "refund",
        json!({"amount": amount, "order_id": {"type": "string"}})
    )]);
    generate(&[server("billing", tools)]).schema
}

fn untyped() -> Value {
    json!({"oneOf": [{"type": "string"}, {"type": "integer"}]})
}

#[test]
fn a_policy_comparing_a_string_amount_fails_validation_at_load() {
    let error = load(&refund_catalog(json!({"type": "string"})), AMOUNT_POLICY)
        .map(|_| ())
        .unwrap_err();
    assert!(
        error.starts_with("invalid policies: policies/refunds.cedar:4:"),
        "{error}"
    );
    assert!(error.contains("small-refunds"), "{error}");
    assert!(error.contains("Long"), "{error}");
    assert!(error.contains("String"), "{error}");

    let store = load(&refund_catalog(json!({"type": "integer"})), AMOUNT_POLICY)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.policy_count(), 1);

    // An untyped argument is left out: behind `has` the policy could never apply, which
    // is refused too (instead of denying every refund at run time).
    let error = load(&refund_catalog(untyped()), AMOUNT_POLICY)
        .map(|_| ())
        .unwrap_err();
    assert!(error.starts_with("invalid policies: policies/refunds.cedar:2:1: for policy `small-refunds`, policy is impossible"), "{error}");
    assert!(error.contains("can never apply"), "{error}");
    // Without `has`, it is the unknown attribute.
    let unguarded = AMOUNT_POLICY.replace("context has arguments.billing.refund.amount && ", "");
    let error = load(&refund_catalog(untyped()), &unguarded)
        .map(|_| ())
        .unwrap_err();
    assert!(error.contains("policies/refunds.cedar:4:"), "{error}");
    assert!(error.contains("amount"), "{error}");
}

#[test]
fn a_number_is_a_decimal_in_policies() {
    let catalog = refund_catalog(json!({"type": "number"}));
    assert!(catalog.contains("        amount?: decimal,\n"), "{catalog}");
    // Compared as a Long, it fails validation; compared as a decimal, it loads.
    let error = load(&catalog, AMOUNT_POLICY).map(|_| ()).unwrap_err();
    assert!(error.contains("policies/refunds.cedar:4:"), "{error}");
    let decimal = AMOUNT_POLICY.replace(
        "context.arguments.billing.refund.amount <= 100",
        "context.arguments.billing.refund.amount.lessThanOrEqual(decimal(\"100.0\"))",
    );
    load(&catalog, &decimal).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_forbid_on_an_untyped_argument_is_refused_not_silently_inert() {
    // The guardrail would never fire (fail open), so it is refused at load.
    let forbid = "@id(\"no-big-refunds\")\nforbid (principal, action == Toolgate::Action::\"tools/call\", resource)\nwhen { context has arguments.billing.refund.amount && context.arguments.billing.refund.amount > 100 };\n";
    let error = load(&refund_catalog(untyped()), forbid)
        .map(|_| ())
        .unwrap_err();
    assert!(
        error.contains("policies/refunds.cedar:1:1: for policy `no-big-refunds`"),
        "{error}"
    );
    assert!(error.contains("can never apply"), "{error}");
    load(&refund_catalog(json!({"type": "integer"})), forbid).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_plugin_configuration_takes_a_generated_arguments_schema() {
    let config = |amount_type: &str| {
        json!({"policies": {"cedar": AMOUNT_POLICY, "arguments_schema": refund_catalog(json!({"type": amount_type}))}})
            .to_string()
    };
    let error = match Gate::configure(config("string").as_bytes(), 0) {
        Ok(_) => panic!("a string amount compared as a Long was accepted"),
        Err(e) => e,
    };
    assert!(error.contains("`policies.cedar`:4:"), "{error}");
    let gate = Gate::configure(config("integer").as_bytes(), 0).unwrap_or_else(|e| panic!("{e}"));
    let embedded = Gate::configure(b"{}", 0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gate.policy_count(), embedded.policy_count() + 1);

    // The embedded policies read no argument: any arguments schema, even an empty one, fits them.
    let bare =
        json!({"policies": {"arguments_schema": "namespace Toolgate { type Arguments = {}; }"}});
    Gate::configure(bare.to_string().as_bytes(), 0).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn schema_errors_name_the_fragment_and_line() {
    let broken = json!({"policies": {"arguments_schema": "namespace Toolgate {\n  type Arguments = {\n    amount?: Lng,\n  };\n}\n"}});
    let error = match Gate::configure(broken.to_string().as_bytes(), 0) {
        Ok(_) => panic!("an undefined type was accepted"),
        Err(e) => e,
    };
    assert!(
        error.starts_with("plugin configuration `policies.arguments_schema`:3:14:"),
        "{error}"
    );
    let syntax = json!({"policies": {"arguments_schema": "namespace Toolgate {\n  type Arguments = {\n    amount?: Long\n    path?: String,\n  };\n}\n"}});
    let error = match Gate::configure(syntax.to_string().as_bytes(), 0) {
        Ok(_) => panic!("a syntax error was accepted"),
        Err(e) => e,
    };
    assert!(
        error.starts_with("plugin configuration `policies.arguments_schema`:4:5:"),
        "{error}"
    );
    // Declared twice: once in a whole schema that still has it, once in the arguments fragment.
    let whole = toolgate::policy::EMBEDDED_SCHEMA.text.replacen(
        "namespace Toolgate {\n",
        "namespace Toolgate {\n  type Arguments = {};\n",
        1,
    );
    let twice = json!({"policies": {
        "schema": whole,
        "arguments_schema": toolgate::policy::EMBEDDED_ARGUMENTS_SCHEMA.text,
    }});
    let error = match Gate::configure(twice.to_string().as_bytes(), 0) {
        Ok(_) => panic!("a duplicate type was accepted"),
        Err(e) => e,
    };
    assert!(
        error.starts_with(
            "plugin configuration `policies.schema`:3:3: duplicate common type `Toolgate::Arguments`"
        ),
        "{error}"
    );
}

#[test]
fn the_version_covers_the_arguments_schema() {
    let base = Gate::configure(b"{}", 0).unwrap_or_else(|e| panic!("{e}"));
    let same =
        json!({"policies": {"arguments_schema": toolgate::policy::EMBEDDED_ARGUMENTS_SCHEMA.text}});
    let other = json!({"policies": {"arguments_schema": format!("{}// changed\n", toolgate::policy::EMBEDDED_ARGUMENTS_SCHEMA.text)}});
    let same = Gate::configure(same.to_string().as_bytes(), 0).unwrap_or_else(|e| panic!("{e}"));
    let other = Gate::configure(other.to_string().as_bytes(), 0).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(base.policy_version(), other.policy_version());
    assert_ne!(same.policy_version(), other.policy_version());
}

#[test]
fn committed_arguments_schema_is_generated_from_the_committed_tools_lists() {
    let servers: Vec<ServerTools> = MCP_FILES
        .iter()
        .map(|(name, file, text)| {
            ServerTools::from_json(name, file, text).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let generated = generate(&servers);
    assert!(
        generated.schema == DEMO_ARGUMENTS.text,
        "examples/demo/arguments.cedarschema is stale; regenerate it from examples/demo/mcp/*.json \
         (toolgate schema-from-mcp examples/demo/mcp/*.json > examples/demo/arguments.cedarschema). \
         Generated:\n{}",
        generated.schema
    );
    // The argument the demo policies read is typed.
    let amount = "      refund?: {\n        amount?: Long,\n";
    assert!(generated.schema.contains(amount), "{amount}");
    // The generated catalog is valid against the schema.
    let entities = generated.entities.to_string();
    PolicyStore::from_files(&PolicyFiles {
        policies: Vec::new(),
        schema: vec![toolgate::policy::EMBEDDED_SCHEMA, DEMO_ARGUMENTS],
        entities: vec![Source {
            name: "catalog.json",
            text: &entities,
        }],
    })
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Also check that `MCP_FILES` lists every file in `examples/demo/mcp/`.
#[test]
fn every_committed_tools_list_is_checked() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo/mcp");
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| format!("examples/demo/mcp/{}", entry.file_name().to_string_lossy()))
        .collect();
    found.sort();
    let listed: Vec<&str> = MCP_FILES.iter().map(|(_, file, _)| *file).collect();
    assert_eq!(
        found, listed,
        "add new files in examples/demo/mcp/ to MCP_FILES"
    );
}

#[test]
fn the_demo_folder_validates_as_files() {
    // What `toolgate validate --policies examples/demo` checks: the folder on top of the
    // embedded defaults and every feature's rules.
    use toolgate::policy::FEATURE_POLICIES;
    let demo = |name: &'static str, text: &'static str| Source { name, text };
    let files = PolicyFiles {
        policies: vec![
            demo(
                "examples/demo/default.cedar",
                include_str!("../../examples/demo/default.cedar"),
            ),
            demo(
                "examples/demo/rates.cedar",
                include_str!("../../examples/demo/rates.cedar"),
            ),
        ],
        schema: vec![DEMO_ARGUMENTS],
        entities: vec![demo(
            "examples/demo/entities.json",
            include_str!("../../examples/demo/entities.json"),
        )],
    };
    let store = PolicyStore::extending(&files, FEATURE_POLICIES).unwrap_or_else(|e| panic!("{e}"));
    assert!(store.requires_approval("tools/wire_transfer"));

    let broken = PolicyFiles {
        entities: vec![Source {
            name: "examples/demo/entities.json",
            text: "[\n  {\"uid\": }\n]",
        }],
        ..files
    };
    let error = PolicyStore::extending(&broken, FEATURE_POLICIES)
        .map(|_| ())
        .unwrap_err();
    assert!(
        error.starts_with("examples/demo/entities.json:2:11: "),
        "{error}"
    );
}

#[test]
fn a_path_format_declares_a_toolgate_path_that_the_filter_checks() {
    let generated = generate(&[server(
        "files",
        json!([tool(
            "read",
            json!({
                "path": {"type": "string", "format": "path"},
                "file": {"type": "string", "format": "file-path"},
                "dir": {"type": ["string", "null"], "format": "directory-path"},
                "url": {"type": "string", "format": "uri"},
                "many": {"type": "array", "items": {"type": "string", "format": "path"}},
                "target": {"type": "object", "properties": {"path": {"type": "string", "format": "path"}}, "required": ["path"]}
            })
        )]),
    )]);
    assert_eq!(
        fields(&generated.schema),
        [
            "dir?: Path,",
            "file?: Path,",
            "many?: Set<Path>,",
            "path?: Path,",
            "target?: {",
            "path: Path,",
            "},",
            "url?: String,",
        ]
    );
    // `like` on a Path validates: it is a String to Cedar.
    let policy = r#"@id("docs") permit (principal, action == Toolgate::Action::"tools/call", resource == Toolgate::Tool::"files/read")
when { context has arguments.files.read.path && context.arguments.files.read.path like "/docs/*" };"#;
    load(&generated.schema, policy).unwrap_or_else(|e| panic!("{e}"));
    // The filter reads the generated fragment's paths as paths.
    let config = json!({"server": "files", "policies": {"cedar": policy, "arguments_schema": generated.schema}});
    let gate = Gate::configure(config.to_string().as_bytes(), 0).unwrap_or_else(|e| panic!("{e}"));
    let call = toolgate::call::Call {
        action: toolgate::action::Action::ToolsCall,
        resource_kind: toolgate::call::ResourceKind::Tool,
        resource_id: "files/read".into(),
        name: Some("read".into()),
        arguments: None,
        rpc: None,
        a2a: None,
    };
    let check = |arguments: Value| {
        gate.store()
            .arguments
            .check(&call, &arguments)
            .map_err(|refusal| (refusal.reason.code(), refusal.errors))
    };
    assert_eq!(
        check(json!({"path": "/docs/readme.md", "url": "a/../b"})),
        Ok(())
    );
    for arguments in [
        json!({"path": "/docs/../etc/passwd"}),
        json!({"file": "/docs/%2e%2e/x"}),
        json!({"many": ["/docs/a", "/docs//x"]}),
        json!({"target": {"path": "/docs\\..\\x"}}),
    ] {
        let refused = check(arguments.clone());
        assert!(
            matches!(&refused, Err(("unsafe_path", errors)) if errors.len() == 1),
            "{arguments}: {refused:?}"
        );
    }
}

#[test]
fn x_mcp_header_arguments_are_annotated_and_the_filter_checks_them() {
    let generated = generate(&[server(
        "s",
        json!([tool(
            "route",
            json!({
                "region": {"type": "string", "x-mcp-header": "Region"},
                "count": {"type": "integer", "x-mcp-header": "Count"},
                "options": {"type": "object", "properties": {
                    "zone": {"type": "string", "x-mcp-header": "Zone"}}},
                "bad": {"type": "string", "x-mcp-header": "Not a token"},
                "plain": {"type": "string"}
            })
        )]),
    )]);
    assert_eq!(
        fields(&generated.schema),
        [
            "bad?: String,",
            "@mcp_header(\"Count\") count?: Long,",
            "options?: {",
            "@mcp_header(\"Zone\") zone?: String,",
            "},",
            "plain?: String,",
            "@mcp_header(\"Region\") region?: String,",
        ]
    );
    assert!(
        generated
            .warnings
            .iter()
            .any(|w| w.contains("`bad`") && w.contains("x-mcp-header")),
        "{:?}",
        generated.warnings
    );
    // The filter loads the fragment and holds a 2026-07-28 call to its headers.
    let config = json!({
        "trust_domains": ["toolgate.test"], "server": "s",
        "policies": {"arguments_schema": generated.schema,
                     "cedar": "permit (principal, action, resource);"},
    });
    let gate = Gate::configure(config.to_string().as_bytes(), 1).expect("configure");
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "route", "arguments": {"region": "eu", "count": 2},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}})
    .to_string();
    let decide = |region: &str| {
        let headers: Vec<(String, Vec<u8>)> = [
            (":method", "POST"),
            (":path", "/mcp"),
            ("content-type", "application/json"),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "route"),
            ("mcp-param-region", region),
            ("mcp-param-count", "2"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect();
        let peer = toolgate::identity::Peer::with_uri_san("spiffe://toolgate.test/agent/reader");
        let request = toolgate::http::HttpRequest {
            headers: &headers,
            body: body.as_bytes(),
        };
        let input = toolgate::gate::Input::new(request, &peer, 1_700_000_000_000_000_000);
        gate.decide(&input, &|| 0).record
    };
    assert_eq!(decide("eu").reason, None);
    assert_eq!(
        decide("us").reason.map(|r| r.code()),
        Some("header_mismatch")
    );
}
