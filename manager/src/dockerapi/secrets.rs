//! `/secrets` and `/configs`: Docker's endpoints over swarmr's secret and config calls.
//! A secret's data is never answered; a config's is (base64), as Docker does. Docker lets
//! `update` change labels only; swarmr keeps labels from create, so `update` is refused
//! with the way to store a new value (`swarmr secret update`).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use bollard_stubs::models as docker;
use serde_json::{json, Value};
use swarmr_proto::control_server::Control;
use swarmr_proto::{CreateSecretRequest, ListSecretsRequest, Meta, SecretRequest, SecretSpec};
use tonic::Request;

use super::check::{parse, refuse_unsupported};
use super::error::{ApiError, ApiResult};
use super::filters::{Filters, ListQuery};
use super::objects::time;
use super::DockerApi;

pub fn routes() -> Router<DockerApi> {
    Router::new()
        .route("/secrets", get(list_secrets))
        .route("/secrets/create", post(create_secret))
        .route("/secrets/{id}", get(inspect_secret).delete(remove_secret))
        .route("/secrets/{id}/update", post(update))
        .route("/configs", get(list_configs))
        .route("/configs/create", post(create_config))
        .route("/configs/{id}", get(inspect_config).delete(remove_config))
        .route("/configs/{id}/update", post(update))
}

const FILTERS: &[&str] = &["id", "name", "label", "names"];

/// Docker's JSON for a secret or config; `data` only for configs.
fn object(id: &str, meta: Option<&Meta>, spec: Option<&SecretSpec>, data: Option<&[u8]>) -> Value {
    let meta = meta.cloned().unwrap_or_default();
    let spec = spec.cloned().unwrap_or_default();
    let mut shown = json!({
        "ID": id,
        "Version": { "Index": meta.version },
        "CreatedAt": time(meta.created_at),
        "UpdatedAt": time(meta.updated_at),
        "Spec": { "Name": spec.name, "Labels": spec.labels },
    });
    if let Some(data) = data {
        shown["Spec"]["Data"] = json!(base64::engine::general_purpose::STANDARD.encode(data));
    }
    shown
}

fn matches(filters: &Filters, id: &str, spec: Option<&SecretSpec>) -> bool {
    let spec = spec.cloned().unwrap_or_default();
    filters.id(id)
        && filters.any("name", |n| spec.name.contains(n))
        && filters.any("names", |n| spec.name == n)
        && filters.labels(&spec.labels)
}

/// A create body: the spec swarmr keeps, and the data in clear.
fn create_request(body: &Bytes, kind: &str) -> ApiResult<CreateSecretRequest> {
    let (spec, sent): (docker::SecretSpec, Value) = parse(body)?;
    let data = spec.data.clone().unwrap_or_default();
    let kept = json!({ "Name": spec.name, "Labels": spec.labels, "Data": spec.data });
    refuse_unsupported(kind, &sent, &kept)?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(data.as_bytes())
        .map_err(|e| ApiError::bad_request(format!("{kind} data is not valid base64: {e}")))?;
    Ok(CreateSecretRequest {
        spec: Some(SecretSpec {
            name: spec.name.unwrap_or_default(),
            labels: spec.labels.unwrap_or_default(),
        }),
        data,
    })
}

fn created(id: String) -> (StatusCode, Json<Value>) {
    (StatusCode::CREATED, Json(json!({ "ID": id })))
}

async fn list_secrets(
    State(api): State<DockerApi>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let filters = Filters::parse(q.filters.as_deref(), FILTERS)?;
    let reply = api
        .control
        .list_secrets(Request::new(ListSecretsRequest {}))
        .await?;
    let shown = reply
        .into_inner()
        .secrets
        .iter()
        .filter(|s| matches(&filters, &s.id, s.spec.as_ref()))
        .map(|s| object(&s.id, s.meta.as_ref(), s.spec.as_ref(), None))
        .collect();
    Ok(Json(Value::Array(shown)))
}

async fn create_secret(
    State(api): State<DockerApi>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let request = create_request(&body, "secret")?;
    let reply = api.control.create_secret(Request::new(request)).await?;
    Ok(created(reply.into_inner().secret.unwrap_or_default().id))
}

async fn inspect_secret(
    State(api): State<DockerApi>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let reply = api
        .control
        .get_secret(Request::new(SecretRequest { reference: id }))
        .await?;
    let secret = reply.into_inner().secret.unwrap_or_default();
    Ok(Json(object(
        &secret.id,
        secret.meta.as_ref(),
        secret.spec.as_ref(),
        None,
    )))
}

async fn remove_secret(
    State(api): State<DockerApi>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    api.control
        .remove_secret(Request::new(SecretRequest { reference: id }))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_configs(
    State(api): State<DockerApi>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let filters = Filters::parse(q.filters.as_deref(), FILTERS)?;
    let reply = api
        .control
        .list_configs(Request::new(ListSecretsRequest {}))
        .await?;
    let mut shown = Vec::new();
    for config in &reply.into_inner().configs {
        if !matches(&filters, &config.id, config.spec.as_ref()) {
            continue;
        }
        // The list carries no data; Docker's does: one inspect each.
        let full = api
            .control
            .get_config(Request::new(SecretRequest {
                reference: config.id.clone(),
            }))
            .await?
            .into_inner();
        shown.push(object(
            &config.id,
            config.meta.as_ref(),
            config.spec.as_ref(),
            Some(&full.data),
        ));
    }
    Ok(Json(Value::Array(shown)))
}

async fn create_config(
    State(api): State<DockerApi>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let request = create_request(&body, "config")?;
    let reply = api.control.create_config(Request::new(request)).await?;
    Ok(created(reply.into_inner().config.unwrap_or_default().id))
}

async fn inspect_config(
    State(api): State<DockerApi>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let reply = api
        .control
        .get_config(Request::new(SecretRequest { reference: id }))
        .await?;
    let reply = reply.into_inner();
    let config = reply.config.unwrap_or_default();
    Ok(Json(object(
        &config.id,
        config.meta.as_ref(),
        config.spec.as_ref(),
        Some(&reply.data),
    )))
}

async fn remove_config(
    State(api): State<DockerApi>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    api.control
        .remove_config(Request::new(SecretRequest { reference: id }))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn update() -> ApiError {
    ApiError::unsupported(
        "swarmr keeps a secret's or config's labels from create; to store a new value use `swarmr secret update NAME FILE` (or `swarmr config update`), which also rolls the services that use it",
    )
}
