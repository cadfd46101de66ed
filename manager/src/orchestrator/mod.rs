//! The orchestrator's decisions: which tasks each service should have. Pure: no IO,
//! no store access; the leader's orchestrator loop reads the store, calls [`plan`]
//! (or [`plan_with_wakeup`]) and commits every change in one Raft proposal.
//!
//! Role: the first stage of the pipeline. It creates tasks in state NEW (the
//! allocator moves them to PENDING, the scheduler places them), asks for tasks to stop
//! (desired state SHUTDOWN) and deletes old ones.
//!
//! Inputs: snapshots of every service, task and node, the time, and a source of new
//! task ids. Outputs: [`Change`]s.
//!
//! Rules:
//! - Replicated (`replicated.rs`): one task per slot 1..=replicas. Scaling up fills the
//!   lowest free slots; scaling down stops the highest occupied slots. A task on a
//!   node that is Down, Drain or gone is replaced at once (no delay, not counted as a
//!   restart). A task that ended while desired RUNNING is replaced per the restart
//!   policy ([`restart`]); a slot whose policy says "no more" keeps its ended task,
//!   desired RUNNING, so it stays occupied and is not recreated.
//! - Global (`global.rs`): one task per node that is Ready or Unknown, Active and meets
//!   the constraints, made with `node_id` set and slot 0. Tasks on nodes that are
//!   Down, Drain, gone or no longer meet the constraints are stopped (a Paused node
//!   keeps its task but gets no new one). Ended tasks restart on the same node.
//! - Removed services: live tasks are stopped; tasks that are terminal, never reached
//!   a node (before ASSIGNED) or sit on a node that is gone are deleted.
//! - History (`slot.rs`): at most [`TASK_HISTORY_LIMIT`] tasks per slot (per node in
//!   global mode), counting the ones created now; the oldest finished ones go first.
//! - Rolling updates (`updater.rs`, replicated mode): while the service's update
//!   status says `updating` or `rollback_started`, slots whose task was made from an
//!   older task template are replaced group by group; the updater also moves the
//!   status on (paused, rolled back, completed). Otherwise stale tasks are kept as they
//!   are, and only new tasks get the current spec.
//!
//! Invariants:
//! - Forward only: the only update is desired state RUNNING → SHUTDOWN; a task's
//!   status is never touched, so nothing is resurrected.
//! - Idempotent: applying the changes and planning again at the same time gives
//!   nothing. When a restart waits for its delay, [`Plan::next_wakeup`] says when to
//!   plan again.
//! - Deterministic for a given id source: services in input order, slots ascending.

mod global;
mod replicated;
pub mod restart;
pub mod run;
mod slot;
pub mod updater;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_global;
#[cfg(test)]
mod tests_update;

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};

use swarmr_proto::{NetworkAttachment, Node, Service, Task, TaskState, TaskStatus, UpdateStatus};

use crate::constraint::parse_constraints;

pub use slot::TASK_HISTORY_LIMIT;

/// One change to the store.
// Changes are few and short-lived; boxing the task would only cost the caller a deref.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A new task: state NEW, desired RUNNING.
    Create(Task),
    /// Set the task's desired state to SHUTDOWN.
    Shutdown { task_id: String },
    /// Remove the task from the store.
    Delete { task_id: String },
    /// Set the service's update status.
    UpdateStatus {
        service_id: String,
        status: UpdateStatus,
    },
    /// Roll the service back: its spec and previous spec swap, and its update status
    /// becomes `status`.
    Rollback {
        service_id: String,
        status: UpdateStatus,
    },
}

/// The changes, and the earliest time a restart delay ends (unix ms), if one is
/// pending: the loop should plan again then.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub next_wakeup: Option<i64>,
}

/// Decides the task changes for every service. See the module docs for the rules.
pub fn plan(
    services: &[Service],
    tasks: &[impl Borrow<Task>],
    nodes: &[Node],
    now_millis: i64,
    new_id: &mut dyn FnMut() -> String,
) -> Vec<Change> {
    plan_with_wakeup(services, tasks, nodes, now_millis, new_id).changes
}

