//! Node health on the leader: a node whose heartbeat deadline passed is marked Down. A new
//! leader first gives every Ready node a full grace period to reconnect.

use std::time::{Duration, Instant};

use swarmr_proto::convert::now_millis;
use swarmr_proto::{Node, NodeState, NodeStatus};
use tracing::{info, warn};

use super::{heartbeat_period, Sessions, GRACE_PERIODS};
use crate::core::Core;

const TICK: Duration = Duration::from_millis(250);

pub async fn run_health(
    core: Core,
    sessions: Sessions,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut was_leader = false;
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(TICK) => {}
        }
        let leader = core.is_leader();
        if leader && !was_leader {
            adopt_ready_nodes(&core, &sessions);
        }
        if !leader && was_leader {
            sessions.with(|map| map.clear());
        }
        was_leader = leader;
        if leader {
            for node_id in expired(&sessions) {
                mark_down(&core, &node_id).await;
            }
        }
    }
}

/// Ready nodes without a session here get one grace period to open one.
fn adopt_ready_nodes(core: &Core, sessions: &Sessions) {
    let Ok(nodes) = core.store().list::<Node>() else {
        return;
    };
    let deadline = Instant::now() + heartbeat_period(core) * GRACE_PERIODS;
    sessions.with(|map| {
        for node in nodes {
            let ready = node
                .status
                .as_ref()
                .is_some_and(|s| s.state() == NodeState::Ready);
            if ready {
                map.entry(node.id)
                    .or_insert_with(|| (String::new(), deadline));
            }
        }
    });
}

fn expired(sessions: &Sessions) -> Vec<String> {
    let now = Instant::now();
    sessions.with(|map| {
        let gone: Vec<String> = map
            .iter()
            .filter(|(_, (_, deadline))| *deadline < now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            map.remove(id);
        }
        gone
    })
}

async fn mark_down(core: &Core, node_id: &str) {
    let result = core
        .update::<Node>(node_id, |node| {
            let status = node.status.clone().unwrap_or_default();
            if status.state() == NodeState::Down {
                return false;
            }
            node.status = Some(NodeStatus {
                state: NodeState::Down as i32,
                message: "heartbeat failure".into(),
                since: now_millis(),
                ..status
            });
            true
        })
        .await;
    match result {
        Ok(()) => info!(node.id = node_id, "node is Down: heartbeats stopped"),
        Err(e) => warn!(node.id = node_id, error = %e, "could not mark node Down"),
    }
}
