//! The flags of `service create` and `service update` for rolling updates, health checks
//! and stopping, and how they change a spec. Every flag is optional: `create` applies
//! them over Docker's defaults, `update` over the service's current settings.

use std::time::Duration;

use anyhow::bail;
use clap::Args;
use swarmr_proto::{ContainerSpec, HealthConfig, UpdateConfig, UpdateFailureAction, UpdateOrder};

/// `service update`: every flag changes only what it names.
#[derive(Args)]
pub struct ServiceUpdateArgs {
    /// New image.
    #[arg(long)]
    pub image: Option<String>,
    /// Add or change an environment variable KEY=VALUE (repeatable).
    #[arg(long)]
    pub env_add: Vec<String>,
    /// Remove an environment variable by KEY (repeatable).
    #[arg(long)]
    pub env_rm: Vec<String>,
    /// Add or change a service label key=value (repeatable).
    #[arg(long)]
    pub label_add: Vec<String>,
    /// Remove a service label by key (repeatable).
    #[arg(long)]
    pub label_rm: Vec<String>,
    /// Add or change a container label key=value (repeatable).
    #[arg(long)]
    pub container_label_add: Vec<String>,
    /// Remove a container label by key (repeatable).
    #[arg(long)]
    pub container_label_rm: Vec<String>,
    /// Add a placement constraint (repeatable).
    #[arg(long)]
    pub constraint_add: Vec<String>,
    /// Remove a placement constraint, as it was given (repeatable).
    #[arg(long)]
    pub constraint_rm: Vec<String>,
    /// Attach to another network, by name or id (repeatable).
    #[arg(long)]
    pub network_add: Vec<String>,
    /// Detach from a network, by name or id (repeatable).
    #[arg(long)]
    pub network_rm: Vec<String>,
    /// Number of tasks (replicated mode).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::args::parse_replicas)]
    pub replicas: Option<u64>,
    /// Publish a port, as `--publish` of create (repeatable).
    #[arg(long)]
    pub publish_add: Vec<String>,
    /// Stop publishing a port, by its target port: `80`, `53/udp` or
    /// `published=8080,target=80` (repeatable).
    #[arg(long)]
    pub publish_rm: Vec<String>,
    /// New command arguments (what follows the image at create), split as a shell would;
    /// `--args ""` clears them so the image's CMD runs.
    #[arg(long, allow_hyphen_values = true)]
    pub args: Option<String>,
    /// How other tasks reach the service: `vip` or `dnsrr`.
    #[arg(long, value_parser = ["vip", "dnsrr"])]
    pub endpoint_mode: Option<String>,
    /// Replace every task even if nothing changed.
    #[arg(long)]
    pub force: bool,
    /// Return to the previous spec, as `service rollback` (takes no other change).
    #[arg(long)]
    pub rollback: bool,
    #[command(flatten)]
    pub rollout: RolloutFlags,
    #[command(flatten)]
    pub container_flags: ContainerFlags,
    #[command(flatten)]
    pub workload: crate::workload_update::WorkloadUpdateFlags,
    #[command(flatten)]
    pub files: crate::secret_args::FileUpdateFlags,
    #[command(flatten)]
    pub wait: crate::args::WaitArgs,
    pub service: String,
}

/// `--update-*` and `--rollback-*`.
#[derive(Args, Clone, Default, Debug)]
pub struct RolloutFlags {
    /// Tasks replaced at once (0 = all at once; default 1).
    #[arg(long)]
    pub update_parallelism: Option<u64>,
    /// Wait between replacing tasks (e.g. 5s; default 0s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub update_delay: Option<Duration>,
    /// On a failed task during an update (default pause).
    #[arg(long, value_parser = ["pause", "continue", "rollback"])]
    pub update_failure_action: Option<String>,
    /// How long a new task is watched for failure (default 5s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub update_monitor: Option<Duration>,
    /// Fraction of tasks that may fail during an update (0 to 1; default 0).
    #[arg(long)]
    pub update_max_failure_ratio: Option<f32>,
    /// `stop-first` (default) or `start-first` (the new task runs before the old stops).
    #[arg(long, value_parser = ["stop-first", "start-first"])]
    pub update_order: Option<String>,
    /// Tasks rolled back at once (0 = all at once; default 1).
    #[arg(long)]
    pub rollback_parallelism: Option<u64>,
    /// Wait between rolling back tasks (default 0s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub rollback_delay: Option<Duration>,
    /// On a failed task during a rollback (default pause).
    #[arg(long, value_parser = ["pause", "continue"])]
    pub rollback_failure_action: Option<String>,
    /// How long a rolled back task is watched for failure (default 5s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub rollback_monitor: Option<Duration>,
    /// Fraction of tasks that may fail during a rollback (0 to 1; default 0).
    #[arg(long)]
    pub rollback_max_failure_ratio: Option<f32>,
    /// `stop-first` (default) or `start-first`.
    #[arg(long, value_parser = ["stop-first", "start-first"])]
    pub rollback_order: Option<String>,
}

