//! Alert rules: what the configuration says (`RuleConfig`, one `[[alerts.rules]]` table,
//! the same shape the API will take), checked and compiled into a `Rule`, and the
//! `RuleSet` a shard evaluates (rules indexed by sensor type, so that a reading meets only
//! the rules about its own sensor type).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::super::anomaly_settings::{MAX_DEPTH, MAX_FIELD_PATH};
use crate::ingest::is_sensor_type;
use crate::settings::Problems;

/// Rules at most: each costs a check per reading of its sensor type, per device in scope.
pub const MAX_RULES: usize = 10_000;
/// Devices a rule's `devices` list may name.
pub const MAX_LISTED: usize = 10_000;
/// A `dead_letters` rule's `count` at most (a device remembers as many dead letters' times).
pub const MAX_COUNT: u32 = 10_000;

/// One `[[alerts.rules]]` table, as written. Which keys apply depends on `kind`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique; names the alert in events, notifications and the API (`[a-z0-9_-]`).
    pub name: String,
    /// `info`, `warning` (the default) or `critical`.
    #[serde(default)]
    pub severity: Severity,
    /// `threshold`, `absence`, `dead_letters` or `anomaly`.
    pub kind: String,
    /// Scope: devices whose id starts with this. With neither this nor `devices`: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_prefix: Option<String>,
    /// Scope: these devices only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// `threshold` (required) and `anomaly` (optional): the sensor type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor_type: Option<String>,
    /// `threshold` (required) and `anomaly` (optional): a path into `data`, dots between
    /// nested keys (`value`, `gps.lat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `threshold`: `>`, `>=`, `<` or `<=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// `threshold`: the value crossed; `anomaly`: the score reached (0 to 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// `threshold`, `anomaly`: once raised, the alert holds until the value is back past
    /// this (hysteresis); default `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear: Option<f64>,
    /// `threshold`, `absence`: how long the condition must hold before the alert fires
    /// (pending meanwhile); default 0.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub r#for: Option<Duration>,
    /// `absence`: `late` (late or offline) or `offline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `dead_letters`: this many dead letters of the device within `window` fire it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// `eliot`: `breaker_open`, `store_failing` or `disk_full`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub window: Option<Duration>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    #[default]
    Warning,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Which devices a rule is about.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    All,
    Prefix(String),
    Listed(HashSet<String>),
    /// An `eliot` rule's: no device (Eliot itself).
    Eliot,
}

impl Scope {
    pub fn covers(&self, device_id: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Eliot => false,
            Scope::Prefix(p) => device_id.starts_with(p.as_str()),
            Scope::Listed(ids) => ids.contains(device_id),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Above,
    AtLeast,
    Below,
    AtMost,
}

impl Op {
    fn parse(text: &str) -> Option<Op> {
        Some(match text {
            ">" => Op::Above,
            ">=" => Op::AtLeast,
            "<" => Op::Below,
            "<=" => Op::AtMost,
            _ => return None,
        })
    }

    fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Op::Above => value > bound,
            Op::AtLeast => value >= bound,
            Op::Below => value < bound,
            Op::AtMost => value <= bound,
        }
    }

    fn upward(self) -> bool {
        matches!(self, Op::Above | Op::AtLeast)
    }
}

/// What raises a rule's alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A numeric field of a sensor type's readings past `value`; held until past `clear`.
    Threshold {
        sensor_type: String,
        field: String,
        op: Op,
        value: f64,
        clear: f64,
    },
    /// The device late (or offline, with `offline_only`).
    Absence { offline_only: bool },
    /// `count` dead letters within `window`.
    DeadLetters { count: u32, window: Duration },
    /// An anomaly score at or above `score`, of the series named (any, for `None`);
    /// held until a score of that series is below `clear`.
    Anomaly {
        sensor_type: Option<String>,
        field: Option<String>,
        score: f64,
        clear: f64,
    },
    /// Eliot itself in trouble (judged by the self-watch, not by the shards).
    Eliot(EliotCondition),
}

