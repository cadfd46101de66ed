//! The dispatcher's in-memory view of what sessions carry, so that building one node's
//! message costs O(its tasks + the peers on its networks) instead of a scan of every task.
//!
//! It holds the tasks some session carries (a node's own tasks, and live endpoints), indexed
//! by node and by network, and every network and node object. It is fed the store's applied
//! actions in commit order; applying one says which nodes' messages it may change, so only
//! those sessions wake. Pure data: the feed that keeps it current is `feed.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use swarmr_proto::store_action::{Kind, Target};
use swarmr_proto::{Network, Node, NodeRole, Service, StoreAction, Task};

use super::assignments::{is_live_endpoint, is_node_task};
use super::ingress::{is_published, mesh_node};
use crate::error::StoreError;
use crate::store::Store;

/// Whose session messages an applied change may alter.
#[derive(Debug, Default, PartialEq)]
pub enum Affected {
    #[default]
    Nobody,
    Nodes(HashSet<String>),
    Everyone,
}

impl Affected {
    fn node(&mut self, node_id: &str) {
        if node_id.is_empty() {
            return;
        }
        match self {
            Affected::Nobody => *self = Affected::Nodes(HashSet::from([node_id.to_string()])),
            Affected::Nodes(nodes) => {
                nodes.insert(node_id.to_string());
            }
            Affected::Everyone => {}
        }
    }

    pub fn merge(&mut self, other: Affected) {
        match other {
            Affected::Nobody => {}
            Affected::Everyone => *self = Affected::Everyone,
            Affected::Nodes(nodes) => nodes.iter().for_each(|n| self.node(n)),
        }
    }
}

#[derive(Default)]
pub struct View {
    /// Tasks in `by_node` or `by_network`, by id.
    tasks: HashMap<String, Task>,
    /// Node id → ids of the tasks that node must act on (`is_node_task`).
    by_node: HashMap<String, BTreeSet<String>>,
    /// Network id → ids of the live endpoints attached to it (`is_live_endpoint`).
    by_network: HashMap<String, BTreeSet<String>>,
    networks: BTreeMap<String, Network>,
    /// Every service, for the discovery directory of the networks it is attached to.
    services: BTreeMap<String, Service>,
    /// Ordered by id, as the store lists them, so the manager list keeps its order.
    nodes: BTreeMap<String, Node>,
    /// The ids of the manager nodes, in that order: every message lists them, and a
    /// walk of every node for each of a thousand messages cost more than the rest.
    managers: BTreeSet<String>,
    /// The cluster object's, which every message would otherwise decode (0: the default).
    heartbeat_period_ms: u64,
}

impl View {
    /// Reads the whole state; the caller makes sure no change lands in between (see feed).
    pub fn load(store: &Store) -> Result<Self, StoreError> {
        let mut view = View {
            heartbeat_period_ms: store.cluster()?.map_or(0, |c| c.heartbeat_period_ms),
            ..View::default()
        };
        for node in store.list::<Node>()? {
            view.apply_node(&node, false);
        }
        for network in store.list::<Network>()? {
            view.networks.insert(network.id.clone(), network);
        }
        for service in store.list::<Service>()? {
            view.services.insert(service.id.clone(), service);
        }
        for task in store.list::<Task>()? {
            view.insert_task(task);
        }
        Ok(view)
    }

