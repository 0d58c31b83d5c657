//! The events' tests: each logs and counts, and README lists exactly the events there are.

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
    /// The event names in `Event::name`, read from this file's source.
    fn names_in_code() -> Vec<String> {
        let source = include_str!("../events.rs");
        let start = source.find("pub fn name(&self)").expect("Event::name");
        let end = start + source[start..].find("\n    }\n").expect("its end");
        source[start..end]
            .lines()
            .filter_map(|line| line.split_once("} => \"")?.1.split_once('"'))
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    /// The events README's "Logs" table lists, in its order.
    fn names_in_readme() -> Vec<String> {
        let readme = include_str!("../../../../README.md");
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
        let readme = include_str!("../../../../README.md");
        for class in crate::ingest::REJECTION_CLASSES {
            assert!(readme.contains(&format!("`{class}`")), "{class}");
        }
    }
}
