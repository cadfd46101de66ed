//! Conversions between the generated types and what users type and read.

mod container;
mod network;
mod node;
mod service;
mod task;
mod template;

pub use container::{is_namespaced_sysctl, CAPABILITIES, ULIMIT_NAMES};
pub use network::addr_ip;
pub use node::{parse_availability, parse_role};
pub use task::container_name;
pub use template::{expand, TemplateValues, PLACEHOLDERS};

/// Unix time in milliseconds, the unit of every timestamp in the objects.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
