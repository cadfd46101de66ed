//! `/_ping`, `/version`, `/info`, `/swarm`, and the answers for what a swarmr manager does
//! not serve (containers, images, swarm init/join through Docker, secrets and configs).

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Json;
use bollard_stubs::models as docker;
use serde_json::Value;
use swarmr_proto::control_server::Control;
use swarmr_proto::{JoinTokenRequest, ListNodesRequest, NodeRole, NodeView};
use tonic::Request;

use super::error::{ApiError, ApiResult};
use super::objects::{json, time};
use super::spec::ns;
use super::{DockerApi, API_VERSION, MIN_API_VERSION};

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The VXLAN port every overlay uses.
const DATA_PATH_PORT: u32 = 4789;

pub async fn ping() -> impl IntoResponse {
    (
        [
            ("Swarm", "active/manager"),
            ("Cache-Control", "no-cache, no-store, must-revalidate"),
            ("Pragma", "no-cache"),
        ],
        "OK",
    )
}

pub async fn version() -> Json<Value> {
    let details = [
        ("ApiVersion".to_string(), API_VERSION.to_string()),
        ("MinAPIVersion".to_string(), MIN_API_VERSION.to_string()),
    ];
    Json(json(&docker::SystemVersion {
        platform: Some(docker::SystemVersionPlatform {
            name: format!("swarmr {VERSION}"),
        }),
        components: Some(vec![docker::SystemVersionComponents {
            name: "Engine".into(),
            version: VERSION.into(),
            details: Some(details.into_iter().collect()),
        }]),
        version: Some(VERSION.into()),
        api_version: Some(API_VERSION.into()),
        min_api_version: Some(MIN_API_VERSION.into()),
        os: Some(std::env::consts::OS.into()),
        arch: Some(std::env::consts::ARCH.into()),
        experimental: Some(false),
        ..Default::default()
    }))
}

impl DockerApi {
    pub(super) async fn nodes(&self) -> ApiResult<Vec<NodeView>> {
        let reply = self
            .control
            .list_nodes(Request::new(ListNodesRequest {}))
            .await?;
        Ok(reply.into_inner().nodes)
    }

    /// The cluster as `/info` and `/swarm` show it (never the CA key).
    fn cluster_spec(&self) -> ApiResult<(docker::ClusterInfo, swarmr_proto::Cluster)> {
        let cluster = self.core.cluster()?;
        let meta = cluster.meta.unwrap_or_default();
        let spec = docker::SwarmSpec {
            name: Some("default".into()),
            labels: Some(Default::default()),
            orchestration: Some(docker::SwarmSpecOrchestration {
                task_history_retention_limit: Some(5),
            }),
            raft: Some(docker::SwarmSpecRaft {
                log_entries_for_slow_followers: Some(500),
                election_tick: Some(10),
                heartbeat_tick: Some(1),
                ..Default::default()
            }),
            dispatcher: Some(docker::SwarmSpecDispatcher {
                heartbeat_period: Some(ns(cluster.heartbeat_period_ms)),
            }),
            ca_config: Some(docker::SwarmSpecCaConfig {
                node_cert_expiry: Some(ns(cluster.cert_expiry_secs.saturating_mul(1000))),
                ..Default::default()
            }),
            encryption_config: Some(docker::SwarmSpecEncryptionConfig {
                auto_lock_managers: Some(false),
            }),
            task_defaults: None,
        };
        let info = docker::ClusterInfo {
            id: Some(cluster.id.clone()),
            version: Some(docker::ObjectVersion {
                index: Some(meta.version),
            }),
            created_at: Some(time(meta.created_at)),
            updated_at: Some(time(meta.updated_at)),
            spec: Some(spec),
            tls_info: Some(docker::TlsInfo {
                trust_root: Some(cluster.ca_cert_pem.clone()),
                ..Default::default()
            }),
            root_rotation_in_progress: Some(false),
            data_path_port: Some(DATA_PATH_PORT),
            default_addr_pool: Some(cluster.default_addr_pool.clone()),
            subnet_size: Some(cluster.subnet_size),
        };
        Ok((info, cluster))
    }
}

