//! The fuzzing harness the fuzz targets share (here and in the root crate's tests): a
//! time-bounded loop over proptest-generated inputs that turns a panic into a failed test
//! with the input saved, and a mutation strategy over a corpus.

use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

/// Runs `check` on values of `strategy` until the time budget is spent; answers the count.
pub fn fuzz<S>(target: &str, strategy: S, check: impl Fn(&S::Value)) -> u64
where
    S: Strategy,
    S::Value: Debug + AsRef<[u8]>,
{
    let seconds = std::env::var("ELIOT_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut runner = TestRunner::default();
    let mut executions = 0;
    // The panics are caught and reported here; the default hook would print each.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    while Instant::now() < deadline {
        let input = strategy.new_tree(&mut runner).expect("a value").current();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&input))) {
            std::panic::set_hook(hook);
            let dir = std::env::temp_dir().join("eliot-fuzz-crashes");
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!("{target}-{executions}"));
            let _ = std::fs::write(&file, input.as_ref());
            panic!(
                "{target}: {panic:?} on {input:?} (saved to {})",
                file.display()
            );
        }
        executions += 1;
    }
    std::panic::set_hook(hook);
    println!("fuzz {target}: {executions} executions in {seconds} s, no crash");
    executions
}

/// The files of a corpus directory, in a stable order.
pub fn read_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    files.sort();
    files
}

/// A corpus entry with some bytes changed, some cut off and some added.
pub fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(seeds),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        any::<prop::sample::Index>(),
        prop::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(mut bytes, changes, cut, tail)| {
            if !bytes.is_empty() {
                for (at, byte) in changes {
                    let at = at.index(bytes.len());
                    bytes[at] = byte;
                }
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes.extend(tail);
            bytes
        })
}
