//! swarmr's stored objects as Docker's Engine API shows them: services, tasks, nodes and
//! networks in bollard's models, then as JSON (with the spellings Docker writes).

use std::collections::HashMap;

use bollard_stubs::models as docker;
use serde_json::Value;
use swarmr_proto as pb;

use super::container;
use super::spec::{endpoint_to_docker, port_to_docker, to_docker};

/// RFC 3339 with nanoseconds, as Docker writes times.
pub fn time(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_nanos(at).to_string()
}

fn version(meta: Option<pb::Meta>) -> docker::ObjectVersion {
    docker::ObjectVersion {
        index: Some(meta.unwrap_or_default().version),
    }
}

/// Docker's JSON for a model, with Docker's own spelling of `Healthcheck`.
pub fn json<T: serde::Serialize>(model: &T) -> Value {
    let mut value = serde_json::to_value(model).unwrap_or(Value::Null);
    respell(&mut value);
    value
}

fn respell(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(v) = map.remove("HealthCheck") {
                map.insert("Healthcheck".into(), v);
            }
            map.values_mut().for_each(respell);
        }
        Value::Array(items) => items.iter_mut().for_each(respell),
        _ => {}
    }
}

pub fn service(view: &pb::ServiceView) -> Value {
    let service = view.service.clone().unwrap_or_default();
    let spec = service.spec.clone().unwrap_or_default();
    let meta = service.meta.unwrap_or_default();
    let model = docker::Service {
        id: Some(service.id.clone()),
        version: Some(version(service.meta)),
        created_at: Some(time(meta.created_at)),
        updated_at: Some(time(meta.updated_at)),
        spec: Some(to_docker(&spec)),
        endpoint: Some(docker::ServiceEndpoint {
            spec: Some(endpoint_to_docker(spec.endpoint_mode(), &spec.ports)),
            ports: Some(service.ports.iter().map(port_to_docker).collect()),
            virtual_ips: Some(
                service
                    .vips
                    .iter()
                    .map(|v| docker::ServiceEndpointVirtualIps {
                        network_id: Some(v.network_id.clone()),
                        addr: Some(v.addr.clone()),
                    })
                    .collect(),
            ),
        }),
        update_status: service.update_status.as_ref().map(update_status),
        service_status: Some(docker::ServiceServiceStatus {
            running_tasks: Some(view.running),
            desired_tasks: Some(view.desired),
            completed_tasks: Some(0),
        }),
        job_status: None,
    };
    let mut value = json(&model);
    // bollard's model has no PreviousSpec; Docker shows it after an update.
    if let (Some(previous), Value::Object(map)) = (&service.previous_spec, &mut value) {
        map.insert("PreviousSpec".into(), json(&to_docker(previous)));
    }
    value
}

fn update_status(status: &pb::UpdateStatus) -> docker::ServiceUpdateStatus {
    docker::ServiceUpdateStatus {
        state: status.state().label().parse().ok(),
        started_at: Some(time(status.started_at)),
        completed_at: (status.completed_at > 0).then(|| time(status.completed_at)),
        message: Some(status.message.clone()),
    }
}

