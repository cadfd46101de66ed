//! The plan for one local endpoint: its veth pair, address and routes.

use super::{plan_enslaved_up, Net};
use crate::change::{Change, Scope};
use crate::netlink::diff;
use crate::netlink::Ns;
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
    let sb = n.in_sandbox();
    let cn = Ns::Container(ep.container_pid);
    let veth = names::veth(&ep.endpoint_id);
    let peer = names::veth_peer(&ep.endpoint_id, n.net.vni);
    let mut reason = Some(reason);
    let mut push =
        |n: &mut Net, change: Change| n.push_scoped(scope.clone(), change, reason.take());
    if container.link(&ep.ifname).is_some() {
        push(
            n,
            Change::DeleteLink {
                ns: cn.clone(),
                name: ep.ifname.clone(),
            },
        );
    }
    if container.link(&peer).is_some() {
        push(
            n,
            Change::DeleteLink {
                ns: cn.clone(),
                name: peer.clone(),
            },
        );
    }
    if sandbox.link(&veth).is_some() {
        push(
            n,
            Change::DeleteLink {
                ns: sb.clone(),
                name: veth.clone(),
            },
        );
    }
    let (mtu, mac) = (n.mtu, ep.mac);
    push(
        n,
        Change::CreateVeth {
            ns: sb.clone(),
            name: veth.clone(),
            peer: peer.clone(),
            mtu,
            peer_mac: mac,
        },
    );
    push(
        n,
        Change::SetLinkMaster {
            ns: sb.clone(),
            name: veth.clone(),
            master: names::BRIDGE.into(),
        },
    );
    push(
        n,
        Change::SetLinkUp {
            ns: sb.clone(),
            name: veth,
        },
    );
    push(
        n,
        Change::MoveLinkToNetns {
            ns: sb,
            name: peer.clone(),
            target: cn.clone(),
        },
    );
    push(
        n,
        Change::RenameLink {
            ns: cn.clone(),
            name: peer,
            new_name: ep.ifname.clone(),
        },
    );
    let (ip, prefix_len) = (ep.ip, n.net.subnet.prefix_len());
    push(
        n,
        Change::AddAddress {
            ns: cn.clone(),
            link: ep.ifname.clone(),
            ip,
            prefix_len,
        },
    );
    push(
        n,
        Change::SetLinkUp {
            ns: cn,
            name: ep.ifname.clone(),
        },
    );
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
    if ep.ifname == PRIMARY_IFNAME && !has_default {
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
