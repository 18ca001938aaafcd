//! The module layering of docs/ARCHITECTURE.md, checked against the code:
//! every `crate::<module>` a file of `src/` names (outside comments) must be
//! a module of a lower layer than its own, so the top-level modules cannot
//! import each other in a cycle; and within each top-level module, the
//! sibling submodules (`super::x`, `crate::<module>::x`) must not import
//! each other in a cycle either. The layers are read from the document's
//! table, so the document and the check cannot drift apart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `module` → layer, from the rows `| N | `a`, `b` | ... |` of the table
/// under "## Layers" in docs/ARCHITECTURE.md.
fn layers() -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).expect("docs/ARCHITECTURE.md");
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with("Layers"))
        .expect("docs/ARCHITECTURE.md has a \"## Layers\" section");
    let mut out = BTreeMap::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 {
            continue;
        }
        let Ok(layer) = cells[1].parse::<usize>() else { continue };
        for module in cells[2].split(',') {
            let module = module.trim().trim_matches('`');
            assert!(
                out.insert(module.to_string(), layer).is_none(),
                "{module} is listed twice in the layer table"
            );
        }
    }
    assert!(!out.is_empty(), "no layer rows found in docs/ARCHITECTURE.md");
    out
}

/// Every `.rs` file under `dir`.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src/`: `src/engine/fix.rs` → `[engine,
/// fix]`, `src/engine/mod.rs` → `[engine]`, `src/cli.rs` → `[cli]`.
fn module_path(file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(root().join("src")).unwrap();
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    parts
}

