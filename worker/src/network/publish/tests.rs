use super::*;
use swarmr_proto::{
    Ingress, MeshNode, Network, Node, PortConfig, PublishedService, PublishedTask, TaskStatus,
};

fn host() -> HostNet {
    HostNet {
        enabled: true,
        egress_subnet: "172.18.0.0/16".parse().expect("subnet"),
        node_pid: 1,
    }
}

fn running(id: &str, service: &str) -> Task {
    let mut task = Task {
        id: id.into(),
        service_id: service.into(),
        status: Some(TaskStatus {
            state: TaskState::Running as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    task.set_desired_state(TaskState::Running);
    task
}

fn published(task: &str, node: &str, ingress: &str) -> PublishedTask {
    PublishedTask {
        task_id: task.into(),
        node_id: node.into(),
        node_addr: String::new(),
        ingress_addr: ingress.into(),
    }
}

fn port(published: u32, mode: PublishMode) -> PortConfig {
    PortConfig {
        target_port: 80,
        published_port: published,
        publish_mode: mode as i32,
        ..Default::default()
    }
}

/// Node `a` runs `web.1` (ingress) and `edge.1` (host mode); `web.2` runs on `b`.
fn message() -> SessionMessage {
    SessionMessage {
        node: Some(Node {
            id: "a".into(),
            ..Default::default()
        }),
        tasks: vec![running("w1", "web"), running("e1", "edge")],
        ingress: Some(Ingress {
            network: Some(Network::default()),
            nodes: ["a", "b"]
                .iter()
                .enumerate()
                .map(|(i, id)| MeshNode {
                    node_id: (*id).into(),
                    node_addr: String::new(),
                    ingress_addr: format!("10.0.9.{}", 2 + i),
                })
                .collect(),
            services: vec![
                PublishedService {
                    service_id: "web".into(),
                    ports: vec![port(8080, PublishMode::Ingress)],
                    tasks: vec![
                        published("w1", "a", "10.0.9.10"),
                        published("w2", "b", "10.0.9.11"),
                    ],
                    ..Default::default()
                },
                PublishedService {
                    service_id: "edge".into(),
                    ports: vec![port(8081, PublishMode::Host)],
                    ..Default::default()
                },
            ],
        }),
        ..Default::default()
    }
}

#[test]
fn the_mesh_balances_over_local_and_remote_tasks() {
    let (rules, routes) = desired(&message(), &host());
    let egress = mesh::egress_addrs(&message(), &host());
    let w1 = egress["w1"];
    let web = &rules.published[0];
    assert_eq!((web.protocol, web.port), ("tcp", 8080));
    assert_eq!(web.backends, [(w1, 80), (Ipv4Addr::new(10, 0, 9, 11), 80)]);
    assert_eq!(rules.mesh_arrivals, [(Ipv4Addr::new(10, 0, 9, 10), w1)]);
    let b = u32::from(Ipv4Addr::new(10, 0, 9, 3));
    assert_eq!(
        rules.mesh_marks,
        [(mac_for_ip(Ipv4Addr::new(10, 0, 9, 3)), b)]
    );
    assert_eq!(
        routes,
        [MeshRoute {
            mark: b,
            via: Ipv4Addr::new(10, 0, 9, 3)
        }]
    );
}

#[test]
fn host_mode_goes_only_to_the_local_task() {
    let (rules, _) = desired(&message(), &host());
    let edge = &rules.published[1];
    assert_eq!(edge.port, 8081);
    assert_eq!(
        edge.backends,
        [(mesh::egress_addrs(&message(), &host())["e1"], 80)]
    );
}

#[test]
fn a_stopping_task_is_no_backend() {
    let mut m = message();
    m.tasks[1].set_desired_state(TaskState::Shutdown);
    let (rules, _) = desired(&m, &host());
    assert!(rules.published[1].backends.is_empty());
}

#[test]
fn nothing_when_host_rules_are_off() {
    let off = HostNet {
        enabled: false,
        ..host()
    };
    let (rules, routes) = desired(&message(), &off);
    assert!(rules.is_empty() && routes.is_empty());
}
