//! The flags of `service create` and `service update` for mounts, resources and container
//! options, with Docker's names and meaning, and how they change a container spec.
//! `create` sets what is given; `update` changes only what its flags name (`-add`/`-rm`
//! pairs for lists, an empty value or 0 to clear a single setting).

use std::collections::HashSet;

use anyhow::{anyhow, bail};
use clap::Args;
use swarmr_proto::{ContainerSpec, DnsConfig, LogDriver, ResourceRequirements, Resources};

use crate::commands::key_values;
use crate::workload_parse::{
    normalize_cap, parse_bytes, parse_host, parse_mount, parse_nano_cpus, parse_ulimit,
    read_env_file,
};

/// `--limit-*` and `--reserve-*`, shared by create and update (0 clears on update).
#[derive(Args, Clone, Default, Debug)]
pub struct ResourceFlags {
    /// Most CPUs a task may use (e.g. 0.5, 2).
    #[arg(long, value_parser = parse_nano_cpus)]
    pub limit_cpu: Option<i64>,
    /// Most memory a task may use (e.g. 512M, 2G); the kernel kills it beyond.
    #[arg(long, value_parser = parse_bytes)]
    pub limit_memory: Option<i64>,
    /// CPUs set aside for each task: it goes only to a node with that many unreserved.
    #[arg(long, value_parser = parse_nano_cpus)]
    pub reserve_cpu: Option<i64>,
    /// Memory set aside for each task: it goes only to a node with that much unreserved.
    #[arg(long, value_parser = parse_bytes)]
    pub reserve_memory: Option<i64>,
}

impl ResourceFlags {
    pub fn apply_to(&self, container: &mut ContainerSpec) {
        let given = [
            self.limit_cpu,
            self.limit_memory,
            self.reserve_cpu,
            self.reserve_memory,
        ];
        if given.iter().all(Option::is_none) {
            return;
        }
        let resources = container
            .resources
            .get_or_insert_with(ResourceRequirements::default);
        let limits = resources.limits.get_or_insert_with(Resources::default);
        set(&mut limits.nano_cpus, self.limit_cpu);
        set(&mut limits.memory_bytes, self.limit_memory);
        let reservations = resources
            .reservations
            .get_or_insert_with(Resources::default);
        set(&mut reservations.nano_cpus, self.reserve_cpu);
        set(&mut reservations.memory_bytes, self.reserve_memory);
        let zero = |r: &Option<Resources>| r.as_ref().is_none_or(|r| *r == Resources::default());
        if zero(&resources.limits) {
            resources.limits = None;
        }
        if zero(&resources.reservations) {
            resources.reservations = None;
        }
        if resources.limits.is_none() && resources.reservations.is_none() {
            container.resources = None;
        }
    }
}

fn set<T: Copy>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

/// The node daemon's hidden override of what it offers to tasks: for tests that need a
/// small node, and for operators who want to overcommit (or hold back) a machine.
#[derive(Args, Clone, Default, Debug)]
pub struct NodeResourceFlags {
    /// CPUs the node reports instead of the engine's count (e.g. 0.5, 4).
    #[arg(long, hide = true, value_parser = parse_nano_cpus)]
    pub resources_cpus: Option<i64>,
    /// Memory the node reports instead of the engine's total (e.g. 512M).
    #[arg(long, hide = true, value_parser = parse_bytes)]
    pub resources_memory: Option<i64>,
}

impl NodeResourceFlags {
    /// The engine's resources with the overrides given.
    pub fn over(&self, mut engine: Resources) -> Resources {
        set(&mut engine.nano_cpus, self.resources_cpus);
        set(&mut engine.memory_bytes, self.resources_memory);
        engine
    }
}

