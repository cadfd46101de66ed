//! `/nodes`: list (filters id, name, role, membership, label, node.label), inspect,
//! update (`?version=`, the whole `NodeSpec` as Docker takes it), remove (`?force=`).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use bollard_stubs::models as docker;
use serde::Deserialize;
use serde_json::Value;
use swarmr_proto::control_server::Control;
use swarmr_proto::{
    GetNodeRequest, NodeAvailability, NodeRole, NodeView, RemoveNodeRequest, UpdateNodeRequest,
};
use tonic::Request;

use super::check::{parse, refuse_unsupported};
use super::error::{ApiError, ApiResult};
use super::filters::{Filters, ListQuery};
use super::objects;
use super::DockerApi;

pub fn routes() -> Router<DockerApi> {
    Router::new()
        .route("/nodes", get(list))
        .route("/nodes/{id}", get(inspect).delete(remove))
        .route("/nodes/{id}/update", post(update))
}

const FILTERS: &[&str] = &["id", "name", "role", "membership", "label", "node.label"];

async fn list(State(api): State<DockerApi>, Query(q): Query<ListQuery>) -> ApiResult<Json<Value>> {
    let filters = Filters::parse(q.filters.as_deref(), FILTERS)?;
    let nodes = api.nodes().await?;
    let shown = nodes
        .iter()
        .filter(|view| matches(&filters, view))
        .map(objects::node)
        .collect();
    Ok(Json(Value::Array(shown)))
}

fn matches(filters: &Filters, view: &NodeView) -> bool {
    let node = view.node.clone().unwrap_or_default();
    let spec = node.spec.clone().unwrap_or_default();
    let hostname = node.description.clone().unwrap_or_default().hostname;
    let engine_labels = HashMap::new();
    filters.id(&node.id)
        && filters.any("name", |n| hostname.starts_with(n))
        && filters.any("role", |r| r == node.role().label())
        && filters.any("membership", |m| m == "accepted")
        && filters.labels(&engine_labels)
        && filters.any("node.label", |l| match l.split_once('=') {
            Some((k, v)) => spec.labels.get(k).is_some_and(|x| x == v),
            None => spec.labels.contains_key(l),
        })
}

async fn get_node(api: &DockerApi, reference: &str) -> ApiResult<NodeView> {
    // `docker node inspect self` and `docker swarm join-token` ask for "self".
    let reference = match reference {
        "self" => api.core.node_id().to_string(),
        other => other.to_string(),
    };
    let reply = api
        .control
        .get_node(Request::new(GetNodeRequest { reference }))
        .await?;
    reply
        .into_inner()
        .node
        .ok_or_else(|| ApiError::not_found("the manager returned no node"))
}

async fn inspect(State(api): State<DockerApi>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(objects::node(&get_node(&api, &id).await?)))
}

#[derive(Deserialize)]
struct VersionQuery {
    version: Option<String>,
}

/// Docker's `?version=`: required, an unsigned number.
pub fn parse_version(raw: Option<&str>, kind: &str) -> ApiResult<u64> {
    let raw = raw.unwrap_or("");
    raw.parse()
        .map_err(|_| ApiError::bad_request(format!("invalid {kind} version '{raw}'")))
}

async fn update(
    State(api): State<DockerApi>,
    Path(id): Path<String>,
    Query(q): Query<VersionQuery>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let version = parse_version(q.version.as_deref(), "node")?;
    let (spec, sent): (docker::NodeSpec, Value) = parse(&body)?;
    let view = get_node(&api, &id).await?;
    let node = view.node.unwrap_or_default();
    let current = node.spec.clone().unwrap_or_default();
    let kept = serde_json::to_value(docker::NodeSpec {
        name: spec.name.clone().filter(|n| n.is_empty()),
        labels: spec.labels.clone(),
        role: spec.role,
        availability: spec.availability,
    })
    .unwrap_or_default();
    refuse_unsupported("node spec", &sent, &kept)?;
    let labels = spec.labels.clone().unwrap_or_default();
    let request = UpdateNodeRequest {
        reference: node.id.clone(),
        availability: spec
            .availability
            .and_then(|a| availability(a).map(|a| a as i32)),
        label_add: labels
            .iter()
            .filter(|(k, v)| current.labels.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        label_rm: current
            .labels
            .keys()
            .filter(|k| !labels.contains_key(*k))
            .cloned()
            .collect(),
        role: spec.role.and_then(|r| role(r).map(|r| r as i32)),
        version,
    };
    api.control
        .update_node(Request::new(request))
        .await
        .map_err(ApiError::from_update)?;
    Ok(Json(Value::Null))
}

fn availability(a: docker::NodeSpecAvailabilityEnum) -> Option<NodeAvailability> {
    use docker::NodeSpecAvailabilityEnum as A;
    match a {
        A::ACTIVE => Some(NodeAvailability::Active),
        A::PAUSE => Some(NodeAvailability::Pause),
        A::DRAIN => Some(NodeAvailability::Drain),
        A::EMPTY => None,
    }
}

fn role(r: docker::NodeSpecRoleEnum) -> Option<NodeRole> {
    use docker::NodeSpecRoleEnum as R;
    match r {
        R::WORKER => Some(NodeRole::Worker),
        R::MANAGER => Some(NodeRole::Manager),
        R::EMPTY => None,
    }
}

#[derive(Deserialize)]
struct ForceQuery {
    force: Option<String>,
}

/// Docker's boolean query values: `1`, `true`, `True`.
pub fn truthy(raw: Option<&str>) -> bool {
    matches!(
        raw.map(str::to_ascii_lowercase).as_deref(),
        Some("1" | "true")
    )
}

async fn remove(
    State(api): State<DockerApi>,
    Path(id): Path<String>,
    Query(q): Query<ForceQuery>,
) -> ApiResult<Json<Value>> {
    let node = get_node(&api, &id).await?.node.unwrap_or_default();
    let request = RemoveNodeRequest {
        reference: node.id,
        force: truthy(q.force.as_deref()),
    };
    api.control.remove_node(Request::new(request)).await?;
    Ok(Json(Value::Null))
}
