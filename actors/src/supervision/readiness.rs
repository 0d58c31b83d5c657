//! Readiness: whether Eliot should be sent devices now. It is ready when the device
//! endpoint is running, the store commits (its breaker closed, no backlog older than the
//! bound), nothing has failed, and it is not shutting down. A pure function of the health
//! report, so the HTTP endpoint and the tests judge alike.

use std::time::Duration;

use super::circuit::BreakerState;
use super::health_monitor::{ChildState, HealthReport, Status};

/// The device endpoint's child name (`endpoint::DEVICE_ENDPOINT`; supervision depends on
/// no other part).
const ENDPOINT: &str = "device_endpoint";

/// `Ok` when ready; otherwise every reason it is not, as sentences. Without a device
/// endpoint (`mqtt.enabled = false`), its state is not asked.
pub fn readiness(
    report: &HealthReport,
    shutting_down: bool,
    max_backlog_age: Duration,
) -> Result<(), Vec<String>> {
    let mut reasons = Vec::new();
    if shutting_down {
        reasons.push("shutting down: intake has stopped".to_owned());
    }
    if let Some(condition) = &report.store.condition {
        reasons.push(format!("the store takes no writes: {condition}"));
    }
    if report.status == Status::Failed {
        reasons.push("a part of Eliot failed past its restart intensity".to_owned());
    }
    match report.child(ENDPOINT).map(|c| c.state) {
        Some(ChildState::Running) | None => {}
        Some(state) => reasons.push(format!("the device endpoint is {}", state.name())),
    }
    // The upstream broker's state is in /health: its outage does not stop Eliot from
    // taking devices and committing, which is what readiness answers.
    for breaker in report.breakers.iter().filter(|b| b.name != "upstream") {
        if breaker.state != BreakerState::Closed {
            reasons.push(format!(
                "the {} breaker is {}: {}",
                breaker.name,
                breaker.state.name(),
                breaker.reason
            ));
        }
    }
    let max_ms = u64::try_from(max_backlog_age.as_millis()).unwrap_or(u64::MAX);
    if let Some(age) = report.store.backlog_age_ms.filter(|age| *age > max_ms) {
        reasons.push(format!(
            "the store has {} rows waiting for {age} ms, more than {max_ms} ms",
            report.store.backlog_rows
        ));
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::super::health_monitor::{BreakerHealth, ChildHealth};
    use super::super::store_progress::StoreHealth;
    use super::*;

    fn report() -> HealthReport {
        HealthReport {
            status: Status::Healthy,
            children: vec![ChildHealth {
                name: ENDPOINT.into(),
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

    const BOUND: Duration = Duration::from_secs(2);

    #[test]
    fn a_healthy_tree_is_ready() {
        assert_eq!(readiness(&report(), false, BOUND), Ok(()));
    }

    #[test]
    fn every_reason_is_given() {
        let mut r = report();
        r.children[0].state = ChildState::Restarting;
        r.breakers[0].state = BreakerState::Open;
        r.breakers[0].reason = "3 failures in a row".into();
        r.store.backlog_rows = 40;
        r.store.backlog_age_ms = Some(2_500);
        let reasons = readiness(&r, true, BOUND).unwrap_err();
        assert_eq!(
            reasons,
            [
                "shutting down: intake has stopped",
                "the device endpoint is restarting",
                "the store breaker is open: 3 failures in a row",
                "the store has 40 rows waiting for 2500 ms, more than 2000 ms",
            ]
        );
    }

    #[test]
    fn without_a_device_endpoint_or_with_the_upstream_broker_down_eliot_is_ready() {
        let mut r = report();
        r.children.clear();
        r.breakers[0].name = "upstream".into();
        r.breakers[0].state = BreakerState::Open;
        assert_eq!(readiness(&r, false, BOUND), Ok(()));
    }

    #[test]
    fn a_young_backlog_is_normal() {
        let mut r = report();
        r.store.backlog_rows = 4_096;
        r.store.backlog_age_ms = Some(1_999);
        assert_eq!(readiness(&r, false, BOUND), Ok(()));
    }
}
