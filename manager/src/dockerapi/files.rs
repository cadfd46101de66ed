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

pub fn secrets_from_docker(
    refs: &[docker::TaskSpecContainerSpecSecrets],
) -> Vec<pb::SecretReference> {
    refs.iter()
        .map(|r| {
            let file = r.file.clone().unwrap_or_default();
            let owner = (file.uid.as_ref(), file.gid.as_ref(), file.mode);
            reference(
                r.secret_id.as_ref(),
                r.secret_name.as_ref(),
                file.name.as_ref(),
                owner,
            )
        })
        .collect()
}

pub fn configs_from_docker(
    refs: &[docker::TaskSpecContainerSpecConfigs],
) -> Vec<pb::SecretReference> {
    refs.iter()
        .map(|r| {
            let file = r.file.clone().unwrap_or_default();
            let owner = (file.uid.as_ref(), file.gid.as_ref(), file.mode);
            reference(
                r.config_id.as_ref(),
                r.config_name.as_ref(),
                file.name.as_ref(),
                owner,
            )
        })
        .collect()
}

fn text(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_string())
}

pub fn secrets_to_docker(
    refs: &[pb::SecretReference],
) -> Option<Vec<docker::TaskSpecContainerSpecSecrets>> {
    nonempty(
        refs.iter()
            .map(|r| docker::TaskSpecContainerSpecSecrets {
                file: Some(docker::TaskSpecContainerSpecFile {
                    name: text(&r.target),
                    uid: Some(r.uid.to_string()),
                    gid: Some(r.gid.to_string()),
                    mode: Some(r.mode),
                }),
                secret_id: text(&r.id),
                secret_name: text(&r.name),
            })
            .collect(),
    )
}

pub fn configs_to_docker(
    refs: &[pb::SecretReference],
) -> Option<Vec<docker::TaskSpecContainerSpecConfigs>> {
    nonempty(
        refs.iter()
            .map(|r| docker::TaskSpecContainerSpecConfigs {
                file: Some(docker::TaskSpecContainerSpecFile1 {
                    name: text(&r.target),
                    uid: Some(r.uid.to_string()),
                    gid: Some(r.gid.to_string()),
                    mode: Some(r.mode),
                }),
                runtime: None,
                config_id: text(&r.id),
                config_name: text(&r.name),
            })
            .collect(),
    )
}
