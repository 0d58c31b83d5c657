//! The dependency rule, checked on the source so that it cannot drift: a top-level module
//! uses only modules of a lower rank, or its own folder. A loop between two folders, or
//! a low module reaching up for a type, fails here with the file, the line and the edge.
//!
//! Every `.rs` file under `src/` is read at test time, its comments and literals blanked
//! out, and every path that reaches the crate root is taken apart: `crate::a::b`,
//! `$crate::a` (in macros), the grouped `use crate::{a, b::c}`, and a `super::super::a`
//! that climbs to the root. Test code obeys the same rule: a test that needs a higher
//! module is a test of that higher module and lives there.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

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
    // This test: it reads files and uses nothing of the crate.
    ("layering_tests", 0),
    ("mqtt", 1),
    ("supervision", 1),
    ("ingest", 2),
    ("store", 2),
    ("pipeline", 3),
    ("identity", 3),
    ("endpoint", 4),
    ("upstream", 4),
    ("tree", 5),
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
        "dependencies must point down the ranks in layering_tests.rs:\n{}",
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
        "place these modules in RANKS (layering_tests.rs): {unranked:?}"
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

/// Every path in `source` that reaches the crate root, for a file whose module is
/// `depth` levels below the root.
fn root_paths(source: &str, depth: usize) -> Vec<Edge> {
    let tokens = tokens(&blank_comments_and_literals(source));
    let text = |i: usize| tokens.get(i).map_or("", |t| t.text.as_str());
    let mut edges = Vec::new();
    // Inline modules open at this point, by the brace depth they opened at.
    let mut inline_modules: Vec<usize> = Vec::new();
    let mut braces = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        match text(i) {
            "{" => braces += 1,
            "}" => {
                braces -= 1;
                if inline_modules.last() == Some(&braces) {
                    inline_modules.pop();
                }
            }
            "mod" if text(i + 2) == "{" => inline_modules.push(braces),
            "crate" if text(i + 1) == "::" => {
                edges.extend(names_after_root(&tokens, i + 2));
            }
            "super" if text(i + 1) == "::" && text(i.wrapping_sub(1)) != "::" => {
                let mut climbed = 0;
                let mut at = i;
                while text(at) == "super" && text(at + 1) == "::" {
                    climbed += 1;
                    at += 2;
                }
                if climbed >= depth + inline_modules.len() {
                    edges.extend(names_after_root(&tokens, at));
                }
                i = at;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    edges
}

/// The root's names a path takes from token `at` on: one name, or each first name of a
/// group `{a, b::c, d::{e, f}}`.
fn names_after_root(tokens: &[Token], at: usize) -> Vec<Edge> {
    let edge = |t: &Token| Edge {
        line: t.line,
        name: t.text.clone(),
    };
    let Some(first) = tokens.get(at) else {
        return Vec::new();
    };
    if first.text != "{" {
        return vec![edge(first)];
    }
    let mut edges = Vec::new();
    let mut nesting = 0usize;
    let mut expecting_name = true;
    for token in &tokens[at..] {
        match token.text.as_str() {
            "{" => {
                nesting += 1;
                expecting_name = nesting == 1;
            }
            "}" if nesting == 1 => break,
            "}" => nesting -= 1,
            "," if nesting == 1 => expecting_name = true,
            _ if expecting_name => {
                edges.push(edge(token));
                expecting_name = false;
            }
            _ => {}
        }
    }
    edges
}

#[derive(Debug)]
struct Token {
    text: String,
    line: usize,
}

/// Identifiers, `::`, and every other character as a token of its own.
fn tokens(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c == '\n' {
            line += 1;
        } else if c.is_alphanumeric() || c == '_' {
            while i + 1 < chars.len() && (chars[i + 1].is_alphanumeric() || chars[i + 1] == '_') {
                i += 1;
            }
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c != '\n' {
            tokens.push(Token {
                text: chars[start..=i].iter().collect(),
                line,
            });
        }
        i += 1;
    }
    tokens
}

/// `source` with its comments, string and character literals replaced by spaces (line
/// breaks kept, so that lines still count): a path in a doc comment or a message is no
/// dependency.
fn blank_comments_and_literals(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = chars.clone();
    let blank = |out: &mut [char], from: usize, to: usize| {
        for c in &mut out[from..to.min(chars.len())] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let starts_token = |i: usize| i == 0 || !(at(i - 1).is_alphanumeric() || at(i - 1) == '_');
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        match (at(i), at(i + 1)) {
            ('/', '/') => {
                while i < chars.len() && at(i) != '\n' {
                    i += 1;
                }
            }
            ('/', '*') => {
                let mut nesting = 0;
                loop {
                    match (at(i), at(i + 1)) {
                        ('/', '*') => (nesting, i) = (nesting + 1, i + 2),
                        ('*', '/') => (nesting, i) = (nesting - 1, i + 2),
                        ('\0', _) => break,
                        _ => i += 1,
                    }
                    if nesting == 0 {
                        break;
                    }
                }
            }
            ('r', '"' | '#') | ('b', 'r') if starts_token(i) && raw_string_at(&chars, i) => {
                i = end_of_raw_string(&chars, i);
            }
            ('"', _) | ('b', '"') if at(i) == '"' || starts_token(i) => {
                i += if at(i) == 'b' { 2 } else { 1 };
                while i < chars.len() && at(i) != '"' {
                    i += if at(i) == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            ('\'', '\\') => {
                i += 3;
                while i < chars.len() && at(i) != '\'' {
                    i += 1;
                }
                i += 1;
            }
            // A character literal; otherwise a lifetime or a label, which stays.
            ('\'', _) if at(i + 2) == '\'' => i += 3,
            _ => {
                i += 1;
                continue;
            }
        }
        blank(&mut out, start, i);
    }
    out.into_iter().collect()
}

/// Whether a raw string (`r"`, `r#"`, `br"`, `br#"`) starts at `i`.
fn raw_string_at(chars: &[char], i: usize) -> bool {
    let mut j = i + if chars[i] == 'b' { 2 } else { 1 };
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    chars.get(j) == Some(&'"')
}

/// Just past the raw string that starts at `i`.
fn end_of_raw_string(chars: &[char], i: usize) -> usize {
    let mut j = i + if chars[i] == 'b' { 2 } else { 1 };
    let mut hashes = 0;
    while chars[j] == '#' {
        hashes += 1;
        j += 1;
    }
    j += 1;
    while j < chars.len() {
        if chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) {
            return j + 1 + hashes;
        }
        j += 1;
    }
    chars.len()
}

mod the_checker {
    use super::*;

    const NONE: [(usize, String); 0] = [];
    const FINE: [&str; 0] = [];

    fn names(source: &str, depth: usize) -> Vec<(usize, String)> {
        root_paths(source, depth)
            .into_iter()
            .map(|e| (e.line, e.name))
            .collect()
    }

    fn problems(from: &str, source: &str, depth: usize) -> Vec<String> {
        root_paths(source, depth)
            .iter()
            .filter_map(|edge| judge(from, edge))
            .collect()
    }

    #[test]
    fn finds_plain_grouped_macro_and_expression_paths() {
        let source = "use crate::message::Reading;\n\
                      use crate::{observe::{Event, Telemetry}, settings, store::Store};\n\
                      fn f() { crate::ingest::validate(); }\n\
                      macro_rules! m { () => { $crate::Ping } }\n";
        assert_eq!(
            names(source, 1),
            [
                (1, "message".to_owned()),
                (2, "observe".to_owned()),
                (2, "settings".to_owned()),
                (2, "store".to_owned()),
                (3, "ingest".to_owned()),
                (4, "Ping".to_owned()),
            ]
        );
    }

    #[test]
    fn ignores_comments_strings_and_characters() {
        let source = "// use crate::tree;\n\
                      /* crate::tree /* nested */ crate::tree */\n\
                      /// [`crate::tree`]\n\
                      let a = \"crate::tree \\\" crate::tree\";\n\
                      let b = r#\"crate::tree \" crate::tree\"#;\n\
                      let c = ('\"', '\\'', b'\"');\n\
                      fn f<'a>(x: &'a str) -> crate::store::Store { todo() }\n";
        assert_eq!(names(source, 1), [(7, "store".to_owned())]);
    }

    #[test]
    fn follows_super_to_the_root_only_when_it_gets_there() {
        // A file two levels down (`endpoint/intake.rs`): two `super`s reach the root.
        assert_eq!(
            names("use super::super::tree::Tree;", 2),
            [(1, "tree".to_owned())]
        );
        assert_eq!(names("use super::admission::Session;", 2), NONE);
        // Inside an inline module, one more is needed.
        let in_tests = "mod tests {\n    use super::super::will;\n}\nuse super::super::tree;\n";
        assert_eq!(names(in_tests, 2), [(4, "tree".to_owned())]);
        assert_eq!(names("pub(super) fn f() {}", 1), NONE);
    }

    #[test]
    fn refuses_an_edge_that_does_not_point_down() {
        let ok = "use crate::{message::Reading, supervision::Restarts};\nuse crate::ingest::x;\n";
        assert_eq!(problems("ingest", ok, 1), FINE);
        let up = "fn f() { crate::endpoint::Transport::stream(s, p); }";
        assert_eq!(
            problems("identity", up, 1),
            ["identity (rank 3) uses endpoint (rank 4), which is not below it"]
        );
        let sideways = "use crate::{message::Reading, ingest::Outcome};";
        assert_eq!(
            problems("store", sideways, 1),
            ["store (rank 2) uses ingest (rank 2), which is not below it"]
        );
    }

    #[test]
    fn refuses_root_re_exports_and_globs_but_knows_the_exported_macro() {
        assert_eq!(
            problems("supervision", "crate::answers_pings!(X);", 1),
            FINE
        );
        assert_eq!(problems("ingest", "crate::answers_pings!(X);", 1), FINE);
        assert_eq!(problems("observe", "crate::answers_pings!(X);", 1).len(), 1);
        let secret = problems("mqtt", "let s = crate::Secret::new(p);", 1);
        assert!(secret[0].contains("crate::Secret, which is no ranked module"));
        assert!(problems("tree", "use super::*;", 1)[0].contains("everything at the crate root"));
    }

    #[test]
    fn places_files_in_their_modules() {
        let redirected = vec![(
            PathBuf::from("ingest/validate_tests.rs"),
            vec!["ingest".into(), "validate".into(), "tests".into()],
        )];
        let path = |p: &str| module_path(Path::new(p), &redirected).join("::");
        assert_eq!(path("lib.rs"), "");
        assert_eq!(path("tree.rs"), "tree");
        assert_eq!(path("endpoint/mod.rs"), "endpoint");
        assert_eq!(
            path("endpoint/device_connection/mod.rs"),
            "endpoint::device_connection"
        );
        assert_eq!(path("observe/events/tests.rs"), "observe::events::tests");
        assert_eq!(path("ingest/validate_tests.rs"), "ingest::validate::tests");
        assert_eq!(
            declared_modules("mod a;\npub mod b;\n#[cfg(test)]\nmod c { mod d; }\n"),
            ["a", "b", "c"]
        );
    }
}
