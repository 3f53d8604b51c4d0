//! The docs' examples are checked with toolgate's own code, and their relative links resolve.
//!
//! Every fenced block in `README.md` and `docs/*.md` is read by its info string (the
//! words after the opening fence), so each example says what it is checked against:
//!
//! - ```` ```cedar ````: policies, validated in strict mode against the embedded model
//!   (`policy::EMBEDDED_SCHEMA`) with the demo folder's `arguments.cedarschema` and
//!   `entities.json` ([`DEMO`]).
//! - ```` ```cedar tools=NAME ````: the same, but against the `Arguments` type and tool
//!   catalog that `toolgate schema-from-mcp` generates from the `json tools name=NAME`
//!   block of the same file (how the README's walk-through is checked).
//! - ```` ```cedar fragment ````: an excerpt that is not meant to compile; not checked.
//!   A Cedar block must be one or the other: an unknown word, or a block without a
//!   language that holds a `permit (` or `forbid (`, fails the test.
//! - ```` ```cedarschema ````: an `Arguments` fragment, validated with the model.
//! - ```` ```json config ````: a plugin configuration, parsed by `Config::from_json` and
//!   its policy store built as the filter would (so `policies` in it are validated).
//!   A block that starts with `"` is a set of fields, checked wrapped in `{}`.
//! - ```` ```json tools name=NAME [server=SERVER] ````: an MCP `tools/list` result, run
//!   through `mcp_schema::generate` (server `tools` unless given).
//! - ```` ```json cases ````: a `toolgate test` case file, run by the CLI against the demo folder.
//! - ```` ```json ````: any other JSON; it must parse. ```` ```json fragment ```` skips that.
//!
//! Errors name the doc file and the line of the opening fence, and Cedar's and serde's
//! own line numbers are the doc's lines (each block is padded with the lines before it).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Component, Path, PathBuf};

use toolgate::config::Config;
use toolgate::policy::{feature_policies, PolicyFiles, PolicyStore, Source, EMBEDDED_SCHEMA};
use toolgate_cli::mcp_schema::{generate, Options, ServerTools};

/// The demo data the docs' examples name (its agents, groups, tools and argument types).
const DEMO: &str = "examples/demo";

/// The repository root: docs links and the demo folder are relative to it.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The Markdown files whose examples and links are checked, relative to the root.
fn doc_files(root: &Path) -> Vec<String> {
    let mut files = vec!["README.md".to_owned()];
    let mut pages: Vec<String> = fs::read_dir(root.join("docs"))
        .map(|dir| {
            dir.filter_map(|entry| entry.ok())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".md"))
                .map(|name| format!("docs/{name}"))
                .collect()
        })
        .unwrap_or_default();
    pages.sort();
    files.extend(pages);
    files
}

/// One fenced block: where it opens, its info string's words, and its text.
struct Block {
    line: usize,
    lang: String,
    words: Vec<String>,
    body: String,
}

impl Block {
    fn has(&self, word: &str) -> bool {
        self.words.iter().any(|w| w == word)
    }

    fn value(&self, key: &str) -> Option<&str> {
        self.words
            .iter()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    }

    /// The body padded so that its first line is the line after the fence: parsers'
    /// line numbers are then the doc's.
    fn padded(&self) -> String {
        "\n".repeat(self.line) + &self.body
    }

    fn info(&self) -> String {
        std::iter::once(self.lang.as_str())
            .chain(self.words.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The fenced blocks of a Markdown text, in order.
fn blocks(text: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut open: Option<Block> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match open.take() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let mut words = info.split_whitespace().map(str::to_owned);
                    open = Some(Block {
                        line: index + 1,
                        lang: words.next().unwrap_or_default(),
                        words: words.collect(),
                        body: String::new(),
                    });
                }
            }
            Some(mut block) => {
                if trimmed.starts_with("```") {
                    found.push(block);
                } else {
                    block.body.push_str(line);
                    block.body.push('\n');
                    open = Some(block);
                }
            }
        }
    }
    found
}

/// What was checked, so a test can tell a pass from nothing found.
#[derive(Debug, Default)]
struct Checked {
    cedar: usize,
    cedar_fragments: usize,
    schemas: usize,
    configs: usize,
    cases: usize,
    tool_lists: usize,
    json: usize,
}

