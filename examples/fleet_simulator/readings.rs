//! What a device publishes: readings in the original format, with drifting sensor values,
//! unique timestamps and optional padding.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::rng::Rng;

/// Longest string Eliot accepts in `data` (`ingest.max_string_len`): padding is cut in such pieces.
const MAX_NOTE_LEN: usize = 1024;

/// The sensor types Eliot knows, which a device cycles through.
#[derive(Clone, Copy)]
pub enum SensorType {
    Gps,
    Temperature,
    Battery,
}

pub const SENSOR_CYCLE: [SensorType; 3] = [
    SensorType::Gps,
    SensorType::Temperature,
    SensorType::Battery,
];

impl SensorType {
    fn name(self) -> &'static str {
        match self {
            SensorType::Gps => "gps",
            SensorType::Temperature => "temperature",
            SensorType::Battery => "battery",
        }
    }
}

/// The state behind a device's values.
pub struct Sensors {
    /// Where the device lives (latitude, longitude, degrees); its position wanders around it.
    home: (f64, f64),
    /// Current distance from home (degrees), a random walk pulled back towards 0.
    offset: (f64, f64),
    /// GPS accuracy in metres, drifting within 0.5..25.
    accuracy: f64,
    /// The temperature the device's surroundings hover around.
    mean_celsius: f64,
    /// Current temperature.
    celsius: f64,
    /// Battery charge in percent, draining slowly; recharged to 100 below 5.
    percent: f64,
}

impl Sensors {
    pub fn new(rng: &mut Rng) -> Sensors {
        let mean_celsius = rng.between(5.0, 35.0);
        Sensors {
            home: (rng.between(-60.0, 60.0), rng.between(-180.0, 180.0)),
            offset: (0.0, 0.0),
            accuracy: rng.between(2.0, 8.0),
            mean_celsius,
            celsius: mean_celsius,
            percent: rng.between(40.0, 100.0),
        }
    }

    /// The next values of one sensor, as the inside of a JSON object.
    pub fn fields(&mut self, sensor: SensorType, rng: &mut Rng) -> String {
        match sensor {
            SensorType::Gps => self.gps(rng),
            SensorType::Temperature => self.temperature(rng),
            SensorType::Battery => self.battery(rng),
        }
    }

    fn gps(&mut self, rng: &mut Rng) -> String {
        self.offset.0 = self.offset.0 * 0.95 + rng.gauss() * 0.0002;
        self.offset.1 = self.offset.1 * 0.95 + rng.gauss() * 0.0002;
        self.accuracy = (self.accuracy + rng.gauss() * 0.3).clamp(0.5, 25.0);
        let latitude = (self.home.0 + self.offset.0).clamp(-90.0, 90.0);
        let longitude = wrap_longitude(self.home.1 + self.offset.1);
        format!(
            r#""latitude":{latitude:.6},"longitude":{longitude:.6},"accuracy":{:.1}"#,
            self.accuracy
        )
    }

    fn temperature(&mut self, rng: &mut Rng) -> String {
        self.celsius += (self.mean_celsius - self.celsius) * 0.05 + rng.gauss() * 0.1;
        format!(r#""celsius":{:.2}"#, self.celsius)
    }

    fn battery(&mut self, rng: &mut Rng) -> String {
        self.percent -= rng.between(0.01, 0.05);
        if self.percent < 5.0 {
            self.percent = 100.0;
        }
        let voltage = (3.3 + 0.9 * self.percent / 100.0 + rng.gauss() * 0.005).max(0.0);
        format!(r#""percent":{:.2},"voltage":{voltage:.3}"#, self.percent)
    }
}

fn wrap_longitude(longitude: f64) -> f64 {
    if longitude > 180.0 {
        longitude - 360.0
    } else if longitude < -180.0 {
        longitude + 360.0
    } else {
        longitude
    }
}

/// A reading in the original format.
pub fn reading_json(id: &str, timestamp: &str, sensor: SensorType, fields: &str) -> String {
    format!(
        r#"{{"device_id":"{id}","timestamp":"{timestamp}","sensor_type":"{}","data":{{{fields}}}}}"#,
        sensor.name()
    )
}

/// Pads a reading's `data` with `note` strings until the payload is about `size` bytes. Eliot
/// refuses strings over 1024 bytes, so a long padding is cut into `note`, `note_2`, ...
pub fn pad_to(payload: &mut String, size: usize) {
    let mut padding = String::new();
    let mut need = size.saturating_sub(payload.len());
    for n in 1.. {
        let key = if n == 1 {
            "note".to_owned()
        } else {
            format!("note_{n}")
        };
        let overhead = key.len() + 6; // ,"key":""
        if need <= overhead {
            break;
        }
        let len = (need - overhead).min(MAX_NOTE_LEN);
        padding.push_str(&format!(r#","{key}":""#));
        padding.extend(std::iter::repeat_n('x', len));
        padding.push('"');
        need -= overhead + len;
    }
    payload.insert_str(payload.len() - 2, &padding); // before the closing `}}`
}

/// The device's clock: the current time, but never the same microsecond twice.
#[derive(Default)]
pub struct Clock {
    /// The last timestamp given, in µs since the Unix epoch.
    last_us: i64,
}

impl Clock {
    pub fn next(&mut self) -> i64 {
        self.last_us = unix_micros().max(self.last_us + 1);
        self.last_us
    }
}

pub fn unix_micros() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    since_epoch.as_micros() as i64
}

/// RFC 3339 in UTC with microseconds: `2025-06-05T14:30:00.123456Z`.
pub fn rfc3339_micros(unix_us: i64) -> String {
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(unix_us as i128 * 1000)
        .expect("the current time is a valid date");
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        time.year(),
        time.month() as u8,
        time.day(),
        time.hour(),
        time.minute(),
        time.second(),
        time.microsecond()
    )
}
