//! Cluster core with real `swarmr` processes on loopback addresses.

mod bad_input;
mod deploy;
mod discovery;
mod errors;
mod failover;
mod faults;
mod membership;
mod networks;
mod overlay;
mod security;
mod services;
mod util;
