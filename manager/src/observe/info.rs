//! `swarmr info`: the cluster at a glance, as the Swarm section of `docker info` shows
//! it, from this manager's replica and its Raft view.

use rustls::pki_types::{pem::PemObject, CertificateDer};
use swarmr_proto::{InfoManager, InfoResponse, Network, Node, NodeRole, Service, Task, TaskState};
use tonic::Status;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::core::Core;

pub async fn info(core: &Core) -> Result<InfoResponse, Status> {
    let cluster = core.cluster()?;
    let store = core.store();
    let nodes: Vec<Node> = store.list()?;
    let tasks: Vec<Task> = store.list()?;
    let leader = core.leader().map(|(id, _)| id);
    let reachable = core.reachable_voters().await;
    let managers = nodes
        .iter()
        .filter(|n| n.role() == NodeRole::Manager)
        .map(|n| InfoManager {
            node_id: n.id.clone(),
            addr: n.api_addr.clone(),
            leader: Some(n.raft_id) == leader,
            reachable: reachable.contains(&n.raft_id),
        })
        .collect::<Vec<_>>();
    let leader_id = managers
        .iter()
        .find(|m| m.leader)
        .map(|m| m.node_id.clone())
        .unwrap_or_default();
    let metrics = core.raft().metrics().borrow().clone();
    let config = core.raft().config();
    let snapshot_interval = match config.snapshot_policy {
        openraft::SnapshotPolicy::LogsSinceLast(n) => n,
        openraft::SnapshotPolicy::Never => 0,
    };
    let running = tasks
        .iter()
        .filter(|t| t.current_state() == TaskState::Running)
        .count();
    Ok(InfoResponse {
        cluster_id: cluster.id.clone(),
        created_at: cluster.meta.as_ref().map_or(0, |m| m.created_at),
        nodes: nodes.len() as u32,
        managers,
        leader_id,
        raft_term: metrics.current_term,
        raft_commit_index: metrics.last_log_index.unwrap_or(0),
        raft_applied_index: metrics.last_applied.map_or(0, |l| l.index),
        snapshot_interval,
        heartbeat_interval_ms: config.heartbeat_interval,
        election_timeout_min_ms: config.election_timeout_min,
        election_timeout_max_ms: config.election_timeout_max,
        dispatcher_heartbeat_ms: cluster.heartbeat_period_ms,
        cert_expiry_secs: cluster.cert_expiry_secs,
        ca_expires_at: expires_at(&cluster.ca_cert_pem).unwrap_or(0),
        node_id: core.node_id().to_string(),
        node_addr: core.api_addr().to_string(),
        node_role: NodeRole::Manager.label().to_string(),
        services: store.list::<Service>()?.len() as u32,
        tasks_running: running as u32,
        networks: store.list::<Network>()?.len() as u32,
    })
}

/// The unix time a PEM certificate expires at.
fn expires_at(pem: &str) -> Option<i64> {
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
    let (_, cert) = X509Certificate::from_der(&der).ok()?;
    Some(cert.validity().not_after.timestamp())
}
