//! MCP `tools/list` results -> the Cedar `Arguments` schema fragment and a Tool catalog.
//!
//! `Arguments` is a record of servers, each a record of tools, each a record of that
//! tool's arguments, so a policy reads `context.arguments.<server>.<tool>.<argument>`
//! typed by that tool's own `inputSchema` (see `toolgate::arguments`). The types follow
//! what the filter makes of JSON at run time: strings -> `String` (`Path` with
//! `"format": "path"`, whose values the filter checks), integers -> `Long`,
//! numbers -> `decimal` (four decimal places; a value that does not fit is refused),
//! booleans -> `Bool`, arrays -> `Set`, objects -> records, `null` -> left out. Anything
//! that cannot be typed is left out, and a policy that reads it then fails strict
//! validation instead of denying calls at run time.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{json, Map, Value};

/// One server's `tools/list` result.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerTools {
    /// The server name: `context.server`, and the `<server>/` prefix of tool ids.
    pub server: String,
    /// Where the list came from (a file path), for messages.
    pub file: String,
    /// The JSON-RPC response `{"jsonrpc", "id", "result": {"tools": [...]}}`, the bare
    /// result `{"tools": [...]}`, or the array of tools.
    pub list: Value,
}

impl ServerTools {
    /// Parses `text` (the file's content) as JSON.
    pub fn from_json(server: &str, file: &str, text: &str) -> Result<Self, McpSchemaError> {
        let list = serde_json::from_str(text).map_err(|e| McpSchemaError::Json {
            file: file.to_owned(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        Ok(Self {
            server: server.to_owned(),
            file: file.to_owned(),
            list,
        })
    }
}

/// Choices the MCP server cannot make for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `sensitivity` of every generated Tool entity. Defaults to `"high"`: an
    /// unreviewed tool gets the strictest treatment the default policies know short
    /// of `"critical"`; lower it by hand after review.
    pub sensitivity: String,
    /// Pin each tool's definition: its `definition_digest`, the digest the filter
    /// compares what a list shows with (`toolgate::definition::digest`).
    pub pin: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sensitivity: "high".into(),
            pin: false,
        }
    }
}

/// What [`generate`] produces.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// A Cedar schema fragment: `namespace Toolgate { type Arguments = { ... }; }`.
    pub schema: String,
    /// The tool catalog: a JSON array of `Toolgate::Tool` entities (Cedar entity JSON),
    /// ids `<server>/<tool>`, parent `Toolgate::Server::"<server>"` (the Server
    /// entities themselves are not included: the catalog is merged into an entities file).
    pub entities: Value,
    /// Arguments left untyped or typed for some tools only, and other things to review.
    pub warnings: Vec<String>,
}

/// Why no schema fragment could be generated. Every message names the input and a fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpSchemaError {
    /// The file is not JSON.
    Json {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// The JSON is not a tools/list result (or is a JSON-RPC error response).
    NotToolsList { file: String, problem: String },
    /// A server name toolgate cannot use in tool ids.
    Server {
        file: String,
        server: String,
        problem: String,
    },
    /// A tool entry that cannot be read.
    Tool {
        file: String,
        tool: String,
        problem: String,
    },
    /// One server lists a tool name twice.
    DuplicateTool {
        tool: String,
        first_file: String,
        second_file: String,
    },
}

impl fmt::Display for McpSchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json {
                file,
                line,
                column,
                message,
            } => write!(
                f,
                "{file}:{line}:{column}: not JSON: {message}; give the tools/list response as JSON"
            ),
            Self::NotToolsList { file, problem } => write!(
                f,
                "{file}: not an MCP tools/list result: {problem}; give the JSON-RPC response, its `result` ({{\"tools\": [...]}}) or the array of tools"
            ),
            Self::Server {
                file,
                server,
                problem,
            } => write!(
                f,
                "{file}: server name {server:?} {problem}; name the server as toolgate's `server` configuration does (e.g. \"tools\")"
            ),
            Self::Tool {
                file,
                tool,
                problem,
            } => write!(
                f,
                "{file}: tool {tool}: {problem}; fix the tools/list result"
            ),
            Self::DuplicateTool {
                tool,
                first_file,
                second_file,
            } => {
                let files = if first_file == second_file {
                    first_file.clone()
                } else {
                    format!("{first_file} and {second_file}")
                };
                write!(
                    f,
                    "tool {tool} is listed twice ({files}); give each server's tools once"
                )
            }
        }
    }
}

