//! What every node needs for published ports: the ingress network, every node's underlay
//! address (the routing mesh's next hops) and each publishing service's ports with its
//! serving tasks. Sent to every node while any service publishes a port, so a node with no
//! task of a service still answers its ingress ports.

use swarmr_proto::{Ingress, MeshNode, Node, NodeState, PublishedService, PublishedTask, Service};

use super::discovery::is_serving;
use super::index::View;

pub fn is_published(service: &Service) -> bool {
    !service.ports.is_empty()
}

/// A node that can carry mesh traffic: addresses known, not Down.
pub fn mesh_node(node: &Node) -> Option<MeshNode> {
    let status = node.status.as_ref()?;
    let ingress_addr = node.ingress_addr.split('/').next()?;
    (!status.addr.is_empty() && !ingress_addr.is_empty() && status.state() != NodeState::Down).then(
        || MeshNode {
            node_id: node.id.clone(),
            node_addr: status.addr.clone(),
            ingress_addr: ingress_addr.to_string(),
        },
    )
}

/// `None` while no service publishes a port.
pub fn for_cluster(view: &View) -> Option<Ingress> {
    let published: Vec<&Service> = view.services().filter(|s| is_published(s)).collect();
    if published.is_empty() {
        return None;
    }
    let network = view.ingress_network().cloned();
    let nodes = view.nodes().filter_map(mesh_node).collect();
    let services = published
        .into_iter()
        .map(|service| PublishedService {
            service_id: service.id.clone(),
            name: service
                .spec
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default(),
            ports: service.ports.clone(),
            tasks: serving_tasks(view, service),
        })
        .collect();
    Some(Ingress {
        network,
        nodes,
        services,
    })
}

/// The service's serving tasks with their ingress address: live endpoints of its
/// ingress network. Host-only services have none here; nodes use their own tasks.
fn serving_tasks(view: &View, service: &Service) -> Vec<PublishedTask> {
    let ingress_id = service.ingress_network_id.as_str();
    if ingress_id.is_empty() {
        return Vec::new();
    }
    view.endpoints(ingress_id)
        .filter(|t| t.service_id == service.id && is_serving(t))
        .filter_map(|t| {
            let attachment = t.networks.iter().find(|a| a.network_id == ingress_id)?;
            let ingress_addr = attachment.addr.split('/').next()?.to_string();
            Some(PublishedTask {
                task_id: t.id.clone(),
                node_id: t.node_id.clone(),
                node_addr: view.node_addr(&t.node_id).to_string(),
                ingress_addr,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmr_proto::store_action::{Kind, Target};
    use swarmr_proto::{
        Network, NetworkAttachment, NetworkSpec, NodeStatus, PortConfig, ServiceSpec, StoreAction,
        Task, TaskState, TaskStatus,
    };

    fn create(target: Target) -> StoreAction {
        StoreAction {
            kind: Kind::Create as i32,
            expected_version: 0,
            target: Some(target),
        }
    }

    fn node(id: &str, addr: &str, state: NodeState) -> Target {
        Target::Node(Node {
            id: id.into(),
            ingress_addr: format!("10.0.0.{}/24", 100 + addr.len()),
            status: Some(NodeStatus {
                addr: addr.into(),
                state: state as i32,
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn task(id: &str, node: &str, state: TaskState, addr: &str) -> Target {
        let mut task = Task {
            id: id.into(),
            service_id: "web".into(),
            node_id: node.into(),
            status: Some(TaskStatus {
                state: state as i32,
                ..Default::default()
            }),
            networks: vec![NetworkAttachment {
                network_id: "ing".into(),
                addr: addr.into(),
            }],
            ..Default::default()
        };
        task.set_desired_state(TaskState::Running);
        Target::Task(task)
    }

    fn cluster(ports: Vec<PortConfig>) -> View {
        let mut view = View::default();
        view.apply(&[
            create(Target::Network(Network {
                id: "ing".into(),
                spec: Some(NetworkSpec {
                    name: "ingress".into(),
                    ingress: true,
                    ..Default::default()
                }),
                ..Default::default()
            })),
            create(Target::Service(Service {
                id: "web".into(),
                spec: Some(ServiceSpec {
                    name: "web".into(),
                    ..Default::default()
                }),
                ports,
                ingress_network_id: "ing".into(),
                ..Default::default()
            })),
            create(node("a", "192.0.2.1", NodeState::Ready)),
            create(node("b", "192.0.2.2", NodeState::Ready)),
            create(node("c", "192.0.2.3", NodeState::Down)),
            create(task("t1", "a", TaskState::Running, "10.0.0.3/24")),
            create(task("t2", "b", TaskState::Starting, "10.0.0.4/24")),
        ]);
        view
    }

    #[test]
    fn every_live_node_and_the_serving_tasks() {
        let port = PortConfig {
            target_port: 80,
            published_port: 8080,
            ..Default::default()
        };
        let ingress = for_cluster(&cluster(vec![port])).expect("published");
        let hops: Vec<&str> = ingress.nodes.iter().map(|n| n.node_addr.as_str()).collect();
        assert_eq!(hops, ["192.0.2.1", "192.0.2.2"], "Down nodes left out");
        assert!(!ingress.nodes[0].ingress_addr.contains('/'));
        assert_eq!(ingress.network.map(|n| n.id).as_deref(), Some("ing"));
        let tasks = &ingress.services[0].tasks;
        assert_eq!(tasks.len(), 1, "a starting task serves nothing yet");
        assert_eq!(tasks[0].ingress_addr, "10.0.0.3");
        assert_eq!(tasks[0].node_addr, "192.0.2.1");
    }

    #[test]
    fn nothing_without_published_ports() {
        assert!(for_cluster(&cluster(Vec::new())).is_none());
    }
}
