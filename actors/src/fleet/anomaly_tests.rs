//! Anomaly detection through the shards: readings told to the fleet are scored, a score
//! at or above the floor reaches the database through the store writer and the handle
//! reads it back, the device's figure shows it, and a forgotten device gives its series'
//! room back.

use super::handle_tests::{one_reading, start, until};
use super::*;
use crate::message::Outcome;
use crate::store::AnomalyQuery;

/// One reading of `device`'s temperature, `n` seconds after a fixed start.
fn temperature(device: &str, n: i64, value: f64) -> Outcome {
    let ts = time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1_700_000_000 + n);
    one_reading(
        device,
        "temperature",
        ts,
        format!(r#"{{"value":{value},"seq":{n}}}"#),
    )
}

#[actix::test]
async fn a_jump_is_scored_kept_stored_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(dir.path(), FleetSettings::for_tests());
    let handle = h.fleet.handle.clone();
    // A steady wave, then one reading far from anything seen.
    let outcomes: Vec<Outcome> = (0..400)
        .map(|n| {
            let wave = 20.0 + (n as f64 / 10.0).sin();
            temperature("t1", n, if n == 399 { 90.0 } else { wave })
        })
        .collect();
    for chunk in outcomes.chunks(50) {
        let notes = h.fleet.feed.notes(chunk);
        h.fleet
            .feed
            .observe(&Source::Upstream, notes.into_iter().flatten())
            .await;
    }
    until("the jump kept", async || {
        handle.get("t1").await.unwrap().is_some_and(|d| {
            d.anomaly.is_some_and(|a| {
                a.last_kept
                    .is_some_and(|k| k.ts.starts_with("2023-11-14T22:19:59"))
            })
        })
    })
    .await;
    let figure = handle.get("t1").await.unwrap().unwrap().anomaly.unwrap();
    let fields: Vec<&str> = figure.series.iter().map(|s| s.field.as_str()).collect();
    assert_eq!(fields, ["value"], "`seq` is a counter, never scored");
    assert!(figure.score >= 0.5, "{figure:?}");

    h.fleet.flush().await;
    let query = AnomalyQuery {
        device_id: "t1".into(),
        within: (0, i64::MAX / 2),
        after: None,
        limit: 100,
    };
    let mut stored = Vec::new();
    until("the jump stored", async || {
        stored = handle.anomalies(query.clone()).await.unwrap();
        !stored.is_empty()
    })
    .await;
    let last = stored.last().unwrap();
    assert_eq!(
        (last.sensor_type.as_str(), last.field.as_str()),
        ("temperature", "value")
    );
    assert_eq!(
        last.ts,
        (1_700_000_000 + 399) * 1_000_000,
        "the reading's key"
    );
    assert_eq!(
        stored.len() as u64,
        figure.kept,
        "every kept score is stored"
    );
    let within = AnomalyQuery {
        within: (0, last.ts),
        ..query
    };
    assert!(handle.anomalies(within).await.unwrap().len() < stored.len());

    let detection = h.detection.clone();
    assert_eq!(detection.series(), 1);
    assert!(handle.forget("t1").await.unwrap());
    assert_eq!(
        detection.series(),
        0,
        "a forgotten device's series are given back"
    );
}
