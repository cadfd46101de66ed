//! The session with the dispatcher. Tries the leader first (learned from the last message
//! or from a follower's redirect), then every known manager, with a short capped backoff.
//! While connected it heartbeats at the period the dispatcher asks for; a failed heartbeat
//! or a closed stream sends it back to looking for the leader.

use std::time::Duration;

use rand::Rng;
use swarmr_proto::dispatcher_client::DispatcherClient;
use swarmr_proto::{HeartbeatRequest, NodeDescription, SessionMessage, SessionRequest};
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tracing::{debug, info, warn};

use crate::error::WorkerError;

/// gRPC metadata key a follower sets to the leader's address (see the dispatcher).
const LEADER_METADATA: &str = "x-swarmr-leader";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

pub struct SessionConfig {
    pub node_id: String,
    pub api_addr: String,
    pub description: NodeDescription,
    /// Manager addresses known at start (from the join or the node's saved state).
    pub managers: Vec<String>,
}

/// Runs until shutdown, or until the cluster says this node was removed.
pub async fn run_session(
    config: SessionConfig,
    updates: watch::Sender<Option<SessionMessage>>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), WorkerError> {
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
                outcome = session_with(&config, &addr, &updates) => outcome,
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
                    if let Some(message) = updates.borrow().as_ref() {
                        managers = message
                            .managers
                            .iter()
                            .map(|m| m.api_addr.clone())
                            .collect();
                        leader_hint = message
                            .managers
                            .iter()
                            .find(|m| m.leader && m.api_addr != addr)
                            .map(|m| m.api_addr.clone());
                    }
                    break;
                }
                Ended::Unreachable(status) => {
                    debug!(manager = %addr, %status, "manager unreachable");
                }
            }
        }
        let jitter = rand::thread_rng().gen_range(0..=backoff.as_millis() as u64 / 2);
        tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

enum Ended {
    Redirect(String),
    Removed(String),
    Lost,
    Unreachable(Status),
}

fn channel(addr: &str) -> Result<Channel, Status> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| Status::invalid_argument(e.to_string()))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(1))
        .keep_alive_timeout(Duration::from_secs(2))
        .connect_lazy())
}

async fn session_with(
    config: &SessionConfig,
    addr: &str,
    updates: &watch::Sender<Option<SessionMessage>>,
) -> Ended {
    let mut client = match channel(addr) {
        Ok(channel) => DispatcherClient::new(channel),
        Err(status) => return Ended::Unreachable(status),
    };
    let request = SessionRequest {
        node_id: config.node_id.clone(),
        description: Some(config.description.clone()),
        api_addr: config.api_addr.clone(),
    };
    let mut stream = match client.session(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => return classify(status),
    };
    let first = match stream.next().await {
        Some(Ok(message)) => message,
        Some(Err(status)) => return classify(status),
        None => return Ended::Lost,
    };
    info!(manager = %addr, "session established with the leader");
    let session_id = first.session_id.clone();
    let mut period = Duration::from_millis(first.heartbeat_period_ms.max(100));
    updates.send_replace(Some(first));
    let mut ticker = tokio::time::interval(period);
    loop {
        tokio::select! {
            message = stream.next() => match message {
                Some(Ok(message)) => {
                    let new_period = Duration::from_millis(message.heartbeat_period_ms.max(100));
                    if new_period != period {
                        period = new_period;
                        ticker = tokio::time::interval(period);
                    }
                    updates.send_replace(Some(message));
                }
                Some(Err(status)) => return classify(status),
                None => {
                    warn!(manager = %addr, "session closed by the manager; looking for the leader");
                    return Ended::Lost;
                }
            },
            _ = ticker.tick() => {
                let beat = HeartbeatRequest { node_id: config.node_id.clone(), session_id: session_id.clone() };
                if let Err(status) = client.heartbeat(beat).await {
                    warn!(manager = %addr, %status, "heartbeat failed; reconnecting");
                    return match classify(status) {
                        Ended::Removed(m) => Ended::Removed(m),
                        _ => Ended::Lost,
                    };
                }
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
        Code::NotFound if status.message().contains("not part of the cluster") => {
            Ended::Removed(status.message().to_string())
        }
        _ => Ended::Unreachable(status),
    }
}
