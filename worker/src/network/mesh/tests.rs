use super::*;
use swarmr_proto::{
    MeshNode, NetworkAssignment, NetworkAttachment, NetworkSpec, PublishedService, PublishedTask,
};

fn host() -> HostNet {
    HostNet {
        enabled: true,
        egress_subnet: "172.18.0.0/16".parse().expect("subnet"),
        node_pid: 7,
    }
}

fn network(id: &str, internal: bool) -> Network {
    Network {
        id: id.into(),
        vni: 4100,
        subnet: "10.0.9.0/24".into(),
        gateway: "10.0.9.1".into(),
        spec: Some(NetworkSpec {
            internal,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn task(id: &str, networks: &[&str]) -> Task {
    let mut task = Task {
        id: id.into(),
        networks: networks
            .iter()
            .map(|n| NetworkAttachment {
                network_id: (*n).into(),
                addr: "10.0.9.5/24".into(),
            })
            .collect(),
        ..Default::default()
    };
    task.set_desired_state(TaskState::Running);
    task
}

fn mesh_node(id: &str, under: &str, ingress: &str) -> MeshNode {
    MeshNode {
        node_id: id.into(),
        node_addr: under.into(),
        ingress_addr: ingress.into(),
    }
}

fn message() -> SessionMessage {
    SessionMessage {
        tasks: vec![
            task("open", &["app", "ing"]),
            task("closed", &["secret"]),
            task("bare", &[]),
            task("both", &["secret", "app"]),
        ],
        networks: vec![
            NetworkAssignment {
                network: Some(network("app", false)),
                peers: vec![],
            },
            NetworkAssignment {
                network: Some(network("secret", true)),
                peers: vec![],
            },
        ],
        ingress: Some(Ingress {
            network: Some(network("ing", false)),
            nodes: vec![
                mesh_node("a", "192.0.2.1", "10.0.9.2"),
                mesh_node("b", "192.0.2.2", "10.0.9.3"),
            ],
            services: vec![PublishedService {
                tasks: vec![
                    PublishedTask {
                        task_id: "r".into(),
                        node_id: "b".into(),
                        node_addr: "192.0.2.2".into(),
                        ingress_addr: "10.0.9.7".into(),
                    },
                    PublishedTask {
                        task_id: "open".into(),
                        node_id: "a".into(),
                        node_addr: "192.0.2.1".into(),
                        ingress_addr: "10.0.9.5".into(),
                    },
                ],
                ..Default::default()
            }],
        }),
        ..Default::default()
    }
}

#[test]
fn internal_only_tasks_get_no_way_out() {
    let m = message();
    let got: Vec<String> = egress_addrs(&m, &host()).into_keys().collect();
    assert_eq!(got, ["bare", "both", "open"]);
}

#[test]
fn egress_addresses_are_distinct_stable_and_inside_the_subnet() {
    let m = message();
    let first = egress_addrs(&m, &host());
    assert_eq!(
        first,
        egress_addrs(&m, &host()),
        "same message, same addresses"
    );
    let subnet: Ipv4Net = "172.18.0.0/16".parse().expect("subnet");
    let mut seen = HashSet::new();
    for ip in first.values() {
        assert!(
            subnet.contains(*ip) && *ip != Ipv4Addr::new(172, 18, 0, 1),
            "{ip}"
        );
        assert!(seen.insert(*ip), "{ip} twice");
    }
}

#[test]
fn a_tiny_subnet_still_gives_distinct_addresses() {
    let tiny = HostNet {
        egress_subnet: "172.18.0.0/29".parse().expect("subnet"),
        ..host()
    };
    let addrs = egress_addrs(&message(), &tiny);
    let distinct: HashSet<_> = addrs.values().collect();
    assert_eq!(distinct.len(), addrs.len());
}

#[test]
fn the_egress_interface_follows_the_overlay_ones() {
    let m = message();
    let pids = BTreeMap::from([("open".to_string(), 11), ("bare".to_string(), 12)]);
    let egress = egress_desired(&m, &host(), &pids).expect("egress");
    let names: Vec<(&str, &str)> = egress
        .endpoints
        .iter()
        .map(|e| (e.endpoint_id.as_str(), e.ifname.as_str()))
        .collect();
    // `open` is on app (eth0) and the ingress network (no interface).
    assert_eq!(names, [("open", "eth1"), ("bare", "eth0")]);
    assert_eq!(egress.gateway, Ipv4Addr::new(172, 18, 0, 1));
}

#[test]
fn remote_tasks_sit_behind_their_node_on_the_mesh() {
    let net = ingress_desired("a", &message(), &host()).expect("mesh");
    assert_eq!(net.local_endpoints[0].ifname, INGRESS_IFNAME);
    assert_eq!(net.local_endpoints[0].container_pid, 7);
    assert_eq!(net.local_endpoints[0].ip, Ipv4Addr::new(10, 0, 9, 2));
    let b_mac = mac_for_ip(Ipv4Addr::new(10, 0, 9, 3));
    let remotes: Vec<(Ipv4Addr, [u8; 6])> =
        net.remote_endpoints.iter().map(|r| (r.ip, r.mac)).collect();
    assert_eq!(
        remotes,
        [
            (Ipv4Addr::new(10, 0, 9, 3), b_mac),
            (Ipv4Addr::new(10, 0, 9, 7), b_mac)
        ],
        "node b's end, and b's task behind b's MAC; the local task is no peer"
    );
}

#[test]
fn nothing_in_the_node_namespace_when_disabled() {
    let off = HostNet {
        enabled: false,
        ..host()
    };
    assert!(ingress_desired("a", &message(), &off).is_none());
    assert!(egress_desired(&message(), &off, &BTreeMap::new()).is_none());
}
