//! The dashboard at `/`: a page served from the binary (`assets/`, no build step) that
//! polls `/api/overview`, a JSON view of this manager's replica: nodes, services, tasks
//! that run or should, and each overlay network with the tasks on every host and the
//! host's VTEP (its underlay address). Read-only.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};
use swarmr_proto::convert::now_millis;
use swarmr_proto::{Network, Node, NodeRole, Service, Task, TaskState};

use crate::core::Core;
use crate::error::StoreError;

pub const INDEX_HTML: &str = include_str!("assets/index.html");
pub const APP_JS: &str = include_str!("assets/app.js");
pub const STYLE_CSS: &str = include_str!("assets/style.css");

/// Tasks listed at most (the ones that should run come first).
const MAX_TASKS: usize = 2000;

pub fn overview(core: &Core) -> Result<Value, StoreError> {
    let store = core.store();
    let nodes: Vec<Node> = store.list()?;
    let services: Vec<Service> = store.list()?;
    let networks: Vec<Network> = store.list()?;
    let mut tasks: Vec<Task> = store.list()?;
    tasks.retain(|t| t.desired_state() == TaskState::Running || !t.current_state().is_terminal());
    tasks.sort_by(|a, b| (&a.service_name, a.slot).cmp(&(&b.service_name, b.slot)));
    tasks.truncate(MAX_TASKS);
    let leader = core.leader().map(|(id, _)| id);
    let hostname: HashMap<&str, String> = nodes
        .iter()
        .map(|n| {
            (
                n.id.as_str(),
                n.description.clone().unwrap_or_default().hostname,
            )
        })
        .collect();
    let cluster_id = store.cluster()?.map(|c| c.id).unwrap_or_default();
    Ok(json!({
        "cluster": {
            "id": cluster_id,
            "answered_by": core.node_id(),
            "time_ms": now_millis(),
        },
        "nodes": nodes.iter().map(|n| node_json(n, leader, &tasks)).collect::<Vec<_>>(),
        "services": services.iter().map(|s| service_json(s, &tasks)).collect::<Vec<_>>(),
        "tasks": tasks.iter().map(|t| task_json(t, &hostname)).collect::<Vec<_>>(),
        "networks": networks.iter().map(|n| network_json(n, &nodes, &tasks)).collect::<Vec<_>>(),
    }))
}

fn runs(task: &Task) -> bool {
    task.current_state() == TaskState::Running && task.desired_state() == TaskState::Running
}

fn node_json(node: &Node, leader: Option<u64>, tasks: &[Task]) -> Value {
    let description = node.description.clone().unwrap_or_default();
    let resources = description.resources.unwrap_or_default();
    let status = node.status.clone().unwrap_or_default();
    let manager = node.role() == NodeRole::Manager;
    json!({
        "id": node.id,
        "hostname": description.hostname,
        "role": node.role().label(),
        "leader": manager && Some(node.raft_id) == leader,
        "status": status.state().label(),
        "message": status.message,
        "availability": node.spec.clone().unwrap_or_default().availability().label(),
        "addr": status.addr,
        "engine": description.engine_version,
        "cpus": resources.nano_cpus as f64 / 1e9,
        "memory_bytes": resources.memory_bytes,
        "tasks_running": tasks.iter().filter(|t| t.node_id == node.id && runs(t)).count(),
    })
}

fn service_json(service: &Service, tasks: &[Task]) -> Value {
    let spec = service.spec.clone().unwrap_or_default();
    let mine = || tasks.iter().filter(|t| t.service_id == service.id);
    let desired = match spec.replicas {
        Some(n) => n as usize,
        None => mine()
            .filter(|t| t.desired_state() == TaskState::Running)
            .count(),
    };
    let update = service.update_status.clone().unwrap_or_default();
    let ports: Vec<Value> = service
        .ports
        .iter()
        .map(|p| {
            json!({
                "published": p.published_port,
                "target": p.target_port,
                "protocol": p.protocol().label(),
                "mode": p.publish_mode().label(),
            })
        })
        .collect();
    json!({
        "id": service.id,
        "name": spec.name,
        "mode": if spec.replicas.is_some() { "replicated" } else { "global" },
        "running": mine().filter(|t| runs(t)).count(),
        "desired": desired,
        "image": spec.container.unwrap_or_default().image,
        "ports": ports,
        "update_state": update.state().label(),
        "update_message": update.message,
    })
}

fn task_json(task: &Task, hostname: &HashMap<&str, String>) -> Value {
    let status = task.status.clone().unwrap_or_default();
    json!({
        "id": task.id,
        "name": format!("{}.{}", task.service_name, task.slot),
        "service": task.service_name,
        "node": hostname.get(task.node_id.as_str()).cloned().unwrap_or_default(),
        "state": task.current_state().label(),
        "desired": task.desired_state().label(),
        "error": if status.error.is_empty() { task.scheduling_error.clone() } else { status.error },
        "since_ms": status.timestamp,
    })
}

/// The hosts a network has tasks on, each with its VTEP and the tasks' addresses.
fn network_json(network: &Network, nodes: &[Node], tasks: &[Task]) -> Value {
    let mut hosts: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for task in tasks.iter().filter(|t| !t.node_id.is_empty()) {
        for attachment in task.networks.iter().filter(|a| a.network_id == network.id) {
            hosts.entry(task.node_id.as_str()).or_default().push(json!({
                "name": format!("{}.{}", task.service_name, task.slot),
                "addr": attachment.addr,
                "state": task.current_state().label(),
            }));
        }
    }
    let hosts: Vec<Value> = hosts
        .into_iter()
        .map(|(node_id, tasks)| {
            let node = nodes.iter().find(|n| n.id == node_id);
            let hostname = node
                .and_then(|n| n.description.as_ref())
                .map(|d| d.hostname.clone());
            let vtep = node.and_then(|n| n.status.as_ref()).map(|s| s.addr.clone());
            json!({
                "node": hostname.unwrap_or_else(|| node_id.to_string()),
                "vtep": vtep.unwrap_or_default(),
                "tasks": tasks,
            })
        })
        .collect();
    let spec = network.spec.clone().unwrap_or_default();
    json!({
        "id": network.id,
        "name": spec.name,
        "vni": network.vni,
        "subnet": network.subnet,
        "internal": spec.internal,
        "ingress": network.is_ingress(),
        "hosts": hosts,
    })
}
