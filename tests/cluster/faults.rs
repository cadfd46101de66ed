//! Faults the managers must survive: membership changes that would cost the quorum, and
//! writes at the size limits.

use crate::util::*;

const FAST_HEARTBEAT: &[&str] = &["--dispatcher-heartbeat", "300ms"];

/// Three managers, one of them down: demoting or removing a healthy one would leave
/// {leader, down}, which has no majority and would freeze every write. Both are refused,
/// and the cluster keeps writing.
#[test]
fn demote_or_leave_that_would_lose_the_quorum_is_refused() {
    let mut cluster = Cluster::three_managers(FAST_HEARTBEAT);
    let m1 = cluster.node("m1").host();
    let m2 = cluster.node("m2").host();
    cluster.node("m3").kill();
    wait_until("m3 Unreachable", || {
        node_row(&m1, "m3").is_some_and(|r| r["ManagerStatus"] == "Unreachable")
    });

    let err = cli_fails(&m1, "node demote m2");
    assert!(err.contains("would lose the managers' quorum"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let err = cli_fails(&m2, "leave --force");
    assert!(err.contains("would lose the managers' quorum"), "{err}");
    assert!(
        cluster.node("m2").is_running(),
        "a refused leave stopped m2"
    );

    let row = node_row(&m1, "m2").expect("m2 listed");
    assert_eq!(row["ManagerStatus"], "Reachable", "{row}");
    // Still a quorum: writes commit.
    cli(&m1, "node update --label-add still=writable m1");
    // Demoting the manager that is down leaves {m1, m2}: allowed.
    cli(&m1, "node demote m3");
    cli(&m2, "network create after-demote");
}

/// A service at the replica cap: its 10,000 tasks are written in bounded Raft entries (a
/// proposal over 1 MiB is refused, so one entry for all of them would never commit), and
/// the leader stays responsive. No container starts: no node satisfies the constraint.
#[test]
fn a_service_at_the_replica_cap_is_created_in_bounded_entries() {
    let cluster = Cluster::init(&[]);
    let m1 = cluster.nodes[0].host();
    let max = "10000";
    let unsatisfiable = "node.labels.none==x";
    let flags = ["-d", "--replicas", max, "--constraint", unsatisfiable];
    create_sleeper(&m1, "capped", &flags);
    wait_until("10,000 tasks", || {
        let out = run(&["-H", &m1, "service", "ps", "-q", "capped"]);
        String::from_utf8_lossy(&out.stdout).lines().count() == 10_000
    });
    assert!(node_row(&m1, "m1").is_some(), "the leader answers");
    let log = cluster.nodes[0].log();
    assert!(
        !log.contains("too large"),
        "a write was refused as too large"
    );
    cli(&m1, "service rm capped");
    let services = cli(&m1, "service ls -q");
    assert!(services.trim().is_empty(), "{services}");
}
