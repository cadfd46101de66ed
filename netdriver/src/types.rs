//! What the worker asks for: the desired overlay state of one host, plus
//! the naming rules that turn it into kernel object names.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// The desired overlay state of this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostDesired {
    /// Short node id (e.g. the first 12 chars of the node id), used in sandbox names.
    pub node_short_id: String,
    /// This node's advertise address: the VXLAN `local` address.
    pub underlay_addr: Ipv4Addr,
    /// Networks with at least one local endpoint.
    pub networks: Vec<NetworkDesired>,
    /// The egress bridge and its endpoints; `None` leaves the node namespace alone.
    pub egress: Option<EgressDesired>,
}

/// The egress bridge in the node namespace and the containers wired to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EgressDesired {
    pub bridge: String,
    /// The bridge's address, every endpoint's default gateway.
    pub gateway: Ipv4Addr,
    pub prefix_len: u8,
    pub endpoints: Vec<EgressEndpoint>,
}

/// A container's interface on the egress bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EgressEndpoint {
    /// The task id.
    pub endpoint_id: String,
    pub container_pid: u32,
    /// After the container's overlay interfaces: `eth1` behind one overlay.
    pub ifname: String,
    pub ip: Ipv4Addr,
}

/// One overlay network as seen from this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkDesired {
    /// For logs and tracing spans.
    pub network_id: String,
    pub vni: u32,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// `None` means underlay MTU - 50.
    pub mtu: Option<u32>,
    pub local_endpoints: Vec<LocalEndpoint>,
    pub remote_endpoints: Vec<RemoteEndpoint>,
}

/// A container on this host attached to the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalEndpoint {
    /// The task id.
    pub endpoint_id: String,
    pub container_pid: u32,
    /// Interface name inside the container: `eth0` for the first network.
    pub ifname: String,
    pub ip: Ipv4Addr,
    pub mac: [u8; 6],
}

/// A container on another host attached to the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteEndpoint {
    pub ip: Ipv4Addr,
    pub mac: [u8; 6],
    /// The underlay address of its host.
    pub vtep: Ipv4Addr,
}

/// Docker's rule: `02:42` followed by the four IPv4 bytes.
pub fn mac_for_ip(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0x42, a, b, c, d]
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn fmt_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// An IPv4 address with a prefix length, e.g. `10.0.1.0/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix_len: u8,
}

/// A malformed `a.b.c.d/n` string or a prefix length above 32.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid IPv4 network {0:?}")]
pub struct Ipv4NetParseError(pub String);

impl Ipv4Net {
    /// Fails when `prefix_len > 32`.
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Result<Self, Ipv4NetParseError> {
        if prefix_len > 32 {
            return Err(Ipv4NetParseError(format!("{addr}/{prefix_len}")));
        }
        Ok(Self { addr, prefix_len })
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0);
        Ipv4Addr::from(u32::from(self.addr) & mask)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        Self { addr: ip, ..*self }.network() == self.network()
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for Ipv4Net {
    type Err = Ipv4NetParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || Ipv4NetParseError(s.to_string());
        let (addr, len) = s.split_once('/').ok_or_else(bad)?;
        let addr = addr.parse().map_err(|_| bad())?;
        let len = len.parse().map_err(|_| bad())?;
        Self::new(addr, len).map_err(|_| bad())
    }
}

/// Kernel object names. Interface names are at most 15 bytes.
pub mod names {
    /// Bridge inside every sandbox.
    pub const BRIDGE: &str = "br0";
    /// VXLAN device inside every sandbox.
    pub const VXLAN: &str = "vxlan0";
    /// Prefix of the sandbox side of an endpoint's veth pair.
    pub const VETH_PREFIX: &str = "ve-";
    /// Prefix of the container side of a veth pair before it is moved and renamed.
    pub const PEER_PREFIX: &str = "vp-";
    /// Prefix of the node side of an egress veth pair.
    pub const EGRESS_VETH_PREFIX: &str = "vg-";
    /// Prefix of an egress peer before it is moved into its container.
    pub const EGRESS_PEER_PREFIX: &str = "vq-";

    /// Node side of a container's egress veth: `vg-<12 alphanumerics of the task id>`.
    pub fn egress_veth(endpoint_id: &str) -> String {
        let id: String = endpoint_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(12)
            .collect();
        format!("{EGRESS_VETH_PREFIX}{id}")
    }

