//! Pure translations between the executor's vocabulary and Docker's API types.
//!
//! No IO here: `docker.rs` calls these, the unit tests below check them.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerState as DockerState,
    ContainerStateStatusEnum as S, EventMessage, HealthConfig, HealthStatusEnum, HostConfig,
    RestartPolicy, RestartPolicyNameEnum,
};

use super::types::{
    ContainerEvent, ContainerEventKind, ContainerSpec, ContainerState, ContainerStatus, Health,
    Healthcheck, LABEL_NODE, LABEL_SERVICE, LABEL_TASK,
};

/// Docker's network mode for task containers: the overlay is wired separately by netlink.
pub const NETWORK_MODE: &str = "none";

/// The body of Docker's create call for a spec: its labels, network mode none, no restarts
/// (the orchestrator restarts tasks) and no init process.
pub fn create_body(spec: &ContainerSpec) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: (!spec.command.is_empty()).then(|| spec.command.clone()),
        env: (!spec.env.is_empty()).then(|| spec.env.clone()),
        labels: Some(spec.all_labels()),
        hostname: spec.hostname.clone(),
        healthcheck: spec.healthcheck.as_ref().map(health_config),
        stop_signal: spec.stop_signal.clone(),
        host_config: Some(HostConfig {
            network_mode: Some(NETWORK_MODE.to_string()),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            init: Some(false),
            dns: (!spec.dns.is_empty()).then(|| spec.dns.clone()),
            binds: (!spec.binds.is_empty()).then(|| spec.binds.clone()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Docker's health config: durations in nanoseconds, 0 for Docker's defaults.
fn health_config(check: &Healthcheck) -> HealthConfig {
    let nanos = |d: std::time::Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    HealthConfig {
        test: (!check.test.is_empty()).then(|| check.test.clone()),
        interval: Some(nanos(check.interval)),
        timeout: Some(nanos(check.timeout)),
        start_period: Some(nanos(check.start_period)),
        retries: Some(i64::from(check.retries)),
        ..Default::default()
    }
}

/// The container's health, if it has a check.
fn health_from_docker(state: &DockerState) -> Option<Health> {
    match state.health.as_ref()?.status? {
        HealthStatusEnum::STARTING => Some(Health::Starting),
        HealthStatusEnum::HEALTHY => Some(Health::Healthy),
        HealthStatusEnum::UNHEALTHY => Some(Health::Unhealthy),
        HealthStatusEnum::NONE | HealthStatusEnum::EMPTY => None,
    }
}

/// Filters matching every container labelled with the node, and with the task if given.
pub fn label_filters(node_id: &str, task_id: Option<&str>) -> HashMap<String, Vec<String>> {
    let mut labels = vec![format!("{LABEL_NODE}={node_id}")];
    if let Some(task_id) = task_id {
        labels.push(format!("{LABEL_TASK}={task_id}"));
    }
    HashMap::from([("label".to_string(), labels)])
}

/// Filters for the node's container events that change a task's status.
pub fn event_filters(node_id: &str) -> HashMap<String, Vec<String>> {
    let mut filters = label_filters(node_id, None);
    filters.insert("type".to_string(), vec!["container".to_string()]);
    let events = ["start", "die", "oom", "destroy", "health_status"];
    filters.insert("event".to_string(), events.map(String::from).to_vec());
    filters
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
/// A reference without tag or digest means `latest` (an empty tag would pull every tag).
pub fn pull_reference(image: &str) -> (String, Option<String>) {
    if image.contains('@') {
        return (image.to_string(), None);
    }
    let name_start = image.rfind('/').map_or(0, |slash| slash + 1);
    match image[name_start..].rfind(':') {
        Some(colon) => {
            let at = name_start + colon;
            (image[..at].to_string(), Some(image[at + 1..].to_string()))
        }
        None => (image.to_string(), Some("latest".to_string())),
    }
}

/// Unix milliseconds of Docker's RFC 3339 timestamps (`2024-05-01T10:00:00.123456789Z`).
/// Docker's zero time (`0001-01-01T00:00:00Z`, "never") and malformed text give `None`.
pub fn parse_rfc3339_millis(text: &str) -> Option<u64> {
    let (date, rest) = text.split_once('T')?;
    let mut ymd = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let zone_at = rest.find(['Z', 'z', '+', '-'])?;
    let (clock, zone) = rest.split_at(zone_at);
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (parts.next()??, parts.next()??, parts.next()??);
    let millis = format!("{fraction:0<3}").get(..3)?.parse::<i64>().ok()?;
    let offset_secs = parse_zone(zone)?;
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    u64::try_from(secs.checked_mul(1000)? + millis)
        .ok()
        .filter(|&ms| ms > 0)
}

/// Seconds east of UTC of `Z` or `±hh:mm`.
fn parse_zone(zone: &str) -> Option<i64> {
    if zone.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let (hours, minutes) = zone.get(1..)?.split_once(':')?;
    Some(sign * (hours.parse::<i64>().ok()? * 3600 + minutes.parse::<i64>().ok()? * 60))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerConfig, EventActor};

    fn spec() -> ContainerSpec {
        ContainerSpec {
            name: "web.1.t1".into(),
            image: "swarmr/busybox:latest".into(),
            command: vec!["sleep".into(), "600".into()],
            env: vec!["A=1".into()],
            labels: HashMap::from([
                ("app".to_string(), "web".to_string()),
                (LABEL_NODE.to_string(), "spoofed".to_string()),
            ]),
            node_id: "n1".into(),
            service_id: "s1".into(),
            task_id: "t1".into(),
            hostname: Some("web-1".into()),
            dns: vec!["10.0.0.1".into()],
            healthcheck: None,
            stop_signal: None,
            binds: Vec::new(),
        }
    }

    #[test]
    fn health_check_and_stop_signal_reach_docker() {
        let mut spec = spec();
        assert_eq!(
            create_body(&spec).healthcheck,
            None,
            "the image's check stays"
        );
        spec.healthcheck = Some(Healthcheck {
            test: vec!["CMD-SHELL".into(), "wget -qO- http://127.0.0.1/".into()],
            interval: std::time::Duration::from_secs(2),
            retries: 3,
            ..Default::default()
        });
        spec.stop_signal = Some("SIGQUIT".into());
        let body = create_body(&spec);
        let check = body.healthcheck.unwrap();
        assert_eq!(check.test.unwrap()[0], "CMD-SHELL");
        assert_eq!(check.interval, Some(2_000_000_000));
        assert_eq!((check.timeout, check.retries), (Some(0), Some(3)));
        assert_eq!(body.stop_signal.as_deref(), Some("SIGQUIT"));
    }

    #[test]
    fn create_body_sets_labels_network_none_and_no_restart() {
        let body = create_body(&spec());
        let labels = body.labels.unwrap();
        assert_eq!(labels["app"], "web");
        assert_eq!(labels[LABEL_NODE], "n1", "our labels win over user labels");
        assert_eq!(labels[LABEL_SERVICE], "s1");
        assert_eq!(labels[LABEL_TASK], "t1");
        assert_eq!(body.cmd.unwrap(), ["sleep", "600"]);
        assert_eq!(body.env.unwrap(), ["A=1"]);
        assert_eq!(body.hostname.as_deref(), Some("web-1"));
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.dns.clone().unwrap_or_default(), ["10.0.0.1"]);
        assert_eq!(
            host.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::NO)
        );
        assert_eq!(host.init, Some(false));
    }

    #[test]
    fn empty_command_keeps_the_image_cmd() {
        let mut spec = spec();
        spec.command.clear();
        spec.env.clear();
        let body = create_body(&spec);
        assert_eq!(body.cmd, None);
        assert_eq!(body.env, None);
    }

    #[test]
    fn create_body_is_the_same_for_the_same_spec() {
        assert_eq!(create_body(&spec()), create_body(&spec()));
    }

    #[test]
    fn label_filters_select_node_and_task() {
        let filters = label_filters("n1", Some("t1"));
        assert_eq!(
            filters["label"],
            ["com.swarmr.node.id=n1", "com.swarmr.task.id=t1"]
        );
        assert_eq!(
            label_filters("n1", None)["label"],
            ["com.swarmr.node.id=n1"]
        );
        let events = event_filters("n1");
        assert_eq!(events["type"], ["container"]);
        assert_eq!(
            events["event"],
            ["start", "die", "oom", "destroy", "health_status"]
        );
    }

    fn inspect(status: S, pid: i64, exit_code: i64) -> ContainerInspectResponse {
        ContainerInspectResponse {
            id: Some("c1".into()),
            name: Some("/web.1.t1".into()),
            config: Some(ContainerConfig {
                labels: Some(spec().all_labels()),
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

    #[test]
    fn pull_reference_defaults_to_latest() {
        let table = [
            ("busybox", ("busybox", Some("latest"))),
            ("swarmr/busybox:1", ("swarmr/busybox", Some("1"))),
            ("localhost:5000/x", ("localhost:5000/x", Some("latest"))),
            ("localhost:5000/x:2", ("localhost:5000/x", Some("2"))),
            ("x@sha256:abc", ("x@sha256:abc", None)),
        ];
        for (image, (repo, tag)) in table {
            let want = (repo.to_string(), tag.map(String::from));
            assert_eq!(pull_reference(image), want, "{image}");
        }
    }

    #[test]
    fn timestamps_parse_to_unix_millis() {
        let table = [
            ("1970-01-01T00:00:01Z", Some(1000)),
            ("2024-05-01T10:00:00.123456789Z", Some(1_714_557_600_123)),
            ("2024-05-01T10:00:00.5Z", Some(1_714_557_600_500)),
            ("2024-05-01T12:00:00+02:00", Some(1_714_557_600_000)),
            ("2000-02-29T00:00:00Z", Some(951_782_400_000)),
            ("0001-01-01T00:00:00Z", None),
            ("", None),
            ("garbage", None),
        ];
        for (text, want) in table {
            assert_eq!(parse_rfc3339_millis(text), want, "{text}");
        }
    }
}
