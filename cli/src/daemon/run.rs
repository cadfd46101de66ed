//! One run of a node in one role, and the loop that restarts it when the role changes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use swarmr_manager::ca::authz::{AuthzLayer, NodeExists, Standing};
use swarmr_manager::ca::{NodeTls, MANAGER_NAME};
use swarmr_manager::{ClusterParams, Manager, ManagerConfig};
use swarmr_proto::control_server::ControlServer;
use swarmr_proto::dispatcher_server::DispatcherServer;
use swarmr_proto::logs_server::LogsServer;
use swarmr_proto::raft_client::RaftClient;
use swarmr_proto::{AddManagerRequest, NodeDescription, NodeRole, SessionMessage};
use swarmr_worker::discovery::run_discovery;
use swarmr_worker::executor::{DockerExecutor, Executor};
use swarmr_worker::overlay::{self, Overlay};
use swarmr_worker::{Agent, LogsService};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use super::certs;
use super::identity::{self, Identity, Role};
use super::local::LocalControl;
use super::settings::Settings;
use super::SOCKET;
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
    SwitchRole(Role, u64),
    Removed(String),
}

pub async fn run_node(
    settings: Settings,
    mut identity: Identity,
    mut boot: Boot,
) -> anyhow::Result<()> {
    identity.save(&settings.data_dir)?;
    let tls = certs::load(&settings.data_dir)?;
    let host = Host::connect().await?;
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
                identity::wipe(&settings.data_dir)?;
                info!("left the cluster; the data dir is clear");
                return Ok(());
            }
            Outcome::Removed(message) => return Err(anyhow!(message)),
            Outcome::SwitchRole(role, raft_id) => {
                if role == Role::Worker {
                    identity::remove_raft_db(&settings.data_dir)?;
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
    };
    let manager = match boot {
        Boot::ForceNewCluster => Manager::force_new_cluster(&config).await,
        _ => Manager::open(&config).await,
    };
    manager.with_context(|| format!("start the manager in {}", settings.data_dir.display()))
}

/// What a node's runs share: the Docker engine and the kernel's overlay driver (`None`
/// when netlink is not available, e.g. without root).
struct Host {
    executor: Arc<DockerExecutor>,
    overlay: Option<Arc<overlay::OverlayDriver>>,
}