/// What an `eliot` rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EliotCondition {
    /// A circuit breaker (the store's, a device's guard, the upstream's) not closed.
    BreakerOpen,
    /// The store not committing: its writer down, its breaker not closed, no room, or
    /// rows waiting longer than `http.ready_max_backlog_age`.
    StoreFailing,
    /// The store's disk (or `store.max_size`) full.
    DiskFull,
}

impl EliotCondition {
    pub fn name(self) -> &'static str {
        match self {
            EliotCondition::BreakerOpen => "breaker_open",
            EliotCondition::StoreFailing => "store_failing",
            EliotCondition::DiskFull => "disk_full",
        }
    }

    fn parse(text: &str) -> Option<EliotCondition> {
        [
            EliotCondition::BreakerOpen,
            EliotCondition::StoreFailing,
            EliotCondition::DiskFull,
        ]
        .into_iter()
        .find(|c| c.name() == text)
    }
}

/// A rule, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub severity: Severity,
    pub scope: Scope,
    pub kind: Kind,
    /// Microseconds the condition must hold before the alert fires.
    pub hold: i64,
    /// As written (the API shows it).
    pub config: RuleConfig,
}

impl Rule {
    /// The rule `config` describes, or what is wrong with it (each problem by its key).
    pub fn compile(config: &RuleConfig, problems: &mut Problems) -> Option<Rule> {
        let before = problems.len();
        let name_ok = (1..=64).contains(&config.name.len())
            && config
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        problems.check(name_ok, "name", "expected 1 to 64 of a-z 0-9 _ -");
        let kind = kind(config, problems);
        let scope = match kind {
            Some(Kind::Eliot(_)) => Some(Scope::Eliot),
            _ => scope(config, problems),
        };
        let hold = config.r#for.unwrap_or_default();
        let (Some(scope), Some(kind)) = (scope, kind) else {
            return None;
        };
        (problems.len() == before).then(|| Rule {
            name: config.name.clone(),
            severity: config.severity,
            scope,
            kind,
            hold: i64::try_from(hold.as_micros()).unwrap_or(i64::MAX),
            config: config.clone(),
        })
    }

    /// Whether a value raises this threshold rule (`raised`: the alert is already
    /// pending or firing, so it holds until past `clear`).
    pub fn threshold_holds(&self, value: f64, raised: bool) -> bool {
        match &self.kind {
            Kind::Threshold {
                op,
                value: bound,
                clear,
                ..
            } => {
                if !raised {
                    return op.holds(value, *bound);
                }
                // Held until back past `clear`: for `>`, while above it.
                if op.upward() {
                    value > *clear || op.holds(value, *bound)
                } else {
                    value < *clear || op.holds(value, *bound)
                }
            }
            _ => false,
        }
    }
}

/// The scope: any prefix and ids are taken as written (one a device's id cannot have
/// matches no device).
fn scope(config: &RuleConfig, problems: &mut Problems) -> Option<Scope> {
    if config
        .device_prefix
        .as_ref()
        .is_some_and(|p| !(1..=64).contains(&p.len()))
    {
        problems.add("device_prefix", "expected 1 to 64 bytes");
        return None;
    }
    if config.devices.len() > MAX_LISTED {
        problems.add("devices", format!("expected at most {MAX_LISTED} ids"));
        return None;
    }
    Some(match (&config.device_prefix, config.devices.is_empty()) {
        (None, true) => Scope::All,
        (Some(prefix), true) => Scope::Prefix(prefix.clone()),
        // Both: the devices listed whose id starts with the prefix.
        (prefix, false) => Scope::Listed(
            config
                .devices
                .iter()
                .filter(|d| prefix.as_deref().is_none_or(|p| d.starts_with(p)))
                .cloned()
                .collect(),
        ),
    })
}

