//! The secrets and configs a node is sent: only those its tasks that may still start or
//! run reference, opened from their sealed form here, on the leader, and carried in clear
//! only inside the node's mutual-TLS session. Nothing here logs their data.

use std::collections::BTreeSet;

use swarmr_proto::{Config, Secret, SecretData, Task};
use tracing::warn;

use crate::core::Core;
use crate::secrets::sealed::SealedObject;

/// (secrets, configs) for the node whose tasks these are.
pub fn for_tasks(core: &Core, tasks: &[Task]) -> (Vec<SecretData>, Vec<SecretData>) {
    let live = || tasks.iter().filter(|t| !t.current_state().is_terminal());
    let ids = |pick: fn(&swarmr_proto::ContainerSpec) -> &[swarmr_proto::SecretReference]| {
        live()
            .filter_map(|t| t.container.as_ref())
            .flat_map(|c| pick(c).iter().map(|r| r.id.clone()))
            .collect::<BTreeSet<String>>()
    };
    let secrets = ids(|c| &c.secrets);
    let configs = ids(|c| &c.configs);
    (
        opened::<Secret>(core, &secrets),
        opened::<Config>(core, &configs),
    )
}

fn opened<T: SealedObject>(core: &Core, ids: &BTreeSet<String>) -> Vec<SecretData> {
    let kind = T::FILE.kind();
    ids.iter()
        .filter_map(|id| {
            let obj: T = match core.store().get(id) {
                Ok(Some(obj)) => obj,
                Ok(None) => return None,
                Err(e) => {
                    warn!(error = %e, "read a {kind} to send");
                    return None;
                }
            };
            match core.keyring().open(kind, id, obj.revision(), obj.sealed()) {
                Ok(data) => Some(SecretData {
                    id: id.clone(),
                    revision: obj.revision(),
                    data,
                }),
                Err(e) => {
                    warn!(%kind, id = %id, error = %e, "cannot open a {kind} for a node's task");
                    None
                }
            }
        })
        .collect()
}