/// The demo folder's `Arguments` fragment and entities, as (name, text), and where it is.
struct Demo {
    arguments: (String, String),
    entities: (String, String),
    dir: PathBuf,
}

impl Demo {
    fn read(root: &Path) -> Self {
        let read = |file: &str| {
            let name = format!("{DEMO}/{file}");
            let text = fs::read_to_string(root.join(&name)).unwrap_or_else(|e| {
                panic!("{name}: {e} (the docs' Cedar examples are checked against it; fix DEMO in cli/tests/docs.rs)")
            });
            (name, text)
        };
        Self {
            arguments: read("arguments.cedarschema"),
            entities: read("entities.json"),
            dir: root.join(DEMO),
        }
    }
}

/// Checks every block of one doc; returns what it checked and one message per problem.
fn check_blocks(file: &str, text: &str, demo: &Demo) -> (Checked, Vec<String>) {
    let mut checked = Checked::default();
    let mut errors = Vec::new();
    let all = blocks(text);
    // `json tools name=NAME` blocks, generated once: NAME -> (schema, entities JSON).
    let mut generated: HashMap<String, (String, String)> = HashMap::new();
    for block in all.iter().filter(|b| b.lang == "json" && b.has("tools")) {
        let at = format!("{file}:{}: ```{} block", block.line, block.info());
        let Some(name) = block.value("name") else {
            errors.push(format!("{at}: name the tools/list with name=NAME"));
            continue;
        };
        let server = block.value("server").unwrap_or("tools");
        let result = ServerTools::from_json(server, file, &block.padded())
            .and_then(|tools| generate(&[tools], &Options::default()));
        match result {
            Ok(out) => {
                let entities = out.entities.to_string();
                generated.insert(name.to_owned(), (out.schema, entities));
                checked.tool_lists += 1;
            }
            Err(e) => errors.push(format!("{at}: {e}")),
        }
    }
    for block in &all {
        let at = format!("{file}:{}: ```{} block", block.line, block.info());
        let outcome = match block.lang.as_str() {
            "cedar" => check_cedar(block, file, demo, &generated, &mut checked),
            "cedarschema" => check_schema(block, file, &mut checked),
            "json" => check_json(block, file, demo, &mut checked),
            "" if looks_like_cedar(&block.body) => Err(
                "this block holds Cedar policies: label it ```cedar (validated) or ```cedar fragment (an excerpt, not checked)".into(),
            ),
            lang if lang.starts_with("cedar") => Err(format!(
                "unknown language {lang:?}: write ```cedar, ```cedar fragment or ```cedarschema"
            )),
            _ => Ok(()),
        };
        if let Err(e) = outcome {
            errors.push(format!("{at}: {e}"));
        }
    }
    (checked, errors)
}

fn looks_like_cedar(body: &str) -> bool {
    body.lines().any(|line| {
        let line = line.trim_start();
        line.starts_with("permit (") || line.starts_with("forbid (")
    })
}

/// Refuses words in an info string that this test does not know, so a typo in a marker
/// (`fragmnet`) cannot silently skip or mis-check a block.
fn known_words(block: &Block, flags: &[&str], keys: &[&str]) -> Result<(), String> {
    for word in &block.words {
        let known = match word.split_once('=') {
            Some((key, _)) => keys.contains(&key),
            None => flags.contains(&word.as_str()),
        };
        if !known {
            return Err(format!(
                "unknown word {word:?} after ```{}; see cli/tests/docs.rs for the markers",
                block.lang
            ));
        }
    }
    Ok(())
}

fn check_cedar(
    block: &Block,
    file: &str,
    demo: &Demo,
    generated: &HashMap<String, (String, String)>,
    checked: &mut Checked,
) -> Result<(), String> {
    known_words(block, &["fragment"], &["tools"])?;
    if block.has("fragment") {
        checked.cedar_fragments += 1;
        return Ok(());
    }
    let text = block.padded();
    let (arguments, entities) = match block.value("tools") {
        None => (
            Source {
                name: &demo.arguments.0,
                text: &demo.arguments.1,
            },
            Source {
                name: &demo.entities.0,
                text: &demo.entities.1,
            },
        ),
        Some(name) => {
            let (schema, catalog) = generated.get(name).ok_or_else(|| {
                format!("tools={name}: no ```json tools name={name} block in this file")
            })?;
            (
                Source {
                    name: "the generated Arguments fragment",
                    text: schema,
                },
                Source {
                    name: "the generated tool catalog",
                    text: catalog,
                },
            )
        }
    };
    PolicyStore::from_files(&PolicyFiles {
        policies: vec![Source {
            name: file,
            text: &text,
        }],
        schema: vec![EMBEDDED_SCHEMA, arguments],
        entities: vec![entities],
    })?;
    checked.cedar += 1;
    Ok(())
}

