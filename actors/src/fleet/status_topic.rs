//! The upstream status topic (`fleet.status_topic`, e.g. `devices/{device_id}/status`):
//! what a device, or its broker on its behalf (a will), says of its presence. A payload
//! `online` or `offline` (or `{"status":"online"}`) sets a known device's presence at
//! once; anything else is ignored, and so is a device the fleet does not know (provisioned,
//! or heard with a stored reading or a connection): a flood of statuses naming random ids
//! adds no device.
//!
//! A status is no reading: it changes neither `last_seen` nor the rhythm, which keep
//! applying (a device said online and then silent still becomes late, and offline after
//! its bound). The upstream connection tells the fleet of a status only once every message
//! received before it was committed and told (`upstream_connection.rs`), so a will never
//! overtakes the device's last readings; and the status holds its slot of the
//! connection's window until the shard has handled it, which bounds what waits here.

use actix::prelude::*;

use super::feed::{shard_of, FleetFeed};
use super::heard::set_presence;
use super::shard::{now_micros, FleetShard};
use super::state::Presence;
use crate::message::is_device_id;

/// Longest status payload considered; longer ones are ignored unread.
const MAX_STATUS_PAYLOAD: usize = 64;

/// What a status payload says: `Some(true)` online, `Some(false)` offline.
pub fn parse_status(payload: &[u8]) -> Option<bool> {
    if payload.len() > MAX_STATUS_PAYLOAD {
        return None;
    }
    let text = std::str::from_utf8(payload).ok()?.trim();
    let word = match text.strip_prefix('{') {
        Some(_) => {
            let json: serde_json::Value = serde_json::from_str(text).ok()?;
            json.as_object()?.get("status")?.as_str()?.to_owned()
        }
        None => text.to_owned(),
    };
    match word.as_str() {
        "online" => Some(true),
        "offline" => Some(false),
        _ => None,
    }
}

/// A device's status topic said `online` (or not). `_hold` is kept until handled (the
/// upstream message's slot of its window).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StatusReported {
    pub device_id: String,
    pub online: bool,
    pub _hold: Box<dyn Send>,
}

impl FleetFeed {
    /// Tells the device's shard what its status topic said. `hold` is dropped once the
    /// shard handled it.
    pub fn status(&self, device_id: &str, online: bool, hold: Box<dyn Send>) {
        if !is_device_id(device_id) {
            return;
        }
        let shard = &self.shards[shard_of(device_id, self.shards.len())];
        shard.do_send(StatusReported {
            device_id: device_id.to_owned(),
            online,
            _hold: hold,
        });
    }
}

impl Handler<StatusReported> for FleetShard {
    type Result = ();

    fn handle(&mut self, status: StatusReported, ctx: &mut Context<Self>) {
        let Some(id) = self.book.key(&status.device_id) else {
            return;
        };
        let now = now_micros();
        let (presence, word) = match status.online {
            true => (Presence::Online, "online"),
            false => (Presence::Offline, "offline"),
        };
        let change = self
            .book
            .update(&id, |device| {
                // A connection of Eliot's own endpoint carrying it says more.
                if device.connection_id().is_some() {
                    return None;
                }
                set_presence(
                    device,
                    presence,
                    || format!("{word}: status topic: {word}"),
                    now,
                )
            })
            .flatten();
        self.after_changes(&id, change.into_iter().collect(), now);
        self.arm(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_payloads_are_words_or_a_small_json_object() {
        assert_eq!(parse_status(b"online"), Some(true));
        assert_eq!(parse_status(b"offline\n"), Some(false));
        assert_eq!(parse_status(br#"{"status":"offline"}"#), Some(false));
        assert_eq!(
            parse_status(br#" {"status": "online", "at": 1} "#),
            Some(true)
        );
        for ignored in [
            &b"Online"[..],
            b"",
            b"1",
            br#"{"status":true}"#,
            br#"["online"]"#,
            b"\xff\xfe",
            &[b' '; 100],
        ] {
            assert_eq!(parse_status(ignored), None, "{ignored:?}");
        }
    }
}