/// Single-valued options, shared by create and update (on update an empty value clears).
#[derive(Args, Clone, Default, Debug)]
pub struct OptionFlags {
    /// Replace the image's ENTRYPOINT (split like a shell command line).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// User the task runs as: NAME, UID, NAME:GROUP or UID:GID.
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Working directory inside the container (absolute).
    #[arg(long, short = 'w')]
    pub workdir: Option<String>,
    /// Container hostname; may hold {{.Service.Name}}, {{.Task.Slot}}, {{.Node.Hostname}},
    /// {{.Service.ID}}, {{.Task.ID}}, {{.Task.Name}}, {{.Node.ID}}.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Mount the container's root filesystem read-only (`--read-only=false` to undo).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub read_only: Option<bool>,
    /// Run an init process in the container that forwards signals and reaps processes.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub init: Option<bool>,
    /// Logging driver of the task's container (e.g. json-file, local, journald).
    #[arg(long)]
    pub log_driver: Option<String>,
    /// Option of the logging driver, key=value (repeatable).
    #[arg(long)]
    pub log_opt: Vec<String>,
}

impl OptionFlags {
    pub fn apply_to(&self, container: &mut ContainerSpec) -> anyhow::Result<()> {
        if let Some(entrypoint) = &self.entrypoint {
            container.entrypoint = shlex::split(entrypoint).ok_or_else(|| {
                anyhow!("invalid --entrypoint {entrypoint:?}: a quote is not closed")
            })?;
        }
        set_text(&mut container.user, &self.user);
        set_text(&mut container.workdir, &self.workdir);
        set_text(&mut container.hostname, &self.hostname);
        set(&mut container.read_only, self.read_only);
        if let Some(init) = self.init {
            container.init = Some(init);
        }
        let options = key_values("log-opt", &self.log_opt)?;
        match (&self.log_driver, options.is_empty()) {
            (Some(name), _) if name.is_empty() => container.log_driver = None,
            (Some(name), _) => {
                container.log_driver = Some(LogDriver {
                    name: name.clone(),
                    options,
                })
            }
            (None, false) => match container.log_driver.as_mut() {
                Some(driver) => driver.options = options,
                None => bail!("--log-opt needs --log-driver: name the driver the options are for"),
            },
            (None, true) => {}
        }
        Ok(())
    }
}

fn set_text(field: &mut String, value: &Option<String>) {
    if let Some(value) = value {
        *field = value.clone();
    }
}

/// `service create`'s mounts, resources and container options.
#[derive(Args, Clone, Default, Debug)]
pub struct WorkloadFlags {
    /// Mount: type=bind|volume|tmpfs,source=..,target=..[,readonly][,volume-driver=..]
    /// [,volume-opt=k=v][,volume-label=k=v][,volume-nocopy][,tmpfs-size=..][,tmpfs-mode=..]
    /// [,bind-propagation=..] (repeatable).
    #[arg(long)]
    pub mount: Vec<String>,
    #[command(flatten)]
    pub resources: ResourceFlags,
    #[command(flatten)]
    pub options: OptionFlags,
    /// Read environment variables from a file of KEY=VALUE lines (repeatable).
    #[arg(long)]
    pub env_file: Vec<String>,
    /// Add a Linux capability, e.g. NET_ADMIN or ALL (repeatable).
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop a Linux capability, e.g. CHOWN or ALL (repeatable).
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Namespaced kernel parameter key=value, e.g. net.core.somaxconn=1024 (repeatable).
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Resource limit NAME=SOFT[:HARD], e.g. nofile=1024:2048 (repeatable).
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Supplementary group of the task's user (repeatable).
    #[arg(long)]
    pub group: Vec<String>,
    /// Resolver option, e.g. ndots:2 (repeatable).
    #[arg(long)]
    pub dns_option: Vec<String>,
    /// DNS search domain (repeatable).
    #[arg(long)]
    pub dns_search: Vec<String>,
    /// Extra /etc/hosts entry HOSTNAME:IP (repeatable; Docker's `--host`, which is `-H`
    /// here).
    #[arg(long)]
    pub add_host: Vec<String>,
}

