//! `toolgate test`: folders of request → expected-decision cases, run against a policy folder.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use toolgate::shared::Memory;
use toolgate::Gate;

use crate::args::Args;
use crate::folder::{self, Folder};
use crate::request::{self, Decided};

/// One file of cases, sharing a plugin configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    /// The plugin configuration the cases run under (its `policies` are ignored).
    #[serde(default)]
    config: Option<Value>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    request: Value,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    decision: String,
    #[serde(default)]
    reason: Option<String>,
    /// The determining policies, in any order.
    #[serde(default)]
    policies: Option<Vec<String>>,
    /// The HTTP status the client gets (refusals only).
    #[serde(default)]
    status: Option<u32>,
}

pub fn run(args: &Args) -> Result<bool, String> {
    let dir = args.policy_dir();
    let folder = Folder::read(&dir)?;
    // Checked once up front, so a broken policy is reported once, not per case.
    folder.store()?;
    let roots = match args.files.as_slice() {
        [] => vec![dir.join("tests")],
        given => given.to_vec(),
    };
    let mut files = Vec::new();
    for root in &roots {
        collect(root, &mut files)?;
    }
    if files.is_empty() {
        return Err(format!(
            "no *.json case files in {}",
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let (mut passed, mut failed) = (0, 0);
    for file in &files {
        let name = file.display().to_string();
        let text = folder::read(file)?;
        let cases: CaseFile = serde_json::from_str(&text)
            .map_err(|e| format!("{name}:{}:{}: {e}", e.line(), e.column()))?;
        let config =
            folder::config(None, cases.config.as_ref()).map_err(|e| format!("{name}: {e}"))?;
        let gate = Gate::with_store(config, folder.store()?, 0);
        // The cases of one file run in order against one session history.
        let shared = Memory::new();
        println!("{name}");
        for case in &cases.cases {
            let problems = match request::decide(&gate, &case.request, &shared) {
                Ok(decided) => differences(&case.expect, &decided),
                Err(e) => vec![format!("the request cannot be decided: {e}")],
            };
            if problems.is_empty() {
                passed += 1;
                println!("  ok    {}", case.name);
            } else {
                failed += 1;
                println!("  FAIL  {}", case.name);
                for problem in problems {
                    println!("        {problem}");
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

/// Every way the decision differs from what the case expects, as readable lines.
fn differences(expect: &Expect, got: &Decided) -> Vec<String> {
    let mut problems = Vec::new();
    let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
    if expect.decision != got.decision {
        problems.push(format!(
            "decision: expected {}, got {} (reason {})",
            expect.decision,
            got.decision,
            shown(&got.reason)
        ));
    }
    if expect.reason.is_some() && expect.reason != got.reason {
        problems.push(format!(
            "reason:   expected {}, got {}",
            shown(&expect.reason),
            shown(&got.reason)
        ));
    }
    if let Some(policies) = &expect.policies {
        let (mut want, mut have) = (policies.clone(), got.policies.clone());
        want.sort();
        have.sort();
        if want != have {
            problems.push(format!("policies: expected {want:?}, got {have:?}"));
        }
    }
    if let Some(status) = expect.status {
        let have = got.response.as_ref().map(|(status, _)| *status);
        if have != Some(status) {
            problems.push(format!(
                "status:   expected {status}, got {}",
                have.map_or("none (forwarded)".into(), |s| s.to_string())
            ));
        }
    }
    if !problems.is_empty() && !got.errors.is_empty() {
        problems.push(format!("errors:   {}", got.errors.join("; ")));
    }
    problems
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    if path.is_file() {
        files.push(path.to_owned());
        return Ok(());
    }
    let listing = std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut found: Vec<PathBuf> = listing
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    found.sort();
    for entry in found {
        if entry.is_dir() {
            collect(&entry, files)?;
        } else if entry.extension().is_some_and(|ext| ext == "json") {
            files.push(entry);
        }
    }
    Ok(())
}
