//! `toolgate test`: folders of request → expected-decision cases, run against a policy folder.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use toolgate::shared::Memory;
use toolgate::Gate;

use crate::args::Args;
use crate::folder::{self, Folder};
use crate::output::print_json;
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

/// What `test --json` prints.
#[derive(Serialize)]
struct Report {
    passed: usize,
    failed: usize,
    files: Vec<FileReport>,
}

#[derive(Serialize)]
struct FileReport {
    file: String,
    cases: Vec<CaseReport>,
}

#[derive(Serialize)]
struct CaseReport {
    name: String,
    /// True when the decision matches every expectation the case states.
    ok: bool,
    /// What the filter's core decided; absent when the request could not be decided (`error`).
    got: Option<Outcome>,
    /// Each expectation the decision does not meet; empty when `ok`.
    differences: Vec<Difference>,
    /// Why the request could not be decided at all (the case then fails).
    error: Option<String>,
}

/// The parts of a decision a case can expect.
#[derive(Serialize)]
struct Outcome {
    decision: String,
    reason: Option<String>,
    policies: Vec<String>,
    /// Evaluation errors Cedar reported.
    errors: Vec<String>,
    /// The HTTP status of the refusal; absent when the request would be forwarded.
    status: Option<u32>,
}

impl From<Decided> for Outcome {
    fn from(decided: Decided) -> Self {
        Self {
            status: decided.response.as_ref().map(|(status, _)| *status),
            decision: decided.decision,
            reason: decided.reason,
            policies: decided.policies,
            errors: decided.errors,
        }
    }
}

/// One expectation not met: the field, what the case expects and what was decided.
#[derive(Serialize)]
#[serde(tag = "field", rename_all = "snake_case")]
enum Difference {
    Decision {
        expected: String,
        got: String,
    },
    Reason {
        expected: Option<String>,
        got: Option<String>,
    },
    /// Both sorted: the order of determining policies carries no meaning.
    Policies {
        expected: Vec<String>,
        got: Vec<String>,
    },
    Status {
        expected: u32,
        got: Option<u32>,
    },
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
    let mut report = Report {
        passed: 0,
        failed: 0,
        files: Vec::new(),
    };
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
        let mut done = FileReport {
            file: name,
            cases: Vec::new(),
        };
        for case in &cases.cases {
            let (got, differences, error) = match request::decide(&gate, &case.request, &shared) {
                Ok(decided) => {
                    let got = Outcome::from(decided);
                    let differences = differences(&case.expect, &got);
                    (Some(got), differences, None)
                }
                Err(e) => (None, Vec::new(), Some(e)),
            };
            let ok = differences.is_empty() && error.is_none();
            if ok {
                report.passed += 1;
            } else {
                report.failed += 1;
            }
            done.cases.push(CaseReport {
                name: case.name.clone(),
                ok,
                got,
                differences,
                error,
            });
        }
        report.files.push(done);
    }
    if args.json {
        print_json(&report)?;
    } else {
        print_text(&report);
    }
    Ok(report.failed == 0)
}

/// Every way the decision differs from what the case expects.
fn differences(expect: &Expect, got: &Outcome) -> Vec<Difference> {
    let mut differences = Vec::new();
    if expect.decision != got.decision {
        differences.push(Difference::Decision {
            expected: expect.decision.clone(),
            got: got.decision.clone(),
        });
    }
    if expect.reason.is_some() && expect.reason != got.reason {
        differences.push(Difference::Reason {
            expected: expect.reason.clone(),
            got: got.reason.clone(),
        });
    }
    if let Some(policies) = &expect.policies {
        let (mut expected, mut have) = (policies.clone(), got.policies.clone());
        expected.sort();
        have.sort();
        if expected != have {
            differences.push(Difference::Policies {
                expected,
                got: have,
            });
        }
    }
    if let Some(status) = expect.status {
        if got.status != Some(status) {
            differences.push(Difference::Status {
                expected: status,
                got: got.status,
            });
        }
    }
    differences
}

fn print_text(report: &Report) {
    for file in &report.files {
        println!("{}", file.file);
        for case in &file.cases {
            if case.ok {
                println!("  ok    {}", case.name);
                continue;
            }
            println!("  FAIL  {}", case.name);
            if let Some(error) = &case.error {
                println!("        the request cannot be decided: {error}");
            }
            let Some(got) = &case.got else { continue };
            for difference in &case.differences {
                println!("        {}", describe(difference, got));
            }
            if !got.errors.is_empty() {
                println!("        errors:   {}", got.errors.join("; "));
            }
        }
    }
    println!("{} passed, {} failed", report.passed, report.failed);
}

/// One difference as a readable line.
fn describe(difference: &Difference, got: &Outcome) -> String {
    let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
    match difference {
        Difference::Decision {
            expected,
            got: have,
        } => format!(
            "decision: expected {expected}, got {have} (reason {})",
            shown(&got.reason)
        ),
        Difference::Reason {
            expected,
            got: have,
        } => {
            format!(
                "reason:   expected {}, got {}",
                shown(expected),
                shown(have)
            )
        }
        Difference::Policies {
            expected,
            got: have,
        } => {
            format!("policies: expected {expected:?}, got {have:?}")
        }
        Difference::Status {
            expected,
            got: have,
        } => format!(
            "status:   expected {expected}, got {}",
            have.map_or("none (forwarded)".into(), |s| s.to_string())
        ),
    }
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