impl std::error::Error for McpSchemaError {}

/// Builds the `Arguments` schema fragment and the Tool catalog from tools/list results.
///
/// Deterministic: fields, tools and entities are sorted, whatever the input order.
pub fn generate(servers: &[ServerTools], options: &Options) -> Result<Generated, McpSchemaError> {
    let mut tools = Vec::new();
    let mut warnings = Vec::new();
    for server in servers {
        check_server_name(server)?;
        for tool in tool_list(server, &mut warnings)? {
            tools.push(read_tool(server, tool)?);
        }
    }
    tools.sort_by(|a, b| a.id.cmp(&b.id).then_with(|| a.file.cmp(&b.file)));
    for pair in tools.windows(2) {
        if let [a, b] = pair {
            if a.id == b.id {
                return Err(McpSchemaError::DuplicateTool {
                    tool: a.id.clone(),
                    first_file: a.file.clone(),
                    second_file: b.file.clone(),
                });
            }
        }
    }

    for tool in &tools {
        for note in &tool.notes {
            warnings.push(format!("{}: tool {}: {note}", tool.file, tool.id));
        }
        for (name, mapped) in &tool.arguments {
            if let Err(reason) = mapped {
                warnings.push(format!(
                    "{}: tool {}: argument `{name}` left out: {reason}",
                    tool.file, tool.id
                ));
            }
        }
    }

    let mut server_names: Vec<&str> = servers.iter().map(|s| s.server.as_str()).collect();
    server_names.sort_unstable();
    server_names.dedup();
    let schema = render_schema(&server_names, &tools);
    let entities = Value::Array(tools.iter().map(|tool| tool.entity(options)).collect());
    Ok(Generated {
        schema,
        entities,
        warnings,
    })
}

fn check_server_name(server: &ServerTools) -> Result<(), McpSchemaError> {
    let problem = if server.server.is_empty() {
        "is empty"
    } else if server.server.contains('/') {
        "contains '/', which separates the server from the tool in tool ids"
    } else if server.server.chars().any(char::is_control) {
        "contains control characters"
    } else {
        return Ok(());
    };
    Err(McpSchemaError::Server {
        file: server.file.clone(),
        server: server.server.clone(),
        problem: problem.into(),
    })
}

/// The tools array, from whichever of the three accepted shapes the file has.
fn tool_list<'a>(
    server: &'a ServerTools,
    warnings: &mut Vec<String>,
) -> Result<&'a Vec<Value>, McpSchemaError> {
    let not_list = |problem: String| McpSchemaError::NotToolsList {
        file: server.file.clone(),
        problem,
    };
    let object = match &server.list {
        Value::Array(tools) => return Ok(tools),
        Value::Object(object) => object,
        other => return Err(not_list(format!("found {}", kind(other)))),
    };
    if let Some(error) = object.get("error") {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| error.to_string(), str::to_owned);
        return Err(not_list(format!(
            "it is a JSON-RPC error response ({})",
            one_line(&message)
        )));
    }
    let result = match object.get("result") {
        Some(Value::Object(result)) => result,
        Some(other) => return Err(not_list(format!("`result` is {}", kind(other)))),
        None => object,
    };
    if result.get("nextCursor").is_some_and(|c| !c.is_null()) {
        warnings.push(format!(
            "{}: the list has a `nextCursor`: it is one page of several; give every page (as more files for server {})",
            server.file, server.server
        ));
    }
    match result.get("tools") {
        Some(Value::Array(tools)) => Ok(tools),
        Some(other) => Err(not_list(format!("`tools` is {}", kind(other)))),
        None => Err(not_list("no `tools` array".into())),
    }
}

/// One tool: its id, its arguments mapped (or why not), and its catalog hints.
struct Tool {
    server: String,
    /// The name the server lists it by.
    name: String,
    id: String,
    file: String,
    arguments: BTreeMap<String, Result<Ty, String>>,
    /// Top-level arguments' `x-mcp-header`s, by argument.
    headers: BTreeMap<String, String>,
    destructive: bool,
    /// The definition's digest, as the filter computes it from a list.
    digest: String,
    notes: Vec<String>,
}

