//! The simulated nodes: their `Node` objects, and the reporter that acknowledges the
//! tasks of the nodes that open no session.

use std::collections::{HashMap, HashSet};

use swarmr_proto::dispatcher_client::DispatcherClient;
use swarmr_proto::*;
use tokio::sync::watch;

pub fn description(i: u64) -> NodeDescription {
    NodeDescription {
        hostname: format!("sim-{i:04}"),
        engine_version: "noop".into(),
        os: std::env::consts::OS.into(),
        arch: std::env::consts::ARCH.into(),
        resources: None,
    }
}

/// A worker node as `Join` plus a first session leave it (so opening the session changes
/// nothing).
pub fn sim_node(i: u64, id: &str) -> Node {
    Node {
        id: id.to_string(),
        meta: None,
        spec: Some(NodeSpec {
            desired_role: NodeRole::Worker as i32,
            availability: NodeAvailability::Active as i32,
            labels: Default::default(),
        }),
        description: Some(description(i)),
        status: Some(NodeStatus {
            state: NodeState::Ready as i32,
            message: String::new(),
            addr: "127.0.0.1".into(),
            since: convert::now_millis(),
        }),
        role: NodeRole::Worker as i32,
        raft_id: 0,
        api_addr: format!("127.0.0.1:{}", 20000 + i),
        ..Default::default()
    }
}

/// Reports the ASSIGNED tasks of nodes without a session RUNNING, one call per node.
pub async fn sessionless_reporter(
    channel: tonic::transport::Channel,
    store: swarmr_manager::store::Store,
    nodes: HashSet<String>,
    mut stop: watch::Receiver<bool>,
) {
    let mut client = DispatcherClient::new(channel);
    let mut events = store.subscribe();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = events.recv() => {}
        }
        while events.try_recv().is_ok() {}
        let Ok(tasks) = store.list::<Task>() else {
            continue;
        };
        let mut by_node: HashMap<&str, Vec<TaskStatusUpdate>> = HashMap::new();
        // Resending is harmless: the manager ignores a report that does not move forward.
        let assigned = |t: &&Task| t.current_state() == TaskState::Assigned;
        for task in tasks
            .iter()
            .filter(assigned)
            .filter(|t| nodes.contains(&t.node_id))
        {
            by_node
                .entry(&task.node_id)
                .or_default()
                .push(TaskStatusUpdate {
                    task_id: task.id.clone(),
                    status: Some(TaskStatus {
                        state: TaskState::Running as i32,
                        message: "started (simulated)".into(),
                        timestamp: convert::now_millis(),
                        ..Default::default()
                    }),
                });
        }
        for (node_id, updates) in by_node {
            let node_id = node_id.to_string();
            let request = UpdateTaskStatusRequest {
                node_id,
                session_id: String::new(),
                updates,
            };
            let _ = client.update_task_status(request).await;
        }
    }
}
