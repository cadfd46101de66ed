//! `service inspect`: services shaped like `docker service inspect`, or `--pretty` text.

use serde_json::{json, Value};
use swarmr_proto::{GetServiceRequest, RestartCondition, Service, ServiceSpec};

use super::{joined_errors, mode_label, rollout_json, spec, workload_json};
use crate::client;
use crate::commands::node::millis_to_rfc3339;
use crate::output;

pub async fn inspect(host: &str, pretty: bool, references: Vec<String>) -> anyhow::Result<()> {
    let mut control = client::control(host).await?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for reference in references {
        let reply = control.get_service(GetServiceRequest { reference }).await;
        match reply.map(|r| r.into_inner().service.and_then(|v| v.service)) {
            Ok(Some(service)) => found.push(service),
            Ok(None) => errors.push("the manager returned no service".to_string()),
            Err(status) => errors.push(output::status_text(&status)),
        }
    }
    if pretty {
        found.iter().for_each(|s| print!("{}", pretty_text(s)));
    } else {
        let values: Vec<Value> = found.iter().map(inspect_json).collect();
        println!("{}", serde_json::to_string_pretty(&values)?);
    }
    joined_errors(errors)
}

fn condition_label(condition: RestartCondition) -> &'static str {
    match condition {
        RestartCondition::Any => "any",
        RestartCondition::OnFailure => "on-failure",
        RestartCondition::None => "none",
    }
}

fn endpoint_label(spec: &swarmr_proto::ServiceSpec) -> &'static str {
    match spec.endpoint_mode() {
        swarmr_proto::EndpointMode::Vip => "vip",
        swarmr_proto::EndpointMode::Dnsrr => "dnsrr",
    }
}

/// The container's command goes under `Args`: it replaces the image's CMD, as Docker's
/// `Args` does (Docker's `Command` would replace the ENTRYPOINT).
fn inspect_json(service: &Service) -> Value {
    let meta = service.meta.unwrap_or_default();
    let spec = spec(service);
    let mut endpoint = json!({ "Spec": endpoint_spec_json(&spec) });
    if !service.ports.is_empty() {
        endpoint["Ports"] = ports_json(&service.ports);
    }
    if !service.vips.is_empty() {
        let vips: Vec<Value> = service
            .vips
            .iter()
            .map(|v| json!({ "NetworkID": v.network_id, "Addr": v.addr }))
            .collect();
        endpoint["VirtualIPs"] = json!(vips);
    }
    let mut value = json!({
        "ID": service.id,
        "Version": { "Index": meta.version },
        "CreatedAt": millis_to_rfc3339(meta.created_at),
        "UpdatedAt": millis_to_rfc3339(meta.updated_at),
        "Spec": spec_json(&spec),
        "Endpoint": endpoint,
    });
    if let Some(previous) = &service.previous_spec {
        value["PreviousSpec"] = spec_json(previous);
    }
    if let Some(status) = &service.update_status {
        value["UpdateStatus"] = rollout_json::update_status(status);
    }
    value
}

/// Docker's `ServiceSpec` shape.
fn spec_json(spec: &ServiceSpec) -> Value {
    let container = spec.container.clone().unwrap_or_default();
    let restart = spec.restart.unwrap_or_default();
    let mut container_spec = json!({ "Image": container.image, "Labels": container.labels });
    if !container.command.is_empty() {
        container_spec["Args"] = json!(container.command);
    }
    if !container.env.is_empty() {
        container_spec["Env"] = json!(container.env);
    }
    rollout_json::add_container_fields(&container, &mut container_spec);
    workload_json::add_container_fields(&container, &mut container_spec);
    let placement = match spec.constraints.is_empty() {
        true => json!({}),
        false => json!({ "Constraints": spec.constraints }),
    };
    let networks: Vec<Value> = spec
        .networks
        .iter()
        .map(|n| json!({ "Target": n }))
        .collect();
    let mode = match spec.global {
        true => json!({ "Global": {} }),
        false => json!({ "Replicated": { "Replicas": spec.replicas.unwrap_or_default() } }),
    };
    let mut value = json!({
        "Name": spec.name,
        "Labels": spec.labels,
        "TaskTemplate": {
            "ContainerSpec": container_spec,
            "RestartPolicy": {
                "Condition": condition_label(restart.condition()),
                "Delay": restart.delay_ms.saturating_mul(1_000_000),
                "MaxAttempts": restart.max_attempts,
            },
            "Placement": placement,
            "Networks": networks,
            "ForceUpdate": container.force_update,
        },
        "Mode": mode,
        "EndpointSpec": endpoint_spec_json(spec),
    });
    workload_json::add_task_template_fields(&container, &mut value["TaskTemplate"]);
    if let Some(config) = &spec.update_config {
        value["UpdateConfig"] = rollout_json::update_config(config);
    }
    if let Some(config) = &spec.rollback_config {
        value["RollbackConfig"] = rollout_json::update_config(config);
    }
    value
}