impl Tool {
    /// The catalog entity. `requires_approval` only ever tightens: it is set when the
    /// server says the tool is destructive (`destructiveHint: true`, and not
    /// `readOnlyHint: true`), never cleared by a hint.
    fn entity(&self, options: &Options) -> Value {
        let mut attrs = Map::new();
        attrs.insert("sensitivity".into(), json!(options.sensitivity));
        if self.destructive {
            attrs.insert("requires_approval".into(), Value::Bool(true));
        }
        if options.pin {
            attrs.insert("definition_digest".into(), json!(self.digest));
        }
        json!({
            "uid": { "type": "Toolgate::Tool", "id": self.id },
            "attrs": attrs,
            "parents": [{ "type": "Toolgate::Server", "id": self.server }],
        })
    }
}

/// The attributes a person reviews in a catalog; regenerating keeps them.
pub const REVIEWED: &[&str] = &["sensitivity", "tags", "requires_approval"];

/// The catalog `generated` merged into an existing entities file's array `existing`:
/// every entity of `existing` stays where it is (agents, servers, tools of other
/// servers); a regenerated tool replaces its entry but keeps the entry's reviewed
/// attributes ([`REVIEWED`]) and, unless `generated` pins one, its
/// `definition_digest`; new tools are added at the end. The warnings name tools kept
/// that the lists no longer have, and pins that change.
pub fn merge(existing: &Value, generated: &Value) -> Result<(Value, Vec<String>), String> {
    let Value::Array(existing) = existing else {
        return Err("the entities file is not a JSON array of entities".into());
    };
    let Value::Array(generated) = generated else {
        return Err("the generated catalog is not an array".into());
    };
    let uid = |entity: &Value| entity.get("uid").cloned();
    let mut warnings = Vec::new();
    let mut used = vec![false; generated.len()];
    let mut merged = Vec::with_capacity(existing.len() + generated.len());
    for entity in existing {
        let found = generated
            .iter()
            .position(|g| uid(g).is_some() && uid(g) == uid(entity));
        let Some(at) = found else {
            let is_tool = entity.pointer("/uid/type") == Some(&json!("Toolgate::Tool"));
            if is_tool {
                let id = entity.pointer("/uid/id").cloned().unwrap_or(Value::Null);
                warnings.push(format!(
                    "tool {id} is in the entities file but not in the lists given: kept as it was"
                ));
            }
            merged.push(entity.clone());
            continue;
        };
        if let Some(flag) = used.get_mut(at) {
            *flag = true;
        }
        let mut regenerated = generated.get(at).cloned().unwrap_or(Value::Null);
        let old = entity.get("attrs").and_then(Value::as_object);
        if let (Some(old), Some(attrs)) = (
            old,
            regenerated.get_mut("attrs").and_then(Value::as_object_mut),
        ) {
            for key in REVIEWED {
                match old.get(*key) {
                    Some(value) => attrs.insert((*key).to_owned(), value.clone()),
                    None => attrs.remove(*key),
                };
            }
            let old_pin = old.get("definition_digest");
            match (old_pin, attrs.get("definition_digest")) {
                (Some(old_pin), None) => {
                    attrs.insert("definition_digest".into(), old_pin.clone());
                }
                (Some(old_pin), Some(new_pin)) if old_pin != new_pin => {
                    let id = entity.pointer("/uid/id").cloned().unwrap_or(Value::Null);
                    warnings.push(format!(
                        "tool {id}: its definition changed since it was pinned ({old_pin} -> {new_pin}): re-pinned; review it"
                    ));
                }
                _ => {}
            }
        }
        merged.push(regenerated);
    }
    for (entity, used) in generated.iter().zip(used) {
        if !used {
            merged.push(entity.clone());
        }
    }
    Ok((Value::Array(merged), warnings))
}

