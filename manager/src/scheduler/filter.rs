//! One struct per placement rule. `check` says whether a node can take a task;
//! `explain(n)` says, for the user, why `n` nodes could not.

use swarmr_proto::{NodeAvailability, NodeState, Task};

use super::nodeinfo::{reservation, HostPort, NodeInfo};
use crate::constraint::Constraint;

/// A placement rule.
pub trait Filter {
    /// True when the node can take the task.
    fn check(&self, task: &Task, node: &NodeInfo<'_>) -> bool;
    /// Why `failing_nodes` nodes failed this rule, e.g. `2 nodes not ready`.
    fn explain(&self, failing_nodes: usize) -> String;
}

/// `1 node` / `3 nodes`.
fn nodes(n: usize) -> String {
    if n == 1 {
        "1 node".to_string()
    } else {
        format!("{n} nodes")
    }
}

/// The node's status is Ready (not Down, not Unknown).
pub struct ReadyFilter;

impl Filter for ReadyFilter {
    fn check(&self, _task: &Task, node: &NodeInfo<'_>) -> bool {
        node.state() == NodeState::Ready
    }

    fn explain(&self, failing_nodes: usize) -> String {
        format!("{} not ready", nodes(failing_nodes))
    }
}

/// The node's availability is Active: Pause and Drain take no new tasks.
pub struct AvailabilityFilter;

impl Filter for AvailabilityFilter {
    fn check(&self, _task: &Task, node: &NodeInfo<'_>) -> bool {
        node.availability() == NodeAvailability::Active
    }

    fn explain(&self, failing_nodes: usize) -> String {
        format!("{} not available for new tasks", nodes(failing_nodes))
    }
}

/// Host-mode published ports: a node binds each one for one task only.
pub struct HostPortFilter {
    pub ports: Vec<HostPort>,
}

impl Filter for HostPortFilter {
    fn check(&self, _task: &Task, node: &NodeInfo<'_>) -> bool {
        !self.ports.iter().any(|p| node.host_ports.contains(p))
    }

    fn explain(&self, failing_nodes: usize) -> String {
        let ports: Vec<String> = self.ports.iter().map(|(p, _)| p.to_string()).collect();
        format!(
            "{} with host port {} taken",
            nodes(failing_nodes),
            ports.join(", ")
        )
    }
}

/// One service constraint; a service gets one filter per constraint so that the
/// explanation names the constraint that failed.
pub struct ConstraintFilter {
    pub constraint: Constraint,
}

impl Filter for ConstraintFilter {
    fn check(&self, _task: &Task, node: &NodeInfo<'_>) -> bool {
        self.constraint.matches(node.node)
    }

    fn explain(&self, failing_nodes: usize) -> String {
        let verb = if failing_nodes == 1 { "fails" } else { "fail" };
        format!(
            "{} {verb} constraint {}",
            nodes(failing_nodes),
            self.constraint
        )
    }
}

/// A task that already names its node (global mode: the orchestrator pins each task
/// to its node) may only go there. Tasks without a node pass everywhere.
pub struct PinnedNodeFilter;

impl Filter for PinnedNodeFilter {
    fn check(&self, task: &Task, node: &NodeInfo<'_>) -> bool {
        task.node_id.is_empty() || task.node_id == node.id()
    }

    fn explain(&self, failing_nodes: usize) -> String {
        format!("{} not the task's node", nodes(failing_nodes))
    }
}

/// The node's unreserved memory covers the task's reservation.
pub struct MemoryFilter;

impl Filter for MemoryFilter {
    fn check(&self, task: &Task, node: &NodeInfo<'_>) -> bool {
        let wanted = reservation(task).memory_bytes;
        wanted <= 0 || wanted <= node.available().memory_bytes
    }

    fn explain(&self, failing_nodes: usize) -> String {
        format!("insufficient memory on {}", nodes(failing_nodes))
    }
}

/// The node's unreserved CPUs cover the task's reservation.
pub struct CpuFilter;

impl Filter for CpuFilter {
    fn check(&self, task: &Task, node: &NodeInfo<'_>) -> bool {
        let wanted = reservation(task).nano_cpus;
        wanted <= 0 || wanted <= node.available().nano_cpus
    }

    fn explain(&self, failing_nodes: usize) -> String {
        format!("insufficient CPU on {}", nodes(failing_nodes))
    }
}
