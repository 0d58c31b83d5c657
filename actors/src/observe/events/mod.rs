//! Every log line Eliot writes comes from one of these typed events, so the keys are
//! stable for whoever parses the JSON logs, and every event also updates its metrics
//! (`Metrics`), so what the logs tell and what `/metrics` counts cannot drift apart.
//! No event carries a password or token.
//!
//! One event is one struct, written once, in the file of the part of Eliot that emits it
//! (`connection`, `messages`, `store`, `supervision`, `upstream`, `fleet`, `mutations`, `shell`): its fields,
//! and in its `Observe` impl its name, its record (level, message, keys) and what it
//! counts, next to the metric families it names in `MOVES`. The list below makes each one
//! reachable as `Event::Name { .. }.emit(&telemetry)`. A test holds every event to moving
//! exactly the families it names; another, the docs' table of events to `Event::ALL_NAMES`.

mod alerts;
mod connection;
mod fleet;
mod messages;
mod mutations;
mod shell;
mod store;
mod supervision;
mod upstream;
mod values;

pub use alerts::ALERT_CHANGES;

use slog::Logger;

use super::metrics::Metrics;
use super::Telemetry;
#[cfg(test)]
use values::LOG_VALUE_MAX;

/// What one event is: its name, its record and what it counts.
pub trait Observe {
    /// The stable `event` key of its record.
    const NAME: &'static str;
    /// The metric families `count` moves, as a scrape names them; none: the event only
    /// logs. Read by the test that holds `count` to it.
    #[cfg_attr(not(test), allow(dead_code))]
    const MOVES: &'static [&'static str];

    /// Writes its record, `event` = `NAME` among its keys.
    fn log(&self, log: &Logger);

    /// Updates the families of `MOVES`; called only while metrics are enabled.
    fn count(&self, metrics: &Metrics);
}

/// Writes the event's record, then updates its metrics.
fn emit(event: &impl Observe, telemetry: &Telemetry) {
    event.log(telemetry.log());
    let metrics = telemetry.metrics();
    if metrics.enabled {
        event.count(metrics);
    }
}

/// Lists every event by the file that defines it, and makes each reachable from `Event`
/// with `name()` and `emit()` of its own (so that emitting one needs no trait in scope).
/// A type with a lifetime is listed with `<'_>`.
macro_rules! every_event {
    ($($group:ident: [$($event:ident $(<$lifetime:lifetime>)?),* $(,)?])*) => {
        /// Every event, by name: `Event::DeviceConnected { .. }.emit(&telemetry)`. A
        /// namespace rather than an enum, so that each event keeps its own struct in the
        /// file of the part that emits it while call sites read as they always have.
        #[allow(non_snake_case)]
        pub mod Event {
            $(pub use super::$group::{$($event),*};)*

            /// The `event` key of every record Eliot may write.
            pub const ALL_NAMES: &[&str] = &[$($(<$event as super::Observe>::NAME),*),*];
        }

        $($(
            impl $group::$event $(<$lifetime>)? {
                /// The stable `event` key of its record.
                pub fn name(&self) -> &'static str {
                    <Self as Observe>::NAME
                }

                /// Writes its record and updates its metrics.
                pub fn emit(&self, telemetry: &Telemetry) {
                    emit(self, telemetry)
                }
            }
        )*)*
    };
}

every_event! {
    connection: [
        Listening,
        TlsListening,
        AcceptFailed<'_>,
        DeviceConnected<'_>,
        DeviceDisconnected<'_>,
        ConnectionRefused<'_>,
        ProtocolError<'_>,
        TlsReloaded<'_>,
        CredentialsRevoked<'_>,
        RevocationsUnreadable<'_>,
    ]
    messages: [
        PublishReceived<'_>,
        AcksSent<'_>,
        OutcomesCommitted<'_>,
        MessageProcessed<'_>,
        MessageRejected<'_>,
        WillPublished<'_>,
    ]
    store: [
        StoreOpened,
        BatchCommitted,
        StoreFailed<'_>,
        StoreRetry<'_>,
        DeadLettersShed,
        GenerationMerged,
        ChunksExpired,
    ]
    supervision: [
        ActorPanicked<'_>,
        ActorRestarting<'_>,
        Escalated<'_>,
        BreakerTransition<'_>,
        DeviceBreakerTripped<'_>,
        DeviceRefused<'_>,
    ]
    upstream: [
        UpstreamConnected<'_>,
        UpstreamSessionLost<'_>,
        UpstreamConnectFailed<'_>,
        UpstreamSubscribed<'_>,
        UpstreamDisconnected<'_>,
        UpstreamNotStored<'_>,
    ]
    fleet: [
        DeviceStatusChanged<'_>,
        FleetLoaded,
        FleetUnloaded,
        DeviceForgotten<'_>,
        FleetFull,
        DeviceEventsDropped,
        AnomalyFound<'_>,
        AnomalySeriesFull,
        AnomaliesDropped,
    ]
    alerts: [
        AlertChanged<'_>,
        AlertNotified,
        AlertNotificationFailed<'_>,
        AlertChangesDropped,
        AlertRuleLeftOut<'_>,
        SelfAlertNotificationFailed<'_>,
        SelfAlertsNotSaved<'_>,
    ]
    mutations: [
        DeadLettersReplayed,
        DeviceReadingsPurged<'_>,
    ]
    shell: [
        StartFailed<'_>,
        DescriptorLimit<'_>,
        Hangup,
        HttpListening,
        HttpFailed<'_>,
        ShutdownStarted,
        ShutdownFinished,
    ]
}

#[cfg(test)]
mod moves_tests;
#[cfg(test)]
mod tests;