fn read_tool(server: &ServerTools, tool: &Value) -> Result<Tool, McpSchemaError> {
    let error = |tool: String, problem: &str| McpSchemaError::Tool {
        file: server.file.clone(),
        tool,
        problem: problem.into(),
    };
    let Some(object) = tool.as_object() else {
        return Err(error(shorten(&tool.to_string()), "is not a JSON object"));
    };
    let name = match object.get("name") {
        Some(Value::String(name)) if !name.is_empty() => name,
        _ => {
            return Err(error(shorten(&tool.to_string()), "has no `name` string"));
        }
    };
    let id = format!("{}/{name}", server.server);
    let mut notes = Vec::new();
    let mut arguments = BTreeMap::new();
    let mut headers = BTreeMap::new();
    match object.get("inputSchema") {
        None => notes.push("has no `inputSchema`; none of its arguments is typed".into()),
        Some(root @ Value::Object(schema)) => {
            if let Some(ty) = schema.get("type") {
                if ty != "object" {
                    return Err(error(
                        id,
                        &format!(
                            "`inputSchema` has type {}, MCP requires \"object\"",
                            one_line(&ty.to_string())
                        ),
                    ));
                }
            }
            let composed: Vec<&str> = COMPOSITION
                .iter()
                .copied()
                .filter(|k| schema.contains_key(*k))
                .collect();
            if !composed.is_empty() {
                notes.push(format!(
                    "`inputSchema` uses {}; only its `properties` are typed",
                    composed.join(", ")
                ));
            }
            match schema.get("properties") {
                None | Some(Value::Null) => {}
                Some(Value::Object(properties)) => {
                    for (property, definition) in properties {
                        arguments.insert(property.clone(), Mapper::argument(root, definition));
                        match mirror_header(definition) {
                            Some(header) => {
                                headers.insert(property.clone(), header);
                            }
                            None if definition.get("x-mcp-header").is_some() => notes.push(format!(
                                "argument `{property}`: `x-mcp-header` is not an RFC 9110 token; MCP clients drop such a tool, and toolgate checks no header for it"
                            )),
                            None => {}
                        }
                    }
                }
                Some(other) => {
                    return Err(error(
                        id,
                        &format!("`inputSchema.properties` is {}", kind(other)),
                    ))
                }
            }
        }
        Some(other) => {
            return Err(error(
                id,
                &format!("`inputSchema` is {}, not a JSON Schema object", kind(other)),
            ))
        }
    }
    let hint = |key: &str| {
        object
            .get("annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_bool)
    };
    let destructive = hint("destructiveHint") == Some(true) && hint("readOnlyHint") != Some(true);
    let digest = toolgate::definition::digest(tool).map_err(|e| error(id.clone(), &e))?;
    Ok(Tool {
        digest,
        server: server.server.clone(),
        name: name.clone(),
        id,
        file: server.file.clone(),
        arguments,
        headers,
        destructive,
        notes,
    })
}

/// JSON Schema keywords that combine schemas.
const COMPOSITION: &[&str] = &["$ref", "allOf", "anyOf", "oneOf", "not", "if"];

/// How deep records, sets and `$ref`s may nest before a field is left out.
const MAX_DEPTH: usize = 32;

/// How many schemas one tool's arguments may expand to (following `$ref`s).
const MAX_NODES: usize = 10_000;

/// A Cedar type an argument can have at run time.
#[derive(Debug, Clone)]
enum Ty {
    String,
    /// `Toolgate::Path`: a string the filter refuses with `.`, `..` or empty segments.
    Path,
    Long,
    Bool,
    Decimal,
    Set(Box<Ty>),
    Record(Record),
}

#[derive(Debug, Clone, Default)]
struct Record {
    fields: BTreeMap<String, Field>,
    /// Properties left out, and why (rendered as comments).
    omitted: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
struct Field {
    ty: Ty,
    required: bool,
    /// The property's `x-mcp-header` (MCP 2026-07-28): its value is mirrored into the
    /// `Mcp-Param-{header}` request header, which the filter checks against the body.
    header: Option<String>,
}

impl Field {
    /// `@mcp_header("Name") ` when the field is mirrored into a header, else nothing.
    fn annotation(&self) -> String {
        self.header
            .as_deref()
            .map_or_else(String::new, |h| format!("@mcp_header(\"{h}\") "))
    }
}

/// A property's `x-mcp-header`, when it is an RFC 9110 token (what MCP requires; a
/// client drops a tool whose annotation is not one).
fn mirror_header(definition: &Value) -> Option<String> {
    let header = definition.get("x-mcp-header")?.as_str()?;
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    (!header.is_empty() && header.bytes().all(tchar)).then(|| header.to_owned())
}

/// A mapped schema: its type, and whether JSON `null` is allowed (then the field is
/// optional even when required: toolgate leaves nulls out).
struct Mapped {
    ty: Ty,
    nullable: bool,
}

impl Ty {
    /// The type on one line, as Cedar writes it; equal strings mean equal types.
    fn inline(&self) -> String {
        match self {
            Ty::String => "String".into(),
            Ty::Path => "Path".into(),
            Ty::Long => "Long".into(),
            Ty::Bool => "Bool".into(),
            Ty::Decimal => "decimal".into(),
            Ty::Set(item) => format!("Set<{}>", item.inline()),
            Ty::Record(record) => {
                let fields: Vec<String> = record
                    .fields
                    .iter()
                    .map(|(name, field)| {
                        format!(
                            "{}{}{}: {}",
                            field.annotation(),
                            attribute_name(name),
                            if field.required { "" } else { "?" },
                            field.ty.inline()
                        )
                    })
                    .collect();
                if fields.is_empty() {
                    "{}".into()
                } else {
                    format!("{{ {} }}", fields.join(", "))
                }
            }
        }
    }

    /// The type as schema text, records one field a line at `indent`.
    fn render(&self, indent: usize, out: &mut String) {
        match self {
            Ty::Set(item) => {
                out.push_str("Set<");
                item.render(indent, out);
                out.push('>');
            }
            Ty::Record(record) if !record.fields.is_empty() || !record.omitted.is_empty() => {
                let pad = "  ".repeat(indent + 1);
                out.push_str("{\n");
                for (name, field) in &record.fields {
                    out.push_str(&format!(
                        "{pad}{}{}{}: ",
                        field.annotation(),
                        attribute_name(name),
                        if field.required { "" } else { "?" }
                    ));
                    field.ty.render(indent + 1, out);
                    out.push_str(",\n");
                }
                for (name, reason) in &record.omitted {
                    out.push_str(&format!(
                        "{pad}// left out: `{}`: {}\n",
                        one_line(name),
                        one_line(reason)
                    ));
                }
                out.push_str(&"  ".repeat(indent));
                out.push('}');
            }
            other => out.push_str(&other.inline()),
        }
    }
}

/// Maps JSON Schema to Cedar types; `root` is the tool's `inputSchema`, for local `$ref`s.
struct Mapper<'a> {
    root: &'a Value,
    /// Schemas left to visit: `$ref`s can make a small input expand without end.
    budget: Cell<usize>,
}

impl Mapper<'_> {
    /// One top-level argument; left out whole when it expands past the budget.
    fn argument(root: &Value, definition: &Value) -> Result<Ty, String> {
        let mapper = Mapper {
            root,
            budget: Cell::new(MAX_NODES),
        };
        let mapped = mapper.map(definition, 0, &[]);
        if mapper.budget.get() == 0 {
            return Err(format!(
                "its schema expands to more than {MAX_NODES} schemas"
            ));
        }
        mapped.map(|m| m.ty)
    }

    fn map(&self, schema: &Value, depth: usize, refs: &[&str]) -> Result<Mapped, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested more than {MAX_DEPTH} levels deep"));
        }
        let Some(left) = self.budget.get().checked_sub(1) else {
            return Err(format!(
                "the tool's schema expands to more than {MAX_NODES} schemas"
            ));
        };
        self.budget.set(left);
        let object = match schema {
            Value::Object(object) => object,
            Value::Bool(true) => return Err("accepts any JSON value".into()),
            other => return Err(format!("its schema is {}", kind(other))),
        };
        if let Some(reference) = object.get("$ref") {
            return self.follow(reference, depth, refs);
        }
        for keyword in ["anyOf", "oneOf"] {
            if let Some(branches) = object.get(keyword) {
                if object.contains_key("type") {
                    return Err(format!("`{keyword}` next to `type` is not mapped"));
                }
                return self.nullable_branch(keyword, branches, depth, refs);
            }
        }
        if let Some(branches) = object.get("allOf") {
            return match branches.as_array().map(Vec::as_slice) {
                Some([only]) if !object.contains_key("type") => self.map(only, depth + 1, refs),
                _ => Err("`allOf` is not mapped".into()),
            };
        }
        for keyword in ["not", "if"] {
            if object.contains_key(keyword) {
                return Err(format!("`{keyword}` is not mapped"));
            }
        }
        let (name, nullable) = match object.get("type") {
            Some(Value::String(name)) => (name.as_str(), false),
            Some(Value::Array(names)) => {
                let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
                let nullable = names.contains(&"null");
                let others: Vec<&str> = names.into_iter().filter(|n| *n != "null").collect();
                match others.as_slice() {
                    [one] => (*one, nullable),
                    _ => {
                        return Err(format!(
                            "several types ({}) have no single Cedar type",
                            one_line(&others.join(", "))
                        ))
                    }
                }
            }
            Some(other) => return Err(format!("`type` is {}", kind(other))),
            None => return infer_from_values(object),
        };
        let ty = match name {
            "string" if is_path(object) => Ty::Path,
            "string" => Ty::String,
            "integer" => Ty::Long,
            "boolean" => Ty::Bool,
            "number" => Ty::Decimal,
            "null" => return Err("always null, which toolgate leaves out".into()),
            "array" => Ty::Set(Box::new(self.items(object, depth, refs)?)),
            "object" => Ty::Record(self.record(object, depth, refs)?),
            other => return Err(format!("unknown type {:?}", one_line(other))),
        };
        Ok(Mapped { ty, nullable })
    }

    /// `anyOf` / `oneOf` of exactly one schema and `null` (how Python's `Optional` comes out).
    fn nullable_branch(
        &self,
        keyword: &str,
        branches: &Value,
        depth: usize,
        refs: &[&str],
    ) -> Result<Mapped, String> {
        let Some(branches) = branches.as_array() else {
            return Err(format!("`{keyword}` is not an array"));
        };
        let is_null = |b: &&Value| b.get("type").and_then(Value::as_str) == Some("null");
        let others: Vec<&Value> = branches.iter().filter(|b| !is_null(b)).collect();
        match others.as_slice() {
            [one] => {
                let mapped = self.map(one, depth + 1, refs)?;
                Ok(Mapped {
                    ty: mapped.ty,
                    nullable: mapped.nullable || others.len() < branches.len(),
                })
            }
            _ => Err(format!("`{keyword}` has no single Cedar type")),
        }
    }

    /// A local `$ref` (`#/$defs/...`, `#/definitions/...`), followed once per chain.
    fn follow(&self, reference: &Value, depth: usize, refs: &[&str]) -> Result<Mapped, String> {
        let Some(reference) = reference.as_str() else {
            return Err("`$ref` is not a string".into());
        };
        if refs.contains(&reference) {
            return Err(format!(
                "`$ref` {:?} is recursive, which a Cedar type cannot be",
                one_line(reference)
            ));
        }
        let target = reference
            .strip_prefix('#')
            .filter(|pointer| pointer.is_empty() || pointer.starts_with('/'))
            .and_then(|pointer| self.root.pointer(pointer));
        match target {
            Some(target) => {
                let mut chain = refs.to_vec();
                chain.push(reference);
                self.map(target, depth + 1, &chain)
            }
            None => Err(format!(
                "`$ref` {:?} is not a definition in the same inputSchema",
                one_line(reference)
            )),
        }
    }

    fn items(&self, array: &Map<String, Value>, depth: usize, refs: &[&str]) -> Result<Ty, String> {
        match array.get("items") {
            Some(items @ Value::Object(_)) => self
                .map(items, depth + 1, refs)
                .map(|m| m.ty)
                .map_err(|reason| format!("array items: {reason}")),
            Some(Value::Array(_)) => Err("array with a tuple `items` list has no Set type".into()),
            _ => Err("array without `items` (a Set needs one element type)".into()),
        }
    }

    fn record(
        &self,
        object: &Map<String, Value>,
        depth: usize,
        refs: &[&str],
    ) -> Result<Record, String> {
        let properties = match object.get("properties") {
            Some(Value::Object(properties)) if !properties.is_empty() => properties,
            _ => return Err("object without `properties` (a record needs named fields)".into()),
        };
        let required: BTreeSet<&str> = object
            .get("required")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut record = Record::default();
        for (name, definition) in properties {
            match self.map(definition, depth + 1, refs) {
                Ok(mapped) => {
                    let required = required.contains(name.as_str()) && !mapped.nullable;
                    record.fields.insert(
                        name.clone(),
                        Field {
                            ty: mapped.ty,
                            required,
                            header: mirror_header(definition),
                        },
                    );
                }
                Err(reason) => {
                    record.omitted.insert(name.clone(), reason);
                }
            }
        }
        Ok(record)
    }
}

