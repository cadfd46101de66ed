//! The manager's own counters, bumped by small hooks in the hot paths (controllers,
//! proposals, dispatcher) and by the Raft watcher; gauges read from the store at scrape
//! time are in `collect`. Process-wide statics, so a hook needs no handle: every run of
//! the node registers the same ones. Labels are fixed words (controller names, outcomes).

use std::future::Future;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

pub struct ManagerMetrics {
    reconciles: Family<ControllerLabel, Counter>,
    reconcile_errors: Family<ControllerLabel, Counter>,
    reconcile_seconds: Histograms<ControllerLabel>,
    proposals: Family<OutcomeLabel, Counter>,
    proposal_seconds: Histogram,
    pub(crate) leader_changes: Counter,
    pub(crate) snapshots: Counter,
    heartbeats_missed: Counter,
    assignments_pushed: Counter,
}

/// 1 ms to about 16 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

pub static METRICS: LazyLock<ManagerMetrics> = LazyLock::new(|| ManagerMetrics {
    reconciles: Family::default(),
    reconcile_errors: Family::default(),
    reconcile_seconds: Family::new_with_constructor(latency),
    proposals: Family::default(),
    proposal_seconds: latency(),
    leader_changes: Counter::default(),
    snapshots: Counter::default(),
    heartbeats_missed: Counter::default(),
    assignments_pushed: Counter::default(),
});

impl ManagerMetrics {
    /// One reconcile pass of a leader-only controller.
    pub fn reconciled(&self, controller: &'static str, took: Duration, failed: bool) {
        let label = ControllerLabel { controller };
        self.reconciles.get_or_create(&label).inc();
        if failed {
            self.reconcile_errors.get_or_create(&label).inc();
        }
        self.reconcile_seconds
            .get_or_create(&label)
            .observe(took.as_secs_f64());
    }

    /// Times one write through `Core::propose` (forwarded or not), committed or refused.
    pub async fn proposal<T, E>(&self, write: impl Future<Output = Result<T, E>>) -> Result<T, E> {
        let started = Instant::now();
        let result = write.await;
        let outcome = if result.is_ok() {
            "committed"
        } else {
            "failed"
        };
        self.proposals
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
        self.proposal_seconds
            .observe(started.elapsed().as_secs_f64());
        result
    }

    /// A node marked Down because its heartbeats stopped.
    pub fn heartbeat_missed(&self) {
        self.heartbeats_missed.inc();
    }

    /// A session message pushed to a worker.
    pub fn assignment_pushed(&self) {
        self.assignments_pushed.inc();
    }

    /// Reconcile passes of `controller` so far, in this process.
    pub fn passes(&self, controller: &'static str) -> u64 {
        self.reconciles
            .get_or_create(&ControllerLabel { controller })
            .get()
    }

    /// Session messages pushed so far, in this process.
    pub fn assignments_pushed(&self) -> u64 {
        self.assignments_pushed.get()
    }
}

/// Adds the manager's counters to a run's registry.
pub fn register(registry: &mut Registry) {
    let m = &*METRICS;
    registry.register(
        "swarmr_controller_reconciles",
        "Reconcile passes of the leader-only controllers",
        m.reconciles.clone(),
    );
    registry.register(
        "swarmr_controller_reconcile_errors",
        "Reconcile passes that failed (retried)",
        m.reconcile_errors.clone(),
    );
    registry.register_with_unit(
        "swarmr_controller_reconcile_duration",
        "Time one reconcile pass took",
        Unit::Seconds,
        m.reconcile_seconds.clone(),
    );
    registry.register(
        "swarmr_raft_proposals",
        "Writes proposed through this manager, by outcome",
        m.proposals.clone(),
    );
    registry.register_with_unit(
        "swarmr_raft_proposal_duration",
        "Time from proposal to commit (including forwarding to the leader)",
        Unit::Seconds,
        m.proposal_seconds.clone(),
    );
    registry.register(
        "swarmr_raft_leader_changes",
        "Times this manager saw the leader change",
        m.leader_changes.clone(),
    );
    registry.register(
        "swarmr_raft_snapshots",
        "Snapshots this manager built or installed",
        m.snapshots.clone(),
    );
    registry.register(
        "swarmr_dispatcher_heartbeats_missed",
        "Nodes this leader marked Down because their heartbeats stopped",
        m.heartbeats_missed.clone(),
    );
    registry.register(
        "swarmr_dispatcher_assignments_pushed",
        "Session messages (assignments, peers) pushed to workers",
        m.assignments_pushed.clone(),
    );
}
