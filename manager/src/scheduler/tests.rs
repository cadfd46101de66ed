use std::collections::HashMap;
use std::time::Instant;

use swarmr_proto::{
    Node, NodeAvailability, NodeDescription, NodeSpec, NodeState, NodeStatus, Service, ServiceSpec,
    Task, TaskState, TaskStatus,
};

use super::*;

fn node(id: &str, state: NodeState, availability: NodeAvailability) -> Node {
    let mut spec = NodeSpec::default();
    spec.set_availability(availability);
    let mut status = NodeStatus::default();
    status.set_state(state);
    Node {
        id: id.to_string(),
        spec: Some(spec),
        status: Some(status),
        description: Some(NodeDescription {
            hostname: format!("host-{id}"),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn ready(id: &str) -> Node {
    node(id, NodeState::Ready, NodeAvailability::Active)
}

fn labelled(id: &str, key: &str, value: &str) -> Node {
    let mut n = ready(id);
    if let Some(spec) = n.spec.as_mut() {
        spec.labels.insert(key.to_string(), value.to_string());
    }
    n
}

fn service(id: &str, constraints: &[&str]) -> Service {
    Service {
        id: id.to_string(),
        spec: Some(ServiceSpec {
            name: id.to_string(),
            replicas: Some(1),
            constraints: constraints.iter().map(|c| c.to_string()).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn task(id: &str, service_id: &str, state: TaskState, node_id: &str) -> Task {
    let mut status = TaskStatus::default();
    status.set_state(state);
    let mut t = Task {
        id: id.to_string(),
        service_id: service_id.to_string(),
        node_id: node_id.to_string(),
        status: Some(status),
        ..Default::default()
    };
    t.set_desired_state(TaskState::Running);
    t
}

fn pending(id: &str, service_id: &str) -> Task {
    task(id, service_id, TaskState::Pending, "")
}

fn pending_batch(n: usize, service_id: &str) -> Vec<Task> {
    (0..n)
        .map(|i| pending(&format!("{service_id}-t{i:05}"), service_id))
        .collect()
}

/// Tasks per node among the Assign decisions.
fn per_node(decisions: &[Decision]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for d in decisions {
        if let Decision::Assign { node_id, .. } = d {
            *counts.entry(node_id.clone()).or_insert(0) += 1;
        }
    }
    counts
}

/// What the scheduler loop does with the decisions.
fn apply(tasks: &mut [Task], decisions: &[Decision]) {
    for d in decisions {
        match d {
            Decision::Assign { task_id, node_id } => {
                let t = tasks.iter_mut().find(|t| &t.id == task_id).unwrap();
                t.node_id = node_id.clone();
                t.status.as_mut().unwrap().set_state(TaskState::Assigned);
                t.scheduling_error.clear();
            }
            Decision::Unschedulable { task_id, reason } => {
                let t = tasks.iter_mut().find(|t| &t.id == task_id).unwrap();
                t.scheduling_error = reason.clone();
            }
        }
    }
}

#[test]
fn no_node_meets_constraint_explains_each_filter() {
    let nodes = vec![
        node("n1", NodeState::Ready, NodeAvailability::Drain),
        labelled("n2", "zone", "b"),
        ready("n3"),
    ];
    let tasks = vec![pending("t1", "s1")];
    let decisions = plan(&nodes, &tasks, &[service("s1", &["node.labels.zone==a"])]);
    let reason = "no suitable node (1 node not available for new tasks; \
                  2 nodes fail constraint node.labels.zone==a)";
    assert_eq!(
        decisions,
        vec![Decision::Unschedulable {
            task_id: "t1".into(),
            reason: reason.into()
        }]
    );
}

#[test]
fn explanation_counts_each_node_once_in_filter_order() {
    let nodes = vec![
        node("n1", NodeState::Down, NodeAvailability::Drain),
        node("n2", NodeState::Unknown, NodeAvailability::Active),
        node("n3", NodeState::Ready, NodeAvailability::Pause),
        ready("n4"),
    ];
    let tasks = vec![pending("t1", "s1")];
    let decisions = plan(&nodes, &tasks, &[service("s1", &["node.role==manager"])]);
    let want = "no suitable node (2 nodes not ready; 1 node not available for new tasks; \
                1 node fails constraint node.role==manager)";
    assert!(matches!(&decisions[..], [Decision::Unschedulable { reason, .. }] if reason == want));
    assert_eq!(
        plan(&[], &tasks, &[service("s1", &[])]),
        vec![Decision::Unschedulable {
            task_id: "t1".into(),
            reason: "no suitable node".into()
        }]
    );
}

#[test]
fn same_reason_is_not_rewritten() {
    let nodes = vec![node("n1", NodeState::Down, NodeAvailability::Active)];
    let mut tasks = vec![pending("t1", "s1")];
    let services = [service("s1", &[])];
    let first = plan(&nodes, &tasks, &services);
    assert_eq!(first.len(), 1);
    apply(&mut tasks, &first);
    assert_eq!(plan(&nodes, &tasks, &services), vec![]);
}

#[test]
fn invalid_stored_constraint_is_the_reason() {
    let tasks = vec![pending("t1", "s1")];
    let decisions = plan(&[ready("n1")], &tasks, &[service("s1", &["zone=a"])]);
    assert!(matches!(&decisions[..],
        [Decision::Unschedulable { reason, .. }] if reason.starts_with("invalid constraint \"zone=a\"")));
}

#[test]
fn spreads_ten_tasks_over_three_nodes_4_3_3() {
    let nodes = vec![ready("n1"), ready("n2"), ready("n3")];
    let decisions = plan(&nodes, &pending_batch(10, "s1"), &[service("s1", &[])]);
    let counts = per_node(&decisions);
    let mut sizes: Vec<usize> = counts.values().copied().collect();
    sizes.sort();
    assert_eq!(sizes, vec![3, 3, 4]);
    assert_eq!(counts["n1"], 4, "ties go to the smaller node id");
}

#[test]
fn spread_prefers_fewer_tasks_of_this_service() {
    let nodes = vec![ready("n1"), ready("n2")];
    let mut tasks = vec![
        // n1: one task of s1. n2: three tasks of other services.
        task("a", "s1", TaskState::Running, "n1"),
        task("b", "s2", TaskState::Running, "n2"),
        task("c", "s2", TaskState::Running, "n2"),
        task("d", "s3", TaskState::Assigned, "n2"),
    ];
    tasks.push(pending("new", "s1"));
    let services = [service("s1", &[]), service("s2", &[]), service("s3", &[])];
    let decisions = plan(&nodes, &tasks, &services);
    assert_eq!(per_node(&decisions)["n2"], 1);
    // With this service even, the total breaks the tie.
    tasks[0].service_id = "s2".into();
    assert_eq!(per_node(&plan(&nodes, &tasks, &services))["n1"], 1);
}

#[test]
fn ended_and_stopping_tasks_do_not_count() {
    let nodes = vec![ready("n1"), ready("n2")];
    let mut stopping = task("b", "s1", TaskState::Running, "n1");
    stopping.set_desired_state(TaskState::Shutdown);
    let tasks = vec![
        task("a", "s1", TaskState::Failed, "n1"),
        stopping,
        task("c", "s1", TaskState::Complete, "n1"),
        task("d", "s1", TaskState::Running, "n2"),
        pending("new", "s1"),
    ];
    let decisions = plan(&nodes, &tasks, &[service("s1", &[])]);
    assert_eq!(per_node(&decisions)["n1"], 1);
}

#[test]
fn only_pending_tasks_desired_running_are_scheduled() {
    let mut shut = pending("shut", "s1");
    shut.set_desired_state(TaskState::Shutdown);
    let tasks = vec![
        task("new", "s1", TaskState::New, ""),
        task("assigned", "s1", TaskState::Assigned, "n1"),
        shut,
        pending("orphan", "gone"),
        pending("ok", "s1"),
    ];
    let decisions = plan(&[ready("n1")], &tasks, &[service("s1", &[])]);
    assert_eq!(
        decisions,
        vec![Decision::Assign {
            task_id: "ok".into(),
            node_id: "n1".into()
        }]
    );
}

#[test]
fn pinned_tasks_only_go_to_their_node() {
    let nodes = vec![
        ready("n1"),
        node("n2", NodeState::Ready, NodeAvailability::Drain),
    ];
    let tasks = vec![
        task("g1", "s1", TaskState::Pending, "n1"),
        task("g2", "s1", TaskState::Pending, "n2"),
        task("g3", "s1", TaskState::Pending, "n9"),
    ];
    let decisions = plan(&nodes, &tasks, &[service("s1", &[])]);
    let expected = vec![
        Decision::Assign {
            task_id: "g1".into(),
            node_id: "n1".into(),
        },
        Decision::Unschedulable {
            task_id: "g2".into(),
            reason: "no suitable node (1 node not available for new tasks)".into(),
        },
        Decision::Unschedulable {
            task_id: "g3".into(),
            reason: "no suitable node (node n9 is not in the cluster)".into(),
        },
    ];
    assert_eq!(decisions, expected);
}

#[test]
fn pinned_tasks_count_before_the_spread() {
    let nodes = vec![ready("n1"), ready("n2")];
    let tasks = vec![
        task("g1", "s1", TaskState::Pending, "n1"),
        pending("r1", "s1"),
    ];
    let decisions = plan(&nodes, &tasks, &[service("s1", &[])]);
    assert_eq!(
        per_node(&decisions),
        HashMap::from([("n1".into(), 1), ("n2".into(), 1)])
    );
}

#[test]
fn same_input_twice_gives_nothing_new() {
    let nodes = vec![ready("n1"), ready("n2"), labelled("n3", "zone", "a")];
    let services = [service("s1", &[]), service("s2", &["node.labels.zone==b"])];
    let mut tasks = pending_batch(7, "s1");
    tasks.extend(pending_batch(2, "s2"));
    let first = plan(&nodes, &tasks, &services);
    assert_eq!(first.len(), 9);
    apply(&mut tasks, &first);
    assert_eq!(plan(&nodes, &tasks, &services), vec![]);
}

/// `cargo test --release -p swarmr-manager --lib scheduler::tests::bench -- --ignored --nocapture`
#[test]
#[ignore]
fn bench_10k_tasks_on_1k_nodes() {
    let nodes: Vec<Node> = (0..1000).map(|i| ready(&format!("node{i:04}"))).collect();
    let services: Vec<Service> = (0..10).map(|i| service(&format!("svc{i}"), &[])).collect();
    let tasks: Vec<Task> = (0..10)
        .flat_map(|i| pending_batch(1000, &format!("svc{i}")))
        .collect();
    let start = Instant::now();
    let decisions = plan(&nodes, &tasks, &services);
    let elapsed = start.elapsed();
    println!(
        "planned {} tasks on {} nodes in {elapsed:?}",
        decisions.len(),
        nodes.len()
    );
    assert_eq!(decisions.len(), 10_000);
    assert!(per_node(&decisions).values().all(|&n| n == 10));
}

fn host_published(id: &str, port: u32) -> Service {
    let mut s = service(id, &[]);
    s.ports = vec![swarmr_proto::PortConfig {
        target_port: 80,
        published_port: port,
        publish_mode: swarmr_proto::PublishMode::Host as i32,
        ..Default::default()
    }];
    s
}

#[test]
fn host_ports_put_one_task_per_node_and_explain_the_rest() {
    let nodes = vec![ready("a"), ready("b")];
    let mut tasks = pending_batch(3, "edge");
    let services = vec![host_published("edge", 8081)];
    let decisions = plan(&nodes, &tasks, &services);
    assert_eq!(
        per_node(&decisions).values().copied().collect::<Vec<_>>(),
        [1, 1]
    );
    apply(&mut tasks, &decisions);
    let left = tasks
        .iter()
        .find(|t| t.node_id.is_empty())
        .expect("one left");
    assert_eq!(
        left.scheduling_error,
        "no suitable node (2 nodes with host port 8081 taken)"
    );
    // Planning again: still no place, and the same reason is not rewritten.
    assert!(plan(&nodes, &tasks, &services).is_empty());
}

#[test]
fn another_service_on_the_same_host_port_avoids_that_node() {
    let nodes = vec![ready("a"), ready("b")];
    let mut tasks = vec![task("old", "first", TaskState::Running, "a")];
    tasks.push(pending("new", "second"));
    let services = vec![
        host_published("first", 8081),
        host_published("second", 8081),
    ];
    let decisions = plan(&nodes, &tasks, &services);
    assert_eq!(
        decisions,
        [Decision::Assign {
            task_id: "new".into(),
            node_id: "b".into()
        }]
    );
}

fn sized(id: &str, cpus: i64, memory: i64) -> Node {
    let mut n = ready(id);
    if let Some(d) = n.description.as_mut() {
        d.resources = Some(swarmr_proto::Resources {
            nano_cpus: cpus * 1_000_000_000,
            memory_bytes: memory,
        });
    }
    n
}

fn reserving(mut t: Task, nano_cpus: i64, memory: i64) -> Task {
    t.container = Some(swarmr_proto::ContainerSpec {
        resources: Some(swarmr_proto::ResourceRequirements {
            limits: None,
            reservations: Some(swarmr_proto::Resources {
                nano_cpus,
                memory_bytes: memory,
            }),
        }),
        ..Default::default()
    });
    t
}

#[test]
fn reservations_fill_nodes_then_leave_tasks_pending_with_the_reason() {
    const GIB: i64 = 1 << 30;
    let nodes = [sized("a", 2, GIB), sized("b", 2, GIB), sized("c", 2, GIB)];
    let services = [service("s", &[])];
    let tasks: Vec<Task> = pending_batch(4, "s")
        .into_iter()
        .map(|t| reserving(t, 0, 600 << 20))
        .collect();
    let decisions = plan(&nodes, &tasks, &services);
    let placed = per_node(&decisions);
    assert_eq!(placed.values().sum::<usize>(), 3, "{decisions:?}");
    assert!(
        placed.values().all(|&n| n == 1),
        "one 600M task per 1G node"
    );
    let reasons: Vec<&str> = decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Unschedulable { reason, .. } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons,
        ["no suitable node (insufficient memory on 3 nodes)"]
    );
    // Running tasks hold their reservation, ended ones do not, whatever is desired.
    let mut stopping = reserving(task("r1", "s", TaskState::Running, "a"), 0, 600 << 20);
    stopping.set_desired_state(TaskState::Shutdown);
    let ended = reserving(task("r2", "s", TaskState::Failed, "b"), 0, 600 << 20);
    let cpu_hog = reserving(task("r3", "s", TaskState::Running, "c"), 2_000_000_000, 0);
    let mut tasks = vec![stopping, ended, cpu_hog];
    tasks.push(reserving(pending("p1", "s"), 1_000_000_000, 500 << 20));
    let decisions = plan(&nodes, &tasks, &services);
    assert_eq!(
        decisions,
        [Decision::Assign {
            task_id: "p1".into(),
            node_id: "b".into()
        }]
    );
    tasks[1].node_id = "a".into();
    tasks[1].status = Some(TaskStatus {
        state: TaskState::Running as i32,
        ..Default::default()
    });
    let reason = |d: &[Decision]| match d {
        [Decision::Unschedulable { reason, .. }] => reason.clone(),
        other => panic!("{other:?}"),
    };
    let decisions = plan(&nodes[..1], &tasks, &services);
    assert_eq!(
        reason(&decisions),
        "no suitable node (insufficient memory on 1 node)"
    );
    let decisions = plan(&nodes[2..], &tasks, &services);
    assert_eq!(
        reason(&decisions),
        "no suitable node (insufficient CPU on 1 node)"
    );
}

#[test]
fn a_node_that_reported_no_resources_takes_no_reserving_task() {
    let services = [service("s", &[])];
    let tasks = [
        reserving(pending("p1", "s"), 0, 64 << 20),
        pending("p2", "s"),
    ];
    let decisions = plan(&[ready("a")], &tasks, &services);
    assert!(decisions.contains(&Decision::Assign {
        task_id: "p2".into(),
        node_id: "a".into()
    }));
    assert!(decisions.contains(&Decision::Unschedulable {
        task_id: "p1".into(),
        reason: "no suitable node (insufficient memory on 1 node)".into()
    }));
}
