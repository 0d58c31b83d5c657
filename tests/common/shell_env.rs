//! Running `cargo` from inside a program that cargo started (a test, `cargo run`), as a
//! user's shell would run it.
//!
//! Cargo gives what it runs variables of its own (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, ...).
//! A nested `cargo` that inherits them builds in another environment than the user's: ring's
//! build script watches `CARGO_MANIFEST_DIR`, so ring and everything above it were rebuilt
//! (88 s of CI for README's `cargo run --release`), and rebuilt again by the next `cargo`
//! started from a shell.

use std::process::Command;

/// `command` without the variables cargo sets for what it runs.
pub fn as_from_a_shell(mut command: Command) -> Command {
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo) {
            command.env_remove(name);
        }
    }
    command
}

fn set_by_cargo(name: &str) -> bool {
    name == "CARGO"
        || [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_BIN_",
            "CARGO_CRATE_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        || [
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
        ]
        .contains(&name)
}
