//! `toolgate schema-from-mcp`: the `Arguments` schema fragment (and a tool catalog) from MCP tools/list results.

use serde::Serialize;
use serde_json::Value;
use toolgate_cli::mcp_schema::{generate, Options, ServerTools};

use crate::args::Args;
use crate::folder;
use crate::output::print_json;

/// What `schema-from-mcp --json` prints.
#[derive(Serialize)]
struct Report {
    /// True when the schema was generated (errors end the command instead).
    ok: bool,
    /// The Cedar schema fragment (`namespace Toolgate { type Arguments = ...; }`), when ok.
    schema: Option<String>,
    /// The tool catalog: an array of `Toolgate::Tool` entities (Cedar entity JSON), when ok.
    entities: Option<Value>,
    /// Where `--entities` wrote the catalog.
    entities_file: Option<String>,
    /// Arguments left untyped or typed for some tools only, and other things to review.
    warnings: Vec<String>,
}

pub fn run(args: &Args) -> Result<bool, String> {
    let mut servers = Vec::new();
    for (server, file) in args.servers_of_files("schema-from-mcp", "tools/list")? {
        let name = file.display().to_string();
        let text = folder::read(file)?;
        servers.push(ServerTools::from_json(&server, &name, &text).map_err(|e| e.to_string())?);
    }
    let options = Options {
        sensitivity: args
            .sensitivity
            .clone()
            .unwrap_or_else(|| Options::default().sensitivity),
    };
    let generated = generate(&servers, &options).map_err(|e| e.to_string())?;
    if !args.json {
        for warning in &generated.warnings {
            eprintln!("warning: {warning}");
        }
    }
    if let Some(path) = &args.entities {
        let text = serde_json::to_string_pretty(&generated.entities).unwrap_or_default() + "\n";
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        if !args.json {
            eprintln!("wrote the tool catalog to {}", path.display());
        }
    }
    if args.json {
        return print_json(&Report {
            ok: true,
            entities_file: args.entities.as_ref().map(|p| p.display().to_string()),
            schema: Some(generated.schema),
            entities: Some(generated.entities),
            warnings: generated.warnings,
        })
        .map(|()| true);
    }
    print!("{}", generated.schema);
    Ok(true)
}
