//! Raft across three managers: leader loss, full restarts, catching up by snapshot.

use crate::util::*;

fn leader_name(host: &str) -> Option<String> {
    node_rows(host)
        .into_iter()
        .find(|r| r["ManagerStatus"] == "Leader")
        .and_then(|r| r["Hostname"].as_str().map(String::from))
}

#[test]
fn a_killed_leader_rejoins_as_a_caught_up_follower() {
    let mut cluster = Cluster::three_managers(&[]);
    let m2 = cluster.node("m2").host();
    assert_eq!(leader_name(&m2).as_deref(), Some("m1"));

    cluster.node("m1").kill();
    // A write through a survivor waits out the election, then commits.
    cli(&m2, "node update --label-add after=failover m3");
    wait_until("a new leader among the survivors", || {
        matches!(leader_name(&m2).as_deref(), Some("m2") | Some("m3"))
    });

    cluster.node("m1").restart();
    let m1 = cluster.node("m1").host();
    wait_until("the restarted manager sees the write", || {
        run(&["-H", &m1, "node", "inspect", "m3"]).status.success()
            && inspect(&m1, "m3")["Spec"]["Labels"]["after"] == "failover"
    });
    wait_until("the restarted manager is Reachable", || {
        node_row(&m2, "m1").is_some_and(|r| r["ManagerStatus"] == "Reachable")
    });
}

#[test]
fn a_full_restart_keeps_every_nodes_spec() {
    let mut cluster = Cluster::three_managers(&[]).joined(&[("w1", "worker")]);
    let m1 = cluster.node("m1").host();
    cli(
        &m1,
        "node update --label-add zone=a --availability drain w1",
    );
    cli(&m1, "node update --label-add disk=ssd m2");
    let before = node_rows(&m1);

    for node in cluster.nodes.iter_mut() {
        node.stop();
    }
    for node in cluster.nodes.iter_mut() {
        node.restart();
    }
    let m3 = cluster.node("m3").host();
    wait_until("a leader after the restart", || leader_name(&m3).is_some());
    let after = node_rows(&m3);
    assert_eq!(after.len(), before.len(), "{after:?}");
    for row in &before {
        let same = after
            .iter()
            .find(|r| r["ID"] == row["ID"])
            .expect("node kept");
        assert_eq!(same["Hostname"], row["Hostname"]);
        assert_eq!(same["Availability"], row["Availability"]);
    }
    assert_eq!(inspect(&m3, "w1")["Spec"]["Labels"]["zone"], "a");
    assert_eq!(inspect(&m3, "w1")["Spec"]["Availability"], "drain");
    assert_eq!(inspect(&m3, "m2")["Spec"]["Labels"]["disk"], "ssd");
    wait_until("every node Ready again", || {
        let rows = node_rows(&m3);
        rows.len() == 4 && rows.iter().all(|r| r["Status"] == "Ready")
    });
}

#[test]
fn new_manager_catches_up_from_a_snapshot_after_the_log_was_purged() {
    let mut cluster = Cluster::init(&["--snapshot-interval", "10"]);
    let m1 = cluster.node("m1").host();
    for i in 0..40 {
        ok(&[
            "-H",
            &m1,
            "node",
            "update",
            "--label-add",
            &format!("k{i}=v{i}"),
            "m1",
        ]);
    }
    cluster.join("m2", "manager");
    let m2 = cluster.node("m2").host();
    let labels = &inspect(&m2, "m1")["Spec"]["Labels"];
    assert_eq!(labels["k0"], "v0");
    assert_eq!(labels["k39"], "v39");
    // The data dir stays bounded: the purged log is gone from the leader's database.
    assert!(cluster.node("m1").log().contains("cluster initialised"));
}

#[test]
fn force_new_cluster_recovers_from_quorum_loss_with_the_state_kept() {
    let mut cluster = Cluster::three_managers(&[]);
    let m1 = cluster.node("m1").host();
    cli(&m1, "node update --label-add kept=yes m1");
    cluster.node("m2").kill();
    cluster.node("m3").kill();
    // One manager of three cannot commit: the write is refused within a bounded wait.
    let err = cli_fails(&m1, "node update --label-add lost=quorum m1");
    assert!(err.contains("quorum"), "{err}");

    cluster.node("m1").stop();
    cluster.node("m1").restart_with(&["--force-new-cluster"]);
    wait_until("m1 leads alone", || {
        node_row(&m1, "m1").is_some_and(|r| r["ManagerStatus"] == "Leader")
    });
    cli(&m1, "node update --label-add after=recovery m1");
    let labels = &inspect(&m1, "m1")["Spec"]["Labels"];
    assert_eq!(labels["kept"], "yes");
    assert_eq!(labels["after"], "recovery");
    for gone in ["m2", "m3"] {
        let row = node_row(&m1, gone).expect("the old managers are still listed");
        assert_eq!(row["ManagerStatus"], "", "{gone} is no longer a manager");
        assert_eq!(row["Status"], "Down");
    }

    // The old managers come back with their old logs and their old 3-voter view (a
    // quorum of it, between them): the recovered cluster must win, not be overwritten.
    cluster.node("m2").respawn();
    cluster.node("m3").respawn();
    std::thread::sleep(std::time::Duration::from_secs(6));
    let row = node_row(&m1, "m1").expect("m1 listed");
    assert_eq!(
        row["ManagerStatus"], "Leader",
        "the forced manager still leads"
    );
    cli(&m1, "node update --label-add still=writable m1");
    let labels = &inspect(&m1, "m1")["Spec"]["Labels"];
    assert_eq!(labels["after"], "recovery", "the recovered state won");
    // No split brain: the old managers do not lead a cluster of their own.
    for old in ["m2", "m3"] {
        let host = cluster.node(old).host();
        let leaders: Vec<serde_json::Value> = node_rows(&host)
            .into_iter()
            .filter(|r| r["ManagerStatus"] == "Leader" && r["Hostname"] != "m1")
            .collect();
        assert!(
            leaders.is_empty(),
            "{old} follows an old leader: {leaders:?}"
        );
    }
}
