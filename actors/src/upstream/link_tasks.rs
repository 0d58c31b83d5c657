//! The two tasks of one upstream link, apart from the `UpstreamConnection` actor so that
//! none waits on another in a way that could deadlock (see `upstream_connection`):
//! - `poll_link` owns rumqttc's event loop: it waits for a slot of the window (and of the
//!   byte budget) before handing a message on, and after a failure it waits a growing,
//!   jittered delay before reconnecting. It never awaits a client call;
//! - `send_acks` makes the client's ack calls, in the order the actor puts them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::{mpsc, Semaphore};

use super::filter::Filter;
use super::in_order::{Ack, Slot};
use super::link::{Client, Delivery, Happening, Poller};
use crate::pipeline::ByteBudget;
use crate::supervision::{jitter, Backoff, Breaker, CallResult, Report};

/// What the poll task tells the actor; `link` names the link it came from, so that
/// nothing from a dropped link is mistaken for the current one's.
pub(super) struct FromLink {
    pub link: u64,
    pub what: LinkNews,
}

pub(super) enum LinkNews {
    Connected {
        session_present: bool,
        generation: u64,
    },
    Delivered {
        delivery: Delivery,
        slot: Slot,
        generation: u64,
    },
    Subscribed {
        refused: Vec<String>,
    },
    SubscribeFailed(String),
    Disconnected(String),
    Failed {
        error: String,
        attempt: u32,
        retry_in: Duration,
    },
}

/// What the poll task owns.
pub(super) struct PollLink {
    pub id: u64,
    pub poller: Poller,
    pub client: Client,
    pub filters: Arc<[Filter]>,
    pub window: Arc<Semaphore>,
    pub budget: ByteBudget,
    pub news: mpsc::Sender<FromLink>,
    pub breaker: Addr<Breaker>,
    pub backoff: Backoff,
    pub generation: Arc<AtomicU64>,
}

/// Polls the event loop for as long as the link lives.
pub(super) async fn poll_link(mut link: PollLink) {
    let mut attempt = 0u32;
    let mut pause = None;
    loop {
        let what = match link.poller.poll().await {
            Ok(Happening::Connected { session_present }) => {
                attempt = 0;
                link.backoff.reset();
                link.breaker.do_send(Report(CallResult::Success));
                let generation = link.generation.fetch_add(1, Ordering::Relaxed) + 1;
                if !session_present {
                    // A client call: on a task of its own, never on this one.
                    let (client, filters, news, id) = (
                        link.client.clone(),
                        link.filters.clone(),
                        link.news.clone(),
                        link.id,
                    );
                    actix::spawn(async move {
                        if let Err(e) = client.subscribe(&filters).await {
                            let what = LinkNews::SubscribeFailed(format!("cannot subscribe: {e}"));
                            let _ = news.send(FromLink { link: id, what }).await;
                        }
                    });
                }
                LinkNews::Connected {
                    session_present,
                    generation,
                }
            }
            Ok(Happening::Delivered(delivery)) => {
                let Ok(window) = link.window.clone().acquire_owned().await else {
                    return;
                };
                let bytes = link.budget.admit(delivery.payload.len()).await;
                LinkNews::Delivered {
                    delivery,
                    slot: Slot {
                        _window: window,
                        _bytes: bytes,
                    },
                    generation: link.generation.load(Ordering::Relaxed),
                }
            }
            Ok(Happening::Subscribed { refused }) => LinkNews::Subscribed { refused },
            Ok(Happening::Disconnected { reason }) => LinkNews::Disconnected(reason),
            Ok(Happening::Nothing) => continue,
            Err(error) => {
                attempt = attempt.saturating_add(1);
                let opened_for = link
                    .breaker
                    .send(Report(CallResult::Failure(error.clone())))
                    .await
                    .unwrap_or_default();
                let retry_in = jitter(link.backoff.next_delay()).max(opened_for);
                pause = Some(retry_in);
                LinkNews::Failed {
                    error,
                    attempt,
                    retry_in,
                }
            }
        };
        let news = FromLink {
            link: link.id,
            what,
        };
        if link.news.send(news).await.is_err() {
            return;
        }
        // Polling again reconnects at once: this is the only pause between tries.
        if let Some(pause) = pause.take() {
            tokio::time::sleep(pause).await;
        }
    }
}

/// Sends acks in the order they come, skipping those of an earlier connection.
pub(super) async fn send_acks(
    client: Client,
    mut acks: mpsc::UnboundedReceiver<Ack>,
    generation: Arc<AtomicU64>,
) {
    while let Some(ack) = acks.recv().await {
        if ack.generation == generation.load(Ordering::Relaxed) {
            // An error means the client is gone; the broker redelivers what was not acked.
            let _ = client.ack(ack.token).await;
        }
    }
}
