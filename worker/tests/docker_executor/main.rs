//! The Docker executor, and the task agent on it, against the machine's real dockerd.
//!
//! Every test is `#[ignore]`d (it needs Docker and the `swarmr/busybox:latest` image
//! from `deploy/images/build.sh`); run them with
//! `cargo test -p swarmr-worker --test docker_executor -- --include-ignored`.
//! Each test uses its own random node id and removes its containers by that label at the
//! end, also when it fails, so tests can run in parallel on a shared daemon.

mod agent;
mod events;
mod images;
mod lifecycle;
mod logs;
mod util;
