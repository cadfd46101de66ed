//! `swarmr service update` and `service rollback`: the new spec is validated like a
//! create's, the old one is kept as `previous_spec`, and when the task template changed
//! the update status becomes `updating`, which the orchestrator's updater drives from
//! there. One proposal each; a refused request writes nothing.

use swarmr_proto::convert::now_millis;
use swarmr_proto::{
    Service, ServiceSpec, ServiceView, UpdateFailureAction, UpdateState, UpdateStatus,
};
use tonic::Status;

use super::networks::Pending;
use super::resolve::{resolve, Named};
use super::services::{get, publish, validate};
use crate::core::{update_action, Core};
use crate::orchestrator::run::roll_back;
use crate::store::Object;

pub async fn update(
    core: &Core,
    pending: &Pending,
    reference: &str,
    mut spec: ServiceSpec,
    version: u64,
) -> Result<ServiceView, Status> {
    let service: Service = resolve(core, reference)?;
    let old = service.spec.clone().unwrap_or_default();
    if version != 0 && version != service.version() {
        return Err(Status::aborted(format!(
            "service {} changed while this update was prepared: run it again",
            old.name
        )));
    }
    if spec.name != old.name {
        return Err(Status::invalid_argument(format!(
            "service {} cannot be renamed to {:?}: leave the name as it is",
            old.name, spec.name
        )));
    }
    if spec.global != old.global {
        return Err(Status::invalid_argument(format!(
            "service {}: the mode of a service cannot change; remove it and create it again",
            old.name
        )));
    }
    validate(core, &mut spec)?;
    check_update_configs(&spec)?;
    let mut rollout = template_changed(&old, &spec);
    if spec == old {
        return get(core, &service.id);
    }
    let mut updated = service.clone();
    if spec.ports != old.ports {
        let (ports, ingress) = publish(core, pending, &service.id, &spec).await?;
        updated.ports = ports;
        // Tasks made before the service joined the mesh have no address on it.
        if !ingress.is_empty() && ingress != updated.ingress_network_id {
            updated.ingress_network_id = ingress;
            rollout = true;
        }
    }
    // The ports as published, so that a rollback returns to the very same ones.
    let mut previous = old;
    previous.ports = service.ports.clone();
    updated.previous_spec = Some(previous);
    updated.spec = Some(spec);
    updated.spec_version += 1;
    if rollout {
        updated.update_status = Some(status(UpdateState::Updating, "update in progress"));
    }
    core.propose(vec![update_action(updated, service.version())])
        .await?;
    get(core, &service.id)
}

pub async fn rollback(
    core: &Core,
    pending: &Pending,
    reference: &str,
) -> Result<ServiceView, Status> {
    let service: Service = resolve(core, reference)?;
    if service.previous_spec.is_none() {
        return Err(Status::failed_precondition(format!(
            "service {} has no previous spec to roll back to: it was never updated",
            service.name()
        )));
    }
    let current = service.spec.clone().unwrap_or_default();
    let version = service.version();
    let status = status(UpdateState::RollbackStarted, "manually requested rollback");
    let mut rolled = roll_back(service.clone(), status);
    if let Some(spec) = rolled.spec.clone().filter(|s| s.ports != current.ports) {
        let (ports, ingress) = publish(core, pending, &service.id, &spec).await?;
        rolled.ports = ports;
        if !ingress.is_empty() {
            rolled.ingress_network_id = ingress;
        }
    }
    core.propose(vec![update_action(rolled, version)]).await?;
    get(core, &service.id)
}

pub(super) fn status(state: UpdateState, message: &str) -> UpdateStatus {
    UpdateStatus {
        state: state as i32,
        started_at: now_millis(),
        completed_at: 0,
        message: message.to_string(),
    }
}

/// Tasks made from `old` must be replaced to match `new`.
pub fn template_changed(old: &ServiceSpec, new: &ServiceSpec) -> bool {
    old.container != new.container
        || old.networks != new.networks
        || old.constraints != new.constraints
}

/// Ratios within 0..=1; a rollback cannot itself fail over to a rollback.
pub fn check_update_configs(spec: &ServiceSpec) -> Result<(), Status> {
    let configs = [
        ("update", &spec.update_config),
        ("rollback", &spec.rollback_config),
    ];
    for (what, config) in configs {
        let Some(config) = config else { continue };
        let ratio = config.max_failure_ratio;
        if !(0.0..=1.0).contains(&ratio) {
            return Err(Status::invalid_argument(format!(
                "invalid --{what}-max-failure-ratio {ratio}: use a fraction from 0 to 1"
            )));
        }
        if UpdateFailureAction::try_from(config.failure_action).is_err() {
            return Err(Status::invalid_argument(format!(
                "invalid --{what}-failure-action: use pause, continue or rollback"
            )));
        }
    }
    let rollback_action = spec.rollback_config.as_ref().map(|c| c.failure_action());
    if rollback_action == Some(UpdateFailureAction::Rollback) {
        return Err(Status::invalid_argument(
            "invalid --rollback-failure-action rollback: use pause or continue",
        ));
    }
    Ok(())
}