    /// Temporary name of an egress peer in the node namespace.
    pub fn egress_peer(endpoint_id: &str) -> String {
        let hash = fnv1a(&[endpoint_id.as_bytes(), b"egress"]);
        format!("{EGRESS_PEER_PREFIX}{hash:08x}")
    }

    /// The part of a node id that names its sandboxes (and so the node, in the kernel).
    pub fn node_short_id(node_id: &str) -> String {
        node_id.chars().take(12).collect()
    }

    /// `swr-<node_short_id>-`: every sandbox of this node starts with it.
    pub fn sandbox_prefix(node_short_id: &str) -> String {
        format!("swr-{node_short_id}-")
    }

    /// `swr-<node_short_id>-<vni>`.
    pub fn sandbox(node_short_id: &str, vni: u32) -> String {
        format!("swr-{node_short_id}-{vni}")
    }

    /// The VNI of a sandbox name of this node, `None` for anything else.
    pub fn sandbox_vni(node_short_id: &str, name: &str) -> Option<u32> {
        let rest = name.strip_prefix(&sandbox_prefix(node_short_id))?;
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest.parse().ok()
    }

    /// Name of the VXLAN device while it is still in the node namespace,
    /// unique per node and VNI (several nodes may share one namespace).
    pub fn vxlan_temp(node_short_id: &str, vni: u32) -> String {
        format!(
            "swv{:08x}",
            fnv1a(&[node_short_id.as_bytes(), &vni.to_be_bytes()])
        )
    }

    /// `ve-` + up to 12 characters of the endpoint id.
    pub fn veth(endpoint_id: &str) -> String {
        let id: String = endpoint_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(12)
            .collect();
        format!("{VETH_PREFIX}{id}")
    }

    /// Temporary name of the container end, unique per endpoint and VNI.
    pub fn veth_peer(endpoint_id: &str, vni: u32) -> String {
        let hash = fnv1a(&[endpoint_id.as_bytes(), &vni.to_be_bytes()]);
        format!("{PEER_PREFIX}{hash:08x}")
    }

    fn fnv1a(parts: &[&[u8]]) -> u32 {
        let mut hash: u32 = 0x811c_9dc5;
        for byte in parts.iter().flat_map(|p| p.iter()) {
            hash ^= u32::from(*byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_follows_docker_rule() {
        let mac = mac_for_ip(Ipv4Addr::new(10, 0, 1, 3));
        assert_eq!(fmt_mac(&mac), "02:42:0a:00:01:03");
    }

    #[test]
    fn ipv4net_parses_and_masks() {
        let net: Ipv4Net = "10.0.1.7/16".parse().unwrap();
        assert_eq!(net.prefix_len(), 16);
        assert_eq!(net.network(), Ipv4Addr::new(10, 0, 0, 0));
        assert!(net.contains(Ipv4Addr::new(10, 0, 200, 1)));
        assert!(!net.contains(Ipv4Addr::new(10, 1, 0, 1)));
        assert!("10.0.0.0/33".parse::<Ipv4Net>().is_err());
        assert!("10.0.0.0".parse::<Ipv4Net>().is_err());
        let all: Ipv4Net = "1.2.3.4/0".parse().unwrap();
        assert_eq!(all.network(), Ipv4Addr::UNSPECIFIED);
    }

    #[test]
    fn names_fit_and_stay_within_node() {
        assert_eq!(
            names::sandbox("abcdef012345", 4097),
            "swr-abcdef012345-4097"
        );
        assert_eq!(
            names::sandbox_vni("abcdef012345", "swr-abcdef012345-4097"),
            Some(4097)
        );
        assert_eq!(names::sandbox_vni("abc", "swr-abc-def-4097"), None);
        assert_eq!(names::sandbox_vni("abc", "swr-abcd-4097"), None);
        assert!(names::vxlan_temp("abcdef012345", 4097).len() <= 15);
        assert_ne!(names::vxlan_temp("a", 1), names::vxlan_temp("b", 1));
        assert_eq!(names::veth("t-0123456789abcdef"), "ve-t0123456789a");
        assert!(names::veth_peer("t-0123456789abcdef", 4096).len() <= 15);
    }
}
