//! The index against the full scan it replaced: on random histories of tasks, nodes and
//! networks, every node's assignments must match a scan of all objects, and every node
//! whose message changed must be among those a change woke.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use swarmr_proto::store_action::{Kind, Target};
use swarmr_proto::{
    Cluster, Network, NetworkAssignment, NetworkAttachment, Node, NodeRole, NodeStatus,
    RemoteEndpoint, StoreAction, Task, TaskState, TaskStatus,
};

use super::assignments::{for_node, is_live_endpoint, is_node_task};
use super::index::{Affected, View};
use crate::store::object::key_of;
use crate::store::{Object, Store};

const NODES: [&str; 4] = ["n0", "n1", "n2", "n3"];
const NETWORKS: [&str; 2] = ["net0", "net1"];

/// The dispatcher's assignment before the index: a scan of every task.
fn full_scan(
    tasks: &[Task],
    networks: &[Network],
    nodes: &[Node],
    node_id: &str,
) -> (Vec<Task>, Vec<NetworkAssignment>) {
    let mine: Vec<&Task> = tasks
        .iter()
        .filter(|t| t.node_id == node_id && is_node_task(t))
        .collect();
    let wanted: BTreeSet<&str> = mine
        .iter()
        .filter(|t| is_live_endpoint(t))
        .flat_map(|t| t.networks.iter().map(|a| a.network_id.as_str()))
        .collect();
    let node_addrs: HashMap<&str, &str> = nodes
        .iter()
        .map(|n| {
            (
                n.id.as_str(),
                n.status.as_ref().map_or("", |s| s.addr.as_str()),
            )
        })
        .collect();
    let assignments = networks
        .iter()
        .filter(|n| wanted.contains(n.id.as_str()))
        .map(|network| NetworkAssignment {
            network: Some(network.clone()),
            peers: tasks
                .iter()
                .filter(|t| t.node_id != node_id && is_live_endpoint(t))
                .flat_map(|t| t.networks.iter().map(move |a| (t, a)))
                .filter(|(_, a)| a.network_id == network.id && !a.addr.is_empty())
                .map(|(t, a)| RemoteEndpoint {
                    task_id: t.id.clone(),
                    addr: a.addr.clone(),
                    node_addr: node_addrs
                        .get(t.node_id.as_str())
                        .unwrap_or(&"")
                        .to_string(),
                })
                .collect(),
        })
        .collect();
    (mine.into_iter().cloned().collect(), assignments)
}

/// The objects as the store would list them: by id.
#[derive(Default, Clone)]
struct Objects {
    tasks: BTreeMap<String, Task>,
    networks: BTreeMap<String, Network>,
    nodes: BTreeMap<String, Node>,
}

type Carried = (Vec<Task>, Vec<NetworkAssignment>, Option<Node>, Vec<Node>);

impl Objects {
    fn apply(&mut self, action: &StoreAction) {
        let delete = action.kind == Kind::Delete as i32;
        fn set<T: Clone>(map: &mut BTreeMap<String, T>, id: &str, obj: &T, delete: bool) {
            if delete {
                map.remove(id);
            } else {
                map.insert(id.to_string(), obj.clone());
            }
        }
        match &action.target {
            Some(Target::Task(t)) => set(&mut self.tasks, &t.id, t, delete),
            Some(Target::Network(n)) => set(&mut self.networks, &n.id, n, delete),
            Some(Target::Node(n)) => set(&mut self.nodes, &n.id, n, delete),
            _ => {}
        }
    }

    /// What a node's session message is made of, by the full scan.
    fn message(&self, node_id: &str) -> Carried {
        let tasks: Vec<Task> = self.tasks.values().cloned().collect();
        let networks: Vec<Network> = self.networks.values().cloned().collect();
        let nodes: Vec<Node> = self.nodes.values().cloned().collect();
        let (mine, assignments) = full_scan(&tasks, &networks, &nodes, node_id);
        let managers = nodes
            .iter()
            .filter(|n| n.role() == NodeRole::Manager)
            .cloned()
            .collect();
        (
            mine,
            assignments,
            self.nodes.get(node_id).cloned(),
            managers,
        )
    }
}

fn indexed(view: &View, node_id: &str) -> Carried {
    let (mine, assignments) = for_node(view, node_id);
    let managers = view.managers().cloned().collect();
    (mine, assignments, view.node(node_id).cloned(), managers)
}

fn action<T: Object>(obj: T, kind: Kind) -> StoreAction {
    StoreAction {
        kind: kind as i32,
        expected_version: 0,
        target: Some(obj.into_target()),
    }
}

const STATES: [TaskState; 6] = [
    TaskState::New,
    TaskState::Pending,
    TaskState::Assigned,
    TaskState::Running,
    TaskState::Complete,
    TaskState::Failed,
];

