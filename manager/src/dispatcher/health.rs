//! Node health on the leader: a node whose heartbeat deadline passed is marked Down. A new
//! leader first gives every Ready node a full grace period to reconnect.

use std::time::{Duration, Instant};

use swarmr_proto::convert::now_millis;
use swarmr_proto::{Node, NodeState, NodeStatus};
use tracing::{info, warn};

use super::{heartbeat_period, Sessions, GRACE_PERIODS};
use crate::core::Core;

const TICK: Duration = Duration::from_millis(100);

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
        let leader = core.is_settled_leader();
        if leader && !was_leader {
            adopt_ready_nodes(&core, &sessions);
        }
        if !leader && was_leader {
            sessions.with(|map| map.clear());
        }
        was_leader = leader;
        if leader {
            for (node_id, session_id) in expired(&sessions) {
                mark_down(&core, &sessions, &node_id, &session_id).await;
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

/// Sessions whose deadline passed: (node id, session id). They stay in the map until
/// the node's Down state commits, so a failed write is retried on the next tick.
fn expired(sessions: &Sessions) -> Vec<(String, String)> {
    let now = Instant::now();
    sessions.with(|map| {
        map.iter()
            .filter(|(_, (_, deadline))| *deadline < now)
            .map(|(node, (session, _))| (node.clone(), session.clone()))
            .collect()
    })
}

/// What to do once a node's Down state committed, given its session entry now.
#[derive(Debug, PartialEq, Eq)]
enum AfterDown {
    /// The expired session is still the node's: forget it (the node must open a new one).
    Forget,
    /// The node opened a newer session meanwhile, whose Ready may have committed before
    /// the Down: mark it Ready again.
    Revive,
    /// The entry went (leadership moved): nothing to do.
    Nothing,
}

fn after_down(entry: Option<&(String, Instant)>, expired_session: &str) -> AfterDown {
    match entry {
        Some((session, _)) if session == expired_session => AfterDown::Forget,
        Some(_) => AfterDown::Revive,
        None => AfterDown::Nothing,
    }
}

async fn mark_down(core: &Core, sessions: &Sessions, node_id: &str, session_id: &str) {
    let result = set_state(core, node_id, NodeState::Down, "heartbeat failure").await;
    if let Err(e) = result {
        if matches!(core.store().get::<Node>(node_id), Ok(None)) {
            // Removed meanwhile (`node rm --force`): nothing left to mark.
            forget_if_same(sessions, node_id, session_id);
            return;
        }
        warn!(node.id = node_id, error = %e, "could not mark node Down; will retry");
        return;
    }
    info!(node.id = node_id, "node is Down: heartbeats stopped");
    crate::observe::METRICS.heartbeat_missed();
    // One look under the lock: a session opened now is either seen here or opens after.
    let next = sessions.with(|map| {
        let next = after_down(map.get(node_id), session_id);
        if next == AfterDown::Forget {
            map.remove(node_id);
        }
        next
    });
    if next == AfterDown::Revive {
        match set_state(core, node_id, NodeState::Ready, "").await {
            Ok(()) => info!(
                node.id = node_id,
                "node is Ready: it reconnected while being marked Down"
            ),
            Err(e) => {
                warn!(node.id = node_id, error = %e, "could not mark a reconnected node Ready")
            }
        }
    }
}

fn forget_if_same(sessions: &Sessions, node_id: &str, session_id: &str) {
    sessions.with(|map| {
        if after_down(map.get(node_id), session_id) == AfterDown::Forget {
            map.remove(node_id);
        }
    });
}

async fn set_state(
    core: &Core,
    node_id: &str,
    state: NodeState,
    message: &str,
) -> Result<(), crate::error::ProposeError> {
    core.update::<Node>(node_id, |node| {
        let status = node.status.clone().unwrap_or_default();
        if status.state() == state {
            return false;
        }
        node.status = Some(NodeStatus {
            state: state as i32,
            message: message.into(),
            since: now_millis(),
            ..status
        });
        true
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_opened_while_marking_down_is_not_lost() {
        let now = Instant::now();
        let entry = |s: &str| (s.to_string(), now);
        assert_eq!(after_down(Some(&entry("s1")), "s1"), AfterDown::Forget);
        assert_eq!(after_down(Some(&entry("s2")), "s1"), AfterDown::Revive);
        assert_eq!(after_down(None, "s1"), AfterDown::Nothing);
    }

    #[test]
    fn an_expired_session_stays_until_down_commits() {
        let sessions = Sessions::default();
        let past = Instant::now() - Duration::from_secs(1);
        sessions.with(|map| map.insert("n1".into(), ("s1".into(), past)));
        assert_eq!(expired(&sessions), [("n1".to_string(), "s1".to_string())]);
        // Not removed by looking: a failed Down write is retried on the next tick.
        assert_eq!(expired(&sessions).len(), 1);
    }
}
