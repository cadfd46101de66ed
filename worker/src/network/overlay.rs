//! The overlay glue: turns what the dispatcher pushed (this node's running tasks with their
//! addresses, and every remote endpoint of their networks) into netdriver's desired state,
//! and reconciles the kernel to it on every change and periodically. An endpoint that
//! cannot be wired fails its task with the reason.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;

use swarmr_netdriver::fastpath::FastPath;
use swarmr_netdriver::{
    error_chain, mac_for_ip, Driver, FastPathDifference, HostDesired, Ipv4Net, KernelNetlink,
    LocalEndpoint, NetworkDesired, RemoteEndpoint, NETNS_DIR,
};
use swarmr_proto::convert::now_millis;
use swarmr_proto::{SessionMessage, Task, TaskState, TaskStatus, TaskStatusUpdate};
use tokio::sync::{mpsc, watch, Notify};

use super::discovery::{self, VipBalancer};
use super::mesh::{self, HostNet};
use crate::agent::NetworkAttach;
use tracing::{info, warn, Instrument};

const MTU_OPTION: &str = "com.docker.network.driver.mtu";
/// Repairs what changed behind our back (a deleted link, a crashed peer's leftovers).
const RESYNC: Duration = Duration::from_secs(5);

/// The kernel-backed overlay driver of this node.
pub type OverlayDriver = Driver<KernelNetlink>;

/// Opens netlink in the calling thread's network namespace: the node's own (the underlay);
/// with `fast_path`, sandboxes forward past their bridge by BPF where it loads.
pub fn kernel_driver(fast_path: bool) -> Result<OverlayDriver, swarmr_netdriver::Error> {
    let fast = match fast_path {
        false => Err("--overlay-forwarding bridge".into()),
        true => FastPath::probe(Path::new(NETNS_DIR))
            .map_err(|e| format!("the BPF fast path cannot load: {}", error_chain(&e))),
    };
    let driver = Driver::with_fast_path(KernelNetlink::new()?, fast);
    info!(overlay_forwarding = %driver.forwarding(), "overlay forwarding");
    Ok(driver)
}

/// Removes every sandbox of this node (it is leaving the cluster).
pub async fn teardown(driver: &OverlayDriver, node_id: &str) {
    match driver.teardown(&short_id(node_id)).await {
        Ok(removed) => info!(sandboxes = removed.len(), "overlay sandboxes removed"),
        Err(e) => warn!(error = %e, "could not remove this node's overlay sandboxes"),
    }
}

use swarmr_netdriver::names::node_short_id as short_id;

fn ip_and_net(addr: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, prefix) = addr.split_once('/')?;
    Some((ip.parse().ok()?, prefix.parse().ok()?))
}

/// Containers started and wired here whose RUNNING report the session does not show yet,
/// by task id: their PIDs.
pub type Started = HashMap<String, u32>;

/// Checks a reported PID against the task's container (see `pid_check`).
pub type PidCheck = fn(pid: u32, container_id: &str) -> bool;

/// A task whose container runs here and can be wired: RUNNING with a PID that still is
/// its container's (also while it drains after being told to stop: its connections
/// finish), or wanted and just started by this node's agent.
fn wireable(task: &Task, started: &Started, pid_check: PidCheck) -> Option<u32> {
    let status = task.status.as_ref()?;
    let wanted = task.desired_state() == TaskState::Running;
    match status.state() {
        TaskState::Running => {
            (status.pid > 0 && pid_check(status.pid, &status.container_id)).then_some(status.pid)
        }
        state if state < TaskState::Running && wanted => started.get(&task.id).copied(),
        _ => None,
    }
}

