//! The events' tests: each logs and counts, and docs/operations.md lists exactly the events
//! and metrics there are.

use super::*;

mod emit {
    use super::*;

    #[test]
    fn an_event_logs_its_record_and_updates_its_metric() {
        let logs = crate::observe::CapturedLogs::default();
        let telemetry = Telemetry::new(logs.logger(), Default::default());
        for class in ["json", "json", "range"] {
            Event::MessageRejected {
                client_id: "robot_007",
                topic: "devices/robot_007/telemetry",
                class,
                reason: "payload is not valid JSON",
            }
            .emit(&telemetry);
        }
        assert_eq!(logs.events("message_rejected").len(), 3);
        assert_eq!(logs.events("message_rejected")[0]["class"], "json");
        let text = telemetry.metrics().encode();
        assert!(
            text.contains("eliot_messages_rejected_total{class=\"json\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("eliot_messages_rejected_total{class=\"range\"} 1"),
            "{text}"
        );
        assert!(
            !text.contains("robot_007"),
            "no device id in a metric: {text}"
        );
    }
}

mod readme {
    /// The name of every event there is.
    fn names_in_code() -> Vec<String> {
        let names = crate::observe::Event::ALL_NAMES;
        names.iter().map(|name| name.to_string()).collect()
    }

    /// The events the "Logs" table of docs/operations.md lists, in its order.
    fn names_in_readme() -> Vec<String> {
        let readme = include_str!("../../../../docs/operations.md");
        let logs = readme.split("\n## Logs\n").nth(1).expect("a Logs section");
        let logs = logs.split("\n## ").next().unwrap_or(logs);
        logs.lines()
            .filter_map(|line| line.strip_prefix("| `")?.split_once('`'))
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    #[test]
    fn readme_lists_exactly_the_events_the_code_emits() {
        let (mut code, mut readme) = (names_in_code(), names_in_readme());
        assert!(code.contains(&"start_failed".to_owned()), "{code:?}");
        code.sort();
        readme.sort();
        assert_eq!(readme, code);
    }

    #[test]
    fn readme_lists_exactly_the_rejection_classes() {
        let readme = include_str!("../../../../docs/operations.md");
        for class in crate::observe::REJECTION_CLASSES {
            assert!(readme.contains(&format!("`{class}`")), "{class}");
        }
    }
}

mod metrics_readme {
    use super::*;
    use std::time::Duration;

    /// The metric names a scrape declares (`# TYPE` lines), once every family has a series.
    fn names_in_scrape() -> Vec<String> {
        let telemetry = Telemetry::discard();
        Event::BreakerTransition {
            breaker: "store",
            from: "closed",
            to: "open",
            reason: "test",
        }
        .emit(&telemetry);
        Event::ActorRestarting {
            actor: "processor-0",
            restarts: 1,
            in_window: 1,
            delay: Duration::ZERO,
            reason: "test",
        }
        .emit(&telemetry);
        Event::UpstreamConnected {
            connection: "upstream-0",
            broker: "broker:8883",
            session_present: true,
        }
        .emit(&telemetry);
        let text = telemetry.metrics().encode();
        let mut names: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE ")?.split_whitespace().next())
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }

    fn names_in_readme() -> Vec<String> {
        let readme = include_str!("../../../../docs/operations.md");
        let table = readme
            .split("\n### Every metric\n")
            .nth(1)
            .expect("an Every metric section");
        let table = table.split("\n\n").next().unwrap_or_default();
        let mut names: Vec<String> = table
            .lines()
            .filter_map(|line| line.strip_prefix("| `")?.split_once('`'))
            .map(|(name, _)| name.to_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn readme_lists_exactly_the_metrics_a_scrape_declares() {
        let scrape = names_in_scrape();
        assert!(
            scrape.contains(&"eliot_restarts_total".to_owned()),
            "{scrape:?}"
        );
        assert_eq!(names_in_readme(), scrape);
    }
}

mod bounded {
    use super::*;

    #[test]
    fn a_logged_value_is_cut_and_its_control_characters_escaped() {
        let logs = crate::observe::CapturedLogs::default();
        let telemetry = Telemetry::new(logs.logger(), Default::default());
        let topic = format!(
            "devices/x\n2026-01-01 FAKE LINE\x1b[31m/{}",
            "y".repeat(100_000)
        );
        Event::MessageRejected {
            client_id: "robot_007",
            topic: &topic,
            class: "topic",
            reason: "r",
        }
        .emit(&telemetry);
        let record = &logs.events("message_rejected")[0];
        let logged = &record["topic"];
        assert!(logged.len() < LOG_VALUE_MAX + 64, "{} bytes", logged.len());
        assert!(
            logged.ends_with(&format!("…[cut: {} bytes in all]", topic.len())),
            "{logged}"
        );
        assert!(!logged.chars().any(char::is_control), "{logged:?}");
        assert!(
            logged.contains("\\n2026-01-01 FAKE LINE\\u{1b}[31m"),
            "{logged}"
        );
    }
}
