//! Service discovery across hosts: the embedded DNS and the nftables VIPs, seen from a
//! client container on a three-host cluster. Needs root, Docker and VXLAN, hence
//! `#[ignore]`. Outside names go to a fake upstream resolver inside the client's host
//! namespace, so no real resolver is ever asked.

use std::collections::BTreeSet;
use std::fs::File;
use std::net::UdpSocket;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

/// Every A query the fake upstream answers gets this address.
const OUTSIDE_ADDR: [u8; 4] = [198, 18, 0, 99];
const UPSTREAM: &str = "127.0.0.1:5353";

fn three_hosts(extra: &[&str]) -> Cluster {
    let mut flags = vec!["--dispatcher-heartbeat", "500ms"];
    flags.extend_from_slice(extra);
    Cluster::three_hosts(&flags)
}

/// The running containers of a service's tasks, by service name.
pub(crate) fn containers_of(host: &str, service: &str) -> Vec<String> {
    let inspect: Value =
        serde_json::from_str(&ok(&["-H", host, "service", "inspect", service])).expect("JSON");
    containers(inspect[0]["ID"].as_str().expect("id"))
}

/// The container of a service's first running task (the client services have one).
pub(crate) fn container_of(host: &str, service: &str) -> String {
    containers_of(host, service)
        .into_iter()
        .next()
        .unwrap_or_default()
}

pub(crate) fn vip_of(host: &str, service: &str) -> String {
    let inspect: Value =
        serde_json::from_str(&ok(&["-H", host, "service", "inspect", service])).expect("JSON");
    let addr = inspect[0]["Endpoint"]["VirtualIPs"][0]["Addr"]
        .as_str()
        .expect("a VIP");
    addr.split('/').next().unwrap_or_default().to_string()
}

/// `nslookup name` in the container: the answer addresses, or the error text.
fn nslookup(container: &str, name: &str) -> Result<BTreeSet<String>, String> {
    let out = Command::new("docker")
        .args(["exec", container, "nslookup", name])
        .output()
        .expect("docker exec");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)));
    }
    // Answers follow the first `Name:` line; the `Address:` before it is the server.
    let answers = text.split_once("Name:").map_or("", |(_, rest)| rest);
    Ok(answers
        .lines()
        .filter_map(|l| l.strip_prefix("Address:"))
        .map(|a| a.trim().to_string())
        .collect())
}

/// One HTTP/1.0 GET through busybox nc; the body is the serving replica's hostname.
pub(crate) fn http_get(container: &str, ip: &str) -> String {
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc {ip} 80");
    let out = Command::new("docker")
        .args(["exec", container, "sh", "-c", &script])
        .output()
        .expect("docker exec");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.trim().to_string())
        .unwrap_or_default()
}

/// Network `front` with a 3-replica service `web` and a sleeper `client` on it, created on
/// `host`; the client's container and web's VIP.
pub(crate) fn web_and_client_on_front(host: &str) -> (String, String) {
    cli(host, "network create front");
    cli(
        host,
        "service create --name web --network front --replicas 3 my-service:latest",
    );
    create_sleeper(host, "client", &["--network", "front"]);
    (container_of(host, "client"), vip_of(host, "web"))
}

#[test]
#[ignore = "needs root, Docker and VXLAN"]
fn vip_and_tasks_names_resolve_and_connections_spread_then_follow_scale_down() {
    let cluster = three_hosts(&[]);
    let m1 = cluster.nodes[0].host();
    let (client, vip) = web_and_client_on_front(&m1);

    wait_until("web resolves to its VIP", || {
        nslookup(&client, "web") == Ok(BTreeSet::from([vip.clone()]))
    });
    wait_until("tasks.web has the 3 task IPs", || {
        nslookup(&client, "tasks.web").is_ok_and(|a| a.len() == 3 && !a.contains(&vip))
    });
    let replicas: BTreeSet<String> = (0..30).map(|_| http_get(&client, &vip)).collect();
    assert_eq!(
        replicas.len(),
        3,
        "30 requests reach all 3 replicas: {replicas:?}"
    );
    assert!(
        !replicas.contains(""),
        "every request was answered: {replicas:?}"
    );
    let udp = udp_replies(&m1, &client, &vip);
    assert_eq!(udp.len(), 3, "30 UDP flows reach all 3 replicas: {udp:?}");

    cli(&m1, "service scale web=1");
    wait_until("tasks.web has 1 IP", || {
        nslookup(&client, "tasks.web").is_ok_and(|a| a.len() == 1)
    });
    let left: BTreeSet<String> = (0..10).map(|_| http_get(&client, &vip)).collect();
    assert_eq!(
        left.len(),
        1,
        "every request reaches the one left: {left:?}"
    );
    assert!(
        replicas.is_superset(&left),
        "{left:?} is one of {replicas:?}"
    );
}

