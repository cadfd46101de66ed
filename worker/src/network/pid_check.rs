//! Is a PID from the cluster state still the task's container? A container that died
//! leaves its PID in the last report until the next one, and the kernel may hand that
//! PID to a host process meanwhile: wiring "its" namespace would then rewire the host's.

use std::os::unix::fs::MetadataExt;

/// Whether `pid` lives in a network namespace other than this node's own and, when the
/// container id is known, in that container's cgroup (Docker names the cgroup after it).
pub fn is_container_process(pid: u32, container_id: &str) -> bool {
    let ns_inode = |path: &str| std::fs::metadata(path).map(|m| m.ino()).ok();
    let Some(theirs) = ns_inode(&format!("/proc/{pid}/ns/net")) else {
        return false;
    };
    if ns_inode("/proc/self/ns/net") == Some(theirs) {
        return false;
    }
    if container_id.is_empty() {
        return true;
    }
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .is_ok_and(|cgroups| cgroups.contains(container_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_process_is_no_container() {
        // This test process shares the node's namespace: never a container's.
        assert!(!is_container_process(std::process::id(), ""));
        assert!(!is_container_process(u32::MAX, "abc"), "no such process");
    }
}
