//! The node daemon: `swarmr init` and `swarmr join` run it in the foreground.
//!
//! A node always runs a worker session and, while it holds the manager role, a manager
//! (Raft, Control, Dispatcher on the gRPC port). A role change (promote, demote) ends the
//! current run and starts the next one in the new role, in the same process.

mod certs;
mod identity;
mod keypair;
mod local;
mod run;
mod settings;
mod steps;

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use swarmr_manager::allocator::ipam::validate;
use swarmr_manager::ca;
use swarmr_manager::ClusterParams;
use swarmr_proto::dispatcher_client::DispatcherClient;
use swarmr_proto::{JoinRequest, NodeRole};
use tracing::{info, warn};

use crate::args::{InitArgs, JoinArgs};
use crate::observe_args::LogFormat;
use identity::Identity;
use run::Boot;
use settings::Settings;

pub use certs::write_file;

pub const SOCKET: &str = "swarmr.sock";
/// The shortest `--cert-expiry`: renewal happens half-way, and needs a few seconds.
const MIN_CERT_EXPIRY: Duration = Duration::from_secs(20);
const JOIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Logs on stderr; `--log-format json` writes one object per line, with the fields of
/// the spans it happened in (node, task, network ids).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWARMR_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,openraft=warn,sled=warn,h2=warn,tower=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}

/// Creates the data dir (0700) and takes its lock, so two nodes never share one.
fn prepare_data_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("create data dir {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restrict data dir {}", dir.display()))?;
    let lock_path = dir.join("swarmr.lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("create {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        bail!(
            "another swarmr node is running on data dir {}: stop it, or pass a different --data-dir",
            dir.display()
        );
    }
    Ok(lock)
}

/// The cluster-wide flags of `init`, checked before the data dir is touched.
fn check_init_flags(args: &InitArgs) -> anyhow::Result<()> {
    let heartbeat = args.dispatcher_heartbeat;
    if heartbeat < MIN_HEARTBEAT || heartbeat > MAX_HEARTBEAT {
        bail!("--dispatcher-heartbeat must be between {MIN_HEARTBEAT:?} and {MAX_HEARTBEAT:?}");
    }
    if args.cert_expiry < MIN_CERT_EXPIRY {
        bail!("--cert-expiry must be at least {MIN_CERT_EXPIRY:?}");
    }
    if !args.force_new_cluster {
        let pools = validate::parse_pools(&args.default_addr_pool)?;
        validate::check_pools(&pools, args.default_addr_pool_mask_length)?;
    }
    Ok(())
}

const MIN_HEARTBEAT: Duration = Duration::from_millis(100);
const MAX_HEARTBEAT: Duration = Duration::from_secs(60);

pub async fn init(args: InitArgs) -> anyhow::Result<()> {
    init_logging(args.node.observe.log_format);
    check_init_flags(&args)?;
    let settings = Settings::resolve(&args.node)?;
    let _lock = prepare_data_dir(&settings.data_dir)?;
    let existing = Identity::load(&settings.data_dir)?;
    let (identity, boot) = match existing {
        Some(identity) if args.force_new_cluster => {
            if identity.role != NodeRole::Manager {
                bail!(
                    "--force-new-cluster needs a manager's data dir; {} belongs to a worker",
                    settings.data_dir.display()
                );
            }
            warn!(node.id = %identity.node_id, "forcing a new cluster from this manager's state");
            (identity, Boot::ForceNewCluster)
        }
        Some(identity) => {
            info!(node.id = %identity.node_id, data_dir = %settings.data_dir.display(), "resuming node from its data dir");
            (identity, Boot::Resume)
        }
        None if args.force_new_cluster => bail!(
            "--force-new-cluster needs the data dir of an existing manager; {} holds no node",
            settings.data_dir.display()
        ),
        None => {
            let identity = Identity {
                node_id: ca::new_id(),
                raft_id: ca::new_raft_id(),
                cluster_id: ca::new_id(),
                role: NodeRole::Manager,
                managers: vec![settings.api_addr.clone()],
            };
            let pools = validate::parse_pools(&args.default_addr_pool)?;
            let root = create_ca(&settings, &identity, args.cert_expiry)?;
            let params = ClusterParams {
                cluster_id: identity.cluster_id.clone(),
                hostname: settings.hostname.clone(),
                engine_version: String::new(),
                heartbeat_period: args.dispatcher_heartbeat,
                default_addr_pool: pools.iter().map(ToString::to_string).collect(),
                subnet_size: u32::from(args.default_addr_pool_mask_length),
                root,
                cert_expiry: args.cert_expiry,
            };
            (identity, Boot::Bootstrap(Box::new(params)))
        }
    };
    run::run_node(settings, identity, boot).await
}

/// The cluster CA and this first manager's certificate, written to the data dir.
fn create_ca(
    settings: &Settings,
    identity: &Identity,
    cert_expiry: Duration,
) -> anyhow::Result<ca::RootCa> {
    let root = ca::RootCa::generate(&identity.cluster_id)?;
    let subject = ca::Subject {
        common_name: &identity.node_id,
        role: ca::CertRole::Manager,
        cluster_id: &identity.cluster_id,
    };
    let (cert_pem, key_pem) = root.issue_with_new_key(&subject, cert_expiry)?;
    let dir = &settings.data_dir;
    write_file(&dir.join(certs::CA_KEY), &root.key_pem, 0o600)?;
    certs::save(dir, &root.cert_pem, &cert_pem, &key_pem)?;
    Ok(root)
}

