//! What the shared Docker daemon says about a test's containers.

use std::process::Command;

/// The PID of a container's process, per Docker (empty if it has none).
pub fn pid_of(container: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{.State.Pid}}", container])
        .output()
        .expect("docker inspect");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Containers of a service, per Docker itself.
pub fn containers(service_id: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-q",
            "--filter",
            &format!("label=com.swarmr.service.id={service_id}"),
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}
