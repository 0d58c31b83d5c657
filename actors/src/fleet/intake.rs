//! What one committed message changes in its device, in the shard's one lookup of it
//! (`heard.rs`): counts, quality, its last readings, presence, quarantine.

use super::feed::{Note, Source};
use super::heard::{carried, quarantine, set_presence, Change};
use super::quarantine::verdict;
use super::settings::FleetSettings;
use super::state::{Device, LastReading, Link, Presence};

/// What one committed message changes in its device (`sample`: its arrival samples the
/// rhythm): counts, quality, last readings, presence, quarantine; the status changes.
pub(super) fn take_in(
    device: &mut Device,
    source: &Source,
    note: &mut Note,
    sample: bool,
    settings: &FleetSettings,
    max_series: usize,
) -> Vec<Change> {
    let now = note.received_at;
    let future_tolerance = i64::try_from(settings.future_tolerance.as_micros()).unwrap_or(0);
    let mut changes = Vec::new();
    device.counts.messages += 1;
    if note.rejected {
        device.counts.dead_letters += 1;
    } else {
        device.counts.readings += note.readings.len() as u64;
        device.counts.duplicates += u64::from(note.duplicates);
        device.quality.duplicates += u64::from(note.duplicates);
    }
    if !note.quarantined {
        device.quality.message(note.rejected);
    }
    for r in note.readings.drain(..) {
        let last_ts = device.last_of(&r.sensor_type).map(|l| l.ts);
        device
            .quality
            .reading((r.ts, now), last_ts, r.seq, future_tolerance);
        let Some(data) = r.data else { continue };
        let kept = device.last.len();
        match device
            .last
            .iter_mut()
            .find(|l| *l.sensor_type == *r.sensor_type)
        {
            Some(last) if r.ts >= last.ts => {
                last.ts = r.ts;
                last.data = data.into();
            }
            Some(_) => {}
            None if kept < max_series => device.add_last(LastReading {
                sensor_type: r.sensor_type.into(),
                ts: r.ts,
                data: data.into(),
            }),
            None => {}
        }
    }
    let alive = !matches!(source, Source::Will);
    if alive {
        if let (true, Some(last_seen)) = (sample, device.last_seen) {
            device.rhythm.sample(now - last_seen);
        }
        device.last_seen = Some(device.last_seen.map_or(now, |l| l.max(now)));
    }
    match source {
        Source::Connection(carrier) => {
            changes.extend(carried(device, carrier, now));
        }
        Source::Upstream => {
            if device
                .link
                .as_deref()
                .is_none_or(|l| l.protocol != Some("upstream"))
            {
                device.link = Some(Box::new(Link {
                    peer: None,
                    protocol: Some("upstream"),
                    connection: None,
                }));
            }
            changes.extend(set_presence(
                device,
                Presence::Online,
                || "online: readings arrived".to_owned(),
                now,
            ));
        }
        Source::Will => {}
    }
    if device.quarantine.is_none() && !note.quarantined {
        if let Some(why) = verdict(&device.quality, device.counts.messages, settings) {
            let until = (!settings.quarantine_duration.is_zero()).then(|| {
                now + i64::try_from(settings.quarantine_duration.as_micros())
                    .unwrap_or(i64::MAX / 2)
            });
            changes.push(quarantine(device, why, until, now));
        }
    }
    changes
}
