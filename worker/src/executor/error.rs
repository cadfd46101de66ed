//! Errors of the executor, one variant per failed step.
//!
//! A variant's text says what failed and, where there is one, what to do; the Docker
//! error underneath is its `source` (see [`ExecutorError::report`] for the whole chain).

use std::time::Duration;

/// The error type of the Docker client underneath.
pub type DockerError = bollard::errors::Error;

#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The Docker socket could not be opened or did not answer.
    #[error("connect to the Docker daemon: is dockerd running and its socket (/var/run/docker.sock or DOCKER_HOST) reachable?")]
    Connect {
        #[source]
        source: DockerError,
    },
    /// The daemon answered `/version` with something unusable.
    #[error("negotiate the Docker API version with the daemon")]
    NegotiateVersion {
        #[source]
        source: DockerError,
    },
    /// Asking whether an image is present failed for a reason other than "absent".
    #[error("inspect image {image:?}")]
    InspectImage {
        image: String,
        #[source]
        source: DockerError,
    },
    /// The image is absent and pulling it failed or timed out.
    #[error("image {image:?} not found locally and could not be pulled: {reason}; build or load it on every node")]
    ImageNotFound { image: String, reason: String },
    /// Looking for an existing container of the task failed.
    #[error("look for the container of task {task_id}")]
    FindContainer {
        task_id: String,
        #[source]
        source: DockerError,
    },
    #[error("create container {name:?} from image {image:?}")]
    CreateContainer {
        name: String,
        image: String,
        #[source]
        source: DockerError,
    },
    /// A named volume of the spec could not be created (or exists with another driver).
    #[error("create volume {name:?}")]
    CreateVolume {
        name: String,
        #[source]
        source: DockerError,
    },
    /// A bind mount's source path is missing on this node (Docker refuses the container).
    #[error("bind mount source {path:?} does not exist on this node: create it there, or constrain the service to nodes that have it")]
    BindSourceMissing { path: String },
    /// The container's name is held by a container without this node's and task's labels.
    #[error("container name {name:?} is taken by a container this node does not own: remove it (docker rm -f {name})")]
    NameTaken { name: String },
    #[error("start container {container_id}")]
    StartContainer {
        container_id: String,
        #[source]
        source: DockerError,
    },
    #[error("stop container {container_id} (grace {grace:?})")]
    StopContainer {
        container_id: String,
        grace: Duration,
        #[source]
        source: DockerError,
    },
    #[error("remove container {container_id}")]
    RemoveContainer {
        container_id: String,
        #[source]
        source: DockerError,
    },
    #[error("list the containers of node {node_id}")]
    ListContainers {
        node_id: String,
        #[source]
        source: DockerError,
    },
    #[error("inspect container {container_id}")]
    InspectContainer {
        container_id: String,
        #[source]
        source: DockerError,
    },
    /// Docker does not know the container (it was removed, or never existed).
    #[error("container {container_id} does not exist")]
    ContainerNotFound { container_id: String },
    /// The events stream failed: subscribe again and reconcile with `list`, events may be lost.
    #[error("watch container events of node {node_id}: subscribe again and reconcile with a list")]
    WatchEvents {
        node_id: String,
        #[source]
        source: DockerError,
    },
    /// An in-memory event subscriber fell behind and events were dropped.
    #[error("missed {missed} container events of node {node_id}: subscribe again and reconcile with a list")]
    EventsLagged { node_id: String, missed: u64 },
    #[error("read logs of container {container_id}")]
    ReadLogs {
        container_id: String,
        #[source]
        source: DockerError,
    },
}

impl ExecutorError {
    /// The error and its causes on one line, `step: cause: cause`, for task status messages.
    pub fn report(&self) -> String {
        crate::error::chain(self)
    }

    /// True when the error says the container does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ExecutorError::ContainerNotFound { .. })
    }
}

/// The HTTP status Docker answered with, if the error is an answer from the daemon.
pub(crate) fn status_code(err: &DockerError) -> Option<u16> {
    match err {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Docker's "no such container/image" answer.
pub(crate) fn is_not_found(err: &DockerError) -> bool {
    status_code(err) == Some(404)
}

/// Docker's "conflict" answer (name in use, removal already in progress).
pub(crate) fn is_conflict(err: &DockerError) -> bool {
    status_code(err) == Some(409)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_not_found_says_what_to_do() {
        let err = ExecutorError::ImageNotFound {
            image: "nope:latest".into(),
            reason: "no such host".into(),
        };
        assert_eq!(
            err.to_string(),
            "image \"nope:latest\" not found locally and could not be pulled: no such host; build or load it on every node"
        );
    }

    #[test]
    fn report_joins_the_chain() {
        let err = ExecutorError::StartContainer {
            container_id: "abc".into(),
            source: DockerError::DockerResponseServerError {
                status_code: 500,
                message: "exec: \"nope\": executable file not found".into(),
            },
        };
        let report = err.report();
        assert!(report.starts_with("start container abc: Docker responded with status code 500"));
        assert!(report.contains("executable file not found"));
    }

    #[test]
    fn status_codes_classify() {
        let gone = DockerError::DockerResponseServerError {
            status_code: 404,
            message: "No such container: x".into(),
        };
        assert!(is_not_found(&gone));
        assert!(!is_conflict(&gone));
        assert!(!is_not_found(&DockerError::RequestTimeoutError));
    }
}
