//! Docker's `ServiceSpec` (bollard's models) to swarmr's and back.
//!
//! `from_docker` takes what swarmr can hold and `to_docker` writes all of it, so a field
//! that does not survive `to_docker(from_docker(x))` is one swarmr does not support: the
//! request check (`check::unsupported`) compares the two and refuses such a request by
//! the field's name. Durations are nanoseconds in Docker and milliseconds here.

use std::collections::HashMap;

use bollard_stubs::models as docker;
use serde::de::DeserializeOwned;
use serde_json::json;
use swarmr_proto as pb;

use super::container;

const NS_PER_MS: i64 = 1_000_000;
/// Swarm's restart delay when a spec gives a policy without one.
const DEFAULT_RESTART_DELAY_MS: u64 = 5_000;

pub fn ns(ms: u64) -> i64 {
    i64::try_from(ms)
        .unwrap_or(i64::MAX)
        .saturating_mul(NS_PER_MS)
}

pub(super) fn ms(ns: Option<i64>) -> u64 {
    u64::try_from(ns.unwrap_or(0) / NS_PER_MS).unwrap_or(0)
}

pub(super) fn nonempty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

pub(super) fn nonempty_map(map: &HashMap<String, String>) -> Option<HashMap<String, String>> {
    (!map.is_empty()).then(|| map.clone())
}

/// A Docker enum from its wire spelling (every bollard enum parses its own labels).
fn label<T: std::str::FromStr>(text: &str) -> Option<T> {
    text.parse().ok()
}

pub fn from_docker(spec: &docker::ServiceSpec) -> pb::ServiceSpec {
    let template = spec.task_template.clone().unwrap_or_default();
    let attachments: Vec<docker::NetworkAttachmentConfig> = template
        .networks
        .clone()
        .or_else(|| spec.networks.clone())
        .unwrap_or_default();
    let (replicas, global) = mode_from_docker(spec.mode.as_ref());
    let endpoint = spec.endpoint_spec.clone().unwrap_or_default();
    pb::ServiceSpec {
        name: spec.name.clone().unwrap_or_default(),
        labels: spec.labels.clone().unwrap_or_default(),
        container: Some(container::from_docker(&template)),
        networks: attachments
            .iter()
            .map(|a| a.target.clone().unwrap_or_default())
            .collect(),
        network_aliases: attachments
            .iter()
            .filter(|a| a.aliases.as_ref().is_some_and(|v| !v.is_empty()))
            .map(|a| pb::NetworkAliases {
                network: a.target.clone().unwrap_or_default(),
                aliases: a.aliases.clone().unwrap_or_default(),
            })
            .collect(),
        replicas,
        global,
        constraints: template
            .placement
            .and_then(|p| p.constraints)
            .unwrap_or_default(),
        restart: template.restart_policy.as_ref().map(restart_from_docker),
        endpoint_mode: match endpoint.mode {
            Some(docker::EndpointSpecModeEnum::DNSRR) => pb::EndpointMode::Dnsrr,
            _ => pb::EndpointMode::Vip,
        } as i32,
        ports: endpoint
            .ports
            .unwrap_or_default()
            .iter()
            .map(port_from_docker)
            .collect(),
        update_config: spec.update_config.as_ref().and_then(rollout_from_docker),
        rollback_config: spec.rollback_config.as_ref().and_then(rollout_from_docker),
    }
}

fn mode_from_docker(mode: Option<&docker::ServiceSpecMode>) -> (Option<u64>, bool) {
    let Some(mode) = mode else {
        return (None, false);
    };
    if mode.global.is_some() {
        return (None, true);
    }
    let replicas = mode
        .replicated
        .as_ref()
        .and_then(|r| r.replicas)
        .map(|r| u64::try_from(r).unwrap_or(0));
    (replicas, false)
}

fn restart_from_docker(policy: &docker::TaskSpecRestartPolicy) -> pb::RestartPolicy {
    let condition = match policy.condition {
        Some(docker::TaskSpecRestartPolicyConditionEnum::NONE) => pb::RestartCondition::None,
        Some(docker::TaskSpecRestartPolicyConditionEnum::ON_FAILURE) => {
            pb::RestartCondition::OnFailure
        }
        _ => pb::RestartCondition::Any,
    };
    pb::RestartPolicy {
        condition: condition as i32,
        delay_ms: policy
            .delay
            .map_or(DEFAULT_RESTART_DELAY_MS, |d| ms(Some(d))),
        max_attempts: u64::try_from(policy.max_attempts.unwrap_or(0)).unwrap_or(0),
    }
}

fn port_from_docker(port: &docker::EndpointPortConfig) -> pb::PortConfig {
    use docker::{
        EndpointPortConfigProtocolEnum as Proto, EndpointPortConfigPublishModeEnum as Mode,
    };
    pb::PortConfig {
        name: port.name.clone().unwrap_or_default(),
        protocol: match port.protocol {
            Some(Proto::UDP) => pb::PortProtocol::Udp,
            _ => pb::PortProtocol::Tcp,
        } as i32,
        target_port: u32::try_from(port.target_port.unwrap_or(0)).unwrap_or(0),
        published_port: u32::try_from(port.published_port.unwrap_or(0)).unwrap_or(0),
        publish_mode: match port.publish_mode {
            Some(Mode::HOST) => pb::PublishMode::Host,
            _ => pb::PublishMode::Ingress,
        } as i32,
    }
}