/// What the kernel of this node should hold, from the latest session message and the
/// containers started since.
pub fn desired_host(
    node_id: &str,
    message: &SessionMessage,
    started: &Started,
    host: &HostNet,
    pid_check: PidCheck,
) -> Option<HostDesired> {
    let underlay_addr: Ipv4Addr = message.node.as_ref()?.status.as_ref()?.addr.parse().ok()?;
    let mut locals: BTreeMap<&str, Vec<LocalEndpoint>> = BTreeMap::new();
    let mut pids: BTreeMap<String, u32> = BTreeMap::new();
    for task in &message.tasks {
        let Some(pid) = wireable(task, started, pid_check) else {
            continue;
        };
        pids.insert(task.id.clone(), pid);
        for (index, attachment) in mesh::overlay_attachments(message, task).enumerate() {
            let Some((ip, _)) = ip_and_net(&attachment.addr) else {
                continue;
            };
            locals
                .entry(attachment.network_id.as_str())
                .or_default()
                .push(LocalEndpoint {
                    endpoint_id: task.id.clone(),
                    container_pid: pid,
                    ifname: format!("eth{index}"),
                    ip,
                    mac: mac_for_ip(ip),
                });
        }
    }
    let mut networks: Vec<NetworkDesired> = message
        .networks
        .iter()
        .filter_map(|assignment| {
            let network = assignment.network.as_ref()?;
            let local_endpoints = locals.remove(network.id.as_str())?;
            let subnet: Ipv4Net = network.subnet.parse().ok()?;
            let remote_endpoints = assignment
                .peers
                .iter()
                .filter_map(|peer| {
                    let (ip, _) = ip_and_net(&peer.addr)?;
                    Some(RemoteEndpoint {
                        ip,
                        mac: mac_for_ip(ip),
                        vtep: peer.node_addr.parse().ok()?,
                    })
                })
                .collect();
            let mtu = network
                .spec
                .as_ref()
                .and_then(|s| s.options.get(MTU_OPTION)?.parse().ok());
            Some(NetworkDesired {
                network_id: network.id.clone(),
                vni: network.vni,
                subnet,
                gateway: network.gateway.parse().ok()?,
                mtu,
                local_endpoints,
                remote_endpoints,
            })
        })
        .collect();
    networks.extend(mesh::ingress_desired(node_id, message, host));
    Some(HostDesired {
        node_short_id: short_id(node_id),
        underlay_addr,
        networks,
        egress: mesh::egress_desired(message, host, &pids),
    })
}

/// This node's overlay: reconciles the kernel on every session message and periodically,
/// and wires each container the agent starts before the task reports RUNNING.
pub struct Overlay {
    driver: Arc<OverlayDriver>,
    node_id: String,
    sessions: watch::Receiver<Option<SessionMessage>>,
    started: Mutex<Started>,
    /// One reconcile at a time: the loop's and the agent's would undo each other's plans.
    reconciling: tokio::sync::Mutex<()>,
    /// Told whenever the kernel changed, for the DNS servers that live in the sandboxes.
    changed: Arc<Notify>,
    host: HostNet,
    /// Loads a just-wired container's VIPs.
    vips: Arc<VipBalancer>,
}

impl Overlay {
    pub fn new(
        driver: Arc<OverlayDriver>,
        node_id: String,
        sessions: watch::Receiver<Option<SessionMessage>>,
        changed: Arc<Notify>,
        host: HostNet,
        vips: Arc<VipBalancer>,
    ) -> Self {
        Overlay {
            driver,
            node_id,
            sessions,
            started: Mutex::new(Started::new()),
            reconciling: tokio::sync::Mutex::new(()),
            changed,
            host,
            vips,
        }
    }

