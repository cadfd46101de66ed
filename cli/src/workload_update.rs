//! `service update`'s flags for mounts, resources and container options: Docker's
//! `-add`/`-rm` pairs for lists, and the create flags for single settings.

use anyhow::bail;
use clap::Args;
use swarmr_proto::ContainerSpec;

use crate::commands::key_values;
use crate::workload_args::{effective_caps, OptionFlags, ResourceFlags};
use crate::workload_parse::{parse_host, parse_mount, parse_ulimit};

#[derive(Args, Clone, Default, Debug)]
pub struct WorkloadUpdateFlags {
    /// Add a mount, as --mount of create; one at the same target is replaced (repeatable).
    #[arg(long)]
    pub mount_add: Vec<String>,
    /// Remove the mount at this target path (repeatable).
    #[arg(long)]
    pub mount_rm: Vec<String>,
    #[command(flatten)]
    pub resources: ResourceFlags,
    #[command(flatten)]
    pub options: OptionFlags,
    /// Add a Linux capability (and take it off the dropped ones) (repeatable).
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop a Linux capability (and take it off the added ones) (repeatable).
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Add or change a kernel parameter key=value (repeatable).
    #[arg(long)]
    pub sysctl_add: Vec<String>,
    /// Remove a kernel parameter by key (repeatable).
    #[arg(long)]
    pub sysctl_rm: Vec<String>,
    /// Add or change a resource limit NAME=SOFT[:HARD] (repeatable).
    #[arg(long)]
    pub ulimit_add: Vec<String>,
    /// Remove a resource limit by name (repeatable).
    #[arg(long)]
    pub ulimit_rm: Vec<String>,
    /// Add a supplementary group (repeatable).
    #[arg(long)]
    pub group_add: Vec<String>,
    /// Remove a supplementary group (repeatable).
    #[arg(long)]
    pub group_rm: Vec<String>,
    /// Add a resolver option (repeatable).
    #[arg(long)]
    pub dns_option_add: Vec<String>,
    /// Remove a resolver option (repeatable).
    #[arg(long)]
    pub dns_option_rm: Vec<String>,
    /// Add a DNS search domain (repeatable).
    #[arg(long)]
    pub dns_search_add: Vec<String>,
    /// Remove a DNS search domain (repeatable).
    #[arg(long)]
    pub dns_search_rm: Vec<String>,
    /// Add an /etc/hosts entry HOSTNAME:IP (repeatable).
    #[arg(long)]
    pub host_add: Vec<String>,
    /// Remove /etc/hosts entries by HOSTNAME, or one by HOSTNAME:IP (repeatable).
    #[arg(long)]
    pub host_rm: Vec<String>,
}

/// Removes `removed`, then appends what `added` has that is not there yet.
fn add_rm(list: &mut Vec<String>, added: &[String], removed: &[String]) {
    list.retain(|item| !removed.contains(item));
    for item in added {
        if !list.contains(item) {
            list.push(item.clone());
        }
    }
}

impl WorkloadUpdateFlags {
    /// Changes what the flags name on the service's container spec.
    pub fn apply(&self, container: &mut ContainerSpec) -> anyhow::Result<()> {
        for target in &self.mount_rm {
            let before = container.mounts.len();
            container.mounts.retain(|m| &m.target != target);
            if container.mounts.len() == before {
                bail!("--mount-rm {target:?}: the service has no mount at that target");
            }
        }
        for text in &self.mount_add {
            let mount = parse_mount(text)?;
            container.mounts.retain(|m| m.target != mount.target);
            container.mounts.push(mount);
        }
        self.resources.apply_to(container);
        self.options.apply_to(container)?;
        self.apply_caps(container);
        container
            .sysctls
            .extend(key_values("sysctl-add", &self.sysctl_add)?);
        for key in &self.sysctl_rm {
            container.sysctls.remove(key);
        }
        container
            .ulimits
            .retain(|u| !self.ulimit_rm.contains(&u.name));
        for text in &self.ulimit_add {
            let ulimit = parse_ulimit(text)?;
            container.ulimits.retain(|u| u.name != ulimit.name);
            container.ulimits.push(ulimit);
        }
        add_rm(&mut container.groups, &self.group_add, &self.group_rm);
        let dns = container.dns_config.get_or_insert_with(Default::default);
        add_rm(&mut dns.options, &self.dns_option_add, &self.dns_option_rm);
        add_rm(&mut dns.search, &self.dns_search_add, &self.dns_search_rm);
        if dns.options.is_empty() && dns.search.is_empty() {
            container.dns_config = None;
        }
        self.apply_hosts(container)
    }