/// `--health-*`, `--no-healthcheck`, `--stop-grace-period`, `--stop-signal`.
#[derive(Args, Clone, Default, Debug)]
pub struct ContainerFlags {
    /// Command run in the container to check its health (a shell command line).
    #[arg(long)]
    pub health_cmd: Option<String>,
    /// Time between health checks (default 30s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub health_interval: Option<Duration>,
    /// Longest a health check may run (default 30s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub health_timeout: Option<Duration>,
    /// Consecutive failures that make the container unhealthy (default 3).
    #[arg(long)]
    pub health_retries: Option<u32>,
    /// Start-up time during which failed checks do not count (default 0s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub health_start_period: Option<Duration>,
    /// Disable any health check, the image's included.
    #[arg(long, conflicts_with_all = [
        "health_cmd", "health_interval", "health_timeout", "health_retries", "health_start_period",
    ])]
    pub no_healthcheck: bool,
    /// Time a task gets to stop before it is killed (default 10s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub stop_grace_period: Option<Duration>,
    /// Signal that stops a task's container (default: the image's, or SIGTERM).
    #[arg(long)]
    pub stop_signal: Option<String>,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Docker's update defaults.
pub fn default_update_config() -> UpdateConfig {
    UpdateConfig {
        parallelism: 1,
        delay_ms: 0,
        failure_action: UpdateFailureAction::Pause as i32,
        monitor_ms: Some(5_000),
        max_failure_ratio: 0.0,
        order: UpdateOrder::StopFirst as i32,
    }
}

struct One<'a> {
    parallelism: Option<u64>,
    delay: Option<Duration>,
    failure_action: Option<&'a str>,
    monitor: Option<Duration>,
    ratio: Option<f32>,
    order: Option<&'a str>,
}

impl One<'_> {
    fn is_empty(&self) -> bool {
        self.parallelism.is_none()
            && self.delay.is_none()
            && self.failure_action.is_none()
            && self.monitor.is_none()
            && self.ratio.is_none()
            && self.order.is_none()
    }

    fn apply(&self, what: &str, config: &mut UpdateConfig) -> anyhow::Result<()> {
        if let Some(ratio) = self.ratio {
            if !(0.0..=1.0).contains(&ratio) {
                bail!("invalid --{what}-max-failure-ratio {ratio}: use a fraction from 0 to 1");
            }
            config.max_failure_ratio = ratio;
        }
        if let Some(n) = self.parallelism {
            config.parallelism = n;
        }
        if let Some(d) = self.delay {
            config.delay_ms = millis(d);
        }
        if let Some(d) = self.monitor {
            config.monitor_ms = Some(millis(d));
        }
        if let Some(action) = self.failure_action {
            config.set_failure_action(match action {
                "continue" => UpdateFailureAction::Continue,
                "rollback" => UpdateFailureAction::Rollback,
                _ => UpdateFailureAction::Pause,
            });
        }
        if let Some(order) = self.order {
            config.set_order(match order {
                "start-first" => UpdateOrder::StartFirst,
                _ => UpdateOrder::StopFirst,
            });
        }
        Ok(())
    }
}

impl RolloutFlags {
    fn update(&self) -> One<'_> {
        One {
            parallelism: self.update_parallelism,
            delay: self.update_delay,
            failure_action: self.update_failure_action.as_deref(),
            monitor: self.update_monitor,
            ratio: self.update_max_failure_ratio,
            order: self.update_order.as_deref(),
        }
    }

    fn rollback(&self) -> One<'_> {
        One {
            parallelism: self.rollback_parallelism,
            delay: self.rollback_delay,
            failure_action: self.rollback_failure_action.as_deref(),
            monitor: self.rollback_monitor,
            ratio: self.rollback_max_failure_ratio,
            order: self.rollback_order.as_deref(),
        }
    }

    /// Sets the given flags over `update` and `rollback` (Docker's defaults where unset).
    pub fn apply(
        &self,
        update: &mut Option<UpdateConfig>,
        rollback: &mut Option<UpdateConfig>,
        fill_defaults: bool,
    ) -> anyhow::Result<()> {
        for (what, flags, config) in [
            ("update", self.update(), update),
            ("rollback", self.rollback(), rollback),
        ] {
            if flags.is_empty() && !fill_defaults {
                continue;
            }
            flags.apply(what, config.get_or_insert_with(default_update_config))?;
        }
        Ok(())
    }
}

