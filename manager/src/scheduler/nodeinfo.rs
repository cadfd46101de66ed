//! Per-node bookkeeping for one scheduling pass: the node and how many live tasks it
//! holds, in total and per service. Counts grow as the pass places tasks.

use std::collections::{HashMap, HashSet};

use swarmr_proto::{
    Node, NodeAvailability, NodeState, PublishMode, Resources, Service, Task, TaskState,
};

/// A host-mode published port: number and protocol.
pub type HostPort = (u32, i32);

/// The host-mode ports a service's tasks bind on their node.
pub fn host_ports(service: &Service) -> Vec<HostPort> {
    service
        .ports
        .iter()
        .filter(|p| p.publish_mode() == PublishMode::Host)
        .map(|p| (p.published_port, p.protocol))
        .collect()
}

/// A node as the filters and the spread see it.
#[derive(Debug, Clone)]
pub struct NodeInfo<'a> {
    pub node: &'a Node,
    /// Live tasks on the node (see [`counts_toward_spread`]).
    pub total: usize,
    by_service: HashMap<&'a str, usize>,
    /// Host-mode ports its live tasks bind.
    pub host_ports: HashSet<HostPort>,
    /// The sum of the reservations of its tasks that have not ended (see [`reserves`]).
    pub reserved: Resources,
}

impl<'a> NodeInfo<'a> {
    pub fn new(node: &'a Node) -> NodeInfo<'a> {
        NodeInfo {
            node,
            total: 0,
            by_service: HashMap::new(),
            host_ports: HashSet::new(),
            reserved: Resources::default(),
        }
    }

    /// What the node offers and is not reserved yet (0 when it reported nothing).
    pub fn available(&self) -> Resources {
        let offered = self
            .node
            .description
            .as_ref()
            .and_then(|d| d.resources)
            .unwrap_or_default();
        Resources {
            nano_cpus: offered.nano_cpus.saturating_sub(self.reserved.nano_cpus),
            memory_bytes: offered
                .memory_bytes
                .saturating_sub(self.reserved.memory_bytes),
        }
    }

    /// Sets a task's reservation aside on this node.
    pub fn reserve(&mut self, task: &Task) {
        let wanted = reservation(task);
        self.reserved.nano_cpus = self.reserved.nano_cpus.saturating_add(wanted.nano_cpus);
        self.reserved.memory_bytes = self
            .reserved
            .memory_bytes
            .saturating_add(wanted.memory_bytes);
    }

    pub fn id(&self) -> &'a str {
        &self.node.id
    }

    pub fn state(&self) -> NodeState {
        self.node.state()
    }

    pub fn availability(&self) -> NodeAvailability {
        self.node.availability()
    }

    /// Live tasks of the service on this node.
    pub fn service_count(&self, service_id: &str) -> usize {
        self.by_service.get(service_id).copied().unwrap_or(0)
    }

    /// Counts one more live task of the service, binding its host ports.
    pub fn add_task(&mut self, service_id: &'a str, ports: &[HostPort]) {
        self.total += 1;
        *self.by_service.entry(service_id).or_insert(0) += 1;
        self.host_ports.extend(ports.iter().copied());
    }
}

/// A task occupies its node for the spread while it should run and has not ended.
pub fn counts_toward_spread(task: &Task) -> bool {
    let state = task.status.as_ref().map(|s| s.state()).unwrap_or_default();
    task.desired_state() == TaskState::Running && !state.is_terminal() && !task.node_id.is_empty()
}

/// The CPUs and memory a task reserves on its node (none when its spec sets none).
pub fn reservation(task: &Task) -> Resources {
    task.container
        .as_ref()
        .and_then(|c| c.resources.as_ref())
        .and_then(|r| r.reservations)
        .unwrap_or_default()
}

/// A task holds its reservation from its assignment until it has ended, whatever its
/// desired state: a container told to stop still uses its memory until it is gone.
pub fn reserves(task: &Task) -> bool {
    let state = task.status.as_ref().map(|s| s.state()).unwrap_or_default();
    !task.node_id.is_empty() && !state.is_terminal()
}

/// Every node with its live task counts, and an index from node id to position.
pub struct NodeSet<'a> {
    pub infos: Vec<NodeInfo<'a>>,
    index: HashMap<&'a str, usize>,
}

impl<'a> NodeSet<'a> {
    pub fn build(
        nodes: &'a [Node],
        tasks: &[&'a Task],
        ports: &HashMap<&str, Vec<HostPort>>,
    ) -> NodeSet<'a> {
        let infos: Vec<NodeInfo<'a>> = nodes.iter().map(NodeInfo::new).collect();
        let index = infos.iter().enumerate().map(|(i, n)| (n.id(), i)).collect();
        let mut set = NodeSet { infos, index };
        for task in tasks.iter().filter(|t| counts_toward_spread(t)) {
            if let Some(&i) = set.index.get(task.node_id.as_str()) {
                let bound = ports.get(task.service_id.as_str());
                set.infos[i].add_task(&task.service_id, bound.map_or(&[], Vec::as_slice));
            }
        }
        for task in tasks.iter().filter(|t| reserves(t)) {
            if let Some(&i) = set.index.get(task.node_id.as_str()) {
                set.infos[i].reserve(task);
            }
        }
        set
    }

    /// Position of the node in `infos`.
    pub fn position(&self, node_id: &str) -> Option<usize> {
        self.index.get(node_id).copied()
    }
}
