//! What a worker is told: its tasks (ASSIGNED or later) and, for every network they use,
//! every endpoint of that network on other nodes. Endpoints are known from the moment an
//! address is allocated and a node chosen, so peers learn of a task before it starts.
//! Workers report task states back here; a state only moves forward.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use swarmr_proto::{
    Network, NetworkAssignment, Node, RemoteEndpoint, Task, TaskState, TaskStatusUpdate,
};
use tonic::Status;
use tracing::debug;

use crate::core::{update_action, Core};
use crate::error::ProposeError;
use crate::store::apply::CONFLICT;
use crate::store::Object;

fn is_terminal(state: TaskState) -> bool {
    state > TaskState::Running
}

fn state_of(task: &Task) -> TaskState {
    task.status.as_ref().map_or(TaskState::New, |s| s.state())
}

/// Tasks the worker must act on: assigned to it, and not both finished and unwanted.
fn node_tasks<'a>(tasks: &'a [Task], node_id: &str) -> Vec<&'a Task> {
    tasks
        .iter()
        .filter(|t| t.node_id == node_id && state_of(t) >= TaskState::Assigned)
        .filter(|t| !(is_terminal(state_of(t)) && t.desired_state() > TaskState::Running))
        .collect()
}

/// An endpoint holds its address while its task is live and wanted.
fn is_live_endpoint(task: &Task) -> bool {
    !task.node_id.is_empty()
        && !is_terminal(state_of(task))
        && task.desired_state() <= TaskState::Running
}

pub fn for_node(core: &Core, node_id: &str) -> Result<(Vec<Task>, Vec<NetworkAssignment>), Status> {
    let tasks: Vec<Task> = core.store().list()?;
    let mine = node_tasks(&tasks, node_id);
    let wanted: BTreeSet<&str> = mine
        .iter()
        .filter(|t| is_live_endpoint(t))
        .flat_map(|t| t.networks.iter().map(|a| a.network_id.as_str()))
        .collect();
    let networks: BTreeMap<String, Network> = core
        .store()
        .list::<Network>()?
        .into_iter()
        .filter(|n| wanted.contains(n.id.as_str()))
        .map(|n| (n.id.clone(), n))
        .collect();
    let node_addrs: HashMap<String, String> = core
        .store()
        .list::<Node>()?
        .into_iter()
        .map(|n| (n.id.clone(), n.status.map(|s| s.addr).unwrap_or_default()))
        .collect();
    let assignments = networks
        .into_values()
        .map(|network| {
            let peers = tasks
                .iter()
                .filter(|t| t.node_id != node_id && is_live_endpoint(t))
                .flat_map(|t| t.networks.iter().map(move |a| (t, a)))
                .filter(|(_, a)| a.network_id == network.id && !a.addr.is_empty())
                .map(|(t, a)| RemoteEndpoint {
                    task_id: t.id.clone(),
                    addr: a.addr.clone(),
                    node_addr: node_addrs.get(&t.node_id).cloned().unwrap_or_default(),
                })
                .collect();
            NetworkAssignment {
                network: Some(network),
                peers,
            }
        })
        .collect();
    Ok((mine.into_iter().cloned().collect(), assignments))
}

/// Records what a worker reports, as one proposal; only forward moves of its own tasks.
pub async fn record(
    core: &Core,
    node_id: &str,
    updates: &[TaskStatusUpdate],
) -> Result<(), Status> {
    for _ in 0..5 {
        let mut actions = Vec::new();
        for update in updates {
            let Some(status) = &update.status else {
                continue;
            };
            let Some(task) = core.store().get::<Task>(&update.task_id)? else {
                continue;
            };
            let current = state_of(&task);
            if task.node_id != node_id || status.state() <= current || is_terminal(current) {
                debug!(task.id = %task.id, from = ?current, to = ?status.state(), "ignored task status report");
                continue;
            }
            let version = task.version();
            let mut updated = task;
            updated.status = Some(status.clone());
            actions.push(update_action(updated, version));
        }
        if actions.is_empty() {
            return Ok(());
        }
        match core.propose(actions).await {
            Err(ProposeError::Rejected(reason)) if reason.contains(CONFLICT) => continue,
            other => return other.map(|_| ()).map_err(Status::from),
        }
    }
    Err(Status::aborted("task status kept changing; report again"))
}
