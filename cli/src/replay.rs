//! `toolgate replay`: re-decide logged decisions with a new policy set and list what would change.

use cedar_policy::Authorizer;
use serde::Serialize;
use toolgate::authorize::authorize;
use toolgate::cedar_request::from_record;
use toolgate::policy::{reads_context, PolicyStore};
use toolgate::record::{Decision, DecisionRecord};

use crate::args::Args;
use crate::folder::{self, Folder};
use crate::output::print_json;

/// What replaying one logged decision found.
enum Replayed {
    Same,
    Changed {
        now: String,
        reason: Option<String>,
        policies: Vec<String>,
    },
    /// The log cannot say: why.
    Unknown(String),
}

/// What `replay --json` prints.
#[derive(Serialize)]
struct Summary<'a> {
    /// The version of the policies replayed against.
    policy_version: &'a str,
    /// Decision records read.
    decisions: usize,
    unchanged: usize,
    allow_to_deny: usize,
    deny_to_allow: usize,
    not_replayable: NotReplayable,
    /// Lines that are not decision records: `FILE:LINE: problem`.
    unreadable: &'a [String],
    changes: &'a [Change],
}

#[derive(Serialize)]
struct NotReplayable {
    /// Refused before any policy was evaluated (identity, framing, ...): nothing to re-decide.
    refused_before_policy: usize,
    /// Decided by policies that read arguments the log kept only as a digest.
    arguments_not_logged: usize,
}

/// One logged decision the policies now decide the other way.
#[derive(Serialize)]
struct Change {
    decision_id: Option<String>,
    timestamp: Option<String>,
    principal: Option<String>,
    action: Option<String>,
    resource: Option<String>,
    was: &'static str,
    was_policies: Vec<String>,
    was_version: Option<String>,
    now: &'static str,
    /// Why it is now denied; absent when it is now allowed.
    now_reason: Option<String>,
    now_policies: Vec<String>,
}

#[derive(Default)]
struct Tally {
    read: usize,
    same: usize,
    allow_to_deny: usize,
    deny_to_allow: usize,
    before_policy: usize,
    without_arguments: usize,
    unreadable: Vec<String>,
}

pub fn run(args: &Args) -> Result<bool, String> {
    let [log] = args.files.as_slice() else {
        return Err("replay takes one decision log file".into());
    };
    let dir = args.policy_dir();
    let store = Folder::read(&dir)?.store()?;
    let text = folder::read(log)?;
    let authorizer = Authorizer::new();
    let mut tally = Tally::default();
    let mut changes = Vec::new();
    for (n, line) in text.lines().enumerate() {
        // Envoy writes `-` for a request without a decision (no filter state).
        if matches!(line.trim(), "" | "-") {
            continue;
        }
        let record: DecisionRecord = match serde_json::from_str(line) {
            Ok(record) => record,
            Err(e) => {
                tally
                    .unreadable
                    .push(format!("{}:{}: {e}", log.display(), n + 1));
                continue;
            }
        };
        tally.read += 1;
        match replay(&authorizer, &store, &record) {
            Ok(Replayed::Same) => tally.same += 1,
            Ok(Replayed::Changed {
                now,
                reason,
                policies,
            }) => {
                if now == "deny" {
                    tally.allow_to_deny += 1;
                } else {
                    tally.deny_to_allow += 1;
                }
                changes.push(change(&record, &now, reason, policies));
            }
            Ok(Replayed::Unknown(why)) if why == BEFORE_POLICY => tally.before_policy += 1,
            Ok(Replayed::Unknown(_)) => tally.without_arguments += 1,
            Err(e) => tally
                .unreadable
                .push(format!("{}:{}: {e}", log.display(), n + 1)),
        }
    }
    if args.json {
        print_json(&Summary {
            policy_version: &store.version,
            decisions: tally.read,
            unchanged: tally.same,
            allow_to_deny: tally.allow_to_deny,
            deny_to_allow: tally.deny_to_allow,
            not_replayable: NotReplayable {
                refused_before_policy: tally.before_policy,
                arguments_not_logged: tally.without_arguments,
            },
            unreadable: &tally.unreadable,
            changes: &changes,
        })?;
    } else {
        print_summary(
            &tally,
            &changes,
            &store.version,
            &dir.display().to_string(),
            &log.display().to_string(),
        );
    }
    if !tally.unreadable.is_empty() && tally.read == 0 {
        return Err(format!("{}: no decision records in it", log.display()));
    }
    Ok(changes.is_empty())
}