pub fn task(view: &pb::TaskView) -> Value {
    let task = view.task.clone().unwrap_or_default();
    let status = task.status.clone().unwrap_or_default();
    let meta = task.meta.unwrap_or_default();
    let container = task.container.clone().unwrap_or_default();
    let docker_container = container::to_docker(&container);
    let model = docker::Task {
        id: Some(task.id.clone()),
        version: Some(version(task.meta)),
        created_at: Some(time(meta.created_at)),
        updated_at: Some(time(meta.updated_at)),
        labels: Some(HashMap::new()),
        spec: Some(docker::TaskSpec {
            container_spec: Some(docker_container.spec),
            resources: docker_container.resources,
            log_driver: docker_container.log_driver,
            networks: Some(
                task.networks
                    .iter()
                    .map(|n| docker::NetworkAttachmentConfig {
                        target: Some(n.network_id.clone()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            force_update: Some(container.force_update),
            ..Default::default()
        }),
        service_id: Some(task.service_id.clone()),
        slot: (task.slot > 0).then(|| i64::try_from(task.slot).unwrap_or(i64::MAX)),
        node_id: (!task.node_id.is_empty()).then(|| task.node_id.clone()),
        status: Some(docker::TaskStatus {
            timestamp: Some(time(status.timestamp.max(meta.updated_at))),
            state: status.state().label().parse().ok(),
            message: Some(status.message.clone()),
            err: Some(match task.scheduling_error.is_empty() {
                true => status.error.clone(),
                false => task.scheduling_error.clone(),
            })
            .filter(|e| !e.is_empty()),
            container_status: Some(docker::ContainerStatus {
                container_id: Some(status.container_id.clone()),
                pid: Some(i64::from(status.pid)),
                exit_code: Some(i64::from(status.exit_code)),
            }),
            port_status: None,
        }),
        desired_state: task.desired_state().label().parse().ok(),
        ..Default::default()
    };
    json(&model)
}

pub fn node(view: &pb::NodeView) -> Value {
    let node = view.node.clone().unwrap_or_default();
    let meta = node.meta.unwrap_or_default();
    let spec = node.spec.clone().unwrap_or_default();
    let description = node.description.clone().unwrap_or_default();
    let status = node.status.clone().unwrap_or_default();
    let reachability = view.manager_status();
    let manager_status = (node.role() == pb::NodeRole::Manager).then(|| docker::ManagerStatus {
        leader: Some(reachability == pb::ManagerReachability::Leader),
        reachability: Some(match reachability {
            pb::ManagerReachability::Unreachable => docker::Reachability::UNREACHABLE,
            pb::ManagerReachability::None => docker::Reachability::UNKNOWN,
            _ => docker::Reachability::REACHABLE,
        }),
        addr: Some(node.api_addr.clone()),
    });
    let model = docker::Node {
        id: Some(node.id.clone()),
        version: Some(version(node.meta)),
        created_at: Some(time(meta.created_at)),
        updated_at: Some(time(meta.updated_at)),
        spec: Some(docker::NodeSpec {
            name: None,
            labels: Some(spec.labels.clone()),
            role: spec.desired_role().label().parse().ok(),
            availability: spec.availability().label().to_lowercase().parse().ok(),
        }),
        description: Some(docker::NodeDescription {
            hostname: Some(description.hostname.clone()),
            platform: Some(docker::Platform {
                architecture: Some(description.arch.clone()),
                os: Some(description.os.clone()),
            }),
            engine: Some(docker::EngineDescription {
                engine_version: Some(description.engine_version.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: Some(docker::NodeStatus {
            state: Some(match status.state() {
                pb::NodeState::Ready => docker::NodeState::READY,
                pb::NodeState::Down => docker::NodeState::DOWN,
                pb::NodeState::Unknown => docker::NodeState::UNKNOWN,
            }),
            message: Some(status.message.clone()),
            addr: Some(status.addr.clone()),
        }),
        manager_status,
    };
    json(&model)
}

pub fn network(network: &pb::Network) -> Value {
    let spec = network.spec.clone().unwrap_or_default();
    let meta = network.meta.unwrap_or_default();
    let model = docker::Network {
        name: Some(spec.name.clone()),
        id: Some(network.id.clone()),
        created: Some(time(meta.created_at)),
        scope: Some("swarm".into()),
        driver: Some("overlay".into()),
        ipam: Some(docker::Ipam {
            driver: Some("default".into()),
            config: Some(vec![docker::IpamConfig {
                subnet: Some(network.subnet.clone()),
                gateway: Some(network.gateway.clone()),
                ..Default::default()
            }]),
            options: None,
        }),
        internal: Some(spec.internal),
        attachable: Some(spec.attachable),
        ingress: Some(spec.ingress),
        config_only: Some(false),
        options: Some(spec.options.clone()),
        labels: Some(spec.labels.clone()),
        ..Default::default()
    };
    let mut value = json(&model);
    // Docker's network JSON always carries these; bollard's model lacks them.
    if let Value::Object(map) = &mut value {
        map.insert("EnableIPv6".into(), Value::Bool(false));
        map.insert("Containers".into(), Value::Object(Default::default()));
    }
    value
}
