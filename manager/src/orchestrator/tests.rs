//! Scenario tests: a small simulated store that applies the plan's changes, and an
//! agent that moves task states forward by hand.

use swarmr_proto::{
    ContainerSpec, Meta, Node, NodeAvailability, NodeSpec, NodeState, NodeStatus, RestartCondition,
    RestartPolicy, Service, ServiceSpec, Task, TaskState,
};

use super::*;

pub(super) struct Sim {
    pub services: Vec<Service>,
    pub tasks: Vec<Task>,
    pub nodes: Vec<Node>,
    pub now: i64,
    next_id: u64,
}

impl Sim {
    pub fn new(services: Vec<Service>, nodes: Vec<Node>) -> Sim {
        Sim {
            services,
            tasks: Vec::new(),
            nodes,
            now: 1_000_000,
            next_id: 0,
        }
    }

    pub fn plan(&mut self) -> Plan {
        let mut counter = self.next_id;
        let mut new_id = || {
            counter += 1;
            format!("t{counter:03}")
        };
        let plan = plan_with_wakeup(
            &self.services,
            &self.tasks,
            &self.nodes,
            self.now,
            &mut new_id,
        );
        self.next_id = counter;
        plan
    }

    /// What the orchestrator loop does with the changes, checking they only move
    /// forward. Stamps `meta.created_at` as the store would.
    pub fn apply(&mut self, changes: &[Change]) {
        for change in changes {
            match change {
                Change::Create(task) => {
                    assert_eq!(task.current_state(), TaskState::New);
                    assert_eq!(task.desired_state(), TaskState::Running);
                    assert!(self.find(&task.id).is_none(), "id reused");
                    let mut task = task.clone();
                    task.meta = Some(Meta {
                        created_at: self.now,
                        ..Default::default()
                    });
                    self.tasks.push(task);
                }
                Change::Shutdown { task_id } => {
                    let task = self.task_mut(task_id);
                    assert!(wants_running(task), "{task_id} was already shut down");
                    task.set_desired_state(TaskState::Shutdown);
                }
                Change::Delete { task_id } => {
                    let i = self.tasks.iter().position(|t| &t.id == task_id).unwrap();
                    self.tasks.remove(i);
                }
                Change::UpdateStatus { service_id, status } => {
                    let service = self.services.iter_mut().find(|s| &s.id == service_id);
                    service.unwrap().update_status = Some(status.clone());
                }
                Change::Rollback { service_id, status } => {
                    let i = self.services.iter().position(|s| &s.id == service_id);
                    let service = self.services.remove(i.unwrap());
                    let service = run::roll_back(service, status.clone());
                    self.services.insert(i.unwrap(), service);
                }
            }
        }
    }

    /// Plans and applies; returns the changes.
    pub fn step(&mut self) -> Vec<Change> {
        let changes = self.plan().changes;
        self.apply(&changes);
        changes
    }

    /// Same input twice: once the changes are applied, planning again at the same
    /// time gives nothing.
    pub fn assert_settled(&mut self) {
        assert_eq!(self.plan().changes, vec![], "second pass changed something");
    }

    pub fn find(&self, id: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }

    pub fn task_mut(&mut self, id: &str) -> &mut Task {
        self.tasks.iter_mut().find(|t| t.id == id).unwrap()
    }

    /// The agent reports a state (forward only), stamped now.
    pub fn report(&mut self, id: &str, state: TaskState, exit_code: i32) {
        let now = self.now;
        let status = self
            .task_mut(id)
            .status
            .get_or_insert_with(Default::default);
        assert!(state >= status.state(), "test moved {id} backwards");
        status.set_state(state);
        status.timestamp = now;
        status.exit_code = exit_code;
    }

    /// Scheduler and agent in one: every NEW or PENDING task desired RUNNING runs on
    /// `node_id` (or its pinned node).
    pub fn run_all(&mut self, node_id: &str) {
        for task in self.tasks.iter_mut() {
            if wants_running(task) && task.current_state() < TaskState::Assigned {
                if task.node_id.is_empty() {
                    task.node_id = node_id.to_string();
                }
                task.status
                    .get_or_insert_with(Default::default)
                    .set_state(TaskState::Running);
            }
        }
    }

    /// Ids of the tasks desired RUNNING, by slot then id.
    pub fn wanted(&self) -> Vec<(u64, String)> {
        let mut v: Vec<(u64, String)> = self
            .tasks
            .iter()
            .filter(|t| wants_running(t))
            .map(|t| (t.slot, t.id.clone()))
            .collect();
        v.sort();
        v
    }