/// JSON Schema `format` values that declare a path: `path`, and pydantic's `file-path`
/// and `directory-path` (what it writes for `pathlib.Path`, `FilePath`, `DirectoryPath`).
const PATH_FORMATS: &[&str] = &["path", "file-path", "directory-path"];

/// True when a string schema declares a path, which the filter then checks at run time.
fn is_path(schema: &Map<String, Value>) -> bool {
    schema
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|format| PATH_FORMATS.contains(&format))
}

/// A schema without `type`: typed by its `enum` or `const` values when they agree.
fn infer_from_values(object: &Map<String, Value>) -> Result<Mapped, String> {
    let values: Vec<&Value> = match (object.get("enum"), object.get("const")) {
        (Some(Value::Array(values)), _) => values.iter().collect(),
        (_, Some(value)) => vec![value],
        _ => return Err("no `type`".into()),
    };
    let nullable = values.iter().any(|v| v.is_null());
    let mut types = values.iter().filter(|v| !v.is_null()).map(|v| match v {
        Value::String(_) => Some("String"),
        Value::Bool(_) => Some("Bool"),
        Value::Number(n) if n.is_i64() => Some("Long"),
        _ => None,
    });
    let first = types.next().flatten();
    if types.any(|t| t != first) {
        return Err("`enum` values of several types".into());
    }
    let ty = match first {
        Some("String") => Ty::String,
        Some("Bool") => Ty::Bool,
        Some("Long") => Ty::Long,
        _ => return Err("no `type`, and no `enum` values to type it by".into()),
    };
    Ok(Mapped { ty, nullable })
}

