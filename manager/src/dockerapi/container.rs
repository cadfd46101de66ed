//! Docker's `ContainerSpec` (with the task template's `Resources` and `LogDriver`, which
//! swarmr keeps in its container spec) to swarmr's and back, in the same round-trip
//! discipline as `spec.rs`: what does not come back is refused by name.

use std::collections::HashMap;

use bollard_stubs::models as docker;
use swarmr_proto as pb;

use super::files;
use super::spec::{ms, nonempty, nonempty_map, ns};

fn text(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_string())
}

pub fn from_docker(template: &docker::TaskSpec) -> pb::ContainerSpec {
    let c = template.container_spec.clone().unwrap_or_default();
    let dns = c.dns_config.clone().unwrap_or_default();
    pb::ContainerSpec {
        image: c.image.clone().unwrap_or_default(),
        command: c.args.clone().unwrap_or_default(),
        env: c.env.clone().unwrap_or_default(),
        labels: c.labels.clone().unwrap_or_default(),
        healthcheck: c.health_check.as_ref().map(|h| pb::HealthConfig {
            test: h.test.clone().unwrap_or_default(),
            interval_ms: ms(h.interval),
            timeout_ms: ms(h.timeout),
            start_period_ms: ms(h.start_period),
            retries: u32::try_from(h.retries.unwrap_or(0)).unwrap_or(0),
        }),
        stop_grace_period_ms: c.stop_grace_period.map(|g| ms(Some(g))),
        stop_signal: c.stop_signal.clone().unwrap_or_default(),
        force_update: template.force_update.unwrap_or(0),
        mounts: c.mounts.iter().flatten().map(mount_from_docker).collect(),
        resources: template
            .resources
            .as_ref()
            .map(resources_from_docker)
            .filter(|r| r != &pb::ResourceRequirements::default()),
        entrypoint: c.command.clone().unwrap_or_default(),
        user: c.user.clone().unwrap_or_default(),
        workdir: c.dir.clone().unwrap_or_default(),
        hostname: c.hostname.clone().unwrap_or_default(),
        cap_add: c.capability_add.clone().unwrap_or_default(),
        cap_drop: c.capability_drop.clone().unwrap_or_default(),
        sysctls: c.sysctls.clone().unwrap_or_default(),
        ulimits: c
            .ulimits
            .iter()
            .flatten()
            .map(|u| pb::Ulimit {
                name: u.name.clone().unwrap_or_default(),
                soft: u.soft.unwrap_or(0),
                hard: u.hard.unwrap_or(0),
            })
            .collect(),
        read_only: c.read_only.unwrap_or(false),
        init: c.init,
        log_driver: template
            .log_driver
            .as_ref()
            .map(|d| pb::LogDriver {
                name: d.name.clone().unwrap_or_default(),
                options: d.options.clone().unwrap_or_default(),
            })
            .filter(|d| !d.name.is_empty() || !d.options.is_empty()),
        groups: c.groups.clone().unwrap_or_default(),
        dns_config: Some(pb::DnsConfig {
            search: dns.search.clone().unwrap_or_default(),
            options: dns.options.clone().unwrap_or_default(),
        })
        .filter(|d| d != &pb::DnsConfig::default()),
        hosts: c.hosts.clone().unwrap_or_default(),
        secrets: files::secrets_from_docker(c.secrets.as_deref().unwrap_or_default()),
        configs: files::configs_from_docker(c.configs.as_deref().unwrap_or_default()),
    }
}

fn mount_from_docker(m: &docker::Mount) -> pb::Mount {
    let volume = m.volume_options.clone().unwrap_or_default();
    let driver = volume.driver_config.clone().unwrap_or_default();
    let tmpfs = m.tmpfs_options.clone().unwrap_or_default();
    let kind = match m.typ {
        Some(docker::MountType::VOLUME) => pb::MountType::Volume,
        Some(docker::MountType::TMPFS) => pb::MountType::Tmpfs,
        _ => pb::MountType::Bind,
    };
    pb::Mount {
        r#type: kind as i32,
        source: m.source.clone().unwrap_or_default(),
        target: m.target.clone().unwrap_or_default(),
        read_only: m.read_only.unwrap_or(false),
        propagation: m
            .bind_options
            .as_ref()
            .and_then(|b| b.propagation)
            .map(|p| p.to_string())
            .unwrap_or_default(),
        no_copy: volume.no_copy.unwrap_or(false),
        volume_labels: volume.labels.clone().unwrap_or_default(),
        volume_driver: driver.name.clone().unwrap_or_default(),
        volume_options: driver.options.clone().unwrap_or_default(),
        tmpfs_size_bytes: tmpfs.size_bytes.unwrap_or(0),
        tmpfs_mode: u32::try_from(tmpfs.mode.unwrap_or(0)).unwrap_or(0),
    }
}

