//! The slow per-task work, each run in its own spawned task so that one long image pull
//! does not hold up the others: starting a task's container and stopping one. An operation
//! reports through the agent's loop (which keeps reports forward-only) and says when it
//! is done; the loop never runs two operations under one key.

use std::sync::Arc;
use std::time::Duration;

use swarmr_proto::{TaskState, TaskStatus};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::task::{failure, health_state, running, status};
use super::NetworkAttach;
use crate::error::AgentError;
use crate::executor::{ContainerSpec, Executor, ExecutorError, Health};

/// A message from an operation to the agent's loop.
#[derive(Debug)]
pub struct OpMsg {
    pub key: String,
    /// Which operation under this key (a cancelled one's messages are dropped).
    pub op: u64,
    pub event: OpEvent,
}

#[derive(Debug)]
pub enum OpEvent {
    Report(TaskStatus),
    /// The operation ended; reconcile at once if it succeeded (a failed stop waits for the
    /// next periodic reconcile rather than retrying in a tight loop).
    Done {
        reconcile: bool,
    },
}

/// What an operation needs: the executor and its way back to the loop.
pub struct OpCtx<E> {
    pub executor: Arc<E>,
    pub network: Option<Arc<dyn NetworkAttach>>,
    pub key: String,
    pub op: u64,
    pub tx: mpsc::UnboundedSender<OpMsg>,
}

/// The work of one operation.
// Short-lived values, one per step; boxing the spec would only cost a deref.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Work {
    Start(ContainerSpec),
    Stop {
        container_id: String,
        /// Waited before the stop signal, so every node's discovery dropped the task.
        drain: Duration,
        grace: Duration,
        then: Option<TaskStatus>,
    },
}

/// Runs an operation to its end, then tells the loop it is done.
pub async fn perform<E: Executor>(ctx: OpCtx<E>, work: Work) {
    let reconcile = match work {
        Work::Start(spec) => start_task(&ctx, spec).await,
        Work::Stop {
            container_id,
            drain,
            grace,
            then,
        } => {
            if !drain.is_zero() {
                debug!(?drain, "letting discovery drop the task before stopping it");
                tokio::time::sleep(drain).await;
            }
            stop_container(&ctx, container_id, grace, then).await
        }
    };
    ctx.send(OpEvent::Done { reconcile });
}

impl<E: Executor> OpCtx<E> {
    fn send(&self, event: OpEvent) {
        let msg = OpMsg {
            key: self.key.clone(),
            op: self.op,
            event,
        };
        // The loop is gone only when the agent stops; nothing is left to tell.
        let _ = self.tx.send(msg);
    }

    fn report(&self, status: TaskStatus) {
        self.send(OpEvent::Report(status));
    }
}

/// ACCEPTED, PREPARING (the image, pulled if missing; failure is REJECTED), then create,
/// start and wire onto the networks (failure is FAILED), STARTING with the container's
/// health, then RUNNING with the container's id and PID, or, for a container with a
/// health check, once it is healthy (the loop reports that).
async fn start_task<E: Executor>(ctx: &OpCtx<E>, spec: ContainerSpec) -> bool {
    ctx.report(status(TaskState::Accepted, "accepted"));
    ctx.report(status(TaskState::Preparing, "preparing"));
    if let Err(err) = ctx.executor.prepare(&spec).await {
        warn!(image = %spec.image, error = %err.report(), "task rejected: image unavailable");
        ctx.report(failure(TaskState::Rejected, "preparing", err.report()));
        return true;
    }
    let container = match create_and_start(ctx.executor.as_ref(), &spec).await {
        Ok(container) => container,
        Err(err) => {
            warn!(error = %err.report(), "task failed to start");
            ctx.report(failure(TaskState::Failed, "starting", err.report()));
            return true;
        }
    };
    if let (Some(network), Some(pid)) = (&ctx.network, container.pid) {
        if let Err(reason) = network.attach(&ctx.key, pid).await {
            warn!(%reason, "task failed: its container could not be wired");
            let mut status = failure(TaskState::Failed, "starting", format!("network: {reason}"));
            status.container_id = container.container_id.clone();
            ctx.report(status);
            return true;
        }
    }
    let mut starting = status(TaskState::Starting, "starting");
    starting.container_id = container.container_id.clone();
    starting.set_health(health_state(&container));
    ctx.report(starting);
    if matches!(container.health, Some(Health::Starting | Health::Unhealthy)) {
        // RUNNING once healthy: the loop reports it from the container's health.
        info!(container.id = %container.container_id, "task started; waiting for its health check");
        return true;
    }
    info!(container.id = %container.container_id, pid = ?container.pid, "task running");
    ctx.report(running(&container));
    true
}

async fn create_and_start<E: Executor>(
    executor: &E,
    spec: &ContainerSpec,
) -> Result<crate::executor::ContainerStatus, ExecutorError> {
    let container_id = executor.create(spec).await?;
    executor.start(&container_id).await
}

/// Stops (SIGTERM, SIGKILL after `grace`) and removes a container, then reports `then`.
/// A failed stop still removes by force; a failed remove is left to the next reconcile.
async fn stop_container<E: Executor>(
    ctx: &OpCtx<E>,
    container_id: String,
    grace: Duration,
    then: Option<TaskStatus>,
) -> bool {
    match stop_and_remove(ctx.executor.as_ref(), &container_id, grace).await {
        Ok(()) => {
            info!(container.id = %container_id, "container stopped and removed");
            if let Some(status) = then {
                ctx.report(status);
            }
            true
        }
        Err(err) => {
            warn!(error = %err.report(), "container not removed; retrying on the next rescan");
            false
        }
    }
}

async fn stop_and_remove<E: Executor>(
    executor: &E,
    container_id: &str,
    grace: Duration,
) -> Result<(), AgentError> {
    if let Err(source) = executor.stop(container_id, grace).await {
        let err = AgentError::StopContainer {
            container_id: container_id.to_string(),
            source,
        };
        warn!(error = %err.report(), "stop failed; removing by force");
    }
    executor
        .remove(container_id)
        .await
        .map_err(|source| AgentError::RemoveContainer {
            container_id: container_id.to_string(),
            source,
        })
}
