//! The kernel changes `plan` decides on: one variant per [`Netlink`] call.
//!
//! [`Netlink`]: crate::Netlink

use std::fmt;
use std::net::Ipv4Addr;

use crate::netlink::{Ns, VethSpec, VxlanSpec};
use crate::types::{fmt_mac, LocalEndpoint, NetworkDesired};

/// One kernel change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    EnsureSandbox {
        name: String,
    },
    DeleteSandbox {
        name: String,
    },
    CreateBridge {
        ns: Ns,
        name: String,
        mtu: u32,
    },
    CreateVxlan {
        ns: Ns,
        spec: VxlanSpec,
    },
    CreateVeth {
        ns: Ns,
        spec: VethSpec,
    },
    DeleteLink {
        ns: Ns,
        name: String,
    },
    MoveLinkToNetns {
        ns: Ns,
        name: String,
        target: Ns,
    },
    RenameLink {
        ns: Ns,
        name: String,
        new_name: String,
    },
    SetLinkMaster {
        ns: Ns,
        name: String,
        master: String,
    },
    SetLinkMtu {
        ns: Ns,
        name: String,
        mtu: u32,
    },
    SetLinkUp {
        ns: Ns,
        name: String,
    },
    AddAddress {
        ns: Ns,
        link: String,
        ip: Ipv4Addr,
        prefix_len: u8,
    },
    DelAddress {
        ns: Ns,
        link: String,
        ip: Ipv4Addr,
        prefix_len: u8,
    },
    AddDefaultRoute {
        ns: Ns,
        link: String,
        gateway: Ipv4Addr,
    },
    AddFdb {
        ns: Ns,
        link: String,
        mac: [u8; 6],
        vtep: Ipv4Addr,
    },
    DelFdb {
        ns: Ns,
        link: String,
        mac: [u8; 6],
    },
    AddNeigh {
        ns: Ns,
        link: String,
        ip: Ipv4Addr,
        mac: [u8; 6],
    },
    DelNeigh {
        ns: Ns,
        link: String,
        ip: Ipv4Addr,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Change::*;
        match self {
            EnsureSandbox { name } => write!(f, "ensure_sandbox {name}"),
            DeleteSandbox { name } => write!(f, "delete_sandbox {name}"),
            CreateBridge { ns, name, mtu } => write!(f, "create_bridge {name} mtu {mtu} in {ns}"),
            CreateVxlan { ns, spec } => write!(
                f,
                "create_vxlan {} vni {} local {} port {} mtu {} in {ns}",
                spec.name, spec.vni, spec.local, spec.port, spec.mtu
            ),
            CreateVeth { ns, spec } => write!(
                f,
                "create_veth {}/{} mtu {} peer mac {} in {ns}",
                spec.name,
                spec.peer,
                spec.mtu,
                fmt_mac(&spec.peer_mac)
            ),
            DeleteLink { ns, name } => write!(f, "delete_link {name} in {ns}"),
            MoveLinkToNetns { ns, name, target } => {
                write!(f, "move_link_to_netns {name} from {ns} to {target}")
            }
            RenameLink { ns, name, new_name } => {
                write!(f, "rename_link {name} to {new_name} in {ns}")
            }
            SetLinkMaster { ns, name, master } => {
                write!(f, "set_link_master {name} master {master} in {ns}")
            }
            SetLinkMtu { ns, name, mtu } => write!(f, "set_link_mtu {name} {mtu} in {ns}"),
            SetLinkUp { ns, name } => write!(f, "set_link_up {name} in {ns}"),
            _ => fmt_entry(self, f),
        }
    }
}

