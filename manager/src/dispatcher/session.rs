//! One node's session: mark it Ready, then push its object, the manager list and its
//! assignments whenever they change, until the node goes away, opens a newer session, or
//! this manager stops leading.

use std::time::Instant;

use prost::Message;
use swarmr_proto::convert::now_millis;
use swarmr_proto::limits::MAX_MESSAGE_BYTES;
use swarmr_proto::{
    ManagerPeer, Node, NodeRole, NodeState, NodeStatus, SessionMessage, SessionRequest,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::{debug, error, info, Instrument};

use super::join::host_of;
use super::{heartbeat_period, Sessions, GRACE_PERIODS};
use crate::ca;
use crate::core::Core;
use crate::limits;

pub type SessionStream = ReceiverStream<Result<SessionMessage, Status>>;

pub async fn open(
    core: &Core,
    sessions: &Sessions,
    req: SessionRequest,
) -> Result<SessionStream, Status> {
    let node: Node = core
        .store()
        .get(&req.node_id)?
        .ok_or_else(|| removed(&req.node_id))?;
    // What the node says about itself is stored: check it before anything changes.
    limits::check_api_addr(&req.api_addr)?;
    if let Some(description) = &req.description {
        limits::check_description(description)?;
    }
    let session_id = ca::new_id();
    let period = heartbeat_period(core);
    sessions.with(|map| {
        map.insert(
            node.id.clone(),
            (session_id.clone(), Instant::now() + period * GRACE_PERIODS),
        )
    });
    mark_ready(core, &req).await?;
    let (tx, rx) = mpsc::channel(16);
    let span = tracing::info_span!("session", node.id = %node.id);
    tokio::spawn(push(core.clone(), sessions.clone(), node.id, session_id, tx).instrument(span));
    Ok(ReceiverStream::new(rx))
}

fn removed(node_id: &str) -> Status {
    Status::not_found(format!(
        "node {node_id} is not part of the cluster (it was removed): run `swarmr leave --force` on it and join again"
    ))
}

async fn mark_ready(core: &Core, req: &SessionRequest) -> Result<(), Status> {
    let addr = host_of(&req.api_addr).to_string();
    core.update::<Node>(&req.node_id, |node| {
        let status = node.status.clone().unwrap_or_default();
        let unchanged = status.state() == NodeState::Ready
            && status.addr == addr
            && node.api_addr == req.api_addr
            && node.description == req.description;
        if unchanged {
            return false;
        }
        node.status = Some(NodeStatus {
            state: NodeState::Ready as i32,
            message: String::new(),
            addr: addr.clone(),
            since: now_millis(),
        });
        node.api_addr = req.api_addr.clone();
        if req.description.is_some() {
            node.description = req.description.clone();
        }
        true
    })
    .await?;
    info!(node.id = %req.node_id, "node is Ready");
    Ok(())
}

/// The managers as a node should know them, leader flagged.
pub fn managers(core: &Core) -> Result<Vec<ManagerPeer>, Status> {
    let nodes: Vec<Node> = core.store().list()?;
    Ok(manager_peers(core, &nodes))
}

fn manager_peers<'a>(core: &Core, nodes: impl IntoIterator<Item = &'a Node>) -> Vec<ManagerPeer> {
    let leader = core.leader().map(|(id, _)| id);
    nodes
        .into_iter()
        .filter(|n| n.role() == NodeRole::Manager)
        .map(|n| ManagerPeer {
            leader: Some(n.raft_id) == leader,
            node_id: n.id.clone(),
            api_addr: n.api_addr.clone(),
        })
        .collect()
}

/// Sends the node its message whenever the index says a change concerns it, or the
/// leader changes (the manager list flags it); a burst of changes yields one message.
async fn push(
    core: Core,
    sessions: Sessions,
    node_id: String,
    session_id: String,
    tx: mpsc::Sender<Result<SessionMessage, Status>>,
) {
    let wake = sessions.index.watch(&node_id, &session_id);
    let mut server = core.raft().server_metrics();
    let mut leader = core.leader();
    let mut last_sent: Option<SessionMessage> = None;
    let mut dirty = true;
    loop {
        let current = sessions.with(|m| m.get(&node_id).is_some_and(|(s, _)| *s == session_id));
        if !current || !core.is_leader() {
            break;
        }
        if dirty {
            let message = match message(&core, &sessions, &node_id, &session_id).and_then(fits) {
                Ok(message) => message,
                Err(status) => {
                    let _ = tx.send(Err(status)).await;
                    break;
                }
            };
            if last_sent.as_ref() != Some(&message) {
                if tx.send(Ok(message.clone())).await.is_err() {
                    break;
                }
                crate::observe::METRICS.assignment_pushed();
                last_sent = Some(message);
            }
        }
        dirty = tokio::select! {
            () = wake.notified() => true,
            changed = server.changed() => {
                if changed.is_err() { break; }
                let now = core.leader();
                let moved = now != leader;
                leader = now;
                moved
            }
            _ = tx.closed() => break,
        };
    }
    sessions.index.unwatch(&node_id, &session_id);
    debug!("session stream ended");
}

/// A message the node could not decode (over the gRPC limit) is refused here, with the
/// reason, rather than sent.
fn fits(message: SessionMessage) -> Result<SessionMessage, Status> {
    let size = message.encoded_len();
    if size > MAX_MESSAGE_BYTES {
        error!(
            size,
            max = MAX_MESSAGE_BYTES,
            "a session message is over the message limit"
        );
        return Err(Status::resource_exhausted(format!(
            "this node's assignments ({size} bytes) exceed the {MAX_MESSAGE_BYTES}-byte session message limit: scale services down or spread them over more nodes"
        )));
    }
    Ok(message)
}

fn message(
    core: &Core,
    sessions: &Sessions,
    node_id: &str,
    session_id: &str,
) -> Result<SessionMessage, Status> {
    sessions.index.read(core, |view| {
        let node = view.node(node_id).ok_or_else(|| removed(node_id))?;
        let (tasks, networks) = super::assignments::for_node(view, node_id);
        let discovery = super::discovery::for_networks(view, &networks);
        let (secrets, configs) = super::files::for_tasks(core, &tasks);
        Ok(SessionMessage {
            session_id: session_id.to_string(),
            node: Some(node.clone()),
            managers: manager_peers(core, view.managers()),
            heartbeat_period_ms: view.heartbeat_period().as_millis() as u64,
            tasks,
            networks,
            discovery,
            ingress: super::ingress::for_cluster(view),
            secrets,
            configs,
        })
    })?
}
