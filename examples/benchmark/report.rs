//! The benchmark's results: the table, the targets met or missed, the server-side
//! disconnects of the field loads, `report.md` and `chart.png`.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde_json::Value;

use crate::chart::{bar_chart, register_font, short};
use crate::target::{Goal, Target};

/// A median with the min–max of the runs behind it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figure {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Figure {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Figure {
        let mut v: Vec<f64> = values.into_iter().collect();
        v.sort_by(f64::total_cmp);
        Figure {
            median: v[v.len() / 2],
            min: v[0],
            max: v[v.len() - 1],
        }
    }

    /// "12.3 (11.0–14.2)", or "12.3" when every run gave the same (or there was one).
    pub fn show(&self, decimals: usize) -> String {
        if self.min == self.max {
            return format!("{:.d$}", self.median, d = decimals);
        }
        format!(
            "{:.d$} ({:.d$}–{:.d$})",
            self.median,
            self.min,
            self.max,
            d = decimals
        )
    }
}

/// The simulator's latency percentile `p` ("p50", "p99", "p999") in ms.
fn latency(summary: &Value, p: &str) -> f64 {
    summary["latency_ms"][p]
        .as_f64()
        .or_else(|| summary[format!("latency_{p}_ms")].as_f64())
        .unwrap_or(f64::NAN)
}

fn field(summaries: &[Value], name: &str) -> Figure {
    Figure::of(
        summaries
            .iter()
            .map(|s| s[name].as_f64().unwrap_or(f64::NAN)),
    )
}

/// One configuration's line of the table.
pub struct Row {
    pub name: String,
    /// The bar's label in the chart.
    pub label: String,
    /// Sustained msg/s, if this row measures throughput.
    pub throughput: Option<Figure>,
    /// publish→PUBACK p50, p99, p99.9 in ms.
    pub latency: Option<[Figure; 3]>,
    pub notes: String,
    /// The goals this row's figures are held to, shown beside them.
    pub targets: Vec<Target>,
    /// Why this configuration did not measure what it should (errors, refused requests):
    /// the benchmark is broken, whatever its figures.
    pub failure: Option<String>,
    /// Whether its throughput is a bar of chart.png (not for figures of another scale, such
    /// as the load generator's own ceiling).
    pub in_chart: bool,
}

impl Row {
    pub fn throughput(name: &str, label: &str, rate: Figure) -> Row {
        Row::measured(name, Some(rate), None, String::new()).with_label(label)
    }

    /// A row of figures measured some other way than by the fleet simulator.
    pub fn measured(
        name: &str,
        throughput: Option<Figure>,
        latency: Option<[Figure; 3]>,
        notes: String,
    ) -> Row {
        Row {
            name: name.into(),
            label: String::new(),
            throughput,
            latency,
            notes,
            targets: Vec::new(),
            failure: None,
            in_chart: true,
        }
    }

    pub fn with_label(mut self, label: &str) -> Row {
        self.label = label.into();
        self
    }

    pub fn with_target(mut self, target: Target) -> Row {
        self.targets.push(target);
        self
    }

    /// The row failed by `problems`, if there are any.
    pub fn with_problems(mut self, problems: &[String]) -> Row {
        if !problems.is_empty() {
            self.failure = Some(problems.join("; "));
        }
        self
    }

    /// The row's p99 in ms (the median of the runs), if it measures latency.
    pub fn p99_ms(&self) -> Option<f64> {
        self.latency.map(|[_, p99, _]| p99.median)
    }

    fn latencies(summaries: &[Value]) -> [Figure; 3] {
        ["p50", "p99", "p999"].map(|p| Figure::of(summaries.iter().map(|s| latency(s, p))))
    }

    pub fn latency(name: &str, summaries: &[Value]) -> Row {
        Row {
            name: name.into(),
            label: String::new(),
            throughput: Some(field(summaries, "rate_acked")),
            latency: Some(Row::latencies(summaries)),
            notes: format!("lost {}", field(summaries, "lost").show(0)),
            targets: Vec::new(),
            failure: None,
            in_chart: true,
        }
    }

