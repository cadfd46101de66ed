//! `/networks`: the cluster's overlay networks (swarm scope). The engine's local networks
//! (bridge, host, none) belong to each node's dockerd and are not listed here.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use bollard_stubs::models as docker;
use serde_json::{json, Value};
use swarmr_proto::control_server::Control;
use swarmr_proto::{
    CreateNetworkRequest, GetNetworkRequest, ListNetworksRequest, Network, NetworkSpec,
    PruneNetworksRequest, RemoveNetworkRequest,
};
use tonic::Request;

use super::check::{parse, refuse_unsupported};
use super::error::{ApiError, ApiResult};
use super::filters::{Filters, ListQuery};
use super::objects;
use super::DockerApi;

pub fn routes() -> Router<DockerApi> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(attach))
        .route("/networks/{id}/disconnect", post(attach))
}

const FILTERS: &[&str] = &["id", "name", "label", "driver", "scope", "type", "dangling"];

async fn list(State(api): State<DockerApi>, Query(q): Query<ListQuery>) -> ApiResult<Json<Value>> {
    let filters = Filters::parse(q.filters.as_deref(), FILTERS)?;
    let reply = api
        .control
        .list_networks(Request::new(ListNetworksRequest {}))
        .await?;
    let shown = reply
        .into_inner()
        .networks
        .iter()
        .filter(|n| matches(&filters, n))
        .map(objects::network)
        .collect();
    Ok(Json(Value::Array(shown)))
}

fn matches(filters: &Filters, network: &Network) -> bool {
    let spec = network.spec.clone().unwrap_or_default();
    let kind = if spec.ingress { "builtin" } else { "custom" };
    filters.id(&network.id)
        && filters.any("name", |n| spec.name.contains(n))
        && filters.labels(&spec.labels)
        && filters.any("driver", |d| d == "overlay")
        && filters.any("scope", |s| s == "swarm")
        && filters.any("type", |t| t == kind)
}

async fn inspect(State(api): State<DockerApi>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let reply = api
        .control
        .get_network(Request::new(GetNetworkRequest { reference: id }))
        .await?;
    let view = reply.into_inner().network.unwrap_or_default();
    let network = view
        .network
        .ok_or_else(|| ApiError::not_found("the manager returned no network"))?;
    Ok(Json(objects::network(&network)))
}

fn spec_from_docker(request: &docker::NetworkCreateRequest) -> NetworkSpec {
    let ipam = request.ipam.clone().unwrap_or_default();
    let pool = ipam
        .config
        .unwrap_or_default()
        .into_iter()
        .next()
        .unwrap_or_default();
    NetworkSpec {
        name: request.name.clone(),
        driver: request.driver.clone().unwrap_or_default(),
        labels: request.labels.clone().unwrap_or_default(),
        options: request.options.clone().unwrap_or_default(),
        attachable: request.attachable.unwrap_or(false),
        internal: request.internal.unwrap_or(false),
        subnet: pool.subnet.unwrap_or_default(),
        gateway: pool.gateway.unwrap_or_default(),
        ingress: false,
    }
}

/// What swarmr keeps of a create request, in Docker's shape (for the check).
fn kept(spec: &NetworkSpec, sent: &docker::NetworkCreateRequest) -> Value {
    let mut pool = json!({});
    if !spec.subnet.is_empty() {
        pool["Subnet"] = json!(spec.subnet);
    }
    if !spec.gateway.is_empty() {
        pool["Gateway"] = json!(spec.gateway);
    }
    json!({
        "Name": spec.name,
        "Driver": spec.driver,
        // Every swarmr network is swarm-scoped, as Docker's overlays are.
        "Scope": sent.scope.as_deref().filter(|s| *s == "swarm"),
        "Labels": spec.labels,
        "Options": spec.options,
        "Attachable": spec.attachable,
        "Internal": spec.internal,
        "IPAM": {
            "Driver": sent.ipam.as_ref().and_then(|i| i.driver.as_deref()).filter(|d| *d == "default"),
            "Config": if pool == json!({}) { json!([]) } else { json!([pool]) },
        },
        // Deprecated; a swarm refuses duplicate names whatever it says.
        "CheckDuplicate": true,
    })
}

async fn create(State(api): State<DockerApi>, body: Bytes) -> ApiResult<(StatusCode, Json<Value>)> {
    let (request, sent): (docker::NetworkCreateRequest, Value) = parse(&body)?;
    let spec = spec_from_docker(&request);
    refuse_unsupported("network", &sent, &kept(&spec, &request))?;
    if !matches!(spec.driver.as_str(), "overlay" | "") || request.driver.is_none() {
        return Err(ApiError::bad_request(format!(
            "network {}: driver {:?} is not available on a swarmr manager: it makes swarm-scoped overlay networks; use `docker network create -d overlay`",
            spec.name,
            request.driver.as_deref().unwrap_or("bridge")
        )));
    }
    let reply = api
        .control
        .create_network(Request::new(CreateNetworkRequest { spec: Some(spec) }))
        .await?;
    let network = reply.into_inner().network.unwrap_or_default();
    let answer = docker::NetworkCreateResponse {
        id: network.id,
        warning: String::new(),
    };
    Ok((StatusCode::CREATED, Json(objects::json(&answer))))
}

async fn remove(State(api): State<DockerApi>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    api.control
        .remove_network(Request::new(RemoveNetworkRequest { reference: id }))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn prune(State(api): State<DockerApi>) -> ApiResult<Json<Value>> {
    let reply = api
        .control
        .prune_networks(Request::new(PruneNetworksRequest {}))
        .await?;
    Ok(Json(
        json!({ "NetworksDeleted": reply.into_inner().removed }),
    ))
}

async fn attach() -> ApiError {
    ApiError::unsupported(
        "containers are not connected to overlay networks by hand; a service's tasks join the networks of its spec",
    )
}
