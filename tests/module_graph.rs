//! The module graph keeps the layering of `ARCHITECTURE.md`: the top-level modules of `src/`
//! form a DAG, services never import the edge that assembles them, and the leaves import nothing
//! of the crate. Read from the source text (`use crate::…` and every `crate::…` path), so the
//! check needs no build of the server and fails the moment a cycle comes back.

#![expect(
    clippy::expect_used,
    reason = "a test: an unreadable src/ must fail loudly"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The edge: built from everything, imported by nothing below it.
const EDGE: &[&str] = &[
    "main",
    "lib",
    "cli",
    "startup",
    "state",
    "config",
    "telemetry",
];
/// Services and storage: may import each other downwards, never the edge or `http`.
const CORE: &[&str] = &["oidc", "accounts", "mail", "keys", "db"];
/// Import nothing of the crate.
const LEAVES: &[&str] = &["clock", "fault", "metrics", "secrets", "verify"];

/// The top-level module a file under `src/` belongs to (`src/oidc/grants.rs` -> `oidc`).
fn top_module(relative: &Path) -> String {
    let first = relative
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    first.trim_end_matches(".rs").to_owned()
}

/// Every top-level module named after `crate::` in `source`, comments removed. Handles
/// `crate::a::b`, `use crate::{a::x, b}` and nested groups.
fn referenced_modules(source: &str) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
        rest = &rest[at + "crate::".len()..];
        if preceded_by_ident {
            continue; // `$crate::` in a macro or `other_crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group: split on commas at depth 0.
            let mut depth = 0usize;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        item.push(c);
                    }
                    '}' if depth == 0 => break,
                    '}' => {
                        depth -= 1;
                        item.push(c);
                    }
                    ',' if depth == 0 => {
                        found.insert(first_ident(&item));
                        item.clear();
                    }
                    _ => item.push(c),
                }
            }
            found.insert(first_ident(&item));
        } else {
            found.insert(first_ident(rest));
        }
    }
    found.retain(|name| !name.is_empty());
    found
}

fn first_ident(text: &str) -> String {
    text.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Module -> the other top-level modules it references.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.clone()];
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut modules = BTreeSet::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read src") {
                files.push(entry.expect("dir entry").path());
            }
            continue;
        }
        if path.extension().is_none_or(|ext| ext != "rs") {
            continue;
        }
        let relative = path.strip_prefix(&src).expect("under src");
        let module = top_module(relative);
        modules.insert(module.clone());
        let source = std::fs::read_to_string(&path).expect("read source");
        let edges = graph.entry(module.clone()).or_default();
        edges.extend(
            referenced_modules(&source)
                .into_iter()
                .filter(|other| *other != module),
        );
    }
    for edges in graph.values_mut() {
        edges.retain(|other| modules.contains(other));
    }
    graph
}

/// A cycle through the graph, if there is one (depth-first search).
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn top_level_modules_form_a_dag() {
    let graph = module_graph();
    assert!(
        graph.contains_key("oidc") && graph.contains_key("db"),
        "read src/"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!("the top-level modules form a cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn services_never_import_the_edge_or_http() {
    let graph = module_graph();
    let mut violations = Vec::new();
    for service in CORE {
        for imported in graph.get(*service).into_iter().flatten() {
            if EDGE.contains(&imported.as_str()) || imported == "http" {
                violations.push(format!("{service} -> {imported}"));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "services import the edge: {violations:?}"
    );
}

/// `http` reaches storage only through the services: it may hold the `Db` handle and name its
/// error, never a query (`db::queries`).
#[test]
fn http_never_names_a_query() {
    let http = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join("http");
    let mut files = vec![http];
    let mut violations = Vec::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read src/http") {
                files.push(entry.expect("dir entry").path());
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let source = std::fs::read_to_string(&path).expect("read source");
            if names_a_query(&source) {
                violations.push(path.display().to_string());
            }
        }
    }
    assert!(
        violations.is_empty(),
        "http names db::queries in {violations:?}"
    );
}

/// Whether `source` (comments removed) names `db::queries`, directly or in a `use crate::db::{…}`
/// group.
fn names_a_query(source: &str) -> bool {
    let code: String = source
        .lines()
        .map(|line| line.find("//").map_or(line, |at| &line[..at]))
        .collect::<Vec<_>>()
        .join("\n");
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    compact.contains("db::queries")
        || compact.match_indices("db::{").any(|(at, _)| {
            compact[at..]
                .split('}')
                .next()
                .is_some_and(|g| g.contains("queries"))
        })
}

#[test]
fn the_query_check_sees_paths_and_groups() {
    assert!(names_a_query("use crate::db::queries::audit;"));
    assert!(names_a_query(
        "use crate::db::{DbError, queries::throttle};"
    ));
    assert!(names_a_query(
        "let x = crate::db::\n    queries::oauth::revoke(c);"
    ));
    assert!(!names_a_query(
        "use crate::db::{Db, DbError}; // db::queries"
    ));
}

#[test]
fn leaves_import_nothing_of_the_crate() {
    let graph = module_graph();
    let violations: Vec<String> = LEAVES
        .iter()
        .flat_map(|leaf| {
            graph
                .get(*leaf)
                .into_iter()
                .flatten()
                .map(move |imported| format!("{leaf} -> {imported}"))
        })
        .collect();
    assert!(
        violations.is_empty(),
        "leaves import the crate: {violations:?}"
    );
}

#[test]
fn the_reader_sees_grouped_and_nested_imports() {
    let found = referenced_modules(
        "use crate::{db::Db, oidc::{a, b}, keys};\n// crate::config is a comment\nlet x = crate::metrics::m(); $crate::no; other_crate::no;",
    );
    let expected: BTreeSet<String> = ["db", "oidc", "keys", "metrics"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(found, expected);
}