fn kind(config: &RuleConfig, problems: &mut Problems) -> Option<Kind> {
    let unused = |problems: &mut Problems, keys: &[(&str, bool)]| {
        for (key, given) in keys {
            if *given {
                problems.add(key, format!("does not apply to kind {}", config.kind));
            }
        }
    };
    let c = config;
    if c.kind != "eliot" {
        unused(problems, &[("condition", c.condition.is_some())]);
    }
    match config.kind.as_str() {
        "threshold" => {
            unused(
                problems,
                &[
                    ("status", c.status.is_some()),
                    ("count", c.count.is_some()),
                    ("window", c.window.is_some()),
                ],
            );
            let sensor_type = sensor_type(c, problems, true)?;
            let field = field(c, problems, true)?;
            let op = match c.op.as_deref().map(|o| (o, Op::parse(o))) {
                Some((_, Some(op))) => op,
                _ => {
                    problems.add("op", "expected >, >=, < or <=");
                    return None;
                }
            };
            let Some(value) = c.value.filter(|v| v.is_finite()) else {
                problems.add("value", "expected a finite number");
                return None;
            };
            // A `clear` on the raising side of `value` leaves no hysteresis: the alert
            // holds while the value is past `value`.
            let clear = c.clear.filter(|c| c.is_finite()).unwrap_or(value);
            Some(Kind::Threshold {
                sensor_type: sensor_type?,
                field: field?,
                op,
                value,
                clear,
            })
        }
        "absence" => {
            unused(
                problems,
                &[
                    ("sensor_type", c.sensor_type.is_some()),
                    ("field", c.field.is_some()),
                    ("op", c.op.is_some()),
                    ("value", c.value.is_some()),
                    ("clear", c.clear.is_some()),
                    ("count", c.count.is_some()),
                    ("window", c.window.is_some()),
                ],
            );
            match c.status.as_deref().unwrap_or("late") {
                "late" => Some(Kind::Absence {
                    offline_only: false,
                }),
                "offline" => Some(Kind::Absence { offline_only: true }),
                _ => {
                    problems.add("status", "expected late or offline");
                    None
                }
            }
        }
        "dead_letters" => {
            unused(
                problems,
                &[
                    ("sensor_type", c.sensor_type.is_some()),
                    ("field", c.field.is_some()),
                    ("op", c.op.is_some()),
                    ("value", c.value.is_some()),
                    ("clear", c.clear.is_some()),
                    ("status", c.status.is_some()),
                    ("for", c.r#for.is_some()),
                ],
            );
            let count = c.count.filter(|n| (1..=MAX_COUNT).contains(n));
            let window = c.window.filter(|w| !w.is_zero());
            problems.check(count.is_some(), "count", "expected 1 to 10000");
            problems.check(window.is_some(), "window", "expected a duration above zero");
            Some(Kind::DeadLetters {
                count: count?,
                window: window?,
            })
        }
        "anomaly" => {
            unused(
                problems,
                &[
                    ("op", c.op.is_some()),
                    ("status", c.status.is_some()),
                    ("count", c.count.is_some()),
                    ("window", c.window.is_some()),
                    ("for", c.r#for.is_some()),
                ],
            );
            let sensor_type = sensor_type(c, problems, false)?;
            let field = field(c, problems, false)?;
            let score = c.value.filter(|v| (0.0..=1.0).contains(v));
            problems.check(score.is_some(), "value", "expected a score from 0 to 1");
            let score = score?;
            let clear = c.clear.unwrap_or(score);
            if !(0.0..=1.0).contains(&clear) {
                problems.add("clear", "expected a score from 0 to 1");
                return None;
            }
            // Above `value`, it would resolve while still raised: it holds above `value`.
            let clear = clear.min(score);
            Some(Kind::Anomaly {
                sensor_type,
                field,
                score,
                clear,
            })
        }
        "eliot" => {
            unused(
                problems,
                &[
                    ("device_prefix", c.device_prefix.is_some()),
                    ("devices", !c.devices.is_empty()),
                    ("sensor_type", c.sensor_type.is_some()),
                    ("field", c.field.is_some()),
                    ("op", c.op.is_some()),
                    ("value", c.value.is_some()),
                    ("clear", c.clear.is_some()),
                    ("status", c.status.is_some()),
                    ("count", c.count.is_some()),
                    ("window", c.window.is_some()),
                ],
            );
            let condition = c.condition.as_deref().and_then(EliotCondition::parse);
            problems.check(
                condition.is_some(),
                "condition",
                "expected breaker_open, store_failing or disk_full",
            );
            condition.map(Kind::Eliot)
        }
        other => {
            problems.add(
                "kind",
                format!("`{other}`: expected threshold, absence, dead_letters, anomaly or eliot"),
            );
            None
        }
    }
}

/// The rule's sensor type: `Some(None)` when absent and optional, `None` on a problem.
fn sensor_type(c: &RuleConfig, problems: &mut Problems, required: bool) -> Option<Option<String>> {
    match &c.sensor_type {
        Some(s) if is_sensor_type(s) => Some(Some(s.clone())),
        Some(_) => {
            problems.add("sensor_type", "expected a sensor type (a-z 0-9 _, 1 to 32)");
            None
        }
        None if required => {
            problems.add("sensor_type", "required for this kind");
            None
        }
        None => Some(None),
    }
}

fn field(c: &RuleConfig, problems: &mut Problems, required: bool) -> Option<Option<String>> {
    match &c.field {
        Some(f) => {
            // Characters, as the API's schema counts them. A path over MAX_FIELD_PATH
            // bytes (non-ASCII keys) names no field a reading is read for: never met,
            // like a key no device sends.
            let ok = !f.is_empty()
                && !f.split('.').any(str::is_empty)
                && f.split('.').count() <= MAX_DEPTH
                && f.chars().count() <= MAX_FIELD_PATH;
            if !ok {
                problems.add(
                    "field",
                    format!("expected a path of at most {MAX_DEPTH} keys and {MAX_FIELD_PATH} characters, dots between keys"),
                );
                return None;
            }
            Some(Some(f.clone()))
        }
        None if required => {
            problems.add("field", "required for this kind");
            None
        }
        None => Some(None),
    }
}

/// Index of a rule in its `RuleSet`.
pub type RuleId = u32;

/// The rules a shard evaluates, with the threshold rules indexed by sensor type: for each
/// sensor type some threshold rule is about, the fields they name (a reading's values of
/// those are all the shard needs), and for each threshold rule, which of them it reads.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// The threshold rules' fields, per sensor type (shared: the pipeline sends them with
    /// their values).
    thresholds: HashMap<String, Vec<Arc<str>>>,
    names: HashMap<String, RuleId>,
    /// Some rule is of each kind (a shard skips a kind with no rule at once).
    pub absence: bool,
    pub dead_letters: bool,
    pub anomaly: bool,
}

impl RuleSet {
    /// Compiles every rule; problems are keyed `rules[i].key`, and names must be unique.
    pub fn compile(configs: &[RuleConfig], problems: &mut Problems) -> RuleSet {
        let mut set = RuleSet::default();
        if configs.len() > MAX_RULES {
            problems.add("rules", format!("expected at most {MAX_RULES} rules"));
            return set;
        }
        let mut names = HashSet::new();
        for (i, config) in configs.iter().enumerate() {
            problems.section(&format!("rules[{i}]"), |p| {
                if !names.insert(config.name.clone()) {
                    p.add("name", format!("`{}` names another rule too", config.name));
                }
                if let Some(rule) = Rule::compile(config, p) {
                    set.push(rule);
                }
            });
        }
        set
    }

    fn push(&mut self, rule: Rule) {
        match &rule.kind {
            Kind::Threshold {
                sensor_type, field, ..
            } => {
                let fields = self.thresholds.entry(sensor_type.clone()).or_default();
                if !fields.iter().any(|f| **f == **field) {
                    fields.push(Arc::from(field.as_str()));
                }
            }
            Kind::Absence { .. } => self.absence = true,
            Kind::DeadLetters { .. } => self.dead_letters = true,
            Kind::Anomaly { .. } => self.anomaly = true,
            Kind::Eliot(_) => {}
        }
        self.names
            .insert(rule.name.clone(), self.rules.len() as RuleId);
        self.rules.push(rule);
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn get(&self, id: RuleId) -> Option<&Rule> {
        self.rules.get(id as usize)
    }

    pub fn by_name(&self, name: &str) -> Option<(RuleId, &Rule)> {
        let id = *self.names.get(name)?;
        Some((id, &self.rules[id as usize]))
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (RuleId, &Rule)> {
        self.rules.iter().enumerate().map(|(i, r)| (i as RuleId, r))
    }

    /// The fields the threshold rules about `sensor_type` name (`None`: no rule is about
    /// it): the pipeline reads those of a reading before it sends it to be judged.
    pub fn threshold_fields(&self, sensor_type: &str) -> Option<&[Arc<str>]> {
        self.thresholds.get(sensor_type).map(Vec::as_slice)
    }

    /// The rules of `device_id`'s scope, in order: what a device keeps, computed once.
    pub fn covering(&self, device_id: &str) -> Vec<RuleId> {
        self.iter()
            .filter(|(_, r)| r.scope.covers(device_id))
            .map(|(id, _)| id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threshold(name: &str) -> RuleConfig {
        RuleConfig {
            name: name.into(),
            kind: "threshold".into(),
            sensor_type: Some("temperature".into()),
            field: Some("value".into()),
            op: Some(">".into()),
            value: Some(30.0),
            clear: Some(28.0),
            r#for: Some(Duration::from_secs(5)),
            ..RuleConfig::default()
        }
    }

    fn compiled(configs: &[RuleConfig]) -> (RuleSet, Vec<String>) {
        let mut problems = Problems::new();
        let mut set = RuleSet::default();
        problems.section("alerts", |p| set = RuleSet::compile(configs, p));
        let keys = problems.into_vec().into_iter().map(|p| p.key).collect();
        (set, keys)
    }

    #[test]
    fn a_threshold_holds_with_hysteresis() {
        let (set, problems) = compiled(&[threshold("hot")]);
        assert!(problems.is_empty(), "{problems:?}");
        let (_, rule) = set.by_name("hot").unwrap();
        assert!(!rule.threshold_holds(30.0, false));
        assert!(rule.threshold_holds(30.5, false));
        assert!(rule.threshold_holds(29.0, true), "held above clear");
        assert!(!rule.threshold_holds(28.0, true), "cleared at clear");
        assert_eq!(rule.hold, 5_000_000);
        assert_eq!(
            set.threshold_fields("temperature").unwrap()[0].as_ref(),
            "value"
        );
        assert_eq!(set.threshold_fields("humidity"), None);
    }

    #[test]
    fn a_downward_threshold_clears_above() {
        let config = RuleConfig {
            op: Some("<".into()),
            value: Some(10.0),
            clear: Some(12.0),
            ..threshold("cold")
        };
        let (set, problems) = compiled(&[config]);
        assert!(problems.is_empty(), "{problems:?}");
        let (_, rule) = set.by_name("cold").unwrap();
        assert!(rule.threshold_holds(9.0, false));
        assert!(rule.threshold_holds(11.0, true));
        assert!(!rule.threshold_holds(12.0, true));
    }

    #[test]
    fn a_clear_on_the_raising_side_leaves_no_hysteresis() {
        let config = RuleConfig {
            clear: Some(35.0),
            ..threshold("no_hysteresis")
        };
        let (set, problems) = compiled(&[config]);
        assert!(problems.is_empty(), "{problems:?}");
        let (_, rule) = set.by_name("no_hysteresis").unwrap();
        assert!(rule.threshold_holds(31.0, true));
        assert!(!rule.threshold_holds(30.0, true));
    }

    #[test]
    fn a_prefix_and_a_list_together_scope_the_listed_devices_with_the_prefix() {
        let config = RuleConfig {
            device_prefix: Some("gh-".into()),
            devices: vec!["gh-1".into(), "x-2".into()],
            ..threshold("both")
        };
        let (set, problems) = compiled(&[config]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(set.covering("gh-1"), [0]);
        assert!(set.covering("x-2").is_empty());
    }

    #[test]
    fn an_eliot_rule_covers_no_device_and_takes_only_its_keys() {
        let eliot = RuleConfig {
            name: "store".into(),
            kind: "eliot".into(),
            condition: Some("store_failing".into()),
            ..RuleConfig::default()
        };
        let (set, problems) = compiled(std::slice::from_ref(&eliot));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            set.by_name("store").unwrap().1.kind,
            Kind::Eliot(EliotCondition::StoreFailing)
        );
        assert!(set.covering("any-device").is_empty());

        let scoped = RuleConfig {
            device_prefix: Some("a".into()),
            ..eliot.clone()
        };
        let unknown = RuleConfig {
            condition: Some("cpu_hot".into()),
            ..eliot.clone()
        };
        let on_a_threshold = RuleConfig {
            condition: Some("disk_full".into()),
            ..threshold("t")
        };
        let (_, problems) = compiled(&[scoped]);
        assert_eq!(problems, ["alerts.rules[0].device_prefix"]);
        let (_, problems) = compiled(&[unknown]);
        assert_eq!(problems, ["alerts.rules[0].condition"]);
        let (_, problems) = compiled(&[on_a_threshold]);
        assert_eq!(problems, ["alerts.rules[0].condition"]);
    }

    #[test]
    fn scopes_cover_what_they_name() {
        assert!(Scope::All.covers("x"));
        assert!(Scope::Prefix("gh-".into()).covers("gh-1"));
        assert!(!Scope::Prefix("gh-".into()).covers("x-gh-1"));
        let listed = Scope::Listed(["a".to_owned()].into());
        assert!(listed.covers("a") && !listed.covers("ab"));
    }

    #[test]
    fn every_bad_key_is_named() {
        let bad = [
            RuleConfig {
                op: Some("=>".into()),
                ..threshold("Bad Name")
            },
            RuleConfig {
                device_prefix: Some(String::new()),
                ..threshold("bad_prefix")
            },
            RuleConfig {
                kind: "absence".into(),
                ..threshold("absence_with_threshold_keys")
            },
            RuleConfig {
                name: "dl".into(),
                kind: "dead_letters".into(),
                count: Some(0),
                ..RuleConfig::default()
            },
            RuleConfig {
                name: "listed_too_many".into(),
                kind: "absence".into(),
                devices: vec!["d".into(); MAX_LISTED + 1],
                ..RuleConfig::default()
            },
            RuleConfig {
                name: "dl".into(),
                kind: "mystery".into(),
                ..RuleConfig::default()
            },
        ];
        let (set, keys) = compiled(&bad);
        assert!(set.is_empty());
        assert_eq!(
            keys,
            [
                "alerts.rules[0].name",
                "alerts.rules[0].op",
                "alerts.rules[1].device_prefix",
                "alerts.rules[2].sensor_type",
                "alerts.rules[2].field",
                "alerts.rules[2].op",
                "alerts.rules[2].value",
                "alerts.rules[2].clear",
                "alerts.rules[3].count",
                "alerts.rules[3].window",
                "alerts.rules[4].devices",
                "alerts.rules[5].name",
                "alerts.rules[5].kind",
            ]
        );
    }

    #[test]
    fn a_device_keeps_the_rules_of_its_scope() {
        let configs = [
            threshold("all"),
            RuleConfig {
                device_prefix: Some("gh-".into()),
                ..threshold("greenhouse")
            },
            RuleConfig {
                name: "quiet".into(),
                kind: "absence".into(),
                devices: vec!["gh-2".into()],
                ..RuleConfig::default()
            },
        ];
        let (set, problems) = compiled(&configs);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(set.covering("gh-2"), [0, 1, 2]);
        assert_eq!(set.covering("gh-1"), [0, 1]);
        assert_eq!(set.covering("x"), [0]);
    }
}
