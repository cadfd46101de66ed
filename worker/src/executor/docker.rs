//! The executor over the local Docker daemon, through bollard.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::container::LogOutput;
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, EventsOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, StopContainerOptions,
};
use bollard::Docker;
use futures::stream::{self, BoxStream};
use futures::{future, StreamExt, TryStreamExt};
use tracing::{debug, info, instrument, warn};

use super::convert::{self, create_body, label_filters, status_from_inspect};
use super::error::{is_conflict, is_not_found, DockerError, ExecutorError};
use super::types::{ContainerEvent, ContainerSpec, ContainerStatus, LogLine, LogStream};
use super::{volumes, Executor};

/// How long a pull may take before the image counts as unobtainable.
pub const DEFAULT_PULL_TIMEOUT: Duration = Duration::from_secs(60);

/// bollard's own limit on a request (its default).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs tasks as containers of the local Docker daemon. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DockerExecutor {
    docker: Docker,
    engine_version: String,
    resources: swarmr_proto::Resources,
    pull_timeout: Duration,
}

impl DockerExecutor {
    /// Connects through `DOCKER_HOST` or the local socket and negotiates the API version
    /// (the daemon may be older than bollard's default version).
    pub async fn connect() -> Result<Self, ExecutorError> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(|source| ExecutorError::Connect { source })?;
        Self::with_docker(docker).await
    }

    /// Uses an already configured client, after negotiating its API version.
    pub async fn with_docker(docker: Docker) -> Result<Self, ExecutorError> {
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|source| match source {
                DockerError::APIVersionParseError {} => ExecutorError::NegotiateVersion { source },
                source => ExecutorError::Connect { source },
            })?;
        let version = docker
            .version()
            .await
            .map_err(|source| ExecutorError::Connect { source })?;
        let engine_version = version.version.unwrap_or_default();
        let info = docker
            .info()
            .await
            .map_err(|source| ExecutorError::Connect { source })?;
        // What the engine offers its containers, as Swarm's agent reports it.
        let resources = swarmr_proto::Resources {
            nano_cpus: info.ncpu.unwrap_or(0).saturating_mul(1_000_000_000),
            memory_bytes: info.mem_total.unwrap_or(0),
        };
        let api = docker.client_version();
        info!(engine.version = %engine_version, api.version = %api, cpus = info.ncpu, memory = info.mem_total, "connected to Docker");
        Ok(DockerExecutor {
            docker,
            engine_version,
            resources,
            pull_timeout: DEFAULT_PULL_TIMEOUT,
        })
    }

    /// Changes how long `prepare` waits for a pull.
    pub fn with_pull_timeout(mut self, timeout: Duration) -> Self {
        self.pull_timeout = timeout;
        self
    }

    /// Pulls an image, bounded by the pull timeout; any failure means `ImageNotFound`.
    async fn pull(&self, image: &str) -> Result<(), ExecutorError> {
        let (from_image, tag) = convert::pull_reference(image);
        let options = CreateImageOptions {
            from_image: Some(from_image),
            tag,
            ..Default::default()
        };
        let progress = self.docker.create_image(Some(options), None, None);
        let pull = progress.try_for_each(|info| {
            debug!(status = info.status.as_deref().unwrap_or(""), "pull");
            future::ready(Ok(()))
        });
        let reason = match tokio::time::timeout(self.pull_timeout, pull).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(err)) => docker_reason(&err),
            Err(_) => format!("the pull did not finish within {:?}", self.pull_timeout),
        };
        Err(ExecutorError::ImageNotFound {
            image: image.to_string(),
            reason,
        })
    }

    /// The id of the container labelled with this spec's node and task, if there is one.
    async fn find_task_container(
        &self,
        spec: &ContainerSpec,
    ) -> Result<Option<String>, ExecutorError> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(label_filters(&spec.node_id, Some(&spec.task_id))),
            ..Default::default()
        };
        let found = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|source| ExecutorError::FindContainer {
                task_id: spec.task_id.clone(),
                source,
            })?;
        if found.len() > 1 {
            warn!(
                count = found.len(),
                "several containers carry this task's label; using the first"
            );
        }
        Ok(found.into_iter().find_map(|c| c.id))
    }
}

