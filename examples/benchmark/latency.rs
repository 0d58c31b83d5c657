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

/// The report's row for one kind of read over the runs (`reads` and `fleet_reads`): its
/// latency (medians of the runs' percentiles), the max and the reads a run, its p99 against
/// `target_ms`; marked failed by the first failed read, else by the ingestion's first
/// problem.
pub struct ReadRow<'a> {
    pub configuration: String,
    pub label: &'static str,
    /// The ingestion's rate over the runs.
    pub ingest: crate::report::Figure,
    /// Per run, the latencies of this kind of read, in µs.
    pub latencies_us: Vec<&'a [u32]>,
    pub errors: Vec<&'a String>,
    pub ingest_errors: Vec<&'a String>,
    pub target_ms: f64,
}

impl ReadRow<'_> {
    pub fn row(self) -> crate::report::Row {
        use crate::target::{Goal, Target};
        let percentiles: Vec<Option<Percentiles>> = self
            .latencies_us
            .iter()
            .map(|run| Percentiles::of_us(run.to_vec()))
            .collect();
        let (latency, max) = over_runs(&percentiles);
        let count = Figure::of(self.latencies_us.iter().map(|run| run.len() as f64));
        let mut row = crate::report::Row::measured(
            &self.configuration,
            Some(self.ingest),
            Some(latency),
            format!("max {} ms; {} reads a run", max.show(1), count.show(0)),
        )
        .with_label(self.label)
        .with_target(Target::new(
            "p99",
            latency[1].median,
            Goal::AtMost(self.target_ms),
            " ms",
        ));
        if let Some(first) = self.errors.first() {
            row.failure = Some(format!(
                "{} reads failed, the first: {first}",
                self.errors.len()
            ));
        } else if let Some(first) = self.ingest_errors.first() {
            row.failure = Some(format!("ingestion failed: {first}"));
        }
        row
    }
}
