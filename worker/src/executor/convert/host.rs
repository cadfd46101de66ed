//! Mounts, resources and the container options of a spec in Docker's create body.

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountBindOptions,
    MountBindOptionsPropagationEnum, MountTmpfsOptions, MountType as DockerMountType,
    MountVolumeOptions, MountVolumeOptionsDriverConfig, ResourcesUlimits,
};
use swarmr_proto::MountType;

use crate::executor::types::ContainerOptions;

fn some_vec(items: &[String]) -> Option<Vec<String>> {
    (!items.is_empty()).then(|| items.to_vec())
}

fn some_text(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

fn non_zero(value: i64) -> Option<i64> {
    (value != 0).then_some(value)
}

/// Sets the options on the create body and its host config.
pub fn apply(options: &ContainerOptions, body: &mut ContainerCreateBody, host: &mut HostConfig) {
    body.entrypoint = some_vec(&options.entrypoint);
    body.user = some_text(&options.user);
    body.working_dir = some_text(&options.workdir);
    host.mounts = (!options.mounts.is_empty()).then(|| options.mounts.iter().map(mount).collect());
    host.nano_cpus = non_zero(options.limits.nano_cpus);
    host.memory = non_zero(options.limits.memory_bytes);
    host.memory_reservation = non_zero(options.memory_reservation);
    host.cap_add = some_vec(&options.cap_add);
    host.cap_drop = some_vec(&options.cap_drop);
    host.sysctls = (!options.sysctls.is_empty()).then(|| options.sysctls.clone());
    host.ulimits = (!options.ulimits.is_empty()).then(|| {
        let ulimit = |u: &swarmr_proto::Ulimit| ResourcesUlimits {
            name: Some(u.name.clone()),
            soft: Some(u.soft),
            hard: Some(u.hard),
        };
        options.ulimits.iter().map(ulimit).collect()
    });
    host.readonly_rootfs = options.read_only.then_some(true);
    host.init = Some(options.init);
    host.log_config = options.log_driver.as_ref().map(|d| HostConfigLogConfig {
        typ: Some(d.name.clone()),
        config: (!d.options.is_empty()).then(|| d.options.clone()),
    });
    host.group_add = some_vec(&options.groups);
    host.dns_search = some_vec(&options.dns_search);
    host.dns_options = some_vec(&options.dns_options);
    host.extra_hosts = some_vec(&options.extra_hosts);
}

/// Docker's mount for the spec's, with only the options of its type.
fn mount(m: &swarmr_proto::Mount) -> Mount {
    let mut out = Mount {
        target: Some(m.target.clone()),
        source: some_text(&m.source),
        read_only: m.read_only.then_some(true),
        ..Default::default()
    };
    match m.r#type() {
        MountType::Bind => {
            out.typ = Some(DockerMountType::BIND);
            let propagation = m.propagation.parse().ok();
            out.bind_options = propagation
                .filter(|p| *p != MountBindOptionsPropagationEnum::EMPTY)
                .map(|p| MountBindOptions {
                    propagation: Some(p),
                    ..Default::default()
                });
        }
        MountType::Volume => {
            out.typ = Some(DockerMountType::VOLUME);
            let driver = (!m.volume_driver.is_empty() || !m.volume_options.is_empty()).then(|| {
                MountVolumeOptionsDriverConfig {
                    name: some_text(&m.volume_driver),
                    options: (!m.volume_options.is_empty()).then(|| m.volume_options.clone()),
                }
            });
            out.volume_options = Some(MountVolumeOptions {
                no_copy: m.no_copy.then_some(true),
                labels: (!m.volume_labels.is_empty()).then(|| m.volume_labels.clone()),
                driver_config: driver,
                ..Default::default()
            });
        }
        MountType::Tmpfs => {
            out.typ = Some(DockerMountType::TMPFS);
            out.tmpfs_options = Some(MountTmpfsOptions {
                size_bytes: non_zero(m.tmpfs_size_bytes),
                mode: (m.tmpfs_mode != 0).then_some(i64::from(m.tmpfs_mode)),
                ..Default::default()
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn options_reach_the_host_config() {
        let options = ContainerOptions {
            entrypoint: vec!["sh".into(), "-c".into()],
            user: "1000:1000".into(),
            workdir: "/srv".into(),
            mounts: vec![
                swarmr_proto::Mount {
                    r#type: MountType::Bind as i32,
                    source: "/host".into(),
                    target: "/in".into(),
                    read_only: true,
                    propagation: "rslave".into(),
                    ..Default::default()
                },
                swarmr_proto::Mount {
                    r#type: MountType::Volume as i32,
                    source: "data".into(),
                    target: "/data".into(),
                    volume_driver: "local".into(),
                    ..Default::default()
                },
                swarmr_proto::Mount {
                    r#type: MountType::Tmpfs as i32,
                    target: "/t".into(),
                    tmpfs_size_bytes: 1 << 20,
                    tmpfs_mode: 0o1770,
                    ..Default::default()
                },
            ],
            limits: swarmr_proto::Resources {
                nano_cpus: 500_000_000,
                memory_bytes: 64 << 20,
            },
            memory_reservation: 32 << 20,
            cap_add: vec!["CAP_NET_ADMIN".into()],
            sysctls: HashMap::from([("net.core.somaxconn".into(), "1024".into())]),
            ulimits: vec![swarmr_proto::Ulimit {
                name: "nofile".into(),
                soft: 1,
                hard: 2,
            }],
            read_only: true,
            init: true,
            extra_hosts: vec!["db:10.0.0.5".into()],
            ..Default::default()
        };
        let (mut body, mut host) = (ContainerCreateBody::default(), HostConfig::default());
        apply(&options, &mut body, &mut host);
        assert_eq!(body.entrypoint.unwrap(), ["sh", "-c"]);
        assert_eq!(body.user.as_deref(), Some("1000:1000"));
        assert_eq!(body.working_dir.as_deref(), Some("/srv"));
        assert_eq!(
            (host.nano_cpus, host.memory),
            (Some(500_000_000), Some(64 << 20))
        );
        assert_eq!(host.memory_reservation, Some(32 << 20));
        assert_eq!((host.readonly_rootfs, host.init), (Some(true), Some(true)));
        assert_eq!(host.ulimits.unwrap()[0].hard, Some(2));
        assert_eq!(host.extra_hosts.unwrap(), ["db:10.0.0.5"]);
        let mounts = host.mounts.unwrap();
        assert_eq!(mounts[0].typ, Some(DockerMountType::BIND));
        assert_eq!(mounts[0].read_only, Some(true));
        let propagation = mounts[0].bind_options.as_ref().and_then(|b| b.propagation);
        assert_eq!(propagation, Some(MountBindOptionsPropagationEnum::RSLAVE));
        let driver = mounts[1]
            .volume_options
            .as_ref()
            .and_then(|v| v.driver_config.clone());
        assert_eq!(driver.and_then(|d| d.name).as_deref(), Some("local"));
        let tmpfs = mounts[2].tmpfs_options.clone().unwrap();
        assert_eq!(
            (tmpfs.size_bytes, tmpfs.mode),
            (Some(1 << 20), Some(0o1770))
        );
        assert_eq!(mounts[2].source, None);
        let (mut body, mut host) = (ContainerCreateBody::default(), HostConfig::default());
        apply(&ContainerOptions::default(), &mut body, &mut host);
        assert_eq!(
            (body.entrypoint, host.mounts, host.memory),
            (None, None, None)
        );
        assert_eq!(host.init, Some(false), "no init process unless asked");
    }
}
