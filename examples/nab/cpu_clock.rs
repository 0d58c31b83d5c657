//! CPU time used by the calling thread, to measure a detector's calls alone: wall time would
//! count whatever else the (shared, 2-core) machine runs meanwhile.

use std::time::{Duration, Instant};

/// Measures with the thread's CPU clock where there is one, else with the wall clock.
pub struct Stopwatch {
    wall_origin: Option<Instant>,
}

impl Stopwatch {
    pub fn new() -> Self {
        Self {
            wall_origin: thread_cpu_time().is_none().then(Instant::now),
        }
    }

    /// What the clock reads now; only differences mean anything.
    pub fn now(&self) -> Duration {
        match self.wall_origin {
            Some(origin) => origin.elapsed(),
            None => thread_cpu_time().unwrap_or_default(),
        }
    }

    pub fn measures_cpu(&self) -> bool {
        self.wall_origin.is_none()
    }
}

/// `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`: std has no CPU clock, and this example may use
/// no crate but those of Cargo.toml (libc is not one; std links the C library anyway).
#[cfg(target_os = "linux")]
fn thread_cpu_time() -> Option<Duration> {
    use std::os::raw::{c_int, c_long};

    /// `struct timespec` of Linux (`time_t` is a `long`).
    #[repr(C)]
    struct Timespec {
        seconds: c_long,
        nanoseconds: c_long,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: c_int, time: *mut Timespec) -> c_int;
    }
    const CLOCK_THREAD_CPUTIME_ID: c_int = 3;

    let mut time = Timespec {
        seconds: 0,
        nanoseconds: 0,
    };
    // SAFETY: clock_gettime writes one `struct timespec` through the pointer, which is `time`.
    let status = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut time) };
    (status == 0).then(|| Duration::new(time.seconds as u64, time.nanoseconds as u32))
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_time() -> Option<Duration> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_cpu_a_busy_loop_uses_and_not_a_sleep() {
        let stopwatch = Stopwatch::new();
        if !stopwatch.measures_cpu() {
            eprintln!("skipped: no thread CPU clock on this system");
            return;
        }
        let start = stopwatch.now();
        std::thread::sleep(Duration::from_millis(50));
        let slept = stopwatch.now() - start;
        assert!(slept < Duration::from_millis(10), "{slept:?}");
        // Busy until 5 ms of CPU are counted; other tests may hold the cores meanwhile, so the
        // wall clock only bounds the wait.
        let start = stopwatch.now();
        let give_up = Instant::now() + Duration::from_secs(10);
        while stopwatch.now() - start < Duration::from_millis(5) {
            assert!(
                Instant::now() < give_up,
                "10 s busy and not 5 ms of CPU counted"
            );
        }
    }
}
