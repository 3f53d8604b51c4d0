//! The core's modules form no cycle: each stage depends only on the ones below it.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name -> the core modules its `crate::...` paths name.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files: Vec<_> = std::fs::read_dir(&src)
        .expect("filter/src")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs") && !p.ends_with("lib.rs"))
        .collect();
    let names: BTreeSet<String> = files
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .collect();
    let mut graph = BTreeMap::new();
    for path in &files {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_owned();
        let text = std::fs::read_to_string(path).expect("readable");
        let mut deps = BTreeSet::new();
        for (at, _) in text.match_indices("crate::") {
            // `crate::x` and `crate::{x, y::z}`.
            let rest = &text[at + "crate::".len()..];
            let names_here: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
                None => vec![rest],
            };
            for item in names_here {
                let module: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if module != name && names.contains(&module) {
                    deps.insert(module);
                }
            }
        }
        graph.insert(name, deps);
    }
    graph
}

#[test]
fn the_core_has_no_module_cycles() {
    let graph = imports();
    assert!(graph.len() > 30, "{graph:?}");
    // A module is in a cycle when it reaches itself.
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<(&String, Vec<&String>)> = vec![(start, vec![start])];
        while let Some((at, path)) = todo.pop() {
            for next in &graph[at] {
                let mut path = path.clone();
                path.push(next);
                assert!(
                    next != start,
                    "module cycle: {}",
                    path.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" -> ")
                );
                if seen.insert(next) {
                    todo.push((next, path));
                }
            }
        }
    }
}
