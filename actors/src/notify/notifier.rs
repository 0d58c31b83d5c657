//! `Notifier`: the webhook's one sender (see `mod.rs` for the contract).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use actix::prelude::*;
use rusqlite::Connection;
use serde_json::json;

use crate::fleet::WebhookSettings;
use crate::message::format_micros;
use crate::observe::{Event, Telemetry};
use crate::store::{
    open_for_reading, waiting_deliveries, AlertEventView, AlertWrites, Delivery, DeliveryUpdate,
    FleetWrites, PersistFleet, StoreWriter,
};
use crate::supervision::Restarts;
use crate::webhook::{post, sign, WebhookUrl};

pub const NAME: &str = "notifier";

/// How often the outbox is looked at while nothing is being sent.
const POLL: Duration = Duration::from_millis(200);
/// Waiting notifications read per look: the first not settled in this run is sent.
const LOOK_AHEAD: usize = 64;

pub struct NotifierLinks {
    pub store: Addr<StoreWriter>,
    pub db_path: PathBuf,
    pub restarts: Restarts,
}

pub struct Notifier {
    settings: WebhookSettings,
    url: WebhookUrl,
    links: NotifierLinks,
    conn: Option<Connection>,
    /// An attempt is in flight.
    busy: bool,
    /// Notifications delivered or given up on in this run whose record may not be
    /// committed yet (not sent again meanwhile).
    settled: BTreeSet<i64>,
    /// The notification being retried: its id, attempts so far, and when the next may go.
    retrying: Option<(i64, u32, std::time::Instant)>,
    telemetry: Telemetry,
}

impl Notifier {
    /// `settings.url` must parse (the settings were validated).
    pub fn new(settings: WebhookSettings, links: NotifierLinks, telemetry: &Telemetry) -> Notifier {
        let url = WebhookUrl::parse(&settings.url).unwrap_or(WebhookUrl {
            host: "invalid".into(),
            port: 1,
            path: "/".into(),
        });
        Notifier {
            settings,
            url,
            links,
            conn: None,
            busy: false,
            settled: BTreeSet::new(),
            retrying: None,
            telemetry: telemetry.for_actor(NAME),
        }
    }

    /// The next notification to send, if it may go now.
    fn next(&mut self) -> Option<AlertEventView> {
        if self.conn.is_none() {
            self.conn = open_for_reading(&self.links.db_path).ok();
        }
        let waiting = match waiting_deliveries(self.conn.as_ref()?, 0, LOOK_AHEAD) {
            Ok(waiting) => waiting,
            Err(_) => {
                // Reopened at the next look (the database may have been busy or replaced).
                self.conn = None;
                return None;
            }
        };
        // Settled ids no longer waiting are committed as such: forgotten.
        let still: BTreeSet<i64> = waiting.iter().map(|w| w.event.id).collect();
        self.settled.retain(|id| still.contains(id));
        let head = waiting
            .into_iter()
            .find(|w| !self.settled.contains(&w.event.id))?;
        if let Some((id, _, not_before)) = self.retrying {
            if id == head.event.id && std::time::Instant::now() < not_before {
                return None;
            }
        }
        Some(head)
    }

    fn look(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        let Some(head) = self.next() else {
            return;
        };
        let id = head.event.id;
        let tried = match self.retrying {
            Some((retrying, attempts, _)) if retrying == id => attempts,
            _ => head
                .delivery
                .as_ref()
                .map_or(0, |d| u32::try_from(d.attempts).unwrap_or(u32::MAX)),
        };
        let body = body_of(&head).into_bytes();
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut headers = vec![
            ("X-Eliot-Event-Id", id.to_string()),
            ("X-Eliot-Timestamp", timestamp.to_string()),
        ];
        if !self.settings.secret.is_empty() {
            let signature = sign(self.settings.secret.expose().as_bytes(), timestamp, &body);
            headers.push(("X-Eliot-Signature", signature));
        }
        let (url, timeout) = (self.url.clone(), self.settings.timeout);
        self.busy = true;
        async move {
            let headers: Vec<(&str, String)> = headers;
            post(&url, &body, &headers, timeout).await
        }
        .into_actor(self)
        .map(move |answer, notifier, ctx| {
            notifier.busy = false;
            notifier.attempted(id, tried + 1, answer);
            notifier.look(ctx);
        })
        .spawn(ctx);
    }

