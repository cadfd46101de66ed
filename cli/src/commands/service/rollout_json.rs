//! `service inspect` JSON for rolling updates and health checks, in Docker's names:
//! `UpdateConfig`/`RollbackConfig`, `UpdateStatus`, `ContainerSpec.Healthcheck`,
//! `StopGracePeriod`, `StopSignal`. Durations are nanoseconds, as Docker's.

use serde_json::{json, Value};
use swarmr_proto::{ContainerSpec, UpdateConfig, UpdateFailureAction, UpdateOrder, UpdateStatus};

use crate::commands::node::millis_to_rfc3339;

fn nanos(ms: u64) -> u64 {
    ms.saturating_mul(1_000_000)
}

pub fn update_config(config: &UpdateConfig) -> Value {
    let action = match config.failure_action() {
        UpdateFailureAction::Pause => "pause",
        UpdateFailureAction::Continue => "continue",
        UpdateFailureAction::Rollback => "rollback",
    };
    let order = match config.order() {
        UpdateOrder::StopFirst => "stop-first",
        UpdateOrder::StartFirst => "start-first",
    };
    let mut value = json!({
        "Parallelism": config.parallelism,
        "FailureAction": action,
        "Monitor": nanos(config.monitor_ms.unwrap_or(5_000)),
        "MaxFailureRatio": config.max_failure_ratio,
        "Order": order,
    });
    if config.delay_ms > 0 {
        value["Delay"] = json!(nanos(config.delay_ms));
    }
    value
}

pub fn update_status(status: &UpdateStatus) -> Value {
    let mut value = json!({
        "State": status.state().label(),
        "StartedAt": millis_to_rfc3339(status.started_at),
        "Message": status.message,
    });
    if status.completed_at > 0 {
        value["CompletedAt"] = json!(millis_to_rfc3339(status.completed_at));
    }
    value
}

/// Adds `Healthcheck`, `StopGracePeriod` and `StopSignal` where set.
pub fn add_container_fields(container: &ContainerSpec, value: &mut Value) {
    if let Some(check) = &container.healthcheck {
        let mut health = json!({ "Test": check.test });
        let fields = [
            ("Interval", check.interval_ms),
            ("Timeout", check.timeout_ms),
            ("StartPeriod", check.start_period_ms),
        ];
        for (name, ms) in fields.into_iter().filter(|(_, ms)| *ms > 0) {
            health[name] = json!(nanos(ms));
        }
        if check.retries > 0 {
            health["Retries"] = json!(check.retries);
        }
        value["Healthcheck"] = health;
    }
    if let Some(grace) = container.stop_grace_period_ms {
        value["StopGracePeriod"] = json!(nanos(grace));
    }
    if !container.stop_signal.is_empty() {
        value["StopSignal"] = json!(container.stop_signal);
    }
}
