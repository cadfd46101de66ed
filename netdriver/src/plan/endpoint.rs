//! The plan for one local endpoint: its veth pair, address and routes.

use super::{plan_enslaved_up, Net};
use crate::change::{Change, Scope};
use crate::netlink::diff;
use crate::netlink::{Ns, VethSpec};
use crate::observe::{ActualContainer, ActualSandbox};
use crate::types::{fmt_mac, names, LocalEndpoint};

/// Interface that gets the default route (the container's first network).
const PRIMARY_IFNAME: &str = "eth0";

/// Keeps a correctly wired endpoint (fixing only master/up/routes), or wires it anew.
pub(super) fn plan_endpoint(
    n: &mut Net,
    ep: &LocalEndpoint,
    sandbox: &ActualSandbox,
    container: &ActualContainer,
    bridge: Option<u32>,
) {
    let scope = Scope::endpoint(n.net, ep);
    let veth = names::veth(&ep.endpoint_id);
    let mismatch = endpoint_mismatch(ep, n.net.subnet.prefix_len(), n.mtu, container);
    match (mismatch, sandbox.link(&veth)) {
        (None, Some(link)) => {
            plan_enslaved_up(n, scope.clone(), link, bridge);
            plan_container_extras(n, &scope, ep, container);
        }
        (mismatch, _) => {
            let reason = mismatch.unwrap_or_else(|| format!("{veth} missing in sandbox"));
            plan_rewire(n, &scope, ep, sandbox, container, reason);
        }
    }
}

/// Deletes what is left of the endpoint and builds its veth pair again.
fn plan_rewire(
    n: &mut Net,
    scope: &Scope,
    ep: &LocalEndpoint,
    sandbox: &ActualSandbox,
    container: &ActualContainer,
    reason: String,
) {
    let mut changes = leftover_links(n, ep, sandbox, container);
    changes.extend(wire_endpoint(n, ep));
    let mut reason = Some(reason);
    for change in changes {
        n.push_scoped(scope.clone(), change, reason.take());
    }
    let fresh = ActualContainer {
        links: container
            .links
            .iter()
            .filter(|l| l.name == "lo")
            .cloned()
            .collect(),
        ..ActualContainer::default()
    };
    plan_container_extras(n, scope, ep, &fresh);
}

/// Deletes of the endpoint's links that exist: its interface and a leftover
/// temporary peer in the container, its veth in the sandbox.
fn leftover_links(
    n: &Net,
    ep: &LocalEndpoint,
    sandbox: &ActualSandbox,
    container: &ActualContainer,
) -> Vec<Change> {
    let veth = names::veth(&ep.endpoint_id);
    let peer = names::veth_peer(&ep.endpoint_id, n.net.vni);
    let cn = Ns::Container(ep.container_pid);
    [
        (
            cn.clone(),
            container.link(&ep.ifname).is_some(),
            ep.ifname.clone(),
        ),
        (cn, container.link(&peer).is_some(), peer),
        (n.in_sandbox(), sandbox.link(&veth).is_some(), veth),
    ]
    .into_iter()
    .filter(|(_, exists, _)| *exists)
    .map(|(ns, _, name)| Change::DeleteLink { ns, name })
    .collect()
}

/// The veth pair: sandbox end on `br0`, peer moved into the container,
/// renamed, addressed and up.
fn wire_endpoint(n: &Net, ep: &LocalEndpoint) -> Vec<Change> {
    let (sb, cn) = (n.in_sandbox(), Ns::Container(ep.container_pid));
    let veth = names::veth(&ep.endpoint_id);
    let peer = names::veth_peer(&ep.endpoint_id, n.net.vni);
    let ifname = ep.ifname.clone();
    let (mtu, peer_mac) = (n.mtu, ep.mac);
    let (ip, prefix_len) = (ep.ip, n.net.subnet.prefix_len());
    let master = names::BRIDGE.to_string();
    vec![
        Change::CreateVeth {
            ns: sb.clone(),
            spec: VethSpec {
                name: veth.clone(),
                peer: peer.clone(),
                mtu,
                peer_mac,
            },
        },
        Change::SetLinkMaster {
            ns: sb.clone(),
            name: veth.clone(),
            master,
        },
        Change::SetLinkUp {
            ns: sb.clone(),
            name: veth,
        },
        Change::MoveLinkToNetns {
            ns: sb,
            name: peer.clone(),
            target: cn.clone(),
        },
        Change::RenameLink {
            ns: cn.clone(),
            name: peer,
            new_name: ifname.clone(),
        },
        Change::AddAddress {
            ns: cn.clone(),
            link: ifname.clone(),
            ip,
            prefix_len,
        },
        Change::SetLinkUp {
            ns: cn,
            name: ifname,
        },
    ]
}

/// `lo` up, and the default route via the gateway on the primary interface.
fn plan_container_extras(
    n: &mut Net,
    scope: &Scope,
    ep: &LocalEndpoint,
    container: &ActualContainer,
) {
    let cn = Ns::Container(ep.container_pid);
    if !container.link("lo").is_some_and(|l| l.up) {
        n.push_scoped(
            scope.clone(),
            Change::SetLinkUp {
                ns: cn.clone(),
                name: "lo".into(),
            },
            None,
        );
    }
    let gateway = n.net.gateway;
    let has_default = container
        .routes
        .iter()
        .any(|r| r.prefix_len == 0 && r.gateway == Some(gateway));
    // Behind an egress interface, the default route is that interface's.
    if ep.ifname == PRIMARY_IFNAME
        && !has_default
        && !super::egress::has_egress(n, ep.container_pid)
    {
        let change = Change::AddDefaultRoute {
            ns: cn,
            link: ep.ifname.clone(),
            gateway,
        };
        n.push_scoped(scope.clone(), change, None);
    }
}

/// Why the container side of `ep` is not as desired, `None` if it is.
pub fn endpoint_mismatch(
    ep: &LocalEndpoint,
    prefix_len: u8,
    mtu: u32,
    c: &ActualContainer,
) -> Option<String> {
    let Some(link) = c.link(&ep.ifname) else {
        return Some(format!("{} missing in container", ep.ifname));
    };
    let has_addr = c
        .addresses
        .iter()
        .any(|a| a.link_index == link.index && a.ip == ep.ip && a.prefix_len == prefix_len);
    let diffs: Vec<String> = [
        diff(
            "mac",
            link.mac.as_ref().map_or_else(|| "none".into(), fmt_mac),
            fmt_mac(&ep.mac),
        ),
        diff("mtu", link.mtu, mtu),
        diff("up", link.up, true),
        (!has_addr).then(|| format!("address {}/{prefix_len} missing", ep.ip)),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!diffs.is_empty()).then(|| format!("{}: {}", ep.ifname, diffs.join(", ")))
}
