//! Joining, heartbeats, roles, leaving and removal.

use crate::util::*;

const FAST_HEARTBEAT: &[&str] = &["--dispatcher-heartbeat", "300ms"];

#[test]
fn a_stopped_worker_is_down_until_it_restarts() {
    let mut cluster = Cluster::init(FAST_HEARTBEAT).joined(&[("w1", "worker")]);
    let m1 = cluster.node("m1").host();
    cluster.node("w1").kill();
    wait_until("w1 Down", || {
        node_row(&m1, "w1").is_some_and(|r| r["Status"] == "Down")
    });
    cluster.node("w1").restart();
    wait_until("w1 Ready again", || {
        node_row(&m1, "w1").is_some_and(|r| r["Status"] == "Ready")
    });
}

#[test]
fn workers_follow_a_new_leader_without_going_down() {
    let mut cluster = Cluster::three_managers(FAST_HEARTBEAT).joined(&[("w1", "worker")]);
    cluster.node("m1").kill();
    let m2 = cluster.node("m2").host();
    wait_until("a new leader", || {
        node_rows(&m2)
            .iter()
            .any(|r| r["ManagerStatus"] == "Leader" && r["Hostname"] != "m1")
    });
    // Well past the grace period (3 x 300 ms) of the new leader: w1 must have a session.
    std::thread::sleep(std::time::Duration::from_secs(3));
    wait_until("m1 Down and w1 Ready", || {
        let rows = node_rows(&m2);
        let state = |name: &str| {
            rows.iter()
                .find(|r| r["Hostname"] == name)
                .map(|r| r["Status"].clone())
        };
        state("m1") == Some("Down".into()) && state("w1") == Some("Ready".into())
    });
}

#[test]
fn promote_then_demote_a_node() {
    let mut cluster = Cluster::init(&[]).joined(&[("w1", "worker")]);
    let m1 = cluster.node("m1").host();
    let out = cli(&m1, "node promote w1");
    assert!(out.contains("promoted to a manager"), "{out}");
    wait_until("w1 a reachable manager", || {
        node_row(&m1, "w1").is_some_and(|r| r["ManagerStatus"] == "Reachable")
    });
    // The promoted node now answers manager commands on its own socket.
    let w1 = cluster.node("w1").host();
    wait_until("w1 serves node ls", || {
        run(&["-H", &w1, "node", "ls"]).status.success()
    });

    let out = cli(&m1, "node demote w1");
    assert!(out.contains("demoted"), "{out}");
    wait_until("w1 a worker again", || {
        node_row(&m1, "w1").is_some_and(|r| r["ManagerStatus"] == "" && r["Status"] == "Ready")
    });
    wait_until("w1 refuses manager commands", || {
        cli_fails(&w1, "node ls").contains("not a manager")
    });
}

#[test]
fn worker_leaves_then_is_removed() {
    let mut cluster = Cluster::init(&[]).joined(&[("w1", "worker")]);
    let m1 = cluster.node("m1").host();
    let w1 = cluster.node("w1").host();
    let err = cli_fails(&m1, "node rm w1");
    assert!(err.contains("is Ready") && err.contains("--force"), "{err}");

    let out = cli(&w1, "leave");
    assert!(out.contains("left the swarm"), "{out}");
    wait_until("w1 process exits", || !cluster.node("w1").is_running());
    assert!(!cluster.node("w1").data_dir.join("node.json").exists());
    wait_until("w1 Down", || {
        node_row(&m1, "w1").is_some_and(|r| r["Status"] == "Down")
    });
    cli(&m1, "node rm w1");
    assert!(node_row(&m1, "w1").is_none());
}

#[test]
fn a_manager_leaves_raft_only_with_force() {
    let mut cluster = Cluster::init(&[]).joined(&[("m2", "manager")]);
    let m1 = cluster.node("m1").host();
    let m2 = cluster.node("m2").host();
    let err = cli_fails(&m2, "leave");
    assert!(err.contains("--force"), "{err}");
    cli(&m2, "leave --force");
    wait_until("m2 process exits", || !cluster.node("m2").is_running());
    eprintln!("M2LOG {}", cluster.node("m2").log());
    wait_until("m2 a Down worker", || {
        node_row(&m1, "m2").is_some_and(|r| r["Status"] == "Down" && r["ManagerStatus"] == "")
    });
    // The remaining manager still commits writes alone.
    cli(&m1, "node update --label-add still=writable m1");
}

#[test]
fn rotated_token_admits_no_new_node() {
    let mut cluster = Cluster::init(&[]);
    let m1 = cluster.node("m1").host();
    let old = cluster.token("worker");
    let out = cli(&m1, "join-token --rotate worker");
    assert!(
        out.contains("Successfully rotated worker join token"),
        "{out}"
    );
    let new = cluster.token("worker");
    assert_ne!(old, new);
    assert!(new.starts_with("SWMTKN-1-") && new.len() == "SWMTKN-1-".len() + 50 + 1 + 25);
    let dir = cluster.dir().join("late");
    let err = fails(&[
        "join",
        "--token",
        &old,
        "--data-dir",
        dir.to_str().expect("utf8"),
        "--listen-addr",
        "127.0.0.1:0",
        "--advertise-addr",
        "127.0.0.1",
        &cluster.nodes[0].addr(),
    ]);
    assert!(err.contains("rotated or mistyped"), "{err}");
    assert_eq!(node_rows(&m1).len(), 1);
}
