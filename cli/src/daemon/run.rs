//! One run of a node in one role, and the loop that restarts it when the role changes.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use swarmr_manager::ca::{NodeTls, MANAGER_NAME};
use swarmr_manager::{ClusterParams, Manager, ManagerConfig};
use swarmr_proto::raft_client::RaftClient;
use swarmr_proto::{AddManagerRequest, NodeRole, SessionMessage};
use swarmr_worker::executor::DockerExecutor;
use swarmr_worker::network::overlay;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::certs;
use super::identity::{self, Identity};
use super::settings::Settings;
use super::steps;
use crate::commands::swarm::join_instructions;

/// How a run starts.
pub enum Boot {
    Bootstrap(Box<ClusterParams>),
    ForceNewCluster,
    /// Just joined with the manager role: ask to become a Raft voter.
    JoinedManager,
    Resume,
}

/// Why a run ended.
pub enum Outcome {
    Stop,
    Leave,
    SwitchRole(NodeRole, u64),
    Removed(String),
}

pub async fn run_node(
    settings: Settings,
    mut identity: Identity,
    mut boot: Boot,
) -> anyhow::Result<()> {
    identity.save(&settings.data_dir)?;
    let tls = certs::load(&settings.data_dir)?;
    let host = Host::connect(settings.overlay_fast_path).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutting down");
        let _ = stop_tx.send(true);
    });
    loop {
        let node = Node {
            settings: &settings,
            host: &host,
            tls: &tls,
        };
        let outcome = run_once(&node, &mut identity, boot, stop_rx.clone()).await?;
        boot = Boot::Resume;
        match outcome {
            Outcome::Stop => return Ok(()),
            Outcome::Leave => {
                if let Some(driver) = &host.overlay {
                    overlay::teardown(driver, &identity.node_id).await;
                }
                if settings.host_net.enabled {
                    swarmr_worker::network::publish::teardown().await;
                }
                swarmr_worker::files::TaskFiles::for_node(&identity.node_id).teardown();
                identity::wipe(&settings.data_dir)?;
                info!("left the cluster; the data dir is clear");
                return Ok(());
            }
            Outcome::Removed(message) => return Err(anyhow!(message)),
            Outcome::SwitchRole(role, raft_id) => {
                if role == NodeRole::Worker {
                    identity::remove_raft_state(&settings.data_dir)?;
                } else {
                    boot = Boot::JoinedManager;
                }
                info!(role = ?role, "role changed; restarting in the new role");
                identity.role = role;
                identity.raft_id = raft_id;
                identity.save(&settings.data_dir)?;
            }
        }
    }
}

async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn start_manager(
    node: &Node<'_>,
    identity: &Identity,
    boot: &Boot,
) -> anyhow::Result<Manager> {
    let settings = node.settings;
    let config = ManagerConfig {
        data_dir: settings.data_dir.clone(),
        node_id: identity.node_id.clone(),
        raft_id: identity.raft_id,
        api_addr: settings.api_addr.clone(),
        snapshot_interval: settings.snapshot_interval,
        tls: node.tls.clone(),
        secrets_key_file: settings.secrets_key_file.clone(),
    };
    let manager = match boot {
        Boot::ForceNewCluster => Manager::force_new_cluster(&config).await,
        _ => Manager::open(&config).await,
    };
    manager.with_context(|| format!("start the manager in {}", settings.data_dir.display()))
}

/// What a node's runs share: the Docker engine and the kernel's overlay driver (`None`
/// when netlink is not available, e.g. without root).
pub struct Host {
    pub executor: Arc<DockerExecutor>,
    pub overlay: Option<Arc<overlay::OverlayDriver>>,
}

impl Host {
    async fn connect(overlay_fast_path: bool) -> anyhow::Result<Self> {
        let executor = DockerExecutor::connect().await.map_err(|e| {
            anyhow!(
                "cannot reach the Docker engine ({}): start dockerd, or check /var/run/docker.sock",
                e.report()
            )
        })?;
        let overlay = match overlay::kernel_driver(overlay_fast_path) {
            Ok(driver) => Some(Arc::new(driver)),
            Err(e) => {
                warn!(error = %e, "overlay networking is off: netlink is not available (run as root)");
                None
            }
        };
        Ok(Self {
            executor: Arc::new(executor),
            overlay,
        })
    }
}

/// What every run of a node shares.
pub struct Node<'a> {
    pub settings: &'a Settings,
    pub host: &'a Host,
    pub tls: &'a NodeTls,
}