const BEFORE_POLICY: &str = "refused before policy evaluation";

fn replay(
    authorizer: &Authorizer,
    store: &PolicyStore,
    record: &DecisionRecord,
) -> Result<Replayed, String> {
    let Some(cedar) = &record.cedar else {
        return Ok(Replayed::Unknown(BEFORE_POLICY.into()));
    };
    let built = from_record(cedar).map_err(|e| e.0)?;
    // Arguments are logged only as a digest unless log_arguments is on: a policy
    // that reads `context.arguments` cannot be replayed honestly.
    let arguments_missing =
        record.arguments_digest.is_some() && cedar.context.get("arguments").is_none();
    if arguments_missing
        && store
            .policies_for(&built.principal, &built.action, &built.resource)
            .policies
            .policies()
            .any(|policy| reads_context(policy, "arguments"))
    {
        return Ok(Replayed::Unknown("arguments not logged".into()));
    }
    let verdict = authorize(authorizer, store, &built);
    let now = match verdict.denied {
        None => Decision::Allow,
        Some(_) => Decision::Deny,
    };
    Ok(if now == cedar.decision {
        Replayed::Same
    } else {
        Replayed::Changed {
            now: now.as_str().to_owned(),
            reason: verdict.denied.map(|r| r.code().to_owned()),
            policies: verdict.policies,
        }
    })
}

fn change(
    record: &DecisionRecord,
    now: &str,
    reason: Option<String>,
    policies: Vec<String>,
) -> Change {
    let allowed = now == "allow";
    Change {
        decision_id: Some(record.decision_id.clone()),
        timestamp: Some(record.timestamp.clone()),
        principal: record.principal.clone(),
        action: record.action.clone(),
        resource: record.resource.clone(),
        was: if allowed { "deny" } else { "allow" },
        was_policies: record.policies.clone(),
        was_version: record.policy_version.clone(),
        now: if allowed { "allow" } else { "deny" },
        now_reason: reason,
        now_policies: policies,
    }
}

fn print_summary(tally: &Tally, changes: &[Change], version: &str, dir: &str, log: &str) {
    println!(
        "replayed {} decisions from {log} against {dir} (policy version {version})",
        tally.read
    );
    println!("  unchanged           {}", tally.same);
    println!("  allow -> deny       {}", tally.allow_to_deny);
    println!("  deny -> allow       {}", tally.deny_to_allow);
    println!(
        "  not replayable      {} refused before policy evaluation, {} with arguments not logged (set log_arguments to replay those)",
        tally.before_policy, tally.without_arguments
    );
    for line in &tally.unreadable {
        println!("  unreadable          {line}");
    }
    if !changes.is_empty() {
        println!("changed decisions:");
    }
    let text = |v: &Option<String>| v.as_deref().unwrap_or("-").to_owned();
    for c in changes {
        println!(
            "  {} -> {}  {}  {}  {} {} {}  now: {}{}",
            c.was,
            c.now,
            text(&c.timestamp),
            text(&c.decision_id),
            text(&c.principal),
            text(&c.action),
            text(&c.resource),
            c.now_reason.as_deref().unwrap_or("permitted"),
            if c.now_policies.is_empty() {
                String::new()
            } else {
                format!(" by {}", c.now_policies.join(", "))
            },
        );
    }
}
