//! The scheduler's decisions: which node each pending task goes to. Pure: no IO, no
//! store access; the leader's scheduler loop reads the store, calls [`plan`] and
//! commits every decision in one Raft proposal.
//!
//! Role: the third stage of the pipeline (orchestrator NEW → allocator PENDING →
//! scheduler ASSIGNED → dispatcher). It takes tasks in state PENDING with desired state
//! RUNNING. A task without a node is placed; a task the orchestrator already pinned to
//! a node (global mode) is only checked against that node.
//!
//! Inputs: snapshots of every node, task and service.
//!
//! Outputs: [`Decision::Assign`] (the loop sets `node_id`, moves the task to ASSIGNED and
//! clears `scheduling_error`) or [`Decision::Unschedulable`] (the loop stores the reason
//! in `scheduling_error`; the task stays PENDING and is retried on the next pass).
//!
//! How a service's tasks are placed:
//! - Filters, in order ([`filter`]): the node is Ready; its availability is Active
//!   (Pause and Drain take no new tasks); it meets each service constraint; a pinned
//!   task goes only to its node; its unreserved memory and CPUs cover the task's
//!   reservation (what the node reported, less the reservations of its tasks that have
//!   not ended). Filters run once per service per node; only the resource filters are
//!   checked again for each task, as placing tasks uses the nodes' resources up.
//! - Spread among the nodes that pass: fewest live tasks of this service, then fewest
//!   live tasks in total, then the smaller node id. A live task is one with desired
//!   state RUNNING, not terminal, on a node. Counts grow as the pass places tasks, so
//!   10 tasks on 3 empty nodes land 4/3/3. Nodes wait in an ordered set, so a pass
//!   costs O(services × nodes × filters + tasks × log nodes).
//!
//! Invariants:
//! - A task is never moved: only unassigned PENDING tasks and pinned ones are decided.
//! - Deterministic: the same snapshots give the same decisions in the same order
//!   (pinned tasks first, then services by id, tasks by slot then id).
//! - Quiet: `Unschedulable` is emitted only when the reason differs from the task's
//!   stored `scheduling_error`, so repeated passes do not rewrite the same error.
//! - Tasks of a service missing from `services` are left alone (the orchestrator
//!   shuts them down).

pub mod filter;
mod nodeinfo;
mod pipeline;
pub mod run;

#[cfg(test)]
mod tests;

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use swarmr_proto::{Node, Service, Task, TaskState};

use filter::{Filter, HostPortFilter};
use nodeinfo::{host_ports, HostPort};

pub use nodeinfo::{counts_toward_spread, NodeInfo, NodeSet};
pub use pipeline::{Pipeline, NO_SUITABLE_NODE};

/// One scheduling decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Place the task on the node (state ASSIGNED).
    Assign { task_id: String, node_id: String },
    /// No node can take the task now; `reason` explains why, for `service ps`.
    Unschedulable { task_id: String, reason: String },
}

/// Decides where every schedulable task goes. See the module docs for the rules.
pub fn plan(nodes: &[Node], tasks: &[impl Borrow<Task>], services: &[Service]) -> Vec<Decision> {
    let by_id: HashMap<&str, &Service> = services.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut pinned: Vec<(&Service, &Task)> = Vec::new();
    let mut groups: BTreeMap<&str, (&Service, Vec<&Task>)> = BTreeMap::new();
    let tasks: Vec<&Task> = tasks.iter().map(Borrow::borrow).collect();
    for &task in tasks.iter().filter(|t| is_schedulable(t)) {
        let Some(&service) = by_id.get(task.service_id.as_str()) else {
            continue;
        };
        if task.node_id.is_empty() {
            groups
                .entry(&service.id)
                .or_insert((service, Vec::new()))
                .1
                .push(task);
        } else {
            pinned.push((service, task));
        }
    }
    pinned.sort_by(|(_, a), (_, b)| (&a.node_id, &a.id).cmp(&(&b.node_id, &b.id)));

    let ports: HashMap<&str, Vec<HostPort>> = services
        .iter()
        .map(|s| (s.id.as_str(), host_ports(s)))
        .filter(|(_, ports)| !ports.is_empty())
        .collect();
    let mut set = NodeSet::build(nodes, &tasks, &ports);
    let mut pipelines: HashMap<&str, Result<Pipeline, String>> = HashMap::new();
    let mut out = Vec::new();
    for (service, task) in pinned {
        let entry = pipelines.entry(&service.id);
        match entry.or_insert_with(|| Pipeline::for_service(service)) {
            Ok(pipeline) => {
                schedule_pinned(pipeline, task, &host_ports(service), &mut set, &mut out)
            }
            Err(reason) => unschedulable(task, reason, &mut out),
        }
    }
    for (service_id, (service, mut group)) in groups {
        group.sort_by(|a, b| (a.slot, &a.id).cmp(&(b.slot, &b.id)));
        match pipelines
            .entry(service_id)
            .or_insert_with(|| Pipeline::for_service(service))
        {
            Ok(pipeline) => {
                schedule_group(pipeline, &group, &host_ports(service), &mut set, &mut out)
            }
            Err(reason) => group
                .iter()
                .for_each(|t| unschedulable(t, reason, &mut out)),
        }
    }
    out
}

