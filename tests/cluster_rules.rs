//! Several wharf nodes on one database behave as one gateway: the rules that
//! must hold across nodes are decided in the database (docs/scale-out.md).
//! Two gateways share one SQLite file here (WAL works across connections and
//! processes), each with its own listeners on 127.0.0.1 port 0.

mod common;

use std::time::{Duration, Instant};

use common::gateway::Gateway;
use wharf::app::{App, Running};

/// A second node: the same config (same data directory, so the same database,
/// keys and files) started again with listeners of its own.
async fn second_node(first: &Gateway) -> Running {
    App::open(first.config.clone())
        .unwrap()
        .start()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_periodic_job_runs_on_one_node_per_turn_and_moves_when_it_stops() {
    // reservation_timeout 1s: the stale-reservation refund runs every second.
    let mut one = Gateway::start("fs", "[links]\nreservation_timeout = \"1s\"\n").await;
    let two = second_node(&one).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let a = one.running.as_ref().unwrap().cluster.runs("refund");
    let b = two.cluster.runs("refund");
    assert!(
        (a == 0) != (b == 0),
        "exactly one node runs the job: {a} and {b} turns"
    );
    assert!((2..=4).contains(&(a + b)), "once per turn: {a} + {b}");
    assert_ne!(
        one.running.as_ref().unwrap().cluster.node_id(),
        two.cluster.node_id()
    );
    // The holder stops; the other node takes the next turn.
    let (holder, other) = if a > 0 {
        (one.running.take().unwrap(), two)
    } else {
        (two, one.running.take().unwrap())
    };
    holder.shutdown().await;
    let before = other.cluster.runs("refund");
    let deadline = Instant::now() + Duration::from_secs(10);
    while other.cluster.runs("refund") < before + 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        other.cluster.runs("refund") >= before + 2,
        "the other node took the job over"
    );
    other.shutdown().await;
}
