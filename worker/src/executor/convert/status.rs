//! Docker's view of a container (inspect, events) in the executor's terms.

use bollard::models::{
    ContainerInspectResponse, ContainerState as DockerState, ContainerStateStatusEnum as S,
    EventMessage, HealthStatusEnum,
};

use super::time::parse_rfc3339_millis;
use crate::executor::types::{
    ContainerEvent, ContainerEventKind, ContainerState, ContainerStatus, Health, LABEL_SERVICE,
    LABEL_TASK,
};

/// The container's health, if it has a check.
fn health_from_docker(state: &DockerState) -> Option<Health> {
    match state.health.as_ref()?.status? {
        HealthStatusEnum::STARTING => Some(Health::Starting),
        HealthStatusEnum::HEALTHY => Some(Health::Healthy),
        HealthStatusEnum::UNHEALTHY => Some(Health::Unhealthy),
        HealthStatusEnum::NONE | HealthStatusEnum::EMPTY => None,
    }
}

/// The status of an inspected container. `queried_id` stands in if Docker omits the id.
pub fn status_from_inspect(
    queried_id: &str,
    inspect: &ContainerInspectResponse,
) -> ContainerStatus {
    let labels = inspect.config.as_ref().and_then(|c| c.labels.as_ref());
    let label = |key: &str| labels.and_then(|l| l.get(key)).cloned().unwrap_or_default();
    let default_state = DockerState::default();
    let state = inspect.state.as_ref().unwrap_or(&default_state);
    ContainerStatus {
        container_id: inspect.id.clone().unwrap_or_else(|| queried_id.to_string()),
        name: inspect
            .name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        task_id: label(LABEL_TASK),
        service_id: label(LABEL_SERVICE),
        state: state_from_docker(state),
        pid: state
            .pid
            .filter(|&pid| pid > 0)
            .and_then(|pid| u32::try_from(pid).ok()),
        started_at: state.started_at.as_deref().and_then(parse_rfc3339_millis),
        finished_at: state.finished_at.as_deref().and_then(parse_rfc3339_millis),
        oom_killed: state.oom_killed.unwrap_or(false),
        error: state.error.clone().filter(|e| !e.is_empty()),
        health: health_from_docker(state),
    }
}

/// Docker's state of a container in the executor's terms.
pub fn state_from_docker(state: &DockerState) -> ContainerState {
    match state.status {
        Some(S::CREATED) => ContainerState::Created,
        Some(S::RUNNING) => ContainerState::Running,
        Some(S::PAUSED) => ContainerState::Paused,
        Some(S::RESTARTING) => ContainerState::Restarting,
        Some(S::REMOVING) => ContainerState::Removing,
        Some(S::EXITED) => ContainerState::Exited {
            exit_code: state.exit_code.unwrap_or(0),
        },
        Some(S::DEAD) => ContainerState::Dead,
        Some(other) => ContainerState::Unknown(other.to_string()),
        None => ContainerState::Unknown(String::new()),
    }
}

/// A Docker event as a container event, or `None` for events that change no status.
pub fn event_from_message(msg: &EventMessage) -> Option<ContainerEvent> {
    let actor = msg.actor.as_ref()?;
    let attributes = actor.attributes.as_ref();
    let attribute = |key: &str| attributes.and_then(|a| a.get(key));
    let kind = match msg.action.as_deref()? {
        "start" => ContainerEventKind::Start,
        "die" => ContainerEventKind::Die {
            exit_code: attribute("exitCode").and_then(|c| c.parse().ok()),
        },
        "oom" => ContainerEventKind::Oom,
        "destroy" => ContainerEventKind::Destroy,
        action if action.starts_with("health_status") => ContainerEventKind::Health,
        _ => return None,
    };
    let time = match (msg.time_nano, msg.time) {
        (Some(nanos), _) if nanos > 0 => u64::try_from(nanos / 1_000_000).ok(),
        (_, Some(secs)) => u64::try_from(secs.saturating_mul(1000)).ok(),
        _ => None,
    };
    Some(ContainerEvent {
        container_id: actor.id.clone()?,
        task_id: attribute(LABEL_TASK).cloned().unwrap_or_default(),
        kind,
        time,
    })
}

