//! Deciding: a pure diff of the desired overlay against what the kernel
//! holds, as an ordered list of [`Step`]s. No IO here.
//!
//! Order per network: sandbox, bridge, VXLAN device, neighbours, FDB,
//! stale veths, then the endpoints (veth, address, routes last).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::change::{Change, Scope, Step};
use crate::netlink::{Link, Ns, VxlanSpec};
use crate::observe::{ActualHost, ActualSandbox};
use crate::types::{names, HostDesired, NetworkDesired};

/// VXLAN UDP port (IANA).
pub const VXLAN_PORT: u16 = 4789;
/// VXLAN over IPv4 costs 50 bytes of the underlay MTU.
pub const VXLAN_OVERHEAD: u32 = 50;

/// Every change needed to make `actual` match `desired`, in order.
pub fn plan(desired: &HostDesired, actual: &ActualHost) -> Vec<Step> {
    let mut steps = plan_stale_sandboxes(desired, actual);
    for net in &desired.networks {
        steps.extend(plan_network(desired, net, actual));
    }
    steps.extend(egress::plan_egress(desired, actual));
    steps
}

/// Sandboxes of this node whose network is no longer desired.
fn plan_stale_sandboxes(desired: &HostDesired, actual: &ActualHost) -> Vec<Step> {
    let wanted: BTreeSet<String> = desired
        .networks
        .iter()
        .map(|n| names::sandbox(&desired.node_short_id, n.vni))
        .collect();
    actual
        .existing_sandboxes
        .iter()
        .filter(|name| names::sandbox_vni(&desired.node_short_id, name).is_some())
        .filter(|name| !wanted.contains(*name))
        .map(|name| Step {
            scope: Scope::Node,
            change: Change::DeleteSandbox { name: name.clone() },
            reason: None,
        })
        .collect()
}

/// The facts about one network that every sub-plan needs.
struct Net<'a> {
    desired: &'a HostDesired,
    net: &'a NetworkDesired,
    sandbox: Ns,
    mtu: u32,
    out: Vec<Step>,
}

impl Net<'_> {
    fn push(&mut self, change: Change) {
        self.push_scoped(Scope::network(self.net), change, None);
    }

    fn push_scoped(&mut self, scope: Scope, change: Change, reason: Option<String>) {
        self.out.push(Step {
            scope,
            change,
            reason,
        });
    }

    fn in_sandbox(&self) -> Ns {
        self.sandbox.clone()
    }
}

fn plan_network(desired: &HostDesired, net: &NetworkDesired, actual: &ActualHost) -> Vec<Step> {
    let name = names::sandbox(&desired.node_short_id, net.vni);
    let mtu = net
        .mtu
        .unwrap_or_else(|| actual.underlay.mtu.saturating_sub(VXLAN_OVERHEAD));
    let mut n = Net {
        desired,
        net,
        sandbox: Ns::Sandbox(name.clone()),
        mtu,
        out: Vec::new(),
    };
    let empty = ActualSandbox::default();
    let sandbox = if actual.existing_sandboxes.contains(&name) {
        match actual.sandboxes.get(&name) {
            Some(sandbox) => sandbox,
            // Could not be read: observe reported it, touch nothing.
            None => return Vec::new(),
        }
    } else {
        n.push(Change::EnsureSandbox { name });
        &empty
    };
    let bridge = plan_bridge(&mut n, sandbox);
    let vxlan = plan_vxlan(&mut n, sandbox, actual, bridge);
    plan_neighbours(&mut n, sandbox, vxlan);
    plan_fdb(&mut n, sandbox, vxlan);
    plan_stale_veths(&mut n, sandbox);
    for ep in &net.local_endpoints {
        if let Some(container) = actual.containers.get(&ep.container_pid) {
            plan_endpoint(&mut n, ep, sandbox, container, bridge);
        }
    }
    n.out
}

/// `br0` with the gateway address, up. Returns the index of a bridge kept as is.
fn plan_bridge(n: &mut Net, sandbox: &ActualSandbox) -> Option<u32> {
    let ns = n.in_sandbox();
    let name = names::BRIDGE.to_string();
    match sandbox.link(names::BRIDGE) {
        Some(link) if link.kind.as_deref() == Some("bridge") => {
            plan_kept_bridge(n, sandbox, link);
            return Some(link.index);
        }
        Some(link) => {
            let reason = format!("kind: {:?} vs bridge", link.kind);
            let change = Change::DeleteLink {
                ns: ns.clone(),
                name: name.clone(),
            };
            n.push_scoped(Scope::network(n.net), change, Some(reason));
        }
        None => {}
    }
    let (ip, prefix_len) = (n.net.gateway, n.net.subnet.prefix_len());
    n.push(Change::CreateBridge {
        ns: ns.clone(),
        name: name.clone(),
        mtu: n.mtu,
    });
    n.push(Change::AddAddress {
        ns: ns.clone(),
        link: name.clone(),
        ip,
        prefix_len,
    });
    n.push(Change::SetLinkUp { ns, name });
    None
}

