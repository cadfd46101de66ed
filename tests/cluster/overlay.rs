//! The VXLAN overlay across hosts: every node in its own network namespace on an underlay
//! bridge, containers on the shared Docker daemon, wired by their node's worker. Needs
//! root, Docker and the kernel's VXLAN, hence `#[ignore]`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

use crate::util::*;

const HEARTBEAT: &[&str] = &["--dispatcher-heartbeat", "500ms"];

/// Container id → overlay IPv4 (no prefix), as `network inspect` reports them. A task
/// still starting has no container yet and is keyed by its task id, which `docker exec`
/// refuses: callers re-read until every endpoint answers.
fn endpoints(host: &str, network: &str) -> BTreeMap<String, String> {
    let out = ok(&["-H", host, "network", "inspect", network]);
    let v: Value = serde_json::from_str(&out).expect("JSON");
    v[0]["Containers"]
        .as_object()
        .map(|containers| {
            containers
                .iter()
                .filter_map(|(id, c)| {
                    let ip = c["IPv4Address"].as_str()?.split('/').next()?.to_string();
                    Some((id.clone(), ip))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One ping from inside `container` to `ip` is answered within a second.
pub(crate) fn pings(container: &str, ip: &str) -> bool {
    Command::new("docker")
        .args(["exec", container, "ping", "-c", "1", "-W", "1", ip])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn every_pair_pings(eps: &BTreeMap<String, String>) -> bool {
    eps.keys().all(|from| {
        eps.iter()
            .filter(|(to, _)| *to != from)
            .all(|(_, ip)| pings(from, ip))
    })
}

/// The VXLAN FDB entries (MAC → remote host, `self`) of a node for the network, read in
/// its sandbox. The bridge's own learned entries (`master br0`) age out by themselves.
fn fdb_macs(node_short: &str, vni: &str) -> String {
    let ns = format!("swr-{node_short}-{vni}");
    let out = Command::new("ip")
        .args([
            "netns", "exec", &ns, "bridge", "fdb", "show", "dev", "vxlan0",
        ])
        .output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.lines()
        .filter(|l| l.contains(" self"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn mac_of(ip: &str) -> String {
    let octets: Vec<u8> = ip.split('.').filter_map(|o| o.parse().ok()).collect();
    format!(
        "02:42:{:02x}:{:02x}:{:02x}:{:02x}",
        octets[0], octets[1], octets[2], octets[3]
    )
}

fn node_ids(host: &str) -> Vec<String> {
    node_rows(host)
        .iter()
        .filter_map(|r| r["ID"].as_str().map(|s| s[..12].to_string()))
        .collect()
}

#[test]
#[ignore = "needs root, Docker and VXLAN"]
fn six_tasks_on_three_hosts_all_reach_each_other_then_scale_down_cleans_fdb() {
    // The default heartbeat: under a loaded CI run a 500 ms one can mark a worker Down
    // for a moment and move its tasks, and then fewer hosts carry the network.
    let cluster = Cluster::three_hosts(&[]);
    let m1 = cluster.nodes[0].host();
    cli(&m1, "network create --driver overlay my-overlay");
    create_sleeper(
        &m1,
        "pinger",
        &["--network", "my-overlay", "--replicas", "6"],
    );
    wait_until("every task pings every other across hosts", || {
        let eps = endpoints(&m1, "my-overlay");
        eps.len() == 6 && every_pair_pings(&eps)
    });
    let eps = endpoints(&m1, "my-overlay");
    let inspect: Value =
        serde_json::from_str(&cli(&m1, "network inspect my-overlay")).expect("JSON");
    let peers: BTreeSet<&str> = inspect[0]["Peers"]
        .as_array()
        .map(|peers| peers.iter().filter_map(|p| p["Name"].as_str()).collect())
        .unwrap_or_default();
    let hosting: BTreeSet<&str> = inspect[0]["Containers"]
        .as_object()
        .map(|cs| cs.values().filter_map(|c| c["Node"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        peers, hosting,
        "Peers lists exactly the hosts running its tasks"
    );
    assert_eq!(peers.len(), 3, "spread puts tasks on all three hosts");
    let vni = inspect[0]["Options"]["com.docker.network.driver.overlay.vxlanid_list"]
        .as_str()
        .expect("vni")
        .to_string();

    cli(&m1, "service scale pinger=2");
    wait_until("2 endpoints", || endpoints(&m1, "my-overlay").len() == 2);
    let kept: Vec<String> = endpoints(&m1, "my-overlay").into_values().collect();
    let gone: Vec<&String> = eps.values().filter(|ip| !kept.contains(ip)).collect();
    wait_until("the gone endpoints leave every host's FDB", || {
        node_ids(&m1).iter().all(|node| {
            let fdb = fdb_macs(node, &vni);
            gone.iter().all(|ip| !fdb.contains(&mac_of(ip)))
        })
    });
    let remaining = endpoints(&m1, "my-overlay");
    assert!(every_pair_pings(&remaining), "the two left still talk");
}

#[test]
#[ignore = "needs root, Docker and VXLAN"]
fn networks_are_isolated_and_a_task_on_two_networks_reaches_both() {
    let cluster = Cluster::three_hosts(HEARTBEAT);
    let m1 = cluster.nodes[0].host();
    cli(&m1, "network create red");
    cli(&m1, "network create blue");
    create_sleeper(&m1, "r", &["--network", "red", "--replicas", "2"]);
    create_sleeper(&m1, "b", &["--network", "blue", "--replicas", "2"]);
    create_sleeper(&m1, "both", &["--network", "red", "--network", "blue"]);
    wait_until("5 endpoints on red, 3... on blue", || {
        endpoints(&m1, "red").len() == 3 && endpoints(&m1, "blue").len() == 3
    });
    let red = endpoints(&m1, "red");
    let blue = endpoints(&m1, "blue");
    let both: Vec<&String> = red.keys().filter(|c| blue.contains_key(*c)).collect();
    assert_eq!(both.len(), 1, "one container on both networks");
    let both = both[0].clone();
    wait_until("the two-network task reaches both networks", || {
        red.iter()
            .chain(blue.iter())
            .filter(|(c, _)| **c != both)
            .all(|(_, ip)| pings(&both, ip))
    });
    let red_only = red.keys().find(|c| **c != both).expect("a red task");
    for (container, ip) in blue.iter().filter(|(c, _)| **c != both) {
        assert!(
            !pings(red_only, ip),
            "red reached blue's {ip} ({container})"
        );
    }
}

#[test]
#[ignore = "needs root, Docker and VXLAN"]
fn killed_worker_endpoints_leave_other_hosts_and_restart_restores_connectivity() {
    let mut cluster = Cluster::three_hosts(HEARTBEAT);
    let m1 = cluster.nodes[0].host();
    cli(&m1, "network create net");
    create_sleeper(&m1, "s", &["--network", "net", "--replicas", "3"]);
    wait_until("3 endpoints", || endpoints(&m1, "net").len() == 3);
    let inspect: Value = serde_json::from_str(&cli(&m1, "network inspect net")).expect("JSON");
    let vni = inspect[0]["Options"]["com.docker.network.driver.overlay.vxlanid_list"]
        .as_str()
        .expect("vni")
        .to_string();
    let on_h3: Vec<String> = inspect[0]["Containers"]
        .as_object()
        .expect("containers")
        .values()
        .filter(|c| c["Node"] == "h3")
        .filter_map(|c| {
            c["IPv4Address"]
                .as_str()
                .map(|a| a.split('/').next().unwrap_or_default().to_string())
        })
        .collect();
    assert!(!on_h3.is_empty(), "spread puts a task on h3");

    cluster.node("h3").kill();
    wait_until("h3's endpoints replaced", || {
        let eps = endpoints(&m1, "net");
        eps.len() == 3 && eps.values().all(|ip| !on_h3.contains(ip))
    });
    let m1_short: String = node_ids(&m1)
        .into_iter()
        .find(|id| inspect_id_is(&m1, "m1", id))
        .expect("m1 id");
    wait_until("h3's old endpoints leave m1's FDB", || {
        let fdb = fdb_macs(&m1_short, &vni);
        on_h3.iter().all(|ip| !fdb.contains(&mac_of(ip)))
    });
    wait_until("the replacements talk", || {
        let eps = endpoints(&m1, "net");
        eps.len() == 3 && every_pair_pings(&eps)
    });

    cluster.node("h3").restart();
    wait_until("h3 Ready", || {
        node_row(&m1, "h3").is_some_and(|r| r["Status"] == "Ready")
    });
    wait_until("connectivity after h3 came back", || {
        let eps = endpoints(&m1, "net");
        eps.len() == 3 && every_pair_pings(&eps)
    });
}

fn inspect_id_is(host: &str, name: &str, short: &str) -> bool {
    inspect(host, name)["ID"]
        .as_str()
        .is_some_and(|id| id.starts_with(short))
}

/// Runs a command in a node's sandbox for a network; its stdout as JSON (`-j` output).
fn sandbox_json(node_short: &str, vni: &str, command: &[&str]) -> Value {
    let ns = format!("swr-{node_short}-{vni}");
    let out = Command::new("ip")
        .args(["netns", "exec", &ns])
        .args(command)
        .output()
        .expect("ip netns exec");
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn field(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

/// The remote endpoints a sandbox holds, as (IP, MAC, VTEP): each permanent neighbour on
/// `vxlan0` joined with the FDB entry of its MAC.
fn kernel_remotes(node_short: &str, vni: &str) -> BTreeSet<(String, String, String)> {
    let fdb = sandbox_json(
        node_short,
        vni,
        &["bridge", "-j", "fdb", "show", "dev", "vxlan0"],
    );
    let vteps: BTreeMap<String, String> = fdb
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e.get("dst").is_some())
        .map(|e| (field(e, "mac"), field(e, "dst")))
        .collect();
    let neigh = sandbox_json(
        node_short,
        vni,
        &["ip", "-j", "neigh", "show", "dev", "vxlan0"],
    );
    neigh
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            let mac = field(n, "lladdr");
            let vtep = vteps.get(&mac).cloned().unwrap_or_default();
            (field(n, "dst"), mac, vtep)
        })
        .collect()
}

/// The links of a sandbox by kind: how many bridges, VXLAN devices and veths.
fn sandbox_links(node_short: &str, vni: &str) -> BTreeMap<String, usize> {
    let links = sandbox_json(node_short, vni, &["ip", "-j", "-d", "link", "show"]);
    let mut kinds = BTreeMap::new();
    for link in links.as_array().into_iter().flatten() {
        let kind = link["linkinfo"]["info_kind"].as_str().unwrap_or("other");
        *kinds.entry(kind.to_string()).or_insert(0) += 1;
    }
    kinds
}

/// True if every host's kernel holds exactly what `network inspect` reports: each remote
/// container as a neighbour and FDB entry towards its node, and each local one wired with
/// its address on its bridge.
fn inspect_matches_kernels(manager: &str, network: &str, hosts: &[(&str, String)]) -> bool {
    let Ok(inspect) =
        serde_json::from_str::<Value>(&ok(&["-H", manager, "network", "inspect", network]))
    else {
        return false;
    };
    let net = &inspect[0];
    let vni = field(
        &net["Options"],
        "com.docker.network.driver.overlay.vxlanid_list",
    );
    let vtep_of: BTreeMap<String, String> = net["Peers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| (field(p, "Name"), field(p, "IP")))
        .collect();
    let containers: Vec<&Value> = net["Containers"]
        .as_object()
        .map(|c| c.values().collect())
        .unwrap_or_default();
    hosts.iter().all(|(hostname, short)| {
        let ip_of = |c: &Value| {
            field(c, "IPv4Address")
                .split('/')
                .next()
                .unwrap_or("")
                .to_string()
        };
        let expected: BTreeSet<(String, String, String)> = containers
            .iter()
            .filter(|c| field(c, "Node") != *hostname)
            .map(|c| {
                let vtep = vtep_of.get(&field(c, "Node")).cloned().unwrap_or_default();
                (ip_of(c), field(c, "MacAddress"), vtep)
            })
            .collect();
        let locals = containers
            .iter()
            .filter(|c| field(c, "Node") == *hostname)
            .count();
        let veths = sandbox_links(short, &vni).get("veth").copied().unwrap_or(0);
        kernel_remotes(short, &vni) == expected && veths == locals
    })
}

/// `service ps --format json`: one object per line, as Docker prints it.
fn service_ps(manager: &str, service: &str) -> Vec<Value> {
    ok(&["-H", manager, "service", "ps", service, "--format", "json"])
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn node_short(manager: &str, hostname: &str) -> String {
    field(&inspect(manager, hostname), "ID")
        .chars()
        .take(12)
        .collect()
}

/// The task of `slot` once `service ps` shows it RUNNING: its container's `eth0` must
/// already hold its address, since a task reports RUNNING only once wired.
fn running_task_is_wired(manager: &str, service: &str, slot: u32) -> Option<bool> {
    let name = format!("{service}.{slot}");
    let task = service_ps(manager, service)
        .into_iter()
        .find(|t| field(t, "Name") == name && field(t, "CurrentState").starts_with("Running"))?;
    let container = Command::new("docker")
        .args(["ps", "-q", "--no-trunc", "--filter"])
        .arg(format!("label=com.swarmr.task.id={}", field(&task, "ID")))
        .output()
        .ok()?;
    let container = String::from_utf8_lossy(&container.stdout)
        .trim()
        .to_string();
    let addr = Command::new("docker")
        .args(["exec", &container, "ip", "-o", "-4", "addr", "show", "eth0"])
        .output()
        .ok()?;
    Some(addr.status.success() && String::from_utf8_lossy(&addr.stdout).contains("inet "))
}

#[test]
#[ignore = "needs root, Docker and VXLAN"]
fn network_inspect_matches_every_kernel_and_a_restarted_worker_duplicates_nothing() {
    let mut cluster = Cluster::three_hosts(HEARTBEAT);
    let m1 = cluster.nodes[0].host();
    cli(&m1, "network create net");
    create_sleeper(&m1, "s", &["--network", "net", "--replicas", "6"]);
    let hosts: Vec<(&str, String)> = ["m1", "h2", "h3"]
        .into_iter()
        .map(|h| (h, node_short(&m1, h)))
        .collect();
    wait_until("inspect matches every kernel", || {
        endpoints(&m1, "net").len() == 6 && inspect_matches_kernels(&m1, "net", &hosts)
    });

    cli(&m1, "service scale s=7");
    let mut wired = None;
    wait_until("slot 7 RUNNING", || {
        wired = running_task_is_wired(&m1, "s", 7);
        wired.is_some()
    });
    assert_eq!(
        wired,
        Some(true),
        "a RUNNING task's container is already wired"
    );

    let vni = field(
        &serde_json::from_str::<Value>(&cli(&m1, "network inspect net")).expect("JSON")[0]
            ["Options"],
        "com.docker.network.driver.overlay.vxlanid_list",
    );
    let h3 = &hosts[2].1;
    cluster.node("h3").restart();
    wait_until("h3 Ready", || {
        node_row(&m1, "h3").is_some_and(|r| r["Status"] == "Ready")
    });
    wait_until("inspect matches every kernel after h3 restarted", || {
        inspect_matches_kernels(&m1, "net", &hosts)
    });
    let on_h3 = service_ps(&m1, "s")
        .iter()
        .filter(|t| field(t, "Node") == "h3" && field(t, "DesiredState") == "Running")
        .count();
    let links = sandbox_links(h3, &vni);
    let sandboxes = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns");
    let h3_sandboxes = String::from_utf8_lossy(&sandboxes.stdout)
        .lines()
        .filter(|l| l.starts_with(&format!("swr-{h3}-")))
        .count();
    if on_h3 > 0 {
        assert_eq!(h3_sandboxes, 1, "one sandbox for h3's one network");
        assert_eq!(links.get("bridge"), Some(&1), "one bridge: {links:?}");
        assert_eq!(links.get("vxlan"), Some(&1), "one VXLAN device: {links:?}");
    } else {
        assert_eq!(h3_sandboxes, 0, "no sandbox once h3 has no task");
    }
    assert!(every_pair_pings(&endpoints(&m1, "net")), "all 7 still talk");
}
