//! `swarmr service ...`: create (validated, networks resolved to ids), list with
//! running/desired counts, inspect, scale, remove, tasks (`service ps`), logs fan-out.

use std::collections::HashMap;

use swarmr_proto::logs_client::LogsClient;
use swarmr_proto::{
    LogLine, Network, Node, RestartCondition, Service, ServiceSpec, ServiceView, Task,
    TaskLogsRequest, TaskState, TaskView,
};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::Status;
use tracing::debug;

use super::networks::Pending;
use super::ports;
use super::resolve::{check_name, resolve, Named};
use crate::ca;
use crate::constraint::parse_constraints;
use crate::core::{create_action, delete_action, Core};
use crate::limits;

pub(super) fn validate(core: &Core, spec: &mut ServiceSpec) -> Result<(), Status> {
    limits::check_service_spec(spec)?;
    if let Some(container) = &spec.container {
        super::workload::check_container(container)?;
    }
    check_name("service", &spec.name)?;
    let image = spec.container.as_ref().map_or("", |c| c.image.as_str());
    if image.trim().is_empty() {
        return Err(Status::invalid_argument(
            "an image is required: swarmr service create IMAGE",
        ));
    }
    if spec.global && spec.replicas.is_some() {
        return Err(Status::invalid_argument(
            "--replicas only works with --mode replicated",
        ));
    }
    if !spec.global && spec.replicas.is_none() {
        spec.replicas = Some(1);
    }
    parse_constraints(&spec.constraints).map_err(Status::invalid_argument)?;
    if RestartCondition::try_from(spec.restart.as_ref().map_or(0, |r| r.condition)).is_err() {
        return Err(Status::invalid_argument(
            "invalid restart condition: use any, on-failure or none",
        ));
    }
    ports::check(&spec.ports)?;
    super::files::resolve_refs(core, spec)?;
    let mut networks: Vec<Network> = Vec::new();
    for reference in &spec.networks {
        let network: Network = resolve(core, reference)?;
        if network.is_ingress() {
            return Err(Status::invalid_argument(
                "the ingress network carries published ports only: publish with --publish instead of --network ingress",
            ));
        }
        if !networks.iter().any(|n| n.id == network.id) {
            networks.push(network);
        }
    }
    let internal = |n: &Network| n.spec.as_ref().is_some_and(|s| s.internal);
    if !spec.ports.is_empty() && !networks.is_empty() && networks.iter().all(internal) {
        return Err(Status::invalid_argument(
            "a service on internal networks only cannot publish ports: add a network that is not --internal, or drop --publish",
        ));
    }
    resolve_aliases(core, spec, &networks)?;
    spec.networks = networks.into_iter().map(|n| n.id).collect();
    Ok(())
}

/// Network aliases name networks the service is on (stored by id) and are valid names.
fn resolve_aliases(
    core: &Core,
    spec: &mut ServiceSpec,
    networks: &[Network],
) -> Result<(), Status> {
    for entry in &mut spec.network_aliases {
        let network: Network = resolve(core, &entry.network)?;
        if !networks.iter().any(|n| n.id == network.id) {
            return Err(Status::invalid_argument(format!(
                "aliases for network {}: the service is not on it; add the network or drop its aliases",
                entry.network
            )));
        }
        for alias in &entry.aliases {
            check_name("network alias", alias)?;
        }
        entry.network = network.id;
    }
    Ok(())
}

/// The ports as published for a service with `spec`, and its ingress network (made now
/// if this is the cluster's first ingress port).
pub async fn publish(
    core: &Core,
    pending: &Pending,
    service_id: &str,
    spec: &ServiceSpec,
) -> Result<(Vec<swarmr_proto::PortConfig>, String), Status> {
    let services: Vec<Service> = core.store().list()?;
    let published = ports::assign(&services, service_id, &spec.ports)?;
    let ingress = if ports::needs_ingress(&published) {
        ports::ingress_network(core, pending).await?
    } else {
        String::new()
    };
    Ok((published, ingress))
}

pub async fn create(
    core: &Core,
    pending: &Pending,
    mut spec: ServiceSpec,
) -> Result<Service, Status> {
    validate(core, &mut spec)?;
    super::updates::check_update_configs(&spec)?;
    let existing: Vec<Service> = core.store().list()?;
    if let Some(clash) = existing.iter().find(|s| s.name() == spec.name) {
        return Err(Status::already_exists(format!(
            "service {:?} already exists (id {}): pass --name to pick another name",
            spec.name, clash.id
        )));
    }
    let id = ca::new_id();
    let (ports, ingress_network_id) = publish(core, pending, &id, &spec).await?;
    let service = Service {
        id,
        meta: None,
        spec: Some(spec),
        vips: Vec::new(),
        spec_version: 1,
        ports,
        ingress_network_id,
        update_status: None,
        previous_spec: None,
    };
    core.propose(vec![create_action(service.clone())]).await?;
    Ok(core.store().get(&service.id)?.unwrap_or(service))
}