fn check_schema(block: &Block, file: &str, checked: &mut Checked) -> Result<(), String> {
    known_words(block, &["fragment"], &[])?;
    if block.has("fragment") {
        return Ok(());
    }
    let text = block.padded();
    PolicyStore::from_files(&PolicyFiles {
        policies: Vec::new(),
        schema: vec![
            EMBEDDED_SCHEMA,
            Source {
                name: file,
                text: &text,
            },
        ],
        entities: Vec::new(),
    })?;
    checked.schemas += 1;
    Ok(())
}

fn check_json(block: &Block, file: &str, demo: &Demo, checked: &mut Checked) -> Result<(), String> {
    known_words(
        block,
        &["fragment", "config", "tools", "cases"],
        &["name", "server"],
    )?;
    if block.has("fragment") || block.has("tools") {
        return Ok(());
    }
    if block.has("config") {
        // Fields alone (`"credentials": {...}`) are checked as an object of them; the
        // brace goes on the fence's line so line numbers stay the doc's.
        let text = if block.body.trim_start().starts_with('"') {
            format!("{}{{\n{}}}", "\n".repeat(block.line - 1), block.body)
        } else {
            block.padded()
        };
        let config = Config::from_json(text.as_bytes())?;
        PolicyStore::build(&config.policies, &feature_policies(&config))?;
        checked.configs += 1;
        return Ok(());
    }
    if block.has("cases") {
        run_cases(block, file, demo)?;
        checked.cases += 1;
        return Ok(());
    }
    serde_json::from_str::<serde_json::Value>(&block.padded())
        .map_err(|e| format!("not JSON ({e}); fix it, or mark an excerpt ```json fragment"))?;
    checked.json += 1;
    Ok(())
}

/// Runs a case file through `toolgate test --policies DEMO`, as a reader of the docs would.
fn run_cases(block: &Block, file: &str, demo: &Demo) -> Result<(), String> {
    let path = std::env::temp_dir().join(format!(
        "toolgate-docs-{}-{}-{}.json",
        std::process::id(),
        file.replace('/', "_"),
        block.line
    ));
    fs::write(&path, &block.body).map_err(|e| format!("{}: {e}", path.display()))?;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_toolgate"))
        .arg("test")
        .arg("--policies")
        .arg(&demo.dir)
        .arg(&path)
        .output();
    let _ = fs::remove_file(&path);
    let output = output.map_err(|e| format!("running toolgate test: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "toolgate test --policies {DEMO} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors a Markdown text's headings get (repeats get `-1`, `-2`, ... as on GitHub).
fn anchors(text: &str) -> HashSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = HashSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if fenced || hashes == 0 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&line[hashes..]);
        let count = seen.entry(base.clone()).or_insert(0);
        out.insert(if *count == 0 {
            base.clone()
        } else {
            format!("{base}-{count}")
        });
        *count += 1;
    }
    out
}

/// `](target)` links outside fenced blocks, with their line numbers.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (index, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let end = rest.find(')').unwrap_or(rest.len());
            out.push((index + 1, rest[..end].to_owned()));
            rest = &rest[end..];
        }
    }
    out
}

