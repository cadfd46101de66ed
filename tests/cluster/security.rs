//! The cluster CA, join tokens and mutual TLS: one test per refusal, plus renewal and the
//! re-issue on promote/demote.

use std::path::Path;
use std::time::Duration;

use swarmr_manager::ca::{self, CertRole, PeerIdentity};
use swarmr_proto::control_client::ControlClient;
use swarmr_proto::dispatcher_client::DispatcherClient;
use swarmr_proto::raft_client::RaftClient;
use swarmr_proto::{HeartbeatRequest, ListNodesRequest, RaftBytes};
use tonic::transport::Channel;
use tonic::Code;

use crate::util::*;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Runtime::new().expect("runtime").block_on(f)
}

/// A channel to `addr` that presents the node certificate in `data_dir`.
fn channel_as(data_dir: &Path, addr: &str) -> Channel {
    let file = |name: &str| data_dir.join(name);
    let config = ca::load_client(&file("ca.crt"), &file("node.crt"), &file("node.key"))
        .expect("client config");
    ca::channel_with(config, addr, ca::MANAGER_NAME).expect("channel")
}

fn node_cert(data_dir: &Path) -> PeerIdentity {
    let pem = std::fs::read_to_string(data_dir.join("node.crt")).expect("node.crt");
    PeerIdentity::from_pem(&pem).expect("node certificate")
}

#[test]
fn a_wrong_secret_admits_no_node() {
    let cluster = Cluster::init(&[]);
    let good = cluster.token("worker");
    let wrong = format!("{}{}", &good[..good.len() - 25], "0".repeat(25));
    let dir = cluster.dir().join("wrong-secret");
    let err = fails(&join_args(
        dir.to_str().expect("utf8"),
        &wrong,
        &cluster.nodes[0].addr(),
    ));
    assert!(err.contains("invalid join token"), "{err}");
    assert!(
        !err.contains(&wrong[wrong.len() - 25..]),
        "the secret leaked: {err}"
    );
    assert!(!dir.join("node.crt").exists());
    assert_eq!(node_rows(&cluster.nodes[0].host()).len(), 1);
}

