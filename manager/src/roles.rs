//! The role controller, on the leader: a node asked to become a worker (`node demote`)
//! leaves the Raft membership, then its role is recorded as worker. Promotion is driven by
//! the promoted node itself, which starts Raft and asks to be added (`Core::add_manager`).
//! Idempotent: a new leader finishes what an old one started.

use std::time::Duration;

use swarmr_proto::{Node, NodeRole};
use tracing::{info, warn};

use crate::core::Core;
use crate::error::ProposeError;

const TICK: Duration = Duration::from_millis(500);

pub async fn run_roles(core: Core, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(TICK) => {}
        }
        if !core.is_settled_leader() {
            continue;
        }
        let Ok(nodes) = core.store().list::<Node>() else {
            continue;
        };
        for node in nodes.iter().filter(|n| demotion_pending(n)) {
            if let Err(e) = demote(&core, node).await {
                warn!(node.id = %node.id, error = %e, "demotion not finished; will retry");
            }
        }
    }
}

fn demotion_pending(node: &Node) -> bool {
    node.role() == NodeRole::Manager
        && node
            .spec
            .as_ref()
            .is_some_and(|s| s.desired_role() == NodeRole::Worker)
}

async fn demote(core: &Core, node: &Node) -> Result<(), ProposeError> {
    if core.voters().contains(&node.raft_id) {
        // Asked when the quorum was there; a manager lost since must not freeze writes.
        let action = format!("removing demoted node {} from Raft", node.id);
        if let Err(status) = crate::quorum::refuse_quorum_loss(core, node.raft_id, &action).await {
            return Err(ProposeError::Membership(status.message().to_string()));
        }
        info!(node.id = %node.id, "removing demoted manager from Raft");
        core.remove_voter(node.raft_id).await?;
    }
    core.update::<Node>(&node.id, |n| {
        if n.role() == NodeRole::Worker {
            return false;
        }
        n.set_role(NodeRole::Worker);
        true
    })
    .await
}
