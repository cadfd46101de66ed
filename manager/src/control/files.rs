//! A service's `--secret` and `--config` references, checked and completed at create and
//! update: each names an existing secret or config (by name or id; stored by id, with its
//! current revision), Docker's default target (`/run/secrets/<name>` for a secret,
//! `/<name>` for a config; a relative target goes under those), mode 0444 when unset, and
//! no two files (or a file and a `--mount`) at one target.

use std::collections::HashSet;

use swarmr_proto::{Config, Secret, SecretReference, ServiceSpec};
use tonic::Status;

use super::resolve::resolve;
use super::secrets::SealedNamed;
use crate::core::Core;
use crate::store::references::FileKind;

/// References of each kind one service may hold.
pub const MAX_REFS: usize = 64;
const DEFAULT_MODE: u32 = 0o444;
const MAX_TARGET: usize = 1024;

pub fn resolve_refs(core: &Core, spec: &mut ServiceSpec) -> Result<(), Status> {
    let Some(container) = spec.container.as_mut() else {
        return Ok(());
    };
    resolve_kind::<Secret>(core, &mut container.secrets)?;
    resolve_kind::<Config>(core, &mut container.configs)?;
    let mut targets: HashSet<&str> = container.mounts.iter().map(|m| m.target.as_str()).collect();
    for r in container.secrets.iter().chain(&container.configs) {
        if !targets.insert(r.target.as_str()) {
            return Err(Status::invalid_argument(format!(
                "two secrets, configs or mounts would be at {}: give one of them another target=",
                r.target
            )));
        }
    }
    Ok(())
}

fn resolve_kind<T: SealedNamed>(core: &Core, refs: &mut [SecretReference]) -> Result<(), Status> {
    let kind = T::FILE.kind();
    if refs.len() > MAX_REFS {
        return Err(Status::invalid_argument(format!(
            "too many {kind}s (--{kind}: {}): the limit is {MAX_REFS}",
            refs.len()
        )));
    }
    for r in refs.iter_mut() {
        let reference = if r.id.is_empty() { &r.name } else { &r.id };
        let obj: T = resolve(core, reference)?;
        r.id = obj.id().to_string();
        r.name = obj.name().to_string();
        r.revision = obj.revision();
        r.target = target(T::FILE, &r.target, &r.name)?;
        if r.mode == 0 {
            r.mode = DEFAULT_MODE;
        }
        if r.mode > 0o777 {
            return Err(Status::invalid_argument(format!(
                "invalid mode {:o} for {kind} {}: use permission bits, 0 to 0777 in octal",
                r.mode, r.name
            )));
        }
    }
    Ok(())
}

/// The absolute path in the container; it becomes one bind mount of a file.
fn target(file: FileKind, given: &str, name: &str) -> Result<String, Status> {
    let given = if given.is_empty() { name } else { given };
    let path = match (given.starts_with('/'), file) {
        (true, _) => given.to_string(),
        (false, FileKind::Secret) => format!("/run/secrets/{given}"),
        (false, FileKind::Config) => format!("/{given}"),
    };
    let bad_part = path.split('/').any(|p| p == ".." || p == ".");
    let bad_char = path.chars().any(|c| c == ':' || c == ',' || c.is_control());
    if path.len() > MAX_TARGET || bad_part || bad_char || path.ends_with('/') {
        let shown: String = given.chars().take(80).collect();
        return Err(Status::invalid_argument(format!(
            "invalid {} target {shown:?}: use a file path without '..', ':' or ',' (at most {MAX_TARGET} bytes)",
            file.kind()
        )));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_default_like_dockers() {
        let t = |f, given, name| target(f, given, name);
        assert_eq!(t(FileKind::Secret, "", "db").unwrap(), "/run/secrets/db");
        assert_eq!(t(FileKind::Secret, "pw", "db").unwrap(), "/run/secrets/pw");
        assert_eq!(t(FileKind::Config, "", "app.conf").unwrap(), "/app.conf");
        assert_eq!(
            t(FileKind::Config, "/etc/app.conf", "x").unwrap(),
            "/etc/app.conf"
        );
        for bad in ["/etc/../x", "/a:b", "/a,b", "/dir/", "a\nb"] {
            assert!(t(FileKind::Config, bad, "x").is_err(), "{bad}");
        }
    }
}