#[test]
fn a_wrong_ca_digest_is_refused_before_the_secret_is_sent() {
    let cluster = Cluster::init(&[]);
    let good = cluster.token("worker");
    let foreign = format!("SWMTKN-1-{}-{}", "1".repeat(50), &good[good.len() - 25..]);
    let dir = cluster.dir().join("wrong-digest");
    let err = fails(&join_args(
        dir.to_str().expect("utf8"),
        &foreign,
        &cluster.nodes[0].addr(),
    ));
    assert!(err.contains("does not match the join token"), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");
    assert_eq!(node_rows(&cluster.nodes[0].host()).len(), 1);
}

#[test]
fn a_rotated_token_admits_no_new_node_but_joined_nodes_stay() {
    let mut cluster = Cluster::init(&[]).joined(&[("w1", "worker")]);
    let m1 = cluster.node("m1").host();
    let old = cluster.token("worker");
    cli(&m1, "join-token --rotate worker");
    let dir = cluster.dir().join("late");
    let err = fails(&join_args(
        dir.to_str().expect("utf8"),
        &old,
        &cluster.nodes[0].addr(),
    ));
    assert!(err.contains("rotated or mistyped"), "{err}");
    // w1 joined with the old token; its certificate, not the token, lets it back in.
    cluster.node("w1").restart();
    wait_until("w1 Ready after a restart", || {
        node_row(&m1, "w1").is_some_and(|r| r["Status"] == "Ready")
    });
}

#[test]
fn clients_without_tls_or_a_certificate_are_refused() {
    let cluster = Cluster::init(&[]);
    let addr = cluster.nodes[0].addr();
    block_on(async {
        let plain = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect_lazy();
        let err = ControlClient::new(plain)
            .list_nodes(ListNodesRequest {})
            .await
            .expect_err("plaintext must be refused");
        // No gRPC answer of any kind: the server only speaks TLS, and drops the
        // connection (how the client reports that varies: unavailable, cancelled, h2
        // protocol error).
        assert!(
            !matches!(err.code(), Code::PermissionDenied | Code::Unauthenticated),
            "{err}"
        );

        // TLS that trusts the cluster CA, but without a client certificate.
        let ca_pem =
            std::fs::read_to_string(cluster.nodes[0].data_dir.join("ca.crt")).expect("ca.crt");
        let config = ca::anonymous_client(&ca_pem).expect("config");
        let channel = ca::channel_with(config, &addr, ca::MANAGER_NAME).expect("channel");
        let err = ControlClient::new(channel)
            .list_nodes(ListNodesRequest {})
            .await
            .expect_err("no certificate, no Control");
        assert_eq!(err.code(), Code::Unauthenticated, "{err}");
    });
    let err = cli_fails(&addr, "node ls");
    assert!(err.contains("needs a client certificate"), "{err}");
}

#[test]
fn a_worker_certificate_cannot_call_manager_rpcs() {
    let mut cluster = Cluster::init(&[]).joined(&[("w1", "worker")]);
    let w1_dir = cluster.node("w1").data_dir.clone();
    assert_eq!(node_cert(&w1_dir).role, CertRole::Worker);
    let addr = cluster.node("m1").addr();
    block_on(async {
        let err = ControlClient::new(channel_as(&w1_dir, &addr))
            .list_nodes(ListNodesRequest {})
            .await
            .expect_err("a worker may not call Control");
        assert_eq!(err.code(), Code::PermissionDenied, "{err}");
        let err = RaftClient::new(channel_as(&w1_dir, &addr))
            .vote(RaftBytes { data: vec![] })
            .await
            .expect_err("a worker may not call Raft");
        assert_eq!(err.code(), Code::PermissionDenied, "{err}");
        assert!(err.message().contains("swarm-worker"), "{err}");
        // Nor may it speak for another node on the Dispatcher it may call.
        let err = DispatcherClient::new(channel_as(&w1_dir, &addr))
            .heartbeat(HeartbeatRequest {
                node_id: "someone-else".into(),
                session_id: String::new(),
            })
            .await
            .expect_err("a worker speaks only for itself");
        assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    });
}

#[test]
fn a_removed_node_is_refused_from_then_on() {
    let mut cluster =
        Cluster::init(&["--dispatcher-heartbeat", "300ms"]).joined(&[("w1", "worker")]);
    let m1 = cluster.node("m1").host();
    let addr = cluster.node("m1").addr();
    let w1_dir = cluster.node("w1").data_dir.clone();
    let w1_id = node_cert(&w1_dir).id;
    cluster.node("w1").kill();
    wait_until("w1 Down", || {
        node_row(&m1, "w1").is_some_and(|r| r["Status"] == "Down")
    });
    cli(&m1, "node rm w1");
    block_on(async {
        let err = DispatcherClient::new(channel_as(&w1_dir, &addr))
            .heartbeat(HeartbeatRequest {
                node_id: w1_id.clone(),
                session_id: String::new(),
            })
            .await
            .expect_err("a removed node's certificate is refused");
        assert_eq!(err.code(), Code::PermissionDenied, "{err}");
        assert!(err.message().contains("removed"), "{err}");
    });
    // The node itself, started again, is told so and stops.
    let w1 = cluster.node("w1");
    w1.respawn();
    wait_until("the removed w1 exits", || !w1.is_running());
    assert!(w1.log().contains("it was removed"), "{}", w1.log());
    assert!(node_row(&m1, "w1").is_none());
}

#[test]
fn a_manager_of_another_cluster_is_refused_at_join() {
    let ours = Cluster::init(&[]);
    let theirs = Cluster::init(&[]);
    let token = ours.token("worker");
    let dir = ours.dir().join("mitm");
    let err = fails(&join_args(
        dir.to_str().expect("utf8"),
        &token,
        &theirs.nodes[0].addr(),
    ));
    assert!(err.contains("does not match the join token"), "{err}");
    assert!(err.contains("man-in-the-middle"), "{err}");
    assert_eq!(node_rows(&theirs.nodes[0].host()).len(), 1);
    assert!(!dir.join("node.crt").exists());
    // Nor does a node certificate of one cluster open the other's port.
    let (ours_dir, theirs_addr) = (&ours.nodes[0].data_dir, theirs.nodes[0].addr());
    let err = block_on(async {
        ControlClient::new(channel_as(ours_dir, &theirs_addr))
            .list_nodes(ListNodesRequest {})
            .await
            .expect_err("a foreign CA is refused")
    });
    assert_eq!(err.code(), Code::Unavailable, "{err}");
}

#[test]
fn certificates_are_renewed_before_they_expire() {
    let mut cluster = Cluster::init(&["--cert-expiry", "30s"]).joined(&[("w1", "worker")]);
    let m1 = cluster.node("m1").host();
    let (m1_dir, w1_dir) = (
        cluster.node("m1").data_dir.clone(),
        cluster.node("w1").data_dir.clone(),
    );
    let first = node_cert(&w1_dir);
    let first_m1 = node_cert(&m1_dir);
    let lifetime = first
        .not_after
        .duration_since(first.not_before)
        .expect("valid");
    assert!(lifetime <= Duration::from_secs(35), "{lifetime:?}");
    wait_until("both certificates renewed", || {
        node_cert(&w1_dir).not_after > first.not_after
            && node_cert(&m1_dir).not_after > first_m1.not_after
    });
    // Past the first certificates' expiry, fresh connections still work: the renewed
    // certificates are the ones in use.
    let left = first
        .not_after
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    std::thread::sleep(left + Duration::from_secs(1));
    cluster.node("w1").restart();
    wait_until("w1 Ready on its renewed certificate", || {
        node_row(&m1, "w1").is_some_and(|r| r["Status"] == "Ready")
    });
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&p.metadata().unwrap().permissions()) & 0o777
    };
    assert_eq!(mode(&w1_dir.join("node.key")), 0o600);
    assert_eq!(mode(&m1_dir.join("ca.key")), 0o600);
}

