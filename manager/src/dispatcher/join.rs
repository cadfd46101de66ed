//! Admitting a node (`swarmr join`) and letting one go (`swarmr leave`).

use std::collections::BTreeSet;

use swarmr_proto::convert::now_millis;
use swarmr_proto::dispatcher_client::DispatcherClient;
use swarmr_proto::{
    JoinRequest, JoinResponse, LeaveClusterRequest, Node, NodeDescription, NodeRole, NodeSpec,
    NodeState, NodeStatus,
};
use tonic::Status;
use tracing::info;

use super::session::managers;
use crate::ca::{self, TokenCheck};
use crate::core::{create_action, update_action, Core};
use crate::error::CaError;
use crate::limits;

/// A join retried with the key of a node already admitted (the first answer was lost):
/// the same node again, with a fresh certificate and nothing written.
fn rejoin(
    core: &Core,
    cluster: &swarmr_proto::Cluster,
    node: &Node,
    csr_pem: &str,
) -> Result<JoinResponse, Status> {
    let role = node
        .spec
        .as_ref()
        .map_or(NodeRole::Worker, |s| s.desired_role());
    let cert_pem = sign(cluster, csr_pem, &node.id, role)?;
    info!(node.id = %node.id, "join retried with the same key; answering with the node it made");
    Ok(JoinResponse {
        node_id: node.id.clone(),
        cluster_id: cluster.id.clone(),
        role: role as i32,
        managers: managers(core)?,
        raft_id: node.raft_id,
        cert_pem,
    })
}

pub async fn admit(core: &Core, req: JoinRequest) -> Result<JoinResponse, Status> {
    let cluster = core.cluster()?;
    let tokens = cluster.tokens.clone().unwrap_or_default();
    let role = ca::check_token(&req.token, &tokens).map_err(|check| match check {
        TokenCheck::Malformed => Status::invalid_argument(
            "malformed join token: it looks like SWMTKN-1-<50 chars>-<25 chars>; copy it from `swarmr join-token worker` on a manager",
        ),
        TokenCheck::OtherCluster => Status::permission_denied(
            "the join token was issued by another cluster (its CA digest does not match this manager's CA): check the manager address",
        ),
        TokenCheck::Invalid => Status::permission_denied(
            "invalid join token: it was rotated or mistyped; get the current one with `swarmr join-token worker` (or `manager`) on a manager",
        ),
    })?;
    limits::check_api_addr(&req.api_addr)?;
    limits::check_description(&NodeDescription {
        hostname: req.hostname.clone(),
        engine_version: req.engine_version.clone(),
        os: req.os.clone(),
        arch: req.arch.clone(),
        resources: None,
    })?;
    let key_digest = ca::csr_key_digest(&req.csr_pem)
        .map_err(|e| Status::invalid_argument(format!("bad certificate request: {e}")))?;
    let nodes: Vec<Node> = core.store().list()?;
    if let Some(joined) = nodes.iter().find(|n| n.join_key_sha256 == key_digest) {
        return rejoin(core, &cluster, joined, &req.csr_pem);
    }
    let raft_ids: BTreeSet<u64> = nodes.iter().map(|n| n.raft_id).collect();
    let mut raft_id = ca::new_raft_id();
    while raft_ids.contains(&raft_id) {
        raft_id = ca::new_raft_id();
    }
    let node = Node {
        id: ca::new_id(),
        meta: None,
        spec: Some(NodeSpec {
            desired_role: role as i32,
            availability: 0,
            labels: Default::default(),
        }),
        description: Some(NodeDescription {
            hostname: req.hostname.clone(),
            engine_version: req.engine_version.clone(),
            os: req.os.clone(),
            arch: req.arch.clone(),
            // Reported by the node's first session.
            resources: None,
        }),
        status: Some(NodeStatus {
            state: NodeState::Unknown as i32,
            message: "joined; waiting for its first session".into(),
            addr: host_of(&req.api_addr).to_string(),
            since: now_millis(),
        }),
        // The manager role is held once Raft has taken the node in (`add_manager`).
        role: NodeRole::Worker as i32,
        raft_id,
        api_addr: req.api_addr.clone(),
        join_key_sha256: key_digest,
        ..Default::default()
    };
    let node_id = node.id.clone();
    // Signed before anything is written, so a bad request leaves no node behind.
    let cert_pem = sign(&cluster, &req.csr_pem, &node_id, role)?;
    core.propose(vec![create_action(node)]).await?;
    info!(node.id = %node_id, hostname = %req.hostname, role = role.label(), "node joined");
    Ok(JoinResponse {
        node_id,
        cluster_id: cluster.id,
        role: role as i32,
        managers: managers(core)?,
        raft_id,
        cert_pem,
    })
}