impl ContainerFlags {
    fn health_given(&self) -> bool {
        self.health_cmd.is_some()
            || self.health_interval.is_some()
            || self.health_timeout.is_some()
            || self.health_retries.is_some()
            || self.health_start_period.is_some()
    }

    /// Sets the given flags on the container spec.
    pub fn apply(&self, container: &mut ContainerSpec) -> anyhow::Result<()> {
        if self.no_healthcheck {
            container.healthcheck = Some(HealthConfig {
                test: vec!["NONE".into()],
                ..Default::default()
            });
        } else if self.health_given() {
            let check = container.healthcheck.get_or_insert_with(Default::default);
            if check.test.first().is_some_and(|t| t == "NONE") {
                check.test.clear();
            }
            if let Some(cmd) = &self.health_cmd {
                if cmd.trim().is_empty() {
                    bail!("--health-cmd is empty: give a command, or --no-healthcheck");
                }
                check.test = vec!["CMD-SHELL".into(), cmd.clone()];
            }
            let set = |field: &mut u64, value: Option<Duration>| {
                if let Some(d) = value {
                    *field = millis(d);
                }
            };
            set(&mut check.interval_ms, self.health_interval);
            set(&mut check.timeout_ms, self.health_timeout);
            set(&mut check.start_period_ms, self.health_start_period);
            if let Some(retries) = self.health_retries {
                check.retries = retries;
            }
        }
        if let Some(grace) = self.stop_grace_period {
            container.stop_grace_period_ms = Some(millis(grace));
        }
        if let Some(signal) = &self.stop_signal {
            if signal.trim().is_empty() {
                bail!("--stop-signal is empty: give a signal such as SIGTERM or SIGQUIT");
            }
            container.stop_signal = signal.clone();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_flags_override_defaults_and_keep_the_rest() {
        let flags = RolloutFlags {
            update_parallelism: Some(2),
            update_order: Some("start-first".into()),
            update_failure_action: Some("rollback".into()),
            ..Default::default()
        };
        let (mut update, mut rollback) = (None, None);
        flags.apply(&mut update, &mut rollback, true).unwrap();
        let update = update.unwrap();
        assert_eq!(
            (update.parallelism, update.order()),
            (2, UpdateOrder::StartFirst)
        );
        assert_eq!(update.failure_action(), UpdateFailureAction::Rollback);
        assert_eq!(update.monitor_ms, Some(5_000));
        assert_eq!(rollback, Some(default_update_config()));
        let (mut update, mut rollback) = (None, None);
        RolloutFlags::default()
            .apply(&mut update, &mut rollback, false)
            .unwrap();
        assert_eq!(
            (update, rollback),
            (None, None),
            "update leaves unset configs"
        );
        let bad = RolloutFlags {
            update_max_failure_ratio: Some(1.5),
            ..Default::default()
        };
        let err = bad
            .apply(&mut None, &mut None, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--update-max-failure-ratio 1.5"), "{err}");
    }

    #[test]
    fn health_flags_build_a_shell_check_or_disable_it() {
        let flags = ContainerFlags {
            health_cmd: Some("wget -qO- http://127.0.0.1/".into()),
            health_interval: Some(Duration::from_secs(2)),
            stop_grace_period: Some(Duration::from_secs(3)),
            ..Default::default()
        };
        let mut container = ContainerSpec::default();
        flags.apply(&mut container).unwrap();
        let check = container.healthcheck.clone().unwrap();
        assert_eq!(check.test, ["CMD-SHELL", "wget -qO- http://127.0.0.1/"]);
        assert_eq!((check.interval_ms, check.retries), (2_000, 0));
        assert_eq!(container.stop_grace_period_ms, Some(3_000));
        let off = ContainerFlags {
            no_healthcheck: true,
            ..Default::default()
        };
        off.apply(&mut container).unwrap();
        assert_eq!(container.healthcheck.unwrap().test, ["NONE"]);
    }
}
