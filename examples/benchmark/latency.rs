//! Percentiles of latency samples kept in µs, reported in ms.

use crate::report::Figure;

/// p50, p99, p99.9 and max of one run, in ms.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    /// Of samples in µs, sorted ascending; `None` without samples.
    pub fn of_sorted_us(sorted: &[u32]) -> Option<Percentiles> {
        let at = |quantile: f64| {
            let rank = (quantile * sorted.len() as f64).ceil() as usize;
            f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
        };
        let max = f64::from(*sorted.last()?) / 1000.0;
        Some(Percentiles {
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max,
        })
    }

    /// Of samples in µs, in any order.
    pub fn of_us(mut samples: Vec<u32>) -> Option<Percentiles> {
        samples.sort_unstable();
        Percentiles::of_sorted_us(&samples)
    }
}

/// Over several runs: the medians (and min–max) of p50, p99, p99.9 for a report row, and of
/// the max. Runs without samples count as NaN, which the report shows as broken.
pub fn over_runs(runs: &[Option<Percentiles>]) -> ([Figure; 3], Figure) {
    let of = |pick: fn(&Percentiles) -> f64| {
        Figure::of(runs.iter().map(|r| r.as_ref().map_or(f64::NAN, pick)))
    };
    (
        [of(|p| p.p50), of(|p| p.p99), of(|p| p.p999)],
        of(|p| p.max),
    )
}
