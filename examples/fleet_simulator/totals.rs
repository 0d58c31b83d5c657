//! The fleet's counters, shared by the devices, the monitor and the summary.

use std::cell::{Cell, RefCell};
use std::time::Instant;

/// The fleet's counters. Every device runs on the one actix thread, so plain cells suffice.
#[derive(Default)]
pub struct Totals {
    /// Devices started so far (they start at `--connect-rate`).
    pub started: Cell<u64>,
    /// Devices whose actor is alive: the end waits for them to disconnect.
    pub alive: Cell<u64>,
    /// Devices still making readings: publishing ends when this is 0.
    pub generating: Cell<u64>,
    /// Devices connected now.
    pub connected: Cell<u64>,
    /// Most devices connected at once.
    pub connected_peak: Cell<u64>,
    /// Messages whose PUBLISH went out, each counted once.
    pub sent: Cell<u64>,
    /// Payload bytes of those messages, for the mean payload size.
    pub payload_bytes: Cell<u64>,
    /// Messages PUBACKed.
    pub acked: Cell<u64>,
    /// Invalid-JSON messages sent.
    pub malformed: Cell<u64>,
    /// Invalid-JSON messages PUBACKed (stored as dead letters).
    pub malformed_acked: Cell<u64>,
    /// PUBLISHes of messages that went out before (after a reconnect).
    pub resent: Cell<u64>,
    /// Scheduled readings not made because the device had fallen behind.
    pub skipped: Cell<u64>,
    /// Connection errors.
    pub errors: Cell<u64>,
    /// CONNACKs after a device's first one.
    pub reconnects: Cell<u64>,
    /// Readings made and not yet settled (acked at QoS 1, sent at QoS 0): the drain waits for 0.
    pub outstanding: Cell<u64>,
    /// Readings made and never sent by the end.
    pub unsent: Cell<u64>,
    /// When the last PUBLISH of a new message went out, for the send rate.
    pub last_sent: Cell<Option<Instant>>,
    /// When the last PUBACK arrived, for the ack rate.
    pub last_ack: Cell<Option<Instant>>,
    /// When the last device made its last reading: the end of publishing.
    pub publishing_ended: Cell<Option<Instant>>,
    /// The first connection error, shown in the summary to say why devices did not connect.
    pub first_error: RefCell<Option<String>>,
    /// Set by Ctrl-C or a stall: devices stop making readings.
    pub stop: Cell<bool>,
    /// Whether the run was cut short, reported in the summary.
    pub interrupted: Cell<bool>,
}

pub fn add(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get() + n);
}

pub fn subtract(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get().saturating_sub(n));
}