    /// Applies one committed proposal's actions, in order.
    pub fn apply(&mut self, actions: &[StoreAction]) -> Affected {
        let mut affected = Affected::Nobody;
        for action in actions {
            let delete = action.kind == Kind::Delete as i32;
            match &action.target {
                Some(Target::Task(task)) => affected.merge(self.apply_task(task, delete)),
                Some(Target::Node(node)) => affected.merge(self.apply_node(node, delete)),
                Some(Target::Network(network)) => {
                    affected.merge(self.on_network(&network.id));
                    if delete {
                        self.networks.remove(&network.id);
                    } else {
                        self.networks.insert(network.id.clone(), network.clone());
                    }
                }
                Some(Target::Service(service)) => {
                    affected.merge(self.apply_service(service, delete));
                }
                // The heartbeat period is in every message.
                Some(Target::Cluster(cluster)) => {
                    self.heartbeat_period_ms = if delete {
                        0
                    } else {
                        cluster.heartbeat_period_ms
                    };
                    affected = Affected::Everyone;
                }
                // Read from the store when a message is built; a new value comes with the
                // new tasks its rolling update makes.
                Some(Target::Secret(_) | Target::Config(_)) | None => {}
            }
        }
        affected
    }

    fn apply_task(&mut self, task: &Task, delete: bool) -> Affected {
        let mut affected = Affected::Nobody;
        let old = self.remove_task(&task.id);
        if !delete {
            self.insert_task(task.clone());
        }
        // The task's node(s), and every node with an endpoint on a network it was or is
        // an endpoint of (they hold it as a peer, or it holds them).
        let new = (!delete).then_some(task);
        // Every node answers the mesh's ports, so each one balances over these tasks.
        let on_mesh = |t: &Task| {
            t.networks.iter().any(|a| {
                self.networks
                    .get(&a.network_id)
                    .is_some_and(Network::is_ingress)
            })
        };
        if old.iter().chain(new).any(on_mesh) {
            return Affected::Everyone;
        }
        for t in old.iter().chain(new) {
            affected.node(&t.node_id);
            if is_live_endpoint(t) {
                t.networks
                    .iter()
                    .for_each(|a| affected.merge(self.on_network(&a.network_id)));
            }
        }
        affected
    }

    /// A service is in the directory of every network it was or is attached to.
    fn apply_service(&mut self, service: &Service, delete: bool) -> Affected {
        let old = if delete {
            self.services.remove(&service.id)
        } else {
            self.services.insert(service.id.clone(), service.clone())
        };
        let new = (!delete).then_some(service);
        if old.iter().chain(new).any(is_published) {
            return Affected::Everyone;
        }
        let networks: BTreeSet<String> = old
            .iter()
            .chain(new)
            .flat_map(|s| s.spec.iter().flat_map(|spec| spec.networks.iter().cloned()))
            .collect();
        let mut affected = Affected::Nobody;
        networks
            .iter()
            .for_each(|n| affected.merge(self.on_network(n)));
        affected
    }

    fn apply_node(&mut self, node: &Node, delete: bool) -> Affected {
        let old = if delete {
            self.nodes.remove(&node.id)
        } else {
            self.nodes.insert(node.id.clone(), node.clone())
        };
        let is_manager = |n: &Node| n.role() == NodeRole::Manager;
        if !delete && is_manager(node) {
            self.managers.insert(node.id.clone());
        } else {
            self.managers.remove(&node.id);
        }
        if old.as_ref().is_some_and(is_manager) || (!delete && is_manager(node)) {
            return Affected::Everyone;
        }
        // The mesh's next hops are every node that is up.
        let new_hop = (!delete).then(|| mesh_node(node)).flatten();
        if self.any_published() && old.as_ref().and_then(mesh_node) != new_hop {
            return Affected::Everyone;
        }
        let mut affected = Affected::Nobody;
        affected.node(&node.id);
        let key = |n: &Node| (node_addr(n).to_string(), is_down(n));
        if old.as_ref().map(key) != (!delete).then(|| key(node)) {
            // Its underlay address is every peer's VTEP for its endpoints, and going Down
            // drops its draining endpoints.
            let networks: Vec<String> = self
                .by_network
                .iter()
                .filter(|(_, ids)| ids.iter().any(|id| self.task_on(id, &node.id)))
                .map(|(network_id, _)| network_id.clone())
                .collect();
            networks
                .iter()
                .for_each(|n| affected.merge(self.on_network(n)));
        }
        affected
    }

