//! Published ports and egress in the node's own namespace, from the session message: the
//! nftables table (`rules`), the mesh's return routes (`routes`) and the two sysctls the
//! mesh needs. See `mesh` for the path a published connection takes.
//!
//! The loop reconciles on every session message and every few seconds, rewriting what
//! changed and everything every `FULL_RESYNC` rounds (repairing what changed behind our
//! back); a restarted node loads it all at once. Errors are logged and retried.

mod routes;
mod rules;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use swarmr_netdriver::mac_for_ip;
use swarmr_proto::convert::addr_ip;
use swarmr_proto::{PublishMode, SessionMessage, Task, TaskState};
use tokio::sync::watch;
use tracing::{info, warn, Instrument};

pub use routes::{MeshRoute, RULE_PRIORITY};

pub use rules::{HostRules, PublishedPort, TABLE};

use crate::network::mesh::{self, HostNet, INGRESS_IFNAME};

const ROUND: Duration = Duration::from_secs(2);
const FULL_RESYNC: u32 = 15;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("could not load the node's nftables table: {detail}")]
    LoadRules { detail: String },
    #[error("could not set the mesh's return routes: {detail}")]
    Routes { detail: String },
    #[error("could not set {path}: {source}")]
    Sysctl {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn is_serving(task: &Task) -> bool {
    task.desired_state() == TaskState::Running
        && task
            .status
            .as_ref()
            .is_some_and(|s| s.state() == TaskState::Running)
}

/// What the node namespace should hold: the table and the return routes.
pub fn desired(message: &SessionMessage, host: &HostNet) -> (HostRules, Vec<MeshRoute>) {
    let mut rules = HostRules::default();
    if !host.enabled {
        return (rules, Vec::new());
    }
    let egress = mesh::egress_addrs(message, host);
    if !egress.is_empty() {
        rules.egress_subnet = Some(host.egress_subnet);
    }
    let Some(ingress) = &message.ingress else {
        return (rules, Vec::new());
    };
    let me = message.node.as_ref().map_or("", |n| n.id.as_str());
    let mut routes = Vec::new();
    for node in ingress.nodes.iter().filter(|n| n.node_id != me) {
        if let Some(ip) = addr_ip(&node.ingress_addr) {
            rules.mesh_marks.push((mac_for_ip(ip), u32::from(ip)));
            routes.push(MeshRoute {
                mark: u32::from(ip),
                via: ip,
            });
        }
    }
    let local_serving: BTreeMap<&str, &Task> = message
        .tasks
        .iter()
        .filter(|t| is_serving(t))
        .map(|t| (t.id.as_str(), t))
        .collect();
    for service in &ingress.services {
        for port in &service.ports {
            let target = port.target_port;
            let backends: Vec<(Ipv4Addr, u32)> = if port.publish_mode() == PublishMode::Host {
                // Straight to the task on this node, never across the mesh.
                local_serving
                    .values()
                    .filter(|t| t.service_id == service.service_id)
                    .filter_map(|t| Some((*egress.get(&t.id)?, target)))
                    .collect()
            } else {
                service
                    .tasks
                    .iter()
                    .filter_map(|t| match egress.get(&t.task_id) {
                        Some(local) if t.node_id == me => Some((*local, target)),
                        _ if t.node_id != me => Some((addr_ip(&t.ingress_addr)?, target)),
                        _ => None,
                    })
                    .collect()
            };
            rules.published.push(PublishedPort {
                protocol: port.protocol().label(),
                port: port.published_port,
                backends,
            });
        }
        for task in service.tasks.iter().filter(|t| t.node_id == me) {
            if let (Some(ingress_ip), Some(local)) =
                (addr_ip(&task.ingress_addr), egress.get(&task.task_id))
            {
                rules.mesh_arrivals.push((ingress_ip, *local));
            }
        }
    }
    rules.mesh_arrivals.sort();
    rules.mesh_arrivals.dedup();
    (rules, routes)
}

fn write_sysctl(path: &str, value: &str) -> Result<(), PublishError> {
    let current = std::fs::read_to_string(path).unwrap_or_default();
    if current.trim() == value {
        return Ok(());
    }
    std::fs::write(path, value).map_err(|source| PublishError::Sysctl {
        path: path.to_string(),
        source,
    })
}

/// Forwarding on (the node routes for its tasks), and loose reverse-path checks on the
/// mesh interface, where clients' packets arrive from another node.
fn set_sysctls() -> Result<(), PublishError> {
    write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
    let mesh = format!("/proc/sys/net/ipv4/conf/{INGRESS_IFNAME}/rp_filter");
    if std::path::Path::new(&mesh).exists() {
        write_sysctl(&mesh, "2")?;
    }
    Ok(())
}

async fn load(rules: &HostRules, routes: &[MeshRoute]) -> Result<(), PublishError> {
    if !rules.is_empty() {
        set_sysctls()?;
    }
    let script = rules::ruleset(rules);
    let loaded = crate::command::run("nft", &["-f", "-"], Some(&script)).await;
    crate::metrics::rules_loaded("publish", loaded.is_ok());
    loaded.map_err(|detail| PublishError::LoadRules { detail })?;
    routes::apply(routes).await
}

/// Removes swarmr's table and return routes from the node namespace (leaving).
pub async fn teardown() {
    if let Err(e) = load(&HostRules::default(), &[]).await {
        warn!(error = %crate::error::chain(&e), "could not remove the node's published-port rules");
    }
}

fn difference(kind: &str, detail: String) -> swarmr_proto::NetworkDifference {
    swarmr_proto::NetworkDifference {
        network_id: String::new(),
        kind: kind.into(),
        detail,
    }
}

/// How the node namespace differs from what `message` asks of it: the table, each
/// published port's rule and each return route.
pub async fn check(
    message: &SessionMessage,
    host: &HostNet,
) -> Vec<swarmr_proto::NetworkDifference> {
    let (rules, routes) = desired(message, host);
    let mut out = Vec::new();
    let listed = crate::command::run("nft", &["list", "table", "ip", TABLE], None).await;
    match (&listed, rules.is_empty()) {
        (Err(_), false) => out.push(difference("missing", format!("nftables table ip {TABLE}"))),
        (Ok(_), true) => out.push(difference("stale", format!("nftables table ip {TABLE}"))),
        _ => {}
    }
    if let Ok(table) = &listed {
        for port in rules.published.iter().filter(|p| !p.backends.is_empty()) {
            let rule = format!("{} dport {} ", port.protocol, port.port);
            let backends_there = port
                .backends
                .iter()
                .all(|(ip, _)| table.contains(&ip.to_string()));
            if !table.contains(&rule) || !backends_there {
                out.push(difference(
                    "missing",
                    format!(
                        "published port {}/{} to {:?}",
                        port.port, port.protocol, port.backends
                    ),
                ));
            }
        }
    }
    let rules_now = crate::command::run("ip", &["-4", "rule", "show"], None)
        .await
        .unwrap_or_default();
    let marks = routes::parse_marks(&rules_now);
    for route in &routes {
        if !marks.contains(&route.mark) {
            out.push(difference(
                "missing",
                format!(
                    "return route via {} (rule fwmark {:#x})",
                    route.via, route.mark
                ),
            ));
        }
    }
    for mark in marks
        .iter()
        .filter(|m| !routes.iter().any(|r| r.mark == **m))
    {
        out.push(difference(
            "stale",
            format!("return route rule fwmark {mark:#x}"),
        ));
    }
    out
}

/// Runs until shutdown; the rules stay in place across a restart of the node process.
pub async fn run_publish(
    node_id: String,
    host: HostNet,
    mut sessions: watch::Receiver<Option<SessionMessage>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let span = tracing::info_span!("publish", node.id = %node_id);
    async move {
        let mut applied: Option<(HostRules, Vec<MeshRoute>)> = None;
        let mut round = 0u32;
        loop {
            let message = sessions.borrow_and_update().clone();
            if let Some(message) = message {
                let wanted = desired(&message, &host);
                if round.is_multiple_of(FULL_RESYNC) || applied.as_ref() != Some(&wanted) {
                    match load(&wanted.0, &wanted.1).await {
                        Ok(()) => {
                            if applied.as_ref().map(|a| &a.0) != Some(&wanted.0) {
                                info!(ports = wanted.0.published.len(), "published-port rules loaded");
                            }
                            applied = Some(wanted);
                        }
                        Err(e) => {
                            warn!(error = %crate::error::chain(&e), "published-port rules not loaded; retrying");
                            applied = None;
                        }
                    }
                }
            }
            round = round.wrapping_add(1);
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                changed = sessions.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(ROUND) => {}
            }
        }
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests;
