//! A figure held to a goal, as the report shows it: "p99 3.2 ms (target ≤ 50 ms: met)".

use crate::report::number;

/// Which side of its bound a target's figure must be.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

/// A figure held to a goal: "p99 3.2 ms (target ≤ 50 ms: met)".
#[derive(Debug, Clone)]
pub struct Target {
    pub what: String,
    pub measured: f64,
    pub goal: Goal,
    /// Appended to both figures: "×", " ms", " msg/s".
    pub unit: &'static str,
    /// The same figure for a reference measured in the same run, shown after the verdict:
    /// absolute rates on a shared machine swing from day to day, a ratio to a server that
    /// ran the same load beside it does not.
    pub beside: Option<String>,
}

impl Target {
    pub fn new(what: &str, measured: f64, goal: Goal, unit: &'static str) -> Target {
        Target {
            what: what.into(),
            measured,
            goal,
            unit,
            beside: None,
        }
    }

    /// The target with `beside` shown after its verdict.
    pub fn with_beside(mut self, beside: String) -> Target {
        self.beside = Some(beside);
        self
    }

    pub fn met(&self) -> bool {
        match self.goal {
            Goal::AtLeast(bound) => self.measured >= bound,
            Goal::AtMost(bound) => self.measured <= bound,
        }
    }

    /// "target ≤ 50 ms: met"
    pub fn verdict(&self) -> String {
        let (sign, bound) = match self.goal {
            Goal::AtLeast(bound) => ("≥", bound),
            Goal::AtMost(bound) => ("≤", bound),
        };
        let verdict = if self.met() { "met" } else { "missed" };
        format!("target {sign} {}{}: {verdict}", number(bound), self.unit)
    }
}
