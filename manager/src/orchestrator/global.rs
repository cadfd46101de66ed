//! Global mode: one task per eligible node, created with `node_id` set and slot 0.
//!
//! - A node gets a new task when it is Ready or Unknown, Active, and meets the
//!   service's constraints.
//! - A node keeps its task while it exists, is not Down, is not Drain and meets the
//!   constraints; a Paused node keeps its task but gets no new one.
//! - A task that ended restarts on the same node per the restart policy.
//! - Tasks without a node or with a slot other than 0 (a replicated task in a global
//!   service) are stopped.

use std::collections::BTreeMap;

use swarmr_proto::{Node, NodeAvailability, NodeState, Service, Task};

use super::slot::{current, restart_ended, trim_history};
use super::Ctx;
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
    let mut sorted: Vec<&Node> = nodes.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    for node in sorted {
        let tasks = by_node.remove(node.id.as_str()).unwrap_or_default();
        let created = reconcile_node(ctx, service, constraints, node, &tasks);
        trim_history(ctx, &tasks, created);
    }
    // Nodes removed from the cluster.
    for tasks in by_node.values() {
        tasks.iter().for_each(|t| ctx.shutdown(t));
        trim_history(ctx, tasks, 0);
    }
}

/// One node: stop, restart or create its task. Returns how many tasks were created.
fn reconcile_node(
    ctx: &mut Ctx<'_>,
    service: &Service,
    constraints: &[Constraint],
    node: &Node,
    tasks: &[&Task],
) -> usize {
    let meets = node_matches(constraints, node);
    let (state, availability) = (node.state(), node.availability());
    let keep = meets && state != NodeState::Down && availability != NodeAvailability::Drain;
    let can_create = meets
        && matches!(state, NodeState::Ready | NodeState::Unknown)
        && availability == NodeAvailability::Active;

    let (current, duplicates) = current(tasks);
    duplicates.iter().for_each(|t| ctx.shutdown(t));
    match current {
        Some(task) if !keep => {
            ctx.shutdown(task);
            0
        }
        Some(task) if task.current_state().is_terminal() => {
            restart_ended(ctx, service, task, &node.id, can_create)
        }
        Some(_) => 0,
        None if can_create => {
            ctx.create(service, 0, &node.id, 0);
            1
        }
        None => 0,
    }
}
