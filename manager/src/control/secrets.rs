//! `swarmr secret|config create|ls|inspect|rm|update`. Both kinds share this code: the
//! data is checked (Docker's 1 byte to 500 KiB, Docker's name rule), sealed under the
//! cluster's data key (`crate::secrets`) and only then proposed, one entry per action.
//! `update` (beyond Swarm, whose secrets are immutable) stores the next revision and, in
//! the same entry, rolls every service that uses it.

use swarmr_proto::{Config, Secret, SecretSpec, Service, UpdateState};

use crate::secrets::sealed::SealedObject;
use tonic::Status;

use super::resolve::{resolve, Named};
use crate::ca;
use crate::core::{create_action, delete_action, update_action, Core};
use crate::limits;
use crate::store::references::{in_use_message, service_uses, FileKind};
use crate::store::Object;

/// Docker's `MaxSecretSize` / `MaxConfigSize`: data must be shorter than this.
pub const MAX_DATA: usize = 500 * 1024;
/// Docker's limit on secret and config names.
pub const MAX_NAME: usize = 64;

/// A sealed object with the name `resolve` looks it up by.
pub trait SealedNamed: SealedObject + Named {}
impl<T: SealedObject + Named> SealedNamed for T {}

macro_rules! named_file {
    ($ty:ident, $list:literal) => {
        impl Named for $ty {
            const LIST_COMMAND: &'static str = $list;
            fn name(&self) -> &str {
                self.spec.as_ref().map_or("", |s| s.name.as_str())
            }
        }
    };
}

named_file!(Secret, "swarmr secret ls");
named_file!(Config, "swarmr config ls");

/// Docker's rule: `^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$`, at most 64 characters.
pub fn check_name(kind: &str, name: &str) -> Result<(), Status> {
    let bytes = name.as_bytes();
    let inner_ok = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.');
    let valid = !bytes.is_empty()
        && bytes.len() <= MAX_NAME
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(inner_ok);
    if valid {
        return Ok(());
    }
    let shown: String = name.chars().take(80).collect();
    Err(Status::invalid_argument(format!(
        "invalid {kind} name {shown:?}: use 1 to {MAX_NAME} letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
    )))
}

pub fn check_data(kind: &str, data: &[u8]) -> Result<(), Status> {
    if data.is_empty() || data.len() >= MAX_DATA {
        return Err(Status::invalid_argument(format!(
            "{kind} data must be larger than 0 and smaller than 500 KiB ({MAX_DATA} bytes); it is {} bytes",
            data.len()
        )));
    }
    Ok(())
}

fn seal_err(e: crate::secrets::SecretsError) -> Status {
    Status::unavailable(e.to_string())
}

/// The object as replies show it: never its sealed data.
fn shown<T: SealedNamed>(mut obj: T) -> T {
    let revision = obj.revision();
    obj.set_sealed(Vec::new(), revision);
    obj
}

pub async fn create<T: SealedNamed>(
    core: &Core,
    spec: Option<SecretSpec>,
    data: &[u8],
) -> Result<T, Status> {
    let kind = T::FILE.kind();
    let spec = spec.unwrap_or_default();
    check_name(kind, &spec.name)?;
    limits::check_labels(&format!("{kind} labels (--label)"), &spec.labels)?;
    check_data(kind, data)?;
    let existing: Vec<T> = core.store().list()?;
    if let Some(clash) = existing.iter().find(|o| o.name() == spec.name) {
        return Err(Status::already_exists(format!(
            "{kind} {:?} already exists (id {}): pick another name, or change its value with `swarmr {kind} update`",
            spec.name,
            clash.id()
        )));
    }
    let id = ca::new_id();
    let sealed = core.keyring().seal(kind, &id, 1, data).map_err(seal_err)?;
    let obj = T::build(id.clone(), spec, sealed, 1);
    core.propose(vec![create_action(obj.clone())]).await?;
    Ok(shown(core.store().get(&id)?.unwrap_or(obj)))
}

pub fn list<T: SealedNamed>(core: &Core) -> Result<Vec<T>, Status> {
    let mut all: Vec<T> = core.store().list()?;
    all.sort_by(|a, b| a.name().cmp(b.name()));
    Ok(all.into_iter().map(shown).collect())
}

pub fn get<T: SealedNamed>(core: &Core, reference: &str) -> Result<T, Status> {
    resolve::<T>(core, reference).map(shown)
}