fn render_schema(servers: &[&str], tools: &[Tool]) -> String {
    let mut out = String::new();
    out.push_str("// Generated by `toolgate schema-from-mcp` from the MCP tools/list results of: ");
    out.push_str(&one_line(&servers.join(", ")));
    out.push_str(".\n// Do not edit: change the tools/list files and regenerate.\n");
    out.push_str("namespace Toolgate {\n");
    out.push_str(
        "  // Tool arguments that policies may read: a call of tool T on server S has its\n",
    );
    out.push_str(
        "  // arguments at `context.arguments.S.T`, typed by T's own inputSchema. Servers, tools\n",
    );
    out.push_str(
        "  // and arguments are all optional (test with `context has arguments.S.T.name`).\n",
    );
    out.push_str("  // JSON Schema `number` is a Cedar `decimal` (compare with `.lessThan(decimal(\"1.5\"))`).\n");
    out.push_str(
        "  // Arguments not typed here still reach the decision digest, never a policy.\n",
    );
    out.push_str("  type Arguments = {\n");
    // `tools` is sorted by id (`<server>/<tool>`), so each server's tools are together.
    let mut open_server: Option<&str> = None;
    for tool in tools {
        if open_server != Some(tool.server.as_str()) {
            if open_server.is_some() {
                out.push_str("    },\n");
            }
            out.push_str(&format!("    {}?: {{\n", attribute_name(&tool.server)));
            open_server = Some(&tool.server);
        }
        let mut record = Record::default();
        for (name, mapped) in &tool.arguments {
            match mapped {
                // Optional whatever `required` says: a client may leave it out.
                Ok(ty) => {
                    let field = Field {
                        ty: ty.clone(),
                        required: false,
                        header: tool.headers.get(name).cloned(),
                    };
                    record.fields.insert(name.clone(), field);
                }
                Err(reason) => {
                    record.omitted.insert(name.clone(), reason.clone());
                }
            }
        }
        out.push_str(&format!("      {}?: ", attribute_name(&tool.name)));
        Ty::Record(record).render(3, &mut out);
        out.push_str(",\n");
    }
    if open_server.is_some() {
        out.push_str("    },\n");
    }
    out.push_str("  };\n}\n");
    out
}

/// A record attribute name as the Cedar schema syntax accepts it: bare when it is an
/// identifier that is not a keyword, quoted otherwise.
fn attribute_name(name: &str) -> String {
    const RESERVED: &[&str] = &[
        "true", "false", "if", "then", "else", "in", "is", "like", "has",
    ];
    let mut chars = name.chars();
    let identifier = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if identifier && !RESERVED.contains(&name) && !name.starts_with("__cedar") {
        name.to_owned()
    } else {
        format!("\"{}\"", name.escape_default())
    }
}

/// A JSON value shown in a message: one line, at most 80 characters.
fn shorten(text: &str) -> String {
    let mut shown: String = one_line(text).chars().take(80).collect();
    if text.chars().nth(80).is_some() {
        shown.push_str("...");
    }
    shown
}

/// Text safe inside a `//` comment or a one-line message.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
