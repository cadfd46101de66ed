//! The kernel operations the driver needs, as a trait: [`crate::KernelNetlink`]
//! talks to the kernel, [`crate::fake::FakeNetlink`] records calls in memory.
//!
//! Listing functions return raw observations; every other function makes
//! exactly one kernel change. Links are named, not indexed: the
//! implementation resolves names inside the given namespace.

use std::fmt;
use std::future::Future;
use std::net::Ipv4Addr;

use crate::error::Error;

/// A network namespace the driver works in.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ns {
    /// The namespace the node process runs in (the underlay).
    Node,
    /// A sandbox bind-mounted under the netns directory, by name.
    Sandbox(String),
    /// A container's namespace, by the PID of a process in it.
    Container(u32),
}

impl fmt::Display for Ns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ns::Node => write!(f, "node netns"),
            Ns::Sandbox(name) => write!(f, "sandbox {name}"),
            Ns::Container(pid) => write!(f, "container netns of pid {pid}"),
        }
    }
}

/// A link as listed by the kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `IFLA_INFO_KIND`: "bridge", "vxlan", "veth"…; `None` for e.g. `lo`.
    pub kind: Option<String>,
    pub up: bool,
    pub mtu: u32,
    pub mac: Option<[u8; 6]>,
    /// Index of the bridge it is enslaved to.
    pub master: Option<u32>,
    pub vxlan: Option<VxlanAttrs>,
}

/// VXLAN attributes of an existing link.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VxlanAttrs {
    pub vni: u32,
    pub port: u16,
    pub local: Option<Ipv4Addr>,
    pub learning: bool,
    pub proxy: bool,
}

/// A VXLAN device to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VxlanSpec {
    pub name: String,
    pub vni: u32,
    pub port: u16,
    pub local: Ipv4Addr,
    /// Index of the underlay device in the namespace it is created in.
    pub underlay_index: u32,
    pub mtu: u32,
}

/// A veth pair to create: `name` and `peer`, both with `mtu`; the peer gets `peer_mac`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VethSpec {
    pub name: String,
    pub peer: String,
    pub mtu: u32,
    pub peer_mac: [u8; 6],
}

impl VxlanSpec {
    /// Why `link` does not match this spec, `None` if it does
    /// (e.g. `"vni: 4097 vs 4098"`). The name is not compared.
    pub fn mismatch(&self, link: &Link) -> Option<String> {
        let Some(attrs) = &link.vxlan else {
            return Some(format!("kind: {:?} vs vxlan", link.kind));
        };
        let diffs: Vec<String> = [
            diff("vni", attrs.vni, self.vni),
            diff("port", attrs.port, self.port),
            diff("local", fmt_opt(attrs.local), self.local.to_string()),
            diff("learning", attrs.learning, false),
            diff("proxy", attrs.proxy, true),
            diff("mtu", link.mtu, self.mtu),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!diffs.is_empty()).then(|| diffs.join(", "))
    }
}

/// `"what: actual vs desired"` when they differ.
pub(crate) fn diff<T: PartialEq + fmt::Display>(
    what: &str,
    actual: T,
    desired: T,
) -> Option<String> {
    (actual != desired).then(|| format!("{what}: {actual} vs {desired}"))
}

fn fmt_opt<T: fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "none".to_string(), |v| v.to_string())
}

/// An IPv4 address on a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub link_index: u32,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
}

/// An IPv4 route of the main table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub dst: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    pub oif: Option<u32>,
}

/// A bridge-family forwarding entry (`bridge fdb show`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdbEntry {
    pub link_index: u32,
    pub mac: [u8; 6],
    /// The remote VTEP, for VXLAN entries.
    pub dst: Option<Ipv4Addr>,
    /// Learned by the bridge from traffic (not static, not the port's own address): such
    /// an entry for a gone endpoint would stay until it ages out.
    pub learned: bool,
}

/// An IPv4 neighbour entry (`ip neigh show`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neighbour {
    pub link_index: u32,
    pub ip: Ipv4Addr,
    pub mac: Option<[u8; 6]>,
    pub permanent: bool,
}

/// Result of a kernel operation.
pub type NlResult<T> = Result<T, Error>;