/// The code of a file without its comments (line, doc and block comments)
/// and with its string literals emptied, so a doc link or a message naming
/// another module is not an import.
fn code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let after_ident = out.ends_with(|p: char| p.is_ascii_alphanumeric() || p == '_');
        let skip = if rest.starts_with("//") {
            rest.find('\n').unwrap_or(rest.len())
        } else if rest.starts_with("/*") {
            rest.find("*/").map_or(rest.len(), |i| i + 2)
        } else if !after_ident && (rest.starts_with("r#\"") || rest.starts_with("r\"")) {
            let hashes = rest[1..].chars().take_while(|&c| c == '#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let open = 2 + hashes;
            out.push_str("\"\"");
            rest[open..].find(&close).map_or(rest.len(), |i| open + i + close.len())
        } else if c == '"' {
            let mut escaped = false;
            let end = rest[1..]
                .char_indices()
                .find(|&(_, ch)| {
                    let closes = ch == '"' && !escaped;
                    escaped = ch == '\\' && !escaped;
                    closes
                })
                .map_or(rest.len(), |(i, _)| i + 2);
            out.push_str("\"\"");
            end
        } else if c == '\'' {
            // A char literal ('"', '\'', 'x'), or a lifetime ('a).
            let mut chars = rest.chars().skip(1);
            match (chars.next(), chars.next()) {
                (Some('\\'), _) => rest[3..].find('\'').map_or(rest.len(), |i| i + 4),
                (Some(ch), Some('\'')) => 2 + ch.len_utf8(),
                _ => 0,
            }
        } else {
            0
        };
        if skip > 0 {
            rest = &rest[skip..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Each path a file names, resolved to an absolute module path (as many
/// leading segments as can be told apart from item names: enough for the
/// top-level module and its child). `super::` counts from the file's module.
fn named_paths(file_module: &[String], code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for (start, _) in code.match_indices("crate::").chain(code.match_indices("super::")) {
        // Only whole path starts: not `xsuper::`, and `super::` after
        // `super::` is handled by the first one.
        if start > 0 {
            let before = bytes[start - 1];
            if before.is_ascii_alphanumeric() || before == b'_' || before == b':' {
                continue;
            }
        }
        let raw: String = code[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let path = raw.trim_end_matches(':');
        let mut segments: Vec<&str> = path.split("::").collect();
        let mut base: Vec<String> = if segments[0] == "crate" {
            segments.remove(0);
            Vec::new()
        } else {
            file_module.to_vec()
        };
        while segments.first() == Some(&"super") {
            segments.remove(0);
            base.pop();
        }
        // `use super::{a, b::c}`: each first name of the group.
        let rest = &code[start + raw.len()..];
        if segments.is_empty() {
            if let Some(group) = rest.strip_prefix('{') {
                let mut depth = 1;
                let end = group
                    .char_indices()
                    .find(|&(_, c)| {
                        depth += match c {
                            '{' => 1,
                            '}' => -1,
                            _ => 0,
                        };
                        depth == 0
                    })
                    .map_or(group.len(), |(i, _)| i);
                let mut depth = 0;
                let mut item = String::new();
                for c in group[..end].chars().chain([',']) {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            let name = item.trim().split("::").next().unwrap_or("").to_string();
                            if !name.is_empty() && name != "self" {
                                let mut p = base.clone();
                                p.push(name);
                                out.push(p);
                            } else if name == "self" {
                                out.push(base.clone());
                            }
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
            }
            out.push(base);
            continue;
        }
        let mut p = base;
        p.extend(segments.iter().filter(|s| !s.is_empty()).map(|s| s.to_string()));
        out.push(p);
    }
    out
}

struct Graph {
    /// (from, to, file) for every import between top-level modules.
    top: Vec<(String, String, String)>,
    /// Per top-level module: (child, child) edges between its submodules.
    children: BTreeMap<String, BTreeSet<(String, String)>>,
    /// The top-level modules declared in `src/lib.rs`.
    declared: BTreeSet<String>,
}

fn graph() -> Graph {
    let mut all = Vec::new();
    files(&root().join("src"), &mut all);
    // The submodules of each top-level module, to tell a child module from
    // an item of the parent (`super::Server`).
    let mut modules: BTreeSet<Vec<String>> = BTreeSet::new();
    for file in &all {
        let path = module_path(file);
        for i in 1..=path.len() {
            modules.insert(path[..i].to_vec());
        }
    }
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    let declared = code(&lib)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            l.strip_prefix("mod ").map(|m| m.trim_end_matches(';').to_string())
        })
        .collect();
    let mut graph = Graph {
        top: Vec::new(),
        children: BTreeMap::new(),
        declared,
    };
    for file in &all {
        let from = module_path(file);
        if from.is_empty() || from == ["main"] || from == ["lib"] {
            continue;
        }
        let text = code(&std::fs::read_to_string(file).unwrap());
        let shown = file.strip_prefix(root()).unwrap().display().to_string();
        for to in named_paths(&from, &text) {
            let Some(top) = to.first() else { continue };
            if *top != from[0] {
                graph.top.push((from[0].clone(), top.clone(), shown.clone()));
                continue;
            }
            // Within one top-level module: child to child, when both are modules.
            if from.len() >= 2 && to.len() >= 2 && modules.contains(&to[..2]) && from[1] != to[1] {
                graph
                    .children
                    .entry(from[0].clone())
                    .or_default()
                    .insert((from[1].clone(), to[1].clone()));
            }
        }
    }
    graph
}

/// A cycle in `edges`, if there is one, as the path around it.
fn cycle(edges: &BTreeSet<(String, String)>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeSet<(String, String)>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut found = path[i..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for (_, to) in edges.iter().filter(|(from, _)| from == node) {
            if let Some(found) = visit(to, edges, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    let nodes: BTreeSet<&String> = edges.iter().map(|(from, _)| from).collect();
    for node in nodes {
        if let Some(found) = visit(node, edges, &mut Vec::new(), &mut done) {
            return Some(found);
        }
    }
    None
}

#[test]
fn every_module_is_in_the_layer_table() {
    let layers = layers();
    let graph = graph();
    let listed: BTreeSet<String> = layers.keys().cloned().collect();
    assert_eq!(
        listed, graph.declared,
        "docs/ARCHITECTURE.md's layer table and src/lib.rs's modules differ"
    );
}

#[test]
fn modules_import_only_lower_layers() {
    let layers = layers();
    let graph = graph();
    let mut wrong = BTreeSet::new();
    for (from, to, file) in &graph.top {
        let (Some(a), Some(b)) = (layers.get(from), layers.get(to)) else {
            wrong.insert(format!("{file}: {from} -> {to}: a module missing from the layer table"));
            continue;
        };
        if b >= a {
            wrong.insert(format!("{file}: {from} (layer {a}) imports {to} (layer {b})"));
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layering of docs/ARCHITECTURE.md:\n{}",
        wrong.into_iter().collect::<Vec<_>>().join("\n")
    );
    let edges: BTreeSet<(String, String)> = graph.top.iter().map(|(a, b, _)| (a.clone(), b.clone())).collect();
    assert_eq!(cycle(&edges), None, "an import cycle between top-level modules");
}

#[test]
fn no_submodules_import_each_other_in_a_cycle() {
    let graph = graph();
    // The check sees the imports it checks.
    let edge = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert!(graph.children["engine"].contains(&edge("inspect", "fix")));
    assert!(graph.children["audit"].contains(&edge("command", "output")));
    assert!(graph.top.iter().any(|(a, b, _)| a == "engine" && b == "image"));
    for (module, edges) in &graph.children {
        assert_eq!(cycle(edges), None, "an import cycle inside {module}");
    }
}

#[test]
fn the_check_sees_imports_and_cycles() {
    let from = vec!["audit".to_string(), "command".to_string()];
    let code = code(
        "use super::output::{self, OutputFormat};\nuse crate::cluster::{AuditOptions, report::X};\n\
         // use crate::cli::EXIT_USAGE;\nlet s = \"crate::config\";\nuse super::{a, b::{c, d}};",
    );
    let named = named_paths(&from, &code);
    for want in [
        vec!["audit", "output"],
        vec!["cluster"],
        vec!["audit", "a"],
        vec!["audit", "b"],
    ] {
        let want: Vec<String> = want.into_iter().map(String::from).collect();
        assert!(named.iter().any(|p| p.starts_with(&want)), "{want:?} not in {named:?}");
    }
    assert!(
        !named.iter().any(|p| p.first().is_some_and(|m| m == "cli")),
        "a comment is no import"
    );
    assert!(
        !named.iter().any(|p| p.first().is_some_and(|m| m == "config")),
        "a string is no import"
    );
    let edges: BTreeSet<(String, String)> = [("a", "b"), ("b", "c"), ("c", "a")]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(cycle(&edges).map(|c| c.len()), Some(4));
    let acyclic: BTreeSet<(String, String)> = [("a", "b"), ("b", "c"), ("a", "c")]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(cycle(&acyclic), None);
}
