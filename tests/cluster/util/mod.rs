//! Test harness: real `swarmr` processes (`node`), clusters of them (`cluster`), the
//! client commands tests run (`cli`) and Docker's view of their containers (`docker`).

mod cli;
mod cluster;
mod docker;
mod node;

pub use cli::*;
pub use cluster::Cluster;
pub use docker::{containers, pid_of};
pub use node::Node;

pub const BIN: &str = env!("CARGO_BIN_EXE_swarmr");
