//! The import direction between the engine's top-level modules, checked against the source.
//!
//! Imports go one way: [`PATH`], each stage importing only stages after it (a stage never
//! imports one before it or beside it, so the path has no circle). It starts with what builds
//! and runs the rest (`server`, then a worker's runtime beside the control and admin threads),
//! then follows a request. The [`LEAVES`] may be imported by anyone and import no stage of the
//! path; among themselves they must not form a circle either. Every module has a place in one
//! of the two lists (bar [`UNRANKED`]), so a new module cannot slip a circle past this test.
//!
//! An import is any `crate::<module>` in code (a `use` line, a grouped `use crate::{..}`, or a
//! path in an expression or type) outside comments; a file's unit tests (from its
//! `#[cfg(test)]` line on) and `tests.rs` files are test code and may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Top to bottom; modules in one entry are side by side. `local` is a worker's state: the
/// connection managers above it read it, and it holds the clusters below it.
const PATH: &[&[&str]] = &[
    &["server"],
    &["worker", "control", "admin"],
    &["listener"],
    &["tcp", "proxy"],
    &["local"],
    &["filters"],
    &["router"],
    &["cluster"],
    &["upstream"],
];

/// Modules anyone may import.
const LEAVES: &[&str] = &[
    "rt",
    "net",
    "codec",
    "shared",
    "shared_state",
    "error",
    "stats",
    "config",
    "access_log",
    "tls",
    "sys",
];

/// Files that are no module of the library's tree: its root, the binary, this test.
const UNRANKED: &[&str] = &["lib", "main", "layers"];

/// The top-level modules `src` names with `crate::` (its own included).
fn imports(src: &str) -> BTreeSet<String> {
    let mut code = String::with_capacity(src.len());
    for line in src.lines() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        code.push_str(line.split("//").next().unwrap_or(""));
        code.push('\n');
    }
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::b, c, d::{e, f}}`: the first name of each item at the top level.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        rest = &group[i..];
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_ascii_alphanumeric() || c == '_') => {
                        out.insert(ident(&group[i..]).to_owned());
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name.to_owned());
            }
        }
    }
    out
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::` import of production code that breaks the rules, as `file: imports module`;
/// every module without a rank; every circle (the ranks leave room for one among leaves only).
fn violations(src_dir: &Path) -> Vec<String> {
    let rank = |m: &str| PATH.iter().position(|stage| stage.contains(&m));
    let mut files = Vec::new();
    rust_files(src_dir, &mut files);
    files.sort();
    let mut bad = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(src_dir).expect("under src");
        if rel.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let Some(first) = rel.iter().next().and_then(|c| c.to_str()) else {
            continue;
        };
        let module = first.strip_suffix(".rs").unwrap_or(first);
        if UNRANKED.contains(&module) {
            continue;
        }
        let leaf = LEAVES.contains(&module);
        if !leaf && rank(module).is_none() && !graph.contains_key(module) {
            bad.push(format!("{module}: in neither PATH nor LEAVES"));
        }
        let src = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let to_all = graph.entry(module.to_owned()).or_default();
        for to in imports(&src) {
            // At or above its own stage: an import back up the path, or sideways.
            let upward = matches!((rank(module), rank(&to)), (Some(a), Some(b)) if b <= a);
            let from_leaf = leaf && rank(&to).is_some();
            if to != module && (upward || from_leaf) {
                bad.push(format!("{}: imports {to}", rel.display()));
            }
            if to != module {
                to_all.insert(to);
            }
        }
    }
    bad.extend(circles(&graph));
    bad
}

/// The circles in `graph` (module -> the modules it imports), as `circle: a -> b -> a`.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    fn visit<'g>(
        m: &'g str,
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<&'g str>,
        done: &mut BTreeSet<&'g str>,
        out: &mut Vec<String>,
    ) {
        if let Some(at) = stack.iter().position(|s| *s == m) {
            let mut circle = stack[at..].to_vec();
            circle.push(m);
            out.push(format!("circle: {}", circle.join(" -> ")));
            return;
        }
        if done.contains(m) {
            return;
        }
        stack.push(m);
        for to in graph.get(m).into_iter().flatten() {
            visit(to, graph, stack, done, out);
        }
        stack.pop();
        done.insert(m);
    }
    let (mut done, mut out) = (BTreeSet::new(), Vec::new());
    for m in graph.keys() {
        visit(m, graph, &mut Vec::new(), &mut done, &mut out);
    }
    out
}

#[test]
fn imports_follow_the_request_path_and_leaves_stay_leaves() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = violations(&src);
    assert!(
        bad.is_empty(),
        "imports against the layering (see engine/src/lib.rs):\n  {}",
        bad.join("\n  ")
    );
}

#[test]
fn every_form_of_import_is_seen() {
    let src = "use crate::a::B;\n\
               pub(crate) use crate::{b, c::{D, e::F}, g::H};\n\
               use crate::{\n    i::J,\n    k,\n};\n\
               fn f() -> crate::l::M { crate::n::o() }\n\
               // crate::comment::Ignored\n\
               /// [`crate::doc::Ignored`]\n\
               #[cfg(test)]\nmod tests { use crate::test::Ignored; }\n";
    let seen: Vec<_> = imports(src).into_iter().collect();
    assert_eq!(seen, ["a", "b", "c", "g", "i", "k", "l", "n"]);
}

#[test]
fn an_upward_import_is_a_violation() {
    let dir = std::env::temp_dir().join(format!("ringway-layers-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("upstream")).unwrap();
    fs::create_dir_all(dir.join("rt")).unwrap();
    fs::write(dir.join("upstream/mod.rs"), "use crate::rt::timer;\n").unwrap();
    fs::write(
        dir.join("upstream/x.rs"),
        "use crate::cluster::ClusterLocal;\n",
    )
    .unwrap();
    fs::write(dir.join("rt/mod.rs"), "use crate::worker::Worker;\n").unwrap();
    fs::write(dir.join("proxy.rs"), "use crate::{tcp, upstream::Fault};\n").unwrap();
    // The worker runs the listener; the listener must not reach back up for the worker.
    fs::write(dir.join("listener.rs"), "use crate::worker::Worker;\n").unwrap();
    fs::write(dir.join("worker.rs"), "use crate::listener;\n").unwrap();
    // A leaf importing a stage, even one low on the path.
    fs::write(dir.join("config.rs"), "use crate::router::RouteTable;\n").unwrap();
    // Leaves may import each other, but not in a circle.
    fs::write(dir.join("net.rs"), "use crate::tls::Stream;\n").unwrap();
    fs::write(dir.join("tls.rs"), "use crate::net::Io;\n").unwrap();
    // A module with no rank.
    fs::write(dir.join("extra.rs"), "use crate::rt::timer;\n").unwrap();
    let bad = violations(&dir);
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(
        bad,
        [
            "config.rs: imports router",
            "extra: in neither PATH nor LEAVES",
            "listener.rs: imports worker",
            "proxy.rs: imports tcp",
            "rt/mod.rs: imports worker",
            "upstream/x.rs: imports cluster",
            "circle: worker -> listener -> worker",
            "circle: net -> tls -> net",
        ]
    );
}
