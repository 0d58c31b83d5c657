//! What each event counts: the metric side of `Event::emit`, kept apart from the log side
//! so that each reads as one table.

use super::events::Event;
use super::metrics::Metrics;

impl Event<'_> {
    pub(super) fn count(&self, m: &Metrics) {
        if !m.enabled {
            return;
        }
        match *self {
            Event::Listening { .. } => {
                m.listening.set(1);
            }
            Event::DeviceConnected { .. } => {
                m.connections_opened.inc();
                m.connections_open.inc();
            }
            Event::DeviceDisconnected { .. } => {
                m.connections_open.dec();
            }
            Event::ConnectionRefused { code, .. } => {
                m.connections_refused.get_or_create(&[("code", code)]).inc();
            }
            Event::PublishReceived { qos, .. } => {
                m.messages_received[usize::from(qos.min(2))].inc();
            }
            Event::AcksSent {
                pubacks, pubrecs, ..
            } => {
                m.acks_sent[0].inc_by(pubacks as u64);
                m.acks_sent[1].inc_by(pubrecs as u64);
            }
            Event::OutcomesCommitted {
                messages, waited, ..
            } => {
                for _ in 0..messages {
                    m.receive_to_commit_seconds.observe(waited.as_secs_f64());
                }
            }
            Event::ProtocolError { .. } => {
                m.protocol_errors.inc();
            }
            Event::MessageProcessed { .. } => {
                m.messages_processed.inc();
            }
            Event::MessageRejected { class, .. } => {
                m.messages_rejected.get_or_create(&[("class", class)]).inc();
            }
            Event::WillPublished { .. } => {
                m.wills_published.inc();
            }
            Event::BatchCommitted {
                rows,
                duplicates,
                dead_letters,
                took,
            } => {
                m.readings_stored.inc_by(rows as u64);
                m.readings_duplicate.inc_by(duplicates as u64);
                m.dead_letters_stored.inc_by(dead_letters as u64);
                m.commit_seconds.observe(took.as_secs_f64());
                m.batch_rows
                    .observe((rows + duplicates + dead_letters) as f64);
            }
            Event::StoreFailed { .. } => {
                m.store_failures.inc();
            }
            Event::DeadLettersShed { rows, bytes, .. } => {
                m.dead_letters_shed.inc_by(rows as u64);
                m.dead_letters_shed_bytes.inc_by(bytes);
            }
            Event::GenerationMerged { readings, .. } => {
                m.readings_merged.inc_by(readings as u64);
            }
            Event::ChunksExpired {
                chunks, readings, ..
            } => {
                m.chunks_expired.inc_by(chunks as u64);
                m.readings_expired.inc_by(readings);
            }
            Event::ActorPanicked { .. } => {
                m.panics.inc();
            }
            Event::ActorRestarting { actor, .. } => {
                m.restarts
                    .get_or_create(&[("child", actor.to_owned())])
                    .inc();
            }
            Event::Escalated { .. } => {
                m.escalations.inc();
            }
            Event::BreakerTransition { breaker, to, .. } => {
                let label = [("breaker", breaker.to_owned())];
                m.breaker_transitions.get_or_create(&label).inc();
                let state = match to {
                    "open" => 1,
                    "half_open" => 2,
                    _ => 0,
                };
                m.breaker_state.get_or_create(&label).set(state);
            }
            Event::DeviceBreakerTripped { .. } => {
                m.device_breaker_trips.inc();
            }
            Event::DeviceRefused { .. } => {
                m.device_refusals.inc();
                let code = [("code", "quota_exceeded")];
                m.connections_refused.get_or_create(&code).inc();
            }
            Event::StoreRetry { .. } => {
                m.store_retries.inc();
            }
            Event::ShutdownStarted { .. } => {
                m.shutting_down.set(1);
            }
            Event::ShutdownFinished { .. } => {
                m.listening.set(0);
            }
            Event::AcceptFailed { .. } => {
                m.accept_failures.inc();
            }
            Event::DescriptorLimit { wanted, .. } => {
                let wanted = i64::try_from(wanted).unwrap_or(i64::MAX);
                m.open_file_limit_wanted.set(wanted);
            }
            Event::HttpListening { .. } => {
                m.http_listening.set(1);
            }
            Event::HttpFailed { .. } => {
                m.http_listening.set(0);
                m.http_failures.inc();
            }
            Event::TlsListening { .. } | Event::Hangup { .. } => {}
            Event::CredentialsRevoked { .. } | Event::RevocationsUnreadable { .. } => {}
            Event::TlsReloaded { error } => {
                let outcome = [("outcome", if error.is_some() { "failed" } else { "done" })];
                m.tls_reloads.get_or_create(&outcome).inc();
            }
            Event::UpstreamConnected { connection, .. } => {
                m.upstream_connects.inc();
                let label = [("connection", connection.to_owned())];
                m.upstream_connected.get_or_create(&label).set(1);
            }
            Event::UpstreamSessionLost { .. } => {
                m.upstream_sessions_lost.inc();
            }
            Event::UpstreamConnectFailed { connection, .. } => {
                m.upstream_connect_failures.inc();
                let label = [("connection", connection.to_owned())];
                m.upstream_connected.get_or_create(&label).set(0);
            }
            Event::UpstreamSubscribed { .. } => {}
            Event::UpstreamDisconnected { .. } => {}
            Event::UpstreamNotStored { messages, .. } => {
                m.upstream_not_stored.inc_by(messages as u64);
            }
            Event::StartFailed { .. } => {
                m.start_failures.inc();
            }
            Event::StoreOpened { version, .. } => {
                m.schema_version.set(version);
            }
        }
    }
}