impl WorkloadFlags {
    /// Sets the given flags on a new service's container spec (env files before `-e`).
    pub fn apply(&self, container: &mut ContainerSpec) -> anyhow::Result<()> {
        let mut env = Vec::new();
        for path in &self.env_file {
            let lookup = |key: &str| std::env::var(key).ok();
            env.extend(crate::commands::service::env_entries(
                &read_env_file(path)?,
                lookup,
            ));
        }
        env.append(&mut container.env);
        container.env = env;
        for mount in &self.mount {
            container.mounts.push(parse_mount(mount)?);
        }
        self.resources.apply_to(container);
        self.options.apply_to(container)?;
        let (add, drop) = effective_caps(&self.cap_add, &self.cap_drop);
        (container.cap_add, container.cap_drop) = (add, drop);
        container.sysctls = key_values("sysctl", &self.sysctl)?;
        container.ulimits = self
            .ulimit
            .iter()
            .map(|u| parse_ulimit(u))
            .collect::<Result<_, _>>()?;
        container.groups = self.group.clone();
        if !self.dns_option.is_empty() || !self.dns_search.is_empty() {
            container.dns_config = Some(DnsConfig {
                search: self.dns_search.clone(),
                options: self.dns_option.clone(),
            });
        }
        container.hosts = self
            .add_host
            .iter()
            .map(|h| parse_host(h))
            .collect::<Result<_, _>>()?;
        Ok(())
    }
}

/// Docker's rule: `ALL` stands alone, and a capability both added and dropped is added.
pub fn effective_caps(add: &[String], drop: &[String]) -> (Vec<String>, Vec<String>) {
    let normalize = |caps: &[String]| {
        let mut seen = HashSet::new();
        let caps: Vec<String> = caps
            .iter()
            .map(|c| normalize_cap(c))
            .filter(|c| seen.insert(c.clone()))
            .collect();
        match caps.iter().any(|c| c == "ALL") {
            true => vec!["ALL".to_string()],
            false => caps,
        }
    };
    let add = normalize(add);
    let drop = normalize(drop)
        .into_iter()
        .filter(|c| !add.contains(c))
        .collect();
    (add, drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_flags_fill_the_container_spec() {
        let flags = WorkloadFlags {
            mount: vec!["type=tmpfs,target=/t".into()],
            resources: ResourceFlags {
                limit_memory: Some(64 << 20),
                reserve_cpu: Some(500_000_000),
                ..Default::default()
            },
            options: OptionFlags {
                entrypoint: Some("sh -c 'echo hi'".into()),
                user: Some("1000:1000".into()),
                read_only: Some(true),
                log_driver: Some("local".into()),
                log_opt: vec!["max-size=1m".into()],
                ..Default::default()
            },
            cap_add: vec!["net_admin".into(), "CHOWN".into()],
            cap_drop: vec!["chown".into(), "mknod".into()],
            sysctl: vec!["net.core.somaxconn=1024".into()],
            ulimit: vec!["nofile=10:20".into()],
            add_host: vec!["db:10.0.0.5".into()],
            dns_search: vec!["example.org".into()],
            ..Default::default()
        };
        let mut container = ContainerSpec::default();
        flags.apply(&mut container).unwrap();
        assert_eq!(container.mounts.len(), 1);
        let resources = container.resources.unwrap();
        assert_eq!(resources.limits.unwrap().memory_bytes, 64 << 20);
        assert_eq!(resources.reservations.unwrap().nano_cpus, 500_000_000);
        assert_eq!(container.entrypoint, ["sh", "-c", "echo hi"]);
        assert_eq!(
            (container.user.as_str(), container.read_only),
            ("1000:1000", true)
        );
        assert_eq!(
            container.log_driver.clone().unwrap().options["max-size"],
            "1m"
        );
        assert_eq!(container.cap_add, ["CAP_NET_ADMIN", "CAP_CHOWN"]);
        assert_eq!(container.cap_drop, ["CAP_MKNOD"], "adding wins");
        assert_eq!(container.sysctls["net.core.somaxconn"], "1024");
        assert_eq!(container.ulimits[0].hard, 20);
        assert_eq!(container.hosts, ["10.0.0.5 db"]);
        assert_eq!(container.dns_config.unwrap().search, ["example.org"]);
        assert_eq!(container.init, None, "unset keeps the default");
    }

    #[test]
    fn caps_all_stands_alone() {
        let (add, drop) = effective_caps(&["all".into(), "net_admin".into()], &["ALL".into()]);
        assert_eq!((add, drop), (vec!["ALL".to_string()], vec![]));
    }
}
