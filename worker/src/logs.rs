//! The `Logs` gRPC service every node serves: the output of the containers it runs for
//! tasks. The caller (a manager, or the CLI through one) asks the node that runs the task.
//! Each line names its source `<container name>@<hostname>`, as `docker service logs` does.

use std::sync::Arc;

use futures::stream::BoxStream;
use futures::StreamExt;
use swarmr_proto::logs_server::Logs;
use swarmr_proto::{CheckNetworkReply, CheckNetworkRequest, LogLine, TaskLogsRequest};
use tonic::{Request, Response, Status};
use tracing::debug;

use crate::executor::{ContainerStatus, Executor, ExecutorError, LogStream};
use crate::network::check::NetworkCheck;

/// Where the network check comes from once networking started (it starts after the
/// gRPC port is served).
pub type CheckSlot = Arc<std::sync::OnceLock<Arc<dyn NetworkCheck>>>;

/// Serves the logs of this node's task containers, and its network check.
pub struct LogsService<E: Executor> {
    executor: Arc<E>,
    node_id: String,
    hostname: String,
    network: CheckSlot,
}

impl<E: Executor> LogsService<E> {
    pub fn new(executor: Arc<E>, node_id: impl Into<String>, hostname: impl Into<String>) -> Self {
        LogsService {
            executor,
            node_id: node_id.into(),
            hostname: hostname.into(),
            network: CheckSlot::default(),
        }
    }

    pub fn with_network_check(mut self, network: CheckSlot) -> Self {
        self.network = network;
        self
    }

    /// The task's container on this node, a running one first if there are several.
    async fn find_container(&self, task_id: &str) -> Result<ContainerStatus, Status> {
        let containers = self
            .executor
            .list(&self.node_id)
            .await
            .map_err(|err| Status::unavailable(err.report()))?;
        let mut candidates: Vec<ContainerStatus> = containers
            .into_iter()
            .filter(|c| c.task_id == task_id)
            .collect();
        candidates.sort_by_key(|c| !c.state.is_running());
        candidates.into_iter().next().ok_or_else(|| {
            Status::not_found(format!(
                "task {task_id} has no container on node {} ({}): it may run on another node, or its container was removed",
                self.node_id, self.hostname
            ))
        })
    }
}

/// A log line for the wire.
fn to_proto(source: &str, line: crate::executor::LogLine) -> LogLine {
    LogLine {
        source: source.to_string(),
        line: line.line,
        stderr: line.stream == LogStream::Stderr,
    }
}

fn to_status(err: ExecutorError) -> Status {
    if err.is_not_found() {
        Status::not_found(err.report())
    } else {
        Status::internal(err.report())
    }
}

#[tonic::async_trait]
impl<E: Executor> Logs for LogsService<E> {
    type TaskLogsStream = BoxStream<'static, Result<LogLine, Status>>;

    async fn check_network(
        &self,
        _request: Request<CheckNetworkRequest>,
    ) -> Result<Response<CheckNetworkReply>, Status> {
        let mut reply = CheckNetworkReply {
            node_id: self.node_id.clone(),
            hostname: self.hostname.clone(),
            ..Default::default()
        };
        match self.network.get() {
            None => reply.error = "overlay networking is off on this node (no netlink)".into(),
            Some(check) => {
                reply.vip_balancer = check.vip_balancer();
                reply.overlay_forwarding = check.overlay_forwarding();
                match check.check().await {
                    Ok(differences) => reply.differences = differences,
                    Err(error) => reply.error = error,
                }
            }
        }
        Ok(Response::new(reply))
    }

    /// `tail` 0 means every line.
    async fn task_logs(
        &self,
        request: Request<TaskLogsRequest>,
    ) -> Result<Response<Self::TaskLogsStream>, Status> {
        let request = request.into_inner();
        let container = self.find_container(&request.task_id).await?;
        debug!(task.id = %request.task_id, container.id = %container.container_id, follow = request.follow, "streaming logs");
        let tail = (request.tail > 0).then_some(request.tail);
        let source = format!("{}@{}", container.name, self.hostname);
        let lines = self
            .executor
            .logs(&container.container_id, request.follow, tail)
            .map(move |item| item.map(|line| to_proto(&source, line)).map_err(to_status))
            .boxed();
        Ok(Response::new(lines))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{ContainerSpec, MemoryExecutor};

    #[tokio::test]
    async fn a_task_without_a_container_here_is_not_found() {
        let exec = Arc::new(MemoryExecutor::new());
        let service = LogsService::new(exec, "n1", "host-1");
        let request = Request::new(TaskLogsRequest {
            task_id: "t9".into(),
            follow: false,
            tail: 0,
        });
        let Err(status) = service.task_logs(request).await else {
            panic!("expected NotFound");
        };
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert!(status
            .message()
            .contains("task t9 has no container on node n1 (host-1)"));
    }

    #[tokio::test]
    async fn a_task_container_streams_its_lines() {
        let exec = Arc::new(MemoryExecutor::new());
        let spec = ContainerSpec {
            name: "web.1.t1".into(),
            image: "x".into(),
            node_id: "n1".into(),
            task_id: "t1".into(),
            ..Default::default()
        };
        exec.create(&spec).await.unwrap();
        let service = LogsService::new(exec, "n1", "host-1");
        let request = Request::new(TaskLogsRequest {
            task_id: "t1".into(),
            follow: false,
            tail: 10,
        });
        let lines: Vec<_> = service
            .task_logs(request)
            .await
            .unwrap()
            .into_inner()
            .collect()
            .await;
        assert!(lines.is_empty(), "the in-memory executor prints nothing");
        let line = to_proto(
            "web.1.t1@host-1",
            crate::executor::LogLine {
                stream: LogStream::Stderr,
                line: "boom".into(),
            },
        );
        assert_eq!(line.source, "web.1.t1@host-1");
        assert!(line.stderr);
    }
}