fn is_running(task: &Task) -> bool {
    task.desired_state() == TaskState::Running
        && task
            .status
            .as_ref()
            .is_some_and(|s| s.state() == TaskState::Running)
}

fn view(service: Service, tasks: &[Task]) -> ServiceView {
    let own = || tasks.iter().filter(|t| t.service_id == service.id);
    let running = own().filter(|t| is_running(t)).count() as u64;
    let spec = service.spec.clone().unwrap_or_default();
    let desired = match spec.replicas {
        Some(replicas) if !spec.global => replicas,
        _ => own()
            .filter(|t| t.desired_state() == TaskState::Running && !t.node_id.is_empty())
            .count() as u64,
    };
    ServiceView {
        service: Some(service),
        running,
        desired,
    }
}

pub fn list(core: &Core) -> Result<Vec<ServiceView>, Status> {
    let tasks: Vec<Task> = core.store().list()?;
    let mut services: Vec<Service> = core.store().list()?;
    services.sort_by(|a, b| a.name().cmp(b.name()));
    Ok(services.into_iter().map(|s| view(s, &tasks)).collect())
}

pub fn get(core: &Core, reference: &str) -> Result<ServiceView, Status> {
    let service: Service = resolve(core, reference)?;
    let tasks: Vec<Task> = core.store().list()?;
    Ok(view(service, &tasks))
}

pub async fn scale(core: &Core, reference: &str, replicas: u64) -> Result<ServiceView, Status> {
    limits::check_replicas(replicas)?;
    let service: Service = resolve(core, reference)?;
    if service.spec.as_ref().is_none_or(|s| s.global) {
        return Err(Status::failed_precondition(format!(
            "service {} is in global mode: scale only works with replicated services",
            service.name()
        )));
    }
    core.update::<Service>(&service.id, |s| {
        let Some(spec) = s.spec.as_mut() else {
            return false;
        };
        if spec.replicas == Some(replicas) {
            return false;
        }
        spec.replicas = Some(replicas);
        s.spec_version += 1;
        true
    })
    .await?;
    get(core, &service.id)
}

pub async fn remove(core: &Core, reference: &str) -> Result<(), Status> {
    let service: Service = resolve(core, reference)?;
    core.propose(vec![delete_action(service)]).await?;
    Ok(())
}

pub fn tasks(core: &Core, reference: &str) -> Result<Vec<TaskView>, Status> {
    let service: Service = resolve(core, reference)?;
    let nodes: HashMap<String, String> = core
        .store()
        .list::<Node>()?
        .into_iter()
        .map(|n| (n.id.clone(), n.name().to_string()))
        .collect();
    let mut tasks: Vec<Task> = core
        .store()
        .list::<Task>()?
        .into_iter()
        .filter(|t| t.service_id == service.id)
        .collect();
    tasks.sort_by_key(|t| {
        (
            t.slot,
            t.node_id.clone(),
            std::cmp::Reverse(t.meta.map_or(0, |m| m.created_at)),
        )
    });
    Ok(tasks
        .into_iter()
        .map(|task| TaskView {
            node_hostname: nodes.get(&task.node_id).cloned().unwrap_or_default(),
            task: Some(task),
        })
        .collect())
}

/// Merges the logs of every task of the service that a node ran, asked of those nodes.
pub fn logs(
    core: &Core,
    reference: &str,
    follow: bool,
    tail: u64,
) -> Result<mpsc::Receiver<Result<LogLine, Status>>, Status> {
    let service: Service = resolve(core, reference)?;
    let nodes: HashMap<String, Node> = core
        .store()
        .list::<Node>()?
        .into_iter()
        .map(|n| (n.id.clone(), n))
        .collect();
    let tasks: Vec<Task> = core.store().list::<Task>()?;
    let (tx, rx) = mpsc::channel(256);
    for task in tasks
        .into_iter()
        .filter(|t| t.service_id == service.id && !t.node_id.is_empty())
    {
        let Some(node) = nodes.get(&task.node_id) else {
            continue;
        };
        let channel = core.node_channel(&node.api_addr)?;
        let tx = tx.clone();
        tokio::spawn(async move {
            let request = TaskLogsRequest {
                task_id: task.id.clone(),
                follow,
                tail,
            };
            let mut client = LogsClient::new(channel)
                .max_decoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES)
                .max_encoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES);
            let mut stream = match client.task_logs(request).await {
                Ok(reply) => reply.into_inner(),
                Err(status) => {
                    debug!(task.id = %task.id, %status, "no logs for task");
                    return;
                }
            };
            while let Some(line) = stream.next().await {
                if tx.send(line).await.is_err() {
                    return;
                }
            }
        });
    }
    Ok(rx)
}
