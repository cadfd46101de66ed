//! Faults the managers must survive: membership changes that would cost the quorum.

use crate::util::*;

const FAST_HEARTBEAT: &[&str] = &["--dispatcher-heartbeat", "300ms"];

/// Three managers, one of them down: demoting or removing a healthy one would leave
/// {leader, down}, which has no majority and would freeze every write. Both are refused,
/// and the cluster keeps writing.
#[test]
fn demote_or_leave_that_would_lose_the_quorum_is_refused() {
    let mut cluster = Cluster::init(FAST_HEARTBEAT);
    cluster.join("m2", "manager");
    cluster.join("m3", "manager");
    let m1 = cluster.node("m1").host();
    let m2 = cluster.node("m2").host();
    cluster.node("m3").kill();
    wait_until("m3 Unreachable", || {
        node_row(&m1, "m3").is_some_and(|r| r["ManagerStatus"] == "Unreachable")
    });

    let err = fails(&["-H", &m1, "node", "demote", "m2"]);
    assert!(err.contains("would lose the managers' quorum"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let err = fails(&["-H", &m2, "leave", "--force"]);
    assert!(err.contains("would lose the managers' quorum"), "{err}");
    assert!(
        cluster.node("m2").is_running(),
        "a refused leave stopped m2"
    );

    let row = node_row(&m1, "m2").expect("m2 listed");
    assert_eq!(row["ManagerStatus"], "Reachable", "{row}");
    // Still a quorum: writes commit.
    ok(&[
        "-H",
        &m1,
        "node",
        "update",
        "--label-add",
        "still=writable",
        "m1",
    ]);
    // Demoting the manager that is down leaves {m1, m2}: allowed.
    ok(&["-H", &m1, "node", "demote", "m3"]);
    ok(&["-H", &m2, "network", "create", "after-demote"]);
}
