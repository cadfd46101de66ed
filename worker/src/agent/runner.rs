//! The agent's loop: keeps the latest session's tasks, lists this node's containers,
//! plans, and applies the plan (reports through the forward-only gate, slow work in
//! spawned operations).

use std::collections::{BTreeMap, HashMap};
use std::future;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, BoxStream};
use futures::StreamExt;
use swarmr_proto::{SessionMessage, Task, TaskState, TaskStatus, TaskStatusUpdate};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, info_span, warn, Instrument};

use super::ops::{perform, OpCtx, OpEvent, OpMsg, Work};
use super::plan::{advances, known_state, only_echoes, plan, Action, OpKind, View};
use super::task::{failure, stop_grace};
use super::{AgentConfig, NetworkAttach};
use crate::error::AgentError;
use crate::executor::{ContainerEvent, ContainerEventKind, Executor, ExecutorError};
use swarmr_proto::convert::now_millis;

/// How long to wait before subscribing to container events again after the stream failed.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);

type Events = BoxStream<'static, Result<ContainerEvent, ExecutorError>>;

/// The agent's state between reconciles. Dropping it aborts the operations in flight.
pub struct Runner<E: Executor> {
    executor: Arc<E>,
    network: Option<Arc<dyn NetworkAttach>>,
    node_id: String,
    node_hostname: String,
    config: AgentConfig,
    /// The latest session message's tasks; `None` before the first message.
    tasks: Option<BTreeMap<String, Task>>,
    /// The nameserver (its network's DNS) each networked task's container is created with.
    nameservers: HashMap<String, String>,
    /// The secrets and configs the session delivered, and their files on tmpfs.
    files: crate::files::TaskFiles,
    /// The latest state reported per task of the session.
    reported: HashMap<String, TaskState>,
    busy: HashMap<String, OpKind>,
    handles: HashMap<String, (u64, AbortHandle)>,
    next_op: u64,
    op_tx: mpsc::UnboundedSender<OpMsg>,
    reports: mpsc::Sender<TaskStatusUpdate>,
}

/// How long to wait before reconciling again after a failed reconcile.
pub fn error_policy(err: &AgentError) -> Duration {
    match err {
        AgentError::ListContainers { .. } => Duration::from_secs(1),
        AgentError::StopContainer { .. } | AgentError::RemoveContainer { .. } => {
            Duration::from_secs(5)
        }
    }
}

impl<E: Executor> Runner<E> {
    pub fn new(
        executor: Arc<E>,
        network: Option<Arc<dyn NetworkAttach>>,
        node_id: String,
        node_hostname: String,
        config: AgentConfig,
        reports: mpsc::Sender<TaskStatusUpdate>,
        op_tx: mpsc::UnboundedSender<OpMsg>,
    ) -> Self {
        let files = crate::files::TaskFiles::for_node(&node_id);
        Runner {
            executor,
            network,
            node_id,
            node_hostname,
            config,
            tasks: None,
            nameservers: HashMap::new(),
            files,
            reported: HashMap::new(),
            busy: HashMap::new(),
            handles: HashMap::new(),
            next_op: 0,
            op_tx,
            reports,
        }
    }