    fn task_on(&self, task_id: &str, node_id: &str) -> bool {
        self.tasks
            .get(task_id)
            .is_some_and(|t| t.node_id == node_id)
    }

    /// The nodes with a live endpoint on `network_id`.
    fn on_network(&self, network_id: &str) -> Affected {
        let mut affected = Affected::Nobody;
        for id in self.by_network.get(network_id).into_iter().flatten() {
            if let Some(task) = self.tasks.get(id) {
                affected.node(&task.node_id);
            }
        }
        affected
    }

    fn insert_task(&mut self, task: Task) {
        let mut kept = false;
        if is_node_task(&task) {
            kept = true;
            self.by_node
                .entry(task.node_id.clone())
                .or_default()
                .insert(task.id.clone());
        }
        if is_live_endpoint(&task) {
            for attachment in &task.networks {
                kept = true;
                self.by_network
                    .entry(attachment.network_id.clone())
                    .or_default()
                    .insert(task.id.clone());
            }
        }
        if kept {
            self.tasks.insert(task.id.clone(), task);
        }
    }

    fn remove_task(&mut self, id: &str) -> Option<Task> {
        let task = self.tasks.remove(id)?;
        remove_from(&mut self.by_node, &task.node_id, id);
        for attachment in &task.networks {
            remove_from(&mut self.by_network, &attachment.network_id, id);
        }
        Some(task)
    }

    /// The tasks `node_id` must act on, by id.
    pub fn node_tasks(&self, node_id: &str) -> impl Iterator<Item = &Task> {
        self.ids_to_tasks(self.by_node.get(node_id))
    }

    /// The live endpoints attached to `network_id`, on any node, by id.
    pub fn endpoints(&self, network_id: &str) -> impl Iterator<Item = &Task> {
        self.ids_to_tasks(self.by_network.get(network_id))
    }

    fn ids_to_tasks<'a>(
        &'a self,
        ids: Option<&'a BTreeSet<String>>,
    ) -> impl Iterator<Item = &'a Task> {
        ids.into_iter()
            .flatten()
            .filter_map(|id| self.tasks.get(id))
    }

    pub fn network(&self, id: &str) -> Option<&Network> {
        self.networks.get(id)
    }

    /// The services attached to `network_id`.
    pub fn services_on<'a>(&'a self, network_id: &'a str) -> impl Iterator<Item = &'a Service> {
        self.services.values().filter(move |s| {
            s.spec
                .as_ref()
                .is_some_and(|spec| spec.networks.iter().any(|n| n == network_id))
        })
    }

    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.get(id)
    }

    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.values()
    }

    /// The routing mesh's network, once a published port made it.
    pub fn ingress_network(&self) -> Option<&Network> {
        self.networks.values().find(|n| n.is_ingress())
    }

    fn any_published(&self) -> bool {
        self.services.values().any(is_published)
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// The manager nodes, ordered by id.
    pub fn managers(&self) -> impl Iterator<Item = &Node> {
        self.managers.iter().filter_map(|id| self.nodes.get(id))
    }

    pub fn heartbeat_period(&self) -> Duration {
        super::period_of(self.heartbeat_period_ms)
    }

    pub fn node_is_down(&self, id: &str) -> bool {
        self.nodes.get(id).is_some_and(is_down)
    }

    /// A node's underlay address, empty if unknown.
    pub fn node_addr(&self, id: &str) -> &str {
        self.nodes.get(id).map_or("", node_addr)
    }
}

fn is_down(node: &Node) -> bool {
    node.status
        .as_ref()
        .is_some_and(|s| s.state() == swarmr_proto::NodeState::Down)
}

fn node_addr(node: &Node) -> &str {
    node.status.as_ref().map_or("", |s| s.addr.as_str())
}

fn remove_from(index: &mut HashMap<String, BTreeSet<String>>, key: &str, id: &str) {
    if let Some(ids) = index.get_mut(key) {
        ids.remove(id);
        if ids.is_empty() {
            index.remove(key);
        }
    }
}