/// Docker's `EndpointSpec`: the mode, and the ports as the spec asks for them.
fn endpoint_spec_json(spec: &ServiceSpec) -> Value {
    let mut endpoint_spec = json!({ "Mode": endpoint_label(spec) });
    if !spec.ports.is_empty() {
        endpoint_spec["Ports"] = ports_json(&spec.ports);
    }
    endpoint_spec
}

/// Docker's `PortConfig` objects. A spec port left to the cluster has no
/// `PublishedPort`, as in Docker's spec.
fn ports_json(ports: &[swarmr_proto::PortConfig]) -> Value {
    let entries: Vec<Value> = ports
        .iter()
        .map(|p| {
            let mut entry = json!({
                "Protocol": p.protocol().label(),
                "TargetPort": p.target_port,
                "PublishMode": p.publish_mode().label(),
            });
            if p.published_port != 0 {
                entry["PublishedPort"] = json!(p.published_port);
            }
            entry
        })
        .collect();
    json!(entries)
}

/// `docker service inspect --pretty`, the parts swarmr has.
fn pretty_text(service: &Service) -> String {
    let spec = spec(service);
    let container = spec.container.clone().unwrap_or_default();
    let restart = spec.restart.unwrap_or_default();
    let mut lines = vec![
        format!("ID:\t\t{}", service.id),
        format!("Name:\t\t{}", spec.name),
    ];
    if !spec.labels.is_empty() {
        lines.push("Labels:".into());
        spec.labels
            .iter()
            .for_each(|(k, v)| lines.push(format!(" {k}={v}")));
    }
    let mode = mode_label(&spec);
    lines.push(format!(
        "Service Mode:\t{}{}",
        mode[..1].to_uppercase(),
        &mode[1..]
    ));
    if let Some(replicas) = spec.replicas.filter(|_| !spec.global) {
        lines.push(format!(" Replicas:\t{replicas}"));
    }
    if !spec.constraints.is_empty() {
        lines.push("Placement:".into());
        lines.push(format!(" Constraints:\t[{}]", spec.constraints.join(" ")));
    }
    let delay = std::time::Duration::from_millis(restart.delay_ms);
    lines.push("RestartPolicy:".into());
    lines.push(format!(
        " Condition:\t{}",
        condition_label(restart.condition())
    ));
    lines.push(format!(" Delay:\t\t{}", humantime::format_duration(delay)));
    lines.push(format!(" Max attempts:\t{}", restart.max_attempts));
    lines.push("ContainerSpec:".into());
    lines.push(format!(" Image:\t\t{}", container.image));
    if !container.command.is_empty() {
        lines.push(format!(" Args:\t\t{}", container.command.join(" ")));
    }
    if !container.env.is_empty() {
        lines.push(format!(" Env:\t\t{}", container.env.join(" ")));
    }
    lines.extend(workload_json::pretty_lines(&container));
    if !spec.networks.is_empty() {
        lines.push(format!("Networks:\t{}", spec.networks.join(" ")));
    }
    lines.push(format!("Endpoint Mode:\t{}", endpoint_label(&spec)));
    lines.iter().map(|l| format!("{l}\n")).collect::<String>() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmr_proto::{ContainerSpec, Meta, RestartPolicy, ServiceSpec, VirtualIp};

    fn service(global: bool) -> Service {
        Service {
            id: "svc1".into(),
            meta: Some(Meta {
                version: 7,
                created_at: 0,
                updated_at: 1000,
            }),
            spec: Some(ServiceSpec {
                name: "web".into(),
                container: Some(ContainerSpec {
                    image: "alpine".into(),
                    command: vec!["sh".into(), "-c".into(), "sleep 1d".into()],
                    ..Default::default()
                }),
                networks: vec!["net1".into()],
                replicas: (!global).then_some(3),
                global,
                constraints: vec!["node.role==manager".into()],
                restart: Some(RestartPolicy {
                    condition: RestartCondition::OnFailure as i32,
                    delay_ms: 5000,
                    max_attempts: 2,
                }),
                ..Default::default()
            }),
            vips: vec![VirtualIp {
                network_id: "net1".into(),
                addr: "10.0.1.2/24".into(),
            }],
            spec_version: 1,
            ..Default::default()
        }
    }

    #[test]
    fn published_ports_are_shaped_like_docker() {
        let mut published = service(false);
        let port = swarmr_proto::PortConfig {
            target_port: 80,
            published_port: 0,
            ..Default::default()
        };
        if let Some(spec) = published.spec.as_mut() {
            spec.ports = vec![port.clone()];
        }
        published.ports = vec![swarmr_proto::PortConfig {
            published_port: 30000,
            ..port
        }];
        let value = inspect_json(&published);
        let spec_port = &value["Spec"]["EndpointSpec"]["Ports"][0];
        assert_eq!(spec_port["TargetPort"], 80);
        assert!(
            spec_port.get("PublishedPort").is_none(),
            "left to the cluster"
        );
        let port = &value["Endpoint"]["Ports"][0];
        assert_eq!(
            (
                &port["Protocol"],
                &port["PublishedPort"],
                &port["PublishMode"]
            ),
            (&json!("tcp"), &json!(30000), &json!("ingress"))
        );
        assert_eq!(
            value["Endpoint"]["Spec"]["Ports"],
            value["Spec"]["EndpointSpec"]["Ports"]
        );
    }

    #[test]
    fn inspect_is_shaped_like_docker() {
        let value = inspect_json(&service(false));
        assert_eq!(value["Version"]["Index"], 7);
        let template = &value["Spec"]["TaskTemplate"];
        assert_eq!(template["ContainerSpec"]["Args"][2], "sleep 1d");
        assert_eq!(template["RestartPolicy"]["Delay"], 5_000_000_000u64);
        assert_eq!(template["RestartPolicy"]["Condition"], "on-failure");
        assert_eq!(
            template["Placement"]["Constraints"][0],
            "node.role==manager"
        );
        assert_eq!(template["Networks"][0]["Target"], "net1");
        assert_eq!(value["Spec"]["Mode"]["Replicated"]["Replicas"], 3);
        assert_eq!(value["Endpoint"]["Spec"]["Mode"], "vip");
        assert_eq!(value["Endpoint"]["VirtualIPs"][0]["Addr"], "10.0.1.2/24");
        assert_eq!(value.get("UpdateStatus"), None, "never updated");
        let mut updated = service(false);
        updated.previous_spec = updated.spec.clone();
        updated.update_status = Some(swarmr_proto::UpdateStatus {
            state: swarmr_proto::UpdateState::RollbackCompleted as i32,
            started_at: 1000,
            completed_at: 2000,
            message: "rollback completed".into(),
        });
        let value = inspect_json(&updated);
        assert_eq!(value["UpdateStatus"]["State"], "rollback_completed");
        assert_eq!(value["UpdateStatus"]["Message"], "rollback completed");
        assert_eq!(value["PreviousSpec"]["Name"], "web");
        let global = inspect_json(&service(true));
        assert_eq!(global["Spec"]["Mode"], json!({ "Global": {} }));
    }

    #[test]
    fn pretty_names_the_mode_and_policy() {
        let text = pretty_text(&service(false));
        assert!(
            text.contains("Service Mode:\tReplicated\n Replicas:\t3\n"),
            "{text}"
        );
        assert!(text.contains(" Delay:\t\t5s\n"), "{text}");
        assert!(pretty_text(&service(true)).contains("Service Mode:\tGlobal\n"));
    }
}
