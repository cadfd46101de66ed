//! The scheduler's loop: one proposal placing every placeable pending task.

use swarmr_proto::convert::now_millis;
use swarmr_proto::{Node, Service, Task, TaskState, TaskStatus};

use super::{plan, Decision};
use crate::controller::Action;
use crate::core::{update_action, Core};
use crate::error::ProposeError;
use crate::store::Object;

pub async fn reconcile(core: Core) -> Result<Action, ProposeError> {
    let store = core.store();
    let nodes: Vec<Node> = store.list()?;
    let tasks = store.list_shared::<Task>()?;
    let services: Vec<Service> = store.list()?;
    let decisions = plan(&nodes, &tasks, &services);
    if decisions.is_empty() {
        return Ok(Action::AwaitChange);
    }
    let now = now_millis();
    let by_id: std::collections::HashMap<&str, &Task> =
        tasks.iter().map(|t| (t.id.as_str(), t.as_ref())).collect();
    let actions = decisions
        .into_iter()
        .filter_map(|decision| {
            let (task_id, node, reason) = match decision {
                Decision::Assign { task_id, node_id } => (task_id, Some(node_id), None),
                Decision::Unschedulable { task_id, reason } => (task_id, None, Some(reason)),
            };
            let mut task = (*by_id.get(task_id.as_str())?).clone();
            let version = task.version();
            match (node, reason) {
                (Some(node_id), _) => {
                    task.node_id = node_id;
                    task.scheduling_error.clear();
                    task.status = Some(TaskStatus {
                        state: TaskState::Assigned as i32,
                        message: "scheduled".into(),
                        timestamp: now,
                        ..Default::default()
                    });
                }
                (None, Some(reason)) => task.scheduling_error = reason,
                (None, None) => return None,
            }
            Some(update_action(task, version))
        })
        .collect();
    core.propose_chunked(actions).await?;
    Ok(Action::AwaitChange)
}
