//! `swarmr node ...`: list, inspect, update (availability, labels, role) and remove.

use std::collections::BTreeSet;

use swarmr_proto::{
    ManagerReachability, Node, NodeRole, NodeSpec, NodeState, NodeView, UpdateNodeRequest,
};
use tonic::Status;

use super::resolve::resolve;
use crate::core::{delete_action, update_action, Core};
use crate::raft::NodeId;
use crate::store::Object;

pub async fn list(core: &Core) -> Result<Vec<NodeView>, Status> {
    let nodes: Vec<Node> = core.store().list()?;
    let reachable = core.reachable_voters().await;
    let leader = core.leader().map(|(id, _)| id);
    let mut views: Vec<NodeView> = nodes
        .into_iter()
        .map(|node| view(core, node, leader, &reachable))
        .collect();
    views.sort_by(|a, b| hostname(a).cmp(hostname(b)));
    Ok(views)
}

fn hostname(view: &NodeView) -> &str {
    view.node
        .as_ref()
        .and_then(|n| n.description.as_ref())
        .map_or("", |d| d.hostname.as_str())
}

pub async fn get(core: &Core, reference: &str) -> Result<NodeView, Status> {
    let node: Node = resolve(core, reference)?;
    let reachable = core.reachable_voters().await;
    let leader = core.leader().map(|(id, _)| id);
    Ok(view(core, node, leader, &reachable))
}

fn view(core: &Core, node: Node, leader: Option<NodeId>, reachable: &BTreeSet<NodeId>) -> NodeView {
    let manager_status = if node.role() != NodeRole::Manager {
        ManagerReachability::None
    } else if Some(node.raft_id) == leader {
        ManagerReachability::Leader
    } else if node.raft_id == core.raft_id() || reachable.contains(&node.raft_id) {
        ManagerReachability::Reachable
    } else {
        ManagerReachability::Unreachable
    };
    NodeView {
        is_self: node.id == core.node_id(),
        node: Some(node),
        manager_status: manager_status as i32,
    }
}

pub async fn update(core: &Core, req: UpdateNodeRequest) -> Result<NodeView, Status> {
    let node: Node = resolve(core, &req.reference)?;
    if req.version != 0 && req.version != node.version() {
        return Err(Status::aborted(format!(
            "update out of sequence: node {} changed since version {} was read; read it again",
            node.id, req.version
        )));
    }
    let mut updated = node.clone();
    let spec = updated.spec.get_or_insert_with(NodeSpec::default);
    if let Some(availability) = req.availability {
        spec.availability = availability;
    }
    for key in &req.label_rm {
        if spec.labels.remove(key).is_none() {
            return Err(Status::invalid_argument(format!(
                "node {} has no label {key:?}",
                node.id
            )));
        }
    }
    for (key, value) in &req.label_add {
        if key.is_empty() {
            return Err(Status::invalid_argument(
                "a label key must not be empty (use key=value)",
            ));
        }
        spec.labels.insert(key.clone(), value.clone());
    }
    crate::limits::check_labels("node labels (--label-add)", &spec.labels)?;
    if let Some(role) = req.role {
        let role =
            NodeRole::try_from(role).map_err(|_| Status::invalid_argument("unknown role"))?;
        if role == NodeRole::Worker && spec.desired_role() == NodeRole::Manager {
            refuse_last_manager(core, &node)?;
            if node.role() == NodeRole::Manager {
                let action = format!("demoting node {}", node.id);
                crate::quorum::refuse_quorum_loss(core, node.raft_id, &action).await?;
            }
        }
        spec.set_desired_role(role);
    }
    if updated == node {
        return get(core, &node.id).await;
    }
    core.propose(vec![update_action(updated, node.version())])
        .await?;
    get(core, &node.id).await
}

fn refuse_last_manager(core: &Core, node: &Node) -> Result<(), Status> {
    let nodes: Vec<Node> = core.store().list()?;
    let others = nodes
        .iter()
        .filter(|n| n.id != node.id)
        .filter(|n| {
            n.spec
                .as_ref()
                .is_some_and(|s| s.desired_role() == NodeRole::Manager)
        })
        .count();
    if others == 0 {
        return Err(Status::failed_precondition(format!(
            "node {} is the last manager of the cluster: promote another node before demoting it",
            node.id
        )));
    }
    Ok(())
}

pub async fn remove(core: &Core, reference: &str, force: bool) -> Result<(), Status> {
    let node: Node = resolve(core, reference)?;
    let is_manager = node.role() == NodeRole::Manager
        || node
            .spec
            .as_ref()
            .is_some_and(|s| s.desired_role() == NodeRole::Manager);
    if is_manager {
        return Err(Status::failed_precondition(format!(
            "node {} is a manager: demote it first with `swarmr node demote {}`",
            node.id, node.id
        )));
    }
    let ready = node
        .status
        .as_ref()
        .is_some_and(|s| s.state() == NodeState::Ready);
    if ready && !force {
        return Err(Status::failed_precondition(format!(
            "node {} is Ready: run `swarmr leave` on it first, or remove it anyway with --force",
            node.id
        )));
    }
    core.propose(vec![delete_action(node)]).await?;
    Ok(())
}
