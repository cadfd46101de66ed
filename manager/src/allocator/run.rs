//! One allocation pass. See the module docs.

use std::collections::BTreeMap;
use std::sync::Arc;

use ipnet::Ipv4Net;

use swarmr_proto::convert::{addr_ip, now_millis};
use swarmr_proto::{EndpointMode, Network, Node, Service, Task, TaskState, TaskStatus, VirtualIp};

use super::ipam::AddressPool;
use crate::controller::Action;
use crate::core::{update_action, Core};
use crate::error::ProposeError;
use crate::store::Object;
use swarmr_proto::StoreAction;

/// Addresses are kept by live tasks only: a task that ended gives its address back.
fn holds_address(task: &Task) -> bool {
    task.status
        .as_ref()
        .is_none_or(|s| s.state() <= TaskState::Running)
}

/// The network's pool with every address in use reserved and the stored cursor.
fn pool_of(
    network: &Network,
    tasks: &[Arc<Task>],
    services: &[Service],
    nodes: &[Node],
) -> Option<AddressPool> {
    let subnet = network.subnet.parse().ok()?;
    let gateway = network.gateway.parse().ok();
    let task_addrs = tasks
        .iter()
        .filter(|t| holds_address(t))
        .flat_map(|t| t.networks.iter())
        .filter(|a| a.network_id == network.id)
        .filter_map(|a| addr_ip(&a.addr));
    let vips = services
        .iter()
        .flat_map(|s| s.vips.iter())
        .filter(|v| v.network_id == network.id)
        .filter_map(|v| addr_ip(&v.addr));
    let node_addrs = nodes
        .iter()
        .filter(|_| network.is_ingress())
        .filter_map(|n| addr_ip(&n.ingress_addr));
    let cursor = network.ip_cursor.parse().ok();
    AddressPool::rebuild(
        subnet,
        gateway,
        task_addrs.chain(vips).chain(node_addrs).collect::<Vec<_>>(),
        cursor,
    )
    .ok()
}

/// The pools of the networks this pass allocates on, built on first use: a pass costs
/// what it allocates, not the number of networks.
struct Pools<'a> {
    /// Loads a network by id.
    load: &'a (dyn Fn(&str) -> Option<Network> + Sync),
    tasks: &'a [Arc<Task>],
    services: &'a [Service],
    nodes: &'a [Node],
    networks: BTreeMap<String, Network>,
    pools: BTreeMap<String, AddressPool>,
}

impl Pools<'_> {
    /// Loads the network and builds its pool, once.
    fn network(&mut self, network_id: &str) -> Option<&Network> {
        if !self.networks.contains_key(network_id) {
            let network = (self.load)(network_id)?;
            if let Some(pool) = pool_of(&network, self.tasks, self.services, self.nodes) {
                self.pools.insert(network.id.clone(), pool);
            }
            self.networks.insert(network.id.clone(), network);
        }
        self.networks.get(network_id)
    }

    /// An address with the subnet's prefix length, e.g. `10.0.0.5/24`.
    fn allocate(&mut self, network_id: &str) -> Result<String, String> {
        let network = self
            .network(network_id)
            .ok_or_else(|| format!("network {network_id} no longer exists"))?;
        let prefix = network.subnet.split('/').nth(1).unwrap_or("32").to_string();
        let pool = self
            .pools
            .get_mut(network_id)
            .ok_or_else(|| format!("network {network_id} has no usable subnet"))?;
        let ip = pool.allocate().map_err(|e| e.to_string())?;
        Ok(format!("{ip}/{prefix}"))
    }

    /// Networks whose cursor moved, to store with the allocations.
    fn moved_cursors(&self) -> Vec<StoreAction> {
        self.networks
            .values()
            .filter_map(|network| {
                let cursor = self.pools.get(&network.id)?.cursor().to_string();
                (cursor != network.ip_cursor).then(|| {
                    let mut updated = network.clone();
                    updated.ip_cursor = cursor;
                    update_action(updated, network.version())
                })
            })
            .collect()
    }
}

fn allocate_task(pools: &mut Pools, task: &Task) -> Option<Task> {
    let mut updated = task.clone();
    let now = now_millis();
    for attachment in updated.networks.iter_mut().filter(|a| a.addr.is_empty()) {
        match pools.allocate(&attachment.network_id) {
            Ok(addr) => attachment.addr = addr,
            Err(reason) => {
                let status = task.status.clone().unwrap_or_default();
                if status.error == reason {
                    return None;
                }
                updated = task.clone();
                updated.status = Some(TaskStatus {
                    error: reason,
                    message: "waiting for a free address".into(),
                    timestamp: now,
                    ..status
                });
                return Some(updated);
            }
        }
    }
    updated.status = Some(TaskStatus {
        state: TaskState::Pending as i32,
        message: "allocated".into(),
        timestamp: now,
        ..Default::default()
    });
    Some(updated)
}

