//! Scale-out: several Eliot nodes in one shared subscription group split one broker's
//! stream (MQTT 5 `$share/<group>/<filter>`), and each message is stored by exactly one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::common::checker::{publish_through_failures, Ledger, Pace};
use super::common::mosquitto::BrokerConfig;
use super::common::process::{free_addr, EliotProcess};
use super::*;

struct Node {
    data: tempfile::TempDir,
    config: String,
    addr: std::net::SocketAddr,
}

impl Node {
    fn new(broker: &Mosquitto, name: &str) -> Node {
        let data = tempfile::tempdir().unwrap();
        let extra = "topics = [\"$share/eliot/devices/+/telemetry\"]\n";
        let config = upstream_file(data.path(), broker, name, extra);
        Node {
            data,
            config,
            addr: free_addr(),
        }
    }

    fn start(&self) -> EliotProcess {
        let args = ["--config", self.config.as_str()];
        EliotProcess::start_with_args(self.data.path(), self.addr, &[], &args)
    }

    /// (device, ts) → how many times this node stored it.
    fn rows(&self) -> HashMap<(String, String), i64> {
        let Ok(db) = rusqlite::Connection::open(self.data.path().join("eliot.db")) else {
            return HashMap::new();
        };
        let Ok(mut stmt) =
            db.prepare("SELECT device_id, ts, count(*) FROM readings GROUP BY device_id, ts")
        else {
            return HashMap::new();
        };
        stmt.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

fn counts(nodes: &[Node]) -> Vec<usize> {
    nodes.iter().map(|n| n.rows().len()).collect()
}

/// 3 nodes share one group; 10 publishers send 500 readings each. One node is killed
/// mid-stream: the two others carry on taking their share. The broker keeps the killed
/// node's session, with what it had sent it unacked and what it queued for it since;
/// when the node comes back, that arrives. Every reading is then stored by exactly one
/// node, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_in_a_shared_group_store_each_message_exactly_once_through_a_kill() {
    let Some(broker) = broker("shared subscriptions", BrokerConfig::default()) else {
        return;
    };
    let nodes: Vec<Node> = ["node-a", "node-b", "node-c"]
        .iter()
        .map(|name| Node::new(&broker, name))
        .collect();
    let mut running: Vec<Option<EliotProcess>> = nodes.iter().map(|n| Some(n.start())).collect();
    // Each node subscribes on its first connection; give all three the time to.
    assert!(broker.wait_for_log("node-c-0", Duration::from_secs(10)));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let ledger = Ledger::default();
    let pace = Pace {
        count: 500,
        every: Duration::from_millis(10),
        within: Duration::from_secs(90),
    };
    let publishers: Vec<_> = (0..10)
        .map(|d| {
            let device = format!("device_{d:02}");
            tokio::spawn(publish_through_failures(
                broker.addr(),
                device,
                pace,
                ledger.clone(),
            ))
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(2)).await;
    running[1].take().unwrap().kill9();
    let at_kill = counts(&nodes);
    let killed = Instant::now();
    let mut acked = 0;
    for publisher in publishers {
        acked += publisher.await.unwrap();
    }
    assert_eq!(acked, 5_000);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let without_b = counts(&nodes);
    println!(
        "shared group: stored per node at the kill {at_kill:?}, {:.1} s later {without_b:?}",
        killed.elapsed().as_secs_f64()
    );
    assert!(
        without_b[0] > at_kill[0] && without_b[2] > at_kill[2],
        "the other nodes carry on: {at_kill:?} → {without_b:?}"
    );

    running[1] = Some(nodes[1].start());
    let all_in = eventually(Duration::from_secs(60), || {
        counts(&nodes).iter().sum::<usize>() >= 5_000
    })
    .await;
    let rows: Vec<_> = nodes.iter().map(Node::rows).collect();
    let mut seen: HashMap<&(String, String), i64> = HashMap::new();
    for node in &rows {
        for (key, n) in node {
            *seen.entry(key).or_default() += n;
        }
    }
    let twice = seen.values().filter(|n| **n > 1).count();
    println!(
        "shared group: after node-b's return {:?}; distinct {}, stored twice {twice}",
        counts(&nodes),
        seen.len()
    );
    assert!(all_in, "every reading stored: {:?}", counts(&nodes));
    assert_eq!(seen.len(), 5_000);
    assert_eq!(twice, 0, "no reading stored by two nodes, or twice by one");
    for process in running.into_iter().flatten() {
        assert!(process.terminate().0.success());
    }
}
