//! What the field load publishes: readings of a fleet of devices, each on its own topic
//! `devices/<id>/telemetry` with a payload naming that device, cycling through the sensor
//! types Eliot knows, with values that drift a little.
//!
//! Timestamps are the current time in microseconds (Eliot keeps six digits and refuses
//! more), strictly increasing per connection. Each device is published by exactly one
//! connection, so every reading's (device, sensor type, timestamp) is unique: none is
//! dropped as a duplicate, and the store receives time-ordered data as a real fleet sends.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// The one format Eliot writes, six fractional digits: `2025-06-05T14:30:00.123456Z`.
use eliot_actors::format_micros;

/// The id of device `index` of the field fleet: `dev-00042`. The sustained, paced and reads
/// configurations share the ids, so the paced devices and the ones read have a history.
pub fn device_id(index: u32) -> String {
    format!("dev-{index:05}")
}

/// The sensor types a device cycles through, with the shape Eliot checks for each.
const SENSOR_TYPES: [&str; 3] = ["gps", "temperature", "battery"];

/// What a device's readings are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sensors {
    /// `gps`, `temperature`, `battery` in turn: 3, 1 and 2 numeric fields.
    Cycle,
    /// `gps` only: three numeric fields in every reading (the anomaly cost's load).
    Gps,
}

/// One device as a connection publishes for it.
pub struct Device {
    id: String,
    topic: String,
    /// Readings made for it so far: picks the sensor type and drifts the values.
    made: u64,
    /// Where it lives, for its GPS readings; its mean temperature.
    home: (f64, f64),
    mean_celsius: f64,
    sensors: Sensors,
}

impl Device {
    pub fn new(index: u32, sensors: Sensors) -> Device {
        let id = device_id(index);
        // Spread the devices over the map and the thermometer without a generator, away
        // from the ±180° meridian (a wobble past it would be out of range).
        let spread = |k: u32, modulo: u32| f64::from((index.wrapping_mul(k)) % modulo);
        Device {
            topic: format!("devices/{id}/telemetry"),
            id,
            made: 0,
            home: (spread(7_919, 120) - 60.0, spread(104_729, 359) - 179.0),
            mean_celsius: 5.0 + spread(31, 30),
            sensors,
        }
    }

    /// Appends the next reading of this device to `out`, stamped by `clock`.
    pub fn write_reading(&mut self, clock: &mut Clock, out: &mut String) {
        let n = self.made;
        self.made += 1;
        let sensor = match self.sensors {
            Sensors::Cycle => SENSOR_TYPES[(n % 3) as usize],
            Sensors::Gps => SENSOR_TYPES[0],
        };
        let wobble = ((n / 3) % 100) as f64 / 100.0 - 0.5;
        let _ = write!(out, r#"{{"device_id":"{}","timestamp":""#, self.id);
        clock.stamp(out);
        let _ = write!(out, r#"","sensor_type":"{sensor}","data":{{"#);
        let _ = match sensor {
            "gps" => write!(
                out,
                r#""latitude":{:.6},"longitude":{:.6},"accuracy":{:.1}"#,
                self.home.0 + wobble * 0.001,
                self.home.1 - wobble * 0.001,
                4.0 + wobble
            ),
            "temperature" => write!(out, r#""celsius":{:.2}"#, self.mean_celsius + wobble),
            _ => write!(
                out,
                r#""percent":{:.2},"voltage":{:.3}"#,
                80.0 + wobble * 10.0,
                3.9 + wobble * 0.1
            ),
        };
        out.push_str("}}");
    }
}

/// The devices one connection publishes for, taken in turn, and the connection's clock.
pub struct Rota {
    devices: Vec<Device>,
    next: usize,
    clock: Clock,
    /// The payload being built, kept to reuse its allocation.
    payload: String,
}

impl Rota {
    pub fn new(devices: Vec<Device>) -> Rota {
        assert!(
            !devices.is_empty(),
            "a connection publishes for some device"
        );
        Rota {
            devices,
            next: 0,
            clock: Clock::default(),
            payload: String::with_capacity(512),
        }
    }

    /// Appends the next device's next reading to `out`, as a QoS 1 PUBLISH with `pkid`.
    pub fn publish_next(&mut self, pkid: u16, out: &mut Vec<u8>) {
        let index = self.next;
        self.next = (index + 1) % self.devices.len();
        let device = &mut self.devices[index];
        self.payload.clear();
        device.write_reading(&mut self.clock, &mut self.payload);
        crate::mqtt_wire::publish_qos1(out, &device.topic, pkid, self.payload.as_bytes());
    }
}

/// A connection's clock: the current time in µs, never the same microsecond twice, written
/// as RFC 3339 (the date and time formatted once a second, only the µs every time).
#[derive(Default)]
pub struct Clock {
    last_us: i64,
    /// The second `prefix` is of, and `2025-06-05T14:30:00.` for it.
    second: i64,
    prefix: String,
}

impl Clock {
    /// Appends the next timestamp: `2025-06-05T14:30:00.123456Z`.
    pub fn stamp(&mut self, out: &mut String) {
        self.last_us = unix_micros().max(self.last_us + 1);
        let second = self.last_us.div_euclid(1_000_000);
        if second != self.second || self.prefix.is_empty() {
            self.second = second;
            self.prefix = format_micros(self.last_us)[..20].to_owned();
        }
        out.push_str(&self.prefix);
        let _ = write!(out, "{:06}Z", self.last_us.rem_euclid(1_000_000));
    }
}

pub fn unix_micros() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    since_epoch.as_micros() as i64
}

/// RFC 3339 in UTC to the second, as the read API's `from` and `to` take it.
pub fn rfc3339_seconds(unix_us: i64) -> String {
    let micros = format_micros(unix_us);
    format!("{}Z", &micros[..19])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_name_their_device_and_cycle_sensor_types() {
        let mut device = Device::new(42, Sensors::Cycle);
        let mut clock = Clock::default();
        assert_eq!(device.topic, "devices/dev-00042/telemetry");
        let mut timestamps = Vec::new();
        let types: Vec<String> = (0..3)
            .map(|_| {
                let mut payload = String::new();
                device.write_reading(&mut clock, &mut payload);
                let reading: serde_json::Value = serde_json::from_str(&payload).unwrap();
                assert_eq!(reading["device_id"], "dev-00042");
                let timestamp = reading["timestamp"].as_str().unwrap().to_owned();
                assert_eq!(timestamp.len(), "2025-06-05T14:30:00.123456Z".len());
                timestamps.push(timestamp);
                reading["sensor_type"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(types, ["gps", "temperature", "battery"]);
        assert!(timestamps.windows(2).all(|w| w[0] < w[1]), "{timestamps:?}");
    }

    #[test]
    fn timestamps_have_six_digits() {
        assert_eq!(
            format_micros(1_700_000_000_000_001),
            "2023-11-14T22:13:20.000001Z"
        );
        assert_eq!(
            rfc3339_seconds(1_700_000_000_000_001),
            "2023-11-14T22:13:20Z"
        );
    }
}
