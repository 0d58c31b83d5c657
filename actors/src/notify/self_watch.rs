//! `SelfWatch`: the `eliot` rules, about Eliot itself (a breaker open, the store failing,
//! its disk full). Not a device's state, so not a shard's: once a second it reads the
//! health report (in memory, no database), judges each `eliot` rule through the same
//! machine as the devices' alerts (pending for `for`, firing, resolved), logs each change
//! and sends the webhook itself, since the store it would otherwise go through may be the
//! very thing failing.
//!
//! - Its alerts' state is a small JSON file in the data directory (`self_alerts.json`,
//!   replaced whole on each firing and resolution): after a restart, an alert that was
//!   firing is still firing, so it is not notified again while its condition holds, and
//!   its resolution is notified once the condition is found cleared.
//! - Notifications wait in a bounded queue (`MAX_WAITING`; the oldest dropped past it,
//!   logged), sent one at a time in order, retried with the webhook's backoff up to its
//!   `max_attempts`; they are not kept across a restart (the state file is: a firing
//!   alert still resolves and is notified).
//! - A silence of the rule (with no device) holds it: recorded, logged, not notified.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::fleet::{
    now_micros, AlertPhase as Phase, AlertSlot as Slot, AlertTransition as Transition, Alerting,
    EliotCondition, RuleKind as Kind, WebhookSettings,
};
use crate::message::format_micros;
use crate::observe::{Event, Telemetry};
use crate::store::STORE_WRITER;
use crate::supervision::{BreakerState, ChildState, HealthProbe, HealthReport};
use crate::webhook::{post, sign, WebhookUrl};

use super::notifier::backoff;

pub const NAME: &str = "self_watch";

/// How often the health report is judged.
const EVERY: Duration = Duration::from_secs(1);
/// Notifications waiting at most; past it the oldest is dropped.
pub const MAX_WAITING: usize = 100;
/// Rows waiting this long mean a store that is not committing, whatever it says.
const STUCK_MS: u64 = 30_000;
/// What stands for the device in the log (no device id has parentheses).
const ELIOT: &str = "(eliot)";
/// The state file, in the data directory.
pub const STATE_FILE: &str = "self_alerts.json";

/// The rule's condition holds on `report`: why, in words; `None` if it does not.
pub fn judge(condition: EliotCondition, report: &HealthReport) -> Option<String> {
    let breaker = |name: Option<&str>| {
        report
            .breakers
            .iter()
            .filter(|b| name.is_none_or(|n| b.name == n))
            .find(|b| b.state != BreakerState::Closed)
            .map(|b| format!("the {} breaker is {}: {}", b.name, b.state.name(), b.reason))
    };
    match condition {
        EliotCondition::BreakerOpen => breaker(None),
        EliotCondition::DiskFull => report
            .store
            .condition
            .as_ref()
            .map(|c| format!("the store takes no writes: {c}")),
        EliotCondition::StoreFailing => {
            let writer = report
                .child(STORE_WRITER)
                .filter(|c| c.state != ChildState::Running)
                .map(|c| format!("the store writer is {}", c.state.name()));
            let stuck = report
                .store
                .backlog_age_ms
                .filter(|age| *age > STUCK_MS)
                .map(|age| {
                    format!(
                        "{} rows have waited {age} ms for a commit",
                        report.store.backlog_rows
                    )
                });
            let full = judge(EliotCondition::DiskFull, report);
            writer.or_else(|| breaker(Some("store"))).or(full).or(stuck)
        }
    }
}

/// What the state file keeps of each alert that is raised.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Kept {
    phase: String,
    since: i64,
}

struct Notification {
    key: String,
    body: Vec<u8>,
    attempts: u32,
    not_before: Instant,
}

pub struct SelfWatch {
    alerting: Arc<Alerting>,
    probe: HealthProbe,
    webhook: Option<(WebhookSettings, WebhookUrl)>,
    state_path: PathBuf,
    slots: BTreeMap<String, Slot>,
    waiting: VecDeque<Notification>,
    busy: bool,
    judging: bool,
    telemetry: Telemetry,
}