/// Docker's update and rollback configs are two types with the same fields (the
/// rollback's failure action lacks `rollback`): both are read through their JSON.
fn rollout_from_docker<T: serde::Serialize>(config: &T) -> Option<pb::UpdateConfig> {
    let value = serde_json::to_value(config).ok()?;
    let text = |key: &str| value.get(key).and_then(|v| v.as_str()).unwrap_or("");
    let int = |key: &str| value.get(key).and_then(|v| v.as_i64());
    Some(pb::UpdateConfig {
        parallelism: u64::try_from(int("Parallelism").unwrap_or(0)).unwrap_or(0),
        delay_ms: ms(int("Delay")),
        failure_action: match text("FailureAction") {
            "continue" => pb::UpdateFailureAction::Continue,
            "rollback" => pb::UpdateFailureAction::Rollback,
            _ => pb::UpdateFailureAction::Pause,
        } as i32,
        monitor_ms: int("Monitor").filter(|m| *m > 0).map(|m| ms(Some(m))),
        max_failure_ratio: value
            .get("MaxFailureRatio")
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0) as f32,
        order: match text("Order") {
            "start-first" => pb::UpdateOrder::StartFirst,
            _ => pb::UpdateOrder::StopFirst,
        } as i32,
    })
}

fn rollout_to_docker<T: DeserializeOwned>(config: &pb::UpdateConfig) -> Option<T> {
    let mut value = json!({
        "Parallelism": config.parallelism,
        "Delay": ns(config.delay_ms),
        "FailureAction": config.failure_action().label(),
        "MaxFailureRatio": config.max_failure_ratio,
        "Order": config.order().label(),
    });
    if let Some(monitor) = config.monitor_ms {
        value["Monitor"] = json!(ns(monitor));
    }
    serde_json::from_value(value).ok()
}

pub fn to_docker(spec: &pb::ServiceSpec) -> docker::ServiceSpec {
    let container = spec.container.clone().unwrap_or_default();
    let docker_container = container::to_docker(&container);
    let networks = spec
        .networks
        .iter()
        .map(|target| docker::NetworkAttachmentConfig {
            target: Some(target.clone()),
            aliases: spec
                .network_aliases
                .iter()
                .find(|a| &a.network == target)
                .map(|a| a.aliases.clone()),
            driver_opts: None,
        })
        .collect();
    let mode = match spec.global {
        true => docker::ServiceSpecMode {
            global: Some(HashMap::new()),
            ..Default::default()
        },
        false => docker::ServiceSpecMode {
            replicated: Some(docker::ServiceSpecModeReplicated {
                replicas: Some(i64::try_from(spec.replicas.unwrap_or(1)).unwrap_or(i64::MAX)),
            }),
            ..Default::default()
        },
    };
    docker::ServiceSpec {
        name: Some(spec.name.clone()),
        labels: Some(spec.labels.clone()),
        task_template: Some(docker::TaskSpec {
            force_update: Some(container.force_update),
            container_spec: Some(docker_container.spec),
            resources: docker_container.resources,
            log_driver: docker_container.log_driver,
            restart_policy: spec.restart.as_ref().map(restart_to_docker),
            placement: Some(docker::TaskSpecPlacement {
                constraints: nonempty(spec.constraints.clone()),
                ..Default::default()
            }),
            networks: nonempty(networks),
            ..Default::default()
        }),
        mode: Some(mode),
        update_config: spec.update_config.as_ref().and_then(rollout_to_docker),
        rollback_config: spec.rollback_config.as_ref().and_then(rollout_to_docker),
        networks: None,
        endpoint_spec: Some(endpoint_to_docker(spec.endpoint_mode(), &spec.ports)),
    }
}

fn restart_to_docker(policy: &pb::RestartPolicy) -> docker::TaskSpecRestartPolicy {
    docker::TaskSpecRestartPolicy {
        condition: label(policy.condition().label()),
        delay: Some(ns(policy.delay_ms)),
        max_attempts: Some(i64::try_from(policy.max_attempts).unwrap_or(i64::MAX)),
        window: None,
    }
}

pub fn endpoint_to_docker(
    mode: pb::EndpointMode,
    ports: &[pb::PortConfig],
) -> docker::EndpointSpec {
    docker::EndpointSpec {
        mode: Some(match mode {
            pb::EndpointMode::Vip => docker::EndpointSpecModeEnum::VIP,
            pb::EndpointMode::Dnsrr => docker::EndpointSpecModeEnum::DNSRR,
        }),
        ports: nonempty(ports.iter().map(port_to_docker).collect()),
    }
}

