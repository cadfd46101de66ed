//! Cluster core with real `swarmr` processes on loopback addresses.

mod bad_input;
mod check;
mod deploy;
mod discovery;
mod dockerapi;
mod dockerapi_requests;
mod dockerapi_secrets;
mod errors;
mod failover;
mod faults;
mod health;
mod linearizable;
mod membership;
mod netns;
mod networks;
mod overlay;
mod partitions;
mod publish;
mod secrets;
mod security;
mod services;
mod updates;
mod util;
mod vip_balancer;
mod workload;
