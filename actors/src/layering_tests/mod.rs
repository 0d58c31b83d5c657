//! The dependency rule, checked on the source so that it cannot drift: a top-level module
//! uses only modules of a lower rank, or its own folder. A loop between two folders, or
//! a low module reaching up for a type, fails here with the file, the line and the edge.
//!
//! Every `.rs` file under `src/` is read at test time, its comments and literals blanked
//! out, and every path that reaches the crate root is taken apart: `crate::a::b`,
//! `$crate::a` (in macros), the grouped `use crate::{a, b::c}`, and a `super::super::a`
//! that climbs to the root. Test code obeys the same rule: a test that needs a higher
//! module is a test of that higher module and lives there.

mod paths;
mod the_checker;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use paths::{blank_comments_and_literals, root_paths, tokens};

/// Each top-level module with its rank, lowest first. A new module fails the test until it
/// is placed here.
///
/// `mqtt` stands one rank above the floor rather than on it: a CONNECT's password is a
/// `Secret` from the moment it is decoded, so that no log or `Debug` output can show it,
/// and so `secret` is below `mqtt`.
const RANKS: &[(&str, u8)] = &[
    // The ground floor: what every subsystem passes along and reports through.
    ("message", 0),
    ("secret", 0),
    ("settings", 0),
    ("pem", 0),
    ("observe", 0),
    // Anomaly detectors: arithmetic on one series, nothing of the crate.
    ("anomaly", 0),
    // A webhook's URL, signature and POST: nothing of the crate.
    ("webhook", 0),
    // This test: it reads files and uses nothing of the crate.
    ("layering_tests", 0),
    ("mqtt", 1),
    ("supervision", 1),
    ("ingest", 2),
    ("store", 2),
    // The fleet: live device state, fed by the pipeline, persisted through the store.
    ("fleet", 3),
    ("identity", 3),
    ("pipeline", 4),
    // Alerts' notifications and the API's handle on them: the fleet's rules, the store.
    ("notify", 4),
    ("endpoint", 5),
    ("upstream", 5),
    ("tree", 6),
];

/// Names at the crate root that are not modules, with the module they belong to. A
/// `#[macro_export]` macro is placed at the root whatever file defines it, and the one
/// below names `$crate::Ping` so that it works in the shell too. Any other root name used
/// inside the crate is a re-export meant for the outside, which hides the real edge.
const ROOT_ITEMS: &[(&str, &str)] = &[("answers_pings", "supervision"), ("Ping", "supervision")];

