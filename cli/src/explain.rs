//! `toolgate explain`: one request, decided as the filter would, with the why.

use std::collections::BTreeMap;
use std::io::Read;

use serde::Serialize;

use serde_json::Value;
use toolgate::Gate;

use crate::args::Args;
use crate::folder::{self, Folder};
use crate::output::print_json;
use crate::request::{self, Decided};

/// What `explain --json` prints for an HTTP request: the filter's decision record (the
/// decision log's format) and, beside its fields, what the client and the upstream would get.
#[derive(Serialize)]
struct Explained<'a> {
    #[serde(flatten)]
    record: &'a Value,
    /// The filter's own answer to the client, for a refusal; null when forwarded.
    response: Option<Response<'a>>,
    /// Headers the filter sets on the forwarded request (empty for a refusal).
    upstream_headers: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
struct Response<'a> {
    status: u32,
    body: &'a str,
}

pub fn run(args: &Args) -> Result<bool, String> {
    let [file] = args.files.as_slice() else {
        return Err("explain takes one request file (or - for standard input)".into());
    };
    let (name, text) = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("standard input: {e}"))?;
        ("standard input".to_owned(), text)
    } else {
        (file.display().to_string(), folder::read(file)?)
    };
    let request: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{name}:{}:{}: {e}", e.line(), e.column()))?;
    let store = Folder::read(&args.policy_dir())?.store()?;
    let mut config = folder::config(args.config.as_deref(), None)?;
    // Explaining needs the arguments the policies saw.
    config.log_arguments = true;
    let gate = Gate::with_store(config, store, 0);
    let decided = request::decide(&gate, &request, &toolgate::shared::Memory::new())
        .map_err(|e| format!("{name}: {e}"))?;
    if args.json {
        match &decided.record {
            Some(record) => print_json(&Explained {
                record,
                response: decided.response.as_ref().map(|(status, body)| Response {
                    status: *status,
                    body,
                }),
                upstream_headers: decided
                    .annotations
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str()))
                    .collect(),
            })?,
            // A Cedar request has no HTTP side: the Cedar request with its decision.
            None => print_json(&decided.cedar)?,
        }
    } else {
        print_explanation(&decided, gate.policy_version());
    }
    Ok(decided.decision == "allow")
}

fn print_explanation(decided: &Decided, version: &str) {
    let list = |items: &[String]| match items {
        [] => "-".to_owned(),
        _ => items.join(", "),
    };
    match &decided.reason {
        Some(reason) => println!("decision        {} ({reason})", decided.decision),
        None => println!("decision        {}", decided.decision),
    }
    println!("policies        {}", list(&decided.policies));
    println!("errors          {}", list(&decided.errors));
    println!("policy version  {version}");
    match &decided.cedar {
        Some(cedar) => {
            let uid = |v: &Value| format!("{}::{}", v["type"].as_str().unwrap_or("?"), v["id"]);
            println!("principal       {}", uid(&cedar["principal"]));
            println!("action          {}", uid(&cedar["action"]));
            println!("resource        {}", uid(&cedar["resource"]));
            let context = serde_json::to_string_pretty(&cedar["context"]).unwrap_or_default();
            println!(
                "context         {}",
                context.replace('\n', "\n                ")
            );
        }
        None => println!("cedar request   none: refused before policy evaluation"),
    }
    if let Some((status, body)) = &decided.response {
        println!("response        {status} {body}");
    }
    for (name, value) in &decided.annotations {
        println!("upstream header {name}: {value}");
    }
}
