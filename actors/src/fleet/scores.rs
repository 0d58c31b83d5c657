//! What a shard does with what its detectors found (`anomalies.rs`): each kept score is
//! logged, counted, and queued for the store writer's next batch (at most
//! `anomaly.max_pending`, the oldest dropped and counted past it); fields left unscored are
//! counted; a device whose detectors wait for their history is queued for its read
//! (`history.rs`).

use super::anomalies::Scored;
use super::shard::FleetShard;
use crate::observe::Event;
use crate::store::AnomalyRow;

impl FleetShard {
    pub(super) fn scored(&mut self, device_id: &str, scored: Scored) {
        if scored.wants_history {
            if let Some(id) = self.book.key(device_id) {
                self.histories.want(id);
            }
        }
        let metrics = self.telemetry.metrics();
        metrics.anomaly_series_untracked.inc_by(scored.untracked);
        if scored.fleet_full {
            if let Some(detection) = &self.detection {
                Event::AnomalySeriesFull {
                    max_series: detection.max_series(),
                }
                .emit(&self.telemetry);
            }
        }
        for found in scored.found {
            Event::AnomalyFound {
                device_id,
                sensor_type: &found.sensor_type,
                field: &found.field,
                score: found.score,
            }
            .emit(&self.telemetry);
            if self.anomalies.len() >= self.max_pending_anomalies {
                self.anomalies.pop_front();
                Event::AnomaliesDropped { dropped: 1 }.emit(&self.telemetry);
            }
            self.anomalies.push_back(AnomalyRow {
                id: 0,
                device_id: device_id.to_owned(),
                sensor_type: found.sensor_type,
                ts: found.ts,
                field: found.field,
                score: found.score,
                received_at: found.received_at,
            });
        }
    }
}
