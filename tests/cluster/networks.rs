//! `swarmr network ...` against a real manager: IPAM in Raft, Docker's output shapes.

use serde_json::Value;

use crate::util::*;

fn inspect_network(host: &str, name: &str) -> Value {
    let out = ok(&["-H", host, "network", "inspect", name]);
    let array: Value = serde_json::from_str(&out).expect("inspect prints JSON");
    array[0].clone()
}

fn count(host: &str) -> usize {
    cli(host, "network ls -q").lines().count()
}

#[test]
fn networks_get_serial_subnets_and_vnis() {
    let cluster = Cluster::init(&[]);
    let m1 = cluster.nodes[0].host();
    let id = cli(&m1, "network create --driver overlay --label team=a front");
    assert_eq!(id.trim().len(), 25, "{id}");
    cli(&m1, "network create back");
    let front = inspect_network(&m1, "front");
    assert_eq!(front["Id"], id.trim());
    assert_eq!(front["Scope"], "swarm");
    assert_eq!(front["Driver"], "overlay");
    assert_eq!(front["IPAM"]["Config"][0]["Subnet"], "10.0.0.0/24");
    assert_eq!(front["IPAM"]["Config"][0]["Gateway"], "10.0.0.1");
    assert_eq!(
        front["Options"]["com.docker.network.driver.overlay.vxlanid_list"],
        "4096"
    );
    assert_eq!(front["Labels"]["team"], "a");
    assert!(front["Containers"]
        .as_object()
        .is_some_and(|c| c.is_empty()));
    let back = inspect_network(&m1, "back");
    assert_eq!(back["IPAM"]["Config"][0]["Subnet"], "10.0.1.0/24");
    assert_eq!(
        back["Options"]["com.docker.network.driver.overlay.vxlanid_list"],
        "4097"
    );

    let table = cli(&m1, "network ls");
    assert!(table.starts_with("NETWORK ID"), "{table}");
    assert!(
        table.contains("front") && table.contains("swarm"),
        "{table}"
    );
    let json = cli(&m1, "network ls --format json --filter name=fro");
    let row: Value = serde_json::from_str(json.trim()).expect("one JSON line");
    assert_eq!(row["Name"], "front");
    assert_eq!(row["Driver"], "overlay");

    cli(&m1, "network rm front");
    let out = cli(&m1, "network prune --force");
    assert!(out.contains("back"), "{out}");
    assert_eq!(count(&m1), 0);
}

#[test]
fn user_subnets_large_networks_and_custom_pools() {
    let cluster = Cluster::init(&[
        "--default-addr-pool",
        "198.18.0.0/16",
        "--default-addr-pool-mask-length",
        "26",
    ]);
    let m1 = cluster.nodes[0].host();
    cli(&m1, "network create pooled");
    assert_eq!(
        inspect_network(&m1, "pooled")["IPAM"]["Config"][0]["Subnet"],
        "198.18.0.0/26"
    );
    cli(
        &m1,
        "network create --subnet 10.20.0.0/16 --gateway 10.20.0.254 big",
    );
    let big = inspect_network(&m1, "big");
    assert_eq!(big["IPAM"]["Config"][0]["Subnet"], "10.20.0.0/16");
    assert_eq!(big["IPAM"]["Config"][0]["Gateway"], "10.20.0.254");
    // The next pooled network skips nothing it does not have to, and never overlaps.
    cli(&m1, "network create pooled2");
    assert_eq!(
        inspect_network(&m1, "pooled2")["IPAM"]["Config"][0]["Subnet"],
        "198.18.0.64/26"
    );
}

#[test]
fn bad_network_requests_store_nothing() {
    let cluster = Cluster::init(&[]);
    let m1 = cluster.nodes[0].host();
    cli(&m1, "network create --subnet 10.9.0.0/16 taken");
    let before = count(&m1);
    let cases: &[(&[&str], &str)] = &[
        (&["--subnet", "10.0.0.0/33", "a"], "invalid subnet"),
        (
            &["--subnet", "10.1.0.0/24", "--gateway", "10.2.0.1", "a"],
            "10.2.0.1",
        ),
        (&["--subnet", "10.9.5.0/24", "a"], "overlaps"),
        (&["taken"], "already exists"),
        (&["--driver", "bridge", "a"], "overlay driver"),
        (&["bad name!"], "invalid network name"),
        (&["--subnet", "10.3.0.0/31", "a"], "too small"),
        (
            &["--opt", "com.docker.network.driver.mtu=9", "a"],
            "between 68 and 65535",
        ),
        (&["--gateway", "10.0.0.1", "a"], "--gateway needs --subnet"),
    ];
    for (args, expected) in cases {
        let mut full = vec!["-H", m1.as_str(), "network", "create"];
        full.extend_from_slice(args);
        let err = fails(&full);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert_eq!(count(&m1), before, "a refused request stored a network");
    let err = cli_fails(&m1, "network inspect nope");
    assert!(err.contains("network nope not found"), "{err}");
    let err = cli_fails(&m1, "network rm nope");
    assert!(err.contains("not found"), "{err}");
    let err = fails(&[
        "init",
        "--default-addr-pool",
        "10.0.0.0/8",
        "--default-addr-pool-mask-length",
        "4",
        "--data-dir",
        "/nonexistent/x",
    ]);
    assert!(err.to_lowercase().contains("mask"), "{err}");
}
