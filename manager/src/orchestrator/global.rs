//! Global mode: one task per eligible node, created with `node_id` set and slot 0.
//!
//! - A node gets a new task when it is Ready or Unknown, Active, and meets the
//!   service's constraints.
//! - A node keeps its task while it exists, is not Down, is not Drain and meets the
//!   constraints; a Paused node keeps its task but gets no new one.
//! - A task that ended restarts on the same node per the restart policy.
//! - Tasks without a node or with a slot other than 0 (a replicated task in a global
//!   service) are stopped.
//! - A rolling update replaces the tasks node by node, as `updater` does for replicas
//!   (a node is a slot); during a stop-first rollout a node whose old task is still
//!   stopping gets its new task only once that one has stopped.

use std::collections::{BTreeMap, BTreeSet};

use swarmr_proto::{Node, NodeAvailability, NodeState, Service, Task, TaskState, UpdateOrder};

use super::slot::{current, restart_ended, trim_history};
use super::updater::{self, Board, Rollout};
use super::{wants_running, Ctx};
use crate::constraint::{node_matches, Constraint};

/// Reconciles one global service's tasks against every node.
pub fn reconcile(
    ctx: &mut Ctx<'_>,
    service: &Service,
    constraints: &[Constraint],
    tasks: &[&Task],
    nodes: &[Node],
) {
    let mut by_node: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
    for task in tasks {
        if task.slot == 0 && !task.node_id.is_empty() {
            by_node.entry(&task.node_id).or_default().push(task);
        } else {
            ctx.shutdown(task);
        }
    }
    let rollout = Rollout::of(service);
    let stop_first = rollout
        .as_ref()
        .is_some_and(|r| r.config.order() == UpdateOrder::StopFirst);
    let mut board = Board::default();
    let mut sorted: Vec<&Node> = nodes.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let mut created: BTreeMap<&str, usize> = BTreeMap::new();
    for node in sorted {
        let tasks = by_node
            .get(node.id.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        if updater::handover(ctx, service, tasks, &mut board) {
            continue;
        }
        if stop_first && old_task_stopping(tasks) && can_create(constraints, node) {
            board.in_flight += 1;
            continue;
        }
        match reconcile_node(ctx, service, constraints, node, tasks) {
            None => board.observe(ctx, service, tasks),
            Some(0) => {}
            Some(made) => {
                board.in_flight += 1;
                created.insert(&node.id, made);
            }
        }
    }
    if let Some(rollout) = rollout {
        for replaced in updater::advance(ctx, service, &rollout, &board, tasks) {
            *created.entry(replaced.node_id.as_str()).or_default() += 1;
        }
    }
    let known: BTreeSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    for (node_id, tasks) in &by_node {
        if !known.contains(node_id) {
            // The node was removed from the cluster.
            tasks.iter().for_each(|t| ctx.shutdown(t));
        }
        trim_history(ctx, tasks, created.get(node_id).copied().unwrap_or(0));
    }
}

/// A stop-first rollout stopped the node's task and nothing replaced it yet: no task is
/// wanted and one is still stopping.
fn old_task_stopping(tasks: &[&Task]) -> bool {
    !tasks.iter().any(|t| wants_running(t))
        && tasks
            .iter()
            .any(|t| !t.current_state().is_terminal() && t.current_state() >= TaskState::Assigned)
}

/// The node may get a new task: it meets the constraints, is Ready (or not known yet)
/// and Active.
fn can_create(constraints: &[Constraint], node: &Node) -> bool {
    let state = node.status.as_ref().map(|s| s.state()).unwrap_or_default();
    let availability = node
        .spec
        .as_ref()
        .map(|s| s.availability())
        .unwrap_or_default();
    node_matches(constraints, node)
        && matches!(state, NodeState::Ready | NodeState::Unknown)
        && availability == NodeAvailability::Active
}

/// One node: stop, restart or create its task. Returns how many tasks were created, or
/// None when it left the node's task as it is (for the rollout to look at).
fn reconcile_node(
    ctx: &mut Ctx<'_>,
    service: &Service,
    constraints: &[Constraint],
    node: &Node,
    tasks: &[&Task],
) -> Option<usize> {
    let meets = node_matches(constraints, node);
    let (state, availability) = (node.state(), node.availability());
    let keep = meets && state != NodeState::Down && availability != NodeAvailability::Drain;
    let can_create = can_create(constraints, node);

    let (current, duplicates) = current(tasks);
    duplicates.iter().for_each(|t| ctx.shutdown(t));
    match current {
        Some(task) if !keep => {
            ctx.shutdown(task);
            Some(0)
        }
        Some(task) if task.current_state().is_terminal() => {
            match restart_ended(ctx, service, task, &node.id, can_create) {
                0 => None,
                made => Some(made),
            }
        }
        None if can_create => {
            ctx.create(service, 0, &node.id, 0);
            Some(1)
        }
        Some(_) | None => None,
    }
}
