//! Finding an object the way Docker does: exact id, then a unique id prefix, then name.

use swarmr_proto::{Network, Node, Service};
use tonic::Status;

use crate::core::Core;
use crate::store::Object;

/// The name users know an object by.
pub trait Named: Object {
    /// How the CLI lists this kind, for error messages (`swarmr node ls`).
    const LIST_COMMAND: &'static str;
    fn name(&self) -> &str;
}

impl Named for Node {
    const LIST_COMMAND: &'static str = "swarmr node ls";
    fn name(&self) -> &str {
        self.description
            .as_ref()
            .map_or("", |d| d.hostname.as_str())
    }
}

impl Named for Network {
    const LIST_COMMAND: &'static str = "swarmr network ls";
    fn name(&self) -> &str {
        self.spec.as_ref().map_or("", |s| s.name.as_str())
    }
}

impl Named for Service {
    const LIST_COMMAND: &'static str = "swarmr service ls";
    fn name(&self) -> &str {
        self.spec.as_ref().map_or("", |s| s.name.as_str())
    }
}

pub fn resolve<T: Named>(core: &Core, reference: &str) -> Result<T, Status> {
    if reference.is_empty() {
        return Err(Status::invalid_argument(format!(
            "a {} id or name is required",
            T::KIND
        )));
    }
    let all: Vec<T> = core.store().list()?;
    if let Some(exact) = all.iter().find(|o| o.id() == reference) {
        return Ok(exact.clone());
    }
    let by_name: Vec<&T> = all.iter().filter(|o| o.name() == reference).collect();
    let by_prefix: Vec<&T> = all
        .iter()
        .filter(|o| o.id().starts_with(reference))
        .collect();
    let matches = if by_name.is_empty() {
        by_prefix
    } else {
        by_name
    };
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Status::not_found(format!(
            "{} {reference} not found: see `{}`",
            T::KIND,
            T::LIST_COMMAND
        ))),
        many => Err(Status::invalid_argument(format!(
            "{} reference {reference} is ambiguous ({} match): use more of the id",
            T::KIND,
            many.len()
        ))),
    }
}

/// Docker's rule for network and service names: a letter or digit, then letters, digits,
/// `_`, `.`, `-`.
pub fn check_name(kind: &str, name: &str) -> Result<(), Status> {
    if name.len() > 63 {
        return Err(Status::invalid_argument(format!(
            "the {kind} name is too long ({} bytes): use up to 63 letters, digits, '_', '.' or '-'",
            name.len()
        )));
    }
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.len() <= 63;
    if valid {
        return Ok(());
    }
    Err(Status::invalid_argument(format!(
        "invalid {kind} name {name:?}: use up to 63 letters, digits, '_', '.' or '-', starting with a letter or digit"
    )))
}
