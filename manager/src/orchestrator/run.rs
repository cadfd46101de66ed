//! The orchestrator's loop: plan against the store, commit the changes as one proposal.

use std::time::Duration;

use swarmr_proto::convert::now_millis;
use swarmr_proto::{Node, Service, Task, TaskState, TaskStatus, UpdateStatus};

use super::{plan_with_wakeup, Change};
use crate::ca;
use crate::controller::Action;
use crate::core::{create_action, delete_action, update_action, Core};
use crate::error::ProposeError;
use crate::store::Object;

/// The service with its spec and previous spec swapped, as a new spec version.
pub fn roll_back(mut service: Service, status: UpdateStatus) -> Service {
    let previous = service.previous_spec.take();
    service.previous_spec = service.spec.take();
    service.spec = previous;
    // An update keeps the published ports (not the spec's zeros) in the previous spec.
    if let Some(spec) = &service.spec {
        if spec.ports.iter().all(|p| p.published_port != 0) {
            service.ports = spec.ports.clone();
        }
    }
    service.spec_version += 1;
    service.update_status = Some(status);
    service
}

pub async fn reconcile(core: Core) -> Result<Action, ProposeError> {
    let store = core.store();
    let services: Vec<Service> = store.list()?;
    let tasks = store.list_shared::<Task>()?;
    let nodes: Vec<Node> = store.list()?;
    let now = now_millis();
    let plan = plan_with_wakeup(&services, &tasks, &nodes, now, &mut ca::new_id);
    if !plan.changes.is_empty() {
        let index: std::collections::HashMap<&str, &Task> =
            tasks.iter().map(|t| (t.id.as_str(), t.as_ref())).collect();
        let by_id = |id: &str| index.get(id).map(|t| (*t).clone());
        let service_of = |id: &str| services.iter().find(|s| s.id == id).cloned();
        let actions = plan
            .changes
            .into_iter()
            .filter_map(|change| match change {
                Change::Create(mut task) => {
                    task.status
                        .get_or_insert_with(TaskStatus::default)
                        .timestamp = now;
                    Some(create_action(task))
                }
                Change::Shutdown { task_id } => by_id(&task_id).map(|mut task| {
                    let version = task.version();
                    task.set_desired_state(TaskState::Shutdown);
                    update_action(task, version)
                }),
                Change::Delete { task_id } => by_id(&task_id).map(delete_action),
                Change::UpdateStatus { service_id, status } => {
                    service_of(&service_id).map(|mut service| {
                        let version = service.version();
                        service.update_status = Some(status);
                        update_action(service, version)
                    })
                }
                Change::Rollback { service_id, status } => service_of(&service_id).map(|service| {
                    let version = service.version();
                    update_action(roll_back(service, status), version)
                }),
            })
            .collect();
        core.propose_chunked(actions).await?;
    }
    Ok(match plan.next_wakeup {
        Some(at) => Action::Requeue(Duration::from_millis((at - now).max(0) as u64)),
        None => Action::AwaitChange,
    })
}
