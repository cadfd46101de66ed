//! The executor: runs the worker's tasks as containers.
//!
//! Role: turns a task's [`ContainerSpec`] into a container and reports its status. The
//! worker calls `prepare` (image present, pulled if missing), `create`, `start` (which
//! returns the PID the overlay glue needs to wire the container's network), and `stop`
//! and `remove` when a task ends. After a restart, `list` finds the node's containers
//! to adopt or remove, and `events` reports start, die, OOM and destroy as they happen.
//!
//! Reads: the Docker daemon (containers, images, events, logs). Writes: containers only.
//!
//! Invariants:
//! - It touches only containers labelled with its own node id ([`LABEL_NODE`]): every
//!   list and event subscription filters on that label; the daemon is shared by every
//!   node on the machine (tests, quickstart) and by other users.
//! - Idempotent: `create` returns the container already labelled with the task if there is
//!   one; `stop` and `remove` of a container that does not exist succeed.
//! - Containers get `network_mode: none` (the overlay is wired by netdriver through
//!   netlink), restart policy `no` (the orchestrator restarts tasks, as new tasks) and no
//!   init process unless the spec asks for one. A container's PID changes on every start: re-wire it each time.
//!
//! Layout: `types` (the vocabulary), `convert` (pure mapping to and from Docker's API types),
//! `docker` (the real executor, over bollard), `memory` (an in-memory stand-in for
//! large simulations), `error`.

mod convert;
mod docker;
mod error;
mod memory;
mod types;
mod volumes;

use std::future::Future;
use std::time::Duration;

use futures::stream::BoxStream;

pub use convert::NETWORK_MODE;
pub use docker::{DockerExecutor, DEFAULT_PULL_TIMEOUT};
pub use error::{DockerError, ExecutorError};
pub use memory::MemoryExecutor;
pub use types::{
    ContainerEvent, ContainerEventKind, ContainerOptions, ContainerSpec, ContainerState,
    ContainerStatus, Health, Healthcheck, LogLine, LogStream, LABEL_NODE, LABEL_SERVICE,
    LABEL_TASK,
};

/// Runs containers for tasks. Implemented by [`DockerExecutor`] and [`MemoryExecutor`].
///
/// Not object safe (its futures are `impl Future`): hold it as a type parameter.
pub trait Executor: Send + Sync + 'static {
    /// The engine's version, for the node's description.
    fn engine_version(&self) -> &str;

    /// The CPUs and memory the engine offers its containers, for the node's description.
    fn resources(&self) -> swarmr_proto::Resources;

    /// Makes sure the spec's image is present, pulling it if missing (bounded in time).
    /// Fails with [`ExecutorError::ImageNotFound`] if it cannot be had.
    fn prepare(
        &self,
        spec: &ContainerSpec,
    ) -> impl Future<Output = Result<(), ExecutorError>> + Send;

    /// Creates the task's container and returns its id; if a container labelled with this
    /// node and task exists already, returns that one instead.
    fn create(
        &self,
        spec: &ContainerSpec,
    ) -> impl Future<Output = Result<String, ExecutorError>> + Send;

    /// Starts a container (starting a running one is fine) and returns its status,
    /// including the PID of its main process.
    fn start(
        &self,
        container_id: &str,
    ) -> impl Future<Output = Result<ContainerStatus, ExecutorError>> + Send;

    /// Stops a container: SIGTERM, then SIGKILL after `grace`. A missing one counts as stopped.
    fn stop(
        &self,
        container_id: &str,
        grace: Duration,
    ) -> impl Future<Output = Result<(), ExecutorError>> + Send;

    /// Removes a container, running or not, with its anonymous volumes. A missing one
    /// counts as removed.
    fn remove(&self, container_id: &str) -> impl Future<Output = Result<(), ExecutorError>> + Send;

    /// Every container labelled with this node id, in any state, sorted by name.
    fn list(
        &self,
        node_id: &str,
    ) -> impl Future<Output = Result<Vec<ContainerStatus>, ExecutorError>> + Send;

    /// One container's status; [`ExecutorError::ContainerNotFound`] if it does not exist.
    fn inspect(
        &self,
        container_id: &str,
    ) -> impl Future<Output = Result<ContainerStatus, ExecutorError>> + Send;

    /// Status changes (start, die, OOM, destroy) of this node's containers from the moment
    /// of the call on, even if the stream is first polled later. The stream ends after an
    /// error or when the daemon goes away: subscribe again and reconcile with
    /// [`Executor::list`], as events may have been lost.
    fn events(&self, node_id: &str) -> BoxStream<'static, Result<ContainerEvent, ExecutorError>>;

    /// A container's output (stdout and stderr), its last `tail` lines (all if `None`),
    /// then, if `follow`, new lines until the container stops.
    fn logs(
        &self,
        container_id: &str,
        follow: bool,
        tail: Option<u64>,
    ) -> BoxStream<'static, Result<LogLine, ExecutorError>>;
}