impl Host {
    async fn connect() -> anyhow::Result<Self> {
        let executor = DockerExecutor::connect().await.map_err(|e| {
            anyhow!(
                "cannot reach the Docker engine ({}): start dockerd, or check /var/run/docker.sock",
                e.report()
            )
        })?;
        let overlay = match overlay::kernel_driver() {
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
struct Node<'a> {
    settings: &'a Settings,
    host: &'a Host,
    tls: &'a NodeTls,
}

async fn run_once(
    node: &Node<'_>,
    identity: &mut Identity,
    boot: Boot,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Outcome> {
    let (settings, tls) = (node.settings, node.tls);
    let (executor, overlay) = (node.host.executor.clone(), node.host.overlay.clone());
    let manager = match identity.role {
        Role::Manager => Some(Arc::new(start_manager(node, identity, &boot).await?)),
        Role::Worker => None,
    };
    let (halt_tx, halt_rx) = watch::channel(false);
    let (outcome_tx, mut outcome_rx) = mpsc::channel::<Outcome>(4);
    let mut tasks = JoinSet::new();
    let listener = tokio::net::TcpListener::bind(settings.listen_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is another swarmr or a Docker Swarm manager using it?)",
                settings.listen_addr
            )
        })?;
    let logs = LogsService::new(
        executor.clone(),
        identity.node_id.clone(),
        settings.hostname.clone(),
    );
    let authz = AuthzLayer::new(&identity.cluster_id, node_exists(manager.as_deref()));
    let router = tonic::transport::Server::builder()
        .layer(authz)
        .add_service(
            LogsServer::new(logs)
                .max_decoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES)
                .max_encoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES),
        )
        .add_optional_service(manager.as_ref().map(|m| m.raft_service()))
        .add_optional_service(manager.as_ref().map(|m| {
            ControlServer::new(m.control_service())
                .max_decoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES)
                .max_encoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES)
        }))
        .add_optional_service(manager.as_ref().map(|m| {
            DispatcherServer::new(m.dispatcher_service())
                .max_decoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES)
                .max_encoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES)
        }));
    let halt = halted(halt_rx.clone());
    let incoming = tls.incoming(listener);
    tasks.spawn(async move {
        if let Err(e) = router.serve_with_incoming_shutdown(incoming, halt).await {
            error!(error = %e, "gRPC server stopped");
        }
    });
    if let Some(manager) = &manager {
        let controllers = manager.clone();
        let halt = halt_rx.clone();
        tasks.spawn(async move { controllers.run_controllers(halt).await });
        info!(node.id = %identity.node_id, addr = %settings.api_addr, "manager listening");
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
    let mut agent = Agent::new(executor.clone(), identity.node_id.clone());
    if let Some(driver) = &overlay {
        // DNS and VIPs live in the overlay's sandboxes and containers: no overlay, none.
        let sandboxes_changed = Arc::new(Notify::new());
        tasks.spawn(run_discovery(
            identity.node_id.clone(),
            updates_rx.clone(),
            settings.dns_upstreams.clone(),
            sandboxes_changed.clone(),
            halt_rx.clone(),
        ));
        let overlay = Arc::new(Overlay::new(
            driver.clone(),
            identity.node_id.clone(),
            updates_rx.clone(),
            sandboxes_changed,
        ));
        agent = agent.with_network_attach(overlay.clone());
        tasks.spawn(overlay.run(reports_tx.clone(), halt_rx.clone()));
    }
    tasks.spawn(agent.run(updates_rx.clone(), reports_tx, halt_rx.clone()));
    let leaving = Arc::new(AtomicBool::new(false));
    let local = LocalControl::new(
        manager.as_ref().map(|m| m.control_service()),
        identity.role,
        updates_rx.clone(),
        identity.managers.clone(),
        tls.clone(),
        outcome_tx.clone(),
        leaving.clone(),
    );
    tasks.spawn(local.serve(settings.data_dir.join(SOCKET), halted(halt_rx.clone())));
    let session_config = swarmr_worker::SessionConfig {
        node_id: identity.node_id.clone(),
        api_addr: settings.api_addr.clone(),
        description: NodeDescription {
            hostname: settings.hostname.clone(),
            engine_version: executor.engine_version().to_string(),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
        },
        managers: session_managers(identity, settings),
        connect: {
            let tls = tls.clone();
            Arc::new(move |addr: &str| {
                tls.channel(addr, MANAGER_NAME)
                    .map_err(|e| tonic::Status::invalid_argument(e.to_string()))
            })
        },
    };
    tasks.spawn(certs::keep_fresh(
        tls.clone(),
        settings.data_dir.clone(),
        identity.role,
        session_managers(identity, settings),
        updates_rx.clone(),
        halt_rx.clone(),
    ));
    let session_outcome = outcome_tx.clone();
    let session_halt = halt_rx.clone();
    tasks.spawn(async move {
        let run = swarmr_worker::run_session(session_config, updates_tx, reports_rx, session_halt);
        if let Err(e) = run.await {
            let _ = session_outcome.send(Outcome::Removed(e.to_string())).await;
        }
    });
    let mut voter_request: Option<tokio::task::JoinHandle<()>> = None;
    if matches!(boot, Boot::JoinedManager) {
        voter_request = Some(tokio::spawn(request_voter(identity.clone(), tls.clone())));
    }
    let outcome = loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break Outcome::Stop,
            Some(outcome) = outcome_rx.recv() => break outcome,
            changed = updates_rx.changed() => {
                if changed.is_err() { continue; }
                let message = updates_rx.borrow_and_update().clone();
                if leaving.load(Ordering::SeqCst) {
                    continue;
                }
                if let Some(message) = message {
                    if let Some(outcome) = follow_session(settings, identity, &message)? {
                        break outcome;
                    }
                }
            }
        }
    };
    if let Some(handle) = voter_request {
        handle.abort();
    }
    let _ = halt_tx.send(true);
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        warn!("some tasks did not stop within 5s");
    }
    if let Some(manager) = manager {
        manager.shutdown().await;
    }
    Ok(outcome)
}

/// Whether a certificate's node still exists, for the authorization layer. Unknown on a
/// worker (no store) and on a manager whose store holds no cluster yet: a manager that just
/// joined must accept the leader's Raft calls before it has replicated anything. Only the
/// leader may call a node removed: a follower may not have applied its join yet.
fn node_exists(manager: Option<&Manager>) -> NodeExists {
    let Some(manager) = manager else {
        return Arc::new(|_: &str| Standing::Unknown);
    };
    let core = manager.core().clone();
    Arc::new(move |id: &str| {
        let store = core.store();
        if !store.has_cluster() {
            return Standing::Unknown;
        }
        match store.contains::<swarmr_proto::Node>(id) {
            Ok(true) => Standing::Member,
            Ok(false) if core.is_leader() => Standing::Removed,
            Ok(false) => Standing::NotYetKnown(core.leader().map(|(_, addr)| addr)),
            Err(_) => Standing::Unknown,
        }
    })
}

async fn halted(mut halt: watch::Receiver<bool>) {
    let _ = halt.wait_for(|h| *h).await;
}

fn session_managers(identity: &Identity, settings: &Settings) -> Vec<String> {
    let mut managers = identity.managers.clone();
    if identity.role == Role::Manager && !managers.contains(&settings.api_addr) {
        managers.push(settings.api_addr.clone());
    }
    managers
}

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
        (Role::Worker, NodeRole::Manager, _) => {
            Some(Outcome::SwitchRole(Role::Manager, node.raft_id))
        }
        (Role::Manager, NodeRole::Worker, NodeRole::Worker) => {
            Some(Outcome::SwitchRole(Role::Worker, node.raft_id))
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
