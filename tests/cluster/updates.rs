//! Rolling updates, rollbacks and health checks on real Docker. Need root and Docker (the
//! zero-loss test also VXLAN), hence `#[ignore]`. Names start with `upd-`; a test that
//! tags an image removes the tag when it ends.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

pub const IMAGE: &str = "swarmr/busybox:latest";
/// httpd answering with `$VERSION`, so a reply tells which spec served it.
pub const WEB: &str =
    "mkdir -p /www && echo $VERSION > /www/index.html && exec httpd -f -p 80 -h /www";
/// Healthy once httpd answers.
const HEALTHY: &str =
    "--health-cmd 'wget -qO- http://127.0.0.1/ >/dev/null' --health-interval 500ms --health-retries 2";

/// A local tag of the test image, removed on drop.
struct Tag(String);

impl Tag {
    fn new(name: &str) -> Tag {
        let out = Command::new("docker").args(["tag", IMAGE, name]).output();
        assert!(out.is_ok_and(|o| o.status.success()), "docker tag {name}");
        Tag(name.to_string())
    }
}

impl Drop for Tag {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", &self.0]).output();
    }
}

pub fn inspect_service(host: &str, name: &str) -> Value {
    let out = ok(&["-H", host, "service", "inspect", name]);
    let array: Value = serde_json::from_str(&out).expect("inspect JSON");
    array[0].clone()
}

pub fn first_container(host: &str, name: &str) -> String {
    let id = inspect_service(host, name)["ID"]
        .as_str()
        .expect("id")
        .to_string();
    containers(&id).into_iter().next().unwrap_or_default()
}

