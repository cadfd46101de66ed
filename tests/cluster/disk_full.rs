//! A follower whose disk fills up: the other two managers go on writing, the full one
//! says why it cannot, and once space is freed and it restarts it catches up, its data
//! intact.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

/// A small tmpfs on a directory of the test's, unmounted on drop, also when the test
/// fails: lazily, as the node may still hold files on it (the cluster kills it after).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "swarmr-test-full",
            ])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }

    /// Writes a file until the filesystem is full; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        for chunk in [1 << 20, 4096] {
            let zeros = vec![0u8; chunk];
            while file.write_all(&zeros).is_ok() {}
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

fn label_of(host: &str, key: &str) -> Option<String> {
    try_inspect(host, "m1")?["Spec"]["Labels"][key]
        .as_str()
        .map(String::from)
}

/// m3's data dir is a 64 MiB tmpfs, filled once m3 has joined.
#[test]
#[ignore = "needs root"]
fn a_follower_with_a_full_disk_leaves_the_others_writing_and_catches_up_after() {
    let mut cluster = Cluster::init(&[]).joined(&[("m2", "manager")]);
    let disk = Tmpfs::mount(&cluster.dir().join("m3"), "64m");
    cluster.join("m3", "manager");
    let m1 = cluster.node("m1").host();
    let m3 = cluster.node("m3").host();
    cli(&m1, "node update --label-add before=full m1");
    wait_until("m3 has the first write", || {
        label_of(&m3, "before").as_deref() == Some("full")
    });

    let filler = disk.fill();
    for i in 0..30 {
        cli(&m1, &format!("node update --label-add n={i} m1"));
    }
    let log = cluster.node("m3").log_path();
    wait_until("m3 says its disk is full", || {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        log.contains("No space left on device")
    });
    cli(&m1, "node update --label-add while=full m1");

    std::fs::remove_file(filler).expect("free the space");
    cluster.node("m3").restart();
    wait_until("m3 caught up", || {
        label_of(&m3, "while").as_deref() == Some("full")
            && label_of(&m3, "n").as_deref() == Some("29")
    });
    cli(&m1, "node update --label-add after=freed m1");
    wait_until("m3 follows again", || {
        label_of(&m3, "after").as_deref() == Some("freed")
    });
    let rows = node_rows(&m3);
    let reachable = rows
        .iter()
        .filter(|r| r["ManagerStatus"] == "Reachable" || r["ManagerStatus"] == "Leader")
        .count();
    assert_eq!(reachable, 3, "{rows:?}");
}
