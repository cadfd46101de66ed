//! The plan for remote endpoints: neighbour and FDB entries on `vxlan0`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use super::Net;
use crate::change::Change;
use crate::observe::ActualSandbox;
use crate::types::names;

/// Permanent IP → MAC entries on `vxlan0`, one per remote endpoint.
pub(super) fn plan_neighbours(n: &mut Net, sandbox: &ActualSandbox, vxlan: Option<u32>) {
    let ns = n.in_sandbox();
    let link = names::VXLAN.to_string();
    let actual: BTreeMap<Ipv4Addr, Option<[u8; 6]>> = sandbox
        .neighbours
        .iter()
        .filter(|e| Some(e.link_index) == vxlan)
        .map(|e| (e.ip, e.mac.filter(|_| e.permanent)))
        .collect();
    let desired: BTreeMap<Ipv4Addr, [u8; 6]> = n
        .net
        .remote_endpoints
        .iter()
        .map(|r| (r.ip, r.mac))
        .collect();
    for ip in actual.keys().filter(|ip| !desired.contains_key(ip)) {
        n.push(Change::DelNeigh {
            ns: ns.clone(),
            link: link.clone(),
            ip: *ip,
        });
    }
    for (&ip, &mac) in &desired {
        if actual.get(&ip) != Some(&Some(mac)) {
            n.push(Change::AddNeigh {
                ns: ns.clone(),
                link: link.clone(),
                ip,
                mac,
            });
        }
    }
}

/// Permanent MAC → VTEP entries on `vxlan0`, one per remote endpoint.
pub(super) fn plan_fdb(n: &mut Net, sandbox: &ActualSandbox, vxlan: Option<u32>) {
    let ns = n.in_sandbox();
    let link = names::VXLAN.to_string();
    let mut actual: BTreeMap<[u8; 6], BTreeSet<Ipv4Addr>> = BTreeMap::new();
    for entry in sandbox.fdb.iter().filter(|e| Some(e.link_index) == vxlan) {
        if let Some(dst) = entry.dst {
            actual.entry(entry.mac).or_default().insert(dst);
        }
    }
    let desired: BTreeMap<[u8; 6], Ipv4Addr> = n
        .net
        .remote_endpoints
        .iter()
        .map(|r| (r.mac, r.vtep))
        .collect();
    // The bridge learns remote MACs on its vxlan0 port; such an entry must go with its
    // endpoint, not linger until it ages out (`del_fdb` removes both kinds).
    let learned_only = sandbox
        .fdb
        .iter()
        .filter(|e| Some(e.link_index) == vxlan && e.learned && !actual.contains_key(&e.mac))
        .map(|e| e.mac)
        .collect::<BTreeSet<_>>();
    let stale = actual.keys().chain(&learned_only);
    for mac in stale.filter(|mac| !desired.contains_key(*mac)) {
        n.push(Change::DelFdb {
            ns: ns.clone(),
            link: link.clone(),
            mac: *mac,
        });
    }
    for (&mac, &vtep) in &desired {
        let vteps = actual.get(&mac);
        if vteps == Some(&BTreeSet::from([vtep])) {
            continue;
        }
        if vteps.is_some_and(|v| v.len() > 1) {
            n.push(Change::DelFdb {
                ns: ns.clone(),
                link: link.clone(),
                mac,
            });
        }
        n.push(Change::AddFdb {
            ns: ns.clone(),
            link: link.clone(),
            mac,
            vtep,
        });
    }
}
