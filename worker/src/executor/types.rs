//! The executor's vocabulary: what to run, what is running, and what happened to it.

use std::collections::HashMap;

/// Label holding the id of the node whose worker owns the container.
pub const LABEL_NODE: &str = "com.swarmr.node.id";
/// Label holding the id of the service the container's task belongs to.
pub const LABEL_SERVICE: &str = "com.swarmr.service.id";
/// Label holding the id of the task the container runs.
pub const LABEL_TASK: &str = "com.swarmr.task.id";

/// What the worker wants running for one task.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerSpec {
    /// `<service>.<slot>.<task id>`.
    pub name: String,
    pub image: String,
    /// Empty keeps the image's `CMD`; otherwise it replaces it (the entrypoint stays).
    pub command: Vec<String>,
    /// `K=V` pairs.
    pub env: Vec<String>,
    /// User labels. The node, service and task labels are added from the ids below and
    /// win over user labels of the same name.
    pub labels: HashMap<String, String>,
    pub node_id: String,
    pub service_id: String,
    pub task_id: String,
    pub hostname: Option<String>,
    /// Nameservers for the container's resolv.conf; empty keeps Docker's default.
    pub dns: Vec<String>,
    /// `None` keeps the image's HEALTHCHECK.
    pub healthcheck: Option<Healthcheck>,
    /// `None` keeps the image's STOPSIGNAL (or SIGTERM).
    pub stop_signal: Option<String>,
    pub options: ContainerOptions,
}

/// Mounts, resources and the other options of the task's spec, with Docker's meaning;
/// empty or zero keeps the image's (or the engine's) default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerOptions {
    /// Replaces the image's ENTRYPOINT.
    pub entrypoint: Vec<String>,
    pub user: String,
    pub workdir: String,
    /// Named volumes among them are created (with their driver, options and labels)
    /// before the container, and outlive it.
    pub mounts: Vec<swarmr_proto::Mount>,
    /// `HostConfig.NanoCpus` and `Memory`.
    pub limits: swarmr_proto::Resources,
    /// `HostConfig.MemoryReservation`, a soft limit, as Swarm sets it.
    pub memory_reservation: i64,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub sysctls: HashMap<String, String>,
    pub ulimits: Vec<swarmr_proto::Ulimit>,
    pub read_only: bool,
    pub init: bool,
    pub log_driver: Option<swarmr_proto::LogDriver>,
    pub groups: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `host:ip`, as Docker's `ExtraHosts`.
    pub extra_hosts: Vec<String>,
}

/// A container health check, as Docker's `HealthConfig`: `test` empty inherits the image's
/// command (with these timings), `["NONE"]` disables it; a zero duration or retry count
/// takes Docker's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval: std::time::Duration,
    pub timeout: std::time::Duration,
    pub start_period: std::time::Duration,
    pub retries: u32,
}

/// A running container's health, as Docker reports it; `None` when it has no check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy,
}

impl ContainerSpec {
    /// The user labels plus swarmr's own, as they are set on the container.
    pub fn all_labels(&self) -> HashMap<String, String> {
        let mut labels = self.labels.clone();
        labels.insert(LABEL_NODE.to_string(), self.node_id.clone());
        labels.insert(LABEL_SERVICE.to_string(), self.service_id.clone());
        labels.insert(LABEL_TASK.to_string(), self.task_id.clone());
        labels
    }
}

/// Where a container is in its life, as Docker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    /// The main process ended with this code (137 = killed by SIGKILL).
    Exited {
        exit_code: i64,
    },
    Dead,
    /// A state this executor does not know (reported verbatim).
    Unknown(String),
}

impl ContainerState {
    /// True while the container's process exists.
    pub fn is_running(&self) -> bool {
        matches!(
            self,
            ContainerState::Running | ContainerState::Paused | ContainerState::Restarting
        )
    }
}

/// One container as seen by the executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    pub container_id: String,
    /// Without Docker's leading `/`.
    pub name: String,
    /// From the task label; empty if the container has none.
    pub task_id: String,
    /// From the service label; empty if the container has none.
    pub service_id: String,
    pub state: ContainerState,
    /// The main process's PID on the host, while it runs. It changes on every start.
    pub pid: Option<u32>,
    /// Unix milliseconds.
    pub started_at: Option<u64>,
    /// Unix milliseconds.
    pub finished_at: Option<u64>,
    pub oom_killed: bool,
    /// Docker's error for the last start attempt (e.g. executable not found).
    pub error: Option<String>,
    /// `None`: the container has no health check.
    pub health: Option<Health>,
}

/// What happened to a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerEventKind {
    Start,
    /// The main process ended; Docker reports the code as text, kept if it parses.
    Die {
        exit_code: Option<i64>,
    },
    /// The kernel's OOM killer hit the container (a `Die` follows).
    Oom,
    /// The container was removed.
    Destroy,
    /// Its health check passed or failed (a change of `Health`).
    Health,
}

/// A status change of one of this node's containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    pub container_id: String,
    /// From the task label; empty if the event carried none.
    pub task_id: String,
    pub kind: ContainerEventKind,
    /// Unix milliseconds, when Docker sent it.
    pub time: Option<u64>,
}

/// Which output a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One line of a container's output, without its trailing newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stream: LogStream,
    pub line: String,
}
