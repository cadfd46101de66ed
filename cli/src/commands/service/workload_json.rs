//! The mounts, resources and container options of a spec in `docker service inspect`'s
//! shape: `TaskTemplate.ContainerSpec.Mounts` and the rest, `TaskTemplate.Resources` and
//! `TaskTemplate.LogDriver`. Empty settings are left out, as Docker leaves them.

use serde_json::{json, Value};
use swarmr_proto::{ContainerSpec, Mount, MountType, Resources};

fn set_list(value: &mut Value, key: &str, items: &[String]) {
    if !items.is_empty() {
        value[key] = json!(items);
    }
}

fn set_text(value: &mut Value, key: &str, text: &str) {
    if !text.is_empty() {
        value[key] = json!(text);
    }
}

/// Docker's `ContainerSpec` fields; the entrypoint is Docker's `Command`.
pub fn add_container_fields(container: &ContainerSpec, value: &mut Value) {
    set_list(value, "Command", &container.entrypoint);
    set_text(value, "Hostname", &container.hostname);
    set_text(value, "Dir", &container.workdir);
    set_text(value, "User", &container.user);
    set_list(value, "Groups", &container.groups);
    if !container.mounts.is_empty() {
        value["Mounts"] = json!(container.mounts.iter().map(mount_json).collect::<Vec<_>>());
    }
    set_list(value, "Hosts", &container.hosts);
    if let Some(dns) = &container.dns_config {
        let mut config = json!({});
        set_list(&mut config, "Search", &dns.search);
        set_list(&mut config, "Options", &dns.options);
        value["DNSConfig"] = config;
    }
    if container.read_only {
        value["ReadOnly"] = json!(true);
    }
    if let Some(init) = container.init {
        value["Init"] = json!(init);
    }
    if !container.sysctls.is_empty() {
        value["Sysctls"] = json!(container.sysctls);
    }
    set_list(value, "CapabilityAdd", &container.cap_add);
    set_list(value, "CapabilityDrop", &container.cap_drop);
    if !container.ulimits.is_empty() {
        let ulimits: Vec<Value> = container
            .ulimits
            .iter()
            .map(|u| json!({ "Name": u.name, "Soft": u.soft, "Hard": u.hard }))
            .collect();
        value["Ulimits"] = json!(ulimits);
    }
}

/// Docker's `TaskTemplate.Resources` and `LogDriver`, which swarmr keeps in the container
/// spec.
pub fn add_task_template_fields(container: &ContainerSpec, template: &mut Value) {
    if let Some(resources) = &container.resources {
        let mut value = json!({});
        if let Some(limits) = resources.limits {
            value["Limits"] = resources_json(limits);
        }
        if let Some(reservations) = resources.reservations {
            value["Reservations"] = resources_json(reservations);
        }
        template["Resources"] = value;
    }
    if let Some(driver) = &container.log_driver {
        template["LogDriver"] = json!({ "Name": driver.name, "Options": driver.options });
    }
}

/// `{"NanoCPUs": .., "MemoryBytes": ..}`, zeros left out.
pub fn resources_json(resources: Resources) -> Value {
    let mut value = json!({});
    if resources.nano_cpus != 0 {
        value["NanoCPUs"] = json!(resources.nano_cpus);
    }
    if resources.memory_bytes != 0 {
        value["MemoryBytes"] = json!(resources.memory_bytes);
    }
    value
}

