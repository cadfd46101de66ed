//! Checks of a container spec's mounts, resources and options (issue 14), before anything
//! is written. Each refusal is one line naming the flag, what is wrong and what to do;
//! values are shown cut short. Sizes have bounds, so a spec stays small.

use std::collections::HashSet;

use swarmr_proto::convert::{
    expand, is_namespaced_sysctl, TemplateValues, CAPABILITIES, ULIMIT_NAMES,
};
use swarmr_proto::{ContainerSpec, Mount, MountType, Resources};
use tonic::Status;

use crate::limits::{check_labels, MAX_ARGS, MAX_ITEM};

pub const MAX_MOUNTS: usize = 32;
/// Capabilities, ulimits, groups, DNS options and search domains, each.
pub const MAX_OPTIONS: usize = 64;
pub const MAX_HOSTS: usize = 256;
/// Bytes of a user, group, hostname, driver name, DNS option or host entry.
pub const MAX_NAME: usize = 255;
/// 10,000 CPUs and 1 PiB: far above any machine, low enough that sums cannot overflow.
pub const MAX_NANO_CPUS: i64 = 10_000 * 1_000_000_000;
pub const MAX_MEMORY: i64 = 1 << 50;
/// Docker's smallest memory limit (the engine refuses less), and swarmkit's smallest
/// reservations.
pub const MIN_MEMORY_LIMIT: i64 = 6 << 20;
pub const MIN_MEMORY_RESERVATION: i64 = 4 << 20;
pub const MIN_NANO_CPUS: i64 = 1_000_000;

fn invalid(message: String) -> Status {
    Status::invalid_argument(message)
}

fn shown(text: &str) -> String {
    text.chars().take(64).collect()
}

fn check_count(what: &str, count: usize, max: usize) -> Result<(), Status> {
    match count > max {
        true => Err(invalid(format!(
            "too many {what} ({count}): the limit is {max}"
        ))),
        false => Ok(()),
    }
}

/// Short words (users, groups, DNS options): bounded, printable, no spaces.
fn check_words(what: &str, words: &[String]) -> Result<(), Status> {
    check_count(what, words.len(), MAX_OPTIONS)?;
    for word in words {
        if word.is_empty()
            || word.len() > MAX_NAME
            || word.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid(format!(
                "invalid {what} entry {:?}: use 1 to {MAX_NAME} printable characters without spaces",
                shown(word)
            )));
        }
    }
    Ok(())
}

fn check_path(what: &str, path: &str) -> Result<(), Status> {
    if !path.starts_with('/') || path.len() > MAX_ITEM || path.chars().any(char::is_control) {
        return Err(invalid(format!(
            "invalid {what} {:?}: use an absolute path such as /data",
            shown(path)
        )));
    }
    Ok(())
}

/// The whole of issue 14's part of a container spec.
pub fn check_container(container: &ContainerSpec) -> Result<(), Status> {
    check_mounts(&container.mounts)?;
    if let Some(resources) = &container.resources {
        check_resources(
            resources.limits.unwrap_or_default(),
            resources.reservations.unwrap_or_default(),
        )?;
    }
    check_count(
        "entrypoint words (--entrypoint)",
        container.entrypoint.len(),
        MAX_ARGS,
    )?;
    if let Some(word) = container.entrypoint.iter().find(|w| w.len() > MAX_ITEM) {
        return Err(invalid(format!(
            "an --entrypoint word is too long ({} bytes): the limit is {MAX_ITEM} bytes",
            word.len()
        )));
    }
    if !container.user.is_empty() {
        check_words("--user", std::slice::from_ref(&container.user))?;
    }
    if !container.workdir.is_empty() {
        check_path("--workdir", &container.workdir)?;
    }
    check_hostname(&container.hostname)?;
    check_caps("--cap-add", &container.cap_add)?;
    check_caps("--cap-drop", &container.cap_drop)?;
    check_labels("kernel parameters (--sysctl)", &container.sysctls)?;
    if let Some(key) = container.sysctls.keys().find(|k| !is_namespaced_sysctl(k)) {
        return Err(invalid(format!(
            "--sysctl {:?} is not namespaced: a task may set only net.*, fs.mqueue.* and kernel IPC parameters (kernel.shm*, kernel.msg*, kernel.sem)",
            shown(key)
        )));
    }
    check_ulimits(container)?;
    if let Some(driver) = &container.log_driver {
        check_words("--log-driver", std::slice::from_ref(&driver.name))?;
        check_labels("log driver options (--log-opt)", &driver.options)?;
    }
    check_words("groups (--group)", &container.groups)?;
    if let Some(dns) = &container.dns_config {
        check_words("DNS options (--dns-option)", &dns.options)?;
        check_words("DNS search domains (--dns-search)", &dns.search)?;
    }
    check_hosts(&container.hosts)
}

