//! Published ports and egress on three namespace hosts, with an outside client
//! (192.0.2.100) and an outside server (192.0.2.200) on the same underlay: the routing
//! mesh from every node with the client's own address, host mode, UDP, conflicts, clean
//! removal, egress and internal networks, and a worker restart.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::util::*;

const CLIENT: &str = "192.0.2.100";
const SERVER: &str = "192.0.2.200";
const NODE_IPS: [&str; 3] = ["192.0.2.1", "192.0.2.2", "192.0.2.3"];

/// m1 (manager), w1 and w2 (workers), plus the outside client's namespace.
fn three_hosts_and_a_client() -> (Cluster, String) {
    let mut cluster = Cluster::init_on_hosts(&["--dispatcher-heartbeat", "500ms"])
        .joined(&[("w1", "worker"), ("w2", "worker")]);
    let client = cluster.outside_host("client", 100);
    (cluster, client)
}

/// `wget` from namespace `ns`: the body, or `None` when it fails (5 s at most).
fn fetch(ns: &str, url: &str) -> Option<String> {
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns}"))
        .args(["timeout", "5", "busybox", "wget", "-qO-", url])
        .output()
        .expect("nsenter wget");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Waits until `url` answers from `ns`; the body.
fn fetched(ns: &str, url: &str) -> String {
    let mut body = None;
    wait_until(&format!("{url} answers"), || {
        body = fetch(ns, url);
        body.is_some()
    });
    body.unwrap_or_default()
}

