//! The orchestrator's loop: plan against the store, commit the changes as one proposal.

use std::time::Duration;

use swarmr_proto::convert::now_millis;
use swarmr_proto::{Node, Service, Task, TaskState, TaskStatus};

use super::{plan_with_wakeup, Change};
use crate::ca;
use crate::controller::Action;
use crate::core::{create_action, delete_action, update_action, Core};
use crate::error::ProposeError;
use crate::store::Object;

pub async fn reconcile(core: Core) -> Result<Action, ProposeError> {
    let store = core.store();
    let read = |e: crate::error::StoreError| ProposeError::Rejected(e.to_string());
    let services: Vec<Service> = store.list().map_err(read)?;
    let tasks: Vec<Task> = store.list().map_err(read)?;
    let nodes: Vec<Node> = store.list().map_err(read)?;
    let now = now_millis();
    let plan = plan_with_wakeup(&services, &tasks, &nodes, now, &mut ca::new_id);
    if !plan.changes.is_empty() {
        let index: std::collections::HashMap<&str, &Task> =
            tasks.iter().map(|t| (t.id.as_str(), t)).collect();
        let by_id = |id: &str| index.get(id).map(|t| (*t).clone());
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
            })
            .collect();
        core.propose_chunked(actions).await?;
    }
    Ok(match plan.next_wakeup {
        Some(at) => Action::Requeue(Duration::from_millis((at - now).max(0) as u64)),
        None => Action::AwaitChange,
    })
}
