//! The steps of one run of a node (`run::run_once`): serve gRPC, start the manager's
//! controllers, start the task networking and the agent, serve the control socket, keep
//! the session with the leader, and drain it all at the end. Every background task runs
//! in the run's `JoinSet` and stops when the run halts.

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use swarmr_manager::ca::authz::{AuthzLayer, Standing, StandingOf};
use swarmr_manager::ca::{PeerIdentity, MANAGER_NAME};
use swarmr_manager::dockerapi::{tls, DockerApi};
use swarmr_manager::observe::http::HttpListener;
use swarmr_manager::Manager;
use swarmr_proto::control_server::ControlServer;
use swarmr_proto::dispatcher_server::DispatcherServer;
use swarmr_proto::logs_server::LogsServer;
use swarmr_proto::{NodeDescription, SessionMessage, TaskStatusUpdate};
use swarmr_worker::executor::{DockerExecutor, Executor};
use swarmr_worker::logs::CheckSlot;
use swarmr_worker::network::check::Checker;
use swarmr_worker::network::discovery::{run_discovery, VipBalancer};
use swarmr_worker::network::overlay::Overlay;
use swarmr_worker::network::publish::run_publish;
use swarmr_worker::{Agent, LogsService};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use super::certs;
use super::identity::Identity;
use super::local::LocalControl;
use super::run::{Node, Outcome};
use super::settings::Settings;
use super::SOCKET;
use swarmr_proto::NodeRole;

type Updates = watch::Receiver<Option<SessionMessage>>;

/// What one run's steps share: its background tasks, the halt signal they stop on, and
/// where they report an outcome that ends the run.
pub struct Run {
    tasks: JoinSet<()>,
    /// The network check the gRPC port serves, set once networking starts.
    network_check: CheckSlot,
    halt_tx: watch::Sender<bool>,
    halt_rx: watch::Receiver<bool>,
    outcome_tx: mpsc::Sender<Outcome>,
    pub outcomes: mpsc::Receiver<Outcome>,
}

impl Run {
    pub fn new() -> Self {
        let (halt_tx, halt_rx) = watch::channel(false);
        let (outcome_tx, outcomes) = mpsc::channel::<Outcome>(4);
        Run {
            tasks: JoinSet::new(),
            network_check: CheckSlot::default(),
            halt_tx,
            halt_rx,
            outcome_tx,
            outcomes,
        }
    }

    pub fn halt(&self) -> watch::Receiver<bool> {
        self.halt_rx.clone()
    }

