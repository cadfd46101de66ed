//! Pure helpers over tasks: the container a task asks for, the statuses the agent reports,
//! and the forward-only order of task states.

use std::time::Duration;

pub use swarmr_proto::convert::container_name;
use swarmr_proto::convert::{expand, TemplateValues};
use swarmr_proto::{HealthState, Task, TaskState, TaskStatus};

use crate::executor::{ContainerOptions, ContainerSpec, ContainerStatus, Health, Healthcheck};

/// What the executor should run for a task on this node (whose hostname templates
/// may name); `None` if the task carries no container spec (the manager never sends
/// such a task; it is rejected).
pub fn container_spec(task: &Task, node_id: &str, node_hostname: &str) -> Option<ContainerSpec> {
    let container = task.container.as_ref()?;
    let name = container_name(task);
    let values = TemplateValues::of(task, &name, node_id, node_hostname);
    // The manager checked the template; one that still fails is passed on as written,
    // and Docker's refusal of it fails the task with the reason.
    let hostname = expand(&container.hostname, &values).unwrap_or(container.hostname.clone());
    Some(ContainerSpec {
        name: name.clone(),
        image: container.image.clone(),
        command: container.command.clone(),
        env: container.env.clone(),
        labels: container.labels.clone().into_iter().collect(),
        node_id: node_id.to_string(),
        service_id: task.service_id.clone(),
        task_id: task.id.clone(),
        hostname: Some(hostname).filter(|h| !h.is_empty()),
        dns: Vec::new(),
        healthcheck: container.healthcheck.as_ref().map(healthcheck),
        stop_signal: Some(container.stop_signal.clone()).filter(|s| !s.is_empty()),
        binds: Vec::new(),
        options: options(container),
    })
}

/// The spec's mounts, resources and options as the executor takes them.
fn options(container: &swarmr_proto::ContainerSpec) -> ContainerOptions {
    let resources = container.resources.unwrap_or_default();
    let dns = container.dns_config.clone().unwrap_or_default();
    ContainerOptions {
        entrypoint: container.entrypoint.clone(),
        user: container.user.clone(),
        workdir: container.workdir.clone(),
        mounts: container.mounts.clone(),
        limits: resources.limits.unwrap_or_default(),
        memory_reservation: resources.reservations.unwrap_or_default().memory_bytes,
        cap_add: container.cap_add.clone(),
        cap_drop: container.cap_drop.clone(),
        sysctls: container.sysctls.clone(),
        ulimits: container.ulimits.clone(),
        read_only: container.read_only,
        init: container.init.unwrap_or(false),
        log_driver: container.log_driver.clone(),
        groups: container.groups.clone(),
        dns_search: dns.search,
        dns_options: dns.options,
        // Docker's spec keeps `ip host [aliases]`; the engine takes `host:ip` per name.
        extra_hosts: container
            .hosts
            .iter()
            .flat_map(|entry| {
                let mut words = entry.split_whitespace();
                let ip = words.next().unwrap_or_default();
                words.map(move |host| format!("{host}:{ip}"))
            })
            .collect(),
    }
}

fn healthcheck(config: &swarmr_proto::HealthConfig) -> Healthcheck {
    Healthcheck {
        test: config.test.clone(),
        interval: Duration::from_millis(config.interval_ms),
        timeout: Duration::from_millis(config.timeout_ms),
        start_period: Duration::from_millis(config.start_period_ms),
        retries: config.retries,
    }
}

/// How long the task's container gets between its stop signal and SIGKILL.
pub fn stop_grace(task: &Task, default: Duration) -> Duration {
    task.container
        .as_ref()
        .and_then(|c| c.stop_grace_period_ms)
        .map_or(default, Duration::from_millis)
}

/// The container's health as the task reports it.
pub fn health_state(container: &ContainerStatus) -> HealthState {
    match container.health {
        None => HealthState::None,
        Some(Health::Starting) => HealthState::Starting,
        Some(Health::Healthy) => HealthState::Healthy,
        Some(Health::Unhealthy) => HealthState::Unhealthy,
    }
}

/// FAILED because the container's health check failed, as Swarm says it.
pub fn unhealthy(container: &ContainerStatus) -> TaskStatus {
    let mut status = failure(TaskState::Failed, "unhealthy", "task: container unhealthy");
    status.container_id = container.container_id.clone();
    status.set_health(HealthState::Unhealthy);
    status
}

/// A status without its timestamp (set when it is reported).
pub fn status(state: TaskState, message: &str) -> TaskStatus {
    TaskStatus {
        state: state as i32,
        message: message.to_string(),
        ..Default::default()
    }
}

/// A failure status: the state, the step it happened in, and the error text.
pub fn failure(state: TaskState, message: &str, error: impl Into<String>) -> TaskStatus {
    TaskStatus {
        error: error.into(),
        ..status(state, message)
    }
}

/// RUNNING, with the container's id, its main process's PID (0 if it has none) and its
/// health.
pub fn running(container: &ContainerStatus) -> TaskStatus {
    TaskStatus {
        container_id: container.container_id.clone(),
        pid: container.pid.unwrap_or(0),
        health: health_state(container) as i32,
        ..status(TaskState::Running, "started")
    }
}

/// The end of a container that exited by itself: COMPLETE on code 0, else FAILED with the
/// code (an OOM kill says so).
pub fn exited(container: &ContainerStatus, exit_code: i64) -> TaskStatus {
    let code = i32::try_from(exit_code).unwrap_or(i32::MAX);
    let mut status = if container.oom_killed {
        failure(TaskState::Failed, "failed", "out of memory")
    } else if exit_code == 0 {
        status(TaskState::Complete, "finished")
    } else {
        failure(
            TaskState::Failed,
            "failed",
            format!("task: non-zero exit ({exit_code})"),
        )
    };
    status.container_id = container.container_id.clone();
    status.exit_code = code;
    status
}