/// A config's data, opened for `config inspect` (configs are not secret).
pub fn open<T: SealedNamed>(core: &Core, reference: &str) -> Result<(T, Vec<u8>), Status> {
    let obj: T = resolve(core, reference)?;
    let data = core
        .keyring()
        .open(T::FILE.kind(), obj.id(), obj.revision(), obj.sealed())
        .map_err(seal_err)?;
    Ok((shown(obj), data))
}

fn users<T: SealedNamed>(core: &Core, obj: &T) -> Result<Vec<Service>, Status> {
    let services: Vec<Service> = core.store().list()?;
    Ok(services
        .into_iter()
        .filter(|s| service_uses(s, T::FILE, obj.id()))
        .collect())
}

pub async fn remove<T: SealedNamed>(core: &Core, reference: &str) -> Result<(), Status> {
    let obj: T = resolve(core, reference)?;
    let users: Vec<String> = users(core, &obj)?
        .iter()
        .map(|s| s.name().to_string())
        .collect();
    if !users.is_empty() {
        return Err(Status::failed_precondition(in_use_message(
            T::FILE,
            obj.name(),
            &users,
        )));
    }
    // The state machine checks again, so a service created meanwhile still wins.
    core.propose(vec![delete_action(obj)]).await?;
    Ok(())
}

/// Stores `data` as the next revision and rolls every service that uses the object, in
/// one entry. Returns the object and the names of the services rolled.
pub async fn update<T: SealedNamed>(
    core: &Core,
    reference: &str,
    data: &[u8],
) -> Result<(T, Vec<String>), Status> {
    let kind = T::FILE.kind();
    check_data(kind, data)?;
    let current: T = resolve(core, reference)?;
    let keyring = core.keyring();
    let same = keyring.open(kind, current.id(), current.revision(), current.sealed());
    if same.is_ok_and(|old| old == data) {
        // Nothing to store, nothing to roll.
        return Ok((shown(current), Vec::new()));
    }
    let revision = current.revision() + 1;
    let sealed = keyring
        .seal(kind, current.id(), revision, data)
        .map_err(seal_err)?;
    let mut updated = current.clone();
    updated.set_sealed(sealed, revision);
    let mut actions = vec![update_action(updated, current.version())];
    let mut rolled = Vec::new();
    for service in users(core, &current)? {
        rolled.push(service.name().to_string());
        let version = service.version();
        actions.push(update_action(
            roll(service, T::FILE, &current, revision)?,
            version,
        ));
    }
    core.propose(actions).await?;
    let stored: T = core.store().get(current.id())?.unwrap_or(current);
    Ok((shown(stored), rolled))
}

/// The service with its references to `id` at `revision`, as a rolling update.
fn roll<T: SealedNamed>(
    mut service: Service,
    file: FileKind,
    obj: &T,
    revision: u64,
) -> Result<Service, Status> {
    let (id, kind) = (obj.id(), file.kind());
    let old = service.spec.clone().unwrap_or_default();
    let mut spec = old.clone();
    if let Some(container) = spec.container.as_mut() {
        let refs = match file {
            FileKind::Secret => &mut container.secrets,
            FileKind::Config => &mut container.configs,
        };
        refs.iter_mut()
            .filter(|r| r.id == id)
            .for_each(|r| r.revision = revision);
    }
    let mut previous = old;
    previous.ports = service.ports.clone();
    service.previous_spec = Some(previous);
    service.spec = Some(spec);
    service.spec_version += 1;
    let message = format!("{kind} {} changed to revision {revision}", obj.name());
    service.update_status = Some(super::updates::status(UpdateState::Updating, &message));
    Ok(service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        for good in ["a", "db-password", "x.y_z", "A1", &"a".repeat(64)] {
            assert!(check_name("secret", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a b",
            "a/b",
            "é",
            &"a".repeat(65),
            ".a",
            "a_",
        ] {
            let err = check_name("secret", bad).unwrap_err();
            assert!(err.message().contains("invalid secret name"), "{bad}");
        }
    }

    #[test]
    fn data_is_one_byte_to_under_500_kib() {
        assert!(check_data("secret", b"x").is_ok());
        assert!(check_data("secret", &vec![0; MAX_DATA - 1]).is_ok());
        assert!(check_data("config", &[]).is_err());
        let err = check_data("secret", &vec![0; MAX_DATA]).unwrap_err();
        assert!(err.message().contains("smaller than 500 KiB"), "{err}");
    }
}