#[test]
fn every_module_uses_only_lower_ranked_modules_or_its_own_folder() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = rust_files(&src);
    let redirected = path_attributes(&src, &files);
    let mut problems = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let module = module_path(relative, &redirected);
        let Some(top) = module.first() else {
            continue; // lib.rs: the root declares the modules and re-exports them.
        };
        let source = std::fs::read_to_string(file).expect("readable source");
        for edge in root_paths(&source, module.len()) {
            if let Some(problem) = judge(top, &edge) {
                problems.push(format!("{}:{}: {problem}", relative.display(), edge.line));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "dependencies must point down the ranks in layering_tests/mod.rs:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_rank_and_every_rank_a_module() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules: BTreeSet<String> = rust_files(&src)
        .iter()
        .filter_map(|file| top_level_module(file.strip_prefix(&src).expect("under src")))
        .collect();
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    modules.extend(declared_modules(&lib));
    let ranked: BTreeSet<String> = RANKS.iter().map(|(m, _)| m.to_string()).collect();
    let unranked: Vec<_> = modules.difference(&ranked).collect();
    assert!(
        unranked.is_empty(),
        "place these modules in RANKS (layering_tests/mod.rs): {unranked:?}"
    );
    let stale: Vec<_> = ranked.difference(&modules).collect();
    assert!(
        stale.is_empty(),
        "RANKS names modules that are gone: {stale:?}"
    );
}

/// One path from a file to the crate root: the root's name it continues with (`*` for a
/// glob of the root), and the line it is on.
#[derive(Debug, PartialEq)]
struct Edge {
    line: usize,
    name: String,
}

/// What is wrong with `from` using `edge`, if anything.
fn judge(from: &str, edge: &Edge) -> Option<String> {
    let name = edge.name.as_str();
    if name == "*" {
        return Some(format!(
            "{from} imports everything at the crate root: name the modules it uses"
        ));
    }
    let to = match ROOT_ITEMS.iter().find(|(item, _)| *item == name) {
        Some((_, home)) => *home,
        None if rank(name).is_some() => name,
        None => {
            return Some(format!(
                "{from} uses crate::{name}, which is no ranked module: name the module \
                 it lives in (root re-exports are for users outside the crate)"
            ))
        }
    };
    let (from_rank, to_rank) = (rank(from)?, rank(to)?);
    (to != from && to_rank >= from_rank).then(|| {
        format!("{from} (rank {from_rank}) uses {to} (rank {to_rank}), which is not below it")
    })
}

fn rank(module: &str) -> Option<u8> {
    RANKS.iter().find(|(m, _)| *m == module).map(|(_, r)| *r)
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("readable source folder")
        .map(|e| e.expect("readable entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The top-level module a file belongs to (`endpoint/intake.rs` → `endpoint`); `None`
/// for `lib.rs`.
fn top_level_module(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    match first.strip_suffix(".rs") {
        Some("lib") => None,
        Some(stem) => Some(stem.to_owned()),
        None => Some(first.to_owned()),
    }
}

/// The module path of a file, from its place under `src/` (`a/b/mod.rs` and `a/b.rs` are
/// `a::b`), or from the `#[path]` attribute that declared it.
fn module_path(relative: &Path, redirected: &[(PathBuf, Vec<String>)]) -> Vec<String> {
    if let Some((_, module)) = redirected.iter().find(|(file, _)| file == relative) {
        return module.clone();
    }
    let mut module: Vec<String> = relative
        .iter()
        .map(|c| c.to_str().expect("UTF-8 file names").to_owned())
        .collect();
    let last = module.pop().expect("a file name");
    match last.as_str() {
        "mod.rs" | "lib.rs" => {}
        _ => module.push(last.trim_end_matches(".rs").to_owned()),
    }
    module
}

/// The files declared with `#[path = "..."] mod name;`, with the module path they get:
/// a sibling file `validate_tests.rs` may be the module `ingest::validate::tests`, one
/// level deeper than its place says, which matters to where its `super::super` leads.
fn path_attributes(src: &Path, files: &[PathBuf]) -> Vec<(PathBuf, Vec<String>)> {
    let mut redirected = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src).expect("under src");
        let source = std::fs::read_to_string(file).expect("readable source");
        let mut lines = source.lines().map(str::trim);
        while let Some(line) = lines.next() {
            let Some(target) = line
                .strip_prefix("#[path = \"")
                .and_then(|rest| rest.strip_suffix("\"]"))
            else {
                continue;
            };
            let declaration = lines.find(|l| !l.starts_with("#[")).unwrap_or("");
            let name = declaration
                .trim_start_matches("pub ")
                .strip_prefix("mod ")
                .and_then(|rest| rest.strip_suffix(';'))
                .unwrap_or_else(|| panic!("{}: #[path] on `{declaration}`", relative.display()));
            let target = relative.with_file_name(target);
            assert!(src.join(&target).is_file(), "{}", target.display());
            let mut module = module_path(relative, &[]);
            module.push(name.to_owned());
            redirected.push((target, module));
        }
    }
    redirected
}

/// The modules `lib.rs` declares (`mod name;` or `mod name { ... }` at its top level).
fn declared_modules(lib: &str) -> Vec<String> {
    let tokens = tokens(&blank_comments_and_literals(lib));
    let mut depth = 0usize;
    let mut modules = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        match token.text.as_str() {
            "{" => depth += 1,
            "}" => depth -= 1,
            "mod" if depth == 0 => {
                if let Some(name) = tokens.get(i + 1) {
                    modules.push(name.text.clone());
                }
            }
            _ => {}
        }
    }
    modules
}