fn resources_from_docker(r: &docker::TaskSpecResources) -> pb::ResourceRequirements {
    let limits = r.limits.clone().unwrap_or_default();
    let reservations = r.reservations.clone().unwrap_or_default();
    let resources = |cpus: Option<i64>, memory: Option<i64>| {
        Some(pb::Resources {
            nano_cpus: cpus.unwrap_or(0),
            memory_bytes: memory.unwrap_or(0),
        })
        .filter(|r| r != &pb::Resources::default())
    };
    pb::ResourceRequirements {
        limits: resources(limits.nano_cpus, limits.memory_bytes),
        reservations: resources(reservations.nano_cpus, reservations.memory_bytes),
    }
}

/// The container spec, and the task template fields swarmr keeps with it.
pub struct DockerContainer {
    pub spec: docker::TaskSpecContainerSpec,
    pub resources: Option<docker::TaskSpecResources>,
    pub log_driver: Option<docker::TaskSpecLogDriver>,
}

pub fn to_docker(c: &pb::ContainerSpec) -> DockerContainer {
    let spec = docker::TaskSpecContainerSpec {
        image: Some(c.image.clone()),
        labels: nonempty_map(&c.labels),
        command: nonempty(c.entrypoint.clone()),
        args: nonempty(c.command.clone()),
        hostname: text(&c.hostname),
        env: nonempty(c.env.clone()),
        dir: text(&c.workdir),
        user: text(&c.user),
        groups: nonempty(c.groups.clone()),
        read_only: c.read_only.then_some(true),
        mounts: nonempty(c.mounts.iter().map(mount_to_docker).collect()),
        stop_signal: text(&c.stop_signal),
        stop_grace_period: c.stop_grace_period_ms.map(ns),
        health_check: c.healthcheck.as_ref().map(|h| docker::HealthConfig {
            test: Some(h.test.clone()),
            interval: Some(ns(h.interval_ms)),
            timeout: Some(ns(h.timeout_ms)),
            start_period: Some(ns(h.start_period_ms)),
            retries: Some(i64::from(h.retries)),
            start_interval: None,
        }),
        hosts: nonempty(c.hosts.clone()),
        dns_config: c
            .dns_config
            .as_ref()
            .map(|d| docker::TaskSpecContainerSpecDnsConfig {
                nameservers: None,
                search: nonempty(d.search.clone()),
                options: nonempty(d.options.clone()),
            }),
        init: c.init,
        secrets: files::secrets_to_docker(&c.secrets),
        configs: files::configs_to_docker(&c.configs),
        sysctls: nonempty_map(&c.sysctls),
        capability_add: nonempty(c.cap_add.clone()),
        capability_drop: nonempty(c.cap_drop.clone()),
        ulimits: nonempty(
            c.ulimits
                .iter()
                .map(|u| docker::ResourcesUlimits {
                    name: Some(u.name.clone()),
                    soft: Some(u.soft),
                    hard: Some(u.hard),
                })
                .collect(),
        ),
        ..Default::default()
    };
    DockerContainer {
        spec,
        resources: c.resources.as_ref().map(resources_to_docker),
        log_driver: c.log_driver.as_ref().map(|d| docker::TaskSpecLogDriver {
            name: Some(d.name.clone()),
            options: nonempty_map(&d.options),
        }),
    }
}

fn mount_to_docker(m: &pb::Mount) -> docker::Mount {
    let kind = m.r#type();
    let map = |m: &HashMap<String, String>| nonempty_map(m);
    docker::Mount {
        target: Some(m.target.clone()),
        source: text(&m.source),
        typ: m.r#type().label().parse().ok(),
        read_only: m.read_only.then_some(true),
        bind_options: (kind == pb::MountType::Bind && !m.propagation.is_empty()).then(|| {
            docker::MountBindOptions {
                propagation: m.propagation.parse().ok(),
                ..Default::default()
            }
        }),
        volume_options: (kind == pb::MountType::Volume).then(|| docker::MountVolumeOptions {
            no_copy: m.no_copy.then_some(true),
            labels: map(&m.volume_labels),
            driver_config: text(&m.volume_driver).map(|name| {
                docker::MountVolumeOptionsDriverConfig {
                    name: Some(name),
                    options: map(&m.volume_options),
                }
            }),
            subpath: None,
        }),
        tmpfs_options: (kind == pb::MountType::Tmpfs).then(|| docker::MountTmpfsOptions {
            size_bytes: (m.tmpfs_size_bytes != 0).then_some(m.tmpfs_size_bytes),
            mode: (m.tmpfs_mode != 0).then_some(i64::from(m.tmpfs_mode)),
            options: None,
        }),
        ..Default::default()
    }
}

fn resources_to_docker(r: &pb::ResourceRequirements) -> docker::TaskSpecResources {
    let limits = r.limits.unwrap_or_default();
    let reservations = r.reservations.unwrap_or_default();
    docker::TaskSpecResources {
        limits: Some(docker::Limit {
            nano_cpus: Some(limits.nano_cpus),
            memory_bytes: Some(limits.memory_bytes),
            pids: None,
        }),
        reservations: Some(docker::ResourceObject {
            nano_cpus: Some(reservations.nano_cpus),
            memory_bytes: Some(reservations.memory_bytes),
            generic_resources: None,
        }),
        ..Default::default()
    }
}