fn check_mounts(mounts: &[Mount]) -> Result<(), Status> {
    check_count("mounts (--mount)", mounts.len(), MAX_MOUNTS)?;
    let mut targets = HashSet::new();
    for mount in mounts {
        check_path("--mount target", &mount.target)?;
        if mount.target == "/" {
            return Err(invalid("invalid --mount target \"/\": a mount cannot replace the root filesystem; use --read-only for that".into()));
        }
        if !targets.insert(mount.target.trim_end_matches('/')) {
            return Err(invalid(format!(
                "two mounts have target {:?}: give each mount its own target",
                shown(&mount.target)
            )));
        }
        check_mount(mount)?;
    }
    Ok(())
}

fn check_mount(mount: &Mount) -> Result<(), Status> {
    let kind = MountType::try_from(mount.r#type)
        .map_err(|_| invalid("invalid --mount type: use bind, volume or tmpfs".into()))?;
    let volume_options = mount.no_copy
        || !mount.volume_labels.is_empty()
        || !mount.volume_driver.is_empty()
        || !mount.volume_options.is_empty();
    let mixed = [
        (volume_options, MountType::Volume, "volume"),
        (!mount.propagation.is_empty(), MountType::Bind, "bind"),
        (
            mount.tmpfs_size_bytes != 0 || mount.tmpfs_mode != 0,
            MountType::Tmpfs,
            "tmpfs",
        ),
    ];
    for (given, wanted, prefix) in mixed {
        if given && kind != wanted {
            return Err(invalid(format!(
                "--mount at {:?}: cannot mix '{prefix}-*' options with mount type '{}'",
                shown(&mount.target),
                kind.label()
            )));
        }
    }
    match kind {
        MountType::Bind => {
            check_path("bind --mount source", &mount.source)?;
            const PROPAGATIONS: [&str; 7] = [
                "", "private", "rprivate", "shared", "rshared", "slave", "rslave",
            ];
            if !PROPAGATIONS.contains(&mount.propagation.as_str()) {
                return Err(invalid(format!("invalid bind-propagation {:?}: use private, rprivate, shared, rshared, slave or rslave", shown(&mount.propagation))));
            }
        }
        MountType::Volume => {
            if !mount.source.is_empty() && !is_volume_name(&mount.source) {
                return Err(invalid(format!("invalid volume name {:?} in --mount: use letters, digits and _.- (starting with a letter or digit), or type=bind for a host path", shown(&mount.source))));
            }
            if !mount.volume_driver.is_empty() {
                check_words("volume-driver", std::slice::from_ref(&mount.volume_driver))?;
            }
            check_labels("volume labels (volume-label)", &mount.volume_labels)?;
            check_labels("volume driver options (volume-opt)", &mount.volume_options)?;
        }
        MountType::Tmpfs => {
            if !mount.source.is_empty() {
                return Err(invalid(format!(
                    "tmpfs --mount at {:?} takes no source: drop source=",
                    shown(&mount.target)
                )));
            }
            if mount.tmpfs_size_bytes < 0 || mount.tmpfs_size_bytes > MAX_MEMORY {
                return Err(invalid(format!(
                    "invalid tmpfs-size {}: use 0 (no limit) up to 1P",
                    mount.tmpfs_size_bytes
                )));
            }
            if mount.tmpfs_mode > 0o7777 {
                return Err(invalid(format!(
                    "invalid tmpfs-mode {:o}: use an octal mode up to 7777",
                    mount.tmpfs_mode
                )));
            }
        }
    }
    Ok(())
}

/// Docker's volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, at most 255 bytes.
fn is_volume_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_NAME
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn check_resources(limits: Resources, reservations: Resources) -> Result<(), Status> {
    let cpu = |flag: &str, value: i64| match value {
        0 => Ok(()),
        v if (MIN_NANO_CPUS..=MAX_NANO_CPUS).contains(&v) => Ok(()),
        v => Err(invalid(format!(
            "invalid --{flag} {}: use 0.001 to 10000 CPUs",
            v as f64 / 1e9
        ))),
    };
    let memory = |flag: &str, value: i64, min: i64| match value {
        0 => Ok(()),
        v if (min..=MAX_MEMORY).contains(&v) => Ok(()),
        v => Err(invalid(format!(
            "invalid --{flag} of {v} bytes: use {}M to 1P",
            min >> 20
        ))),
    };
    cpu("limit-cpu", limits.nano_cpus)?;
    cpu("reserve-cpu", reservations.nano_cpus)?;
    memory("limit-memory", limits.memory_bytes, MIN_MEMORY_LIMIT)?;
    memory(
        "reserve-memory",
        reservations.memory_bytes,
        MIN_MEMORY_RESERVATION,
    )?;
    if limits.memory_bytes != 0 && reservations.memory_bytes > limits.memory_bytes {
        return Err(invalid(
            "--reserve-memory is more than --limit-memory: reserve at most the limit".into(),
        ));
    }
    if limits.nano_cpus != 0 && reservations.nano_cpus > limits.nano_cpus {
        return Err(invalid(
            "--reserve-cpu is more than --limit-cpu: reserve at most the limit".into(),
        ));
    }
    Ok(())
}

/// The template must expand (known placeholders) to a plausible hostname.
fn check_hostname(template: &str) -> Result<(), Status> {
    if template.is_empty() {
        return Ok(());
    }
    if template.len() > MAX_NAME {
        return Err(invalid(format!(
            "--hostname is too long ({} bytes): the limit is {MAX_NAME} bytes",
            template.len()
        )));
    }
    let sample = TemplateValues {
        task_slot: "1".into(),
        ..Default::default()
    };
    let expanded =
        expand(template, &sample).map_err(|e| invalid(format!("invalid --hostname: {e}")))?;
    if expanded
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || "-._".contains(c)))
    {
        return Err(invalid(format!("invalid --hostname {:?}: use letters, digits, '-' and '.' (and templates such as {{{{.Task.Slot}}}})", shown(template))));
    }
    Ok(())
}

