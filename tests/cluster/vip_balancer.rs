//! Which way a node balances VIPs, seen as a user would: with the BPF socket load balancer
//! (the default where it loads) a client container holds no NAT rule, yet its connections
//! to a VIP spread over the service's tasks and its socket names the VIP as its peer; with
//! `--vip-balancer nftables` (the fallback) the container carries the NAT table instead.
//! `network check` says which runs on each node. Needs root, Docker and VXLAN.

use std::collections::BTreeSet;
use std::process::Command;

use crate::check::check;
use crate::discovery::{http_get, web_and_client_on_front};
use crate::util::*;

/// The nftables ruleset of a container's namespace.
fn ruleset(container: &str) -> String {
    let out = Command::new("nsenter")
        .args(["-t", &pid_of(container), "-n", "nft", "list", "ruleset"])
        .output()
        .expect("nft");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The peer address a TCP socket in the container reports after connecting to `ip:80`.
fn peer_name(container: &str, ip: &str) -> String {
    let script = format!(
        "import socket; s = socket.create_connection(('{ip}', 80), 2); print(s.getpeername()[0])"
    );
    let out = Command::new("nsenter")
        .args(["-t", &pid_of(container), "-n", "python3", "-c", &script])
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Two hosts, a 3-replica web service and a client on network `front`; the client's
/// container, web's VIP and the manager's address.
fn web_and_client(flags: &[&str]) -> (Cluster, String, String, String) {
    let mut init = vec!["--dispatcher-heartbeat", "500ms"];
    init.extend_from_slice(flags);
    let mut cluster = Cluster::init_on_hosts(&init);
    cluster.join_with("h2", "worker", flags);
    let m1 = cluster.nodes[0].host();
    let (client, vip) = web_and_client_on_front(&m1);
    wait_until("the VIP answers", || !http_get(&client, &vip).is_empty());
    (cluster, m1, client, vip)
}

#[test]
#[ignore = "needs root, Docker and VXLAN"]
fn vips_balance_at_the_socket_with_no_nat_rule_in_the_container() {
    let (_cluster, m1, client, vip) = web_and_client(&[]);
    let replicas: BTreeSet<String> = (0..30).map(|_| http_get(&client, &vip)).collect();
    assert_eq!(
        replicas.len(),
        3,
        "30 requests reach 3 replicas: {replicas:?}"
    );
    assert!(
        !replicas.contains(""),
        "every request answered: {replicas:?}"
    );
    let rules = ruleset(&client);
    assert!(
        !rules.contains("nat") && !rules.contains("table ip swarmr"),
        "no NAT table in the client's namespace: {rules}"
    );
    assert_eq!(
        peer_name(&client, &vip),
        vip,
        "the socket's peer is the VIP"
    );
    wait_until("a clean check", || check(&m1).0);
    let (_, text) = check(&m1);
    assert_eq!(
        text.matches("bpf (socket load balancer on cgroup").count(),
        2,
        "both nodes balance VIPs with BPF: {text}"
    );
}

#[test]
#[ignore = "needs root, Docker and VXLAN"]
fn the_nftables_fallback_balances_vips_with_a_nat_table() {
    let (_cluster, m1, client, vip) = web_and_client(&["--vip-balancer", "nftables"]);
    let replicas: BTreeSet<String> = (0..30).map(|_| http_get(&client, &vip)).collect();
    assert_eq!(
        replicas.len(),
        3,
        "30 requests reach 3 replicas: {replicas:?}"
    );
    let rules = ruleset(&client);
    assert!(
        rules.contains("table ip swarmr") && rules.contains(&format!("ip daddr {vip} dnat to")),
        "the VIP's NAT rule in the client's namespace: {rules}"
    );
    let (_, text) = check(&m1);
    assert_eq!(
        text.matches("nftables (--vip-balancer nftables)").count(),
        2,
        "both nodes say they balance with nftables: {text}"
    );
}
