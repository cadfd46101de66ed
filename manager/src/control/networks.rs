//! `swarmr network ...`: create (with its subnet and VNI allocated in the same entry), list,
//! inspect (every container on it, on every node), remove, prune.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use ipnet::Ipv4Net;
use swarmr_proto::{
    Cluster, Network, NetworkContainer, NetworkPeer, NetworkServiceView, NetworkSpec, NetworkView,
    Node, Service, Task, TaskState,
};
use tonic::Status;

use super::resolve::{check_name, resolve, Named};
use crate::allocator::ipam::{validate, IpamError};
use crate::allocator::networks::NetworkIpam;
use crate::ca;
use crate::core::{create_action, delete_action, Core};
use crate::error::ProposeError;
use crate::store::Index;

pub const DRIVER: &str = "overlay";
const MTU_OPTION: &str = "com.docker.network.driver.mtu";
const ENCRYPTED_OPTION: &str = "encrypted";

fn invalid(e: IpamError) -> Status {
    Status::invalid_argument(e.to_string())
}

fn check_options(spec: &NetworkSpec) -> Result<(), Status> {
    if spec.driver != DRIVER {
        return Err(Status::invalid_argument(format!(
            "network driver {:?} is not supported: swarmr networks use the overlay driver (--driver overlay, the default)",
            spec.driver
        )));
    }
    if spec.options.contains_key(ENCRYPTED_OPTION) {
        return Err(Status::invalid_argument(
            "--opt encrypted is not supported: swarmr has no encrypted overlay yet, and traffic would cross the underlay in the clear",
        ));
    }
    if let Some(other) = spec.options.keys().find(|k| k.as_str() != MTU_OPTION) {
        return Err(Status::invalid_argument(format!(
            "network option {other:?} is not supported: the only option is {MTU_OPTION}"
        )));
    }
    if spec.attachable {
        return Err(Status::invalid_argument(
            "--attachable is not supported: swarmr runs service tasks only, no standalone containers to attach",
        ));
    }
    if let Some(mtu) = spec.options.get(MTU_OPTION) {
        match mtu.parse::<u32>() {
            Ok(68..=65535) => {}
            _ => {
                return Err(Status::invalid_argument(format!(
                    "invalid {MTU_OPTION} {mtu:?}: use a number of bytes between 68 and 65535"
                )))
            }
        }
    }
    Ok(())
}

/// The cluster's address pools and subnet size for new networks.
fn pools_of(cluster: &Cluster) -> Result<(Vec<Ipv4Net>, u8), Status> {
    let pool_texts: Vec<&str> = cluster
        .default_addr_pool
        .iter()
        .map(String::as_str)
        .collect();
    let pools = if pool_texts.is_empty() {
        validate::default_pools()
    } else {
        validate::parse_pools(&pool_texts).map_err(invalid)?
    };
    let mask = u8::try_from(cluster.subnet_size)
        .ok()
        .filter(|m| *m > 0)
        .unwrap_or(validate::DEFAULT_MASK_LEN);
    Ok((pools, mask))
}

/// Decides the network's subnet, gateway and VNI from the cluster pools, the committed
/// networks (`index`) and the ones this manager is still committing (`ipam`).
fn allocate(
    ipam: &mut NetworkIpam,
    index: &Index,
    cluster: &Cluster,
    spec: &NetworkSpec,
) -> Result<(Ipv4Net, Ipv4Addr, u32), Status> {
    let (pools, mask) = pools_of(cluster)?;
    let user = if spec.subnet.is_empty() {
        if !spec.gateway.is_empty() {
            return Err(Status::invalid_argument(
                "--gateway needs --subnet: give the subnet the gateway belongs to",
            ));
        }
        None
    } else {
        Some(validate::parse_subnet(&spec.subnet).map_err(invalid)?)
    };
    let subnet = ipam.subnet(index, pools, mask, user).map_err(|e| match e {
        IpamError::PoolsExhausted { .. } => Status::resource_exhausted(e.to_string()),
        other => invalid(other),
    })?;
    let gateway = if spec.gateway.is_empty() {
        Ok(validate::first_host(subnet))
    } else {
        validate::parse_gateway(&spec.gateway, subnet).map_err(invalid)
    };
    let vni = ipam
        .vni(index)
        .map_err(|e| Status::resource_exhausted(e.to_string()));
    match (gateway, vni) {
        (Ok(gateway), Ok(vni)) => Ok((subnet, gateway, vni)),
        (Err(e), _) | (_, Err(e)) => {
            ipam.give_back(subnet);
            Err(e)
        }
    }
}

/// Networks decided here but not committed yet, and where the allocation searches stand.
pub type Pending = Arc<Mutex<NetworkIpam>>;

/// Attempts when another manager committed a clashing network first.
const CREATE_ATTEMPTS: usize = 5;