    /// Docker's update rule: adding takes a capability off the dropped ones and dropping
    /// takes it off the added ones; `ALL` replaces the rest of its list.
    fn apply_caps(&self, container: &mut ContainerSpec) {
        if self.cap_add.is_empty() && self.cap_drop.is_empty() {
            return;
        }
        let (add, drop) = effective_caps(&self.cap_add, &self.cap_drop);
        container.cap_drop.retain(|c| !add.contains(c));
        container.cap_add.retain(|c| !drop.contains(c));
        add_rm(&mut container.cap_add, &add, &[]);
        add_rm(&mut container.cap_drop, &drop, &[]);
        for list in [&mut container.cap_add, &mut container.cap_drop] {
            if list.iter().any(|c| c == "ALL") {
                *list = vec!["ALL".to_string()];
            }
        }
    }

    fn apply_hosts(&self, container: &mut ContainerSpec) -> anyhow::Result<()> {
        for removed in &self.host_rm {
            // `ip host` entries: by hostname alone, or the one pair.
            let pair = removed
                .contains(':')
                .then(|| parse_host(removed))
                .transpose()?;
            container.hosts.retain(|entry| match &pair {
                Some(pair) => entry != pair,
                None => entry.split_whitespace().nth(1) != Some(removed.as_str()),
            });
        }
        for added in &self.host_add {
            let entry = parse_host(added)?;
            if !container.hosts.contains(&entry) {
                container.hosts.push(entry);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmr_proto::Mount;

    #[test]
    fn update_flags_add_remove_and_clear() {
        let mut container = ContainerSpec {
            mounts: vec![Mount {
                target: "/old".into(),
                ..Default::default()
            }],
            cap_add: vec!["CAP_NET_ADMIN".into()],
            cap_drop: vec!["CAP_MKNOD".into()],
            hosts: vec!["10.0.0.5 db".into(), "10.0.0.6 cache".into()],
            user: "1000".into(),
            groups: vec!["a".into()],
            ..Default::default()
        };
        let flags = WorkloadUpdateFlags {
            mount_rm: vec!["/old".into()],
            mount_add: vec!["type=tmpfs,target=/new".into()],
            resources: ResourceFlags {
                limit_memory: Some(1 << 30),
                ..Default::default()
            },
            options: OptionFlags {
                user: Some(String::new()),
                ..Default::default()
            },
            cap_add: vec!["mknod".into()],
            cap_drop: vec!["net_admin".into()],
            host_rm: vec!["db".into()],
            host_add: vec!["web:10.0.0.7".into()],
            group_add: vec!["b".into()],
            group_rm: vec!["a".into()],
            ulimit_add: vec!["nofile=1:2".into()],
            ..Default::default()
        };
        flags.apply(&mut container).unwrap();
        assert_eq!(container.mounts[0].target, "/new");
        assert_eq!(container.user, "", "an empty value clears");
        assert_eq!(container.cap_add, ["CAP_MKNOD"]);
        assert_eq!(container.cap_drop, ["CAP_NET_ADMIN"]);
        assert_eq!(container.hosts, ["10.0.0.6 cache", "10.0.0.7 web"]);
        assert_eq!(container.groups, ["b"]);
        assert_eq!(container.ulimits.len(), 1);
        let limits = container.resources.unwrap().limits.unwrap();
        assert_eq!(limits.memory_bytes, 1 << 30);
        let clear = WorkloadUpdateFlags {
            resources: ResourceFlags {
                limit_memory: Some(0),
                ..Default::default()
            },
            ..Default::default()
        };
        clear.apply(&mut container).unwrap();
        assert_eq!(container.resources, None, "0 clears the limit");
        let missing = WorkloadUpdateFlags {
            mount_rm: vec!["/nope".into()],
            ..Default::default()
        };
        let err = missing.apply(&mut container).unwrap_err().to_string();
        assert!(err.contains("no mount at that target"), "{err}");
    }
}