    pub fn wanted_slots(&self) -> Vec<u64> {
        self.wanted().into_iter().map(|(s, _)| s).collect()
    }

    pub fn set_node(&mut self, id: &str, state: NodeState, availability: NodeAvailability) {
        let node = self.nodes.iter_mut().find(|n| n.id == id).unwrap();
        node.status
            .get_or_insert_with(Default::default)
            .set_state(state);
        node.spec
            .get_or_insert_with(Default::default)
            .set_availability(availability);
    }
}

pub(super) fn node(id: &str) -> Node {
    let mut spec = NodeSpec::default();
    spec.set_availability(NodeAvailability::Active);
    let mut status = NodeStatus::default();
    status.set_state(NodeState::Ready);
    Node {
        id: id.to_string(),
        spec: Some(spec),
        status: Some(status),
        ..Default::default()
    }
}

pub(super) fn policy(condition: RestartCondition, delay_ms: u64, max: u64) -> RestartPolicy {
    let mut p = RestartPolicy {
        delay_ms,
        max_attempts: max,
        ..Default::default()
    };
    p.set_condition(condition);
    p
}

pub(super) fn replicated(replicas: u64, restart: Option<RestartPolicy>) -> Service {
    Service {
        id: "svc".into(),
        spec_version: 3,
        spec: Some(ServiceSpec {
            name: "web".into(),
            container: Some(ContainerSpec {
                image: "nginx:alpine".into(),
                ..Default::default()
            }),
            networks: vec!["net1".into(), "net2".into()],
            replicas: Some(replicas),
            restart,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn immediate() -> Option<RestartPolicy> {
    Some(policy(RestartCondition::Any, 0, 0))
}

fn scale(sim: &mut Sim, replicas: u64) {
    sim.services[0].spec.as_mut().unwrap().replicas = Some(replicas);
}

/// A service of one replica, running on n1.
fn one_running(restart: Option<RestartPolicy>) -> (Sim, String) {
    let mut sim = Sim::new(vec![replicated(1, restart)], vec![node("n1"), node("n2")]);
    sim.step();
    sim.run_all("n1");
    let id = sim.tasks[0].id.clone();
    (sim, id)
}

#[test]
fn creates_tasks_from_the_service() {
    let mut sim = Sim::new(vec![replicated(1, None)], vec![node("n1")]);
    let changes = sim.step();
    let [Change::Create(task)] = &changes[..] else {
        panic!("{changes:?}");
    };
    assert_eq!((task.slot, task.node_id.as_str()), (1, ""));
    assert_eq!(
        (task.service_id.as_str(), task.service_name.as_str()),
        ("svc", "web")
    );
    assert_eq!(task.container.as_ref().unwrap().image, "nginx:alpine");
    assert_eq!((task.spec_version, task.restart_attempt), (3, 0));
    let nets: Vec<(&str, &str)> = task
        .networks
        .iter()
        .map(|n| (n.network_id.as_str(), n.addr.as_str()))
        .collect();
    assert_eq!(nets, vec![("net1", ""), ("net2", "")]);
    assert_eq!(task.status.as_ref().unwrap().timestamp, sim.now);
    sim.assert_settled();
}

#[test]
fn scales_3_to_5_to_1() {
    let mut sim = Sim::new(vec![replicated(3, None)], vec![node("n1")]);
    sim.step();
    assert_eq!(sim.wanted_slots(), vec![1, 2, 3]);
    sim.assert_settled();
    sim.run_all("n1");
    sim.assert_settled();

    scale(&mut sim, 5);
    let changes = sim.step();
    assert_eq!(changes.len(), 2);
    assert_eq!(sim.wanted_slots(), vec![1, 2, 3, 4, 5]);
    sim.assert_settled();

    scale(&mut sim, 1);
    let changes = sim.step();
    assert_eq!(changes.len(), 4);
    assert!(changes.iter().all(|c| matches!(c, Change::Shutdown { .. })));
    assert_eq!(sim.wanted_slots(), vec![1]);
    sim.assert_settled();
}

#[test]
fn scaling_keeps_the_lowest_slots() {
    let mut sim = Sim::new(vec![replicated(5, None)], vec![node("n1")]);
    sim.step();
    sim.run_all("n1");
    // Slots 2 and 4 were stopped by hand: occupied 1, 3, 5.
    let stop: Vec<String> = sim
        .wanted()
        .into_iter()
        .filter(|(s, _)| s % 2 == 0)
        .map(|(_, id)| id)
        .collect();
    sim.apply(
        &stop
            .into_iter()
            .map(|task_id| Change::Shutdown { task_id })
            .collect::<Vec<_>>(),
    );
    scale(&mut sim, 2);
    sim.step();
    assert_eq!(sim.wanted_slots(), vec![1, 3]);
    scale(&mut sim, 4);
    sim.step();
    assert_eq!(sim.wanted_slots(), vec![1, 2, 3, 4]);
    sim.assert_settled();
}

/// The task that replaces `old`: `changes` shut `old` down, then create it.
fn replacement<'a>(changes: &'a [Change], old: &str, label: &str) -> &'a Task {
    assert_eq!(
        changes[0],
        Change::Shutdown {
            task_id: old.into()
        },
        "{label}"
    );
    let Change::Create(new) = &changes[1] else {
        panic!("{label}: {changes:?}")
    };
    new
}

#[test]
fn restart_condition_by_end_state() {
    use RestartCondition::{Any, None as Never, OnFailure};
    use TaskState::{Complete, Failed, Orphaned, Rejected, Shutdown};
    let cases = [
        (Any, Complete, 0, true),
        (Any, Failed, 1, true),
        (Any, Shutdown, 0, true),
        (OnFailure, Complete, 0, false),
        (OnFailure, Shutdown, 0, false),
        (OnFailure, Shutdown, 137, true),
        (OnFailure, Failed, 1, true),
        (OnFailure, Rejected, 0, true),
        (OnFailure, Orphaned, 0, true),
        (Never, Failed, 1, false),
        (Never, Complete, 0, false),
    ];
    for (condition, end, exit_code, restarts) in cases {
        let (mut sim, id) = one_running(Some(policy(condition, 0, 0)));
        sim.report(&id, end, exit_code);
        let changes = sim.step();
        let label = format!("{condition:?} after {end:?} exit {exit_code}");
        if restarts {
            assert_eq!(changes.len(), 2, "{label}: {changes:?}");
            let new = replacement(&changes, &id, &label);
            assert_eq!((new.slot, new.restart_attempt), (1, 1), "{label}");
        } else {
            assert_eq!(changes, vec![], "{label}");
            assert_eq!(
                sim.wanted_slots(),
                vec![1],
                "{label}: the ended task keeps its slot"
            );
        }
        sim.assert_settled();
    }
}

#[test]
fn waits_for_the_restart_delay() {
    let (mut sim, id) = one_running(Some(policy(RestartCondition::Any, 2_000, 0)));
    sim.report(&id, TaskState::Failed, 1);
    let end = sim.now;
    sim.now += 1_999;
    let plan = sim.plan();
    assert_eq!(
        plan,
        Plan {
            changes: vec![],
            next_wakeup: Some(end + 2_000)
        }
    );
    sim.now += 1;
    let changes = sim.step();
    assert_eq!(changes.len(), 2);
    assert!(sim.plan().next_wakeup.is_none());
    sim.assert_settled();
}

#[test]
fn default_policy_is_any_after_5s() {
    let (mut sim, id) = one_running(None);
    sim.report(&id, TaskState::Complete, 0);
    assert_eq!(sim.plan().next_wakeup, Some(sim.now + 5_000));
    sim.now += 5_000;
    assert_eq!(sim.step().len(), 2);
}

#[test]
fn stops_restarting_after_max_attempts() {
    let (mut sim, first) = one_running(Some(policy(RestartCondition::Any, 0, 2)));
    let mut current = first;
    for attempt in 1..=2 {
        sim.report(&current, TaskState::Failed, 1);
        let changes = sim.step();
        let Some(Change::Create(new)) = changes.last() else {
            panic!("{changes:?}")
        };
        assert_eq!(new.restart_attempt, attempt);
        current = new.id.clone();
        sim.run_all("n1");
    }
    sim.report(&current, TaskState::Failed, 1);
    assert_eq!(sim.plan(), Plan::default(), "max attempts reached: nothing");
}

#[test]
fn lost_node_replaces_at_once_without_counting() {
    let cases = [
        (NodeState::Down, NodeAvailability::Active, true),
        (NodeState::Ready, NodeAvailability::Drain, true),
        (NodeState::Down, NodeAvailability::Drain, true),
        (NodeState::Ready, NodeAvailability::Pause, false),
        (NodeState::Unknown, NodeAvailability::Active, false),
    ];
    for (state, availability, replaced) in cases {
        // A long restart delay must not hold a lost-node replacement back.
        let (mut sim, id) = one_running(Some(policy(RestartCondition::Any, 60_000, 1)));
        sim.set_node("n1", state, availability);
        let changes = sim.step();
        let label = format!("{state:?} {availability:?}");
        if replaced {
            let new = replacement(&changes, &id, &label);
            assert_eq!(
                (new.slot, new.restart_attempt, new.node_id.as_str()),
                (1, 0, "")
            );
        } else {
            assert_eq!(changes, vec![], "{label}");
        }
        sim.assert_settled();
    }
}

#[test]
fn removed_node_replaces_at_once() {
    let (mut sim, id) = one_running(None);
    sim.nodes.retain(|n| n.id != "n1");
    let changes = sim.step();
    assert_eq!(changes[0], Change::Shutdown { task_id: id });
    assert_eq!(changes.len(), 2);
    sim.assert_settled();
}

#[test]
fn history_is_trimmed_to_five_per_slot() {
    let (mut sim, _) = one_running(immediate());
    let mut made = vec![sim.tasks[0].id.clone()];
    for _ in 0..8 {
        sim.now += 10;
        let current = sim.wanted()[0].1.clone();
        sim.report(&current, TaskState::Failed, 1);
        let changes = sim.step();
        let new = changes.iter().find_map(|c| match c {
            Change::Create(t) => Some(t.id.clone()),
            _ => None,
        });
        made.push(new.unwrap());
        sim.run_all("n1");
        assert!(
            sim.tasks.len() <= TASK_HISTORY_LIMIT,
            "{} tasks",
            sim.tasks.len()
        );
        sim.assert_settled();
    }
    let mut kept: Vec<String> = sim.tasks.iter().map(|t| t.id.clone()).collect();
    kept.sort();
    assert_eq!(
        kept,
        made[made.len() - 5..].to_vec(),
        "the newest five stay"
    );
}

#[test]
fn removed_service_stops_then_deletes_its_tasks() {
    let mut sim = Sim::new(vec![replicated(3, None)], vec![node("n1")]);
    sim.step();
    sim.run_all("n1");
    let ids: Vec<String> = sim.tasks.iter().map(|t| t.id.clone()).collect();
    sim.report(&ids[0], TaskState::Failed, 1);
    // Another task of the service that never reached a node.
    let mut pending = sim.tasks[1].clone();
    pending.id = "pending".into();
    pending.node_id.clear();
    pending
        .status
        .as_mut()
        .unwrap()
        .set_state(TaskState::Pending);
    sim.tasks.push(pending);
    sim.services.clear();
    let changes = sim.step();
    let expected = vec![
        Change::Delete {
            task_id: ids[0].clone(),
        },
        Change::Shutdown {
            task_id: ids[1].clone(),
        },
        Change::Shutdown {
            task_id: ids[2].clone(),
        },
        Change::Delete {
            task_id: "pending".into(),
        },
    ];
    assert_eq!(changes, expected);
    sim.assert_settled();
    sim.report(&ids[1], TaskState::Shutdown, 0);
    assert_eq!(
        sim.step(),
        vec![Change::Delete {
            task_id: ids[1].clone()
        }]
    );
    sim.nodes.clear();
    assert_eq!(
        sim.step(),
        vec![Change::Delete {
            task_id: ids[2].clone()
        }]
    );
    assert!(sim.tasks.is_empty());
}

#[test]
fn old_spec_versions_are_kept() {
    let (mut sim, _) = one_running(None);
    sim.services[0].spec_version = 4;
    sim.assert_settled();
}

#[test]
fn duplicates_in_a_slot_are_stopped() {
    let (mut sim, id) = one_running(None);
    let mut dup = sim.tasks[0].clone();
    dup.id = "dup".into();
    dup.meta.as_mut().unwrap().created_at += 1;
    sim.tasks.push(dup);
    assert_eq!(sim.step(), vec![Change::Shutdown { task_id: id }]);
    sim.assert_settled();
}

#[test]
fn global_tasks_in_a_replicated_service_are_stopped() {
    let (mut sim, _) = one_running(None);
    let mut stray = sim.tasks[0].clone();
    stray.id = "stray".into();
    stray.slot = 0;
    sim.tasks.push(stray);
    assert_eq!(
        sim.step(),
        vec![Change::Shutdown {
            task_id: "stray".into()
        }]
    );
    sim.assert_settled();
}
