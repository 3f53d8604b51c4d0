//! `--json` output: each command's report, a typed struct, as one JSON document on stdout.

use serde::Serialize;

/// Prints REPORT as pretty-printed JSON (one document, then a newline).
pub fn print_json<T: Serialize>(report: &T) -> Result<(), String> {
    let text = serde_json::to_string_pretty(report)
        .map_err(|e| format!("cannot write the --json output: {e}"))?;
    println!("{text}");
    Ok(())
}