#[test]
fn promote_and_demote_reissue_the_certificate() {
    let mut cluster = Cluster::init(&[]).joined(&[("w1", "worker")]);
    let m1 = cluster.node("m1").host();
    let w1_dir = cluster.node("w1").data_dir.clone();
    cli(&m1, "node promote w1");
    wait_until("w1 holds a manager certificate and is Reachable", || {
        node_cert(&w1_dir).role == CertRole::Manager
            && node_row(&m1, "w1").is_some_and(|r| r["ManagerStatus"] == "Reachable")
    });
    // Keep the manager certificate w1 held, as a stolen or stale copy would be.
    let stale = cluster.dir().join("w1-manager-cert");
    std::fs::create_dir_all(&stale).expect("stale dir");
    for file in ["ca.crt", "node.crt", "node.key"] {
        std::fs::copy(w1_dir.join(file), stale.join(file)).expect("copy certificate");
    }
    cli(&m1, "node demote w1");
    wait_until("w1 holds a worker certificate again", || {
        node_cert(&w1_dir).role == CertRole::Worker
    });
    // The old manager certificate is still within its lifetime, but the store's role
    // decides: no more Control or Raft with it.
    let addr = cluster.node("m1").addr();
    block_on(async {
        let err = ControlClient::new(channel_as(&stale, &addr))
            .list_nodes(ListNodesRequest {})
            .await
            .expect_err("a demoted manager's certificate may not call Control");
        assert_eq!(err.code(), Code::PermissionDenied, "{err}");
        assert!(err.message().contains("no longer a manager"), "{err}");
        let err = RaftClient::new(channel_as(&stale, &addr))
            .vote(RaftBytes { data: vec![] })
            .await
            .expect_err("nor Raft");
        assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    });
}

#[test]
fn client_certificates_are_recorded_and_can_be_revoked() {
    let mut cluster = Cluster::init(&[]);
    let m1 = cluster.node("m1").host();
    let addr = cluster.node("m1").addr();
    let tls = cluster.dir().join("client-tls");
    let tls_dir = tls.to_str().expect("utf-8 path");
    ok(&["-H", &m1, "ca", "issue-client", "--out", tls_dir]);
    ok(&["--tls-dir", tls_dir, "-H", &addr, "node", "ls"]);
    // A client certificate cannot mint more.
    let other = cluster.dir().join("minted");
    let other = other.to_str().expect("utf-8 path");
    let minted = fails(&[
        "--tls-dir",
        tls_dir,
        "-H",
        &addr,
        "ca",
        "issue-client",
        "--out",
        other,
    ]);
    assert!(
        minted.contains("may not issue client certificates"),
        "{minted}"
    );

    let id = revoke_the_issued_cert(&m1);
    assert!(id.starts_with("client-"), "{id}");
    let refused = fails(&["--tls-dir", tls_dir, "-H", &addr, "node", "ls"]);
    assert!(refused.contains("revoked"), "{refused}");
    let unknown = cli_fails(&m1, "ca revoke client-nope");
    assert!(unknown.contains("no client certificate"), "{unknown}");
}

/// A join whose answer was lost is sent again with the same key: the manager answers with
/// the node it made the first time, and no second node appears.
#[test]
fn a_join_retried_with_the_same_key_makes_one_node() {
    use swarmr_proto::JoinRequest;
    let cluster = Cluster::init(&[]);
    let token = cluster.token("worker");
    let addr = cluster.nodes[0].addr();
    let m1 = cluster.nodes[0].host();
    let (digest, _) = ca::parse_token(&token).expect("token");
    let (_key, csr_pem) = ca::new_key_and_csr().expect("key");
    let request = JoinRequest {
        token: token.clone(),
        hostname: "retried".into(),
        api_addr: "127.0.0.99:2377".into(),
        csr_pem,
        ..Default::default()
    };
    let ids: Vec<String> = block_on(async {
        let ca_pem = ca::fetch_pinned_ca(&addr, digest, Duration::from_secs(5))
            .await
            .expect("pinned CA");
        let config = ca::anonymous_client(&ca_pem).expect("client");
        let mut client = DispatcherClient::new(
            ca::channel_with(config, &addr, ca::MANAGER_NAME).expect("channel"),
        );
        let mut ids = Vec::new();
        for _ in 0..2 {
            let reply = client.join(request.clone()).await.expect("join");
            ids.push(reply.into_inner().node_id);
        }
        ids
    });
    assert_eq!(ids[0], ids[1], "the retry gets the first node back");
    let rows = node_rows(&m1);
    assert_eq!(
        rows.iter().filter(|r| r["Hostname"] == "retried").count(),
        1,
        "{rows:?}"
    );
}
