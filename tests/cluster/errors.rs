//! Bad input: a clear one-line error, a non-zero exit, and nothing written.

use crate::util::*;

#[test]
fn bad_joins_write_nothing() {
    let cluster = Cluster::init(&[]);
    let m1 = cluster.nodes[0].host();
    let remote = cluster.nodes[0].addr();
    let dir = cluster.dir().join("refused");
    let dir = dir.to_str().expect("utf8");
    let good = cluster.token("worker");

    let err = fails(&join_args(dir, "SWMTKN-1-nonsense", &remote));
    assert!(err.contains("malformed join token"), "{err}");

    // Same shape, another CA digest: a token from some other cluster.
    let foreign = format!("SWMTKN-1-{}-{}", "1".repeat(50), &good[good.len() - 25..]);
    let err = fails(&join_args(dir, &foreign, &remote));
    assert!(err.contains("another cluster"), "{err}");

    let wrong_secret = format!("{}{}", &good[..good.len() - 25], "0".repeat(25));
    let err = fails(&join_args(dir, &wrong_secret, &remote));
    assert!(err.contains("invalid join token"), "{err}");

    let err = fails(&join_args(dir, &good, "not-an-address"));
    assert!(err.contains("invalid manager address"), "{err}");

    let err = fails(&[
        "join",
        "--token",
        &good,
        "--data-dir",
        dir,
        "--advertise-addr",
        "bogus",
        &remote,
    ]);
    assert!(err.contains("invalid --advertise-addr"), "{err}");

    assert_eq!(node_rows(&m1).len(), 1, "a refused join wrote a node");
    assert_eq!(err.lines().count(), 1, "errors are one line: {err}");
}

#[test]
fn unreachable_manager_fails_within_a_bounded_wait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let start = std::time::Instant::now();
    let token = format!("SWMTKN-1-{}-{}", "1".repeat(50), "2".repeat(25));
    let err = fails(&join_args(
        dir.path().to_str().expect("utf8"),
        &token,
        "127.0.0.1:9",
    ));
    assert!(err.contains("cannot reach the manager"), "{err}");
    // Bounded: the join gives up by itself rather than hanging.
    assert!(start.elapsed() < std::time::Duration::from_secs(60));
    let err = fails(&["-H", "unix:///nonexistent/swarmr.sock", "node", "ls"]);
    assert!(err.contains("cannot reach the swarmr node"), "{err}");
    let err = fails(&["-H", "bogus:host", "node", "ls"]);
    assert!(err.contains("invalid --host"), "{err}");
}

#[test]
fn bad_node_commands_are_refused() {
    let mut cluster = Cluster::init(&[]).joined(&[("w1", "worker")]);
    let m1 = cluster.node("m1").host();
    let before = cli(&m1, "node inspect m1 w1");

    let err = cli_fails(&m1, "node inspect nope");
    assert!(err.contains("node nope not found"), "{err}");
    let err = cli_fails(&m1, "node demote m1");
    assert!(err.contains("last manager"), "{err}");
    let err = cli_fails(&m1, "node rm m1");
    assert!(err.contains("demote it first"), "{err}");
    let err = cli_fails(&m1, "node update --label-rm absent w1");
    assert!(err.contains("no label"), "{err}");
    let err = cli_fails(&m1, "node update --label-add =x w1");
    assert!(err.contains("key=value"), "{err}");
    let err = cli_fails(&m1, "node update --availability sleepy w1");
    assert!(err.contains("sleepy"), "{err}");

    let after = cli(&m1, "node inspect m1 w1");
    let versions = |s: &str| -> Vec<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(s).expect("json");
        v.as_array()
            .expect("array")
            .iter()
            .map(|n| n["Spec"].clone())
            .collect()
    };
    assert_eq!(
        versions(&before),
        versions(&after),
        "a refused command changed a node"
    );

    cli(&m1, "node rm --force w1");
    assert!(node_row(&m1, "w1").is_none());
    wait_until("the removed worker stops", || {
        !cluster.node("w1").is_running()
    });
    assert!(cluster.node("w1").log().contains("removed"));
}
