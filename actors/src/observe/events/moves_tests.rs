//! Every event, emitted, writes its one record and moves exactly the metric families it
//! names in `MOVES`: an event that logs but forgets its counter fails here, and so does
//! one that counts what it does not name. Each event has an example below, and a test
//! holds the examples to `Event::ALL_NAMES`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{emit, Event, Observe};
use crate::observe::{CapturedLogs, Metrics, Telemetry};

/// One event, ready to be emitted as often as a test needs.
struct Example {
    name: &'static str,
    moves: &'static [&'static str],
    emit: Box<dyn Fn(&Telemetry)>,
}

fn example<E: Observe + 'static>(event: E) -> Example {
    Example {
        name: E::NAME,
        moves: E::MOVES,
        emit: Box::new(move |telemetry| emit(&event, telemetry)),
    }
}

/// One of every event, with values that move every family it names (a count above
/// zero, a gauge set to what no other example sets it to).
fn every_example() -> Vec<Example> {
    let addr = SocketAddr::from(([127, 0, 0, 1], 1883));
    let took = Duration::from_millis(250);
    vec![
        example(Event::Listening { addr }),
        example(Event::TlsListening { addr }),
        example(Event::AcceptFailed {
            error: "too many open files",
            pause: took,
        }),
        example(Event::DeviceConnected {
            client_id: "robot_001",
            peer: addr,
            protocol: "5",
            keep_alive: 30,
            clean_start: false,
        }),
        example(Event::DeviceDisconnected {
            client_id: "robot_001",
            reason: "DISCONNECT",
        }),
        example(Event::ConnectionRefused {
            peer: addr,
            code: "bad_credentials",
            reason: "wrong password",
        }),
        example(Event::ProtocolError {
            client_id: "robot_001",
            error: "malformed packet",
        }),
        example(Event::TlsReloaded { error: None }),
        example(Event::CredentialsRevoked {
            device_id: Some("robot_001"),
            cause: "rotated",
            connections: 1,
        }),
        example(Event::RevocationsUnreadable {
            error: "permission denied",
            retry_in: took,
        }),
        example(Event::PublishReceived {
            client_id: "robot_001",
            qos: 1,
            bytes: 120,
        }),
        example(Event::AcksSent {
            client_id: "robot_001",
            pubacks: 2,
            pubrecs: 1,
        }),
        example(Event::OutcomesCommitted {
            client_id: "robot_001",
            messages: 3,
            waited: took,
        }),
        example(Event::MessageProcessed {
            client_id: "robot_001",
            topic: "devices/robot_001/telemetry",
            readings: 1,
            took,
        }),
        example(Event::MessageRejected {
            client_id: "robot_001",
            topic: "devices/robot_001/telemetry",
            class: "json",
            reason: "payload is not valid JSON",
        }),
        example(Event::WillPublished {
            client_id: "robot_001",
            topic: "devices/robot_001/status",
        }),
        example(Event::StoreOpened {
            version: 7,
            migrated_from: Some(6),
        }),
        example(Event::BatchCommitted {
            rows: 10,
            duplicates: 1,
            dead_letters: 1,
            took,
        }),
        example(Event::StoreFailed {
            error: "disk I/O error",
            requests: 2,
        }),
        example(Event::StoreRetry {
            rows: 10,
            wait: took,
            error: "database is locked",
        }),
        example(Event::DeadLettersShed {
            rows: 4,
            bytes: 4096,
            quota: 1 << 20,
        }),
        example(Event::GenerationMerged {
            readings: 2000,
            took,
        }),
        example(Event::ChunksExpired {
            chunks: 2,
            readings: 5000,
            retention: Duration::from_secs(86_400),
        }),
        example(Event::ActorPanicked { panic: "boom" }),
        example(Event::ActorRestarting {
            actor: "processor-0",
            restarts: 1,
            in_window: 1,
            delay: took,
            reason: "stopped",
        }),
        example(Event::Escalated {
            actor: "store_writer",
            restarts: 5,
            window: took,
        }),
        example(Event::BreakerTransition {
            breaker: "store",
            from: "closed",
            to: "open",
            reason: "commits failing",
        }),
        example(Event::DeviceBreakerTripped {
            client_id: "robot_001",
            reason: "rejections",
            cooldown: took,
        }),
        example(Event::DeviceRefused {
            client_id: "robot_001",
            reason: "rejections",
            retry_after: took,
        }),
        example(Event::UpstreamConnected {
            connection: "upstream-0",
            broker: "broker:8883",
            session_present: true,
        }),
        example(Event::UpstreamSessionLost {
            connection: "upstream-0",
        }),
        example(Event::UpstreamConnectFailed {
            connection: "upstream-0",
            error: "connection refused",
            attempt: 1,
            retry_in: took,
        }),
        example(Event::UpstreamSubscribed {
            connection: "upstream-0",
            filters: 1,
            refused: "",
        }),
        example(Event::UpstreamDisconnected {
            connection: "upstream-0",
            reason: "server shutting down",
        }),
        example(Event::UpstreamNotStored {
            connection: "upstream-0",
            messages: 3,
            error: "store failed",
        }),
        example(Event::DeviceStatusChanged {
            device_id: "robot_001",
            from: Some("online"),
            to: "late",
            reason: "late: silent for 1.0s",
        }),
        example(Event::FleetLoaded {
            shard: 0,
            devices: [1, 2, 3, 4],
        }),
        example(Event::FleetUnloaded {
            shard: 0,
            devices: [1, 2, 3, 4],
        }),
        example(Event::DeviceForgotten {
            device_id: "robot_001",
            status: "offline",
        }),
        example(Event::FleetFull { max_devices: 10 }),
        example(Event::DeviceEventsDropped { dropped: 2 }),
        example(Event::AnomalyFound {
            device_id: "robot_001",
            sensor_type: "temperature",
            field: "value",
            score: 0.97,
        }),
        example(Event::AnomalySeriesFull { max_series: 10 }),
        example(Event::AnomaliesDropped { dropped: 2 }),
        example(Event::AlertChanged {
            rule: "hot",
            device_id: "robot_001",
            severity: "critical",
            to: "fired",
            summary: "temperature.value 31 > 30",
            silenced: false,
        }),
        example(Event::AlertNotified {
            event_id: 3,
            attempts: 2,
        }),
        example(Event::AlertNotificationFailed {
            event_id: 3,
            attempt: 1,
            error: "503",
            gave_up: false,
        }),
        example(Event::AlertChangesDropped { dropped: 2 }),
        example(Event::AlertRuleLeftOut { rule: "too_hot" }),
        example(Event::SelfAlertNotificationFailed {
            key: "eliot-disk-1-fired",
            attempt: 1,
            error: "the webhook answered 503",
            gave_up: false,
        }),
        example(Event::SelfAlertsNotSaved {
            path: std::path::Path::new("/data/self_alerts.json"),
            error: "No space left on device",
        }),
        example(Event::DeadLettersReplayed {
            accepted: 3,
            rejected: 2,
            gone: 1,
            took,
        }),
        example(Event::DeviceReadingsPurged {
            device_id: "robot_001",
            readings: 12,
            took,
        }),
        example(Event::StartFailed {
            error: "address in use",
        }),
        example(Event::DescriptorLimit {
            limit: Some(1024),
            wanted: 20_100,
            max_connections: 900,
            error: None,
        }),
        example(Event::Hangup { tls: true }),
        example(Event::HttpListening {
            addr,
            api_tokens: 2,
        }),
        example(Event::HttpFailed {
            error: "address in use",
        }),
        example(Event::ShutdownStarted { deadline: took }),
        example(Event::ShutdownFinished {
            took,
            forced: false,
        }),
    ]
}