/// Display of the address, route, FDB and neighbour changes.
fn fmt_entry(change: &Change, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    use Change::*;
    match change {
        AddAddress {
            ns,
            link,
            ip,
            prefix_len,
        } => {
            write!(f, "add_address {ip}/{prefix_len} on {link} in {ns}")
        }
        DelAddress {
            ns,
            link,
            ip,
            prefix_len,
        } => {
            write!(f, "del_address {ip}/{prefix_len} on {link} in {ns}")
        }
        AddDefaultRoute { ns, link, gateway } => {
            write!(f, "add_default_route via {gateway} on {link} in {ns}")
        }
        AddFdb {
            ns,
            link,
            mac,
            vtep,
        } => {
            write!(f, "add_fdb {} dst {vtep} on {link} in {ns}", fmt_mac(mac))
        }
        DelFdb { ns, link, mac } => write!(f, "del_fdb {} on {link} in {ns}", fmt_mac(mac)),
        AddNeigh { ns, link, ip, mac } => {
            write!(
                f,
                "add_neigh {ip} lladdr {} on {link} in {ns}",
                fmt_mac(mac)
            )
        }
        DelNeigh { ns, link, ip } => write!(f, "del_neigh {ip} on {link} in {ns}"),
        other => write!(f, "{other:?}"),
    }
}

/// What a change is for: a failure skips the rest of its scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Node-wide clean-up (stale sandboxes).
    Node,
    /// A network's sandbox, bridge, VXLAN device and peer entries.
    Network { network_id: String, vni: u32 },
    /// One local endpoint of a network.
    Endpoint {
        network_id: String,
        vni: u32,
        endpoint_id: String,
    },
}

impl Scope {
    pub fn network(net: &NetworkDesired) -> Self {
        Scope::Network {
            network_id: net.network_id.clone(),
            vni: net.vni,
        }
    }

    pub fn endpoint(net: &NetworkDesired, ep: &LocalEndpoint) -> Self {
        Scope::Endpoint {
            network_id: net.network_id.clone(),
            vni: net.vni,
            endpoint_id: ep.endpoint_id.clone(),
        }
    }

    /// The network id of a network or endpoint scope.
    pub fn network_id(&self) -> Option<&str> {
        match self {
            Scope::Node => None,
            Scope::Network { network_id, .. } | Scope::Endpoint { network_id, .. } => {
                Some(network_id)
            }
        }
    }

    /// The VNI of a network or endpoint scope.
    pub fn vni(&self) -> Option<u32> {
        match self {
            Scope::Node => None,
            Scope::Network { vni, .. } | Scope::Endpoint { vni, .. } => Some(*vni),
        }
    }
}

/// How a change differs the kernel from the desired state, for `network check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Difference {
    /// Something desired is not there.
    Missing,
    /// Something is there that should not be.
    Stale,
    /// Something is there but not as desired.
    Wrong,
}

impl Change {
    pub fn difference(&self) -> Difference {
        use Change::*;
        match self {
            EnsureSandbox { .. }
            | CreateBridge { .. }
            | CreateVxlan { .. }
            | CreateVeth { .. }
            | AddAddress { .. }
            | AddDefaultRoute { .. }
            | AddFdb { .. }
            | AddNeigh { .. } => Difference::Missing,
            DeleteSandbox { .. }
            | DeleteLink { .. }
            | DelAddress { .. }
            | DelFdb { .. }
            | DelNeigh { .. } => Difference::Stale,
            MoveLinkToNetns { .. }
            | RenameLink { .. }
            | SetLinkMaster { .. }
            | SetLinkMtu { .. }
            | SetLinkUp { .. } => Difference::Wrong,
        }
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Difference::Missing => "missing",
            Difference::Stale => "stale",
            Difference::Wrong => "wrong",
        })
    }
}

/// A change with its scope and, for a rebuild, the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub scope: Scope,
    pub change: Change,
    /// Why an existing object is rebuilt, e.g. `"vni: 4097 vs 4098"`.
    pub reason: Option<String>,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            Some(reason) => write!(f, "{} ({reason})", self.change),
            None => write!(f, "{}", self.change),
        }
    }
}
