//! The operators' view (issue 19), read-only: it never writes to the store.
//!
//! - `metrics`: counters the hot paths bump (controllers, proposals, dispatcher, Raft
//!   leader changes and snapshots, counted by [`watch_raft`]).
//! - `collect`: gauges read at scrape time from the store and Raft.
//! - `http`: the `--http-addr` port: `/metrics`, `/healthz`, the dashboard.
//! - `dashboard`: the page (embedded) and its JSON view.
//! - `events` and `event_shape`: the commit feed as Docker events (`swarmr events`).
//! - `info`: `swarmr info`.

mod collect;
pub mod dashboard;
mod event_shape;
pub mod events;
pub mod http;
pub mod info;
pub mod metrics;

use std::future::Future;

use prometheus_client::registry::Registry;

use crate::core::Core;
use crate::dispatcher::Sessions;

pub use collect::ClusterCollector;
pub use metrics::METRICS;

/// Adds a manager's counters and its store and Raft gauges to a run's registry.
pub fn register(registry: &mut Registry, core: Core, sessions: Sessions) {
    metrics::register(registry);
    registry.register_collector(Box::new(ClusterCollector::new(core, sessions)));
}

/// Counts leader changes and new snapshots as this manager's Raft reports them.
pub async fn watch_raft(core: Core, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut metrics = core.raft().metrics();
    let (mut leader, mut snapshot) = {
        let m = metrics.borrow_and_update();
        (m.current_leader, m.snapshot)
    };
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            changed = metrics.changed() => if changed.is_err() { return },
        }
        let m = metrics.borrow_and_update();
        if m.current_leader != leader && m.current_leader.is_some() {
            METRICS.leader_changes.inc();
        }
        if m.snapshot != snapshot {
            METRICS.snapshots.inc();
        }
        (leader, snapshot) = (m.current_leader, m.snapshot);
    }
}