/// The daemon's own words for a failure, without bollard's wrapping.
fn docker_reason(err: &DockerError) -> String {
    match err {
        DockerError::DockerResponseServerError { message, .. } => message.clone(),
        DockerError::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// Docker's `since` for "from now on": seconds and nanoseconds since the epoch.
fn now_since() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
}

/// A chunk of container output as lines. A line split across chunks comes out as two.
fn log_lines(output: LogOutput) -> Vec<LogLine> {
    let (stream, bytes) = match output {
        LogOutput::StdErr { message } => (LogStream::Stderr, message),
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            (LogStream::Stdout, message)
        }
        LogOutput::StdIn { .. } => return Vec::new(),
    };
    if bytes.is_empty() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    text.strip_suffix('\n')
        .unwrap_or(&text)
        .split('\n')
        .map(|line| LogLine {
            stream,
            line: line.strip_suffix('\r').unwrap_or(line).to_string(),
        })
        .collect()
}

impl Executor for DockerExecutor {
    fn engine_version(&self) -> &str {
        &self.engine_version
    }

    fn resources(&self) -> swarmr_proto::Resources {
        self.resources
    }

    #[instrument(skip_all, fields(task.id = %spec.task_id, image = %spec.image))]
    async fn prepare(&self, spec: &ContainerSpec) -> Result<(), ExecutorError> {
        match self.docker.inspect_image(&spec.image).await {
            Ok(_) => return Ok(()),
            Err(err) if is_not_found(&err) => info!("image missing, pulling it"),
            Err(source) => {
                return Err(ExecutorError::InspectImage {
                    image: spec.image.clone(),
                    source,
                })
            }
        }
        self.pull(&spec.image).await
    }

    #[instrument(skip_all, fields(task.id = %spec.task_id, container.name = %spec.name))]
    async fn create(&self, spec: &ContainerSpec) -> Result<String, ExecutorError> {
        if let Some(id) = self.find_task_container(spec).await? {
            debug!(container.id = %id, "container exists already");
            return Ok(id);
        }
        volumes::ensure_volumes(&self.docker, spec).await?;
        let options = CreateContainerOptions {
            name: Some(spec.name.clone()),
            ..Default::default()
        };
        match self
            .docker
            .create_container(Some(options), create_body(spec))
            .await
        {
            Ok(created) => {
                info!(container.id = %created.id, "created container");
                Ok(created.id)
            }
            // Another create of the same task won the race, or a stranger holds the name.
            Err(err) if is_conflict(&err) => {
                self.find_task_container(spec)
                    .await?
                    .ok_or_else(|| ExecutorError::NameTaken {
                        name: spec.name.clone(),
                    })
            }
            Err(source) => Err(match volumes::missing_bind_source(&source, spec) {
                Some(path) => ExecutorError::BindSourceMissing { path },
                None => ExecutorError::CreateContainer {
                    name: spec.name.clone(),
                    image: spec.image.clone(),
                    source,
                },
            }),
        }
    }

    #[instrument(skip_all, fields(container.id = %container_id))]
    async fn start(&self, container_id: &str) -> Result<ContainerStatus, ExecutorError> {
        match self.docker.start_container(container_id, None).await {
            Ok(()) => {}
            Err(err) if is_not_found(&err) => {
                return Err(ExecutorError::ContainerNotFound {
                    container_id: container_id.to_string(),
                })
            }
            Err(source) => {
                return Err(ExecutorError::StartContainer {
                    container_id: container_id.to_string(),
                    source,
                })
            }
        }
        let status = self.inspect(container_id).await?;
        info!(task.id = %status.task_id, pid = ?status.pid, "started container");
        Ok(status)
    }

    #[instrument(skip_all, fields(container.id = %container_id, grace = ?grace))]
    async fn stop(&self, container_id: &str, grace: Duration) -> Result<(), ExecutorError> {
        let secs = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
        let options = StopContainerOptions {
            t: Some(i32::try_from(secs).unwrap_or(i32::MAX)),
            signal: None,
        };
        // Docker answers only once the container is down: allow for the whole grace period.
        let docker = self
            .docker
            .clone()
            .with_timeout(grace.saturating_add(CLIENT_TIMEOUT));
        match docker.stop_container(container_id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(source) => Err(ExecutorError::StopContainer {
                container_id: container_id.to_string(),
                grace,
                source,
            }),
        }
    }

