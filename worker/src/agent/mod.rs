//! The task agent: runs this node's share of the cluster's tasks as containers.
//!
//! Role: a reconcile loop per node. Desired: the tasks of the latest session message (all
//! assigned to this node). Actual: the executor's containers labelled with this node id.
//! It starts what should run, reports what ended, and stops what should not run.
//!
//! Reads: session messages (a watch channel fed by [`crate::session`]), the executor's
//! container list and events. Writes: containers (through the executor) and task status
//! reports (an mpsc channel the session delivers to the leader).
//!
//! Invariants:
//! - States only move forward: a report never names a state at or before the task's state in
//!   the session or the agent's own last report, and nothing follows a terminal state.
//! - It never restarts a container: an exit is reported, and the orchestrator replaces the
//!   task with a new one. It never creates a second container for a task (adoption).
//! - Before the first session message it touches nothing (no orphan removal on start-up).
//! - At most one operation in flight per task; slow work (pulls, starts, stops) runs in
//!   spawned tasks so one slow image does not hold up the others.
//! - Idempotent and periodic: it reconciles on every session message, container event and
//!   finished operation, and every few seconds anyway, against missed events.
//!
//! Layout: `plan` (the pure decisions), `runner` (the loop and the forward-only gate),
//! `ops` (the spawned operations), `task` (task to container spec, status constructors).

mod ops;
mod plan;
mod runner;
mod task;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use swarmr_proto::{SessionMessage, TaskStatusUpdate};
use tokio::sync::{mpsc, watch};
use tracing::{info_span, Instrument};

use crate::executor::Executor;

/// How often the agent reconciles without a reason (missed events).
pub const DEFAULT_RESCAN_PERIOD: Duration = Duration::from_secs(5);
/// How long a stopping container gets between SIGTERM and SIGKILL.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);

/// How long a stopping task that served on a network waits before its container gets the
/// stop signal: the task left discovery when it was told to stop, and this lets every
/// node's DNS and VIP rules drop it first, so no new connection reaches a dying container.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(1);

/// The agent's timings.
#[derive(Debug, Clone, Copy)]
pub struct AgentConfig {
    pub rescan_period: Duration,
    /// For tasks whose spec sets no stop grace period.
    pub stop_grace: Duration,
    pub drain: Duration,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            rescan_period: DEFAULT_RESCAN_PERIOD,
            stop_grace: DEFAULT_STOP_GRACE,
            drain: DEFAULT_DRAIN,
        }
    }
}

/// Wires a just-started container onto its task's networks. The agent awaits it before
/// reporting RUNNING, so that RUNNING means reachable from every host (peers learn of the
/// endpoint at allocation time, before the start).
pub trait NetworkAttach: Send + Sync + 'static {
    /// Wires the container of `task_id`, whose process is `pid`; the error is the reason
    /// the task fails with.
    fn attach<'a>(&'a self, task_id: &'a str, pid: u32) -> BoxFuture<'a, Result<(), String>>;

    /// The nameserver each task of `message` is created with, by task id; tasks left out
    /// keep Docker's default resolv.conf.
    fn nameservers(&self, _message: &SessionMessage) -> HashMap<String, String> {
        HashMap::new()
    }
}

/// The task agent of one node.
pub struct Agent<E: Executor> {
    executor: Arc<E>,
    node_id: String,
    node_hostname: String,
    config: AgentConfig,
    network: Option<Arc<dyn NetworkAttach>>,
}

impl<E: Executor> Agent<E> {
    pub fn new(executor: Arc<E>, node_id: impl Into<String>) -> Self {
        Agent {
            executor,
            node_id: node_id.into(),
            node_hostname: String::new(),
            config: AgentConfig::default(),
            network: None,
        }
    }

    /// Wires each started container through `network` before its task reports RUNNING.
    pub fn with_network_attach(mut self, network: Arc<dyn NetworkAttach>) -> Self {
        self.network = Some(network);
        self
    }

    /// The node's hostname, which hostname templates (`{{.Node.Hostname}}`) expand to.
    pub fn with_node_hostname(mut self, hostname: impl Into<String>) -> Self {
        self.node_hostname = hostname.into();
        self
    }

    /// Changes how often the agent reconciles without a reason.
    pub fn with_rescan_period(mut self, period: Duration) -> Self {
        self.config.rescan_period = period;
        self
    }

    /// Changes how long a stopping networked task waits before its stop signal.
    pub fn with_drain(mut self, drain: Duration) -> Self {
        self.config.drain = drain;
        self
    }

    /// Changes how long a stopping container gets before it is killed.
    pub fn with_stop_grace(mut self, grace: Duration) -> Self {
        self.config.stop_grace = grace;
        self
    }

    /// Runs until `shutdown` turns true (or its sender is dropped). Task statuses go to
    /// `reports`, in order, each moving its task forward. Containers keep running when the
    /// agent stops; a restarted agent adopts them.
    pub async fn run(
        self,
        sessions: watch::Receiver<Option<SessionMessage>>,
        reports: mpsc::Sender<TaskStatusUpdate>,
        shutdown: watch::Receiver<bool>,
    ) {
        let span = info_span!("agent", node.id = %self.node_id);
        let (op_tx, op_rx) = mpsc::unbounded_channel();
        let runner = runner::Runner::new(
            self.executor,
            self.network,
            self.node_id,
            self.node_hostname,
            self.config,
            reports,
            op_tx,
        );
        runner.run(sessions, op_rx, shutdown).instrument(span).await;
    }
}
