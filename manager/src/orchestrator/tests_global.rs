//! Global mode scenarios, on the simulated store of `tests.rs`.

use swarmr_proto::{
    NodeAvailability, NodeRole, NodeState, RestartCondition, Service, ServiceSpec, TaskState,
};

use super::tests::{node, policy, replicated, Sim};
use super::*;

fn global(constraints: &[&str]) -> Service {
    Service {
        id: "gsvc".into(),
        spec: Some(ServiceSpec {
            name: "agent".into(),
            global: true,
            constraints: constraints.iter().map(|c| c.to_string()).collect(),
            restart: Some(policy(RestartCondition::Any, 0, 0)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn three_nodes() -> Vec<Node> {
    vec![node("n1"), node("n2"), node("n3")]
}

/// (node, task id) of the tasks desired RUNNING.
fn placed(sim: &Sim) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = sim
        .tasks
        .iter()
        .filter(|t| wants_running(t))
        .map(|t| (t.node_id.clone(), t.id.clone()))
        .collect();
    v.sort();
    v
}

fn placed_nodes(sim: &Sim) -> Vec<String> {
    placed(sim).into_iter().map(|(n, _)| n).collect()
}

#[test]
fn one_task_per_node_skipping_drained() {
    let mut sim = Sim::new(vec![global(&[])], three_nodes());
    sim.set_node("n2", NodeState::Ready, NodeAvailability::Drain);
    let changes = sim.step();
    assert_eq!(changes.len(), 2);
    for change in &changes {
        let Change::Create(task) = change else {
            panic!("{change:?}")
        };
        assert_eq!((task.slot, task.service_name.as_str()), (0, "agent"));
    }
    assert_eq!(placed_nodes(&sim), vec!["n1", "n3"]);
    sim.assert_settled();
    sim.run_all("unused");
    sim.assert_settled();

    // Drain another: its task stops. Undrain n2: it gets one.
    let on_n3 = placed(&sim)[1].1.clone();
    sim.set_node("n3", NodeState::Ready, NodeAvailability::Drain);
    sim.set_node("n2", NodeState::Ready, NodeAvailability::Active);
    let changes = sim.step();
    assert_eq!(changes.len(), 2);
    assert!(changes.contains(&Change::Shutdown { task_id: on_n3 }));
    assert_eq!(placed_nodes(&sim), vec!["n1", "n2"]);
    sim.assert_settled();
}

#[test]
fn node_state_and_availability_table() {
    use NodeAvailability::{Active, Drain, Pause};
    use NodeState::{Down, Ready, Unknown};
    // (state, availability, gets a new task, keeps a running one)
    let cases = [
        (Ready, Active, true, true),
        (Unknown, Active, true, true),
        (Down, Active, false, false),
        (Ready, Pause, false, true),
        (Ready, Drain, false, false),
    ];
    for (state, availability, creates, keeps) in cases {
        let label = format!("{state:?} {availability:?}");
        let mut sim = Sim::new(vec![global(&[])], vec![node("n1")]);
        sim.set_node("n1", state, availability);
        assert_eq!(sim.step().len(), usize::from(creates), "{label}: create");

        let mut sim = Sim::new(vec![global(&[])], vec![node("n1")]);
        sim.step();
        sim.run_all("");
        sim.set_node("n1", state, availability);
        assert_eq!(sim.step().len(), usize::from(!keeps), "{label}: keep");
        sim.assert_settled();
    }
}

#[test]
fn a_node_that_no_longer_fits_stops_its_task() {
    let mut nodes = three_nodes();
    nodes[0].set_role(NodeRole::Manager);
    let mut sim = Sim::new(vec![global(&["node.role!=manager"])], nodes);
    sim.step();
    assert_eq!(placed_nodes(&sim), vec!["n2", "n3"]);
    sim.run_all("");
    let ids: Vec<String> = placed(&sim).into_iter().map(|(_, id)| id).collect();

    sim.nodes.retain(|n| n.id != "n3");
    sim.nodes[1].set_role(NodeRole::Manager);
    let mut changes = sim.step();
    changes.sort_by_key(|c| format!("{c:?}"));
    let expected: Vec<Change> = ids
        .iter()
        .map(|id| Change::Shutdown {
            task_id: id.clone(),
        })
        .collect();
    assert_eq!(changes, expected);
    sim.assert_settled();
}

#[test]
fn ended_task_restarts_on_its_node() {
    let mut sim = Sim::new(vec![global(&[])], vec![node("n1"), node("n2")]);
    sim.step();
    sim.run_all("");
    let (node_id, id) = placed(&sim)[0].clone();
    sim.report(&id, TaskState::Failed, 1);
    let changes = sim.step();
    assert_eq!(
        changes[0],
        Change::Shutdown {
            task_id: id.clone()
        }
    );
    let Change::Create(new) = &changes[1] else {
        panic!("{changes:?}")
    };
    assert_eq!(
        (new.node_id.as_str(), new.slot, new.restart_attempt),
        (node_id.as_str(), 0, 1)
    );
    sim.assert_settled();
}

#[test]
fn paused_node_holds_a_restart_back() {
    let mut sim = Sim::new(vec![global(&[])], vec![node("n1")]);
    sim.step();
    sim.run_all("");
    let id = sim.tasks[0].id.clone();
    sim.report(&id, TaskState::Complete, 0);
    sim.set_node("n1", NodeState::Ready, NodeAvailability::Pause);
    sim.assert_settled();
    sim.set_node("n1", NodeState::Ready, NodeAvailability::Active);
    assert_eq!(sim.step().len(), 2);
}

#[test]
fn node_back_up_gets_a_fresh_task() {
    let mut sim = Sim::new(vec![global(&[])], vec![node("n1")]);
    sim.step();
    sim.run_all("");
    sim.set_node("n1", NodeState::Down, NodeAvailability::Active);
    assert_eq!(sim.step().len(), 1);
    sim.set_node("n1", NodeState::Ready, NodeAvailability::Active);
    let changes = sim.step();
    let [Change::Create(new)] = &changes[..] else {
        panic!("{changes:?}")
    };
    assert_eq!(new.restart_attempt, 0);
    sim.assert_settled();
}

#[test]
fn replicated_tasks_in_a_global_service_are_stopped() {
    let mut sim = Sim::new(vec![replicated(1, None)], vec![node("n1")]);
    sim.step();
    let id = sim.tasks[0].id.clone();
    sim.services = vec![global(&[])];
    sim.services[0].id = "svc".into();
    let changes = sim.step();
    assert_eq!(changes[0], Change::Shutdown { task_id: id });
    assert_eq!(changes.len(), 2);
    sim.assert_settled();
}

#[test]
fn scheduler_places_global_tasks_on_their_nodes() {
    let mut sim = Sim::new(vec![global(&[])], three_nodes());
    sim.step();
    for task in sim.tasks.iter_mut() {
        task.status
            .get_or_insert_with(Default::default)
            .set_state(TaskState::Pending);
    }
    let decisions = crate::scheduler::plan(&sim.nodes, &sim.tasks, &sim.services);
    assert_eq!(decisions.len(), 3);
    for decision in decisions {
        let crate::scheduler::Decision::Assign { task_id, node_id } = decision else {
            panic!("{decision:?}")
        };
        assert_eq!(sim.find(&task_id).unwrap().node_id, node_id);
    }
}
