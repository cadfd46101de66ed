//! `/services`: create, list (filters id, name, label, mode), inspect, update
//! (`?version=`, `?rollback=previous`), remove, logs.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use bollard_stubs::models as docker;
use serde::Deserialize;
use serde_json::{json, Value};
use swarmr_proto::control_server::Control;
use swarmr_proto::{
    CreateServiceRequest, GetServiceRequest, ListServicesRequest, RemoveServiceRequest,
    RollbackServiceRequest, ServiceSpec, ServiceView, UpdateServiceRequest,
};
use tonic::Request;

use super::check::{parse, refuse_unsupported};
use super::error::{ApiError, ApiResult};
use super::filters::{Filters, ListQuery};
use super::nodes::parse_version;
use super::spec::{from_docker, to_docker};
use super::{objects, tasks, DockerApi};

pub fn routes() -> Router<DockerApi> {
    Router::new()
        .route("/services", get(list))
        .route("/services/create", post(create))
        .route("/services/{id}", get(inspect).delete(remove))
        .route("/services/{id}/update", post(update))
        .route("/services/{id}/logs", get(tasks::service_logs))
}

const FILTERS: &[&str] = &["id", "name", "label", "mode"];

impl DockerApi {
    pub(super) async fn services(&self) -> ApiResult<Vec<ServiceView>> {
        let reply = self
            .control
            .list_services(Request::new(ListServicesRequest {}))
            .await?;
        Ok(reply.into_inner().services)
    }

    pub(super) async fn service(&self, reference: &str) -> ApiResult<ServiceView> {
        let request = GetServiceRequest {
            reference: reference.to_string(),
        };
        let reply = self.control.get_service(Request::new(request)).await?;
        reply
            .into_inner()
            .service
            .ok_or_else(|| ApiError::not_found("the manager returned no service"))
    }
}

async fn list(State(api): State<DockerApi>, Query(q): Query<ListQuery>) -> ApiResult<Json<Value>> {
    let filters = Filters::parse(q.filters.as_deref(), FILTERS)?;
    let shown = api
        .services()
        .await?
        .iter()
        .filter(|view| matches(&filters, view))
        .map(objects::service)
        .collect();
    Ok(Json(Value::Array(shown)))
}

fn matches(filters: &Filters, view: &ServiceView) -> bool {
    let service = view.service.clone().unwrap_or_default();
    let spec = service.spec.clone().unwrap_or_default();
    let mode = if spec.global { "global" } else { "replicated" };
    filters.id(&service.id)
        && filters.any("name", |n| spec.name.starts_with(n))
        && filters.labels(&spec.labels)
        && filters.any("mode", |m| m == mode)
}

/// The Docker spec in a request body, as swarmr's spec, refusing what swarmr would lose.
fn spec_from_body(body: &[u8]) -> ApiResult<ServiceSpec> {
    let (docker_spec, mut sent): (docker::ServiceSpec, Value) = parse(body)?;
    let spec = from_docker(&docker_spec);
    // The deprecated top-level `Networks` comes back under `TaskTemplate`.
    if let Some(networks) = sent.as_object_mut().and_then(|m| m.remove("Networks")) {
        if sent.pointer("/TaskTemplate/Networks").is_none() {
            sent["TaskTemplate"]["Networks"] = networks;
        }
    }
    let kept = serde_json::to_value(to_docker(&spec)).unwrap_or_default();
    refuse_unsupported("service spec", &sent, &kept)?;
    Ok(spec)
}

async fn create(State(api): State<DockerApi>, body: Bytes) -> ApiResult<(StatusCode, Json<Value>)> {
    let spec = spec_from_body(&body)?;
    let reply = api
        .control
        .create_service(Request::new(CreateServiceRequest { spec: Some(spec) }))
        .await?;
    let service = reply.into_inner().service.unwrap_or_default();
    let answer = docker::ServiceCreateResponse {
        id: Some(service.id),
        warnings: None,
    };
    Ok((StatusCode::CREATED, Json(objects::json(&answer))))
}

async fn inspect(State(api): State<DockerApi>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(objects::service(&api.service(&id).await?)))
}

#[derive(Deserialize)]
struct UpdateQuery {
    version: Option<String>,
    rollback: Option<String>,
}

async fn update(
    State(api): State<DockerApi>,
    Path(id): Path<String>,
    Query(q): Query<UpdateQuery>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let version = parse_version(q.version.as_deref(), "service")?;
    let spec = spec_from_body(&body)?;
    let current = api.service(&id).await?.service.unwrap_or_default();
    match q.rollback.as_deref() {
        Some("previous") => {
            let stored = current.meta.unwrap_or_default().version;
            if version != stored {
                return Err(ApiError::from_update(tonic::Status::aborted(format!(
                    "update out of sequence: service {id} is at version {stored}, not {version}"
                ))));
            }
            let request = RollbackServiceRequest {
                reference: current.id,
            };
            api.control.rollback_service(Request::new(request)).await?;
        }
        Some("") | None => {
            let request = UpdateServiceRequest {
                reference: current.id,
                spec: Some(spec),
                version,
            };
            api.control
                .update_service(Request::new(request))
                .await
                .map_err(ApiError::from_update)?;
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unrecognized rollback option {other}: use previous"
            )))
        }
    }
    Ok(Json(json!({ "Warnings": [] })))
}

async fn remove(State(api): State<DockerApi>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    api.control
        .remove_service(Request::new(RemoveServiceRequest { reference: id }))
        .await?;
    Ok(StatusCode::OK)
}
