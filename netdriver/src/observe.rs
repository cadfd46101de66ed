//! Reading the kernel state that `plan` diffs against.

use std::collections::{BTreeMap, BTreeSet};

use crate::change::Scope;
use crate::error::{error_chain, Error};
use crate::netlink::{Address, FdbEntry, Link, Neighbour, Netlink, Ns, Route};
use crate::types::{names, HostDesired};

/// The underlay device: the link holding the node's advertise address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Underlay {
    pub index: u32,
    pub mtu: u32,
}

/// What the kernel holds for this node.
#[derive(Clone, Debug, Default)]
pub struct ActualHost {
    pub underlay: Underlay,
    /// Links of the node namespace (leftover temporary VXLAN names, the egress bridge).
    pub node_links: Vec<Link>,
    pub node_addresses: Vec<Address>,
    /// Every usable sandbox of this node.
    pub existing_sandboxes: BTreeSet<String>,
    /// Contents of the existing sandboxes of desired networks that could be read.
    pub sandboxes: BTreeMap<String, ActualSandbox>,
    /// Network state of the desired containers that could be read, by PID.
    pub containers: BTreeMap<u32, ActualContainer>,
}

/// Contents of one sandbox namespace.
#[derive(Clone, Debug, Default)]
pub struct ActualSandbox {
    pub links: Vec<Link>,
    pub addresses: Vec<Address>,
    pub fdb: Vec<FdbEntry>,
    pub neighbours: Vec<Neighbour>,
}

/// Network state of one container namespace.
#[derive(Clone, Debug, Default)]
pub struct ActualContainer {
    pub links: Vec<Link>,
    pub addresses: Vec<Address>,
    pub routes: Vec<Route>,
}

impl ActualSandbox {
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }
}

impl ActualContainer {
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }
}

/// A part of the host that could not be read, and why.
pub type ObserveFailure = (Scope, String);

/// Reads what `plan` needs. Fails only if the node namespace itself cannot be
/// read; an unreadable sandbox or container is returned as a failure of its scope.
pub async fn observe<N: Netlink>(
    nl: &N,
    desired: &HostDesired,
) -> Result<(ActualHost, Vec<ObserveFailure>), Error> {
    let node_links = nl.list_links(&Ns::Node).await?;
    let node_addrs = nl.list_addresses(&Ns::Node).await?;
    let underlay = find_underlay(desired, &node_links, &node_addrs)?;
    let prefix = names::sandbox_prefix(&desired.node_short_id);
    let existing_sandboxes: BTreeSet<String> =
        nl.list_sandboxes(&prefix).await?.into_iter().collect();
    let mut actual = ActualHost {
        underlay,
        node_links,
        node_addresses: node_addrs,
        existing_sandboxes,
        ..ActualHost::default()
    };
    let mut failures = Vec::new();
    for net in &desired.networks {
        let name = names::sandbox(&desired.node_short_id, net.vni);
        if !actual.existing_sandboxes.contains(&name) {
            continue;
        }
        match observe_sandbox(nl, &Ns::Sandbox(name.clone())).await {
            Ok(sandbox) => {
                actual.sandboxes.insert(name, sandbox);
            }
            Err(err) => failures.push((Scope::network(net), error_chain(&err))),
        }
    }
    // Every container an endpoint lives in, overlay or egress, read once.
    let mut wanted: Vec<(u32, Scope)> = Vec::new();
    for net in &desired.networks {
        wanted.extend(
            net.local_endpoints
                .iter()
                .map(|ep| (ep.container_pid, Scope::endpoint(net, ep))),
        );
    }
    for ep in desired.egress.iter().flat_map(|e| &e.endpoints) {
        wanted.push((ep.container_pid, crate::plan::egress_scope(ep)));
    }
    for (pid, scope) in wanted {
        if actual.containers.contains_key(&pid) {
            continue;
        }
        match observe_container(nl, &Ns::Container(pid)).await {
            Ok(container) => {
                actual.containers.insert(pid, container);
            }
            Err(err) => failures.push((scope, error_chain(&err))),
        }
    }
    Ok((actual, failures))
}

fn find_underlay(
    desired: &HostDesired,
    links: &[Link],
    addrs: &[Address],
) -> Result<Underlay, Error> {
    let not_found = || Error::FindUnderlay {
        addr: desired.underlay_addr,
    };
    let addr = addrs
        .iter()
        .find(|a| a.ip == desired.underlay_addr)
        .ok_or_else(not_found)?;
    let link = links
        .iter()
        .find(|l| l.index == addr.link_index)
        .ok_or_else(not_found)?;
    Ok(Underlay {
        index: link.index,
        mtu: link.mtu,
    })
}

async fn observe_sandbox<N: Netlink>(nl: &N, ns: &Ns) -> Result<ActualSandbox, Error> {
    Ok(ActualSandbox {
        links: nl.list_links(ns).await?,
        addresses: nl.list_addresses(ns).await?,
        fdb: nl.list_fdb(ns).await?,
        neighbours: nl.list_neighbours(ns).await?,
    })
}

async fn observe_container<N: Netlink>(nl: &N, ns: &Ns) -> Result<ActualContainer, Error> {
    Ok(ActualContainer {
        links: nl.list_links(ns).await?,
        addresses: nl.list_addresses(ns).await?,
        routes: nl.list_routes(ns).await?,
    })
}
