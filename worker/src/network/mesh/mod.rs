//! The node's own namespace as part of the cluster network, decided from the session
//! message (pure, no IO): the egress bridge that gives task containers a way out, and the
//! node's end of the routing mesh on the ingress network. The overlay wires both through
//! netdriver; `publish` loads the NAT rules and routes that use them.
//!
//! The routing mesh, per published port, keeping the client's address:
//! 1. A client connects to `node A:8080`. A DNATs (no SNAT) to a serving task: a task
//!    on A by its egress address, a task on node B by its ingress address.
//! 2. A reaches the ingress address through its interface on the ingress network
//!    (`swr-ingress`, a veth into A's ingress sandbox). Every remote task's ingress
//!    address resolves to its node's interface MAC, so the packet crosses VXLAN to B's
//!    namespace, not to the container.
//! 3. B takes it in on `swr-ingress`, marks the connection with the sending node (its
//!    source MAC is `02:42` + that node's ingress address) and DNATs to the task's egress
//!    address. The task sees the client's own address.
//! 4. The reply leaves the task by its default route (the egress bridge) into B, where
//!    the connection's mark selects a route back to A over the mesh. A undoes its DNAT
//!    and answers the client: both nodes see both directions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;

use swarmr_netdriver::{
    mac_for_ip, EgressDesired, EgressEndpoint, LocalEndpoint, NetworkDesired, RemoteEndpoint,
};
use swarmr_proto::convert::addr_ip;
use swarmr_proto::{Ingress, Network, SessionMessage, Task, TaskState};

pub use swarmr_netdriver::Ipv4Net;

/// The node's interface on the ingress network.
pub const INGRESS_IFNAME: &str = "swr-ingress";
/// The bridge task containers reach the outside through.
pub const EGRESS_BRIDGE: &str = "swr_gwbridge";
/// Endpoint id of the node's own end of the ingress network.
const MESH_ENDPOINT: &str = "ingressnode";

/// How this node takes part in egress and published ports.
#[derive(Clone, Debug)]
pub struct HostNet {
    /// Off when several nodes share one network namespace (loopback tests): the node
    /// namespace is then left alone.
    pub enabled: bool,
    pub egress_subnet: Ipv4Net,
    /// A process in the node's own namespace (this one): the mesh interface's netns.
    pub node_pid: u32,
}

impl HostNet {
    /// The egress bridge's address: the subnet's first host.
    pub fn egress_gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.egress_subnet.network()) + 1)
    }
}

/// The ingress network, while the message carries one.
pub fn ingress_network(message: &SessionMessage) -> Option<&Network> {
    message.ingress.as_ref()?.network.as_ref()
}

fn is_internal(message: &SessionMessage, network_id: &str) -> bool {
    message
        .networks
        .iter()
        .filter_map(|a| a.network.as_ref())
        .any(|n| n.id == network_id && n.spec.as_ref().is_some_and(|s| s.internal))
}

/// The task's overlay attachments, in interface order: the ingress address is no
/// interface.
pub fn overlay_attachments<'a>(
    message: &'a SessionMessage,
    task: &'a Task,
) -> impl Iterator<Item = &'a swarmr_proto::NetworkAttachment> + 'a {
    let ingress = ingress_network(message).map(|n| n.id.as_str());
    task.networks
        .iter()
        .filter(move |a| Some(a.network_id.as_str()) != ingress)
}

/// A task gets a way out unless every network it is on is internal.
pub fn has_egress(message: &SessionMessage, task: &Task) -> bool {
    let mut networks = overlay_attachments(message, task).peekable();
    networks.peek().is_none() || networks.any(|a| !is_internal(message, &a.network_id))
}

