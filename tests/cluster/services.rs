//! Services on real Docker: three nodes on loopback sharing the one Docker daemon, each
//! touching only containers labelled with its own node id. Need root and Docker, hence
//! `#[ignore]`; the README's test command runs them.

use std::process::Command;

use serde_json::Value;

use crate::util::*;

const IMAGE: &str = "swarmr/busybox:latest";

pub(crate) fn node_of_container(container: &str) -> String {
    let out = Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{index .Config.Labels \"com.swarmr.node.id\"}}",
            container,
        ])
        .output()
        .expect("docker inspect");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub(crate) fn service_id(host: &str, name: &str) -> String {
    let out = ok(&["-H", host, "service", "inspect", name]);
    let v: Value = serde_json::from_str(&out).expect("inspect JSON");
    v[0]["ID"].as_str().expect("ID").to_string()
}

pub(crate) fn ps(host: &str, name: &str) -> Vec<Value> {
    ok(&["-H", host, "service", "ps", name, "--format", "json"])
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

pub(crate) fn running_tasks(host: &str, name: &str) -> Vec<Value> {
    ps(host, name)
        .into_iter()
        .filter(|t| {
            t["DesiredState"] == "Running"
                && t["CurrentState"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("Running"))
        })
        .collect()
}

/// Three nodes: a manager and two workers, fast heartbeats. Dropping the cluster removes
/// its containers, also after a failed assertion.
fn three_nodes() -> Cluster {
    Cluster::init(&["--dispatcher-heartbeat", "500ms"])
        .joined(&[("w1", "worker"), ("w2", "worker")])
}

#[test]
#[ignore = "needs root and Docker"]
fn replicas_spread_scale_and_remove() {
    let cluster = three_nodes();
    let m1 = cluster.nodes[0].host();
    // Without -d, create returns once every replica runs: the listing right after shows 3/3.
    let out = create_sleeper(&m1, "web", &["--replicas", "3"]);
    let id = service_id(&m1, "web");
    assert_eq!(out.trim(), id);
    let nodes: std::collections::BTreeSet<String> = containers(&id)
        .iter()
        .map(|c| node_of_container(c))
        .collect();
    assert_eq!(nodes.len(), 3, "one replica per node");
    let ls = cli(&m1, "service ls --format json");
    let row: Value = serde_json::from_str(ls.trim()).expect("one line");
    assert_eq!(row["Replicas"], "3/3");
    assert_eq!(row["Mode"], "replicated");

    cli(&m1, "service scale web=5");
    wait_until("5 containers", || containers(&id).len() == 5);
    cli(&m1, "service scale web=1");
    wait_until("1 container", || {
        containers(&id).len() == 1 && running_tasks(&m1, "web").len() == 1
    });
    cli(&m1, "service rm web");
    wait_until("no container", || containers(&id).is_empty());
}

#[test]
#[ignore = "needs root and Docker"]
fn a_killed_container_is_restarted_with_its_history_kept() {
    let cluster = three_nodes();
    let m1 = cluster.nodes[0].host();
    create_sleeper(&m1, "sleeper", &["--restart-delay", "0s"]);
    let id = service_id(&m1, "sleeper");
    let first = containers(&id);
    assert_eq!(first.len(), 1);
    Command::new("docker")
        .args(["kill", &first[0]])
        .output()
        .expect("docker kill");
    wait_until("a replacement container", || {
        let now = containers(&id);
        now.len() == 1 && now[0] != first[0]
    });
    wait_until("the failed task in the history", || {
        ps(&m1, "sleeper").iter().any(|t| {
            t["CurrentState"]
                .as_str()
                .is_some_and(|s| s.starts_with("Failed"))
        })
    });
}

#[test]
#[ignore = "needs root and Docker"]
fn a_dead_workers_tasks_run_elsewhere_exactly_once() {
    let mut cluster = three_nodes();
    let m1 = cluster.nodes[0].host();
    create_sleeper(&m1, "spread", &["--replicas", "3"]);
    let id = service_id(&m1, "spread");
    let w1_id = inspect(&m1, "w1")["ID"].as_str().expect("id").to_string();

    cluster.node("w1").kill();
    wait_until("w1 Down", || {
        node_row(&m1, "w1").is_some_and(|r| r["Status"] == "Down")
    });
    wait_until("3 running tasks off w1", || {
        let running = running_tasks(&m1, "spread");
        running.len() == 3 && running.iter().all(|t| t["Node"] != "w1")
    });

    cluster.node("w1").restart();
    wait_until("w1 Ready", || {
        node_row(&m1, "w1").is_some_and(|r| r["Status"] == "Ready")
    });
    // Its old container is an orphan now: the restarted worker removes it, and creates none.
    wait_until("w1 runs nothing of the service", || {
        containers(&id)
            .iter()
            .all(|c| node_of_container(c) != w1_id)
    });
    assert_eq!(containers(&id).len(), 3, "no duplicates");
}

#[test]
#[ignore = "needs root and Docker"]
fn drain_moves_tasks_and_global_runs_one_per_node() {
    let cluster = three_nodes();
    let m1 = cluster.nodes[0].host();
    create_sleeper(&m1, "everywhere", &["--mode", "global"]);
    let id = service_id(&m1, "everywhere");
    wait_until("3 global tasks", || containers(&id).len() == 3);

    create_sleeper(&m1, "movable", &["--replicas", "2"]);
    cli(&m1, "node update --availability drain w2");
    wait_until("no task on w2", || {
        running_tasks(&m1, "movable").len() == 2
            && running_tasks(&m1, "movable")
                .iter()
                .all(|t| t["Node"] != "w2")
            && running_tasks(&m1, "everywhere").len() == 2
    });
}

#[test]
#[ignore = "needs root and Docker"]
fn bad_service_requests_are_refused() {
    let cluster = three_nodes();
    let m1 = cluster.nodes[0].host();
    let err = cli_fails(&m1, "service create --name ghost swarmr/does-not-exist:1");
    assert!(err.contains("does-not-exist"), "{err}");
    // The refused service exists, with its tasks rejected: `service ps` shows why.
    assert!(!service_id(&m1, "ghost").is_empty());
    let err = fails(&["-H", &m1, "service", "create", "--network", "nope", IMAGE]);
    assert!(err.contains("network nope not found"), "{err}");
    let err = cli_fails(
        &m1,
        &format!("service create --mode global --replicas 2 {IMAGE}"),
    );
    assert!(err.contains("--replicas"), "{err}");
    let err = cli_fails(&m1, "service scale nope=2");
    assert!(err.contains("not found"), "{err}");
    let err = fails(&["-H", &m1, "service", "create", "--replicas", "-1", IMAGE]);
    assert!(!err.is_empty());
    let before = cli(&m1, "service ls -q").lines().count();
    let err = cli_fails(
        &m1,
        &format!("service create --name picky --constraint node.labels.zone==a {IMAGE} sleep 600"),
    );
    assert!(
        err.contains("no suitable node") && err.contains("node.labels.zone==a"),
        "{err}"
    );
    assert_eq!(cli(&m1, "service ls -q").lines().count(), before + 1);
    // Once a node fits, the pending task is placed.
    cli(&m1, "node update --label-add zone=a w1");
    wait_until("picky placed on w1", || {
        running_tasks(&m1, "picky")
            .iter()
            .any(|t| t["Node"] == "w1")
    });
}

#[test]
#[ignore = "needs root and Docker"]
fn logs_come_from_every_replica_on_every_node() {
    let cluster = three_nodes();
    let m1 = cluster.nodes[0].host();
    cli(
        &m1,
        &format!("service create --name talker --replicas 2 {IMAGE} sh -c 'echo hello from $(hostname); sleep 600'"),
    );

    wait_until("a line from each replica", || {
        let out = cli(&m1, "service logs talker");
        out.lines().filter(|l| l.contains("hello from")).count() == 2
            && out.lines().all(|l| l.starts_with("talker."))
    });
}

#[test]
#[ignore = "needs root and Docker"]
fn full_network_leaves_a_task_pending_with_the_reason_until_an_address_frees() {
    let cluster = three_nodes();
    let m1 = cluster.nodes[0].host();
    // A /29 has 5 addresses besides its gateway: blocker's VIP and task, full's VIP, and
    // two of full's three tasks.
    cli(&m1, "network create --subnet 10.77.0.0/29 tiny");
    create_sleeper(&m1, "blocker", &["--network", "tiny"]);
    create_sleeper(&m1, "full", &["-d", "--network", "tiny", "--replicas", "3"]);
    wait_until("2 running and one waiting for an address", || {
        running_tasks(&m1, "full").len() == 2
            && ps(&m1, "full").iter().any(|t| {
                t["Error"]
                    .as_str()
                    .is_some_and(|e| e.contains("no free address"))
            })
    });
    let err = cli_fails(&m1, "network rm tiny");
    assert!(
        err.contains("in use by service") && err.contains("full"),
        "{err}"
    );
    // Freeing addresses lets the waiting task through at once, not minutes later.
    cli(&m1, "service rm blocker");
    wait_until("all 3 running", || running_tasks(&m1, "full").len() == 3);
}

/// Every node killed at once and started again: the tasks' containers are adopted, not
/// recreated, and none runs twice.
#[test]
#[ignore = "needs root and Docker"]
fn every_node_restarted_at_once_recreates_no_container() {
    let mut cluster = three_nodes();
    let m1 = cluster.nodes[0].host();
    create_sleeper(&m1, "survivor", &["--replicas", "3"]);
    let id = service_id(&m1, "survivor");
    let before: std::collections::BTreeSet<String> = containers(&id).into_iter().collect();
    assert_eq!(before.len(), 3);

    for name in ["m1", "w1", "w2"] {
        cluster.node(name).kill();
    }
    for name in ["m1", "w1", "w2"] {
        cluster.node(name).restart();
    }
    // A killed node leaves its socket file behind: wait for answers, not for the file.
    wait_until("every node Ready and 3 tasks running", || {
        let rows = node_rows(&m1);
        rows.len() == 3
            && rows.iter().all(|r| r["Status"] == "Ready")
            && running_tasks(&m1, "survivor").len() == 3
    });
    // Give a wrong recreation time to show.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let after: std::collections::BTreeSet<String> = containers(&id).into_iter().collect();
    assert_eq!(
        after, before,
        "the same containers, none recreated or doubled"
    );
}