fn allocate_vips(pools: &mut Pools, service: &Service) -> Option<Service> {
    let spec = service.spec.as_ref()?;
    let wanted: Vec<&String> = if spec.endpoint_mode() == EndpointMode::Vip {
        spec.networks.iter().collect()
    } else {
        Vec::new()
    };
    let mut vips: Vec<VirtualIp> = service
        .vips
        .iter()
        .filter(|v| wanted.contains(&&v.network_id))
        .cloned()
        .collect();
    for network_id in wanted {
        if !vips.iter().any(|v| &v.network_id == network_id) {
            let addr = pools.allocate(network_id).ok()?;
            vips.push(VirtualIp {
                network_id: network_id.clone(),
                addr,
            });
        }
    }
    (vips != service.vips).then(|| Service {
        vips,
        ..service.clone()
    })
}

/// Every node gets an address on the ingress network, its end of the routing mesh; an
/// address of a removed ingress network is given up (and replaced once one exists again).
fn allocate_ingress_addrs(
    pools: &mut Pools,
    ingress_id: Option<&str>,
    nodes: &[Node],
) -> Vec<StoreAction> {
    let ingress = ingress_id.and_then(|id| pools.network(id)).cloned();
    let subnet: Option<Ipv4Net> = ingress.as_ref().and_then(|n| n.subnet.parse().ok());
    let current = |node: &Node| {
        let ip = addr_ip(&node.ingress_addr);
        ip.zip(subnet)
            .is_some_and(|(ip, subnet)| subnet.contains(&ip))
    };
    nodes
        .iter()
        .filter(|n| !current(n) && (ingress.is_some() || !n.ingress_addr.is_empty()))
        .filter_map(|node| {
            let ingress_addr = match &ingress {
                Some(network) => pools.allocate(&network.id).ok()?,
                None => String::new(),
            };
            let updated = Node {
                ingress_addr,
                ..node.clone()
            };
            Some(update_action(updated, node.version()))
        })
        .collect()
}

pub async fn reconcile(core: Core) -> Result<Action, ProposeError> {
    let store = core.store();
    let tasks = store.list_shared::<Task>()?;
    let services: Vec<Service> = store.list()?;
    let nodes: Vec<Node> = store.list()?;
    let ingress_id = store.with_index(|index| index.ingress_network().cloned());
    let load = |id: &str| store.get::<Network>(id).ok().flatten();
    let mut pools = Pools {
        load: &load,
        tasks: &tasks,
        services: &services,
        nodes: &nodes,
        networks: BTreeMap::new(),
        pools: BTreeMap::new(),
    };
    let mut actions: Vec<StoreAction> =
        allocate_ingress_addrs(&mut pools, ingress_id.as_deref(), &nodes);
    for service in &services {
        if let Some(updated) = allocate_vips(&mut pools, service) {
            actions.push(update_action(updated, service.version()));
        }
    }
    let new_tasks = tasks.iter().filter(|t| {
        t.desired_state() == TaskState::Running
            && t.status
                .as_ref()
                .is_none_or(|s| s.state() == TaskState::New)
    });
    for task in new_tasks {
        if let Some(updated) = allocate_task(&mut pools, task) {
            actions.push(update_action(updated, task.version()));
        }
    }
    if !actions.is_empty() {
        actions.extend(pools.moved_cursors());
        core.propose_chunked(actions).await?;
    }
    Ok(Action::AwaitChange)
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmr_proto::NetworkSpec;

    fn ingress(subnet: &str) -> Network {
        Network {
            id: "ing".into(),
            subnet: subnet.into(),
            gateway: subnet.replace(".0/24", ".1"),
            spec: Some(NetworkSpec {
                ingress: true,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The ingress addresses a pass hands out with `network` as the routing mesh's.
    fn ingress_addrs(network: Option<Network>, nodes: &[Node]) -> Vec<String> {
        let id = network.as_ref().map(|n| n.id.clone());
        let load = move |_: &str| network.clone();
        let mut pools = Pools {
            load: &load,
            tasks: &[],
            services: &[],
            nodes: &[],
            networks: BTreeMap::new(),
            pools: BTreeMap::new(),
        };
        addrs(&allocate_ingress_addrs(&mut pools, id.as_deref(), nodes))
    }

    fn node(id: &str, ingress_addr: &str) -> Node {
        Node {
            id: id.into(),
            ingress_addr: ingress_addr.into(),
            ..Default::default()
        }
    }

    fn addrs(actions: &[StoreAction]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match &a.target {
                Some(swarmr_proto::store_action::Target::Node(n)) => Some(n.ingress_addr.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn nodes_get_distinct_ingress_addresses_once() {
        let nodes = [node("a", ""), node("b", ""), node("c", "10.0.7.9/24")];
        let got = ingress_addrs(Some(ingress("10.0.7.0/24")), &nodes);
        assert_eq!(got, ["10.0.7.2/24", "10.0.7.3/24"], "c keeps its address");
    }

    #[test]
    fn addresses_of_a_removed_ingress_network_are_given_up_or_replaced() {
        let nodes = [node("a", "10.0.7.2/24")];
        assert_eq!(ingress_addrs(None, &nodes), [""]);
        let moved = ingress_addrs(Some(ingress("10.0.8.0/24")), &nodes);
        assert_eq!(moved, ["10.0.8.2/24"]);
        assert!(ingress_addrs(None, &[node("b", "")]).is_empty());
    }
}