fn check_caps(flag: &str, caps: &[String]) -> Result<(), Status> {
    check_count(&format!("capabilities ({flag})"), caps.len(), MAX_OPTIONS)?;
    match caps.iter().find(|c| *c != "ALL" && !CAPABILITIES.contains(&c.as_str())) {
        Some(cap) => Err(invalid(format!("unknown capability {:?} in {flag}: use a name from capabilities(7) such as NET_ADMIN, or ALL", shown(cap)))),
        None => Ok(()),
    }
}

fn check_ulimits(container: &ContainerSpec) -> Result<(), Status> {
    check_count("ulimits (--ulimit)", container.ulimits.len(), MAX_OPTIONS)?;
    let mut names = HashSet::new();
    for ulimit in &container.ulimits {
        if !ULIMIT_NAMES.contains(&ulimit.name.as_str()) {
            return Err(invalid(format!(
                "unknown --ulimit {:?}: use one of {}",
                shown(&ulimit.name),
                ULIMIT_NAMES.join(", ")
            )));
        }
        if !names.insert(ulimit.name.as_str()) {
            return Err(invalid(format!(
                "--ulimit {} is given twice: keep one",
                ulimit.name
            )));
        }
        if ulimit.soft > ulimit.hard || ulimit.soft < -1 {
            return Err(invalid(format!(
                "invalid --ulimit {}={}:{}: the soft limit must be at most the hard limit",
                ulimit.name, ulimit.soft, ulimit.hard
            )));
        }
    }
    Ok(())
}

