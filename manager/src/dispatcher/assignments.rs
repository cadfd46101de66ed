//! What a worker is told: its tasks (ASSIGNED or later) and, for every network they use,
//! every endpoint of that network on other nodes. Endpoints are known from the moment an
//! address is allocated and a node chosen, so peers learn of a task before it starts.
//! Workers report task states back (`report.rs`); a state only moves forward.

use std::collections::BTreeSet;

use swarmr_proto::{NetworkAssignment, RemoteEndpoint, Task, TaskState};

use super::index::View;

/// A task its node must act on: assigned to it, and not both finished and unwanted.
pub(super) fn is_node_task(task: &Task) -> bool {
    !task.node_id.is_empty()
        && task.current_state() >= TaskState::Assigned
        && !(task.current_state().is_terminal() && task.desired_state() > TaskState::Running)
}

/// An endpoint holds its address while its task is live and wanted, and also while a
/// RUNNING task told to stop drains: it has left discovery (no new connection reaches
/// it) but stays wired and known to its peers until it ends, so the connections it has
/// get their stop grace period.
pub(super) fn is_live_endpoint(task: &Task) -> bool {
    let state = task.current_state();
    !task.node_id.is_empty()
        && !state.is_terminal()
        && (task.desired_state() <= TaskState::Running || state == TaskState::Running)
}

/// A node's tasks, and for each network its live tasks use, the endpoints on other nodes.
/// Costs O(the node's tasks + the endpoints of those networks), read from the index.
pub fn for_node(view: &View, node_id: &str) -> (Vec<Task>, Vec<NetworkAssignment>) {
    let mine: Vec<&Task> = view.node_tasks(node_id).collect();
    let wanted: BTreeSet<&str> = mine
        .iter()
        .filter(|t| is_live_endpoint(t))
        .flat_map(|t| t.networks.iter().map(|a| a.network_id.as_str()))
        .collect();
    let assignments = wanted
        .into_iter()
        .filter_map(|id| view.network(id))
        // The mesh's network is wired from the ingress part of the message.
        .filter(|network| !network.is_ingress())
        .map(|network| {
            let peers = view
                .endpoints(&network.id)
                .filter(|t| t.node_id != node_id)
                // A draining task on a Down node will never report its end: drop it.
                .filter(|t| {
                    t.desired_state() <= TaskState::Running || !view.node_is_down(&t.node_id)
                })
                .flat_map(|t| t.networks.iter().map(move |a| (t, a)))
                .filter(|(_, a)| a.network_id == network.id && !a.addr.is_empty())
                .map(|(t, a)| RemoteEndpoint {
                    task_id: t.id.clone(),
                    addr: a.addr.clone(),
                    node_addr: view.node_addr(&t.node_id).to_string(),
                })
                .collect();
            NetworkAssignment {
                network: Some(network.clone()),
                peers,
            }
        })
        .collect();
    (mine.into_iter().cloned().collect(), assignments)
}
