//! toolgate's policy CLI: the filter's own core, run on files instead of live requests.

mod args;
mod cases;
mod explain;
mod folder;
mod output;
mod replay;
mod request;
mod schema_from_a2a;
mod schema_from_mcp;
mod validate;

use std::process::ExitCode;

use args::Args;

const USAGE: &str = "\
toolgate: check, test and explain toolgate's Cedar policies with the filter's own code

usage:
  toolgate validate [--policies DIR] [--json]
      Parse and validate (strict mode) the policies, schema and entities in DIR.
  toolgate test [--policies DIR] [--json] [CASES...]
      Run test cases (files or folders of *.json; default DIR/tests) against DIR.
  toolgate explain [--policies DIR] [--config FILE] [--json] REQUEST.json|-
      Decide one request as the filter would, and show why.
  toolgate replay [--policies DIR] [--json] DECISIONS.log
      Re-decide logged decisions with the policies in DIR; list what would change.
  toolgate schema-from-mcp [--server NAME] [--entities OUT.json] [--sensitivity LEVEL] [--json] FILE...
      Print the Cedar `Arguments` schema fragment for MCP servers' tools/list results
      (one file per server, named after the file unless --server); with --entities,
      also write a Tool catalog (sensitivity LEVEL, default high) to OUT.json.
  toolgate schema-from-a2a [--server NAME] [--tag TAG]... [--entities OUT.json] [--json] CARD.json...
      Print the catalog entities of remote A2A agents from their agent cards (one
      file per agent, named after the file unless --server): a Toolgate::Server
      tagged a2a (and each TAG), and a Toolgate::Skill per skill; --entities writes them.

With --json, a command prints one JSON document (its report) on stdout instead of
the text, with the same exit code; an error that stops it (exit 2) stays text on stderr.
DIR defaults to ./policies. Exit codes: 0 ok (explain: allowed; replay: nothing
changes), 1 a finding (invalid policies, failing cases, denied, changed decisions),
2 the command could not run (bad arguments or files).
";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match run(&argv) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("toolgate: {error}");
            ExitCode::from(2)
        }
    }
}

/// Ok(true) when the command found nothing wrong, Ok(false) when it did.
fn run(argv: &[String]) -> Result<bool, String> {
    let Some((command, rest)) = argv.split_first() else {
        print!("{USAGE}");
        return Err("no command given".into());
    };
    if matches!(command.as_str(), "-h" | "--help" | "help") {
        print!("{USAGE}");
        return Ok(true);
    }
    let args = Args::parse(rest)?;
    if args.help {
        print!("{USAGE}");
        return Ok(true);
    }
    match command.as_str() {
        "validate" => validate::run(&args),
        "test" => cases::run(&args),
        "explain" => explain::run(&args),
        "replay" => replay::run(&args),
        "schema-from-mcp" => schema_from_mcp::run(&args),
        "schema-from-a2a" => schema_from_a2a::run(&args),
        other => Err(format!(
            "unknown command {other:?}; the commands are validate, test, explain, replay, schema-from-mcp, schema-from-a2a (see toolgate --help)"
        )),
    }
}
