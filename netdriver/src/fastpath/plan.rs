//! What a sandbox's fast path should hold (pure, no IO): the devices its program runs on
//! and the next hop of every MAC, from the network's endpoints and the sandbox's ifindexes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::types::{fmt_mac, names, NetworkDesired};

/// Where the program sends a frame for one destination MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// A device in the sandbox.
    pub ifindex: u32,
    /// A local endpoint's veth: the frame enters its peer, the container's interface.
    pub peer: bool,
}

/// One sandbox's fast path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Ifindexes of the devices the program runs on at ingress.
    pub devices: BTreeSet<u32>,
    pub hops: BTreeMap<[u8; 6], NextHop>,
}

/// The fast path of `network`, with `ifindex` naming the sandbox's devices; a device not
/// there yet gets nothing (its frames keep going through the bridge).
pub fn wanted(network: &NetworkDesired, ifindex: impl Fn(&str) -> Option<u32>) -> Wanted {
    let mut out = Wanted::default();
    let Some(vxlan) = ifindex(names::VXLAN) else {
        return out;
    };
    out.devices.insert(vxlan);
    for remote in &network.remote_endpoints {
        let hop = NextHop {
            ifindex: vxlan,
            peer: false,
        };
        out.hops.insert(remote.mac, hop);
    }
    // A MAC pushed as both (an endpoint moving between hosts) is served locally.
    for local in &network.local_endpoints {
        if let Some(veth) = ifindex(&names::veth(&local.endpoint_id)) {
            out.devices.insert(veth);
            let hop = NextHop {
                ifindex: veth,
                peer: true,
            };
            out.hops.insert(local.mac, hop);
        }
    }
    out
}

/// One write that brings a sandbox's fast path to what it should hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FastChange {
    Attach(u32),
    Detach(u32),
    PutHop([u8; 6], NextHop),
    DelHop([u8; 6]),
}

impl FastChange {
    /// `missing`, `stale` or `wrong`, as `network check` reports it.
    pub fn difference(&self, current: &BTreeMap<[u8; 6], NextHop>) -> &'static str {
        match self {
            FastChange::Attach(_) => "missing",
            FastChange::Detach(_) | FastChange::DelHop(_) => "stale",
            FastChange::PutHop(mac, _) if current.contains_key(mac) => "wrong",
            FastChange::PutHop(..) => "missing",
        }
    }
}

impl fmt::Display for FastChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FastChange::Attach(i) => write!(f, "fast path: attach to ifindex {i}"),
            FastChange::Detach(i) => write!(f, "fast path: detach from ifindex {i}"),
            FastChange::PutHop(mac, hop) => {
                let how = if hop.peer {
                    "into the peer of"
                } else {
                    "out of"
                };
                write!(
                    f,
                    "fast path: {} {how} ifindex {}",
                    fmt_mac(mac),
                    hop.ifindex
                )
            }
            FastChange::DelHop(mac) => write!(f, "fast path: forget {}", fmt_mac(mac)),
        }
    }
}

/// The writes from (`devices`, `hops`) to `wanted`: attachments first, so no frame is
/// redirected to a device whose own frames would still take the bridge back.
pub fn diff(
    devices: &BTreeSet<u32>,
    hops: &BTreeMap<[u8; 6], NextHop>,
    wanted: &Wanted,
) -> Vec<FastChange> {
    let mut out: Vec<FastChange> = wanted
        .devices
        .difference(devices)
        .map(|&i| FastChange::Attach(i))
        .collect();
    for (mac, hop) in &wanted.hops {
        if hops.get(mac) != Some(hop) {
            out.push(FastChange::PutHop(*mac, *hop));
        }
    }
    let stale_hops = hops.keys().filter(|mac| !wanted.hops.contains_key(*mac));
    out.extend(stale_hops.map(|mac| FastChange::DelHop(*mac)));
    let stale_devices = devices.difference(&wanted.devices);
    out.extend(stale_devices.map(|&i| FastChange::Detach(i)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{LocalEndpoint, RemoteEndpoint};
    use std::net::Ipv4Addr;

    fn network() -> NetworkDesired {
        let local = LocalEndpoint {
            endpoint_id: "task1".into(),
            container_pid: 10,
            ifname: "eth0".into(),
            ip: Ipv4Addr::new(10, 0, 1, 2),
            mac: [2, 0x42, 10, 0, 1, 2],
        };
        let remote = RemoteEndpoint {
            ip: Ipv4Addr::new(10, 0, 1, 3),
            mac: [2, 0x42, 10, 0, 1, 3],
            vtep: Ipv4Addr::new(192, 0, 2, 2),
        };
        NetworkDesired {
            network_id: "n1".into(),
            vni: 4096,
            subnet: "10.0.1.0/24".parse().unwrap(),
            gateway: Ipv4Addr::new(10, 0, 1, 1),
            mtu: None,
            local_endpoints: vec![local],
            remote_endpoints: vec![remote],
        }
    }

    fn indexes(name: &str) -> Option<u32> {
        match name {
            names::VXLAN => Some(3),
            n if n == names::veth("task1") => Some(7),
            _ => None,
        }
    }

    #[test]
    fn local_macs_enter_their_container_and_remote_macs_leave_by_vxlan() {
        let got = wanted(&network(), indexes);
        assert_eq!(got.devices, BTreeSet::from([3, 7]));
        let local = NextHop {
            ifindex: 7,
            peer: true,
        };
        let remote = NextHop {
            ifindex: 3,
            peer: false,
        };
        assert_eq!(got.hops.get(&[2, 0x42, 10, 0, 1, 2]), Some(&local));
        assert_eq!(got.hops.get(&[2, 0x42, 10, 0, 1, 3]), Some(&remote));
    }

    #[test]
    fn a_sandbox_without_its_vxlan_device_gets_nothing() {
        assert_eq!(wanted(&network(), |_| None), Wanted::default());
    }

    #[test]
    fn an_endpoint_whose_veth_is_not_there_yet_stays_on_the_bridge() {
        let got = wanted(&network(), |n| (n == names::VXLAN).then_some(3));
        assert_eq!(got.devices, BTreeSet::from([3]));
        assert!(!got.hops.contains_key(&[2, 0x42, 10, 0, 1, 2]));
    }

    #[test]
    fn the_diff_attaches_first_and_removes_what_is_stale() {
        let want = wanted(&network(), indexes);
        let old_hop = NextHop {
            ifindex: 5,
            peer: true,
        };
        let current = BTreeMap::from([([2, 0x42, 10, 0, 1, 9], old_hop)]);
        let changes = diff(&BTreeSet::from([3, 5]), &current, &want);
        assert_eq!(changes[0], FastChange::Attach(7));
        assert!(changes.contains(&FastChange::DelHop([2, 0x42, 10, 0, 1, 9])));
        assert_eq!(changes.last(), Some(&FastChange::Detach(5)));
        assert!(diff(&want.devices, &want.hops, &want).is_empty());
    }
}