/// Kernel operations. Adds create or replace; deletes of missing objects succeed.
pub trait Netlink: Send + Sync {
    /// Names of usable sandboxes (bind-mounted namespaces) starting with `prefix`.
    fn list_sandboxes(&self, prefix: &str) -> impl Future<Output = NlResult<Vec<String>>> + Send;
    fn list_links(&self, ns: &Ns) -> impl Future<Output = NlResult<Vec<Link>>> + Send;
    fn list_addresses(&self, ns: &Ns) -> impl Future<Output = NlResult<Vec<Address>>> + Send;
    fn list_routes(&self, ns: &Ns) -> impl Future<Output = NlResult<Vec<Route>>> + Send;
    fn list_fdb(&self, ns: &Ns) -> impl Future<Output = NlResult<Vec<FdbEntry>>> + Send;
    fn list_neighbours(&self, ns: &Ns) -> impl Future<Output = NlResult<Vec<Neighbour>>> + Send;

    /// Creates the sandbox if it is missing (or repairs a stale file).
    fn ensure_sandbox(&self, name: &str) -> impl Future<Output = NlResult<()>> + Send;
    fn delete_sandbox(&self, name: &str) -> impl Future<Output = NlResult<()>> + Send;
    fn create_bridge(
        &self,
        ns: &Ns,
        name: &str,
        mtu: u32,
    ) -> impl Future<Output = NlResult<()>> + Send;
    fn create_vxlan(&self, ns: &Ns, spec: &VxlanSpec) -> impl Future<Output = NlResult<()>> + Send;
    fn create_veth(&self, ns: &Ns, spec: &VethSpec) -> impl Future<Output = NlResult<()>> + Send;
    fn delete_link(&self, ns: &Ns, name: &str) -> impl Future<Output = NlResult<()>> + Send;
    fn move_link_to_netns(
        &self,
        ns: &Ns,
        name: &str,
        target: &Ns,
    ) -> impl Future<Output = NlResult<()>> + Send;
    fn rename_link(
        &self,
        ns: &Ns,
        name: &str,
        new_name: &str,
    ) -> impl Future<Output = NlResult<()>> + Send;
    fn set_link_master(
        &self,
        ns: &Ns,
        name: &str,
        master: &str,
    ) -> impl Future<Output = NlResult<()>> + Send;
    fn set_link_mtu(
        &self,
        ns: &Ns,
        name: &str,
        mtu: u32,
    ) -> impl Future<Output = NlResult<()>> + Send;
    fn set_link_up(&self, ns: &Ns, name: &str) -> impl Future<Output = NlResult<()>> + Send;
    fn add_address(
        &self,
        ns: &Ns,
        link: &str,
        ip: Ipv4Addr,
        prefix_len: u8,
    ) -> impl Future<Output = NlResult<()>> + Send;
    fn del_address(
        &self,
        ns: &Ns,
        link: &str,
        ip: Ipv4Addr,
        prefix_len: u8,
    ) -> impl Future<Output = NlResult<()>> + Send;
    fn add_default_route(
        &self,
        ns: &Ns,
        link: &str,
        gateway: Ipv4Addr,
    ) -> impl Future<Output = NlResult<()>> + Send;
    /// Permanent `self` FDB entry `mac` → `vtep`, replacing any other VTEP.
    fn add_fdb(
        &self,
        ns: &Ns,
        link: &str,
        mac: [u8; 6],
        vtep: Ipv4Addr,
    ) -> impl Future<Output = NlResult<()>> + Send;
    /// Removes the whole entry of `mac` (every VTEP).
    fn del_fdb(
        &self,
        ns: &Ns,
        link: &str,
        mac: [u8; 6],
    ) -> impl Future<Output = NlResult<()>> + Send;
    /// Permanent neighbour `ip` → `mac`, replacing any other MAC.
    fn add_neigh(
        &self,
        ns: &Ns,
        link: &str,
        ip: Ipv4Addr,
        mac: [u8; 6],
    ) -> impl Future<Output = NlResult<()>> + Send;
    fn del_neigh(
        &self,
        ns: &Ns,
        link: &str,
        ip: Ipv4Addr,
    ) -> impl Future<Output = NlResult<()>> + Send;

    /// Drops cached connections (they pin their namespaces). Called after
    /// every reconcile, so a gone container's namespace can be freed.
    fn release_namespaces(&self);
}