/// Kills the UDP responders it holds when dropped, also on a failed assertion.
struct Responders(Vec<std::process::Child>);

impl Drop for Responders {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

const UDP_RESPONDER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999))
while True:
    d, a = s.recvfrom(64)
    s.sendto(sys.argv[1].encode(), a)
"#;

const UDP_SENDER: &str = r#"
import socket, sys
for _ in range(30):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    s.sendto(b"x", (sys.argv[1], 9999))
    try:
        print(s.recvfrom(64)[0].decode())
    except OSError:
        print("-")
    s.close()
"#;

/// The answers to 30 UDP flows (one socket each) from the client to `vip`, each web
/// container answering with its container id through a responder in its namespace.
fn udp_replies(host: &str, client: &str, vip: &str) -> BTreeSet<String> {
    let webs = containers_of(host, "web");
    let _responders = Responders(
        webs.iter()
            .map(|web| {
                Command::new("nsenter")
                    .args([
                        "-t",
                        &pid_of(web),
                        "-n",
                        "python3",
                        "-c",
                        UDP_RESPONDER,
                        web,
                    ])
                    .spawn()
                    .expect("start a UDP responder")
            })
            .collect(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let out = Command::new("nsenter")
        .args([
            "-t",
            &pid_of(client),
            "-n",
            "python3",
            "-c",
            UDP_SENDER,
            vip,
        ])
        .output()
        .expect("send UDP");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

#[test]
#[ignore = "needs root, Docker and VXLAN"]
fn dnsrr_unknown_foreign_and_outside_names() {
    let cluster = three_hosts(&["--dns-upstream", UPSTREAM]);
    let m1 = cluster.nodes[0].host();
    let _upstream = FakeUpstream::start(cluster.nodes[0].netns.as_deref().expect("host ns"));
    cli(&m1, "network create front");
    cli(&m1, "network create back");
    let rr = [
        "--network",
        "front",
        "--replicas",
        "3",
        "--endpoint-mode",
        "dnsrr",
    ];
    create_sleeper(&m1, "rr", &rr);
    create_sleeper(&m1, "secret", &["--network", "back"]);
    // On m1, whose node forwards to the fake upstream.
    let pinned = ["--network", "front", "--constraint", "node.hostname==m1"];
    create_sleeper(&m1, "client", &pinned);
    let client = container_of(&m1, "client");

    wait_until("dnsrr: rr gives 3 A records", || {
        nslookup(&client, "rr").is_ok_and(|a| a.len() == 3)
    });
    assert_eq!(nslookup(&client, "rr"), nslookup(&client, "tasks.rr"));
    let nx = nslookup(&client, "nosuch").expect_err("unknown name");
    assert!(nx.contains("NXDOMAIN"), "unknown name: {nx}");
    let foreign = nslookup(&client, "secret").expect_err("other network");
    assert!(
        foreign.contains("NXDOMAIN"),
        "service on another network: {foreign}"
    );
    let outside = nslookup(&client, "outside.example").expect("forwarded");
    assert_eq!(outside, BTreeSet::from(["198.18.0.99".to_string()]));
}

/// A resolver on `UPSTREAM` inside a host namespace answering every A query with
/// `OUTSIDE_ADDR` (and other types with no records); stops when dropped.
struct FakeUpstream {
    stop: Arc<AtomicBool>,
}

impl FakeUpstream {
    fn start(host_ns: &str) -> Self {
        let ns = File::open(format!("/run/netns/{host_ns}")).expect("host namespace");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let socket = UdpSocket::bind(UPSTREAM).expect("bind the fake upstream");
            socket
                .set_read_timeout(Some(Duration::from_millis(200)))
                .expect("timeout");
            ready_tx.send(()).expect("ready");
            let mut buf = [0u8; 512];
            while !stopped.load(Ordering::SeqCst) {
                if let Ok((len, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(&answer(&buf[..len]), from);
                }
            }
        });
        ready_rx.recv().expect("fake upstream started");
        FakeUpstream { stop }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The reply to a one-question query: header flags QR+RD+RA, the question echoed, and for
/// type A one answer pointing back at the question name (offset 12).
fn answer(query: &[u8]) -> Vec<u8> {
    let Some(qname_end) = query.iter().skip(12).position(|&b| b == 0).map(|p| p + 13) else {
        return Vec::new();
    };
    let question_end = (qname_end + 4).min(query.len());
    let is_a = query.get(qname_end..qname_end + 2) == Some(&[0, 1]);
    let mut reply = query[..question_end].to_vec();
    reply[2] = 0x81;
    reply[3] = 0x80;
    reply[4..12].copy_from_slice(&[0, 1, 0, u8::from(is_a), 0, 0, 0, 0]);
    if is_a {
        reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        reply.extend_from_slice(&OUTSIDE_ADDR);
    }
    reply
}