/// [`plan`], plus when to plan again for a pending restart delay.
pub fn plan_with_wakeup(
    services: &[Service],
    tasks: &[impl Borrow<Task>],
    nodes: &[Node],
    now_millis: i64,
    new_id: &mut dyn FnMut() -> String,
) -> Plan {
    let mut by_service: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
    for task in tasks.iter().map(Borrow::borrow) {
        by_service.entry(&task.service_id).or_default().push(task);
    }
    let mut ctx = Ctx::new(nodes, now_millis, new_id);
    for service in services {
        let tasks = by_service.remove(service.id.as_str()).unwrap_or_default();
        let Some(spec) = service.spec.as_ref() else {
            continue;
        };
        if spec.global || spec.replicas.is_none() {
            // A stored spec with bad constraints is left alone; the Control API
            // rejects them, and the scheduler reports them on the tasks.
            if let Ok(constraints) = parse_constraints(&spec.constraints) {
                global::reconcile(&mut ctx, service, &constraints, &tasks, nodes);
            }
        } else {
            let replicas = spec.replicas.unwrap_or(0);
            replicated::reconcile(&mut ctx, service, replicas, &tasks);
        }
    }
    for tasks in by_service.values() {
        reconcile_removed(&mut ctx, tasks);
    }
    Plan {
        changes: ctx.changes,
        next_wakeup: ctx.next_wakeup,
    }
}

/// Tasks of a service that no longer exists: stop the live ones, delete the rest.
fn reconcile_removed(ctx: &mut Ctx<'_>, tasks: &[&Task]) {
    for task in tasks {
        if ctx.is_gone(task) {
            ctx.delete(task);
        } else {
            ctx.shutdown(task);
        }
    }
}

/// Desired state RUNNING (or earlier): nobody has asked it to stop.
pub(crate) fn wants_running(task: &Task) -> bool {
    task.desired_state() <= TaskState::Running
}

/// Everything one pass needs besides the tasks, and what it decided.
pub(crate) struct Ctx<'a> {
    pub now: i64,
    nodes: HashMap<&'a str, &'a Node>,
    new_id: &'a mut dyn FnMut() -> String,
    changes: Vec<Change>,
    next_wakeup: Option<i64>,
}

impl<'a> Ctx<'a> {
    fn new(nodes: &'a [Node], now: i64, new_id: &'a mut dyn FnMut() -> String) -> Ctx<'a> {
        Ctx {
            now,
            nodes: nodes.iter().map(|n| (n.id.as_str(), n)).collect(),
            new_id,
            changes: Vec::new(),
            next_wakeup: None,
        }
    }

    pub fn node(&self, node_id: &str) -> Option<&'a Node> {
        self.nodes.get(node_id).copied()
    }

    /// Will never run or report again: terminal, never reached a node (before
    /// ASSIGNED), or its node is gone from the cluster.
    pub fn is_gone(&self, task: &Task) -> bool {
        let node_gone = !task.node_id.is_empty() && self.node(&task.node_id).is_none();
        task.current_state().is_terminal()
            || task.current_state() < TaskState::Assigned
            || node_gone
    }

    /// Asks the task to stop, unless it already was asked.
    pub fn shutdown(&mut self, task: &Task) {
        if wants_running(task) {
            self.changes.push(Change::Shutdown {
                task_id: task.id.clone(),
            });
        }
    }

    pub fn delete(&mut self, task: &Task) {
        self.changes.push(Change::Delete {
            task_id: task.id.clone(),
        });
    }

    pub fn set_update_status(&mut self, service: &Service, status: UpdateStatus) {
        self.changes.push(Change::UpdateStatus {
            service_id: service.id.clone(),
            status,
        });
    }

    pub fn rollback(&mut self, service: &Service, status: UpdateStatus) {
        self.changes.push(Change::Rollback {
            service_id: service.id.clone(),
            status,
        });
    }

    /// Remembers the earliest time a pass should run again.
    pub fn wake_at(&mut self, at: i64) {
        self.next_wakeup = Some(self.next_wakeup.map_or(at, |w| w.min(at)));
    }

    /// A new task for the slot: the service's current spec, state NEW, desired RUNNING.
    pub fn create(&mut self, service: &Service, slot: u64, node_id: &str, restart_attempt: u64) {
        let spec = service.spec.clone().unwrap_or_default();
        let mut status = TaskStatus {
            timestamp: self.now,
            message: "created".to_string(),
            ..Default::default()
        };
        status.set_state(TaskState::New);
        // The ingress address comes last: it labels the task for the routing mesh and
        // gets no interface, so the container's interfaces keep the spec's order.
        let ingress =
            (!service.ingress_network_id.is_empty()).then_some(&service.ingress_network_id);
        let networks = spec
            .networks
            .iter()
            .chain(ingress)
            .map(|id| NetworkAttachment {
                network_id: id.clone(),
                addr: String::new(),
            });
        let mut task = Task {
            id: (self.new_id)(),
            service_id: service.id.clone(),
            slot,
            node_id: node_id.to_string(),
            status: Some(status),
            container: spec.container,
            networks: networks.collect(),
            spec_version: service.spec_version,
            service_name: spec.name,
            restart_attempt,
            ..Default::default()
        };
        task.set_desired_state(TaskState::Running);
        self.changes.push(Change::Create(task));
    }
}