    pub fn connections(
        name: &str,
        summaries: &[Value],
        peak_mib: Figure,
        kib_per_connection: Figure,
    ) -> Row {
        Row {
            name: name.into(),
            label: String::new(),
            throughput: Some(field(summaries, "rate_acked")),
            latency: Some(Row::latencies(summaries)),
            notes: format!(
                "lost {}; peak RSS {} MiB; {} KiB per connection",
                field(summaries, "lost").show(0),
                peak_mib.show(0),
                kib_per_connection.show(1)
            ),
            targets: Vec::new(),
            failure: None,
            in_chart: true,
        }
    }

    pub fn overload(name: &str, summaries: &[Value], peak_mib: Figure, lost: Figure) -> Row {
        Row {
            name: name.into(),
            label: String::new(),
            throughput: Some(field(summaries, "rate_acked")),
            latency: Some(Row::latencies(summaries)),
            notes: format!(
                "peak RSS {} MiB; connection errors {}; acked but not stored {}",
                peak_mib.show(0),
                field(summaries, "errors").show(0),
                lost.show(0)
            ),
            targets: Vec::new(),
            failure: None,
            in_chart: true,
        }
    }
}

/// 2 decimals below 10, 1 below 100, none above: 1.53, 42.7, 104321.
pub fn number(value: f64) -> String {
    match value.abs() {
        v if v < 10.0 => format!("{value:.2}"),
        v if v < 100.0 => format!("{value:.1}"),
        _ => format!("{value:.0}"),
    }
}

pub struct Report {
    quick: bool,
    messages: u64,
    rows: Vec<Row>,
    /// Targets that belong to no single row (ratios between rows).
    targets: Vec<Target>,
    /// Further markdown after the table (the sustained run's deciles and chart).
    sections: Vec<String>,
    /// Each field configuration's server-side disconnects, described: listed in report.md,
    /// so that every one can be looked into (any but a kill's fails the run).
    disconnects: Vec<(String, Vec<String>)>,
}

impl Report {
    pub fn new(quick: bool, messages: u64) -> Report {
        Report {
            quick,
            messages,
            rows: Vec::new(),
            targets: Vec::new(),
            sections: Vec::new(),
            disconnects: Vec::new(),
        }
    }

    pub fn add(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// The configurations whose throughput is missing or zero, or that failed.
    pub fn broken(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|r| {
                r.failure.is_some()
                    || r.throughput
                        .is_some_and(|f| f.median.is_nan() || f.median <= 0.0)
            })
            .map(|r| r.name.as_str())
            .collect()
    }

    /// A ratio between rows, held to `goal`.
    pub fn ratio(&mut self, what: &str, measured: f64, goal: Goal) {
        self.targets.push(Target::new(what, measured, goal, "×"));
    }

    /// Markdown printed after the table and the targets.
    pub fn section(&mut self, markdown: String) {
        self.sections.push(markdown);
    }

    /// Lists the server-side disconnects of `configuration`, each described (with whether
    /// it is explained, where some are): on standard error now, in report.md later.
    pub fn disconnects<D: std::fmt::Display>(
        &mut self,
        configuration: &str,
        disconnects: impl IntoIterator<Item = D>,
    ) {
        let listed: Vec<String> = disconnects.into_iter().map(|d| d.to_string()).collect();
        eprintln!(
            "  {configuration}: {} server-side disconnects",
            listed.len()
        );
        for disconnect in &listed {
            eprintln!("    {disconnect}");
        }
        self.disconnects.push((configuration.to_owned(), listed));
    }

    /// `disconnects` for each run of `configuration`, as "Eliot paced, run 2".
    pub fn disconnects_by_run<'a, D: std::fmt::Display + 'a>(
        &mut self,
        configuration: &str,
        runs: impl IntoIterator<Item = &'a [D]>,
    ) {
        for (n, run) in runs.into_iter().enumerate() {
            self.disconnects(&format!("{configuration}, run {}", n + 1), run);
        }
    }

    /// The markdown list of every field configuration's server-side disconnects.
    fn disconnects_section(&self) -> String {
        let mut md = String::from(
            "## Server-side disconnects\n\n\
             Connections of the field loads that the server ended (EOF, reset, any I/O \
             error) while the load ran. Any fails the run, but in the kill drill one from a \
             kill to shortly after Eliot is ready again.\n\n",
        );
        for (configuration, listed) in &self.disconnects {
            if listed.is_empty() {
                let _ = writeln!(md, "- {configuration}: none");
                continue;
            }
            let _ = writeln!(md, "- {configuration}: {}", listed.len());
            for disconnect in listed {
                let _ = writeln!(md, "  - {disconnect}");
            }
        }
        md
    }