    fn started(&self) -> std::sync::MutexGuard<'_, Started> {
        // The map stays consistent whatever panicked while holding it.
        self.started.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the kernel should hold now, from the latest session message (none before the
    /// first one).
    fn desired(&self) -> Option<HostDesired> {
        let message = self.sessions.borrow().clone()?;
        let mut started = self.started();
        // Once the session shows a task RUNNING (or gone) its own PID rules.
        started.retain(|id, _| {
            message.tasks.iter().any(|t| {
                t.id == *id
                    && t.desired_state() == TaskState::Running
                    && t.status
                        .as_ref()
                        .is_some_and(|s| s.state() < TaskState::Running)
            })
        });
        let pid_check = super::pid_check::is_container_process;
        desired_host(&self.node_id, &message, &started, &self.host, pid_check)
    }

    /// Reconciles the kernel to the latest session message; the endpoints that could not
    /// be wired, with the reasons.
    async fn reconcile(&self) -> Vec<(String, String)> {
        let _guard = self.reconciling.lock().await;
        let Some(desired) = self.desired() else {
            return Vec::new();
        };
        let report = match self.driver.reconcile(&desired).await {
            Ok(report) => report,
            Err(e) => {
                warn!(error = %e, "overlay reconcile failed; retrying");
                return Vec::new();
            }
        };
        if !report.changes.is_empty() {
            info!(changes = report.changes.len(), "overlay updated");
            self.changed.notify_one();
        }
        for cleanup in &report.failed_cleanups {
            warn!(what = %cleanup, "could not remove stale overlay state; will retry");
        }
        report.failed_endpoints.into_iter().collect()
    }

    /// The differences between the kernel and the latest session message, changing
    /// nothing; `None` before the first message.
    pub async fn check(
        &self,
    ) -> Result<Option<Vec<swarmr_netdriver::Step>>, swarmr_netdriver::Error> {
        let _guard = self.reconciling.lock().await;
        match self.desired() {
            Some(desired) => self.driver.check(&desired).await.map(Some),
            None => Ok(None),
        }
    }

    /// What the fast path would change now (nothing before the first session message).
    pub async fn check_fast_path(&self) -> Vec<FastPathDifference> {
        let _guard = self.reconciling.lock().await;
        match self.desired() {
            Some(desired) => self.driver.check_fast_path(&desired).await,
            None => Vec::new(),
        }
    }

    /// How the sandboxes forward: `bpf (...)` or `bridge (why)`.
    pub fn forwarding(&self) -> &str {
        self.driver.forwarding()
    }

    /// Runs until shutdown. Sandboxes outlive it: traffic keeps flowing while the node
    /// restarts.
    pub async fn run(
        self: Arc<Self>,
        reports: mpsc::Sender<TaskStatusUpdate>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let span = tracing::info_span!("overlay", node.id = %self.node_id);
        let mut sessions = self.sessions.clone();
        async move {
            loop {
                sessions.borrow_and_update();
                for (task_id, reason) in self.reconcile().await {
                    report_failed(&reports, task_id, reason).await;
                }
                tokio::select! {
                    _ = shutdown.wait_for(|stop| *stop) => return,
                    changed = sessions.changed() => if changed.is_err() { return },
                    _ = tokio::time::sleep(RESYNC) => {}
                }
            }
        }
        .instrument(span)
        .await
    }
}

impl NetworkAttach for Overlay {
    fn nameservers(&self, message: &SessionMessage) -> HashMap<String, String> {
        discovery::nameservers(message)
    }

    fn attach<'a>(&'a self, task_id: &'a str, pid: u32) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let networked = self.sessions.borrow().as_ref().and_then(|m| {
                let task = m.tasks.iter().find(|t| t.id == task_id)?;
                let egress = self.host.enabled && mesh::has_egress(m, task);
                (!task.networks.is_empty() || egress).then(|| (task.clone(), m.discovery.clone()))
            });
            let Some((task, directory)) = networked else {
                return Ok(());
            };
            self.started().insert(task_id.to_string(), pid);
            // Another task's failure is the loop's to report; this one's is the caller's.
            let failed = self.reconcile().await;
            if let Some((_, reason)) = failed.into_iter().find(|(id, _)| id == task_id) {
                return Err(reason);
            }
            // Not fatal: the discovery loop loads the table again once the task runs.
            if let Err(e) = self.vips.load_at_start(&task, pid, &directory).await {
                warn!(task.id = %task_id, error = %e, "VIP rules not loaded at start; retrying");
            }
            Ok(())
        })
    }
}