pub async fn join(args: JoinArgs) -> anyhow::Result<()> {
    init_logging(args.node.observe.log_format);
    let settings = Settings::resolve(&args.node)?;
    let _lock = prepare_data_dir(&settings.data_dir)?;
    if let Some(identity) = Identity::load(&settings.data_dir)? {
        info!(node.id = %identity.node_id, "this data dir already holds a node of the cluster; resuming it (token and manager address are not used)");
        return run::run_node(settings, identity, Boot::Resume).await;
    }
    let remote = args.remote.trim();
    if remote.parse::<std::net::SocketAddr>().is_err() {
        bail!("invalid manager address {remote:?}: use IP:PORT, e.g. 192.0.2.1:2377");
    }
    let identity = request_join(&settings, remote, &args.token).await?;
    let boot = if identity.role == NodeRole::Manager {
        Boot::JoinedManager
    } else {
        Boot::Resume
    };
    match identity.role {
        NodeRole::Manager => println!("This node joined a swarm as a manager."),
        NodeRole::Worker => println!("This node joined a swarm as a worker."),
    }
    run::run_node(settings, identity, boot).await
}

/// The key a join is attempted with, kept in the data dir until the join's outcome is
/// known: a join whose answer was lost is sent again (here, or by running the same `swarmr
/// join` again) with the same key, and the manager answers with the node it already made.
const PENDING_JOIN_KEY: &str = "join-pending.key";
const JOIN_ATTEMPTS: usize = 3;

fn pending_join_key(data_dir: &std::path::Path) -> anyhow::Result<(String, String)> {
    let path = data_dir.join(PENDING_JOIN_KEY);
    let key_pem = match std::fs::read_to_string(&path) {
        Ok(key_pem) => key_pem,
        Err(_) => {
            let (key_pem, _) = ca::new_key_and_csr()?;
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("create {}", data_dir.display()))?;
            write_file(&path, &key_pem, 0o600)?;
            key_pem
        }
    };
    let csr_pem = ca::csr_for_key(&key_pem)?;
    Ok((key_pem, csr_pem))
}

/// Sends the join, again while its outcome is unknown (no answer, the manager
/// unavailable); a refusal is final and drops the pending key.
async fn send_join(
    client: &mut DispatcherClient<tonic::transport::Channel>,
    request: JoinRequest,
    remote: &str,
    data_dir: &std::path::Path,
) -> anyhow::Result<swarmr_proto::JoinResponse> {
    let mut last = String::new();
    for attempt in 1..=JOIN_ATTEMPTS {
        match tokio::time::timeout(JOIN_TIMEOUT, client.join(request.clone())).await {
            Ok(Ok(reply)) => return Ok(reply.into_inner()),
            Ok(Err(status)) if status.code() != tonic::Code::Unavailable => {
                let _ = std::fs::remove_file(data_dir.join(PENDING_JOIN_KEY));
                // Refused: leave no data dir behind (removed only if nothing else is in it).
                let _ = std::fs::remove_dir(data_dir);
                return Err(status.into());
            }
            Ok(Err(status)) => last = status.message().to_string(),
            Err(_) => last = format!("no answer within {JOIN_TIMEOUT:?}"),
        }
        warn!(attempt, manager = %remote, reason = %last, "join outcome unknown; sending it again with the same key");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    anyhow::bail!(
        "the manager at {remote} did not answer the join ({last}); run the same `swarmr join` again: it retries with the same key, so no second node is made"
    )
}

async fn request_join(settings: &Settings, remote: &str, token: &str) -> anyhow::Result<Identity> {
    let token = token.trim();
    let Some((digest, _)) = ca::parse_token(token) else {
        bail!("malformed join token: it looks like SWMTKN-1-<50 chars>-<25 chars>; copy it from `swarmr join-token worker` on a manager");
    };
    // Pinned before the secret goes anywhere: a manager of another cluster never sees it.
    let ca_pem = ca::fetch_pinned_ca(remote, digest, JOIN_TIMEOUT).await?;
    let channel = ca::channel_with(ca::anonymous_client(&ca_pem)?, remote, ca::MANAGER_NAME)?;
    let (key_pem, csr_pem) = pending_join_key(&settings.data_dir)?;
    let request = JoinRequest {
        token: token.to_string(),
        hostname: settings.hostname.clone(),
        api_addr: settings.api_addr.clone(),
        engine_version: String::new(),
        os: std::env::consts::OS.into(),
        arch: std::env::consts::ARCH.into(),
        csr_pem,
    };
    let mut client = DispatcherClient::new(channel)
        .max_decoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES);
    let reply = send_join(&mut client, request, remote, &settings.data_dir).await?;
    certs::save(&settings.data_dir, &ca_pem, &reply.cert_pem, &key_pem)?;
    let _ = std::fs::remove_file(settings.data_dir.join(PENDING_JOIN_KEY));
    let mut managers: Vec<String> = reply.managers.into_iter().map(|m| m.api_addr).collect();
    if !managers.iter().any(|m| m == remote) {
        managers.push(remote.to_string());
    }
    let role = if reply.role == NodeRole::Manager as i32 {
        NodeRole::Manager
    } else {
        NodeRole::Worker
    };
    let identity = Identity {
        node_id: reply.node_id,
        raft_id: reply.raft_id,
        cluster_id: reply.cluster_id,
        role,
        managers,
    };
    Ok(identity)
}
