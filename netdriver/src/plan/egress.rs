//! The egress bridge: a bridge in the node namespace holding the egress gateway, and per
//! task container a veth pair (`vg-<task>` on the bridge, the peer in the container as
//! its last `ethN`) with a node-local address and the container's default route. The
//! worker masquerades what leaves the bridge, as Docker's `docker_gwbridge` does; the
//! overlay interfaces then carry only the overlay's own subnets.

use std::collections::BTreeSet;

use super::Net;
use crate::change::{Change, Scope, Step};
use crate::netlink::{Ns, VethSpec};
use crate::observe::{ActualContainer, ActualHost};
use crate::types::{mac_for_ip, names, EgressDesired, EgressEndpoint, HostDesired};

/// The changes for the egress bridge and its endpoints; nothing when egress is off.
pub(super) fn plan_egress(desired: &HostDesired, actual: &ActualHost) -> Vec<Step> {
    let Some(egress) = &desired.egress else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let push = |out: &mut Vec<Step>, scope: Scope, change: Change| {
        out.push(Step {
            scope,
            change,
            reason: None,
        })
    };
    let bridge = actual.node_links.iter().find(|l| l.name == egress.bridge);
    let has_gateway = bridge.is_some_and(|b| {
        actual.node_addresses.iter().any(|a| {
            a.link_index == b.index && a.ip == egress.gateway && a.prefix_len == egress.prefix_len
        })
    });
    let (ns, name) = (Ns::Node, egress.bridge.clone());
    if bridge.is_none() {
        let mtu = actual.underlay.mtu;
        push(
            &mut out,
            Scope::Node,
            Change::CreateBridge {
                ns: ns.clone(),
                name: name.clone(),
                mtu,
            },
        );
    }
    if !has_gateway {
        let (ip, prefix_len) = (egress.gateway, egress.prefix_len);
        let change = Change::AddAddress {
            ns: ns.clone(),
            link: name.clone(),
            ip,
            prefix_len,
        };
        push(&mut out, Scope::Node, change);
    }
    if !bridge.is_some_and(|b| b.up) {
        push(&mut out, Scope::Node, Change::SetLinkUp { ns, name });
    }
    plan_stale(egress, actual, &mut out);
    for ep in &egress.endpoints {
        if let Some(container) = actual.containers.get(&ep.container_pid) {
            plan_endpoint(egress, ep, actual, container, &mut out);
        }
    }
    out
}

/// Host ends of endpoints no longer desired, and leftover temporary peers.
fn plan_stale(egress: &EgressDesired, actual: &ActualHost, out: &mut Vec<Step>) {
    let wanted: BTreeSet<String> = egress
        .endpoints
        .iter()
        .map(|e| names::egress_veth(&e.endpoint_id))
        .collect();
    for link in &actual.node_links {
        let stale =
            link.name.starts_with(names::EGRESS_VETH_PREFIX) && !wanted.contains(&link.name);
        if stale || link.name.starts_with(names::EGRESS_PEER_PREFIX) {
            out.push(Step {
                scope: Scope::Node,
                change: Change::DeleteLink {
                    ns: Ns::Node,
                    name: link.name.clone(),
                },
                reason: None,
            });
        }
    }
}

/// An egress endpoint fails its own task, like an overlay endpoint.
pub fn scope(ep: &EgressEndpoint) -> Scope {
    Scope::Endpoint {
        network_id: "egress".into(),
        vni: 0,
        endpoint_id: ep.endpoint_id.clone(),
    }
}

/// Why the container side of `ep` is not as desired, `None` if it is.
fn mismatch(egress: &EgressDesired, ep: &EgressEndpoint, c: &ActualContainer) -> Option<String> {
    let Some(link) = c.link(&ep.ifname) else {
        return Some(format!("{} missing in container", ep.ifname));
    };
    let has_addr = c
        .addresses
        .iter()
        .any(|a| a.link_index == link.index && a.ip == ep.ip && a.prefix_len == egress.prefix_len);
    (!has_addr || !link.up).then(|| format!("{}: address {} or up state wrong", ep.ifname, ep.ip))
}

fn plan_endpoint(
    egress: &EgressDesired,
    ep: &EgressEndpoint,
    actual: &ActualHost,
    container: &ActualContainer,
    out: &mut Vec<Step>,
) {
    let scope = scope(ep);
    let veth = names::egress_veth(&ep.endpoint_id);
    let host_end = actual.node_links.iter().find(|l| l.name == veth);
    let cn = Ns::Container(ep.container_pid);
    let mut changes = Vec::new();
    let reason = match (mismatch(egress, ep, container), host_end) {
        (None, Some(_)) => None,
        (why, _) => {
            let why = why.unwrap_or_else(|| format!("{veth} missing on the node"));
            if host_end.is_some() {
                changes.push(Change::DeleteLink {
                    ns: Ns::Node,
                    name: veth.clone(),
                });
            }
            if container.link(&ep.ifname).is_some() {
                changes.push(Change::DeleteLink {
                    ns: cn.clone(),
                    name: ep.ifname.clone(),
                });
            }
            changes.extend(wire(egress, ep, actual.underlay.mtu));
            Some(why)
        }
    };
    let has_default = container
        .routes
        .iter()
        .any(|r| r.prefix_len == 0 && r.gateway == Some(egress.gateway));
    if reason.is_some() || !has_default {
        changes.push(Change::AddDefaultRoute {
            ns: cn,
            link: ep.ifname.clone(),
            gateway: egress.gateway,
        });
    }
    let mut reason = reason;
    for change in changes {
        out.push(Step {
            scope: scope.clone(),
            change,
            reason: reason.take(),
        });
    }
}

/// The veth pair: host end on the bridge, peer moved into the container, renamed,
/// addressed and up.
fn wire(egress: &EgressDesired, ep: &EgressEndpoint, mtu: u32) -> Vec<Change> {
    let (node, cn) = (Ns::Node, Ns::Container(ep.container_pid));
    let veth = names::egress_veth(&ep.endpoint_id);
    let peer = names::egress_peer(&ep.endpoint_id);
    vec![
        Change::CreateVeth {
            ns: node.clone(),
            spec: VethSpec {
                name: veth.clone(),
                peer: peer.clone(),
                mtu,
                peer_mac: mac_for_ip(ep.ip),
            },
        },
        Change::SetLinkMaster {
            ns: node.clone(),
            name: veth.clone(),
            master: egress.bridge.clone(),
        },
        Change::SetLinkUp {
            ns: node.clone(),
            name: veth,
        },
        Change::MoveLinkToNetns {
            ns: node,
            name: peer.clone(),
            target: cn.clone(),
        },
        Change::RenameLink {
            ns: cn.clone(),
            name: peer,
            new_name: ep.ifname.clone(),
        },
        Change::AddAddress {
            ns: cn.clone(),
            link: ep.ifname.clone(),
            ip: ep.ip,
            prefix_len: egress.prefix_len,
        },
        Change::SetLinkUp {
            ns: cn,
            name: ep.ifname.clone(),
        },
    ]
}

/// Whether the container of `pid` has an egress interface (then that one holds its
/// default route, not an overlay).
pub(super) fn has_egress(n: &Net, pid: u32) -> bool {
    n.desired
        .egress
        .as_ref()
        .is_some_and(|e| e.endpoints.iter().any(|x| x.container_pid == pid))
}