/// `docker service inspect --pretty`'s user, mounts and resources lines.
pub fn pretty_lines(container: &ContainerSpec) -> Vec<String> {
    let mut lines = Vec::new();
    if !container.user.is_empty() {
        lines.push(format!(" User:\t\t{}", container.user));
    }
    if !container.mounts.is_empty() {
        lines.push("Mounts:".into());
    }
    for mount in &container.mounts {
        lines.push(format!(" Target:\t{}", mount.target));
        lines.push(format!("  Source:\t{}", mount.source));
        lines.push(format!("  ReadOnly:\t{}", mount.read_only));
        lines.push(format!("  Type:\t\t{}", mount.r#type().label()));
    }
    let resources = container.resources.unwrap_or_default();
    let parts = [
        ("Reservations", resources.reservations),
        ("Limits", resources.limits),
    ];
    let given: Vec<_> = parts
        .into_iter()
        .filter_map(|(name, r)| r.filter(|r| *r != Resources::default()).map(|r| (name, r)))
        .collect();
    if !given.is_empty() {
        lines.push("Resources:".into());
    }
    for (name, r) in given {
        lines.push(format!(" {name}:"));
        if r.nano_cpus != 0 {
            lines.push(format!("  CPU:\t\t{}", r.nano_cpus as f64 / 1e9));
        }
        if r.memory_bytes != 0 {
            lines.push(format!("  Memory:\t{}MiB", r.memory_bytes >> 20));
        }
    }
    lines
}

fn mount_json(mount: &Mount) -> Value {
    let mut value = json!({ "Type": mount.r#type().label(), "Target": mount.target });
    set_text(&mut value, "Source", &mount.source);
    if mount.read_only {
        value["ReadOnly"] = json!(true);
    }
    match mount.r#type() {
        MountType::Bind if !mount.propagation.is_empty() => {
            value["BindOptions"] = json!({ "Propagation": mount.propagation });
        }
        MountType::Volume => {
            let mut options = json!({});
            if mount.no_copy {
                options["NoCopy"] = json!(true);
            }
            if !mount.volume_labels.is_empty() {
                options["Labels"] = json!(mount.volume_labels);
            }
            if !mount.volume_driver.is_empty() || !mount.volume_options.is_empty() {
                let mut driver = json!({ "Name": mount.volume_driver });
                if !mount.volume_options.is_empty() {
                    driver["Options"] = json!(mount.volume_options);
                }
                options["DriverConfig"] = driver;
            }
            if options != json!({}) {
                value["VolumeOptions"] = options;
            }
        }
        MountType::Tmpfs => {
            let mut options = json!({});
            if mount.tmpfs_size_bytes != 0 {
                options["SizeBytes"] = json!(mount.tmpfs_size_bytes);
            }
            if mount.tmpfs_mode != 0 {
                options["Mode"] = json!(mount.tmpfs_mode);
            }
            if options != json!({}) {
                value["TmpfsOptions"] = options;
            }
        }
        MountType::Bind => {}
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmr_proto::{ResourceRequirements, Ulimit};

    #[test]
    fn fields_take_dockers_names_and_shape() {
        let container = ContainerSpec {
            entrypoint: vec!["sh".into()],
            user: "1000".into(),
            mounts: vec![Mount {
                r#type: MountType::Tmpfs as i32,
                target: "/t".into(),
                tmpfs_size_bytes: 1024,
                ..Default::default()
            }],
            resources: Some(ResourceRequirements {
                limits: Some(Resources {
                    nano_cpus: 500_000_000,
                    memory_bytes: 0,
                }),
                reservations: None,
            }),
            ulimits: vec![Ulimit {
                name: "nofile".into(),
                soft: 1,
                hard: 2,
            }],
            read_only: true,
            ..Default::default()
        };
        let mut spec = json!({});
        add_container_fields(&container, &mut spec);
        assert_eq!(spec["Command"], json!(["sh"]));
        assert_eq!(spec["User"], "1000");
        assert_eq!(
            spec["Mounts"][0],
            json!({ "Type": "tmpfs", "Target": "/t", "TmpfsOptions": { "SizeBytes": 1024 } })
        );
        assert_eq!(spec["Ulimits"][0]["Hard"], 2);
        assert_eq!(spec["ReadOnly"], true);
        assert!(
            spec.get("Hostname").is_none(),
            "empty settings are left out"
        );
        let pretty = pretty_lines(&container);
        assert!(
            pretty.contains(&"  Type:\t\ttmpfs".to_string()),
            "{pretty:?}"
        );
        assert!(pretty.contains(&"  CPU:\t\t0.5".to_string()), "{pretty:?}");
        let mut template = json!({});
        add_task_template_fields(&container, &mut template);
        assert_eq!(
            template["Resources"],
            json!({ "Limits": { "NanoCPUs": 500_000_000 } })
        );
    }
}
