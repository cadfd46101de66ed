//! Errors of the worker, named for the step that failed.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum WorkerError {
    /// The cluster no longer knows this node: it must leave and join again.
    #[error("{0}")]
    Removed(String),
    #[error("no manager address is known: join the cluster again")]
    NoManagers,
}