pub async fn create(
    core: &Core,
    pending: &Pending,
    mut spec: NetworkSpec,
) -> Result<Network, Status> {
    if spec.driver.is_empty() {
        spec.driver = DRIVER.into();
    }
    crate::limits::check_network_spec(&spec)?;
    check_name("network", &spec.name)?;
    check_options(&spec)?;
    let mut attempt = 1;
    loop {
        let network = decide(core, pending, &spec)?;
        let result = core.propose(vec![create_action(network.clone())]).await;
        if let Ok(mut held) = pending.lock() {
            held.settle(&network.id);
        }
        match result {
            Ok(_) => return Ok(core.store().get(&network.id)?.unwrap_or(network)),
            Err(e) if decide_again(&e, attempt) => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether a refused create is decided again: only when a network committed through another
/// manager took the subnet or VNI this one picked (a pick from the new state may fit). A
/// taken name stays taken.
fn decide_again(refused: &ProposeError, attempt: usize) -> bool {
    matches!(refused, ProposeError::ResourceTaken(_)) && attempt < CREATE_ATTEMPTS
}

/// Picks the network's subnet and VNI against the committed networks and the ones this
/// manager is still committing, and holds them until the proposal is decided.
fn decide(core: &Core, pending: &Pending, spec: &NetworkSpec) -> Result<Network, Status> {
    let cluster = core.cluster()?;
    let mut held = pending
        .lock()
        .map_err(|_| Status::internal("allocation lock poisoned"))?;
    let network = core.store().with_index(|index| {
        let committed = index.network_named(&spec.name).cloned();
        let in_flight = held.pending().iter().find(|n| n.name() == spec.name);
        if let Some(id) = committed.or_else(|| in_flight.map(|n| n.id.clone())) {
            return Err(Status::already_exists(format!(
                "network {:?} already exists (id {id}): pick another name",
                spec.name
            )));
        }
        let ingress =
            index.ingress_network().is_some() || held.pending().iter().any(Network::is_ingress);
        if spec.ingress && ingress {
            return Err(Status::already_exists(
                "the cluster has an ingress network already: there is one routing mesh",
            ));
        }
        let (subnet, gateway, vni) = allocate(&mut held, index, &cluster, spec)?;
        Ok(Network {
            id: ca::new_id(),
            meta: None,
            spec: Some(spec.clone()),
            subnet: subnet.to_string(),
            gateway: gateway.to_string(),
            vni,
            ip_cursor: String::new(),
        })
    })?;
    held.hold(network.clone());
    Ok(network)
}

pub fn list(core: &Core) -> Result<Vec<Network>, Status> {
    let mut networks: Vec<Network> = core.store().list()?;
    networks.sort_by(|a, b| a.name().cmp(b.name()));
    Ok(networks)
}

/// Services attached to the network: in their spec, or as the routing mesh's.
fn services_on(core: &Core, network: &Network) -> Result<Vec<Service>, Status> {
    let mut services: Vec<Service> = core.store().list()?;
    services.retain(|s| {
        s.ingress_network_id == network.id
            || s.spec
                .as_ref()
                .is_some_and(|spec| spec.networks.contains(&network.id))
    });
    Ok(services)
}

/// Services that use the network, by name.
fn users(core: &Core, network: &Network) -> Result<Vec<String>, Status> {
    let services = services_on(core, network)?;
    Ok(services.iter().map(|s| s.name().to_string()).collect())
}

pub async fn remove(core: &Core, reference: &str) -> Result<String, Status> {
    let network: Network = resolve(core, reference)?;
    let users = users(core, &network)?;
    if !users.is_empty() {
        return Err(Status::failed_precondition(format!(
            "network {} is in use by service(s) {}: remove them or their --network first",
            network.name(),
            users.join(", ")
        )));
    }
    let name = network.name().to_string();
    core.propose(vec![delete_action(network)]).await?;
    Ok(name)
}

pub async fn prune(core: &Core) -> Result<Vec<String>, Status> {
    let mut removed = Vec::new();
    // The routing mesh stays, as Docker's `ingress` does: `network rm ingress` removes it.
    for network in list(core)?.into_iter().filter(|n| !n.is_ingress()) {
        if users(core, &network)?.is_empty() {
            removed.push(network.name().to_string());
            core.propose(vec![delete_action(network)]).await?;
        }
    }
    Ok(removed)
}

fn is_live(task: &Task) -> bool {
    task.desired_state() == TaskState::Running
        && task
            .status
            .as_ref()
            .is_some_and(|s| s.state() <= TaskState::Running)
}

/// The network with every task container on it, on every node.
pub fn view(core: &Core, reference: &str) -> Result<NetworkView, Status> {
    let network: Network = resolve(core, reference)?;
    let nodes: BTreeMap<String, Node> = core
        .store()
        .list::<Node>()?
        .into_iter()
        .map(|n| (n.id.clone(), n))
        .collect();
    let tasks: Vec<Task> = core.store().list()?;
    let mut containers = Vec::new();
    let mut peers: BTreeMap<String, NetworkPeer> = BTreeMap::new();
    for task in tasks.iter().filter(|t| is_live(t)) {
        let Some(attachment) = task
            .networks
            .iter()
            .find(|a| a.network_id == network.id && !a.addr.is_empty())
        else {
            continue;
        };
        let node = nodes.get(&task.node_id);
        let hostname = node.map(|n| n.name().to_string()).unwrap_or_default();
        if let Some(node) = node {
            let addr = node
                .status
                .as_ref()
                .map(|s| s.addr.clone())
                .unwrap_or_default();
            peers.insert(
                node.id.clone(),
                NetworkPeer {
                    node_hostname: hostname.clone(),
                    addr,
                },
            );
        }
        let ip = attachment.addr.split('/').next().unwrap_or_default();
        containers.push(NetworkContainer {
            task_id: task.id.clone(),
            name: format!("{}.{}.{}", task.service_name, task.slot, task.id),
            container_id: task
                .status
                .as_ref()
                .map(|s| s.container_id.clone())
                .unwrap_or_default(),
            node_id: task.node_id.clone(),
            node_hostname: hostname,
            ipv4_address: attachment.addr.clone(),
            mac_address: ip.parse::<Ipv4Addr>().map(mac_for).unwrap_or_default(),
        });
    }
    let services = service_views(core, &network, &tasks)?;
    Ok(NetworkView {
        network: Some(network),
        containers,
        peers: peers.into_values().collect(),
        services,
    })
}

fn service_views(
    core: &Core,
    network: &Network,
    tasks: &[Task],
) -> Result<Vec<NetworkServiceView>, Status> {
    let services = services_on(core, network)?;
    Ok(services
        .iter()
        .map(|s| NetworkServiceView {
            name: s.name().to_string(),
            vip: s
                .vips
                .iter()
                .find(|v| v.network_id == network.id)
                .map(|v| v.addr.clone())
                .unwrap_or_default(),
            task_names: tasks
                .iter()
                .filter(|t| t.service_id == s.id && is_live(t))
                .map(|t| format!("{}.{}.{}", t.service_name, t.slot, t.id))
                .collect(),
        })
        .collect())
}

/// Docker's rule: `02:42` and the four bytes of the IPv4 address.
pub fn mac_for(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

#[cfg(test)]
mod tests {
    use swarmr_proto::RefusalKind;

    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        for good in ["my-overlay", "a", "net_1.x"] {
            assert!(check_name("network", good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "a b", "ü", &"x".repeat(64)] {
            assert!(check_name("network", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn macs_derive_from_ips() {
        assert_eq!(mac_for("198.19.1.5".parse().unwrap()), "02:42:c6:13:01:05");
    }

    /// The refusal the state machine gives `mine` beside `committed`, as the proposer sees it.
    fn refused_beside(committed: &Network, mine: &Network) -> ProposeError {
        let refusal = crate::store::conflicts::network(mine, committed).expect("a clash");
        ProposeError::refused(refusal.kind, refusal.reason)
    }

    fn network(id: &str, name: &str, vni: u32, subnet: &str) -> Network {
        Network {
            id: id.into(),
            spec: Some(NetworkSpec {
                name: name.into(),
                ..Default::default()
            }),
            vni,
            subnet: subnet.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_create_is_decided_again_only_when_its_vni_or_subnet_was_taken() {
        let committed = network("n1", "front", 4097, "10.0.1.0/24");
        let same_vni = refused_beside(&committed, &network("n2", "back", 4097, "10.0.2.0/24"));
        assert!(decide_again(&same_vni, 1), "{same_vni:?}");
        let overlap = refused_beside(&committed, &network("n2", "back", 4098, "10.0.0.0/16"));
        assert!(decide_again(&overlap, 1), "{overlap:?}");
        assert!(!decide_again(&overlap, CREATE_ATTEMPTS));
        // Its subnet and VNI clash too, but a new pick cannot free the name.
        let same_name = refused_beside(&committed, &network("n2", "front", 4097, "10.0.1.0/24"));
        assert!(!decide_again(&same_name, 1), "{same_name:?}");
        assert!(same_name
            .to_string()
            .contains("network name \"front\" is already in use"));
        let stale = ProposeError::refused(RefusalKind::Stale, "network n1 changed".into());
        assert!(!decide_again(&stale, 1));
    }

    #[test]
    fn drivers_and_mtu_are_checked() {
        let mut spec = NetworkSpec {
            name: "n".into(),
            driver: "bridge".into(),
            ..Default::default()
        };
        assert!(check_options(&spec)
            .unwrap_err()
            .message()
            .contains("overlay driver"));
        spec.driver = DRIVER.into();
        spec.options.insert(MTU_OPTION.into(), "abc".into());
        assert!(check_options(&spec).is_err());
        spec.options.insert(MTU_OPTION.into(), "1400".into());
        assert!(check_options(&spec).is_ok());
    }
}
