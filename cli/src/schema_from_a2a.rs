//! `toolgate schema-from-a2a`: the catalog entities of remote A2A agents, from their agent cards.

use serde::Serialize;
use serde_json::Value;
use toolgate_cli::a2a_catalog;

use crate::args::Args;
use crate::folder;
use crate::output::print_json;

/// What `schema-from-a2a --json` prints.
#[derive(Serialize)]
struct Report {
    ok: bool,
    /// The catalog: `Toolgate::Server` and `Toolgate::Skill` entities (Cedar entity JSON).
    entities: Vec<Value>,
    /// Where `--entities` wrote them.
    entities_file: Option<String>,
}

pub fn run(args: &Args) -> Result<bool, String> {
    let mut entities = Vec::new();
    for (server, file) in args.servers_of_files("schema-from-a2a", "agent card")? {
        let name = file.display().to_string();
        let text = folder::read(file)?;
        let card: Value =
            serde_json::from_str(&text).map_err(|e| format!("{name}: not JSON: {e}"))?;
        entities.extend(a2a_catalog::entities(&server, &name, &card, &args.tags)?);
    }
    let text = serde_json::to_string_pretty(&entities).unwrap_or_default() + "\n";
    if let Some(path) = &args.entities {
        std::fs::write(path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
        if !args.json {
            eprintln!("wrote the agent catalog to {}", path.display());
        }
    }
    if args.json {
        return print_json(&Report {
            ok: true,
            entities,
            entities_file: args.entities.as_ref().map(|p| p.display().to_string()),
        })
        .map(|()| true);
    }
    if args.entities.is_none() {
        print!("{text}");
    }
    Ok(true)
}
