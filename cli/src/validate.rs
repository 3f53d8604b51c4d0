//! `toolgate validate`: parse and strictly validate a policy folder, as the filter would at configure time.

use serde::Serialize;

use crate::args::Args;
use crate::folder::Folder;
use crate::output::print_json;

/// What `validate --json` prints.
#[derive(Serialize)]
struct Report<'a> {
    /// Whether the filter would load the folder; when false, `errors` says why.
    valid: bool,
    /// The policy set's content hash (decision records name it), when valid.
    policy_version: Option<String>,
    /// The number of policies, when valid.
    policy_count: Option<usize>,
    policy_files: Vec<&'a str>,
    schema_files: Vec<&'a str>,
    entity_files: Vec<&'a str>,
    /// One problem each, naming the file, line and column.
    errors: Vec<String>,
    /// The folder adds to the embedded defaults (it has no model schema of its own).
    extends_defaults: bool,
}

pub fn run(args: &Args) -> Result<bool, String> {
    if !args.files.is_empty() {
        return Err("validate takes no files; give the folder with --policies DIR".into());
    }
    let folder = Folder::read(&args.policy_dir())?;
    let mut report = Report {
        valid: false,
        policy_version: None,
        policy_count: None,
        policy_files: names(&folder.policies),
        schema_files: names(&folder.schemas),
        entity_files: names(&folder.entities),
        errors: Vec::new(),
        extends_defaults: !folder.replaces(),
    };
    match folder.store() {
        Ok(store) => {
            report.valid = true;
            report.policy_count = Some(store.policy_count());
            report.policy_version = Some(store.version);
        }
        Err(problems) => {
            // The store reports every problem on one line (for Envoy's log); one each reads better here.
            report.errors = problems
                .trim_start_matches("invalid policies: ")
                .split(" | ")
                .map(str::to_owned)
                .collect();
        }
    }
    if args.json {
        print_json(&report)?;
    } else {
        print_text(&report);
    }
    Ok(report.valid)
}

fn names(files: &[(String, String)]) -> Vec<&str> {
    files.iter().map(|(name, _)| name.as_str()).collect()
}

fn print_text(report: &Report) {
    if let (Some(count), Some(version)) = (report.policy_count, &report.policy_version) {
        println!(
            "ok: {count} policies ({} files{}), schema {}, {} entity files; policy version {version}",
            report.policy_files.len(),
            if report.extends_defaults {
                " on the embedded defaults"
            } else {
                ""
            },
            report.schema_files.join(" + "),
            report.entity_files.len(),
        );
    }
    for problem in &report.errors {
        println!("error: {problem}");
    }
}