async fn report_failed(reports: &mpsc::Sender<TaskStatusUpdate>, task_id: String, reason: String) {
    warn!(task.id = %task_id, %reason, "could not wire the task's container");
    let status = TaskStatus {
        state: TaskState::Failed as i32,
        message: "network attach failed".into(),
        error: format!("network: {reason}"),
        timestamp: now_millis(),
        ..Default::default()
    };
    let _ = reports
        .send(TaskStatusUpdate {
            task_id,
            status: Some(status),
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmr_proto::{
        Network, NetworkAssignment, NetworkAttachment, Node, NodeStatus, RemoteEndpoint as Peer,
    };

    fn task(id: &str, state: TaskState, pid: u32, addrs: &[(&str, &str)]) -> Task {
        Task {
            id: id.into(),
            desired_state: TaskState::Running as i32,
            status: Some(TaskStatus {
                state: state as i32,
                pid,
                ..Default::default()
            }),
            networks: addrs
                .iter()
                .map(|(n, a)| NetworkAttachment {
                    network_id: (*n).into(),
                    addr: (*a).into(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn no_host() -> HostNet {
        HostNet {
            enabled: false,
            egress_subnet: "172.18.0.0/16".parse().expect("subnet"),
            node_pid: 1,
        }
    }

    fn message(tasks: Vec<Task>) -> SessionMessage {
        let network = |id: &str, vni, subnet: &str, gw: &str| Network {
            id: id.into(),
            vni,
            subnet: subnet.into(),
            gateway: gw.into(),
            ..Default::default()
        };
        SessionMessage {
            node: Some(Node {
                status: Some(NodeStatus {
                    addr: "192.0.2.1".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            tasks,
            networks: vec![
                NetworkAssignment {
                    network: Some(network("front", 4096, "10.0.0.0/24", "10.0.0.1")),
                    peers: vec![Peer {
                        task_id: "r1".into(),
                        addr: "10.0.0.9/24".into(),
                        node_addr: "192.0.2.2".into(),
                    }],
                },
                NetworkAssignment {
                    network: Some(network("back", 4097, "10.0.1.0/24", "10.0.1.1")),
                    peers: vec![],
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn running_tasks_become_endpoints_with_peers() {
        let tasks = vec![
            task(
                "a",
                TaskState::Running,
                42,
                &[("front", "10.0.0.2/24"), ("back", "10.0.1.2/24")],
            ),
            task("b", TaskState::Starting, 0, &[("front", "10.0.0.3/24")]),
        ];
        let host = desired_host(
            "abcdefghijklmnop",
            &message(tasks),
            &Started::new(),
            &no_host(),
            |_, _| true,
        )
        .expect("desired");
        assert_eq!(host.node_short_id, "abcdefghijkl");
        assert_eq!(host.underlay_addr, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(host.networks.len(), 2);
        let front = &host.networks[0];
        assert_eq!(front.vni, 4096);
        assert_eq!(
            front.local_endpoints.len(),
            1,
            "the starting task is not wired yet"
        );
        assert_eq!(front.local_endpoints[0].ifname, "eth0");
        assert_eq!(front.local_endpoints[0].mac, [0x02, 0x42, 10, 0, 0, 2]);
        assert_eq!(front.remote_endpoints[0].vtep, Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(host.networks[1].local_endpoints[0].ifname, "eth1");
    }

    #[test]
    fn networks_without_local_endpoints_are_left_out() {
        let tasks = vec![task(
            "a",
            TaskState::Running,
            42,
            &[("back", "10.0.1.2/24")],
        )];
        let host = desired_host("n", &message(tasks), &Started::new(), &no_host(), |_, _| {
            true
        })
        .expect("desired");
        assert_eq!(host.networks.len(), 1);
        assert_eq!(host.networks[0].network_id, "back");
    }

    #[test]
    fn a_reported_pid_that_is_no_longer_the_container_is_not_wired() {
        let tasks = vec![task(
            "a",
            TaskState::Running,
            42,
            &[("back", "10.0.1.2/24")],
        )];
        let reused = |_: u32, _: &str| false;
        let host = desired_host("n", &message(tasks), &Started::new(), &no_host(), reused)
            .expect("desired");
        assert!(
            host.networks.iter().all(|n| n.local_endpoints.is_empty()),
            "a PID that fails the check never gets a veth"
        );
    }
}