/// The egress address of every task of the message that gets one. Each task hashes to a
/// slot of the subnet, the next free one on a collision (in task id order), so every
/// reader of one message agrees and a task keeps its address while it lives.
pub fn egress_addrs(message: &SessionMessage, host: &HostNet) -> BTreeMap<String, Ipv4Addr> {
    let mut addrs = BTreeMap::new();
    if !host.enabled {
        return addrs;
    }
    let base = u32::from(host.egress_subnet.network());
    let size = 1u64 << (32 - u32::from(host.egress_subnet.prefix_len()));
    // Hosts 2..size-2: the network address, the gateway (.1) and broadcast are not.
    let slots = size.saturating_sub(3).max(1);
    let mut taken: HashSet<u64> = HashSet::new();
    let mut ids: Vec<&Task> = message
        .tasks
        .iter()
        .filter(|t| t.desired_state() <= TaskState::Running && has_egress(message, t))
        .collect();
    ids.sort_by(|a, b| a.id.cmp(&b.id));
    for task in ids.into_iter().take(slots as usize) {
        let mut slot = fnv1a(task.id.as_bytes()) % slots;
        while taken.contains(&slot) {
            slot = (slot + 1) % slots;
        }
        taken.insert(slot);
        addrs.insert(task.id.clone(), Ipv4Addr::from(base + 2 + slot as u32));
    }
    addrs
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The egress bridge with an endpoint per wired task (`pids`: task id → container PID).
pub fn egress_desired(
    message: &SessionMessage,
    host: &HostNet,
    pids: &BTreeMap<String, u32>,
) -> Option<EgressDesired> {
    if !host.enabled {
        return None;
    }
    let addrs = egress_addrs(message, host);
    let endpoints = message
        .tasks
        .iter()
        .filter_map(|task| {
            let pid = *pids.get(&task.id)?;
            let ip = *addrs.get(&task.id)?;
            let index = overlay_attachments(message, task).count();
            Some(EgressEndpoint {
                endpoint_id: task.id.clone(),
                container_pid: pid,
                ifname: format!("eth{index}"),
                ip,
            })
        })
        .collect();
    Some(EgressDesired {
        bridge: EGRESS_BRIDGE.into(),
        gateway: host.egress_gateway(),
        prefix_len: host.egress_subnet.prefix_len(),
        endpoints,
    })
}

/// This node's end of the mesh: its interface on the ingress network, every other node's
/// end, and every remote serving task's ingress address behind its node's end.
pub fn ingress_desired(
    node_id: &str,
    message: &SessionMessage,
    host: &HostNet,
) -> Option<NetworkDesired> {
    let Ingress {
        network,
        nodes,
        services,
    } = message.ingress.as_ref()?;
    let network = network.as_ref()?;
    let me = nodes.iter().find(|n| n.node_id == node_id)?;
    if !host.enabled {
        return None;
    }
    let own_ip = addr_ip(&me.ingress_addr)?;
    let mut remote: Vec<RemoteEndpoint> = Vec::new();
    let mut node_mac: HashMap<&str, ([u8; 6], Ipv4Addr)> = HashMap::new();
    for node in nodes.iter().filter(|n| n.node_id != node_id) {
        let (Some(ip), Ok(vtep)) = (addr_ip(&node.ingress_addr), node.node_addr.parse()) else {
            continue;
        };
        node_mac.insert(&node.node_id, (mac_for_ip(ip), vtep));
        remote.push(RemoteEndpoint {
            ip,
            mac: mac_for_ip(ip),
            vtep,
        });
    }
    for task in services.iter().flat_map(|s| &s.tasks) {
        let (Some(&(mac, vtep)), Some(ip)) = (
            node_mac.get(task.node_id.as_str()),
            addr_ip(&task.ingress_addr),
        ) else {
            continue;
        };
        remote.push(RemoteEndpoint { ip, mac, vtep });
    }
    remote.sort_by_key(|r| r.ip);
    remote.dedup_by_key(|r| r.ip);
    Some(NetworkDesired {
        network_id: network.id.clone(),
        vni: network.vni,
        subnet: network.subnet.parse().ok()?,
        gateway: network.gateway.parse().ok()?,
        mtu: None,
        local_endpoints: vec![LocalEndpoint {
            endpoint_id: MESH_ENDPOINT.into(),
            container_pid: host.node_pid,
            ifname: INGRESS_IFNAME.into(),
            ip: own_ip,
            mac: mac_for_ip(own_ip),
        }],
        remote_endpoints: remote,
    })
}

#[cfg(test)]
mod tests;
