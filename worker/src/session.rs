//! The session with the dispatcher. Tries the leader first (learned from the last message
//! or from a follower's redirect), then every known manager, with a short capped backoff.
//! While connected it heartbeats at the period the dispatcher asks for; a failed heartbeat
//! or a closed stream sends it back to looking for the leader.
//!
//! It also delivers the task agent's status reports: [`run_session`] takes the receiving
//! end of the agent's `reports` channel and drains it at all times, connected or not. While
//! connected, whatever is queued goes to the leader in one `UpdateTaskStatus` call (with
//! this node's id and the session's id). While disconnected, or after a failed call, the
//! latest status per task is kept and sent again once the next session is established;
//! resending is safe, as the manager ignores a status that does not move its task forward.
//!
//! Entry point: `run_session(config, updates, reports, shutdown)`.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use rand::Rng;
use swarmr_proto::dispatcher_client::DispatcherClient;
use swarmr_proto::{
    HeartbeatRequest, NodeDescription, SessionMessage, SessionRequest, TaskStatusUpdate,
    UpdateTaskStatusRequest,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tracing::{debug, info, warn};

use crate::error::WorkerError;

/// gRPC metadata key a follower sets to the leader's address (see the dispatcher).
const LEADER_METADATA: &str = "x-swarmr-leader";
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long one `UpdateTaskStatus` call may take before the session counts as lost.
const REPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most statuses sent in one call.
const MAX_BATCH: usize = 1000;

/// Opens a (lazily connected) channel to the manager at an address: the node's mutual
/// TLS lives in the daemon, which hands the session this.
pub type Connect = std::sync::Arc<dyn Fn(&str) -> Result<Channel, Status> + Send + Sync>;

pub struct SessionConfig {
    pub node_id: String,
    pub api_addr: String,
    pub description: NodeDescription,
    /// Manager addresses known at start (from the join or the node's saved state).
    pub managers: Vec<String>,
    pub connect: Connect,
}

/// Runs until shutdown, or until the cluster says this node was removed. Publishes every
/// session message on `updates`, and delivers the statuses received on `reports` (from
/// [`crate::Agent::run`]) to the leader. A closed `reports` channel is fine (no agent).
pub async fn run_session(
    config: SessionConfig,
    updates: watch::Sender<Option<SessionMessage>>,
    reports: mpsc::Receiver<TaskStatusUpdate>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    let mut outbox = Outbox::new(reports);
    let mut managers = config.managers.clone();
    let mut leader_hint: Option<String> = None;
    let mut backoff = Duration::from_millis(50);
    loop {
        if managers.is_empty() {
            return Err(WorkerError::NoManagers);
        }
        let candidates: Vec<String> = leader_hint
            .take()
            .into_iter()
            .chain(managers.clone())
            .collect();
        for addr in candidates {
            if *shutdown.borrow() {
                return Ok(());
            }
            let outcome = tokio::select! {
                outcome = session_with(&config, &addr, &updates, &mut outbox) => outcome,
                _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
            };
            match outcome {
                Ended::Redirect(leader) => {
                    leader_hint = Some(leader);
                    break;
                }
                Ended::Removed(message) => return Err(WorkerError::Removed(message)),
                Ended::Lost => {
                    // Connected for a while: retry at once, starting with the new leader.
                    backoff = Duration::from_millis(50);
                    if let Some((known, hint)) = managers_after_loss(&updates, &addr) {
                        managers = known;
                        leader_hint = hint;
                    }
                    break;
                }
                Ended::Unreachable(status) => {
                    debug!(manager = %addr, %status, "manager unreachable");
                }
            }
        }
        let jitter = rand::thread_rng().gen_range(0..=backoff.as_millis() as u64 / 2);
        let pause = tokio::time::sleep(backoff + Duration::from_millis(jitter));
        tokio::select! {
            () = outbox.while_draining(pause) => {}
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The managers the last message named, and the leader among them unless it is the one
/// just lost.
fn managers_after_loss(
    updates: &watch::Sender<Option<SessionMessage>>,
    lost: &str,
) -> Option<(Vec<String>, Option<String>)> {
    let last = updates.borrow();
    let message = last.as_ref()?;
    let managers = message
        .managers
        .iter()
        .map(|m| m.api_addr.clone())
        .collect();
    let leader = message
        .managers
        .iter()
        .find(|m| m.leader && m.api_addr != lost)
        .map(|m| m.api_addr.clone());
    Some((managers, leader))
}

enum Ended {
    Redirect(String),
    Removed(String),
    Lost,
    Unreachable(Status),
}

type Stream = tonic::Streaming<SessionMessage>;

/// One session with the manager at `addr`: publishes its messages, heartbeats, and
/// delivers queued statuses, until it ends.
async fn session_with(
    config: &SessionConfig,
    addr: &str,
    updates: &watch::Sender<Option<SessionMessage>>,
    outbox: &mut Outbox,
) -> Ended {
    let mut client = match (config.connect)(addr) {
        Ok(channel) => DispatcherClient::new(channel)
            .max_decoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES),
        Err(status) => return Ended::Unreachable(status),
    };
    let (mut stream, first) = match outbox.while_draining(open(&mut client, config)).await {
        Ok(opened) => opened,
        Err(ended) => return ended,
    };
    info!(manager = %addr, "session established with the leader");
    let ids = (config.node_id.clone(), first.session_id.clone());
    let mut period = Duration::from_millis(first.heartbeat_period_ms.max(100));
    updates.send_replace(Some(first));
    if let Err(ended) = deliver(&mut client, &ids, outbox).await {
        return ended;
    }
    let mut ticker = tokio::time::interval(period);
    loop {
        tokio::select! {
            message = stream.next() => {
                let message = match received(addr, message) {
                    Ok(message) => message,
                    Err(ended) => return ended,
                };
                let new_period = Duration::from_millis(message.heartbeat_period_ms.max(100));
                if new_period != period {
                    period = new_period;
                    ticker = tokio::time::interval(period);
                }
                updates.send_replace(Some(message));
            }
            _ = ticker.tick() => {
                let beat = HeartbeatRequest { node_id: ids.0.clone(), session_id: ids.1.clone() };
                if let Err(status) = client.heartbeat(beat).await {
                    warn!(manager = %addr, %status, "heartbeat failed; reconnecting");
                    return match classify(status) {
                        Ended::Removed(m) => Ended::Removed(m),
                        _ => Ended::Lost,
                    };
                }
            }
            true = outbox.recv(), if outbox.is_open() => {
                if let Err(ended) = deliver(&mut client, &ids, outbox).await {
                    return ended;
                }
            }
        }
    }
}

/// Opens the session stream and waits for its first message.
async fn open(
    client: &mut DispatcherClient<Channel>,
    config: &SessionConfig,
) -> Result<(Stream, SessionMessage), Ended> {
    let request = SessionRequest {
        node_id: config.node_id.clone(),
        description: Some(config.description.clone()),
        api_addr: config.api_addr.clone(),
    };
    let mut stream = client
        .session(request)
        .await
        .map_err(classify)?
        .into_inner();
    match stream.next().await {
        Some(Ok(message)) => Ok((stream, message)),
        Some(Err(status)) => Err(classify(status)),
        None => Err(Ended::Lost),
    }
}

/// A message from the stream, or how the session ended.
fn received(
    addr: &str,
    message: Option<Result<SessionMessage, Status>>,
) -> Result<SessionMessage, Ended> {
    match message {
        Some(Ok(message)) => Ok(message),
        Some(Err(status)) => Err(classify(status)),
        None => {
            warn!(manager = %addr, "session closed by the manager; looking for the leader");
            Err(Ended::Lost)
        }
    }
}

/// Sends every kept status to the leader, in batches. On a failure the leader may not have
/// seen (unreachable, not the leader any more) the statuses stay for the next session; a
/// status the manager refuses outright (e.g. an unknown task) is dropped with a warning.
async fn deliver(
    client: &mut DispatcherClient<Channel>,
    (node_id, session_id): &(String, String),
    outbox: &mut Outbox,
) -> Result<(), Ended> {
    while !outbox.pending.is_empty() {
        let batch = outbox.batch();
        let mut request = tonic::Request::new(UpdateTaskStatusRequest {
            node_id: node_id.clone(),
            session_id: session_id.clone(),
            updates: batch.clone(),
        });
        request.set_timeout(REPORT_TIMEOUT);
        match client.update_task_status(request).await {
            Ok(_) => debug!(count = batch.len(), "task statuses delivered"),
            Err(status) if retryable(status.code()) => {
                warn!(%status, kept = outbox.pending.len(), "task status delivery failed; resending after reconnecting");
                return Err(match classify(status) {
                    Ended::Unreachable(_) => Ended::Lost,
                    ended => ended,
                });
            }
            Err(status) => {
                warn!(%status, dropped = batch.len(), "task statuses refused by the manager");
            }
        }
        outbox.sent(&batch);
    }
    Ok(())
}

/// True if a failed `UpdateTaskStatus` may succeed later, with this or another manager.
fn retryable(code: Code) -> bool {
    !matches!(
        code,
        Code::InvalidArgument | Code::NotFound | Code::Unimplemented | Code::PermissionDenied
    )
}

/// Statuses waiting for delivery: the latest per task.
struct Outbox {
    reports: mpsc::Receiver<TaskStatusUpdate>,
    open: bool,
    pending: BTreeMap<String, TaskStatusUpdate>,
}

impl Outbox {
    fn new(reports: mpsc::Receiver<TaskStatusUpdate>) -> Self {
        Outbox {
            reports,
            open: true,
            pending: BTreeMap::new(),
        }
    }

    fn is_open(&self) -> bool {
        self.open
    }

    /// Waits for a status and keeps it with whatever else is queued; false once the
    /// channel is closed (no agent).
    async fn recv(&mut self) -> bool {
        let Some(update) = self.reports.recv().await else {
            self.open = false;
            return false;
        };
        self.keep(update);
        while let Ok(update) = self.reports.try_recv() {
            self.keep(update);
        }
        true
    }

    /// A later status of a task replaces an earlier one (the agent sends them in order).
    fn keep(&mut self, update: TaskStatusUpdate) {
        self.pending.insert(update.task_id.clone(), update);
    }

    fn batch(&self) -> Vec<TaskStatusUpdate> {
        self.pending.values().take(MAX_BATCH).cloned().collect()
    }

    fn sent(&mut self, batch: &[TaskStatusUpdate]) {
        for update in batch {
            self.pending.remove(&update.task_id);
        }
    }

    /// Runs `work`, keeping statuses as they come meanwhile, so the agent never waits on
    /// a full channel while there is no session.
    async fn while_draining<F: Future>(&mut self, work: F) -> F::Output {
        tokio::pin!(work);
        loop {
            tokio::select! {
                output = &mut work => return output,
                _ = self.recv(), if self.open => {}
            }
        }
    }
}

fn classify(status: Status) -> Ended {
    match status.code() {
        Code::FailedPrecondition => match status
            .metadata()
            .get(LEADER_METADATA)
            .and_then(|v| v.to_str().ok())
        {
            Some(leader) => Ended::Redirect(leader.to_string()),
            None => Ended::Unreachable(status),
        },
        // The dispatcher (NotFound) or, once the node's certificate is refused, the
        // authorization layer (PermissionDenied) says the node was removed.
        Code::NotFound | Code::PermissionDenied
            if status.message().contains("not part of the cluster") =>
        {
            Ended::Removed(status.message().to_string())
        }
        _ => Ended::Unreachable(status),
    }
}