fn task_strategy() -> impl Strategy<Value = Task> {
    let attachment =
        (0..NETWORKS.len(), any::<bool>()).prop_map(|(n, addressed)| NetworkAttachment {
            network_id: NETWORKS[n].into(),
            addr: if addressed {
                format!("10.0.{n}.9/24")
            } else {
                String::new()
            },
        });
    (
        0..6usize,
        0..=NODES.len(),
        0..STATES.len(),
        any::<bool>(),
        prop::collection::vec(attachment, 0..3),
    )
        .prop_map(|(id, node, state, wanted, networks)| Task {
            id: format!("t{id}"),
            node_id: NODES.get(node).map_or(String::new(), |n| n.to_string()),
            status: Some(TaskStatus {
                state: STATES[state] as i32,
                ..Default::default()
            }),
            desired_state: if wanted {
                TaskState::Running
            } else {
                TaskState::Shutdown
            } as i32,
            networks,
            ..Default::default()
        })
}

fn node_strategy() -> impl Strategy<Value = Node> {
    let manager = prop::bool::weighted(0.2);
    (0..NODES.len(), manager, 0..2u8).prop_map(|(i, manager, addr)| Node {
        id: NODES[i].into(),
        role: if manager {
            NodeRole::Manager
        } else {
            NodeRole::Worker
        } as i32,
        raft_id: i as u64,
        api_addr: format!("192.0.2.{i}:2377"),
        status: Some(NodeStatus {
            addr: format!("192.0.2.{}", 10 * addr + i as u8),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn action_strategy() -> impl Strategy<Value = StoreAction> {
    let kind = prop_oneof![3 => Just(Kind::Update), 1 => Just(Kind::Delete)];
    prop_oneof![
        6 => (task_strategy(), kind.clone()).prop_map(|(t, k)| action(t, k)),
        2 => (node_strategy(), kind.clone()).prop_map(|(n, k)| action(n, k)),
        1 => (0..NETWORKS.len(), kind).prop_map(|(i, k)| action(
            Network { id: NETWORKS[i].into(), ..Default::default() },
            k
        )),
    ]
}

fn woke(affected: &Affected, node_id: &str) -> bool {
    match affected {
        Affected::Nobody => false,
        Affected::Nodes(nodes) => nodes.contains(node_id),
        Affected::Everyone => true,
    }
}

proptest! {
    // Enough cases that a worker's address change under a peer shows up.
    #![proptest_config(ProptestConfig::with_cases(1000))]
    #[test]
    fn nodes_are_woken_with_what_a_full_scan_gives(
        batches in prop::collection::vec(prop::collection::vec(action_strategy(), 1..4), 1..25)
    ) {
        let mut objects = Objects::default();
        let mut view = View::default();
        for batch in &batches {
            let before: Vec<Carried> = NODES.iter().map(|n| objects.message(n)).collect();
            batch.iter().for_each(|a| objects.apply(a));
            let affected = view.apply(batch);
            for (node_id, before) in NODES.iter().zip(before) {
                let after = objects.message(node_id);
                prop_assert_eq!(&indexed(&view, node_id), &after, "node {}", node_id);
                prop_assert!(after == before || woke(&affected, node_id), "{} not woken", node_id);
            }
        }
    }
}

/// Loading from the store gives the same view as following its changes.
#[test]
fn load_matches_applied_changes() {
    let db = sled::Config::new()
        .temporary(true)
        .open()
        .expect("temporary db");
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let actions: Vec<StoreAction> = (0..60)
        .map(|_| {
            let strategy = action_strategy();
            strategy.new_tree(&mut runner).expect("action").current()
        })
        .collect();
    let mut view = View::default();
    view.apply(&actions);
    let mut objects = Objects::default();
    actions.iter().for_each(|a| objects.apply(a));
    // Written to the tree before the store opens, as a restart finds them.
    let state = db.open_tree("state").expect("state tree");
    fn put<T: Object>(state: &sled::Tree, obj: &T) {
        let key = key_of(T::KIND, obj.id());
        state.insert(key, obj.encode_to_vec()).expect("insert");
    }
    objects.tasks.values().for_each(|t| put(&state, t));
    objects.networks.values().for_each(|n| put(&state, n));
    objects.nodes.values().for_each(|n| put(&state, n));
    let cluster = Cluster {
        id: "c1".into(),
        heartbeat_period_ms: 5000,
        ..Default::default()
    };
    put(&state, &cluster);
    let store = Store::open(&db).expect("store");
    let loaded = View::load(&store).expect("load");
    assert_eq!(loaded.heartbeat_period(), Duration::from_secs(5));
    for node_id in NODES {
        assert_eq!(indexed(&loaded, node_id), indexed(&view, node_id));
        assert_eq!(indexed(&loaded, node_id), objects.message(node_id));
    }
}

/// Every message carries the period; the view keeps it instead of decoding the cluster
/// object for each one.
#[test]
fn the_heartbeat_period_follows_the_cluster_object() {
    let mut view = View::default();
    assert_eq!(view.heartbeat_period(), super::DEFAULT_HEARTBEAT);
    let cluster = Cluster {
        id: "c1".into(),
        heartbeat_period_ms: 5000,
        ..Default::default()
    };
    let woken = view.apply(&[action(cluster.clone(), Kind::Update)]);
    assert_eq!(woken, Affected::Everyone, "every message carries it");
    assert_eq!(view.heartbeat_period(), Duration::from_secs(5));
    view.apply(&[action(cluster, Kind::Delete)]);
    assert_eq!(view.heartbeat_period(), super::DEFAULT_HEARTBEAT);
}
