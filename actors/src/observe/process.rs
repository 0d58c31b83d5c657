//! The process's own figures, read from `/proc/self` at each scrape under the names
//! Prometheus's client libraries use: `process_resident_memory_bytes`,
//! `process_cpu_seconds_total`, `process_open_fds`, `process_max_fds`. Elsewhere than on
//! Linux they are absent.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

#[derive(Debug)]
pub struct ProcessCollector;

/// What `/proc/self` says now; `None` for what could not be read.
#[derive(Debug, Default, PartialEq)]
pub struct ProcessFigures {
    pub resident_bytes: Option<i64>,
    pub cpu_seconds: Option<f64>,
    pub open_fds: Option<i64>,
    pub max_fds: Option<i64>,
}

impl ProcessFigures {
    pub fn read() -> ProcessFigures {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let limits = std::fs::read_to_string("/proc/self/limits").ok();
        ProcessFigures {
            resident_bytes: stat.as_deref().and_then(resident_bytes),
            cpu_seconds: stat.as_deref().and_then(cpu_seconds),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|fds| fds.count() as i64),
            max_fds: limits.as_deref().and_then(max_open_files),
        }
    }
}

/// `/proc/self/stat` fields after the command name (which may hold spaces), from field 3.
fn fields_after_name(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default()
}

/// Clock ticks per second for utime and stime: 100 on every Linux this runs on.
const TICKS_PER_SECOND: f64 = 100.0;
const PAGE_SIZE: i64 = 4096;

fn cpu_seconds(stat: &str) -> Option<f64> {
    let f = fields_after_name(stat);
    // utime and stime are fields 14 and 15 (1-based), so 11 and 12 after the name.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / TICKS_PER_SECOND)
}

fn resident_bytes(stat: &str) -> Option<i64> {
    // rss (pages) is field 24, so 21 after the name.
    let pages: i64 = fields_after_name(stat).get(21)?.parse().ok()?;
    Some(pages * PAGE_SIZE)
}

fn max_open_files(limits: &str) -> Option<i64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let figures = ProcessFigures::read();
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                figures.resident_bytes,
            ),
            (
                "process_open_fds",
                "Open file descriptors",
                figures.open_fds,
            ),
            (
                "process_max_fds",
                "The open file descriptor limit",
                figures.max_fds,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                let gauge = ConstGauge::new(value);
                gauge.encode(encoder.encode_descriptor(
                    name,
                    help,
                    None,
                    gauge.metric_type(),
                )?)?;
            }
        }
        if let Some(seconds) = figures.cpu_seconds {
            let counter = ConstCounter::new(seconds);
            let help = "User and system CPU time spent, in seconds";
            let metric = encoder.encode_descriptor(
                "process_cpu_seconds",
                help,
                None,
                counter.metric_type(),
            )?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_and_memory_from_a_stat_line_whose_name_has_spaces() {
        let stat = "4242 (eliot (main) x) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 \
                    5 0 123456 987654321 3000 18446744073709551615";
        assert_eq!(cpu_seconds(stat), Some(3.0));
        assert_eq!(resident_bytes(stat), Some(3000 * 4096));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            20256                524288               files\n";
        assert_eq!(max_open_files(limits), Some(20256));
    }

    #[test]
    fn this_process_has_figures_on_linux() {
        if cfg!(target_os = "linux") {
            let now = ProcessFigures::read();
            assert!(now.resident_bytes.unwrap() > 0);
            assert!(now.open_fds.unwrap() > 0);
            assert!(now.max_fds.unwrap() > 0);
            assert!(now.cpu_seconds.is_some());
        }
    }
}
