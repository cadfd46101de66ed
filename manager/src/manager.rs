//! Wiring: open the sled database, start Raft on it, bootstrap a new cluster or resume,
//! and hand out the gRPC services and the leader-only controllers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openraft::BasicNode;
use swarmr_proto::convert::now_millis;
use swarmr_proto::{
    Cluster, JoinTokens, Node, NodeDescription, NodeRole, NodeSpec, NodeState, NodeStatus,
};
use tracing::info;

use crate::ca::{self, NodeTls, RootCa};
use crate::control::ControlService;
use crate::core::{create_action, Core};
use crate::dispatcher::{self, DispatcherService, Sessions};
use crate::error::ManagerError;
use crate::raft::log_store::{LogStore, WAL_DIR};
use crate::raft::network::Network;
use crate::raft::service::RaftService;
use crate::raft::state_machine::StateMachine;
use crate::raft::{self as sraft, Raft};
use crate::secrets::keyfile::KeyStore;
use crate::store::Store;
use crate::{allocator, controller, orchestrator, scheduler};

pub struct ManagerConfig {
    pub data_dir: PathBuf,
    pub node_id: String,
    pub raft_id: u64,
    pub api_addr: String,
    /// Entries between snapshots (the log before a snapshot is purged).
    pub snapshot_interval: u64,
    /// This node's certificate, for Raft and forwarding to other managers.
    pub tls: NodeTls,
    /// The key-encryption key of the data key (outside the data dir; see `secrets`).
    pub secrets_key_file: PathBuf,
}

/// What `swarmr init` decides for the whole cluster.
pub struct ClusterParams {
    pub cluster_id: String,
    pub hostname: String,
    pub engine_version: String,
    pub heartbeat_period: Duration,
    pub default_addr_pool: Vec<String>,
    pub subnet_size: u32,
    /// The root CA `init` created (its files are already in the data dir).
    pub root: RootCa,
    /// Lifetime of node certificates.
    pub cert_expiry: Duration,
}

pub struct Manager {
    core: Core,
    control: ControlService,
    sessions: Sessions,
    db: sled::Db,
    keys: Arc<KeyStore>,
}

const DB_DIR: &str = "raft.db";

/// Removes what a manager keeps of the cluster in `data_dir`: sled's database and the Raft
/// log. A node that leaves, or stops being a manager, calls it; nothing there is fine.
pub fn remove_state(data_dir: &Path) -> std::io::Result<()> {
    for dir in [DB_DIR, WAL_DIR] {
        remove_dir_if_present(&data_dir.join(dir))?;
    }
    Ok(())
}

