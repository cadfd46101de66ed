//! `network check` against real kernels: a cluster that matches says so and exits 0; an
//! entry removed behind the node's back, and its published-port table, are reported by
//! node and network, and are gone from the report once the node has repaired them.

use std::process::Command;

use crate::util::*;

/// `network check`'s output (both streams) and whether it found the cluster clean.
pub(crate) fn check(host: &str) -> (bool, String) {
    let out = run(&["-H", host, "network", "check"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn sh(args: &[&str]) {
    let _ = Command::new(args[0]).args(&args[1..]).output();
}

#[test]
#[ignore = "needs root, Docker and VXLAN"]
fn network_check_reports_what_a_node_lost_until_it_is_repaired() {
    let mut cluster =
        Cluster::init_on_hosts(&["--dispatcher-heartbeat", "500ms"]).joined(&[("w1", "worker")]);
    let m1 = cluster.nodes[0].host();
    cli(&m1, "network create net");
    create_sleeper(
        &m1,
        "s",
        &["--network", "net", "--replicas", "2", "-p", "8090:80"],
    );
    wait_until("a clean check", || check(&m1).0);
    let (_, text) = check(&m1);
    assert!(
        text.contains("matches the cluster state (2 nodes)"),
        "{text}"
    );

    // m1's sandbox of `net`, and the address of the task on w1 it holds a neighbour for.
    let m1_id = inspect(&m1, "m1")["ID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let net: serde_json::Value =
        serde_json::from_str(&cli(&m1, "network inspect net")).expect("JSON");
    let vni = net[0]["Options"]["com.docker.network.driver.overlay.vxlanid_list"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let sandbox = format!("swr-{}-{vni}", &m1_id[..12]);
    let remote = net[0]["Containers"]
        .as_object()
        .into_iter()
        .flat_map(|c| c.values())
        .find(|c| c["Node"] == "w1")
        .and_then(|c| c["IPv4Address"].as_str())
        .and_then(|a| a.split('/').next())
        .unwrap_or_default()
        .to_string();
    assert!(!remote.is_empty(), "a task on w1: {net}");
    let host_ns = cluster.node("m1").netns.clone().expect("host");
    let mut seen = String::new();
    // The node repairs within seconds, so break it again until a check catches it.
    wait_until("the check reports the lost entries", || {
        sh(&[
            "ip", "-n", &sandbox, "neigh", "del", &remote, "dev", "vxlan0",
        ]);
        let netns = format!("--net=/run/netns/{host_ns}");
        sh(&[
            "nsenter",
            &netns,
            "nft",
            "delete",
            "table",
            "ip",
            "swarmr_host",
        ]);
        let (clean, text) = check(&m1);
        seen = text;
        !clean && seen.contains(&format!("add_neigh {remote}")) && seen.contains("swarmr_host")
    });
    assert!(seen.contains("m1") && seen.contains("missing"), "{seen}");
    assert!(seen.contains("differ from the cluster state"), "{seen}");
    wait_until(
        "the node repairs itself and the check is clean again",
        || check(&m1).0,
    );
}