/// `IP hostname [aliases...]`, as Docker's spec keeps extra hosts.
fn check_hosts(hosts: &[String]) -> Result<(), Status> {
    check_count("host entries (--add-host)", hosts.len(), MAX_HOSTS)?;
    for entry in hosts {
        let mut words = entry.split_whitespace();
        let ip_ok = words
            .next()
            .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok());
        if !ip_ok || words.next().is_none() || entry.len() > MAX_NAME {
            return Err(invalid(format!(
                "invalid host entry {:?}: use HOSTNAME:IP, e.g. db:10.0.0.5",
                shown(entry)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmr_proto::{LogDriver, ResourceRequirements, Ulimit};

    fn spec(change: impl FnOnce(&mut ContainerSpec)) -> ContainerSpec {
        let mut container = ContainerSpec {
            image: "busybox".into(),
            ..Default::default()
        };
        change(&mut container);
        container
    }

    fn mount(kind: MountType, source: &str, target: &str) -> Mount {
        Mount {
            r#type: kind as i32,
            source: source.into(),
            target: target.into(),
            ..Default::default()
        }
    }

    fn resources(
        limit_memory: i64,
        reserve_memory: i64,
        reserve_cpu: i64,
    ) -> Option<ResourceRequirements> {
        Some(ResourceRequirements {
            limits: Some(Resources {
                nano_cpus: 0,
                memory_bytes: limit_memory,
            }),
            reservations: Some(Resources {
                nano_cpus: reserve_cpu,
                memory_bytes: reserve_memory,
            }),
        })
    }

    #[test]
    fn container_options_are_checked_with_one_line_errors() {
        let table: Vec<(ContainerSpec, Option<&str>)> = vec![
            (spec(|_| {}), None),
            (
                spec(|c| {
                    c.mounts = vec![
                        mount(MountType::Bind, "/srv", "/x"),
                        mount(MountType::Volume, "data", "/d"),
                        mount(MountType::Tmpfs, "", "/t"),
                        mount(MountType::Volume, "", "/anon"),
                    ]
                }),
                None,
            ),
            (
                spec(|c| c.mounts = vec![mount(MountType::Bind, "srv", "/x")]),
                Some("absolute path"),
            ),
            (
                spec(|c| c.mounts = vec![mount(MountType::Bind, "/srv", "x")]),
                Some("--mount target"),
            ),
            (
                spec(|c| c.mounts = vec![mount(MountType::Bind, "/srv", "/")]),
                Some("root filesystem"),
            ),
            (
                spec(|c| {
                    c.mounts = vec![
                        mount(MountType::Tmpfs, "", "/a"),
                        mount(MountType::Tmpfs, "", "/a/"),
                    ]
                }),
                Some("two mounts"),
            ),
            (
                spec(|c| c.mounts = vec![mount(MountType::Tmpfs, "/x", "/a")]),
                Some("takes no source"),
            ),
            (
                spec(|c| c.mounts = vec![mount(MountType::Volume, "/srv/x", "/a")]),
                Some("invalid volume name"),
            ),
            (
                spec(|c| {
                    c.mounts = vec![Mount {
                        no_copy: true,
                        ..mount(MountType::Bind, "/s", "/a")
                    }]
                }),
                Some("cannot mix 'volume-*'"),
            ),
            (
                spec(|c| {
                    c.mounts = vec![Mount {
                        propagation: "sideways".into(),
                        ..mount(MountType::Bind, "/s", "/a")
                    }]
                }),
                Some("bind-propagation"),
            ),
            (
                spec(|c| {
                    c.mounts = vec![Mount {
                        r#type: 9,
                        target: "/a".into(),
                        ..Default::default()
                    }]
                }),
                Some("--mount type"),
            ),
            (
                spec(|c| c.mounts = vec![mount(MountType::Tmpfs, "", "/t"); 33]),
                Some("too many mounts"),
            ),
            (
                spec(|c| c.resources = resources(512 << 20, 256 << 20, 500_000_000)),
                None,
            ),
            (
                spec(|c| c.resources = resources(1 << 20, 0, 0)),
                Some("--limit-memory"),
            ),
            (
                spec(|c| c.resources = resources(0, -1, 0)),
                Some("--reserve-memory"),
            ),
            (
                spec(|c| c.resources = resources(64 << 20, 128 << 20, 0)),
                Some("more than --limit-memory"),
            ),
            (
                spec(|c| c.resources = resources(0, 0, 1 << 60)),
                Some("--reserve-cpu"),
            ),
            (spec(|c| c.workdir = "tmp".into()), Some("--workdir")),
            (spec(|c| c.user = "a b".into()), Some("--user")),
            (
                spec(|c| c.hostname = "{{.Service.Name}}-{{.Task.Slot}}".into()),
                None,
            ),
            (
                spec(|c| c.hostname = "{{.Node.IP}}".into()),
                Some("unknown placeholder"),
            ),
            (
                spec(|c| c.hostname = "a b".into()),
                Some("invalid --hostname"),
            ),
            (
                spec(|c| c.cap_add = vec!["CAP_NET_ADMIN".into(), "ALL".into()]),
                None,
            ),
            (
                spec(|c| c.cap_drop = vec!["CAP_FLY".into()]),
                Some("unknown capability"),
            ),
            (
                spec(|c| {
                    c.sysctls.insert("net.core.somaxconn".into(), "1024".into());
                }),
                None,
            ),
            (
                spec(|c| {
                    c.sysctls.insert("vm.swappiness".into(), "1".into());
                }),
                Some("not namespaced"),
            ),
            (
                spec(|c| {
                    c.ulimits = vec![Ulimit {
                        name: "nofile".into(),
                        soft: 2,
                        hard: 1,
                    }]
                }),
                Some("at most the hard"),
            ),
            (
                spec(|c| {
                    c.ulimits = vec![Ulimit {
                        name: "files".into(),
                        soft: 1,
                        hard: 1,
                    }]
                }),
                Some("unknown --ulimit"),
            ),
            (
                spec(|c| {
                    c.ulimits = vec![
                        Ulimit {
                            name: "nproc".into(),
                            soft: 1,
                            hard: 1
                        };
                        2
                    ]
                }),
                Some("given twice"),
            ),
            (
                spec(|c| {
                    c.log_driver = Some(LogDriver {
                        name: String::new(),
                        options: Default::default(),
                    })
                }),
                Some("--log-driver"),
            ),
            (spec(|c| c.hosts = vec!["10.0.0.5 db".into()]), None),
            (
                spec(|c| c.hosts = vec!["db 10.0.0.5".into()]),
                Some("invalid host entry"),
            ),
            (spec(|c| c.groups = vec![String::new()]), Some("groups")),
        ];
        for (container, want) in table {
            let got = check_container(&container).map_err(|s| s.message().to_string());
            match (want, got) {
                (None, Ok(())) => {}
                (Some(want), Err(message)) => {
                    assert!(message.contains(want), "{message:?} lacks {want:?}");
                    assert!(!message.contains('\n') && message.len() < 300, "{message}");
                }
                (want, got) => panic!("wanted {want:?}, got {got:?}"),
            }
        }
    }
}