fn remove_dir_if_present(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

impl Manager {
    pub async fn open(config: &ManagerConfig) -> Result<Self, ManagerError> {
        let db = open_db(&config.data_dir)?;
        let store = Store::open(&db)?;
        let log_store = LogStore::open(
            &db,
            &config.data_dir.join(DB_DIR),
            &config.data_dir.join(WAL_DIR),
        )
        .await
        .map_err(ManagerError::OpenLog)?;
        let state_machine = StateMachine::open(&db, &config.data_dir, store.clone())
            .map_err(ManagerError::OpenDb)?;
        state_machine
            .announce_applied()
            .map_err(|e| ManagerError::Storage(Box::new(e)))?;
        let network = Network::new(config.tls.clone());
        let liveness = network.liveness.clone();
        let raft_config = sraft::config(config.snapshot_interval)
            .map_err(|e| ManagerError::RaftConfig(Box::new(e)))?;
        let raft = Raft::new(
            config.raft_id,
            Arc::new(raft_config),
            network,
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| ManagerError::StartRaft(e.to_string()))?;
        let core = Core::new(
            config.node_id.clone(),
            config.raft_id,
            config.api_addr.clone(),
            raft,
            store,
            liveness,
            config.tls.clone(),
        );
        let keys =
            KeyStore::open(&db, config.secrets_key_file.clone()).map_err(ManagerError::OpenDb)?;
        match keys.load() {
            Ok(Some(raw)) => core.keyring().set(raw),
            Ok(None) => {}
            // Another manager can hand it over again (see `secrets::fetch`).
            Err(e) => {
                tracing::warn!(error = %e, key_file = %config.secrets_key_file.display(), "the stored data key cannot be opened with this key file")
            }
        }
        let events = crate::observe::events::EventLog::start(core.store());
        Ok(Self {
            control: ControlService::new(core.clone(), events),
            core,
            sessions: Sessions::default(),
            db,
            keys: Arc::new(keys),
        })
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    /// `swarmr init`: a one-member Raft, the cluster object (with the root CA) and this
    /// node.
    pub async fn bootstrap(&self, params: &ClusterParams) -> Result<(), ManagerError> {
        let root = &params.root;
        let data_key = crate::secrets::random_key().map_err(ManagerError::Secrets)?;
        self.keys.save(&data_key).map_err(ManagerError::Secrets)?;
        self.core.keyring().set(data_key);
        self.initialize_raft().await?;
        let cluster = Cluster {
            id: params.cluster_id.clone(),
            meta: None,
            tokens: Some(JoinTokens {
                worker: ca::new_token(&root.digest),
                manager: ca::new_token(&root.digest),
            }),
            ca_digest: ca::hex(&root.digest),
            default_addr_pool: params.default_addr_pool.clone(),
            subnet_size: params.subnet_size,
            heartbeat_period_ms: params.heartbeat_period.as_millis() as u64,
            ca_cert_pem: root.cert_pem.clone(),
            ca_key_pem: root.key_pem.clone(),
            cert_expiry_secs: params.cert_expiry.as_secs(),
            client_certificates: Vec::new(),
        };
        let node = self.first_node(params);
        self.core
            .propose(vec![create_action(cluster), create_action(node)])
            .await?;
        info!(cluster.id = %params.cluster_id, "cluster initialised");
        Ok(())
    }

    fn first_node(&self, params: &ClusterParams) -> Node {
        Node {
            id: self.core.node_id().to_string(),
            meta: None,
            spec: Some(NodeSpec {
                desired_role: NodeRole::Manager as i32,
                availability: 0,
                labels: Default::default(),
            }),
            description: Some(NodeDescription {
                hostname: params.hostname.clone(),
                engine_version: params.engine_version.clone(),
                os: std::env::consts::OS.into(),
                arch: std::env::consts::ARCH.into(),
                // Reported by the node's first session.
                resources: None,
            }),
            status: Some(NodeStatus {
                state: NodeState::Unknown as i32,
                message: String::new(),
                addr: crate::dispatcher::host_of(self.core.api_addr()).to_string(),
                since: now_millis(),
            }),
            role: NodeRole::Manager as i32,
            raft_id: self.core.raft_id(),
            api_addr: self.core.api_addr().to_string(),
            ..Default::default()
        }
    }

    async fn initialize_raft(&self) -> Result<(), ManagerError> {
        let members = BTreeMap::from([(
            self.core.raft_id(),
            BasicNode {
                addr: self.core.api_addr().to_string(),
            },
        )]);
        self.core
            .raft()
            .initialize(members)
            .await
            .map_err(|e| ManagerError::StartRaft(e.to_string()))?;
        self.core
            .raft()
            .wait(Some(Duration::from_secs(10)))
            .current_leader(self.core.raft_id(), "become leader")
            .await
            .map_err(|e| ManagerError::StartRaft(e.to_string()))?;
        Ok(())
    }

    /// `swarmr init --force-new-cluster`: keep the state, drop the Raft membership, and
    /// restart as the only manager. Every other manager is recorded as a worker that is
    /// Down; they must leave and join again.
    pub async fn force_new_cluster(config: &ManagerConfig) -> Result<Self, ManagerError> {
        {
            let db = open_db(&config.data_dir)?;
            // The trees of a log kept by an older version, and the snapshots.
            for tree in ["raft_log", "raft_meta", "raft_snapshots"] {
                db.drop_tree(tree).map_err(ManagerError::OpenDb)?;
            }
            let state = db.open_tree("state").map_err(ManagerError::OpenDb)?;
            for key in ["~sm/last_applied", "~sm/membership"] {
                state.remove(key).map_err(ManagerError::OpenDb)?;
            }
            sraft::dedup::forget_all(&state).map_err(ManagerError::OpenDb)?;
            db.flush().map_err(ManagerError::OpenDb)?;
        }
        remove_dir_if_present(&config.data_dir.join(WAL_DIR)).map_err(ManagerError::OpenLog)?;
        let manager = Self::open(config).await?;
        manager.initialize_raft().await?;
        let nodes: Vec<Node> = manager.core.store().list()?;
        for node in nodes.iter().filter(|n| n.id != config.node_id) {
            manager
                .core
                .update::<Node>(&node.id, |n| {
                    if n.role() == NodeRole::Worker {
                        return false;
                    }
                    n.set_role(NodeRole::Worker);
                    if let Some(spec) = n.spec.as_mut() {
                        spec.set_desired_role(NodeRole::Worker);
                    }
                    n.status = Some(NodeStatus {
                        state: NodeState::Down as i32,
                        message: "removed from Raft by --force-new-cluster".into(),
                        since: now_millis(),
                        ..n.status.clone().unwrap_or_default()
                    });
                    true
                })
                .await?;
        }
        info!("forced a new single-manager cluster from the existing state");
        Ok(manager)
    }

    pub fn raft_service(&self) -> swarmr_proto::raft_server::RaftServer<RaftService> {
        swarmr_proto::raft_server::RaftServer::new(RaftService::new(self.core.clone()))
            .max_decoding_message_size(swarmr_proto::limits::MAX_RAFT_MESSAGE_BYTES)
            .max_encoding_message_size(swarmr_proto::limits::MAX_RAFT_MESSAGE_BYTES)
    }

    pub fn control_service(&self) -> ControlService {
        self.control.clone()
    }

    /// Adds this manager's metrics to a run's registry (`--http-addr`).
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        crate::observe::register(registry, self.core.clone(), self.sessions.clone());
    }

    pub fn dispatcher_service(&self) -> DispatcherService {
        DispatcherService::new(self.core.clone(), self.sessions.clone())
    }

    /// The leader-only loops; each idles while this manager follows.
    pub async fn run_controllers(&self, shutdown: tokio::sync::watch::Receiver<bool>) {
        let stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let core = || self.core.leader_only();
        let stopped = || stop(shutdown.clone());
        tokio::join!(
            dispatcher::run_health(core(), self.sessions.clone(), stopped()),
            crate::roles::run_roles(core(), stopped()),
            controller::run(
                "orchestrator",
                controller::PLACING,
                core(),
                orchestrator::run::reconcile,
                stopped()
            ),
            controller::run(
                "allocator",
                controller::AFTER_ALLOCATION,
                core(),
                allocator::run::reconcile,
                stopped()
            ),
            controller::run(
                "scheduler",
                controller::AFTER_PLACEMENT,
                core(),
                scheduler::run::reconcile,
                stopped()
            ),
            crate::secrets::fetch::keep_data_key(core(), self.keys.clone(), stopped()),
            crate::observe::watch_raft(self.core.clone(), stopped()),
        );
    }

    /// Stops Raft and flushes the database.
    pub async fn shutdown(&self) {
        let _ = self.core.raft().shutdown().await;
        let _ = self.db.flush_async().await;
    }
}

fn open_db(data_dir: &Path) -> Result<sled::Db, ManagerError> {
    sled::Config::new()
        .path(data_dir.join(DB_DIR))
        .cache_capacity(64 * 1024 * 1024)
        .open()
        .map_err(ManagerError::OpenDb)
}
