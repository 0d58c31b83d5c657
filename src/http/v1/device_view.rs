//! A device as the API shows it: the fleet's `DeviceState` with an OpenAPI schema. Every
//! field is taken by destructuring, so a field added to the fleet's state does not
//! compile here until it is shown (and described) too.

use eliot_actors::{
    AnomalyKeptState, AnomalySeriesState, AnomalyState, Counts, DeviceEvent, DeviceState,
    DeviceStatus, LastReadingState, Presence, QualityState, QuarantineState, RhythmState,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

/// `quarantined` while quarantined, else the presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatusName {
    Online,
    Late,
    Offline,
    Quarantined,
}

impl From<DeviceStatus> for StatusName {
    fn from(s: DeviceStatus) -> StatusName {
        match s {
            DeviceStatus::Online => StatusName::Online,
            DeviceStatus::Late => StatusName::Late,
            DeviceStatus::Offline => StatusName::Offline,
            DeviceStatus::Quarantined => StatusName::Quarantined,
        }
    }
}

impl From<StatusName> for DeviceStatus {
    fn from(s: StatusName) -> DeviceStatus {
        match s {
            StatusName::Online => DeviceStatus::Online,
            StatusName::Late => DeviceStatus::Late,
            StatusName::Offline => DeviceStatus::Offline,
            StatusName::Quarantined => DeviceStatus::Quarantined,
        }
    }
}

/// Whether the device is heard: a connection is up or it reports on its rhythm (online),
/// it missed its rhythm (late), or neither (offline).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PresenceName {
    Online,
    Late,
    Offline,
}

/// A device's live state, counts and data quality.
#[derive(Serialize, ToSchema)]
pub struct DeviceView {
    #[schema(example = "robot_001")]
    pub device_id: String,
    pub status: StatusName,
    pub presence: PresenceName,
    /// When the status last changed (RFC 3339, UTC, microseconds).
    pub since: String,
    /// Why it changed, e.g. `connected`, `disconnected`, `missed its rhythm`.
    pub reason: String,
    /// The quarantine in force, if any.
    pub quarantine: Option<QuarantineView>,
    /// While a connection of the device endpoint carries it.
    pub connected_since: Option<String>,
    /// When it last sent anything.
    pub last_seen: Option<String>,
    /// The address it was last heard from.
    pub peer: Option<String>,
    /// `mqtt-3.1.1`, `mqtt-5` or `upstream`.
    pub protocol: Option<String>,
    /// The last reading of each sensor type.
    pub last_readings: Vec<LastReadingView>,
    pub counts: CountsView,
    pub quality: QualityView,
    /// The learnt reporting interval, once sampled.
    pub rhythm: Option<RhythmView>,
    /// Its anomaly scores, once a reading was scored (docs/anomaly.md).
    pub anomaly: Option<AnomalyFigure>,
}

/// A device's anomaly scores, live.
#[derive(Serialize, ToSchema)]
pub struct AnomalyFigure {
    /// The highest of its series' latest scores, 0 to 1.
    pub score: f64,
    /// Scores kept (at or above `anomaly.floor`) since Eliot started.
    pub kept: u64,
    /// The last score kept.
    pub last_kept: Option<KeptAnomalyView>,
    /// Each series scored (a sensor type's numeric field), with its latest score.
    pub series: Vec<SeriesView>,
}

#[derive(Serialize, ToSchema)]
pub struct KeptAnomalyView {
    /// The reading's time.
    pub ts: String,
    pub sensor_type: String,
    pub field: String,
    pub score: f64,
}

#[derive(Serialize, ToSchema)]
pub struct SeriesView {
    pub sensor_type: String,
    /// The path of the field in `data`, dots between nested keys.
    pub field: String,
    pub score: f64,
}

