//! The overlay on a real kernel: two "hosts" as network namespaces on an
//! underlay bridge (192.0.2.0/24, inside its own namespace), "containers" as
//! `unshare --net sleep` processes. Needs root: run with
//! `cargo test -p swarmr-netdriver -- --include-ignored`.
//!
//! Connectivity is checked with TCP (a listener in one container namespace,
//! a connect from another), so no ping binary is needed. Every test uses its
//! own name prefix and underlay namespace, and a drop guard removes what it made.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use swarmr_netdriver::{
    mac_for_ip, Driver, HostDesired, KernelNetlink, LocalEndpoint, NetworkDesired, ReconcileReport,
    RemoteEndpoint,
};

static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// Runs `ip` with `args`, panicking with its stderr on failure.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ip` output, for inspecting a namespace.
fn ip_show(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `f` on a thread that entered the network namespace at `path`.
fn in_netns<T: Send + 'static>(path: String, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        let ns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        setns(&ns, CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("netns thread")
}

/// Everything one test creates; removed on drop, also after a failed assertion.
struct Lab {
    prefix: String,
    children: Vec<Child>,
}

impl Lab {
    /// An underlay namespace with a bridge, and hosts `h1`, `h2` on it at 192.0.2.1, .2.
    fn new() -> Self {
        let n = NEXT_LAB.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("swt{}{}", std::process::id() % 100_000, n);
        let lab = Lab {
            prefix,
            children: Vec::new(),
        };
        let ul = lab.ns("ul");
        ip(&["netns", "add", &ul]);
        ip(&["-n", &ul, "link", "add", "ulbr", "type", "bridge"]);
        ip(&["-n", &ul, "link", "set", "ulbr", "up"]);
        for (i, host) in ["h1", "h2"].iter().enumerate() {
            let ns = lab.ns(host);
            ip(&["netns", "add", &ns]);
            ip(&[
                "-n", &ul, "link", "add", host, "type", "veth", "peer", "name", "ul", "netns", &ns,
            ]);
            ip(&["-n", &ul, "link", "set", host, "master", "ulbr", "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("192.0.2.{}/24", i + 1),
                "dev",
                "ul",
            ]);
            ip(&["-n", &ns, "link", "set", "ul", "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        lab
    }

    fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// The node id of host `h1`/`h2` (unique per test run).
    fn node(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    /// A process in a fresh network namespace; returns its PID.
    fn container(&mut self) -> u32 {
        let child = Command::new("unshare")
            .args(["--net", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare");
        let pid = child.id();
        self.children.push(child);
        let own = std::fs::read_link("/proc/self/ns/net").expect("own netns");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_link(format!("/proc/{pid}/ns/net"))
            .ok()
            .as_ref()
            == Some(&own)
        {
            assert!(
                Instant::now() < deadline,
                "unshare did not enter a new netns"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        pid
    }

    fn kill(&mut self, pid: u32) {
        if let Some(child) = self.children.iter_mut().find(|c| c.id() == pid) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs the driver of `host` from inside that host's namespace.
    fn reconcile(&self, host: &str, desired: &HostDesired) -> ReconcileReport {
        let desired = desired.clone();
        in_netns(format!("/run/netns/{}", self.ns(host)), move || {
            runtime().block_on(async {
                let driver = Driver::new(KernelNetlink::new().expect("netlink"));
                driver.reconcile(&desired).await.expect("reconcile")
            })
        })
    }

    /// This test's sandboxes still under /run/netns.
    fn sandboxes(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir("/run/netns")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.retain(|n| n.starts_with(&format!("swr-{}", self.prefix)));
        names.sort();
        names
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for name in self.sandboxes() {
            let _ = Command::new("ip").args(["netns", "del", &name]).status();
        }
        for ns in ["h1", "h2", "ul"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(ns)])
                .status();
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn overlay_ip(net: u8, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, net, host)
}

fn local(id: &str, pid: u32, ifname: &str, ip: Ipv4Addr) -> LocalEndpoint {
    LocalEndpoint {
        endpoint_id: id.into(),
        container_pid: pid,
        ifname: ifname.into(),
        ip,
        mac: mac_for_ip(ip),
    }
}

fn remote(ip: Ipv4Addr, vtep: u8) -> RemoteEndpoint {
    RemoteEndpoint {
        ip,
        mac: mac_for_ip(ip),
        vtep: Ipv4Addr::new(192, 0, 2, vtep),
    }
}

fn network(
    vni: u32,
    net: u8,
    locals: Vec<LocalEndpoint>,
    remotes: Vec<RemoteEndpoint>,
) -> NetworkDesired {
    NetworkDesired {
        network_id: format!("net-{vni}"),
        vni,
        subnet: format!("10.0.{net}.0/24").parse().expect("subnet"),
        gateway: overlay_ip(net, 1),
        mtu: None,
        local_endpoints: locals,
        remote_endpoints: remotes,
    }
}

fn host(lab: &Lab, name: &str, vtep: u8, networks: Vec<NetworkDesired>) -> HostDesired {
    HostDesired {
        node_short_id: lab.node(name),
        underlay_addr: Ipv4Addr::new(192, 0, 2, vtep),
        networks,
        egress: None,
    }
}

/// Listens in the namespace of `pid`; the socket stays there.
fn listen(pid: u32) -> TcpListener {
    in_netns(format!("/proc/{pid}/ns/net"), || {
        TcpListener::bind("0.0.0.0:0").expect("bind")
    })
}

/// Connects from the namespace of `pid`, retrying while ARP/FDB settle.
fn connect(pid: u32, to: SocketAddr) -> std::io::Result<TcpStream> {
    in_netns(format!("/proc/{pid}/ns/net"), move || {
        let mut last = Err(ErrorKind::TimedOut.into());
        for _ in 0..3 {
            last = TcpStream::connect_timeout(&to, Duration::from_secs(1));
            if last.is_ok() || matches!(&last, Err(e) if e.kind() == ErrorKind::ConnectionRefused) {
                break;
            }
        }
        last
    })
}

/// True if a TCP round trip works from container `from` to `to_ip` in container `to`.
fn reaches(from: u32, to: u32, to_ip: Ipv4Addr) -> bool {
    let listener = listen(to);
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let server = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok((mut s, _)) = listener.accept() {
                let _ = s.set_nonblocking(false);
                let _ = s.write_all(b"pong");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let ok = connect(from, SocketAddr::from((to_ip, port))).is_ok_and(|mut s| {
        let mut buf = [0u8; 4];
        let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
        s.read_exact(&mut buf).is_ok() && &buf == b"pong"
    });
    let _ = server.join();
    ok
}

/// Two containers, one per host, on one network.
struct Pair {
    a: u32,
    b: u32,
    h1: HostDesired,
    h2: HostDesired,
}

fn pair(lab: &mut Lab) -> Pair {
    let (a, b) = (lab.container(), lab.container());
    let (ip_a, ip_b) = (overlay_ip(1, 2), overlay_ip(1, 3));
    // Host `n` runs `task` in `pid` at `ip`; the other task is at `peer_ip` on host `peer`.
    let side = |name, n, task, pid, ip, peer_ip, peer| {
        let locals = vec![local(task, pid, "eth0", ip)];
        host(
            lab,
            name,
            n,
            vec![network(4096, 1, locals, vec![remote(peer_ip, peer)])],
        )
    };
    let h1 = side("h1", 1, "task-a", a, ip_a, ip_b, 2);
    let h2 = side("h2", 2, "task-b", b, ip_b, ip_a, 1);
    for (name, desired) in [("h1", &h1), ("h2", &h2)] {
        let report = lab.reconcile(name, desired);
        assert!(report.is_ok(), "{name}: {report:?}");
    }
    Pair { a, b, h1, h2 }
}

#[test]
#[ignore = "needs root"]
fn containers_on_two_hosts_talk_and_reconcile_is_idempotent() {
    let mut lab = Lab::new();
    let p = pair(&mut lab);
    assert!(reaches(p.a, p.b, overlay_ip(1, 3)), "a -> b");
    assert!(reaches(p.b, p.a, overlay_ip(1, 2)), "b -> a");
    for (name, desired) in [("h1", &p.h1), ("h2", &p.h2)] {
        let again = lab.reconcile(name, desired);
        assert!(
            again.is_ok() && again.changes.is_empty(),
            "{name} changed: {again:?}"
        );
    }
    assert!(
        reaches(p.a, p.b, overlay_ip(1, 3)),
        "a -> b after second reconcile"
    );
    let link = ip_show(&[
        "-n",
        &format!("swr-{}-4096", lab.node("h1")),
        "-d",
        "link",
        "show",
        "vxlan0",
    ]);
    assert!(
        link.contains("vxlan id 4096") && link.contains("dstport 4789"),
        "{link}"
    );
    assert!(
        link.contains("nolearning") && link.contains("proxy"),
        "{link}"
    );
    let eth0 = ip_show(&["-n", &lab.ns("h1"), "link"]);
    assert!(
        !eth0.contains("swv"),
        "temporary vxlan left in host: {eth0}"
    );
    let container = Command::new("nsenter")
        .args([
            "-t",
            &p.a.to_string(),
            "-n",
            "ip",
            "-o",
            "link",
            "show",
            "eth0",
        ])
        .output()
        .expect("nsenter");
    let container = String::from_utf8_lossy(&container.stdout);
    assert!(
        container.contains("mtu 1450") && container.contains("02:42:0a:00:01:02"),
        "{container}"
    );
}

#[test]
#[ignore = "needs root"]
fn removed_remote_loses_fdb_and_neighbour_entries() {
    let mut lab = Lab::new();
    let mut p = pair(&mut lab);
    let sandbox = format!("swr-{}-4096", lab.node("h1"));
    let fdb = ip_show(&["-n", &sandbox, "neigh", "show", "dev", "vxlan0"]);
    assert!(
        fdb.contains("10.0.1.3") && fdb.contains("PERMANENT"),
        "{fdb}"
    );
    let out = Command::new("bridge")
        .args(["-n", &sandbox, "fdb", "show", "dev", "vxlan0"])
        .output()
        .expect("bridge");
    let fdb = String::from_utf8_lossy(&out.stdout);
    let entry = fdb
        .lines()
        .find(|l| l.starts_with("02:42:0a:00:01:03 dst 192.0.2.2"));
    assert!(entry.is_some_and(|l| l.contains("self permanent")), "{fdb}");
    // Traffic from b makes h1's bridge learn b's MAC on its vxlan0 port (`master br0`).
    assert!(reaches(p.a, p.b, overlay_ip(1, 3)), "a reaches b");

    p.h1.networks[0].remote_endpoints.clear();
    let report = lab.reconcile("h1", &p.h1);
    assert!(report.is_ok(), "{report:?}");
    let neigh = ip_show(&["-n", &sandbox, "neigh", "show", "dev", "vxlan0"]);
    assert!(!neigh.contains("10.0.1.3"), "{neigh}");
    let out = Command::new("bridge")
        .args(["-n", &sandbox, "fdb", "show", "dev", "vxlan0"])
        .output()
        .expect("bridge");
    let fdb = String::from_utf8_lossy(&out.stdout);
    assert!(
        !fdb.contains("02:42:0a:00:01:03"),
        "no entry for the gone endpoint, learned or static: {fdb}"
    );
    assert!(
        !reaches(p.a, p.b, overlay_ip(1, 3)),
        "a still reaches the removed b"
    );
}

#[test]
#[ignore = "needs root"]
fn networks_are_isolated_and_gone_networks_lose_their_sandbox() {
    let mut lab = Lab::new();
    let [a1, b1, a2, b2] = [
        lab.container(),
        lab.container(),
        lab.container(),
        lab.container(),
    ];
    // Same addresses on both networks: only the VNI keeps them apart.
    let (ip_a, ip_b) = (overlay_ip(1, 2), overlay_ip(1, 3));
    let net = |vni, pid, local_ip, remote_ip, vtep| {
        network(
            vni,
            1,
            vec![local(&format!("t{vni}-{pid}"), pid, "eth0", local_ip)],
            vec![remote(remote_ip, vtep)],
        )
    };
    let h1 = host(
        &lab,
        "h1",
        1,
        vec![net(4096, a1, ip_a, ip_b, 2), net(4097, a2, ip_a, ip_b, 2)],
    );
    let h2 = host(
        &lab,
        "h2",
        2,
        vec![net(4096, b1, ip_b, ip_a, 1), net(4097, b2, ip_b, ip_a, 1)],
    );
    assert!(lab.reconcile("h1", &h1).is_ok());
    assert!(lab.reconcile("h2", &h2).is_ok());
    assert!(reaches(a1, b1, ip_b), "a1 -> b1");
    assert!(reaches(a2, b2, ip_b), "a2 -> b2");
    // A listener only in b2: a1's connection must be refused by b1, never reach b2.
    let listener = listen(b2);
    let port = listener.local_addr().expect("addr").port();
    let err = connect(a1, SocketAddr::from((ip_b, port))).expect_err("a1 reached b2");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    drop(listener);

    let only_first = HostDesired {
        networks: h1.networks[..1].to_vec(),
        ..h1.clone()
    };
    let report = lab.reconcile("h1", &only_first);
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(
        lab.sandboxes().iter().filter(|s| s.contains("h1-")).count(),
        1,
        "{:?}",
        lab.sandboxes()
    );
    assert!(!lab
        .sandboxes()
        .contains(&format!("swr-{}-4097", lab.node("h1"))));
    assert!(
        reaches(a1, b1, ip_b),
        "a1 -> b1 after removing the other network"
    );
}

#[test]
#[ignore = "needs root"]
fn restarted_container_is_wired_again() {
    let mut lab = Lab::new();
    let mut p = pair(&mut lab);
    lab.kill(p.a);
    let a = lab.container();
    p.h1.networks[0].local_endpoints[0].container_pid = a;
    let report = lab.reconcile("h1", &p.h1);
    assert!(report.is_ok(), "{report:?}");
    assert!(reaches(a, p.b, overlay_ip(1, 3)), "restarted a -> b");
    assert!(lab.reconcile("h1", &p.h1).changes.is_empty());
}

#[test]
#[ignore = "needs root"]
fn a_failed_endpoint_leaves_the_others_wired() {
    let mut lab = Lab::new();
    let mut p = pair(&mut lab);
    let gone = lab.container();
    lab.kill(gone);
    let ghost = local("task-ghost", gone, "eth0", overlay_ip(1, 9));
    p.h1.networks[0].local_endpoints.push(ghost);
    let report = lab.reconcile("h1", &p.h1);
    assert_eq!(report.failed_endpoints.len(), 1, "{report:?}");
    assert_eq!(report.failed_endpoints[0].0, "task-ghost");
    assert!(reaches(p.a, p.b, overlay_ip(1, 3)));
}

#[test]
#[ignore = "needs root"]
fn teardown_removes_every_sandbox_of_the_node_only() {
    let mut lab = Lab::new();
    let p = pair(&mut lab);
    let (node, pid_a, desired) = (lab.node("h1"), p.a, p.h1.clone());
    // One long-lived driver: its cached connections must not pin the sandbox.
    let removed = in_netns(format!("/run/netns/{}", lab.ns("h1")), move || {
        runtime().block_on(async move {
            let driver = Driver::new(KernelNetlink::new().expect("netlink"));
            let report = driver.reconcile(&desired).await.expect("reconcile");
            assert!(report.changes.is_empty(), "{report:?}");
            let removed = driver.teardown(&node).await.expect("teardown");
            // The container's veth goes when the sandbox namespace is freed.
            let deadline = Instant::now() + Duration::from_secs(5);
            while container_links(pid_a).contains("eth0") {
                assert!(Instant::now() < deadline, "eth0 still in container a");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(driver.teardown(&node).await.expect("teardown").is_empty());
            removed
        })
    });
    assert_eq!(removed, vec![format!("swr-{}-4096", lab.node("h1"))]);
    assert_eq!(
        lab.sandboxes(),
        vec![format!("swr-{}-4096", lab.node("h2"))]
    );
}

/// `ip -o link` inside the namespace of `pid`.
fn container_links(pid: u32) -> String {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "ip", "-o", "link"])
        .output()
        .expect("nsenter");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