impl SelfWatch {
    /// `webhook`: the configured one, if any (its URL was validated).
    pub fn new(
        alerting: Arc<Alerting>,
        probe: HealthProbe,
        webhook: Option<WebhookSettings>,
        data_dir: PathBuf,
        telemetry: &Telemetry,
    ) -> SelfWatch {
        let webhook = webhook.and_then(|w| WebhookUrl::parse(&w.url).ok().map(|u| (w, u)));
        let state_path = data_dir.join(STATE_FILE);
        let slots = std::fs::read(&state_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<BTreeMap<String, Kept>>(&bytes).ok())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(rule, kept)| {
                let phase = Phase::parse(&kept.phase)?;
                let slot = Slot {
                    phase,
                    since: kept.since,
                    ..Slot::default()
                };
                Some((rule, slot))
            })
            .collect();
        SelfWatch {
            alerting,
            probe,
            webhook,
            state_path,
            slots,
            waiting: VecDeque::new(),
            busy: false,
            judging: false,
            telemetry: telemetry.for_actor(NAME),
        }
    }

    fn look(&mut self, ctx: &mut Context<Self>) {
        if self.judging {
            return;
        }
        self.judging = true;
        let probe = self.probe.clone();
        async move { probe.report().await }
            .into_actor(self)
            .map(|report, watch, ctx| {
                watch.judging = false;
                if let Some(report) = report {
                    watch.judge_all(&report, now_micros());
                }
                watch.send_next(ctx);
            })
            .spawn(ctx);
    }

    /// Every `eliot` rule on `report`; an alert whose rule is gone resolves.
    fn judge_all(&mut self, report: &HealthReport, now: i64) {
        let rules = self.alerting.rules();
        let mut changed = false;
        let mut seen = Vec::new();
        for (_, rule) in rules.iter() {
            let Kind::Eliot(condition) = rule.kind else {
                continue;
            };
            seen.push(rule.name.clone());
            let why = judge(condition, report);
            let slot = self.slots.entry(rule.name.clone()).or_default();
            let transition = slot
                .judge(why.is_some(), None, now, rule.hold)
                .or_else(|| slot.tick(now, rule.hold));
            if let Some(transition) = transition {
                let summary = why.unwrap_or_else(|| format!("{}: cleared", condition.name()));
                changed |=
                    self.changed(&rule.name, rule.severity.name(), transition, &summary, now);
            }
        }
        let gone: Vec<String> = self
            .slots
            .keys()
            .filter(|name| !seen.contains(name))
            .cloned()
            .collect();
        for name in gone {
            let Some(slot) = self.slots.remove(&name) else {
                continue;
            };
            if slot.phase == Phase::Firing {
                let summary = "its rule was removed";
                self.changed(&name, "warning", Transition::Resolved, summary, now);
            }
            changed = true;
        }
        self.slots.retain(|_, slot| slot.raised());
        if changed {
            self.save();
        }
    }

    /// Logs a change and queues its notification; true if the state file must follow.
    fn changed(
        &mut self,
        rule: &str,
        severity: &'static str,
        transition: Transition,
        summary: &str,
        now: i64,
    ) -> bool {
        let to = match transition {
            Transition::Pending => "pending",
            Transition::Fired => "fired",
            Transition::Resolved => "resolved",
            Transition::Cancelled => "cancelled",
        };
        let silenced = self.alerting.silences.covers(rule, ELIOT, now);
        Event::AlertChanged {
            rule,
            device_id: ELIOT,
            severity,
            to,
            summary,
            silenced,
        }
        .emit(&self.telemetry);
        let Some(event) = transition.event() else {
            return false;
        };
        if !silenced && self.webhook.is_some() {
            if self.waiting.len() >= MAX_WAITING {
                if let Some(dropped) = self.waiting.pop_front() {
                    Event::SelfAlertNotificationFailed {
                        key: &dropped.key,
                        attempt: dropped.attempts,
                        error: &format!("more than {MAX_WAITING} notifications waiting"),
                        gave_up: true,
                    }
                    .emit(&self.telemetry);
                }
            }
            let key = format!("eliot-{rule}-{now}-{event}");
            let body = json!({
                "id": key,
                "rule": rule,
                "device_id": null,
                "event": event,
                "severity": severity,
                "at": format_micros(now),
                "value": null,
                "summary": summary,
            });
            self.waiting.push_back(Notification {
                key,
                body: body.to_string().into_bytes(),
                attempts: 0,
                not_before: Instant::now(),
            });
        }
        true
    }

    /// Replaces the state file whole (write, sync, rename); a failure is logged, and the
    /// file is written again at the next change.
    fn save(&self) {
        let kept: BTreeMap<&String, Kept> = self
            .slots
            .iter()
            .filter_map(|(rule, slot)| {
                let phase = slot.phase.stored()?;
                Some((
                    rule,
                    Kept {
                        phase: phase.to_owned(),
                        since: slot.since,
                    },
                ))
            })
            .collect();
        let written = serde_json::to_vec(&kept)
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                let temporary = self.state_path.with_extension("json.new");
                let mut file = std::fs::File::create(&temporary)?;
                std::io::Write::write_all(&mut file, &bytes)?;
                file.sync_all()?;
                std::fs::rename(&temporary, &self.state_path)
            });
        if let Err(error) = written {
            Event::SelfAlertsNotSaved {
                path: &self.state_path,
                error: &error.to_string(),
            }
            .emit(&self.telemetry);
        }
    }

    fn send_next(&mut self, ctx: &mut Context<Self>) {
        let Some((settings, url)) = self.webhook.clone() else {
            return;
        };
        let Some(head) = self.waiting.front() else {
            return;
        };
        if self.busy || head.not_before > Instant::now() {
            return;
        }
        let timestamp = now_micros() / 1_000_000;
        let mut headers = vec![
            ("X-Eliot-Event-Id", head.key.clone()),
            ("X-Eliot-Timestamp", timestamp.to_string()),
        ];
        if !settings.secret.is_empty() {
            let signature = sign(settings.secret.expose().as_bytes(), timestamp, &head.body);
            headers.push(("X-Eliot-Signature", signature));
        }
        let body = head.body.clone();
        self.busy = true;
        async move {
            let headers: Vec<(&str, String)> = headers;
            post(&url, &body, &headers, settings.timeout).await
        }
        .into_actor(self)
        .map(|answer, watch, ctx| {
            watch.busy = false;
            watch.attempted(answer);
            watch.send_next(ctx);
        })
        .spawn(ctx);
    }

    fn attempted(&mut self, answer: Result<u16, String>) {
        let Some((settings, _)) = &self.webhook else {
            return;
        };
        let Some(head) = self.waiting.front_mut() else {
            return;
        };
        head.attempts += 1;
        let error = match answer {
            Ok(status) if (200..300).contains(&status) => {
                self.waiting.pop_front();
                return;
            }
            Ok(status) => format!("the webhook answered {status}"),
            Err(e) => e,
        };
        let gave_up = head.attempts >= settings.max_attempts;
        Event::SelfAlertNotificationFailed {
            key: &head.key,
            attempt: head.attempts,
            error: &error,
            gave_up,
        }
        .emit(&self.telemetry);
        if gave_up {
            self.waiting.pop_front();
        } else {
            head.not_before = Instant::now() + backoff(settings, head.attempts);
        }
    }
}

