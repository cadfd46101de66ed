//! Pure translations between the executor's vocabulary and Docker's API types.
//!
//! No IO here: `docker.rs` calls these, the unit tests below check them. Layout: this
//! file (the create call, filters, pull references), `host` (mounts, resources and the
//! other host options), `status` (inspect and events), `time` (Docker's timestamps).

mod host;
mod status;
mod time;

pub use status::{event_from_message, status_from_inspect};

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, HealthConfig, HostConfig, RestartPolicy, RestartPolicyNameEnum,
};

use super::types::{ContainerSpec, Healthcheck, LABEL_NODE, LABEL_TASK};

/// Docker's network mode for task containers: the overlay is wired separately by netlink.
pub const NETWORK_MODE: &str = "none";

/// The body of Docker's create call for a spec: its labels, network mode none, no restarts
/// (the orchestrator restarts tasks), and its mounts, resources and options.
pub fn create_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let mut body = ContainerCreateBody {
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
            dns: (!spec.dns.is_empty()).then(|| spec.dns.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut host = body.host_config.take().unwrap_or_default();
    host::apply(&spec.options, &mut body, &mut host);
    body.host_config = Some(host);
    body
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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::types::LABEL_SERVICE;

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
            options: Default::default(),
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
}
