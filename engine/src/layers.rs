//! The import direction between the engine's top-level modules, checked against the source.
//!
//! The request path imports one way: [`PATH`], each stage importing only stages after it (a
//! stage never imports one before it or beside it, so the path has no cycle). The [`LEAVES`]
//! may be imported by anyone and import none of [`ABOVE_LEAVES`].
//!
//! An import is any `crate::<module>` in code (a `use` line, a grouped `use crate::{..}`, or a
//! path in an expression or type) outside comments; a file's unit tests (from its
//! `#[cfg(test)]` line on) and `tests.rs` files are test code and may reach anywhere.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The request path, top to bottom; modules in one entry are side by side.
const PATH: &[&[&str]] = &[
    &["listener"],
    &["tcp", "proxy"],
    &["filters"],
    &["router"],
    &["cluster"],
    &["upstream"],
];

/// Modules anyone may import.
const LEAVES: &[&str] = &[
    "rt", "net", "codec", "shared", "error", "stats", "config", "tls", "sys",
];

/// What a leaf never imports.
const ABOVE_LEAVES: &[&str] = &[
    "listener", "tcp", "proxy", "filters", "cluster", "upstream", "worker", "server", "control",
];

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

/// Every `crate::` import of production code that breaks the rules, as `file: module`.
fn violations(src_dir: &Path) -> Vec<String> {
    let rank = |m: &str| PATH.iter().position(|stage| stage.contains(&m));
    let mut files = Vec::new();
    rust_files(src_dir, &mut files);
    files.sort();
    let mut bad = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src_dir).expect("under src");
        if rel.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let Some(first) = rel.iter().next().and_then(|c| c.to_str()) else {
            continue;
        };
        let module = first.strip_suffix(".rs").unwrap_or(first);
        let src = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for to in imports(&src) {
            // At or above its own stage: an import back up the path, or sideways.
            let upward = matches!((rank(module), rank(&to)), (Some(a), Some(b)) if b <= a);
            let from_leaf = LEAVES.contains(&module) && ABOVE_LEAVES.contains(&to.as_str());
            if to != module && (upward || from_leaf) {
                bad.push(format!("{}: imports {to}", rel.display()));
            }
        }
    }
    bad
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
    let bad = violations(&dir);
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(
        bad,
        [
            "proxy.rs: imports tcp",
            "rt/mod.rs: imports worker",
            "upstream/x.rs: imports cluster",
        ]
    );
}