pub async fn info(State(api): State<DockerApi>) -> ApiResult<Json<Value>> {
    let nodes = api.nodes().await?;
    let (cluster, _) = api.cluster_spec()?;
    let own = nodes
        .iter()
        .find(|v| v.is_self)
        .and_then(|v| v.node.clone());
    let own = own.unwrap_or_default();
    let description = own.description.clone().unwrap_or_default();
    let managers: Vec<docker::PeerNode> = nodes
        .iter()
        .filter_map(|v| v.node.as_ref())
        .filter(|n| n.role() == NodeRole::Manager)
        .map(|n| docker::PeerNode {
            node_id: Some(n.id.clone()),
            addr: Some(n.api_addr.clone()),
        })
        .collect();
    let swarm = docker::SwarmInfo {
        node_id: Some(api.core.node_id().to_string()),
        node_addr: Some(own.status.clone().unwrap_or_default().addr),
        local_node_state: Some(docker::LocalNodeState::ACTIVE),
        control_available: Some(true),
        error: Some(String::new()),
        nodes: Some(nodes.len() as i64),
        managers: Some(managers.len() as i64),
        remote_managers: Some(managers),
        cluster: Some(cluster),
    };
    Ok(Json(json(&docker::SystemInfo {
        id: Some(api.core.node_id().to_string()),
        containers: Some(0),
        containers_running: Some(0),
        containers_paused: Some(0),
        containers_stopped: Some(0),
        images: Some(0),
        name: Some(description.hostname.clone()),
        server_version: Some(format!("swarmr-{VERSION}")),
        operating_system: Some(format!("swarmr manager ({})", description.os)),
        os_type: Some(std::env::consts::OS.into()),
        architecture: Some(std::env::consts::ARCH.into()),
        ncpu: Some(std::thread::available_parallelism().map_or(1, |n| n.get() as i64)),
        swarm: Some(swarm),
        labels: Some(Vec::new()),
        warnings: Some(Vec::new()),
        ..Default::default()
    })))
}

pub async fn swarm(State(api): State<DockerApi>) -> ApiResult<Json<Value>> {
    let (info, _) = api.cluster_spec()?;
    let token = |role: NodeRole| {
        let control = api.control.clone();
        async move {
            let request = JoinTokenRequest {
                role: role as i32,
                rotate: false,
            };
            control
                .join_token(Request::new(request))
                .await
                .map(|r| r.into_inner().token)
        }
    };
    let tokens = docker::JoinTokens {
        worker: Some(token(NodeRole::Worker).await?),
        manager: Some(token(NodeRole::Manager).await?),
    };
    Ok(Json(json(&docker::Swarm {
        id: info.id,
        version: info.version,
        created_at: info.created_at,
        updated_at: info.updated_at,
        spec: info.spec,
        tls_info: info.tls_info,
        root_rotation_in_progress: info.root_rotation_in_progress,
        data_path_port: info.data_path_port,
        default_addr_pool: info.default_addr_pool,
        subnet_size: info.subnet_size,
        join_tokens: Some(tokens),
    })))
}

/// `docker swarm init|join|leave|update|unlock` through a swarmr manager.
pub async fn swarm_action(Path(action): Path<String>) -> ApiError {
    let what = match action.as_str() {
        "init" | "join" => "this node already runs a swarmr cluster; make or join clusters with `swarmr init` and `swarmr join`",
        "leave" => "leave with `swarmr leave` on the node that leaves",
        "update" => "cluster settings are not changed through the Docker API; rotate join tokens with `swarmr join-token --rotate worker|manager`",
        _ => "swarmr does not lock managers (no autolock)",
    };
    ApiError::unsupported(format!("docker swarm {action}: {what}"))
}

/// Listing secrets or configs: this cluster holds none (swarmr has no such objects
/// yet), which `docker stack rm` and `docker stack deploy` need to hear. Everything else
/// about them answers 501.
pub async fn unsupported(method: Method, uri: Uri) -> ApiError {
    let path = uri.path();
    let kind = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let what = match kind {
        "containers" | "images" | "exec" | "build" | "volumes" | "plugins" | "commit" => {
            format!("{kind} are the Docker engine's on each node, not the cluster's: point DOCKER_HOST at a node's dockerd for them")
        }
        "distribution" => "images are not resolved through the manager; each node pulls its own".into(),
        _ => "it serves the Docker API for swarm objects only (swarm, nodes, services, tasks, networks)".into(),
    };
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        format!("this is a swarmr manager: {method} {path} is not served: {what}"),
    )
}