/// Eliot's families in a scrape, by the name their `# HELP` line opens with, each with
/// its lines sorted (a family's series come in no fixed order).
fn families(scrape: &str) -> BTreeMap<String, Vec<String>> {
    let mut families: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = None;
    for line in scrape.lines() {
        if let Some(declared) = line.strip_prefix("# HELP ") {
            current = declared.split_whitespace().next().map(str::to_owned);
        }
        if let Some(name) = current.as_ref().filter(|name| name.starts_with("eliot_")) {
            families
                .entry(name.clone())
                .or_default()
                .push(line.to_owned());
        }
    }
    families.values_mut().for_each(|lines| lines.sort());
    families
}

#[test]
fn there_is_one_example_of_every_event() {
    let mut examples: Vec<&str> = every_example().iter().map(|e| e.name).collect();
    let mut events = Event::ALL_NAMES.to_vec();
    examples.sort();
    events.sort();
    assert_eq!(examples, events);
}

#[test]
fn every_event_moves_exactly_the_families_it_names() {
    let examples = every_example();
    for (i, event) in examples.iter().enumerate() {
        // Every other event first: a gauge this one sets has been set elsewhere by then.
        let telemetry = Telemetry::discard();
        let others = examples.iter().enumerate().filter(|(j, _)| *j != i);
        others.for_each(|(_, other)| (other.emit)(&telemetry));
        let before = families(&telemetry.metrics().encode());
        (event.emit)(&telemetry);
        let after = families(&telemetry.metrics().encode());
        let moved: Vec<&str> = after
            .iter()
            .filter(|(family, lines)| before.get(*family) != Some(*lines))
            .map(|(family, _)| family.as_str())
            .collect();
        let mut named = event.moves.to_vec();
        named.sort();
        assert_eq!(moved, named, "what `{}` moves", event.name);
    }
}

#[test]
fn every_event_writes_one_record_under_its_name() {
    for event in every_example() {
        let logs = CapturedLogs::default();
        (event.emit)(&Telemetry::new(logs.logger(), Default::default()));
        let records = logs.records();
        assert_eq!(records.len(), 1, "{}: {records:?}", event.name);
        assert_eq!(records[0]["event"], event.name);
    }
}

#[test]
fn with_metrics_disabled_events_only_log() {
    let discard = slog::Logger::root(slog::Discard, slog::o!());
    let telemetry = Telemetry::new(discard, Arc::new(Metrics::disabled()));
    let untouched = families(&telemetry.metrics().encode());
    every_example().iter().for_each(|e| (e.emit)(&telemetry));
    assert_eq!(families(&telemetry.metrics().encode()), untouched);
}