pub fn ps_rows(host: &str, name: &str) -> Vec<Value> {
    ok(&["-H", host, "service", "ps", name, "--format", "json"])
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn running_ids(host: &str, name: &str) -> Vec<String> {
    ps_rows(host, name)
        .into_iter()
        .filter(|r| r["DesiredState"] == "Running")
        .filter(|r| {
            r["CurrentState"]
                .as_str()
                .is_some_and(|s| s.starts_with("Running"))
        })
        .filter_map(|r| r["ID"].as_str().map(String::from))
        .collect()
}

/// One HTTP/1.0 GET through busybox nc, bounded to 2 s (busybox's `wget -T` crashes):
/// the reply's last line (the body), or `FAIL`.
fn get_script(ip: &str) -> String {
    format!(
        "r=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} 80 | tail -n 1); \
         if [ -n \"$r\" ]; then echo \"$r\"; else echo FAIL; fi"
    )
}

/// One GET from inside the container; the body, or `FAIL`.
fn get(container: &str, ip: &str) -> String {
    let script = get_script(ip);
    let out = Command::new("docker")
        .args(["exec", container, "sh", "-c", &script])
        .output()
        .expect("docker exec");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A client in a container sending a GET through `ip` every 70 ms until stopped.
struct Requests {
    child: Child,
    container: String,
}

impl Requests {
    fn start(container: &str, ip: &str) -> Requests {
        let script = format!(
            "rm -f /stop; while [ ! -e /stop ]; do {}; usleep 70000; done",
            get_script(ip)
        );
        let child = Command::new("docker")
            .args(["exec", container, "sh", "-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("docker exec");
        Requests {
            child,
            container: container.to_string(),
        }
    }

    /// Stops the loop; every reply in order.
    fn stop(self) -> Vec<String> {
        let _ = Command::new("docker")
            .args(["exec", &self.container, "touch", "/stop"])
            .output();
        let out = self.child.wait_with_output().expect("client output");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .collect()
    }
}

#[test]
#[ignore = "needs root, Docker and VXLAN"]
fn a_start_first_rollout_through_the_vip_fails_no_request() {
    let cluster =
        Cluster::init_on_hosts(&["--dispatcher-heartbeat", "500ms"]).joined(&[("h2", "worker")]);
    let m1 = cluster.nodes[0].host();
    let v2 = Tag::new("swarmr-upd-zero:v2");
    cli(&m1, "network create upd-front");
    cli(
        &m1,
        &format!(
            "service create --name upd-web --network upd-front --replicas 2 -e VERSION=v1 \
             --update-order start-first --update-monitor 1s \
             --rollback-order start-first --rollback-monitor 1s \
             {HEALTHY} {IMAGE} sh -c '{WEB}'"
        ),
    );
    create_sleeper(&m1, "upd-client", &["--network", "upd-front"]);
    let client = first_container(&m1, "upd-client");
    let vip = inspect_service(&m1, "upd-web")["Endpoint"]["VirtualIPs"][0]["Addr"]
        .as_str()
        .and_then(|a| a.split('/').next())
        .expect("a VIP")
        .to_string();
    wait_until("the VIP answers v1", || get(&client, &vip) == "v1");
    let running = ps_rows(&m1, "upd-web");
    assert!(
        running[0]["CurrentState"]
            .as_str()
            .is_some_and(|s| s.starts_with("Running (healthy)")),
        "{running:?}"
    );

    let requests = Requests::start(&client, &vip);
    std::thread::sleep(Duration::from_secs(1));
    let update = ["-H", &m1, "service", "update", "--image", &v2.0];
    ok(&[&update[..], &["--env-add", "VERSION=v2", "upd-web"]].concat());
    let after: Vec<String> = (0..10).map(|_| get(&client, &vip)).collect();
    assert!(
        after.iter().all(|r| r == "v2"),
        "after the update: {after:?}"
    );
    cli(&m1, "service rollback upd-web");
    let back: Vec<String> = (0..10).map(|_| get(&client, &vip)).collect();
    assert!(
        back.iter().all(|r| r == "v1"),
        "after the rollback: {back:?}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let replies = requests.stop();

    let failed = replies.iter().filter(|r| *r != "v1" && *r != "v2").count();
    println!("{} requests, {failed} failed", replies.len());
    assert_eq!(failed, 0, "every request answered: {replies:?}");
    assert!(replies.iter().any(|r| r == "v2"), "v2 served: {replies:?}");
    assert_eq!(replies.last().map(String::as_str), Some("v1"));
    let service = inspect_service(&m1, "upd-web");
    assert_eq!(service["UpdateStatus"]["State"], "rollback_completed");
    assert_eq!(
        service["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"],
        IMAGE
    );
    assert_eq!(
        service["PreviousSpec"]["TaskTemplate"]["ContainerSpec"]["Image"],
        v2.0.as_str()
    );
}

#[test]
#[ignore = "needs root and Docker"]
fn an_update_whose_health_check_never_passes_rolls_back_by_itself() {
    let cluster = Cluster::init(&["--dispatcher-heartbeat", "500ms"]);
    let m = cluster.nodes[0].host();
    cli(
        &m,
        &format!(
            "service create --name upd-health -e VERSION=v1 --update-failure-action rollback \
             --update-monitor 1s --restart-delay 1s {HEALTHY} {IMAGE} sh -c '{WEB}'"
        ),
    );
    let err = cli_fails(&m, "service update --health-cmd false upd-health");
    assert!(err.contains("was rolled back"), "{err}");
    assert!(err.contains("container unhealthy"), "{err}");
    let service = inspect_service(&m, "upd-health");
    let status = &service["UpdateStatus"];
    assert_eq!(status["State"], "rollback_completed");
    let message = status["Message"].as_str().unwrap_or_default();
    assert!(
        message.contains("update rolled back due to failure of task"),
        "{message}"
    );
    let check = &service["Spec"]["TaskTemplate"]["ContainerSpec"]["Healthcheck"]["Test"];
    assert_eq!(check[1], "wget -qO- http://127.0.0.1/ >/dev/null");
    wait_until("the rolled back task runs healthy", || {
        ps_rows(&m, "upd-health").first().is_some_and(|r| {
            r["CurrentState"]
                .as_str()
                .is_some_and(|s| s.starts_with("Running (healthy)"))
        })
    });
    let table = cli(&m, "service ps upd-health");
    assert!(table.contains("\\_ upd-health.1"), "history rows: {table}");
    assert!(table.contains("task: container unhealthy"), "{table}");
}

#[test]
#[ignore = "needs root and Docker"]
fn force_redeploys_an_unchanged_spec_and_a_failing_update_pauses() {
    let cluster = Cluster::init(&["--dispatcher-heartbeat", "500ms"]);
    let m = cluster.nodes[0].host();
    create_sleeper(&m, "upd-force", &["--replicas", "2"]);
    let before = running_ids(&m, "upd-force");
    assert_eq!(before.len(), 2);
    cli(&m, "service update --force upd-force");
    let after = running_ids(&m, "upd-force");
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        after.iter().all(|id| !before.contains(id)),
        "{before:?} → {after:?}"
    );
    let forced = inspect_service(&m, "upd-force");
    assert_eq!(forced["UpdateStatus"]["State"], "completed");
    assert_eq!(forced["Spec"]["TaskTemplate"]["ForceUpdate"], 1);

    let sick = [
        "-H",
        &m,
        "service",
        "update",
        "--health-cmd",
        "false",
        "--health-interval",
        "500ms",
        "--health-retries",
        "1",
        "upd-force",
    ];
    let err = fails(&sick);
    assert!(
        err.contains("update paused due to failure of task"),
        "{err}"
    );
    assert!(err.contains("container unhealthy"), "{err}");
    let paused = inspect_service(&m, "upd-force");
    assert_eq!(paused["UpdateStatus"]["State"], "paused");
    let still = running_ids(&m, "upd-force");
    assert!(
        still.iter().any(|id| after.contains(id)),
        "slot 2 kept its task: {still:?}"
    );
    let refused = cli_fails(&m, "service update --env-add A=1 --env-rm A upd-force");
    assert!(refused.contains("both name \"A\""), "{refused}");
}

#[test]
#[ignore = "needs root and Docker"]
fn rollback_without_a_previous_spec_is_refused() {
    let cluster = Cluster::init(&[]);
    let m = cluster.nodes[0].host();
    // Without -d: the test ends after the task runs, so cleanup finds its container.
    create_sleeper(&m, "upd-fresh", &[]);
    let err = cli_fails(&m, "service rollback upd-fresh");
    assert!(
        err.contains("has no previous spec to roll back to"),
        "{err}"
    );
    let err = cli_fails(&m, "service update --rollback upd-fresh");
    assert!(err.contains("has no previous spec"), "{err}");
    let mixed = [
        "-H",
        &m,
        "service",
        "update",
        "--rollback",
        "--env-add",
        "A=1",
        "upd-fresh",
    ];
    assert!(fails(&mixed).contains("--rollback takes no other change"));
}

/// The `Env` of every running container of the service, per Docker.
fn running_envs(host: &str, name: &str) -> Vec<String> {
    let id = inspect_service(host, name)["ID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    containers(&id)
        .iter()
        .map(|c| {
            let out = Command::new("docker")
                .args(["inspect", "-f", "{{json .Config.Env}}", c])
                .output()
                .expect("docker inspect");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect()
}

#[test]
#[ignore = "needs root and Docker"]
fn an_update_continues_under_a_new_leader_after_the_old_one_is_killed() {
    let mut cluster = Cluster::three_managers(&["--dispatcher-heartbeat", "500ms"]);
    let (m1, m2) = (cluster.node("m1").host(), cluster.node("m2").host());
    let flags = [
        "--replicas",
        "3",
        "--constraint",
        "node.hostname!=m1",
        "--update-delay",
        "2s",
        "--update-monitor",
        "1s",
        "-e",
        "V=1",
    ];
    create_sleeper(&m1, "upd-failover", &flags);
    cli(&m1, "service update -d --env-add V=2 upd-failover");
    wait_until("the first slot is replaced", || {
        running_envs(&m1, "upd-failover")
            .iter()
            .any(|e| e.contains("V=2"))
    });
    cluster.node("m1").kill();
    wait_until("the update completes under the new leader", || {
        run(&["-H", &m2, "service", "inspect", "upd-failover"])
            .status
            .success()
            && inspect_service(&m2, "upd-failover")["UpdateStatus"]["State"] == "completed"
    });
    wait_until("the replaced containers are gone", || {
        running_envs(&m2, "upd-failover").len() == 3
    });
    let envs = running_envs(&m2, "upd-failover");
    assert_eq!(running_ids(&m2, "upd-failover").len(), 3);
    assert!(envs.iter().all(|e| e.contains("V=2")), "{envs:?}");
}

#[test]
#[ignore = "needs root and Docker"]
fn a_global_service_rolls_node_by_node_and_rolls_back() {
    let cluster = Cluster::init(&["--dispatcher-heartbeat", "500ms"])
        .joined(&[("w1", "worker"), ("w2", "worker")]);
    let m = cluster.nodes[0].host();
    let flags = ["--mode", "global", "--stop-grace-period", "0s", "-e", "V=1"];
    create_sleeper(&m, "upd-global", &flags);
    let all_run = |v: &str| {
        let envs = running_envs(&m, "upd-global");
        envs.len() == 3 && envs.iter().all(|e| e.contains(v))
    };
    wait_until("a V=1 task on each node", || all_run("V=1"));
    // Without -d the update returns once every node runs a new task.
    cli(
        &m,
        "service update --update-order start-first --env-add V=2 upd-global",
    );
    assert_eq!(
        inspect_service(&m, "upd-global")["UpdateStatus"]["State"],
        "completed"
    );
    wait_until("only V=2 tasks, one per node", || all_run("V=2"));
    let nodes: std::collections::BTreeSet<String> = ps_rows(&m, "upd-global")
        .iter()
        .filter(|r| r["DesiredState"] == "Running")
        .map(|r| r["Node"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(nodes.len(), 3, "one new task per node: {nodes:?}");
    cli(&m, "service rollback upd-global");
    let status = &inspect_service(&m, "upd-global")["UpdateStatus"];
    assert_eq!(status["State"], "rollback_completed", "{status}");
    wait_until("V=1 again on each node", || all_run("V=1"));
}
