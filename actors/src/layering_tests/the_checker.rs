//! The checker itself, on small sources: what it finds, what it ignores, what it refuses.

use super::paths::root_paths;
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
        ["identity (rank 3) uses endpoint (rank 5), which is not below it"]
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