    /// The results as a markdown table, with the ratios under it.
    pub fn table(&self) -> String {
        let mut t = String::new();
        if self.quick {
            t.push_str("Quick mode: tiny counts, in whatever build ran it; the figures only show that the benchmark works.\n\n");
        }
        let dash = || "–".to_owned();
        t.push_str("| configuration | msg/s | p50 ms | p99 ms | p99.9 ms | notes |\n");
        t.push_str("|---|---|---|---|---|---|\n");
        for row in &self.rows {
            let [p50, p99, p999] = row
                .latency
                .map_or([dash(), dash(), dash()], |l| l.map(|f| f.show(1)));
            let rate = row.throughput.map_or_else(dash, |f| f.show(0));
            let mut notes = vec![row.notes.clone()];
            notes.extend(row.targets.iter().map(|target| target.verdict()));
            notes.extend(row.failure.iter().map(|f| format!("**FAILED: {f}**")));
            notes.retain(|n| !n.is_empty());
            let _ = writeln!(
                t,
                "| {} | {rate} | {p50} | {p99} | {p999} | {} |",
                row.name,
                notes.join("; ")
            );
        }
        t.push('\n');
        let row_targets = self.rows.iter().flat_map(|row| {
            let name = if row.label.is_empty() {
                short(&row.name)
            } else {
                &row.label
            };
            row.targets
                .iter()
                .map(move |target| (format!("{name}: {}", target.what), target))
        });
        let ratios = self
            .targets
            .iter()
            .map(|target| (target.what.clone(), target));
        for (what, target) in row_targets.chain(ratios) {
            let beside = target
                .beside
                .as_ref()
                .map_or_else(String::new, |beside| format!("; {beside}"));
            let _ = writeln!(
                t,
                "- {what}: **{}{}** ({}{beside})",
                number(target.measured),
                target.unit,
                target.verdict()
            );
        }
        t
    }

    pub fn write(&self, out: &Path) {
        std::fs::create_dir_all(out).unwrap();
        let mut md = String::from("# Eliot benchmark\n\n");
        let _ = writeln!(
            md,
            "{} run, {}; medians of the runs with min–max; throughput runs carry {} messages of about 150 bytes.\n",
            if self.quick { "Quick" } else { "Full" },
            machine(),
            self.messages
        );
        md.push_str(&self.table());
        md.push_str("\n![throughput and latency](chart.png)\n");
        if !self.disconnects.is_empty() {
            md.push('\n');
            md.push_str(&self.disconnects_section());
        }
        for section in &self.sections {
            md.push('\n');
            md.push_str(section);
        }
        std::fs::write(out.join("report.md"), md).unwrap();
        if let Err(e) = self.chart(&out.join("chart.png")) {
            eprintln!("no chart: {e}");
        }
    }

    fn chart(&self, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
        register_font()?;
        let root = BitMapBackend::new(path, (1400, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let (left, right) = root.split_horizontally(900);
        let bars: Vec<(&str, Figure)> = self
            .rows
            .iter()
            .filter(|r| r.latency.is_none() && r.in_chart)
            .filter_map(|r| Some((r.label.as_str(), r.throughput?)))
            .collect();
        bar_chart(&left, "Sustained throughput (msg/s)", &bars)?;
        if let Some(row) = self.rows.iter().find(|r| r.latency.is_some()) {
            let [p50, p99, p999] = row.latency.unwrap();
            let bars = [("p50", p50), ("p99", p99), ("p99.9", p999)];
            bar_chart(&right, &format!("{} (ms)", short(&row.name)), &bars)?;
        }
        root.present()?;
        Ok(())
    }
}

/// "2 × Intel Xeon ..., Linux 6.1, Mosquitto 2.0.11"
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mosquitto = std::process::Command::new("mosquitto")
        .arg("-h")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_default();
    format!("{cores} × {cpu}, {mosquitto}, load generator on the same machine")
}
