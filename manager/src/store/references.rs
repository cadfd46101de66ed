//! Secrets and configs against the services that use them, checked when an entry is
//! applied: a service may only reference ones that exist, and one a service uses (in its
//! spec, as Docker checks) cannot be removed. Decisions made
//! on a stale replica, or two racing requests, cannot break either rule.

use prost::Message;
use swarmr_proto::{ContainerSpec, SecretReference, SecretSpec, Service, ServiceSpec};

use super::apply::Refusal;
use super::object::{key_of, Object};
use super::{Index, Staged};

/// Secrets or configs: which references of a container spec point at the kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    Secret,
    Config,
}

impl FileKind {
    pub fn kind(self) -> &'static str {
        match self {
            FileKind::Secret => "secret",
            FileKind::Config => "config",
        }
    }

    pub fn refs(self, container: &ContainerSpec) -> &[SecretReference] {
        match self {
            FileKind::Secret => &container.secrets,
            FileKind::Config => &container.configs,
        }
    }
}

pub fn same_name(
    kind: &str,
    new: &Option<SecretSpec>,
    other: &Option<SecretSpec>,
    other_id: &str,
) -> Option<Refusal> {
    let name = |s: &Option<SecretSpec>| s.as_ref().map(|s| s.name.clone()).unwrap_or_default();
    super::conflicts::same_name(kind, &name(new), &name(other), other_id)
}

/// Whether `spec` references the object `id` of `kind`.
pub fn spec_uses(spec: Option<&ServiceSpec>, kind: FileKind, id: &str) -> bool {
    spec.and_then(|s| s.container.as_ref())
        .is_some_and(|c| kind.refs(c).iter().any(|r| r.id == id))
}

/// Whether the service's current spec uses the object. (A rollback to a spec that used
/// a removed one is refused by [`missing`].)
pub fn service_uses(service: &Service, kind: FileKind, id: &str) -> bool {
    spec_uses(service.spec.as_ref(), kind, id)
}

/// Why the object cannot be removed: the services that use it, if any, in key order.
pub fn in_use(
    staged: &Staged,
    state: &sled::Tree,
    index: &Index,
    kind: FileKind,
    id: &str,
    name: &str,
) -> Result<Option<Refusal>, sled::Error> {
    let mut users = Vec::new();
    for service_id in index.users(kind, id) {
        let key = key_of(Service::KIND, service_id);
        let Some(bytes) = staged.get(state, key.as_bytes())? else {
            continue;
        };
        let Ok(service) = Service::decode(bytes.as_ref()) else {
            continue;
        };
        if service_uses(&service, kind, id) {
            users.push(service.spec.map(|s| s.name).unwrap_or(service.id));
        }
    }
    Ok((!users.is_empty()).then(|| Refusal::invalid(in_use_message(kind, name, &users))))
}

pub fn in_use_message(kind: FileKind, name: &str, users: &[String]) -> String {
    let kind = kind.kind();
    format!(
        "{kind} {name} is in use by service(s) {}: remove them or their --{kind} first (`service update --{kind}-rm {name}`)",
        users.join(", ")
    )
}

/// Why the service cannot be stored: a secret or config it references is gone.
pub fn missing(
    staged: &Staged,
    state: &sled::Tree,
    service: &Service,
) -> Result<Option<Refusal>, sled::Error> {
    let Some(container) = service.spec.as_ref().and_then(|s| s.container.as_ref()) else {
        return Ok(None);
    };
    for kind in [FileKind::Secret, FileKind::Config] {
        for reference in kind.refs(container) {
            let key = key_of(kind.kind(), &reference.id);
            if !staged.contains_key(state, key.as_bytes())? {
                let kind = kind.kind();
                let reason = format!(
                    "{kind} {} not found: see `swarmr {kind} ls`",
                    reference.name
                );
                return Ok(Some(Refusal::invalid(reason)));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use swarmr_proto::store_action::{Kind, Target};
    use swarmr_proto::{Secret, SecretReference, SecretSpec, Service, ServiceSpec};

    use super::super::{Index, Staged, Store};

    fn service(id: &str, secret: &str) -> Service {
        let container = swarmr_proto::ContainerSpec {
            secrets: vec![SecretReference {
                id: secret.into(),
                name: format!("name-{secret}"),
                ..Default::default()
            }],
            ..Default::default()
        };
        Service {
            id: id.into(),
            spec: Some(ServiceSpec {
                name: format!("svc-{id}"),
                container: Some(container),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn secret(id: &str) -> Secret {
        Secret {
            id: id.into(),
            spec: Some(SecretSpec {
                name: format!("name-{id}"),
                labels: Default::default(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn references_to_secrets_are_checked_both_ways() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let store = Store::open(&db).unwrap();
        let put = |key: &str, bytes: Vec<u8>| store.state.insert(key, bytes).unwrap();
        put("secret/s1", secret("s1").encode_to_vec());
        put("service/a", service("a", "s1").encode_to_vec());
        let index = Index::build(&store.state).unwrap();
        let delete = store
            .find_conflict(
                &Staged::default(),
                &index,
                Kind::Delete,
                &Target::Secret(secret("s1")),
            )
            .unwrap()
            .map(|r| r.reason);
        assert_eq!(
            delete
                .as_deref()
                .map(|r| r.starts_with("secret name-s1 is in use by service(s) svc-a")),
            Some(true),
            "{delete:?}"
        );
        let missing = store
            .find_conflict(
                &Staged::default(),
                &index,
                Kind::Create,
                &Target::Service(service("b", "s2")),
            )
            .unwrap();
        assert!(missing.is_some_and(|r| r.reason.contains("secret name-s2 not found")));
        let fine = store
            .find_conflict(
                &Staged::default(),
                &index,
                Kind::Update,
                &Target::Service(service("a", "s1")),
            )
            .unwrap();
        assert_eq!(fine, None);
        let mut other = secret("s1");
        other.id = "s9".into();
        let clash = store
            .find_conflict(
                &Staged::default(),
                &index,
                Kind::Create,
                &Target::Secret(other),
            )
            .unwrap();
        assert!(clash.is_some_and(|r| r.reason.contains("already in use by secret s1")));
    }
}