/// PENDING (the allocator is done) and still wanted.
fn is_schedulable(task: &Task) -> bool {
    let state = task.status.as_ref().map(|s| s.state()).unwrap_or_default();
    state == TaskState::Pending && task.desired_state() == TaskState::Running
}

/// Places one service's unpinned tasks: filter the nodes once, then spread.
fn schedule_group<'a>(
    pipeline: &mut Pipeline,
    group: &[&'a Task],
    ports: &[HostPort],
    set: &mut NodeSet<'a>,
    out: &mut Vec<Decision>,
) {
    let Some(first) = group.first() else {
        return;
    };
    pipeline.reset();
    // Resources are checked per task below: the first one's reservation may not be
    // the others' (tasks of an older spec during an update).
    let mut probe = (*first).clone();
    if let Some(container) = probe.container.as_mut() {
        container.resources = None;
    }
    let eligible: Vec<usize> = (0..set.infos.len())
        .filter(|&i| pipeline.check(&probe, &set.infos[i]))
        .collect();
    if eligible.is_empty() {
        let reason = pipeline.explain();
        group.iter().for_each(|t| unschedulable(t, &reason, out));
        return;
    }
    let base = pipeline.failures();
    let service_id: &'a str = &first.service_id;
    let mut queue = SpreadQueue {
        service_id,
        queue: eligible
            .iter()
            .map(|&i| spread_key(&set.infos[i], service_id, i))
            .collect(),
        full: Vec::new(),
        full_for: None,
    };
    for task in group {
        let Some((node_id, i)) = queue.next_fit(pipeline, &base, task, set) else {
            let reason = match queue.full.is_empty() {
                false => pipeline.explain(),
                // Every eligible node now binds the service's host ports.
                true => {
                    let rule = HostPortFilter {
                        ports: ports.to_vec(),
                    };
                    format!("{NO_SUITABLE_NODE} ({})", rule.explain(eligible.len()))
                }
            };
            unschedulable(task, &reason, out);
            continue;
        };
        set.infos[i].add_task(service_id, ports);
        set.infos[i].reserve(task);
        // A node binding the service's host ports takes no second task of it.
        if ports.is_empty() {
            queue.queue.insert(spread_key(&set.infos[i], service_id, i));
        }
        out.push(Decision::Assign {
            task_id: task.id.clone(),
            node_id: node_id.to_string(),
        });
    }
}

type SpreadKey<'a> = (usize, usize, &'a str, usize);

/// Fewest tasks of the service, then fewest in total, then node id.
fn spread_key<'a>(info: &NodeInfo<'a>, service_id: &str, i: usize) -> SpreadKey<'a> {
    (info.service_count(service_id), info.total, info.id(), i)
}

/// The eligible nodes in spread order, and those set aside because the last task's
/// reservation did not fit them any more.
struct SpreadQueue<'a> {
    service_id: &'a str,
    queue: BTreeSet<SpreadKey<'a>>,
    full: Vec<usize>,
    full_for: Option<swarmr_proto::Resources>,
}

impl<'a> SpreadQueue<'a> {
    /// The first node in spread order with room for the task's reservation. A node
    /// without room is set aside (charged to the memory or CPU filter) until a task
    /// with another reservation comes.
    fn next_fit(
        &mut self,
        pipeline: &mut Pipeline,
        base: &[usize],
        task: &Task,
        set: &NodeSet<'a>,
    ) -> Option<(&'a str, usize)> {
        let wanted = nodeinfo::reservation(task);
        if self.full_for.is_some_and(|r| r != wanted) {
            pipeline.restore(base);
            for i in self.full.drain(..) {
                self.queue
                    .insert(spread_key(&set.infos[i], self.service_id, i));
            }
        }
        while let Some((_, _, node_id, i)) = self.queue.pop_first() {
            if pipeline.check(task, &set.infos[i]) {
                return Some((node_id, i));
            }
            self.full.push(i);
            self.full_for = Some(wanted);
        }
        None
    }
}

/// Checks a pinned task against its own node only.
fn schedule_pinned<'a>(
    pipeline: &mut Pipeline,
    task: &'a Task,
    ports: &[HostPort],
    set: &mut NodeSet<'a>,
    out: &mut Vec<Decision>,
) {
    let Some(i) = set.position(&task.node_id) else {
        let reason = format!(
            "{NO_SUITABLE_NODE} (node {} is not in the cluster)",
            task.node_id
        );
        unschedulable(task, &reason, out);
        return;
    };
    pipeline.reset();
    if pipeline.check(task, &set.infos[i]) {
        set.infos[i].add_task(&task.service_id, ports);
        set.infos[i].reserve(task);
        out.push(Decision::Assign {
            task_id: task.id.clone(),
            node_id: task.node_id.clone(),
        });
    } else {
        unschedulable(task, &pipeline.explain(), out);
    }
}

/// Records the reason unless the task already carries it.
fn unschedulable(task: &Task, reason: &str, out: &mut Vec<Decision>) {
    if task.scheduling_error != reason {
        out.push(Decision::Unschedulable {
            task_id: task.id.clone(),
            reason: reason.to_string(),
        });
    }
}