fn ps_rows(host: &str, service: &str) -> Vec<Value> {
    ok(&["-H", host, "service", "ps", service, "--format", "json"])
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A process in a namespace, killed when dropped (also on a failed assertion).
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Answers each UDP datagram on `port` with the sender's address, in netns `netns`.
fn udp_responder(netns: &str, port: u16) -> Spawned {
    let script = format!(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.bind(('0.0.0.0', {port}))\nwhile True:\n    d, a = s.recvfrom(64)\n    s.sendto(a[0].encode(), a)\n"
    );
    let child = Command::new("nsenter")
        .arg(format!("--net={netns}"))
        .args(["python3", "-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .expect("start a UDP responder");
    Spawned(child)
}

/// One UDP request from namespace `ns` to `to`: the answer.
fn udp_ask(ns: &str, to: &str, port: u16) -> Option<String> {
    let script = format!(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.settimeout(1)\n\
         s.sendto(b'x', ('{to}', {port}))\nprint(s.recvfrom(64)[0].decode())\n"
    );
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns}"))
        .args(["python3", "-c", &script])
        .output()
        .expect("nsenter python3");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn service_id(host: &str, service: &str) -> String {
    let inspect: Value =
        serde_json::from_str(&ok(&["-H", host, "service", "inspect", service])).expect("JSON");
    inspect[0]["ID"].as_str().unwrap_or_default().to_string()
}

/// The node namespace's nftables rules of a host.
fn host_ruleset(cluster: &mut Cluster, name: &str) -> String {
    let ns = cluster.node(name).netns.clone().expect("a host");
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns}"))
        .args(["nft", "list", "ruleset"])
        .output()
        .expect("nft");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs root, Docker and VXLAN"]
fn the_routing_mesh_answers_on_every_node_with_the_clients_own_address() {
    let (mut cluster, client) = three_hosts_and_a_client();
    let m1 = cluster.nodes[0].host();
    // Two replicas, none on w2: w2 must still answer.
    cli(&m1, "service create --name web --replicas 2 --constraint 'node.hostname!=w2' -p 8080:80 -p 5353:53/udp my-service");
    let ls = cli(&m1, "service ls");
    assert!(ls.contains("*:8080->80/tcp, *:5353->53/udp"), "{ls}");
    for ip in NODE_IPS {
        let seen = fetched(&client, &format!("http://{ip}:8080/cgi-bin/client-addr"));
        assert_eq!(seen, CLIENT, "through {ip} the task sees the client itself");
    }
    let hostnames: BTreeSet<String> = (0..8)
        .filter_map(|_| fetch(&client, "http://192.0.2.3:8080/"))
        .collect();
    assert_eq!(
        hostnames.len(),
        2,
        "w2 balances over both tasks: {hostnames:?}"
    );

    let webs = containers(&service_id(&m1, "web"));
    let _responders: Vec<Spawned> = webs
        .iter()
        .map(|c| udp_responder(&format!("/proc/{}/ns/net", pid_of(c)), 53))
        .collect();
    let mut answer = None;
    wait_until("a UDP answer through w2", || {
        answer = udp_ask(&client, "192.0.2.3", 5353);
        answer.is_some()
    });
    assert_eq!(
        answer.as_deref(),
        Some(CLIENT),
        "UDP keeps the client address too"
    );

    let err = cli_fails(&m1, "service create --name other -p 8080:81 my-service");
    assert!(
        err.contains("port 8080/tcp is already published by service web"),
        "{err}"
    );

    cli(&m1, "service rm web");
    for name in ["m1", "w1", "w2"] {
        wait_until(&format!("{name} drops the published rules"), || {
            !host_ruleset(&mut cluster, name).contains("dport 8080")
        });
    }
    assert!(
        fetch(&client, "http://192.0.2.1:8080/").is_none(),
        "nothing answers after rm"
    );
}

#[test]
#[ignore = "needs root, Docker and VXLAN"]
fn host_mode_answers_only_where_a_task_runs() {
    let (cluster, client) = three_hosts_and_a_client();
    let m1 = cluster.nodes[0].host();
    cli(
        &m1,
        "service create --name edge --replicas 1 --publish mode=host,published=8081,target=80 my-service",
    );
    let rows = ps_rows(&m1, "edge");
    let node = rows[0]["Node"].as_str().expect("placed").to_string();
    let index = ["m1", "w1", "w2"]
        .iter()
        .position(|n| *n == node)
        .expect("a node");
    let seen = fetched(
        &client,
        &format!("http://{}:8081/cgi-bin/client-addr", NODE_IPS[index]),
    );
    assert_eq!(seen, CLIENT);
    for (i, ip) in NODE_IPS.iter().enumerate().filter(|(i, _)| *i != index) {
        assert!(
            fetch(&client, &format!("http://{ip}:8081/")).is_none(),
            "node {i} runs no task and must not answer"
        );
    }
    // Four tasks, three nodes: one stays pending, and says why.
    cli(&m1, "service scale -d edge=4");
    wait_until("the fourth task explains itself", || {
        ps_rows(&m1, "edge").iter().any(|r| {
            r["Error"]
                .as_str()
                .unwrap_or_default()
                .contains("host port 8081 taken")
        })
    });
}

#[test]
#[ignore = "needs root, Docker and VXLAN"]
fn tasks_reach_outside_through_their_node_unless_internal() {
    let (mut cluster, client) = three_hosts_and_a_client();
    let m1 = cluster.nodes[0].host();
    let outside = cluster.outside_host("outside", 200);
    // The outside server answers with the address it saw.
    let www = cluster.dir().join("www");
    std::fs::create_dir_all(www.join("cgi-bin")).expect("www");
    let cgi = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/images/my-service/client-addr"
    );
    std::fs::copy(cgi, www.join("cgi-bin/client-addr")).expect("cgi");
    let _server = Spawned(
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{outside}"))
            .args(["busybox", "httpd", "-f", "-p", "8000", "-h"])
            .arg(&www)
            .spawn()
            .expect("outside httpd"),
    );
    cli(&m1, "network create app");
    cli(&m1, "network create --internal secret");
    cli(
        &m1,
        "service create --name open --network app -p 8082:80 my-service",
    );
    cli(
        &m1,
        "service create --name closed --network secret my-service",
    );
    let url = format!("http://{SERVER}:8000/cgi-bin/client-addr");
    let open = containers(&service_id(&m1, "open"));
    let mut seen = String::new();
    wait_until("the open task reaches the outside server", || {
        let out = Command::new("docker")
            .args(["exec", &open[0], "timeout", "5", "wget", "-qO-", &url])
            .output()
            .expect("docker exec");
        seen = String::from_utf8_lossy(&out.stdout).trim().to_string();
        out.status.success()
    });
    assert!(
        NODE_IPS.contains(&seen.as_str()),
        "masqueraded to its node: {seen}"
    );
    let closed = containers(&service_id(&m1, "closed"));
    let out = Command::new("docker")
        .args(["exec", &closed[0], "timeout", "5", "wget", "-qO-", &url])
        .output()
        .expect("docker exec");
    assert!(!out.status.success(), "an internal network has no way out");

    // A restarted worker keeps (and repairs) the published port.
    fetched(&client, "http://192.0.2.2:8082/");
    cluster.node("w1").restart();
    wait_until("w1 answers after its restart", || {
        fetch(&client, "http://192.0.2.2:8082/cgi-bin/client-addr").as_deref() == Some(CLIENT)
    });
}

#[test]
#[ignore = "needs root, Docker and VXLAN"]
fn publish_add_and_rm_move_a_port_and_rollback_restores_it() {
    let mut cluster = Cluster::init_on_hosts(&["--dispatcher-heartbeat", "500ms"]);
    let client = cluster.outside_host("client", 100);
    let m1 = cluster.nodes[0].host();
    let url = |port: u16| format!("http://192.0.2.1:{port}/cgi-bin/client-addr");
    cli(&m1, "service create --name web my-service");
    // Joining the mesh replaces the task: it needs an ingress address.
    cli(&m1, "service update --publish-add 8085:80 web");
    assert_eq!(fetched(&client, &url(8085)), CLIENT);
    ok(&[
        "-H",
        &m1,
        "service",
        "update",
        "--publish-add",
        "published=8086,target=80",
        "--publish-rm",
        "published=8085,target=80",
        "web",
    ]);
    assert_eq!(fetched(&client, &url(8086)), CLIENT);
    wait_until("8085 is no longer published", || {
        fetch(&client, &url(8085)).is_none()
    });
    let err = cli_fails(&m1, "service update --publish-rm 9999 web");
    assert!(err.contains("publishes no such port"), "{err}");
    cli(&m1, "service rollback web");
    assert_eq!(
        fetched(&client, &url(8085)),
        CLIENT,
        "rollback restores the port"
    );
    wait_until("8086 is gone again", || {
        fetch(&client, &url(8086)).is_none()
    });
}
