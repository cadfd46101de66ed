//! Errors of the worker, named for the step that failed.

use thiserror::Error;

use crate::executor::ExecutorError;

#[derive(Debug, Error)]
pub enum WorkerError {
    /// The cluster no longer knows this node: it must leave and join again.
    #[error("{0}")]
    Removed(String),
    #[error("no manager address is known: join the cluster again")]
    NoManagers,
}

/// Errors of the task agent's reconcile loop. Failures of one task's container are not
/// errors here: they become that task's FAILED or REJECTED status.
#[derive(Debug, Error)]
pub enum AgentError {
    /// Reading this node's containers failed; nothing can be decided without them.
    #[error("list the containers of node {node_id}")]
    ListContainers {
        node_id: String,
        #[source]
        source: ExecutorError,
    },
    /// Stopping a container failed; the next reconcile tries again.
    #[error("stop container {container_id}")]
    StopContainer {
        container_id: String,
        #[source]
        source: ExecutorError,
    },
    /// Removing a container failed; the next reconcile tries again.
    #[error("remove container {container_id}")]
    RemoveContainer {
        container_id: String,
        #[source]
        source: ExecutorError,
    },
}

impl AgentError {
    /// The error and its causes on one line, `step: cause: cause`.
    pub fn report(&self) -> String {
        chain(self)
    }
}

/// An error and its causes on one line, `step: cause: cause`, for logs and task errors.
pub use swarmr_netdriver::error_chain as chain;
