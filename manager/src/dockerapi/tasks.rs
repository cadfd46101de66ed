//! `/tasks` (filters id, name, label, service, node, desired-state) and
//! `/services/{id}/logs`, in Docker's multiplexed stream format.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;
use swarmr_proto::control_server::Control;
use swarmr_proto::{ListTasksRequest, ServiceLogsRequest, ServiceView, TaskState, TaskView};
use tokio_stream::StreamExt;
use tonic::Request;

use super::error::{ApiError, ApiResult};
use super::filters::{Filters, ListQuery};
use super::nodes::truthy;
use super::{objects, DockerApi};

pub fn routes() -> Router<DockerApi> {
    Router::new()
        .route("/tasks", get(list))
        .route("/tasks/{id}", get(inspect))
}

/// `_up-to-date` is Docker's own (the CLI's progress display uses it): tasks of the
/// service's current spec.
const FILTERS: &[&str] = &[
    "id",
    "name",
    "label",
    "service",
    "node",
    "desired-state",
    "_up-to-date",
];

impl DockerApi {
    async fn tasks_of(&self, service: &ServiceView) -> ApiResult<Vec<TaskView>> {
        let id = service.service.as_ref().map_or("", |s| s.id.as_str());
        let request = ListTasksRequest {
            service: id.to_string(),
        };
        let reply = self.control.list_tasks(Request::new(request)).await?;
        Ok(reply.into_inner().tasks)
    }

    /// Every task of every service, with the service it belongs to.
    async fn all_tasks(&self) -> ApiResult<Vec<(ServiceView, TaskView)>> {
        let mut all = Vec::new();
        for service in self.services().await? {
            for task in self.tasks_of(&service).await? {
                all.push((service.clone(), task));
            }
        }
        Ok(all)
    }
}

async fn list(State(api): State<DockerApi>, Query(q): Query<ListQuery>) -> ApiResult<Json<Value>> {
    let filters = Filters::parse(q.filters.as_deref(), FILTERS)?;
    let shown = api
        .all_tasks()
        .await?
        .iter()
        .filter(|(service, task)| matches(&filters, service, task))
        .map(|(_, task)| objects::task(task))
        .collect();
    Ok(Json(Value::Array(shown)))
}

fn matches(filters: &Filters, service: &ServiceView, view: &TaskView) -> bool {
    let task = view.task.clone().unwrap_or_default();
    let service = service.service.clone().unwrap_or_default();
    let service_name = service.spec.clone().unwrap_or_default().name;
    // Docker names a task `<service>.<slot>` (or `<service>.<node id>` in global mode).
    let name = match task.slot {
        0 => format!("{service_name}.{}", task.node_id),
        slot => format!("{service_name}.{slot}"),
    };
    let desired = task.desired_state();
    filters.id(&task.id)
        && filters.any("name", |n| name.starts_with(n))
        // As swarmkit: a task's labels are its service's (`docker stack ps` filters on them).
        && filters.labels(&service.spec.clone().unwrap_or_default().labels)
        && filters.any("service", |s| {
            service.id.starts_with(s) || service_name == s
        })
        && filters.any("node", |n| {
            !task.node_id.is_empty() && (task.node_id.starts_with(n) || view.node_hostname == n)
        })
        && filters.any("_up-to-date", |_| task.spec_version == service.spec_version)
        && filters.any("desired-state", |d| match d {
            // Docker's `accepted` shows tasks meant to run that are not running yet.
            "accepted" => desired == TaskState::Running,
            other => other == desired.label(),
        })
}

async fn inspect(State(api): State<DockerApi>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let all = api.all_tasks().await?;
    let found: Vec<&TaskView> = all
        .iter()
        .map(|(_, t)| t)
        .filter(|t| t.task.as_ref().is_some_and(|t| t.id.starts_with(&id)))
        .collect();
    match found.as_slice() {
        [one] => Ok(Json(objects::task(one))),
        [] => Err(ApiError::not_found(format!("task {id} not found"))),
        _ => Err(ApiError::bad_request(format!(
            "task {id} is ambiguous: use more of the id"
        ))),
    }
}

#[derive(Deserialize)]
pub struct LogsQuery {
    follow: Option<String>,
    tail: Option<String>,
    details: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
    timestamps: Option<String>,
}

/// Docker's stream frame: stream type (1 stdout, 2 stderr), three zero bytes, the
/// payload's length (big-endian), the payload.
fn frame(stderr: bool, payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.push(if stderr { 2 } else { 1 });
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Bytes::from(out)
}

pub async fn service_logs(
    State(api): State<DockerApi>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Response> {
    if truthy(q.timestamps.as_deref()) {
        return Err(ApiError::bad_request(
            "timestamps are not kept with swarmr's task logs: drop --timestamps",
        ));
    }
    let (want_out, want_err) = (truthy(q.stdout.as_deref()), truthy(q.stderr.as_deref()));
    if !want_out && !want_err {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let service = api.service(&id).await?;
    let ids = service.service.clone().unwrap_or_default().id;
    // The docker CLI reads the node, service and task of each line from its details.
    let nodes: HashMap<String, String> = api
        .tasks_of(&service)
        .await?
        .into_iter()
        .filter_map(|t| t.task)
        .map(|t| (t.id, t.node_id))
        .collect();
    let tail = match q.tail.as_deref() {
        None | Some("all") | Some("") => 0,
        Some(n) => n
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid tail {n:?}: a number or all")))?,
    };
    let request = ServiceLogsRequest {
        service: ids.clone(),
        follow: truthy(q.follow.as_deref()),
        tail,
    };
    let lines = api
        .control
        .service_logs(Request::new(request))
        .await?
        .into_inner();
    let details = truthy(q.details.as_deref());
    let frames = lines.filter_map(move |line| {
        let line = line.ok()?;
        if (line.stderr && !want_err) || (!line.stderr && !want_out) {
            return None;
        }
        let mut text = String::new();
        if details {
            // `<service>.<slot>.<task id>@<node>`
            let task = line.source.split('@').next()?.rsplit('.').next()?;
            let node = nodes.get(task).map_or("", String::as_str);
            text.push_str(&format!(
                "com.docker.swarm.node.id={node},com.docker.swarm.service.id={ids},com.docker.swarm.task.id={task} "
            ));
        }
        text.push_str(&line.line);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        Some(Ok::<_, std::io::Error>(frame(line.stderr, text.as_bytes())))
    });
    let headers = [("Content-Type", "application/vnd.docker.multiplexed-stream")];
    Ok((headers, Body::from_stream(frames)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_the_stream_and_the_length() {
        let f = frame(true, b"hi\n");
        assert_eq!(&f[..8], &[2, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(&f[8..], b"hi\n");
    }
}