    /// What attempt `attempt` of notification `id` got.
    fn attempted(&mut self, id: i64, attempt: u32, answer: Result<u16, String>) {
        let error = match answer {
            Ok(status) if (200..300).contains(&status) => None,
            Ok(status) => Some(format!("the webhook answered {status}")),
            Err(e) => Some(e),
        };
        let delivery = match error {
            None => {
                Event::AlertNotified {
                    event_id: id,
                    attempts: attempt,
                }
                .emit(&self.telemetry);
                self.settled.insert(id);
                self.retrying = None;
                Delivery::Delivered
            }
            Some(error) => {
                let gave_up = attempt >= self.settings.max_attempts;
                Event::AlertNotificationFailed {
                    event_id: id,
                    attempt,
                    error: &error,
                    gave_up,
                }
                .emit(&self.telemetry);
                if gave_up {
                    self.settled.insert(id);
                    self.retrying = None;
                    Delivery::Failed(error)
                } else {
                    let wait = backoff(&self.settings, attempt);
                    self.retrying = Some((id, attempt, std::time::Instant::now() + wait));
                    Delivery::Retrying(error)
                }
            }
        };
        let update = DeliveryUpdate {
            event_id: id,
            at: now_micros(),
            delivery,
        };
        // One record per attempt, and attempts are one at a time: bounded by the webhook's
        // own pace.
        self.links.store.do_send(PersistFleet(FleetWrites {
            alerts: AlertWrites {
                deliveries: vec![update],
                ..AlertWrites::default()
            },
            ..FleetWrites::default()
        }));
    }
}

/// The wait after failed attempt `attempt` (1 for the first).
pub(super) fn backoff(settings: &WebhookSettings, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(30);
    settings
        .backoff
        .saturating_mul(1 << doublings)
        .min(settings.backoff_max)
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// The JSON a notification carries.
fn body_of(view: &AlertEventView) -> String {
    let e = &view.event;
    json!({
        "id": e.id,
        "rule": e.rule,
        "device_id": e.device_id,
        "event": e.kind,
        "severity": e.severity,
        "at": format_micros(e.at),
        "value": e.value,
        "summary": e.summary,
    })
    .to_string()
}

/// Try a failed notification again (through the API): its record was reset; this run
/// forgets it gave up on it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RetryDelivery(pub i64);

impl Handler<RetryDelivery> for Notifier {
    type Result = ();

    fn handle(&mut self, RetryDelivery(id): RetryDelivery, _: &mut Context<Self>) {
        self.settled.remove(&id);
        if self.retrying.is_some_and(|(r, _, _)| r == id) {
            self.retrying = None;
        }
    }
}

impl Actor for Notifier {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.links
            .restarts
            .start(ctx, |notifier, ctx| notifier.look(ctx));
        ctx.run_interval(POLL, |notifier, ctx| notifier.look(ctx));
    }
}

impl Supervised for Notifier {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.conn = None;
        self.busy = false;
        self.links.restarts.restarting("stopped".into());
    }
}

crate::answers_pings!(Notifier);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn the_wait_doubles_up_to_its_cap() {
        let settings = WebhookSettings {
            url: "http://127.0.0.1:1/".into(),
            secret: Secret::default(),
            timeout: Duration::from_secs(1),
            max_attempts: 5,
            backoff: Duration::from_millis(100),
            backoff_max: Duration::from_millis(500),
        };
        let waits: Vec<u128> = (1..=5).map(|a| backoff(&settings, a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
    }
}
