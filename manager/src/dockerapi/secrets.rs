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
    use Kind::{Config, Secret};
    Router::new()
        .route("/secrets", get(|api, q| list(api, q, Secret)))
        .route(
            "/secrets/create",
            post(|api, body| create(api, body, Secret)),
        )
        .route(
            "/secrets/{id}",
            get(|api, id| inspect(api, id, Secret)).delete(|api, id| remove(api, id, Secret)),
        )
        .route("/secrets/{id}/update", post(update))
        .route("/configs", get(|api, q| list(api, q, Config)))
        .route(
            "/configs/create",
            post(|api, body| create(api, body, Config)),
        )
        .route(
            "/configs/{id}",
            get(|api, id| inspect(api, id, Config)).delete(|api, id| remove(api, id, Config)),
        )
        .route("/configs/{id}/update", post(update))
}

/// Which of the two the endpoint serves: they differ in their Control calls and in that
/// a config's data is shown.
#[derive(Clone, Copy)]
enum Kind {
    Secret,
    Config,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Config => "config",
        }
    }
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

async fn list(
    State(api): State<DockerApi>,
    Query(q): Query<ListQuery>,
    kind: Kind,
) -> ApiResult<Json<Value>> {
    let filters = Filters::parse(q.filters.as_deref(), FILTERS)?;
    let request = Request::new(ListSecretsRequest {});
    let found: Vec<_> = match kind {
        Kind::Secret => {
            let reply = api.control.list_secrets(request).await?.into_inner();
            let secrets = reply.secrets.into_iter();
            secrets.map(|s| (s.id, s.meta, s.spec)).collect()
        }
        Kind::Config => {
            let reply = api.control.list_configs(request).await?.into_inner();
            let configs = reply.configs.into_iter();
            configs.map(|c| (c.id, c.meta, c.spec)).collect()
        }
    };
    let mut listed = Vec::new();
    for (id, meta, spec) in found {
        if !matches(&filters, &id, spec.as_ref()) {
            continue;
        }
        listed.push(match kind {
            Kind::Secret => object(&id, meta.as_ref(), spec.as_ref(), None),
            // The list carries no data; Docker's does: one inspect each.
            Kind::Config => shown(&api, kind, id).await?,
        });
    }
    Ok(Json(Value::Array(listed)))
}

async fn create(
    State(api): State<DockerApi>,
    body: Bytes,
    kind: Kind,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let request = Request::new(create_request(&body, kind.word())?);
    let id = match kind {
        Kind::Secret => {
            let reply = api.control.create_secret(request).await?.into_inner();
            reply.secret.unwrap_or_default().id
        }
        Kind::Config => {
            let reply = api.control.create_config(request).await?.into_inner();
            reply.config.unwrap_or_default().id
        }
    };
    Ok(created(id))
}

/// Docker's JSON of one secret or config, by id or name.
async fn shown(api: &DockerApi, kind: Kind, reference: String) -> ApiResult<Value> {
    let request = Request::new(SecretRequest { reference });
    Ok(match kind {
        Kind::Secret => {
            let reply = api.control.get_secret(request).await?.into_inner();
            let secret = reply.secret.unwrap_or_default();
            object(&secret.id, secret.meta.as_ref(), secret.spec.as_ref(), None)
        }
        Kind::Config => {
            let reply = api.control.get_config(request).await?.into_inner();
            let config = reply.config.unwrap_or_default();
            let data = Some(reply.data.as_slice());
            object(&config.id, config.meta.as_ref(), config.spec.as_ref(), data)
        }
    })
}

async fn inspect(
    State(api): State<DockerApi>,
    Path(id): Path<String>,
    kind: Kind,
) -> ApiResult<Json<Value>> {
    Ok(Json(shown(&api, kind, id).await?))
}

async fn remove(
    State(api): State<DockerApi>,
    Path(id): Path<String>,
    kind: Kind,
) -> ApiResult<StatusCode> {
    let request = Request::new(SecretRequest { reference: id });
    match kind {
        Kind::Secret => api.control.remove_secret(request).await?,
        Kind::Config => api.control.remove_config(request).await?,
    };
    Ok(StatusCode::NO_CONTENT)
}

async fn update() -> ApiError {
    ApiError::unsupported(
        "swarmr keeps a secret's or config's labels from create; to store a new value use `swarmr secret update NAME FILE` (or `swarmr config update`), which also rolls the services that use it",
    )
}
