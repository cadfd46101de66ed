//! Health checks on real Docker: the image's HEALTHCHECK is honoured, and only healthy
//! tasks are in the discovery directory. Need root and Docker (the gating test also
//! VXLAN), hence `#[ignore]`. Names start with `hc-`; built images are removed.

use std::collections::BTreeSet;
use std::process::Command;

use crate::updates::{first_container, ps_rows, IMAGE, WEB};
use crate::util::*;

/// An image built from the test image with a HEALTHCHECK; removed on drop.
struct Built(String);

impl Built {
    fn with_healthcheck(name: &str, check: &str) -> Built {
        let dir = tempfile::tempdir().expect("tempdir");
        let dockerfile =
            format!("FROM {IMAGE}\nHEALTHCHECK --interval=500ms --retries=1 CMD {check}\n");
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).expect("Dockerfile");
        let out = Command::new("docker")
            .args(["build", "-q", "-t", name])
            .arg(dir.path())
            .output()
            .expect("docker build");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Built(name.to_string())
    }
}

impl Drop for Built {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

fn current_state(host: &str, name: &str) -> String {
    ps_rows(host, name)
        .first()
        .and_then(|r| r["CurrentState"].as_str().map(String::from))
        .unwrap_or_default()
}

#[test]
#[ignore = "needs root and Docker"]
fn the_images_failing_healthcheck_fails_tasks_until_no_healthcheck_overrides_it() {
    let image = Built::with_healthcheck("swarmr-hc-never:test", "false");
    let cluster = Cluster::init(&["--dispatcher-heartbeat", "500ms"]);
    let m = cluster.nodes[0].host();
    let create = format!(
        "service create --name hc-never --restart-delay 200ms {} sleep 600",
        image.0
    );
    let err = cli_fails(&m, &create);
    assert!(err.contains("task: container unhealthy"), "{err}");
    cli(&m, "service update --no-healthcheck hc-never");
    assert!(
        current_state(&m, "hc-never").starts_with("Running"),
        "no check: plain Running"
    );
    let table = cli(&m, "service ps hc-never");
    assert!(
        table.contains("\\_ hc-never.1"),
        "the failed tasks are history: {table}"
    );
}

/// `nslookup name` in the container: the answer addresses (empty when it fails).
fn answers(container: &str, name: &str) -> BTreeSet<String> {
    let out = Command::new("docker")
        .args(["exec", container, "nslookup", name])
        .output()
        .expect("docker exec");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let answers = text.split_once("Name:").map_or("", |(_, rest)| rest);
    answers
        .lines()
        .filter_map(|l| l.strip_prefix("Address:"))
        .map(|a| a.trim().to_string())
        .collect()
}

#[test]
#[ignore = "needs root, Docker and VXLAN"]
fn a_task_is_in_dns_only_once_its_health_check_passes() {
    let cluster = Cluster::init_on_hosts(&["--dispatcher-heartbeat", "500ms"]);
    let m1 = cluster.nodes[0].host();
    cli(&m1, "network create hc-front");
    create_sleeper(&m1, "hc-client", &["--network", "hc-front"]);
    let client = first_container(&m1, "hc-client");
    cli(
        &m1,
        &format!(
            "service create -d --name hc-web --network hc-front -e VERSION=v1 \
             --health-cmd 'test -e /www/ready' --health-interval 300ms --health-retries 1000 \
             {IMAGE} sh -c '{WEB}'"
        ),
    );
    wait_until("the task's container runs", || {
        !first_container(&m1, "hc-web").is_empty()
    });
    let web = first_container(&m1, "hc-web");
    wait_until("the task waits for its check", || {
        current_state(&m1, "hc-web").starts_with("Starting (starting)")
    });
    assert_eq!(
        answers(&client, "tasks.hc-web"),
        BTreeSet::new(),
        "not healthy: not in DNS"
    );
    let ready = Command::new("docker")
        .args(["exec", &web, "touch", "/www/ready"])
        .output()
        .expect("docker exec");
    assert!(ready.status.success());
    wait_until("the healthy task is in DNS", || {
        answers(&client, "tasks.hc-web").len() == 1
    });
    assert!(current_state(&m1, "hc-web").starts_with("Running (healthy)"));
}