async fn run_once(
    node: &Node<'_>,
    identity: &mut Identity,
    boot: Boot,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Outcome> {
    let manager = match identity.role {
        NodeRole::Manager => Some(Arc::new(start_manager(node, identity, &boot).await?)),
        NodeRole::Worker => None,
    };
    let mut run = steps::Run::new();
    run.serve_grpc(node, identity, manager.as_ref()).await?;
    if let Some(manager) = &manager {
        run.start_controllers(manager, identity, node.settings);
    }
    if let (Some(manager), Boot::Bootstrap(params)) = (&manager, &boot) {
        manager
            .bootstrap(params)
            .await
            .context("initialise the cluster")?;
        print_init_message(manager, identity)?;
    }
    let (updates_tx, mut updates_rx) = watch::channel::<Option<SessionMessage>>(None);
    let (reports_tx, reports_rx) = mpsc::channel(1024);
    let agent = run.start_networking(node, identity, &updates_rx, &reports_tx);
    run.spawn(agent.run(updates_rx.clone(), reports_tx, run.halt()));
    let leaving = run.serve_local(node, identity, manager.as_deref(), &updates_rx);
    if let Some(manager) = &manager {
        run.serve_docker_api(node, manager).await?;
    }
    run.serve_http(node, manager.as_deref()).await?;
    run.start_session(node, identity, updates_tx, reports_rx, &updates_rx);
    let voter_request = matches!(boot, Boot::JoinedManager)
        .then(|| tokio::spawn(request_voter(identity.clone(), node.tls.clone())));
    let outcome = loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break Outcome::Stop,
            Some(outcome) = run.outcomes.recv() => break outcome,
            changed = updates_rx.changed() => {
                if changed.is_err() { continue; }
                let message = updates_rx.borrow_and_update().clone();
                if leaving.load(Ordering::SeqCst) {
                    continue;
                }
                if let Some(message) = message {
                    if let Some(outcome) = follow_session(node.settings, identity, &message)? {
                        break outcome;
                    }
                }
            }
        }
    };
    if let Some(handle) = voter_request {
        handle.abort();
    }
    run.drain().await;
    if let Some(manager) = manager {
        manager.shutdown().await;
    }
    Ok(outcome)
}

/// Whether a certificate's node still exists, for the authorization layer. Unknown on a
/// worker (no store) and on a manager whose store holds no cluster yet: a manager that just
/// joined must accept the leader's Raft calls before it has replicated anything.
/// Acts on what the dispatcher says about this node: remember the managers, switch roles.
fn follow_session(
    settings: &Settings,
    identity: &mut Identity,
    message: &SessionMessage,
) -> anyhow::Result<Option<Outcome>> {
    let managers: Vec<String> = message
        .managers
        .iter()
        .map(|m| m.api_addr.clone())
        .collect();
    if !managers.is_empty() && managers != identity.managers {
        identity.managers = managers;
        identity.save(&settings.data_dir)?;
    }
    let Some(node) = &message.node else {
        return Ok(None);
    };
    let desired = node
        .spec
        .as_ref()
        .map_or(NodeRole::Worker, |s| s.desired_role());
    let outcome = match (identity.role, desired, node.role()) {
        (NodeRole::Worker, NodeRole::Manager, _) => {
            Some(Outcome::SwitchRole(NodeRole::Manager, node.raft_id))
        }
        (NodeRole::Manager, NodeRole::Worker, NodeRole::Worker) => {
            Some(Outcome::SwitchRole(NodeRole::Worker, node.raft_id))
        }
        _ => None,
    };
    Ok(outcome)
}

/// Asks the managers, in turn, to make this node a Raft voter, until one succeeds.
async fn request_voter(identity: Identity, tls: NodeTls) {
    let mut delay = Duration::from_millis(200);
    loop {
        for addr in &identity.managers {
            let Ok(channel) = tls.channel(addr, MANAGER_NAME) else {
                continue;
            };
            let request = AddManagerRequest {
                node_id: identity.node_id.clone(),
            };
            let mut client = RaftClient::new(channel)
                .max_decoding_message_size(swarmr_proto::limits::MAX_RAFT_MESSAGE_BYTES)
                .max_encoding_message_size(swarmr_proto::limits::MAX_RAFT_MESSAGE_BYTES);
            match client.add_manager(request).await {
                Ok(_) => {
                    info!("this node is now a Raft voter");
                    return;
                }
                Err(status) => warn!(manager = %addr, %status, "not yet a Raft voter; retrying"),
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(3));
    }
}

fn print_init_message(manager: &Manager, identity: &Identity) -> anyhow::Result<()> {
    let cluster = manager
        .core()
        .store()
        .cluster()?
        .context("the cluster object is missing after init")?;
    let tokens = cluster.tokens.unwrap_or_default();
    println!(
        "Swarm initialized: current node ({}) is now a manager.\n\n{}To add a manager to this swarm, run 'swarmr join-token manager' and follow the instructions.\n",
        identity.node_id,
        join_instructions(NodeRole::Worker, &tokens.worker, manager.core().api_addr()),
    );
    Ok(())
}