    #[instrument(skip_all, fields(container.id = %container_id))]
    async fn remove(&self, container_id: &str) -> Result<(), ExecutorError> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        match self
            .docker
            .remove_container(container_id, Some(options))
            .await
        {
            Ok(()) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            // Only "removal already in progress" conflicts with a forced remove.
            Err(err) if is_conflict(&err) => {
                debug!(reason = %docker_reason(&err), "removal already under way");
                Ok(())
            }
            Err(source) => Err(ExecutorError::RemoveContainer {
                container_id: container_id.to_string(),
                source,
            }),
        }
    }

    #[instrument(skip_all, fields(node.id = %node_id))]
    async fn list(&self, node_id: &str) -> Result<Vec<ContainerStatus>, ExecutorError> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(label_filters(node_id, None)),
            ..Default::default()
        };
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|source| ExecutorError::ListContainers {
                node_id: node_id.to_string(),
                source,
            })?;
        let mut statuses = Vec::with_capacity(summaries.len());
        for id in summaries.into_iter().filter_map(|c| c.id) {
            match self.inspect(&id).await {
                Ok(status) => statuses.push(status),
                Err(err) if err.is_not_found() => debug!(container.id = %id, "gone while listing"),
                Err(err) => return Err(err),
            }
        }
        statuses.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(statuses)
    }

    #[instrument(skip_all, fields(container.id = %container_id))]
    async fn inspect(&self, container_id: &str) -> Result<ContainerStatus, ExecutorError> {
        match self.docker.inspect_container(container_id, None).await {
            Ok(inspect) => Ok(status_from_inspect(container_id, &inspect)),
            Err(err) if is_not_found(&err) => Err(ExecutorError::ContainerNotFound {
                container_id: container_id.to_string(),
            }),
            Err(source) => Err(ExecutorError::InspectContainer {
                container_id: container_id.to_string(),
                source,
            }),
        }
    }

    fn events(&self, node_id: &str) -> BoxStream<'static, Result<ContainerEvent, ExecutorError>> {
        // `since` = now: the request goes out on first poll, but Docker replays what
        // happened in between, so nothing after this call is missed.
        let options = EventsOptions {
            since: Some(now_since()),
            until: None,
            filters: Some(convert::event_filters(node_id)),
        };
        let node_id = node_id.to_string();
        self.docker
            .events(Some(options))
            .filter_map(move |item| {
                future::ready(match item {
                    Ok(msg) => convert::event_from_message(&msg).map(Ok),
                    Err(source) => Some(Err(ExecutorError::WatchEvents {
                        node_id: node_id.clone(),
                        source,
                    })),
                })
            })
            .boxed()
    }

    fn logs(
        &self,
        container_id: &str,
        follow: bool,
        tail: Option<u64>,
    ) -> BoxStream<'static, Result<LogLine, ExecutorError>> {
        let options = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            tail: tail.map_or_else(|| "all".to_string(), |n| n.to_string()),
            ..Default::default()
        };
        let container_id = container_id.to_string();
        self.docker
            .logs(&container_id, Some(options))
            .flat_map(move |item| {
                let lines = match item {
                    Ok(output) => log_lines(output).into_iter().map(Ok).collect(),
                    Err(err) if is_not_found(&err) => vec![Err(ExecutorError::ContainerNotFound {
                        container_id: container_id.clone(),
                    })],
                    Err(source) => vec![Err(ExecutorError::ReadLogs {
                        container_id: container_id.clone(),
                        source,
                    })],
                };
                stream::iter(lines)
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_chunks_split_into_lines() {
        let chunk = LogOutput::StdOut {
            message: "one\ntwo\r\n".into(),
        };
        let lines: Vec<_> = log_lines(chunk).into_iter().map(|l| l.line).collect();
        assert_eq!(lines, ["one", "two"]);
        let err = log_lines(LogOutput::StdErr {
            message: "bad".into(),
        });
        assert_eq!(err[0].stream, LogStream::Stderr);
        assert!(log_lines(LogOutput::StdIn {
            message: "x".into()
        })
        .is_empty());
    }

    #[test]
    fn since_has_nanoseconds() {
        let since = now_since();
        let (secs, nanos) = since.split_once('.').unwrap();
        assert!(secs.parse::<u64>().unwrap() > 1_600_000_000);
        assert_eq!(nanos.len(), 9);
    }

    #[test]
    fn reasons_are_the_daemons_words() {
        let err = DockerError::DockerResponseServerError {
            status_code: 404,
            message: "pull access denied".into(),
        };
        assert_eq!(docker_reason(&err), "pull access denied");
    }
}
