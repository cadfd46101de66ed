//! A container spec's `Secrets` and `Configs` (Docker's references with a `File`) to
//! swarmr's references and back. The target is kept as sent (a relative one is completed
//! by the Control API, as swarmr's CLI's is), so the round-trip check sees it unchanged.

use bollard_stubs::models as docker;
use swarmr_proto as pb;

use super::spec::nonempty;

fn id_number(value: Option<&String>) -> u32 {
    value.and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn reference(
    id: Option<&String>,
    name: Option<&String>,
    target: Option<&String>,
    (uid, gid, mode): (Option<&String>, Option<&String>, Option<u32>),
) -> pb::SecretReference {
    pb::SecretReference {
        id: id.cloned().unwrap_or_default(),
        name: name.cloned().unwrap_or_default(),
        target: target.cloned().unwrap_or_default(),
        uid: id_number(uid),
        gid: id_number(gid),
        mode: mode.unwrap_or(0),
        revision: 0,
    }
}

fn text(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_string())
}

/// Docker's secret and config references are two types that differ only in their field
/// names (and a config's `runtime`, which swarmr leaves unset): one body converts both,
/// each way.
macro_rules! file_references {
    ($from:ident, $to:ident, $kind:ident, $file:ident, $id:ident, $name:ident $(, $unset:ident)*) => {
        pub fn $from(refs: &[docker::$kind]) -> Vec<pb::SecretReference> {
            refs.iter()
                .map(|r| {
                    let file = r.file.clone().unwrap_or_default();
                    let owner = (file.uid.as_ref(), file.gid.as_ref(), file.mode);
                    reference(r.$id.as_ref(), r.$name.as_ref(), file.name.as_ref(), owner)
                })
                .collect()
        }

        pub fn $to(refs: &[pb::SecretReference]) -> Option<Vec<docker::$kind>> {
            let docker = refs.iter().map(|r| docker::$kind {
                file: Some(docker::$file {
                    name: text(&r.target),
                    uid: Some(r.uid.to_string()),
                    gid: Some(r.gid.to_string()),
                    mode: Some(r.mode),
                }),
                $id: text(&r.id),
                $name: text(&r.name),
                $($unset: None,)*
            });
            nonempty(docker.collect())
        }
    };
}

file_references! {
    secrets_from_docker, secrets_to_docker,
    TaskSpecContainerSpecSecrets, TaskSpecContainerSpecFile, secret_id, secret_name
}
file_references! {
    configs_from_docker, configs_to_docker,
    TaskSpecContainerSpecConfigs, TaskSpecContainerSpecFile1, config_id, config_name, runtime
}