    /// Reconciles on every session message, container event, finished operation and
    /// rescan tick, until shutdown. Bursts coalesce: a reconcile runs once nothing else
    /// is ready.
    pub async fn run(
        mut self,
        mut sessions: watch::Receiver<Option<SessionMessage>>,
        mut op_rx: mpsc::UnboundedReceiver<OpMsg>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut events = self.executor.events(&self.node_id);
        let mut ticker = tokio::time::interval(self.config.rescan_period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut sessions_open = true;
        let mut retry_at: Option<Instant> = None;
        let mut dirty = true;
        if let Some(message) = sessions.borrow_and_update().clone() {
            self.set_session(message);
        }
        loop {
            tokio::select! {
                biased;
                () = stopped(&mut shutdown) => break,
                changed = sessions.changed(), if sessions_open => {
                    match changed {
                        Ok(()) => {
                            if let Some(message) = sessions.borrow_and_update().clone() {
                                dirty |= self.set_session(message);
                            }
                        }
                        Err(_) => {
                            sessions_open = false;
                            dirty = true;
                        }
                    }
                }
                Some(msg) = op_rx.recv() => dirty |= self.on_op(msg).await,
                event = events.next() => match on_event(event) {
                    Some(reconcile) => dirty |= reconcile,
                    None => {
                        events = resubscribe(self.executor.clone(), self.node_id.clone());
                        dirty = true;
                    }
                },
                _ = ticker.tick() => dirty = true,
                _ = sleep_until(retry_at), if retry_at.is_some() => {
                    retry_at = None;
                    dirty = true;
                }
                _ = future::ready(()), if dirty => {
                    dirty = false;
                    if let Err(err) = self.reconcile().await {
                        let delay = error_policy(&err);
                        warn!(error = %err.report(), retry_in = ?delay, "reconcile failed");
                        retry_at = Some(Instant::now() + delay);
                    }
                }
            }
        }
        info!("task agent stopped");
    }

    /// Takes a session message's tasks as the desired state; false when it changes
    /// nothing the plan reads (`only_echoes`, and the same nameservers).
    fn set_session(&mut self, mut message: SessionMessage) -> bool {
        self.files.update(
            std::mem::take(&mut message.secrets),
            std::mem::take(&mut message.configs),
        );
        let nameservers = self
            .network
            .as_ref()
            .map(|n| n.nameservers(&message))
            .unwrap_or_default();
        let tasks: BTreeMap<String, Task> = message
            .tasks
            .into_iter()
            .map(|task| (task.id.clone(), task))
            .collect();
        let changed = nameservers != self.nameservers
            || !only_echoes(self.tasks.as_ref(), &tasks, &self.reported);
        self.nameservers = nameservers;
        self.reported.retain(|id, _| tasks.contains_key(id));
        debug!(tasks = tasks.len(), changed, "session message");
        self.tasks = Some(tasks);
        changed
    }

    /// Handles an operation's message; true if a reconcile should follow.
    async fn on_op(&mut self, msg: OpMsg) -> bool {
        let current = self.handles.get(&msg.key).map(|(op, _)| *op) == Some(msg.op);
        if !current {
            return false;
        }
        match msg.event {
            OpEvent::Report(status) => {
                self.report(msg.key, status).await;
                false
            }
            OpEvent::Done { reconcile } => {
                self.handles.remove(&msg.key);
                self.busy.remove(&msg.key);
                reconcile
            }
        }
    }

    async fn reconcile(&mut self) -> Result<(), AgentError> {
        let containers = self.executor.list(&self.node_id).await.map_err(|source| {
            AgentError::ListContainers {
                node_id: self.node_id.clone(),
                source,
            }
        })?;
        let actions = plan(&View {
            tasks: self.tasks.as_ref(),
            containers: &containers,
            busy: &self.busy,
            reported: &self.reported,
            node_id: &self.node_id,
            node_hostname: &self.node_hostname,
        });
        for action in actions {
            self.apply(action).await;
        }
        self.prune_files();
        Ok(())
    }

    /// Drops the files of tasks that ended or left the session.
    fn prune_files(&self) {
        let Some(tasks) = self.tasks.as_ref() else {
            return;
        };
        let live = tasks
            .values()
            .filter(|t| !known_state(t, &self.reported).is_terminal())
            .map(|t| t.id.as_str())
            .collect();
        self.files.prune(&live);
    }

    async fn apply(&mut self, action: Action) {
        match action {
            Action::Report { task_id, status } => self.report(task_id, status).await,
            Action::Start { mut spec } => {
                spec.dns
                    .extend(self.nameservers.get(&spec.task_id).cloned());
                let task = self.tasks.as_ref().and_then(|t| t.get(&spec.task_id));
                match task
                    .map(|t| self.files.materialize(t))
                    .unwrap_or(Ok(Vec::new()))
                {
                    Ok(binds) => spec.binds.extend(binds),
                    Err(reason) => {
                        warn!(task.id = %spec.task_id, %reason, "task failed: its files");
                        let status = failure(TaskState::Rejected, "preparing", reason);
                        return self.report(spec.task_id, status).await;
                    }
                }
                self.spawn(spec.task_id.clone(), OpKind::Start, Work::Start(spec));
            }
            Action::Stop {
                key,
                container_id,
                then,
            } => {
                let (drain, grace) = self.stop_timings(&key);
                let work = Work::Stop {
                    container_id,
                    drain,
                    grace,
                    then,
                };
                self.spawn(key, OpKind::Stop, work);
            }
            Action::Cancel { key } => {
                self.busy.remove(&key);
                if let Some((_, handle)) = self.handles.remove(&key) {
                    handle.abort();
                    info!(task.id = %key, "cancelled the start in flight");
                }
            }
        }
    }

    /// The drain before the stop signal (for a task that may be in discovery: on a
    /// network, and RUNNING as far as the manager knows) and the grace period after it.
    fn stop_timings(&self, key: &str) -> (Duration, Duration) {
        let Some(task) = self.tasks.as_ref().and_then(|tasks| tasks.get(key)) else {
            return (Duration::ZERO, self.config.stop_grace);
        };
        let grace = stop_grace(task, self.config.stop_grace);
        let served = !task.networks.is_empty() && task.current_state() == TaskState::Running;
        let drain = if served {
            self.config.drain
        } else {
            Duration::ZERO
        };
        (drain, grace)
    }

    fn spawn(&mut self, key: String, kind: OpKind, work: Work) {
        self.next_op += 1;
        let ctx = OpCtx {
            executor: self.executor.clone(),
            network: self.network.clone(),
            key: key.clone(),
            op: self.next_op,
            tx: self.op_tx.clone(),
        };
        let span = info_span!("task", task.id = %key);
        let handle = tokio::spawn(perform(ctx, work).instrument(span));
        self.handles
            .insert(key.clone(), (self.next_op, handle.abort_handle()));
        self.busy.insert(key, kind);
    }

    /// Sends a status if it moves the task forward and the task is in the session.
    async fn report(&mut self, task_id: String, mut status: TaskStatus) {
        let Some(task) = self.tasks.as_ref().and_then(|tasks| tasks.get(&task_id)) else {
            debug!(task.id = %task_id, "status of a task no longer in the session dropped");
            return;
        };
        let known = known_state(task, &self.reported);
        let next = status.state();
        if !advances(known, next) {
            debug!(task.id = %task_id, ?known, ?next, "status would not move forward; dropped");
            return;
        }
        self.reported.insert(task_id.clone(), next);
        status.timestamp = now_millis();
        info!(task.id = %task_id, state = ?next, message = %status.message, error = %status.error, "task status");
        let update = TaskStatusUpdate {
            task_id,
            status: Some(status),
        };
        if self.reports.send(update).await.is_err() {
            debug!("nobody receives task statuses any more");
        }
    }
}

impl<E: Executor> Drop for Runner<E> {
    fn drop(&mut self) {
        for (_, handle) in self.handles.values() {
            handle.abort();
        }
    }
}

/// Whether a container event calls for a reconcile; `None` if the stream failed or ended
/// (subscribe again, and reconcile as events may have been lost). A start needs no
/// reconcile: the agent's own start operation reports it.
fn on_event(event: Option<Result<ContainerEvent, ExecutorError>>) -> Option<bool> {
    match event {
        Some(Ok(event)) => {
            debug!(task.id = %event.task_id, container.id = %event.container_id, kind = ?event.kind, "container event");
            Some(event.kind != ContainerEventKind::Start)
        }
        Some(Err(err)) => {
            warn!(error = %err.report(), "container events failed; subscribing again");
            None
        }
        None => {
            warn!("container events ended; subscribing again");
            None
        }
    }
}

/// The events stream again, after a pause (the daemon may be restarting).
fn resubscribe<E: Executor>(executor: Arc<E>, node_id: String) -> Events {
    stream::once(tokio::time::sleep(RESUBSCRIBE_DELAY))
        .flat_map(move |()| executor.events(&node_id))
        .boxed()
}

/// Resolves once shutdown is asked for (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`: drop it here.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => future::pending().await,
    }
}
