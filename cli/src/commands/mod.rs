//! Client commands, one file per group.

pub mod node;
pub mod swarm;
