//! Repository checks that need no running app: the clone stands alone (nothing reaches outside
//! the repository), and no source files of a crate import each other in a cycle.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every file of the repository that a clone has (not build output or local state).
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if ![".git", "target", ".spin", "node_modules"].contains(&name.as_str()) {
                files(&path, out);
            }
        } else {
            out.push(path);
        }
    }
}

#[test]
fn nothing_in_the_repository_reaches_outside_it() {
    // Built from parts so this file does not match itself.
    let outside = format!("../{}", "shared");
    let mut all = Vec::new();
    files(&root(), &mut all);
    assert!(all.len() > 50, "walked only {} files", all.len());
    let offenders: Vec<String> = all
        .iter()
        .filter(|p| {
            std::fs::read(p)
                .map(|bytes| String::from_utf8_lossy(&bytes).contains(&outside))
                .unwrap_or(false)
        })
        .map(|p| p.strip_prefix(root()).unwrap_or(p).display().to_string())
        .collect();
    assert!(offenders.is_empty(), "these name {outside}: {offenders:?}");
}

/// The `src/` directories of every crate of the workspace.
fn crate_sources() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for parent in ["crates", "components"] {
        for entry in std::fs::read_dir(root().join(parent)).unwrap() {
            let src = entry.unwrap().path().join("src");
            if src.is_dir() {
                dirs.push(src);
            }
        }
    }
    dirs.push(root().join("bench/src"));
    dirs.push(root().join("tests/probe/src"));
    dirs
}

/// Identifiers that follow `prefix` in `text`, including each name of a `prefix{a, b::c}` group.
fn names_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices(prefix) {
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &text[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for part in group.split(',') {
                out.insert(ident(part.trim()));
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|n| !n.is_empty());
    out
}

/// The file-level import graph of one crate: module name → modules (and `lib`/`main`) it uses.
fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            modules.insert(name, std::fs::read_to_string(&path).unwrap());
        }
    }
    let roots = ["lib", "main"];
    let mut graph = BTreeMap::new();
    for (name, text) in &modules {
        // Comments do not import anything.
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut uses = BTreeSet::new();
        for used in names_after(&code, "crate::") {
            if modules.contains_key(&used) && !roots.contains(&used.as_str()) {
                uses.insert(used);
            } else if let Some(root) = roots.iter().find(|r| modules.contains_key(**r)) {
                // An item of the crate root (a re-export like `crate::ApiError` included).
                uses.insert((*root).to_string());
            }
        }
        if roots.contains(&name.as_str()) {
            // The root reaches its modules by bare path (`get_lead::get_lead`); declaring a
            // module (`mod x;`) is not a use of it.
            for module in modules.keys() {
                let declared = code
                    .lines()
                    .filter(|l| !l.trim_start().contains(&format!("mod {module};")))
                    .collect::<Vec<_>>()
                    .join("\n");
                if !names_after(&declared, &format!("{module}::")).is_empty() {
                    uses.insert(module.clone());
                }
            }
        }
        uses.remove(name);
        graph.insert(name.clone(), uses);
    }
    graph
}

/// A cycle in `graph`, if there is one, as the list of its files.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            return Some(path[i..].to_vec());
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(find_cycle(&graph).map(|c| c.len()), Some(3));
    let names = names_after(
        "use crate::{auth::x, db};\nlet y = crate::kv::get();",
        "crate::",
    );
    assert_eq!(
        names,
        ["auth", "db", "kv"].iter().map(|s| s.to_string()).collect()
    );
}

#[test]
fn no_two_source_files_of_a_crate_import_each_other() {
    let mut checked = 0;
    for src in crate_sources() {
        let graph = import_graph(&src);
        checked += graph.len();
        if let Some(cycle) = find_cycle(&graph) {
            panic!("import cycle in {}: {}", src.display(), cycle.join(" → "));
        }
    }
    assert!(checked > 40, "checked only {checked} files");
}