/// Splits an image reference into the `fromImage` and `tag` of Docker's pull call.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::types::LABEL_NODE;
    use bollard::models::{ContainerConfig, EventActor};
    use std::collections::HashMap;

    fn inspect(status: S, pid: i64, exit_code: i64) -> ContainerInspectResponse {
        ContainerInspectResponse {
            id: Some("c1".into()),
            name: Some("/web.1.t1".into()),
            config: Some(ContainerConfig {
                labels: Some(HashMap::from([
                    (LABEL_NODE.to_string(), "n1".to_string()),
                    (LABEL_SERVICE.to_string(), "s1".to_string()),
                    (LABEL_TASK.to_string(), "t1".to_string()),
                ])),
                ..Default::default()
            }),
            state: Some(DockerState {
                status: Some(status),
                pid: Some(pid),
                exit_code: Some(exit_code),
                oom_killed: Some(false),
                error: Some(String::new()),
                started_at: Some("2024-05-01T10:00:00.123456789Z".into()),
                finished_at: Some("0001-01-01T00:00:00Z".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn running_container_maps_to_running_with_pid() {
        let status = status_from_inspect("q", &inspect(S::RUNNING, 4242, 0));
        assert_eq!(status.container_id, "c1");
        assert_eq!(status.name, "web.1.t1");
        assert_eq!(status.task_id, "t1");
        assert_eq!(status.service_id, "s1");
        assert_eq!(status.state, ContainerState::Running);
        assert_eq!(status.pid, Some(4242));
        assert_eq!(status.started_at, Some(1_714_557_600_123));
        assert_eq!(status.finished_at, None, "Docker's zero time means never");
        assert_eq!(status.error, None);
    }

    #[test]
    fn states_map_one_to_one() {
        let table = [
            (S::CREATED, 0, ContainerState::Created, None),
            (S::RUNNING, 7, ContainerState::Running, Some(7)),
            (
                S::EXITED,
                0,
                ContainerState::Exited { exit_code: 137 },
                None,
            ),
            (S::DEAD, 0, ContainerState::Dead, None),
            (S::PAUSED, 7, ContainerState::Paused, Some(7)),
            (S::REMOVING, 0, ContainerState::Removing, None),
        ];
        for (docker, pid, want, want_pid) in table {
            let status = status_from_inspect("q", &inspect(docker, pid, 137));
            assert_eq!(status.state, want, "{docker:?}");
            assert_eq!(status.pid, want_pid, "{docker:?}");
        }
    }

    #[test]
    fn missing_parts_do_not_panic() {
        let status = status_from_inspect("q", &ContainerInspectResponse::default());
        assert_eq!(status.container_id, "q");
        assert_eq!(status.task_id, "");
        assert_eq!(status.state, ContainerState::Unknown(String::new()));
    }

    fn message(action: &str, attributes: &[(&str, &str)]) -> EventMessage {
        let attributes = attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EventMessage {
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some("c1".into()),
                attributes: Some(attributes),
            }),
            time: Some(1_714_557_600),
            time_nano: Some(1_714_557_600_500_000_000),
            ..Default::default()
        }
    }

    #[test]
    fn events_map_to_kinds() {
        let die = event_from_message(&message("die", &[("exitCode", "137"), (LABEL_TASK, "t1")]));
        let die = die.unwrap();
        assert_eq!(
            die.kind,
            ContainerEventKind::Die {
                exit_code: Some(137)
            }
        );
        assert_eq!(die.task_id, "t1");
        assert_eq!(die.container_id, "c1");
        assert_eq!(die.time, Some(1_714_557_600_500));
        let start = event_from_message(&message("start", &[])).unwrap();
        assert_eq!(start.kind, ContainerEventKind::Start);
        assert_eq!(start.task_id, "");
        assert_eq!(
            event_from_message(&message("oom", &[])).unwrap().kind,
            ContainerEventKind::Oom
        );
        assert_eq!(
            event_from_message(&message("destroy", &[])).unwrap().kind,
            ContainerEventKind::Destroy
        );
        assert_eq!(event_from_message(&message("exec_create: sh", &[])), None);
        assert_eq!(event_from_message(&EventMessage::default()), None);
    }
}