impl From<AnomalyState> for AnomalyFigure {
    fn from(a: AnomalyState) -> AnomalyFigure {
        let AnomalyState {
            score,
            kept,
            last_kept,
            series,
        } = a;
        AnomalyFigure {
            score,
            kept,
            last_kept: last_kept.map(|k| {
                let AnomalyKeptState {
                    ts,
                    sensor_type,
                    field,
                    score,
                } = k;
                KeptAnomalyView {
                    ts,
                    sensor_type,
                    field,
                    score,
                }
            }),
            series: series
                .into_iter()
                .map(|s| {
                    let AnomalySeriesState {
                        sensor_type,
                        field,
                        score,
                    } = s;
                    SeriesView {
                        sensor_type,
                        field,
                        score,
                    }
                })
                .collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct QuarantineView {
    pub since: String,
    /// `null`: until released.
    pub until: Option<String>,
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct LastReadingView {
    #[schema(example = "gps")]
    pub sensor_type: String,
    /// The device's time for it.
    pub ts: String,
    /// Its `data` object.
    #[schema(value_type = Object)]
    pub data: Box<RawValue>,
}

#[derive(Serialize, ToSchema)]
pub struct CountsView {
    pub messages: u64,
    pub readings: u64,
    pub duplicates: u64,
    pub dead_letters: u64,
}

#[derive(Serialize, ToSchema)]
pub struct QualityView {
    pub duplicates: u64,
    pub out_of_order: u64,
    pub future_timestamps: u64,
    /// Gaps in the optional `seq` field of `data`.
    pub seq_gaps: u64,
    /// Receipt time minus reading time, rolling, in milliseconds (positive: behind).
    pub clock_skew_ms: f64,
    /// Rolling share of its messages refused, 0 to 1.
    pub rejection_rate: f64,
}

#[derive(Serialize, ToSchema)]
pub struct RhythmView {
    pub interval_ms: f64,
    pub spread_ms: f64,
    pub samples: u32,
}

/// One status change, as stored.
#[derive(Serialize, ToSchema)]
pub struct EventView {
    #[schema(example = 7)]
    pub id: i64,
    pub device_id: String,
    pub at: String,
    /// The status it changed to.
    #[schema(example = "offline")]
    pub status: String,
    pub reason: String,
}

impl From<DeviceEvent> for EventView {
    fn from(e: DeviceEvent) -> EventView {
        let DeviceEvent {
            id,
            device_id,
            at,
            status,
            reason,
        } = e;
        EventView {
            id,
            device_id,
            at,
            status,
            reason,
        }
    }
}

/// The `data` text as JSON (it was stored as JSON; a string of it were it not).
fn json(text: String) -> Box<RawValue> {
    RawValue::from_string(text).unwrap_or_else(|e| {
        RawValue::from_string(serde_json::Value::String(e.to_string()).to_string())
            .expect("a JSON string")
    })
}

impl From<DeviceState> for DeviceView {
    fn from(d: DeviceState) -> DeviceView {
        let DeviceState {
            device_id,
            status,
            presence,
            since,
            reason,
            quarantine,
            connected_since,
            last_seen,
            peer,
            protocol,
            last_readings,
            counts,
            quality,
            rhythm,
            anomaly,
        } = d;
        let Counts {
            messages,
            readings,
            duplicates,
            dead_letters,
        } = counts;
        let QualityState {
            duplicates: quality_duplicates,
            out_of_order,
            future_timestamps,
            seq_gaps,
            clock_skew_ms,
            rejection_rate,
        } = quality;
        DeviceView {
            device_id,
            status: status.into(),
            presence: match presence {
                Presence::Online => PresenceName::Online,
                Presence::Late => PresenceName::Late,
                Presence::Offline => PresenceName::Offline,
            },
            since,
            reason,
            quarantine: quarantine.map(|q| {
                let QuarantineState {
                    since,
                    until,
                    reason,
                } = q;
                QuarantineView {
                    since,
                    until,
                    reason,
                }
            }),
            connected_since,
            last_seen,
            peer,
            protocol,
            last_readings: last_readings
                .into_iter()
                .map(|r| {
                    let LastReadingState {
                        sensor_type,
                        ts,
                        data,
                    } = r;
                    LastReadingView {
                        sensor_type,
                        ts,
                        data: json(data),
                    }
                })
                .collect(),
            counts: CountsView {
                messages,
                readings,
                duplicates,
                dead_letters,
            },
            quality: QualityView {
                duplicates: quality_duplicates,
                out_of_order,
                future_timestamps,
                seq_gaps,
                clock_skew_ms,
                rejection_rate,
            },
            rhythm: rhythm.map(|r| {
                let RhythmState {
                    interval_ms,
                    spread_ms,
                    samples,
                } = r;
                RhythmView {
                    interval_ms,
                    spread_ms,
                    samples,
                }
            }),
            anomaly: anomaly.map(Into::into),
        }
    }
}