/// A new certificate for a node that holds a valid one (`peer`, verified by TLS), in the
/// role the cluster holds for it now: renewal, and re-issue after promote or demote.
pub fn renew(core: &Core, peer: Option<ca::PeerIdentity>, csr_pem: &str) -> Result<String, Status> {
    let peer =
        peer.ok_or_else(|| Status::unauthenticated("renewal needs the node's certificate"))?;
    let node: Node = core.store().get(&peer.id)?.ok_or_else(|| {
        // A follower may not have applied the node's join yet: only the leader knows.
        if !core.is_leader() {
            return Status::unavailable(format!(
                "node {} is not known to this manager yet; ask the leader",
                peer.id
            ));
        }
        Status::permission_denied(format!(
            "node {} is not part of the cluster (it was removed)",
            peer.id
        ))
    })?;
    let role = node
        .spec
        .as_ref()
        .map_or(NodeRole::Worker, |s| s.desired_role());
    let cert = sign(&core.cluster()?, csr_pem, &node.id, role)?;
    info!(node.id = %node.id, role = role.label(), "node certificate renewed");
    Ok(cert)
}

fn sign(
    cluster: &swarmr_proto::Cluster,
    csr_pem: &str,
    node_id: &str,
    role: NodeRole,
) -> Result<String, Status> {
    let cert_role = match role {
        NodeRole::Manager => ca::CertRole::Manager,
        NodeRole::Worker => ca::CertRole::Worker,
    };
    ca::issue_for_cluster(cluster, csr_pem, node_id, cert_role).map_err(|e| match e {
        CaError::BadCsr(_) | CaError::KeyType => Status::invalid_argument(e.to_string()),
        other => Status::internal(format!("issue the node certificate: {other}")),
    })
}

pub fn host_of(api_addr: &str) -> &str {
    api_addr.rsplit_once(':').map_or(api_addr, |(host, _)| host)
}

/// Marks a leaving node Down; a manager first leaves the Raft membership.
pub async fn leave(core: &Core, node_id: &str) -> Result<(), Status> {
    // Membership changes only happen on the leader.
    if !core.is_leader() {
        let (_, addr) = core
            .leader()
            .ok_or_else(|| Status::unavailable("no leader elected yet; retry"))?;
        let request = LeaveClusterRequest {
            node_id: node_id.to_string(),
        };
        DispatcherClient::new(core.channel(&addr)?)
            .max_decoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES)
            .leave_cluster(request)
            .await?;
        return Ok(());
    }
    let node: Node = core
        .store()
        .get(node_id)?
        .ok_or_else(|| Status::not_found(format!("node {node_id} is not in the cluster")))?;
    if node.role() == NodeRole::Manager {
        if core.voters().len() <= 1 {
            return Err(Status::failed_precondition(
                "this is the last manager: leaving would destroy the cluster state; stop the node instead, or remove the data dir if that is what you want",
            ));
        }
        crate::quorum::refuse_quorum_loss(core, node.raft_id, "leaving").await?;
        core.remove_voter(node.raft_id).await?;
    }
    let mut updated = node.clone();
    updated.role = NodeRole::Worker as i32;
    if let Some(spec) = updated.spec.as_mut() {
        spec.set_desired_role(NodeRole::Worker);
    }
    updated.status = Some(NodeStatus {
        state: NodeState::Down as i32,
        message: "node left the cluster".into(),
        since: now_millis(),
        ..node.status.clone().unwrap_or_default()
    });
    core.propose(vec![update_action(updated, 0)]).await?;
    info!(node.id = node_id, "node left the cluster");
    Ok(())
}