/// Checks a doc's relative links: the file exists in the repository, and an anchor
/// into a Markdown file is one of its headings. `read` gives a repository file's text.
fn check_links(file: &str, text: &str, exists: &dyn Fn(&Path) -> Option<String>) -> Vec<String> {
    let mut errors = Vec::new();
    let dir = Path::new(file).parent().unwrap_or(Path::new(""));
    for (line, target) in links(text) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (target.as_str(), None),
        };
        let resolved = if path.is_empty() {
            Some(PathBuf::from(file))
        } else {
            normalize(&dir.join(path))
        };
        let Some(resolved) = resolved else {
            errors.push(format!(
                "{file}:{line}: link {target:?} leaves the repository"
            ));
            continue;
        };
        let Some(body) = exists(&resolved) else {
            errors.push(format!(
                "{file}:{line}: link {target:?}: {} does not exist",
                resolved.display()
            ));
            continue;
        };
        if let Some(anchor) = anchor {
            let markdown = resolved.extension().is_some_and(|e| e == "md");
            if markdown && !anchors(&body).contains(anchor) {
                errors.push(format!(
                    "{file}:{line}: link {target:?}: {} has no heading #{anchor}",
                    resolved.display()
                ));
            }
        }
    }
    errors
}

/// `a/b/../c` -> `a/c`; None when the path climbs out of the root.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

/// A repository file's text ("" for a folder), or None when it does not exist.
fn repo_file(root: &Path) -> impl Fn(&Path) -> Option<String> + '_ {
    move |path| {
        let full = root.join(path);
        if full.is_dir() {
            return Some(String::new());
        }
        fs::read_to_string(full).ok()
    }
}

