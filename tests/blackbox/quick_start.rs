//! README's quick start, literally: its first block's first command (`cargo run --release`)
//! and the block of "Send a reading", run by `bash` as written, in this checkout, as a
//! newcomer would (so Eliot's data goes to `./data`, removed afterwards; a checkout that
//! already has a `data/` directory, someone's data, skips this test, except on CI). If
//! README's commands stop working, this fails; if README changes them, this runs the new
//! ones.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::Trial;

use crate::common::outside;
use crate::common::shell_env::as_from_a_shell;
use crate::support::trial;

pub fn tests() -> Vec<Trial> {
    vec![trial(
        "quick_start::readme_first_commands_run_as_written",
        readme_first_commands,
    )]
}

/// README's ```sh blocks, in order, each as its lines.
fn shell_blocks(readme: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "```sh" {
            let block = lines
                .by_ref()
                .take_while(|l| l.trim() != "```")
                .map(str::to_owned)
                .collect();
            blocks.push(block);
        }
    }
    blocks
}

/// Starts README's run command in the checkout, waits for it to listen on 1883 (building
/// first if it must), runs the "Send a reading" block, and checks what `sqlite3` printed.
async fn readme_first_commands() {
    let Some(_) = outside::shell_for("quick_start") else {
        return;
    };
    if Command::new("mosquitto_pub")
        .arg("--help")
        .output()
        .is_err()
    {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        assert!(!ci, "CI must have mosquitto_pub (.ci/run installs it)");
        return eprintln!(
            "quick_start: skipped, it needs mosquitto_pub (apt-get install mosquitto-clients)"
        );
    }
    for port in [1883, 8080] {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "README's Eliot listens on {port}, which something else holds"
        );
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(source.join("README.md")).unwrap();
    let blocks = shell_blocks(&readme);
    let run = blocks[0][0].clone();
    assert!(
        run.starts_with("cargo run --release"),
        "README opens with {run:?}"
    );
    let send = blocks
        .iter()
        .find(|b| b.iter().any(|l| l.starts_with("mosquitto_pub")))
        .expect("README shows how to send a reading")
        .join("\n");

    let checkout = source;
    let data = checkout.join("data");
    if data.exists() {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        assert!(!ci, "a fresh clone has no data/ directory");
        return eprintln!(
            "quick_start: skipped, {} exists (someone's data)",
            data.display()
        );
    }
    let mut eliot = as_from_a_shell(Command::new("bash"))
        .args(["-c", &format!("exec {run}")])
        .current_dir(checkout)
        .env_remove("ELIOT_ENV")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", 1883)).is_err() {
        if let Some(status) = eliot.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(eliot.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            panic!("`{run}` ended ({status}) before listening:\n{stderr}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(1_200),
            "`{run}` listens on 1883 within 20 minutes (building included)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sent = as_from_a_shell(Command::new("bash"))
        .args(["-ec", &send])
        .current_dir(checkout)
        .output()
        .unwrap();
    // `cargo run` runs eliot as its child: SIGTERM to both.
    let _ = Command::new("pkill")
        .args(["-TERM", "-P", &eliot.id().to_string()])
        .status();
    let _ = Command::new("kill")
        .args(["-TERM", &eliot.id().to_string()])
        .status();
    let _ = eliot.wait();
    std::fs::remove_dir_all(&data).expect("the quick start's data is removed");
    let printed = String::from_utf8_lossy(&sent.stdout);
    println!(
        "quick start: `{run}` listened after {:?}; the send block printed: {printed}",
        started.elapsed()
    );
    assert!(
        sent.status.success(),
        "the send block failed: {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(
        printed.contains("robot_001|gps|2025-06-05T14:30:00.000000Z"),
        "sqlite3 shows the reading: {printed}"
    );
}