impl Actor for SelfWatch {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(EVERY, |watch, ctx| watch.look(ctx));
    }
}

impl Supervised for SelfWatch {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.busy = false;
        self.judging = false;
    }
}

crate::answers_pings!(SelfWatch);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::{AlertSettings, RuleConfig, RuleSet, Silences};
    use crate::settings::Problems;
    use crate::supervision::{BreakerHealth, ChildHealth, HealthMonitor, Status, StoreHealth};

    fn healthy() -> HealthReport {
        HealthReport {
            status: Status::Healthy,
            children: vec![ChildHealth {
                name: STORE_WRITER.into(),
                state: ChildState::Running,
                restarts: 0,
                restarts_in_window: 0,
                last_failure: None,
            }],
            breakers: vec![BreakerHealth {
                name: "store".into(),
                state: BreakerState::Closed,
                reason: String::new(),
            }],
            store: StoreHealth::default(),
            upstream: Vec::new(),
        }
    }

    #[test]
    fn each_condition_is_read_from_the_health_report() {
        use EliotCondition::*;
        let all = [BreakerOpen, StoreFailing, DiskFull];
        assert!(all.iter().all(|c| judge(*c, &healthy()).is_none()));

        let mut full = healthy();
        full.store.condition = Some("database or disk is full".into());
        assert_eq!(
            judge(DiskFull, &full).as_deref(),
            Some("the store takes no writes: database or disk is full")
        );
        assert!(
            judge(StoreFailing, &full).is_some(),
            "a full store is failing"
        );
        assert!(judge(BreakerOpen, &full).is_none());

        let mut open = healthy();
        open.breakers[0].state = BreakerState::Open;
        open.breakers[0].reason = "3 failures in a row".into();
        assert_eq!(
            judge(BreakerOpen, &open).as_deref(),
            Some("the store breaker is open: 3 failures in a row")
        );
        assert!(judge(StoreFailing, &open).is_some());

        let mut guard = healthy();
        guard.breakers.push(BreakerHealth {
            name: "upstream".into(),
            state: BreakerState::HalfOpen,
            reason: "probing".into(),
        });
        assert!(judge(BreakerOpen, &guard).is_some());
        assert!(
            judge(StoreFailing, &guard).is_none(),
            "not the store's breaker"
        );

        let mut down = healthy();
        down.children[0].state = ChildState::Restarting;
        assert_eq!(
            judge(StoreFailing, &down).as_deref(),
            Some("the store writer is restarting")
        );
        let mut stuck = healthy();
        stuck.store.backlog_rows = 12;
        stuck.store.backlog_age_ms = Some(STUCK_MS + 1);
        assert!(judge(StoreFailing, &stuck)
            .unwrap()
            .contains("12 rows have waited"));
        stuck.store.backlog_age_ms = Some(STUCK_MS);
        assert!(judge(StoreFailing, &stuck).is_none());
    }

    fn disk_rule(hold: Duration) -> RuleConfig {
        RuleConfig {
            name: "disk".into(),
            kind: "eliot".into(),
            condition: Some("disk_full".into()),
            r#for: Some(hold),
            ..RuleConfig::default()
        }
    }

    fn watch(dir: &std::path::Path, rules: &[RuleConfig]) -> SelfWatch {
        let mut problems = Problems::new();
        let set = RuleSet::compile(rules, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let mut settings = AlertSettings::for_tests(Vec::new());
        settings.webhook.url = "http://127.0.0.1:9/hook".into();
        let alerting = Arc::new(Alerting::new(
            &settings,
            set,
            Arc::new(Silences::new(Vec::new())),
        ));
        let telemetry = Telemetry::discard();
        let health = HealthMonitor::new(
            Duration::from_secs(1),
            Duration::from_secs(60),
            Default::default(),
            &telemetry,
        )
        .start();
        SelfWatch::new(
            alerting,
            HealthProbe::new(health),
            Some(settings.webhook),
            dir.to_owned(),
            &telemetry,
        )
    }

    fn events(watch: &SelfWatch) -> Vec<String> {
        watch
            .waiting
            .iter()
            .map(|n| {
                let body: serde_json::Value = serde_json::from_slice(&n.body).unwrap();
                format!(
                    "{} {}",
                    body["rule"].as_str().unwrap(),
                    body["event"].as_str().unwrap()
                )
            })
            .collect()
    }

    #[actix::test]
    async fn an_alert_held_for_its_for_fires_once_and_its_state_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut full = healthy();
        full.store.condition = Some("database or disk is full".into());
        let second = 1_000_000;

        let mut first = watch(dir.path(), &[disk_rule(Duration::from_secs(2))]);
        first.judge_all(&full, 10 * second);
        assert!(events(&first).is_empty(), "pending");
        first.judge_all(&full, 11 * second);
        first.judge_all(&full, 12 * second);
        first.judge_all(&full, 13 * second);
        assert_eq!(events(&first), ["disk fired"], "once");

        // Restarted (the queue is not kept, the state is): still firing, not notified
        // again while full; resolved, and notified, once it is not.
        let mut again = watch(dir.path(), &[disk_rule(Duration::from_secs(2))]);
        again.judge_all(&full, 20 * second);
        assert!(events(&again).is_empty());
        again.judge_all(&healthy(), 21 * second);
        assert_eq!(events(&again), ["disk resolved"]);
        let mut third = watch(dir.path(), &[disk_rule(Duration::from_secs(2))]);
        third.judge_all(&healthy(), 22 * second);
        assert!(events(&third).is_empty(), "resolved is kept too");
    }

    #[actix::test]
    async fn an_alert_whose_rule_is_gone_resolves() {
        let dir = tempfile::tempdir().unwrap();
        let mut full = healthy();
        full.store.condition = Some("full".into());
        let mut first = watch(dir.path(), &[disk_rule(Duration::ZERO)]);
        first.judge_all(&full, 1);
        assert_eq!(events(&first), ["disk fired"]);
        let mut without = watch(dir.path(), &[]);
        without.judge_all(&full, 2);
        assert_eq!(events(&without), ["disk resolved"]);
    }

    #[actix::test]
    async fn waiting_notifications_are_bounded_the_oldest_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut full = healthy();
        full.store.condition = Some("full".into());
        let mut flapping = watch(dir.path(), &[disk_rule(Duration::ZERO)]);
        for i in 0..MAX_WAITING as i64 {
            flapping.judge_all(&full, 2 * i);
            flapping.judge_all(&healthy(), 2 * i + 1);
        }
        assert_eq!(flapping.waiting.len(), MAX_WAITING);
        let last = flapping.waiting.back().unwrap();
        assert!(
            last.key
                .ends_with(&format!("-{}-resolved", 2 * MAX_WAITING - 1)),
            "{}",
            last.key
        );
    }
}