#[test]
fn every_cedar_and_config_example_in_the_docs_is_valid() {
    let root = root();
    let demo = Demo::read(&root);
    let mut total = Checked::default();
    let mut errors = Vec::new();
    for file in doc_files(&root) {
        let text = fs::read_to_string(root.join(&file)).unwrap_or_default();
        let (checked, found) = check_blocks(&file, &text, &demo);
        total.cedar += checked.cedar;
        total.cedar_fragments += checked.cedar_fragments;
        total.schemas += checked.schemas;
        total.configs += checked.configs;
        total.cases += checked.cases;
        total.tool_lists += checked.tool_lists;
        total.json += checked.json;
        errors.extend(found);
    }
    assert!(errors.is_empty(), "{}", errors.join("\n\n"));
    eprintln!("checked: {total:?}");
    // Nothing found would pass too: the docs hold these today.
    assert!(
        total.cedar >= 3,
        "too few Cedar examples checked: {total:?}"
    );
    assert!(
        total.configs >= 5,
        "too few config examples checked: {total:?}"
    );
    assert!(
        total.cases >= 1,
        "the CLI's case example was not found: {total:?}"
    );
    assert!(
        total.tool_lists >= 1,
        "the walk-through's tools/list was not found: {total:?}"
    );
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let root = root();
    let files = doc_files(&root);
    assert!(files.len() > 5, "docs/ not found: {files:?}");
    let mut errors = Vec::new();
    for file in &files {
        let text = fs::read_to_string(root.join(file)).unwrap_or_default();
        errors.extend(check_links(file, &text, &repo_file(&root)));
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

// The checker itself: each kind of mistake is reported, with the file and line.

fn demo() -> Demo {
    Demo::read(&root())
}

fn errors_of(text: &str) -> Vec<String> {
    check_blocks("docs/x.md", text, &demo()).1
}

#[test]
fn a_policy_with_a_typo_names_the_doc_line() {
    let text = "# x\n\n```cedar\n@id(\"typo\")\npermit (principal, action == Toolgate::Action::\"tools/call\", resource)\nwhen { context.intnet == \"x\" };\n```\n";
    let errors = errors_of(text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("docs/x.md:3: ```cedar block"),
        "{errors:?}"
    );
    assert!(
        errors[0].contains("docs/x.md:6:"),
        "Cedar's line is the doc's: {errors:?}"
    );
    assert!(errors[0].contains("intnet"), "{errors:?}");
}

#[test]
fn fragments_are_skipped_and_unmarked_or_mislabelled_cedar_fails() {
    let fragment = "```cedar fragment\nwhen { context has rate && ... };\n```\n";
    assert!(errors_of(fragment).is_empty());
    let unlabelled = "```\npermit (principal, action, resource);\n```\n";
    assert!(errors_of(unlabelled)[0].contains("label it ```cedar"));
    let typo = "```cedar fragmnet\npermit (principal, action, resource);\n```\n";
    assert!(errors_of(typo)[0].contains("unknown word \"fragmnet\""));
    let other = "```cedar-policy\npermit (principal, action, resource);\n```\n";
    assert!(errors_of(other)[0].contains("unknown language"));
}

#[test]
fn a_bad_config_names_the_doc_line_and_its_policies_are_validated() {
    let unknown = "text\n```json config\n{\"trust_domains\": [\"a\"],\n \"sever\": \"x\"}\n```\n";
    let errors = errors_of(unknown);
    assert!(
        errors[0].starts_with("docs/x.md:2: ```json config block"),
        "{errors:?}"
    );
    assert!(errors[0].contains("line 4"), "{errors:?}");
    let fields = "```json config\n\"history\": { \"shards\": 0 }\n```\n";
    assert!(errors_of(fields)[0].contains("history.shards"));
    let policy = "```json config\n{\"policies\": {\"cedar\": \"permit (principal, action, resource) when { context.nope };\"}}\n```\n";
    assert!(
        errors_of(policy)[0].contains("nope"),
        "{:?}",
        errors_of(policy)
    );
    assert!(errors_of("```json\n{\"a\": 1,}\n```\n")[0].contains("not JSON"));
    assert!(errors_of("```json fragment\n{ ... }\n```\n").is_empty());
}

#[test]
fn a_case_file_whose_expectation_is_wrong_fails_with_the_cli_output() {
    let case = |decision: &str| {
        format!(
            "```json cases\n{{\"config\": {{\"trust_domains\": [\"toolgate.test\"], \"server\": \"tools\"}},\n\
             \"cases\": [{{\"name\": \"payments lists tools\", \"request\": {{\"peer\": \"spiffe://toolgate.test/agent/payments\",\n\
             \"body\": {{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"tools/list\"}}}}, \"expect\": {{\"decision\": \"{decision}\"}}}}]}}\n```\n"
        )
    };
    assert!(
        errors_of(&case("allow")).is_empty(),
        "{:?}",
        errors_of(&case("allow"))
    );
    let errors = errors_of(&case("deny"));
    assert!(
        errors[0].starts_with("docs/x.md:1: ```json cases block"),
        "{errors:?}"
    );
    assert!(
        errors[0].contains("FAIL  payments lists tools"),
        "{errors:?}"
    );
}

#[test]
fn a_policy_is_checked_against_the_tools_list_it_names() {
    let tools = "```json tools name=t\n{\"tools\": [{\"name\": \"search\", \"inputSchema\": {\"type\": \"object\", \"properties\": {\"limit\": {\"type\": \"integer\"}}}}]}\n```\n";
    let good = "```cedar tools=t\npermit (principal, action == Toolgate::Action::\"tools/call\", resource == Toolgate::Tool::\"tools/search\")\nwhen { context has arguments.tools.search.limit && context.arguments.tools.search.limit <= 20 };\n```\n";
    assert!(errors_of(&format!("{tools}{good}")).is_empty());
    // `amount` is the demo's refund argument, not this tool's.
    let bad = good.replace("search.limit", "refund.amount");
    let errors = errors_of(&format!("{tools}{bad}"));
    assert!(errors[0].contains("can never apply"), "{errors:?}");
    assert!(errors_of(&bad)[0].contains("no ```json tools name=t block"));
}

#[test]
fn broken_links_and_anchors_are_reported() {
    let files: HashMap<&str, &str> = [
        ("docs/a.md", "# Title\n## The Cedar model\n"),
        ("policies/x.cedar", ""),
    ]
    .into_iter()
    .collect();
    let exists = |path: &Path| {
        files
            .get(path.to_str().unwrap_or(""))
            .map(|t| t.to_string())
    };
    let text = "[ok](a.md#the-cedar-model) [ok](../policies/x.cedar) [web](https://x.org/#y)\n\
                [gone](../policies/y.cedar)\n[anchor](a.md#nope) [self](#title)\n\
                ```\n[in code](nowhere.md)\n```\n[out](../../etc)\n";
    let errors = check_links("docs/a.md", text, &exists);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors[0].starts_with("docs/a.md:2:") && errors[0].contains("policies/y.cedar"));
    assert!(errors[1].starts_with("docs/a.md:3:") && errors[1].contains("#nope"));
    assert!(errors[2].starts_with("docs/a.md:7:") && errors[2].contains("leaves"));
    assert!(anchors("# A `b` (c)\n# A `b` (c)\n").contains("a-b-c-1"));
}
