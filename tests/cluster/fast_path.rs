//! The overlay's BPF fast path, seen as a user would: by default a sandbox forwards unicast
//! frames past its bridge, so tasks on two hosts keep talking even with the bridge port of
//! `vxlan0` disabled; with `--overlay-forwarding bridge` the same cut stops them, which
//! shows the frames took the bridge. `network check` says which runs on each node. Needs
//! root, Docker and VXLAN.

use std::process::Command;

use serde_json::Value;

use crate::check::check;
use crate::overlay::pings;
use crate::util::*;

/// Two hosts and a task on each on network `fast`; the manager's address, the h2 task's
/// container, the m1 task's overlay address and h2's sandbox for the network.
fn a_task_on_each_host(flags: &[&str]) -> (Cluster, String, String, String, String) {
    let mut init = vec!["--dispatcher-heartbeat", "500ms"];
    init.extend_from_slice(flags);
    let mut cluster = Cluster::init_on_hosts(&init);
    cluster.join_with("h2", "worker", flags);
    let m1 = cluster.nodes[0].host();
    cli(&m1, "network create --driver overlay fast");
    // The scheduler spreads: one task per host.
    let spread = ["--network", "fast", "--replicas", "2"];
    create_sleeper(&m1, "pair", &spread);
    let mut found = None;
    wait_until("a task on each host with a container", || {
        found = task_per_host(&m1);
        found.is_some()
    });
    let (on_h2, m1_ip) = found.unwrap_or_default();
    wait_until("the h2 task pings the m1 task", || pings(&on_h2, &m1_ip));
    let inspect: Value =
        serde_json::from_str(&cli(&m1, "network inspect fast")).expect("network inspect JSON");
    let vni = inspect[0]["Options"]["com.docker.network.driver.overlay.vxlanid_list"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let h2: Value = serde_json::from_str(&cli(&m1, "node inspect h2")).expect("node JSON");
    let h2_short: String = h2[0]["ID"]
        .as_str()
        .unwrap_or_default()
        .chars()
        .take(12)
        .collect();
    (cluster, m1, on_h2, m1_ip, format!("swr-{h2_short}-{vni}"))
}

/// The h2 task's container and the m1 task's address, once both have a container.
fn task_per_host(manager: &str) -> Option<(String, String)> {
    let inspect: Value = serde_json::from_str(&cli(manager, "network inspect fast")).ok()?;
    let containers = inspect[0]["Containers"].as_object()?;
    let on = |node: &str| {
        containers
            .iter()
            .filter(|(id, c)| id.len() == 64 && c["Node"] == node)
            .find_map(|(id, c)| {
                let ip = c["IPv4Address"].as_str()?.split('/').next()?;
                Some((id.clone(), ip.to_string()))
            })
    };
    let (h2_container, _) = on("h2")?;
    let (_, m1_ip) = on("m1")?;
    Some((h2_container, m1_ip))
}

/// Disables `vxlan0`'s port on the sandbox's bridge: nothing the bridge forwards crosses
/// to or from other hosts any more (the reconcile leaves port states alone).
fn cut_the_bridge_port(sandbox: &str) {
    let status = Command::new("ip")
        .args([
            "netns", "exec", sandbox, "bridge", "link", "set", "dev", "vxlan0", "state", "0",
        ])
        .status()
        .expect("bridge");
    assert!(status.success(), "bridge link set in {sandbox}");
}

#[test]
#[ignore = "needs root, Docker and VXLAN"]
fn unicast_frames_cross_hosts_past_the_sandbox_bridge() {
    let (_cluster, m1, on_h2, m1_ip, sandbox) = a_task_on_each_host(&[]);
    cut_the_bridge_port(&sandbox);
    let answered = (0..5).filter(|_| pings(&on_h2, &m1_ip)).count();
    assert_eq!(answered, 5, "pings cross with the bridge port cut");
    wait_until("a clean check", || check(&m1).0);
    let (_, text) = check(&m1);
    assert_eq!(
        text.matches("bpf (tc ingress redirect past each sandbox's bridge)")
            .count(),
        2,
        "both nodes forward with the fast path: {text}"
    );
}

#[test]
#[ignore = "needs root, Docker and VXLAN"]
fn with_bridge_forwarding_the_frames_take_the_bridge() {
    let flags = ["--overlay-forwarding", "bridge"];
    let (_cluster, m1, on_h2, m1_ip, sandbox) = a_task_on_each_host(&flags);
    cut_the_bridge_port(&sandbox);
    assert!(
        !(0..3).any(|_| pings(&on_h2, &m1_ip)),
        "no ping crosses once the bridge port is cut"
    );
    let (_, text) = check(&m1);
    assert_eq!(
        text.matches("bridge (--overlay-forwarding bridge)").count(),
        2,
        "both nodes say they forward through the bridge: {text}"
    );
}
