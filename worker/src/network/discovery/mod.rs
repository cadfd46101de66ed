//! Service discovery on this node: the embedded DNS and the VIP rules, both driven by the
//! directory the dispatcher pushes with every session message (`SessionMessage.discovery`).
//!
//! - `names`: pure resolution of a name for an asker (its address on a network).
//! - `dns`: one hickory server per sandbox, on port 53 of the sandbox namespace, so on the
//!   network's gateway address. Containers get that address as their only nameserver.
//! - `balancer`: VIPs balanced by the BPF socket load balancer (entries per task
//!   namespace in its maps), or, where it cannot load, by `vip`.
//! - `vip`: an nftables table in each running task container's namespace that DNATs new
//!   connections to a VIP over the service's running tasks.
//!
//! The loop reconciles on every session message and every second: a listener per sandbox
//! of this node (following a sandbox that was recreated), and each running container's
//! VIPs: the maps diffed against the kernel every round, or an nft table whenever its
//! rules change (and every `FULL_RESYNC` rounds regardless, to repair tables changed
//! behind our back). Errors are logged and retried next round.

mod balancer;
mod dns;
mod error;
mod names;
mod vip;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use swarmr_netdriver::{names as kernel_names, NETNS_DIR};
use swarmr_proto::SessionMessage;
use tokio::sync::{watch, Notify};
use tracing::{info, warn, Instrument};

pub use balancer::{VipBalancer, VipMode};
pub use error::DiscoveryError;
pub use names::{resolve, Answer};

use swarmr_netdriver::names::node_short_id as short_id;

/// How often listeners and VIP tables are checked between session messages: a sandbox
/// made by the overlay loop gets its DNS server within this.
const ROUND: Duration = Duration::from_secs(1);
/// Every this many rounds, every nft VIP table is rewritten even if unchanged.
const FULL_RESYNC: u32 = 30;

/// The upstream resolvers in a resolv.conf text (`nameserver` lines, port 53).
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then_some(())?;
            let ip: std::net::IpAddr = words.next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .collect()
}

/// The node's own resolvers, for names that are not the cluster's.
pub fn host_resolvers() -> Vec<SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .map(|text| parse_resolv_conf(&text))
        .unwrap_or_default()
}

/// The nameserver each task of `message` should be created with: the gateway of its first
/// network, where that network's sandbox serves DNS. Tasks without a network get none
/// (they keep Docker's default resolv.conf).
pub fn nameservers(message: &SessionMessage) -> HashMap<String, String> {
    let gateways: HashMap<&str, &str> = message
        .networks
        .iter()
        .filter_map(|a| a.network.as_ref())
        .map(|n| (n.id.as_str(), n.gateway.as_str()))
        .collect();
    message
        .tasks
        .iter()
        .filter_map(|task| {
            let first = task.networks.first()?;
            let gateway = gateways.get(first.network_id.as_str())?;
            Some((task.id.clone(), gateway.to_string()))
        })
        .collect()
}

/// Runs until shutdown; listeners stop with it. `sandboxes_changed` wakes it when the
/// overlay made or removed a sandbox, so a new sandbox serves DNS at once.
pub async fn run_discovery(
    node_id: String,
    mut sessions: watch::Receiver<Option<SessionMessage>>,
    upstreams: Vec<SocketAddr>,
    sandboxes_changed: Arc<Notify>,
    vips: Arc<VipBalancer>,
    mut shutdown: watch::Receiver<bool>,
) {
    let span = tracing::info_span!("discovery", node.id = %node_id);
    async move {
        info!(upstreams = ?upstreams, "service discovery started");
        let (directory_tx, directory) = watch::channel(Arc::new(Vec::new()));
        let mut state = State {
            short_id: short_id(&node_id),
            directory,
            upstreams: Arc::new(upstreams),
            listeners: BTreeMap::new(),
        };
        let mut round = 0u32;
        loop {
            let message = sessions.borrow_and_update().clone();
            if let Some(message) = message {
                directory_tx.send_replace(Arc::new(message.discovery.clone()));
                state.reconcile_listeners(&message).await;
                vips.reconcile(&message, round.is_multiple_of(FULL_RESYNC))
                    .await;
            }
            round = round.wrapping_add(1);
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                changed = sessions.changed() => if changed.is_err() { return },
                () = sandboxes_changed.notified() => {}
                _ = tokio::time::sleep(ROUND) => {}
            }
        }
    }
    .instrument(span)
    .await
}

struct State {
    short_id: String,
    directory: dns::Directory,
    upstreams: Arc<Vec<SocketAddr>>,
    /// By sandbox name.
    listeners: BTreeMap<String, dns::Listener>,
}

impl State {
    /// A listener in every sandbox of this node's networks that exists, none elsewhere.
    async fn reconcile_listeners(&mut self, message: &SessionMessage) {
        let mut wanted: BTreeMap<String, (String, PathBuf)> = BTreeMap::new();
        for network in message.networks.iter().filter_map(|a| a.network.as_ref()) {
            let name = kernel_names::sandbox(&self.short_id, network.vni);
            let path = PathBuf::from(NETNS_DIR).join(&name);
            wanted.insert(name, (network.id.clone(), path));
        }
        self.listeners.retain(|name, listener| {
            let current = wanted
                .get(name)
                .and_then(|(_, path)| dns::netns_inode(path));
            current == Some(listener.netns_inode)
        });
        for (name, (network_id, path)) in wanted {
            if self.listeners.contains_key(&name) || dns::netns_inode(&path).is_none() {
                continue;
            }
            let handler = dns::Handler::new(
                network_id.clone(),
                self.directory.clone(),
                self.upstreams.clone(),
            );
            match dns::serve_in(&path, handler).await {
                Ok(listener) => {
                    info!(network.id = %network_id, sandbox = %name, "DNS server listening");
                    self.listeners.insert(name, listener);
                }
                Err(e) => {
                    warn!(network.id = %network_id, error = %report(&e), "DNS server not started; retrying")
                }
            }
        }
    }
}

use crate::error::chain as report;

#[cfg(test)]
mod tests {
    use super::*;
    use swarmr_proto::{Network, NetworkAssignment, NetworkAttachment, Task};

    #[test]
    fn resolv_conf_nameservers_become_port_53_upstreams() {
        let text =
            "# comment\nsearch example\nnameserver 192.0.2.53\nnameserver  ::1\noptions ndots:0\n";
        let got = parse_resolv_conf(text);
        assert_eq!(
            got,
            vec![
                "192.0.2.53:53".parse().expect("addr"),
                "[::1]:53".parse().expect("addr")
            ]
        );
    }

    #[test]
    fn tasks_get_the_gateway_of_their_first_network() {
        let network = |id: &str, gw: &str| NetworkAssignment {
            network: Some(Network {
                id: id.into(),
                gateway: gw.into(),
                ..Default::default()
            }),
            peers: vec![],
        };
        let task = |id: &str, nets: &[&str]| Task {
            id: id.into(),
            networks: nets
                .iter()
                .map(|n| NetworkAttachment {
                    network_id: (*n).into(),
                    addr: String::new(),
                })
                .collect(),
            ..Default::default()
        };
        let message = SessionMessage {
            networks: vec![network("front", "10.0.0.1"), network("back", "10.0.1.1")],
            tasks: vec![task("a", &["back", "front"]), task("b", &[])],
            ..Default::default()
        };
        let got = nameservers(&message);
        assert_eq!(got.get("a").map(String::as_str), Some("10.0.1.1"));
        assert!(!got.contains_key("b"), "no network: Docker's default");
    }
}