pub fn port_to_docker(port: &pb::PortConfig) -> docker::EndpointPortConfig {
    docker::EndpointPortConfig {
        name: (!port.name.is_empty()).then(|| port.name.clone()),
        protocol: label(port.protocol().label()),
        target_port: Some(i64::from(port.target_port)),
        published_port: Some(i64::from(port.published_port)),
        publish_mode: label(port.publish_mode().label()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_spec() -> pb::ServiceSpec {
        pb::ServiceSpec {
            name: "web".into(),
            labels: [("a".to_string(), "b".to_string())].into(),
            container: Some(pb::ContainerSpec {
                image: "img".into(),
                command: vec!["sleep".into(), "9".into()],
                env: vec!["K=V".into()],
                labels: [("c".to_string(), String::new())].into(),
                healthcheck: Some(pb::HealthConfig {
                    test: vec!["CMD".into(), "true".into()],
                    interval_ms: 1500,
                    timeout_ms: 200,
                    start_period_ms: 0,
                    retries: 3,
                }),
                stop_grace_period_ms: Some(3000),
                stop_signal: "SIGINT".into(),
                force_update: 2,
                mounts: vec![
                    pb::Mount {
                        r#type: pb::MountType::Bind as i32,
                        source: "/srv".into(),
                        target: "/data".into(),
                        read_only: true,
                        propagation: "rslave".into(),
                        ..Default::default()
                    },
                    pb::Mount {
                        r#type: pb::MountType::Volume as i32,
                        source: "vol".into(),
                        target: "/v".into(),
                        no_copy: true,
                        volume_driver: "local".into(),
                        volume_options: [("o".to_string(), "x".to_string())].into(),
                        ..Default::default()
                    },
                    pb::Mount {
                        r#type: pb::MountType::Tmpfs as i32,
                        target: "/t".into(),
                        tmpfs_size_bytes: 1 << 20,
                        tmpfs_mode: 0o700,
                        ..Default::default()
                    },
                ],
                resources: Some(pb::ResourceRequirements {
                    limits: Some(pb::Resources {
                        nano_cpus: 500_000_000,
                        memory_bytes: 1 << 28,
                    }),
                    reservations: None,
                }),
                entrypoint: vec!["/bin/sh".into(), "-c".into()],
                user: "nobody".into(),
                workdir: "/w".into(),
                hostname: "{{.Service.Name}}-{{.Task.Slot}}".into(),
                cap_add: vec!["CAP_NET_ADMIN".into()],
                sysctls: [("net.core.somaxconn".to_string(), "1024".to_string())].into(),
                ulimits: vec![pb::Ulimit {
                    name: "nofile".into(),
                    soft: 1024,
                    hard: 2048,
                }],
                read_only: true,
                init: Some(true),
                log_driver: Some(pb::LogDriver {
                    name: "json-file".into(),
                    options: [("max-size".to_string(), "1m".to_string())].into(),
                }),
                groups: vec!["audio".into()],
                dns_config: Some(pb::DnsConfig {
                    search: vec!["example.internal".into()],
                    options: vec!["ndots:2".into()],
                }),
                hosts: vec!["192.0.2.9 db".into()],
                ..Default::default()
            }),
            networks: vec!["net".into()],
            network_aliases: vec![pb::NetworkAliases {
                network: "net".into(),
                aliases: vec!["w".into()],
            }],
            replicas: Some(3),
            global: false,
            constraints: vec!["node.role==manager".into()],
            restart: Some(pb::RestartPolicy {
                condition: pb::RestartCondition::OnFailure as i32,
                delay_ms: 2000,
                max_attempts: 4,
            }),
            endpoint_mode: pb::EndpointMode::Dnsrr as i32,
            ports: vec![pb::PortConfig {
                name: String::new(),
                protocol: pb::PortProtocol::Udp as i32,
                target_port: 53,
                published_port: 5353,
                publish_mode: pb::PublishMode::Host as i32,
            }],
            update_config: Some(pb::UpdateConfig {
                parallelism: 2,
                delay_ms: 1000,
                failure_action: pb::UpdateFailureAction::Rollback as i32,
                monitor_ms: Some(7000),
                max_failure_ratio: 0.25,
                order: pb::UpdateOrder::StartFirst as i32,
            }),
            rollback_config: Some(pb::UpdateConfig::default()),
        }
    }

    #[test]
    fn every_swarmr_field_survives_the_round_trip_through_dockers_spec() {
        let spec = full_spec();
        assert_eq!(from_docker(&to_docker(&spec)), spec);
        let global = pb::ServiceSpec {
            global: true,
            replicas: None,
            ..full_spec()
        };
        assert_eq!(from_docker(&to_docker(&global)), global);
    }

    #[test]
    fn dockers_defaults_fill_what_a_spec_leaves_out() {
        let docker: docker::ServiceSpec = serde_json::from_value(json!({
            "Name": "x",
            "TaskTemplate": {"ContainerSpec": {"Image": "i"}, "RestartPolicy": {}},
        }))
        .unwrap();
        let spec = from_docker(&docker);
        assert_eq!(
            spec.replicas, None,
            "swarmr's create makes that one replica"
        );
        assert!(!spec.global);
        let restart = spec.restart.unwrap();
        assert_eq!(restart.condition(), pb::RestartCondition::Any);
        assert_eq!(restart.delay_ms, 5000);
    }
}