/// MTU, gateway address (and no other) and up state of an existing `br0`.
fn plan_kept_bridge(n: &mut Net, sandbox: &ActualSandbox, link: &Link) {
    let ns = n.in_sandbox();
    let name = link.name.clone();
    let gateway = (n.net.gateway, n.net.subnet.prefix_len());
    if link.mtu != n.mtu {
        n.push(Change::SetLinkMtu {
            ns: ns.clone(),
            name: name.clone(),
            mtu: n.mtu,
        });
    }
    let addrs: Vec<(Ipv4Addr, u8)> = sandbox
        .addresses
        .iter()
        .filter(|a| a.link_index == link.index)
        .map(|a| (a.ip, a.prefix_len))
        .collect();
    for &(ip, prefix_len) in addrs.iter().filter(|a| **a != gateway) {
        n.push(Change::DelAddress {
            ns: ns.clone(),
            link: name.clone(),
            ip,
            prefix_len,
        });
    }
    if !addrs.contains(&gateway) {
        let (ip, prefix_len) = gateway;
        n.push(Change::AddAddress {
            ns: ns.clone(),
            link: name.clone(),
            ip,
            prefix_len,
        });
    }
    if !link.up {
        n.push(Change::SetLinkUp { ns, name });
    }
}

/// `vxlan0`, created in the node namespace, moved in, enslaved, up.
/// Returns the index of a VXLAN device kept as is.
fn plan_vxlan(
    n: &mut Net,
    sandbox: &ActualSandbox,
    actual: &ActualHost,
    bridge: Option<u32>,
) -> Option<u32> {
    let ns = n.in_sandbox();
    let vxlan = names::VXLAN.to_string();
    let spec = vxlan_spec(n, actual);
    if let Some(link) = sandbox.link(names::VXLAN) {
        match spec.mismatch(link) {
            None => {
                plan_enslaved_up(n, Scope::network(n.net), link, bridge);
                return Some(link.index);
            }
            Some(reason) => {
                let change = Change::DeleteLink {
                    ns: ns.clone(),
                    name: vxlan.clone(),
                };
                n.push_scoped(Scope::network(n.net), change, Some(reason));
            }
        }
    }
    let temp = spec.name.clone();
    if sandbox.link(&temp).is_some() {
        n.push(Change::DeleteLink {
            ns: ns.clone(),
            name: temp.clone(),
        });
    }
    if actual.node_links.iter().any(|l| l.name == temp) {
        n.push(Change::DeleteLink {
            ns: Ns::Node,
            name: temp.clone(),
        });
    }
    n.push(Change::CreateVxlan { ns: Ns::Node, spec });
    n.push(Change::MoveLinkToNetns {
        ns: Ns::Node,
        name: temp.clone(),
        target: ns.clone(),
    });
    n.push(Change::RenameLink {
        ns: ns.clone(),
        name: temp,
        new_name: vxlan.clone(),
    });
    n.push(Change::SetLinkMaster {
        ns: ns.clone(),
        name: vxlan.clone(),
        master: names::BRIDGE.into(),
    });
    n.push(Change::SetLinkUp { ns, name: vxlan });
    None
}

/// The desired `vxlan0`, under its temporary node-namespace name.
fn vxlan_spec(n: &Net, actual: &ActualHost) -> VxlanSpec {
    VxlanSpec {
        name: names::vxlan_temp(&n.desired.node_short_id, n.net.vni),
        vni: n.net.vni,
        port: VXLAN_PORT,
        local: n.desired.underlay_addr,
        underlay_index: actual.underlay.index,
        mtu: n.mtu,
    }
}

/// Enslaves `link` to `br0` and sets it up, if it is not already.
fn plan_enslaved_up(n: &mut Net, scope: Scope, link: &Link, bridge: Option<u32>) {
    let ns = n.in_sandbox();
    if bridge.is_none() || link.master != bridge {
        let change = Change::SetLinkMaster {
            ns: ns.clone(),
            name: link.name.clone(),
            master: names::BRIDGE.into(),
        };
        n.push_scoped(scope.clone(), change, None);
    }
    if !link.up {
        n.push_scoped(
            scope,
            Change::SetLinkUp {
                ns,
                name: link.name.clone(),
            },
            None,
        );
    }
}

/// Veths of endpoints no longer desired, and leftover temporary peers.
fn plan_stale_veths(n: &mut Net, sandbox: &ActualSandbox) {
    let ns = n.in_sandbox();
    let wanted: BTreeSet<String> = n
        .net
        .local_endpoints
        .iter()
        .map(|e| names::veth(&e.endpoint_id))
        .collect();
    for link in &sandbox.links {
        let stale_veth = link.name.starts_with(names::VETH_PREFIX) && !wanted.contains(&link.name);
        if stale_veth || link.name.starts_with(names::PEER_PREFIX) {
            n.push(Change::DeleteLink {
                ns: ns.clone(),
                name: link.name.clone(),
            });
        }
    }
}

mod egress;
mod endpoint;
mod peers;

pub use egress::scope as egress_scope;
pub use endpoint::endpoint_mismatch;
use endpoint::plan_endpoint;
use peers::{plan_fdb, plan_neighbours};