    pub fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(task);
    }

    /// The node's gRPC port: Logs always, Raft, Control and Dispatcher on a manager.
    pub async fn serve_grpc(
        &mut self,
        node: &Node<'_>,
        identity: &Identity,
        manager: Option<&Arc<Manager>>,
    ) -> anyhow::Result<()> {
        let settings = node.settings;
        let listener = tokio::net::TcpListener::bind(settings.listen_addr)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (is another swarmr or a Docker Swarm manager using it?)",
                    settings.listen_addr
                )
            })?;
        let logs = LogsService::new(
            node.host.executor.clone(),
            identity.node_id.clone(),
            settings.hostname.clone(),
        )
        .with_network_check(self.network_check.clone());
        let authz = AuthzLayer::new(&identity.cluster_id, standing_of(manager.map(|m| &**m)));
        let router = tonic::transport::Server::builder()
            .layer(authz)
            .add_service(LogsServer::new(logs))
            .add_optional_service(manager.map(|m| m.raft_service()))
            .add_optional_service(manager.map(|m| ControlServer::new(m.control_service())))
            .add_optional_service(manager.map(|m| DispatcherServer::new(m.dispatcher_service())));
        let halt = halted(self.halt());
        let incoming = node.tls.incoming(listener);
        self.spawn(async move {
            if let Err(e) = router.serve_with_incoming_shutdown(incoming, halt).await {
                error!(error = %e, "gRPC server stopped");
            }
        });
        Ok(())
    }

    pub fn start_controllers(
        &mut self,
        manager: &Arc<Manager>,
        identity: &Identity,
        settings: &Settings,
    ) {
        let controllers = manager.clone();
        let halt = self.halt();
        self.spawn(async move { controllers.run_controllers(halt).await });
        info!(node.id = %identity.node_id, addr = %settings.api_addr, "manager listening");
    }

    /// DNS, VIPs, the overlay, published ports and egress (when netlink is there), and the
    /// agent that runs the tasks, wired to the overlay.
    pub fn start_networking(
        &mut self,
        node: &Node<'_>,
        identity: &Identity,
        updates: &Updates,
        reports: &mpsc::Sender<TaskStatusUpdate>,
    ) -> Agent<DockerExecutor> {
        let agent = Agent::new(node.host.executor.clone(), identity.node_id.clone())
            .with_node_hostname(node.settings.hostname.clone());
        let Some(driver) = &node.host.overlay else {
            // DNS and VIPs live in the overlay's sandboxes and containers: no overlay, none.
            return agent;
        };
        let settings = node.settings;
        let sandboxes_changed = Arc::new(Notify::new());
        let vips = {
            let _span = tracing::info_span!("discovery", node.id = %identity.node_id).entered();
            Arc::new(VipBalancer::start(settings.vip_mode))
        };
        self.spawn(run_discovery(
            identity.node_id.clone(),
            updates.clone(),
            settings.dns_upstreams.clone(),
            sandboxes_changed.clone(),
            vips.clone(),
            self.halt(),
        ));
        let overlay = Arc::new(Overlay::new(
            driver.clone(),
            identity.node_id.clone(),
            updates.clone(),
            sandboxes_changed,
            settings.host_net.clone(),
            vips.clone(),
        ));
        self.spawn(run_publish(
            identity.node_id.clone(),
            settings.host_net.clone(),
            updates.clone(),
            self.halt(),
        ));
        self.spawn(overlay.clone().run(reports.clone(), self.halt()));
        let checker = Checker {
            overlay: overlay.clone(),
            vips,
            host: settings.host_net.clone(),
            sessions: updates.clone(),
        };
        // Set once per run: a second call would find it set and keep the first.
        let _ = self.network_check.set(Arc::new(checker));
        agent.with_network_attach(overlay)
    }

    /// The control socket the local CLI talks to; the flag it sets while leaving.
    pub fn serve_local(
        &mut self,
        node: &Node<'_>,
        identity: &Identity,
        manager: Option<&Manager>,
        updates: &Updates,
    ) -> Arc<AtomicBool> {
        let leaving = Arc::new(AtomicBool::new(false));
        let local = LocalControl::new(
            manager.map(|m| m.control_service()),
            identity.role,
            updates.clone(),
            identity.managers.clone(),
            node.tls.clone(),
            self.outcome_tx.clone(),
            leaving.clone(),
        );
        let socket = node.settings.data_dir.join(SOCKET);
        self.spawn(local.serve(socket, halted(self.halt())));
        leaving
    }

    /// Docker's Engine API on `<data-dir>/docker.sock` and, with `--docker-api-addr`, on
    /// TCP with mutual TLS.
    pub async fn serve_docker_api(
        &mut self,
        node: &Node<'_>,
        manager: &Manager,
    ) -> anyhow::Result<()> {
        let settings = node.settings;
        let api = DockerApi::new(manager.control_service(), manager.core().clone());
        if let Some(addr) = settings.docker_api_addr {
            let names = serving_names(settings, addr);
            let listener =
                tls::TlsListener::bind(addr, "Docker API", manager.core().clone(), names).await?;
            info!(%addr, "Docker API listening (mutual TLS)");
            self.spawn(api.clone().serve_tls(listener, halted(self.halt())));
        }
        self.spawn(api.serve_unix(settings.data_dir.clone(), halted(self.halt())));
        Ok(())
    }

    /// The monitoring port (`--http-addr`): this node's metrics and, on a manager, the
    /// cluster's, `/healthz`, and the dashboard. Off loopback it needs a manager (mutual
    /// TLS checks client certificates against the store): a worker run does not serve it.
    pub async fn serve_http(
        &mut self,
        node: &Node<'_>,
        manager: Option<&Manager>,
    ) -> anyhow::Result<()> {
        let settings = node.settings;
        let Some(addr) = settings.http_addr else {
            return Ok(());
        };
        if manager.is_none() && !addr.ip().is_loopback() {
            warn!(%addr, "--http-addr is not served while this node is a worker: off loopback it needs a manager to check client certificates; use 127.0.0.1:PORT on workers");
            return Ok(());
        }
        let mut registry = prometheus_client::registry::Registry::default();
        swarmr_worker::metrics::register(&mut registry);
        if let Some(manager) = manager {
            manager.register_metrics(&mut registry);
        }
        let core = manager.map(|m| m.core().clone());
        let names = serving_names(settings, addr);
        let listener = HttpListener::bind(addr, core.as_ref(), names).await?;
        let tls = !addr.ip().is_loopback();
        info!(%addr, tls, "monitoring port listening (/metrics, /healthz, dashboard at /)");
        self.spawn(listener.serve(registry, core, halted(self.halt())));
        Ok(())
    }

    /// The session with the leader, and certificate renewal; a session that says this
    /// node was removed ends the run.
    pub fn start_session(
        &mut self,
        node: &Node<'_>,
        identity: &Identity,
        updates_tx: watch::Sender<Option<SessionMessage>>,
        reports: mpsc::Receiver<TaskStatusUpdate>,
        updates: &Updates,
    ) {
        let (settings, tls) = (node.settings, node.tls);
        let config = swarmr_worker::SessionConfig {
            node_id: identity.node_id.clone(),
            api_addr: settings.api_addr.clone(),
            description: NodeDescription {
                hostname: settings.hostname.clone(),
                engine_version: node.host.executor.engine_version().to_string(),
                os: std::env::consts::OS.into(),
                arch: std::env::consts::ARCH.into(),
                resources: Some(settings.resources.over(node.host.executor.resources())),
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
        self.spawn(certs::keep_fresh(
            tls.clone(),
            settings.data_dir.clone(),
            identity.role,
            session_managers(identity, settings),
            updates.clone(),
            self.halt(),
        ));
        let (outcome, halt) = (self.outcome_tx.clone(), self.halt());
        self.spawn(async move {
            let run = swarmr_worker::run_session(config, updates_tx, reports, halt);
            if let Err(e) = run.await {
                let _ = outcome.send(Outcome::Removed(e.to_string())).await;
            }
        });
    }

    /// Halts every step and waits (5 s at most) for them to stop.
    pub async fn drain(mut self) {
        let _ = self.halt_tx.send(true);
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(5), drain)
            .await
            .is_err()
        {
            warn!("some tasks did not stop within 5s");
        }
    }
}

fn standing_of(manager: Option<&Manager>) -> StandingOf {
    let Some(manager) = manager else {
        return Arc::new(|_: &PeerIdentity| Standing::Unknown);
    };
    let core = manager.core().clone();
    Arc::new(move |peer: &PeerIdentity| swarmr_manager::standing::standing_of(&core, peer))
}

/// What a TCP port's serving certificate names: the listen and advertise addresses.
fn serving_names(settings: &Settings, addr: std::net::SocketAddr) -> Vec<String> {
    let advertise = settings
        .api_addr
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| a.ip());
    tls::serving_names(addr, advertise, &settings.hostname)
}

async fn halted(mut halt: watch::Receiver<bool>) {
    let _ = halt.wait_for(|h| *h).await;
}

pub fn session_managers(identity: &Identity, settings: &Settings) -> Vec<String> {
    let mut managers = identity.managers.clone();
    if identity.role == NodeRole::Manager && !managers.contains(&settings.api_addr) {
        managers.push(settings.api_addr.clone());
    }
    managers
}
