//! swarmr's overlay data plane: VXLAN networks wired through netlink.
//!
//! # Layout, on each host, per network
//!
//! ```text
//!  node netns (underlay, e.g. eth0 192.0.2.1)      sandbox netns swr-<node>-<vni>
//!  ┌──────────────────────────────┐               ┌───────────────────────────────────┐
//!  │ UDP 4789 socket of vxlan0 ◀──┼── VXLAN ──────┼─ vxlan0 (vni, local 192.0.2.1,    │
//!  │                              │               │          nolearning, proxy)       │
//!  └──────────────────────────────┘               │   │ master                        │
//!                                                 │  br0 (gateway 10.0.1.1/24)        │
//!  container netns (pid)                          │   │ master                        │
//!  ┌──────────────────────────────┐               │  ve-<task> ◀─ veth ─┐             │
//!  │ eth0 10.0.1.3/24 02:42:0a:…  │◀──────────────┼─────────────────────┘             │
//!  │ default via 10.0.1.1         │               └───────────────────────────────────┘
//!  └──────────────────────────────┘
//! ```
//!
//! - A sandbox namespace `swr-<node_short_id>-<vni>` per network, bind-mounted
//!   under `/run/netns` as `ip netns add` does: operators can inspect it, and it
//!   outlives the node process. Only sandboxes with this node's prefix are touched.
//! - `vxlan0` is created in the node namespace and then moved into the sandbox:
//!   a VXLAN device keeps the namespace it was created in for its UDP socket, so
//!   its traffic leaves through the underlay while its L2 side sits on `br0`.
//!   While still in the node namespace it has a temporary name unique per node and
//!   VNI, since several nodes may share one namespace in tests.
//! - Learning is off: the manager pushes every remote endpoint (IP, MAC, VTEP), so
//!   the kernel never has to guess from traffic, and a gone endpoint's entries
//!   are removed instead of aging out. ARP proxy is on: `vxlan0` answers ARP for
//!   remote IPs from its neighbour table, so no broadcast crosses the underlay.
//! - Per remote endpoint: a permanent neighbour entry (IP → MAC) and a permanent
//!   FDB entry (MAC → VTEP) on `vxlan0`, both create-or-replace. Neighbours go in
//!   before the FDB, both before any container gets its routes, so the first
//!   packet finds its way.
//! - Per local endpoint: a veth pair created in the sandbox (`ve-<task>` on `br0`),
//!   its peer moved into the container namespace and renamed to `eth0`/`eth1`…,
//!   with the task's IP and MAC and MTU = underlay MTU − 50; `eth0` gets the
//!   default route via the gateway.
//!
//! # Flow
//!
//! [`Driver::reconcile`] is the only path to the kernel: [`observe()`] reads the
//! kernel, [`plan()`] diffs (pure, no IO) into ordered [`Step`]s, and [`apply()`]
//! makes one [`Netlink`] call per step. Existing objects are rebuilt only when a
//! `*_mismatch` reports a difference; adds replace, deletes of missing objects
//! succeed, so running it twice changes nothing. A failure skips the rest of its
//! endpoint or network and is reported per endpoint, so the worker can fail just
//! those tasks.
//!
//! # Testing
//!
//! `cargo test -p swarmr-netdriver` runs the unit tests against
//! [`fake::FakeNetlink`] without root. As root,
//! `cargo test -p swarmr-netdriver -- --include-ignored` also runs
//! `tests/overlay.rs`: two hosts as namespaces on an underlay bridge, containers
//! as `unshare --net` processes, TCP across the overlay (needs `ip`, `bridge`,
//! `unshare`, `nsenter`).
//!
//! # Modules
//!
//! - `types`: what the worker asks for, and the naming rules.
//! - `netlink`: the [`Netlink`] trait and the observation types.
//! - `observe`, `plan`, `change`, `apply`, `driver`: the reconcile loop.
//! - `kernel`: [`KernelNetlink`], namespaces and rtnetlink.
//! - `fake`: [`fake::FakeNetlink`], an in-memory kernel for tests without root.
//! - `socklb`: VIPs balanced at the socket by cgroup BPF programs (`bpf/socklb.c`).
//! - `fastpath`: unicast frames forwarded past each sandbox's bridge by a tc BPF
//!   program (`bpf/l2fwd.c`); the bridge stays for broadcasts and as the fallback.

pub mod apply;
pub mod change;
mod driver;
pub mod error;
pub mod fake;
pub mod fastpath;
mod kernel;
pub mod metrics;
pub mod netlink;
pub mod observe;
pub mod plan;
pub mod socklb;
mod types;

#[cfg(test)]
mod tests;

pub use apply::apply;
pub use change::{Change, Difference, Scope, Step};
pub use driver::{Driver, ReconcileReport};
pub use error::{error_chain, Cause, Error};
pub use fastpath::FastPathDifference;
pub use kernel::{KernelNetlink, NETNS_DIR};
pub use netlink::{Netlink, Ns};
pub use observe::observe;
pub use plan::plan;
pub use types::{
    fmt_mac, mac_for_ip, names, EgressDesired, EgressEndpoint, HostDesired, Ipv4Net,
    Ipv4NetParseError, LocalEndpoint, NetworkDesired, RemoteEndpoint,
};
