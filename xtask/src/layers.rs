//! The layering rule of ARCHITECTURE.md ("Layers"), checked on the source
//! itself: `flags` imports only leaves, only the command layer reads
//! `flags`, and no two files import each other, however indirectly.
//!
//! A file's imports are the `crate::` and `super::` paths in its code
//! outside comments and its `#[cfg(test)]` module or `tests.rs` (a test
//! may build flags to drive the code it tests), resolved to the longest
//! prefix that is a module file. A file's use of its own ancestors
//! (`super::` in `local/job_run.rs` naming `local/mod.rs`) is not counted:
//! a directory's `mod.rs` and its files are one module split in files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Files that read flags without being a command's `run`: the binary, the
/// one conversion module, the settings engine (it fills clap's arguments),
/// completions (clap's Command) and the Job/RBAC check (flags in, checked
/// parameters out).
const BOUNDARY: [&str; 6] =
    ["main.rs", "args.rs", "config/mod.rs", "config/command.rs", "completions.rs", "manifest/params.rs"];

/// A module, named by its path under src/ without `.rs` and `/mod`:
/// `cluster`, `cluster/apply`.
type Module = String;

struct Source {
    /// Where the code is, relative to src/.
    file: String,
    code: String,
}

fn sources(src: &Path) -> Vec<(Module, Source)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    // A `tests.rs` is a `#[cfg(test)] mod tests;` of its own.
    files.retain(|f| f.file_name().is_some_and(|n| n != "tests.rs"));
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let file = path.strip_prefix(src).unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            let code: String =
                code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
            (module_of(&file), Source { file, code })
        })
        .collect()
}

fn module_of(file: &str) -> Module {
    let stem = file.trim_end_matches(".rs");
    stem.strip_suffix("/mod").unwrap_or(stem).to_owned()
}

/// The paths after `crate::` or `super::` in the code, each as its segments
/// relative to the crate root; `use crate::{a::b, c}` gives both.
fn paths(module: &str, code: &str) -> Vec<Vec<String>> {
    // `super` of a mod.rs is its directory's parent; of x.rs, x's parent.
    let mut parent: Vec<String> = module.split('/').map(str::to_owned).collect();
    parent.pop();
    let segment = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    let mut found = Vec::new();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent)] {
        for (at, _) in code.match_indices(prefix) {
            // `xtask::crate::` never occurs, but `$crate::` in a macro and
            // `super::super::` do: take the first `super` of a run only.
            if at > 0 && code[..at].ends_with("super::") {
                continue;
            }
            let mut rest = &code[at + prefix.len()..];
            let mut base = base.clone();
            while let Some(r) = rest.strip_prefix("super::") {
                base.pop();
                rest = r;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let inner = &group[..group.find('}').unwrap_or(group.len())];
                for item in inner.split(',') {
                    let mut p = base.clone();
                    p.extend(item.trim().split("::").map(segment).filter(|s| !s.is_empty()));
                    found.push(p);
                }
                continue;
            }
            let mut p = base;
            for part in rest.split("::") {
                let s = segment(part);
                if s.is_empty() {
                    break;
                }
                let last = s.len() != part.len();
                p.push(s);
                if last {
                    break;
                }
            }
            found.push(p);
        }
    }
    found
}

/// Every file's imports, as the modules they name.
fn graph(src: &Path) -> (BTreeMap<Module, BTreeSet<Module>>, BTreeMap<Module, String>) {
    let sources = sources(src);
    let modules: BTreeSet<Module> = sources.iter().map(|(m, _)| m.clone()).collect();
    let mut edges = BTreeMap::new();
    let mut files = BTreeMap::new();
    for (module, source) in &sources {
        let mut to = BTreeSet::new();
        for path in paths(module, &source.code) {
            let mut p = path;
            while !p.is_empty() && !modules.contains(&p.join("/")) {
                p.pop();
            }
            let target = p.join("/");
            // A module's own submodules and its ancestors' `mod` lines are
            // structure, not imports.
            if !p.is_empty() && target != *module && !module.starts_with(&format!("{target}/")) {
                to.insert(target);
            }
        }
        edges.insert(module.clone(), to);
        files.insert(module.clone(), source.file.clone());
    }
    (edges, files)
}

/// The strongly connected components of more than one module (Tarjan).
fn circles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<Module>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, v: &'a str) {
        let i = w.index.len();
        w.index.insert(v, i);
        w.low.insert(v, i);
        w.stack.push(v);
        for next in w.edges.get(v).into_iter().flatten() {
            let next = next.as_str();
            if !w.index.contains_key(next) {
                visit(w, next);
                let l = w.low[v].min(w.low[next]);
                w.low.insert(v, l);
            } else if w.stack.contains(&next) {
                let l = w.low[v].min(w.index[next]);
                w.low.insert(v, l);
            }
        }
        if w.low[v] == w.index[v] {
            let at = w.stack.iter().rposition(|m| *m == v).unwrap();
            let component: Vec<Module> = w.stack.drain(at..).map(str::to_owned).collect();
            if component.len() > 1 {
                w.found.push(component);
            }
        }
    }
    let mut w = Walk { edges, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), found: Vec::new() };
    for v in edges.keys() {
        if !w.index.contains_key(v.as_str()) {
            visit(&mut w, v);
        }
    }
    w.found
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_two_files_import_each_other() {
    let (edges, _) = graph(&src());
    assert_eq!(circles(&edges), Vec::<Vec<Module>>::new(), "modules that import each other, however indirectly");
}

#[test]
fn flags_imports_only_leaves() {
    let (edges, _) = graph(&src());
    for m in &edges["flags"] {
        assert!(edges[m].is_empty(), "flags imports {m}, which imports {:?}: flags must stay a leaf's user", edges[m]);
    }
}

#[test]
fn only_the_command_layer_reads_flags() {
    let (edges, files) = graph(&src());
    for (module, to) in &edges {
        if !to.contains("flags") || module == "flags" {
            continue;
        }
        let file = &files[module];
        let code = std::fs::read_to_string(src().join(file)).unwrap();
        let code = code.split("#[cfg(test)]").next().unwrap();
        let is_command = code.match_indices("pub fn run(").any(|(at, _)| {
            let signature = &code[at..at + code[at..].find(')').unwrap()];
            signature.contains("Flags")
        });
        assert!(
            is_command || BOUNDARY.contains(&file.as_str()),
            "{file} reads crate::flags but is neither a command's `run` nor the boundary: take plain options \
             (see args.rs)"
        );
    }
}

/// The checks above see what they should: a made-up circle is found, and
/// `super::super::` and grouped imports resolve.
#[test]
fn the_checker_finds_a_circle_and_resolves_paths() {
    let edges = BTreeMap::from([
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
        ("d".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]);
    assert_eq!(circles(&edges), vec![vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]]);
    let found = paths("cluster/apply", "use super::{Cluster, status::x};\nsuper::super::report::y");
    assert_eq!(found, vec![vec!["cluster", "Cluster"], vec!["cluster", "status", "x"], vec!["report", "y"]]);
    let (edges, _) = graph(&src());
    assert!(edges["cluster/apply_cmd"].contains("cluster/dry_run"), "{:?}", edges["cluster/apply_cmd"]);
}
