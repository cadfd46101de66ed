//! The operator's files in deploy/ stay usable: the systemd unit passes systemd's own check
//! with its binary pointed at the one just built.

use std::process::Command;

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/systemd/swarmr.service"
    ))
    .expect("deploy/systemd/swarmr.service");
    assert!(unit.contains("ExecStart=/usr/local/bin/swarmr $SWARMR_ARGS"));
    let dir = tempfile::tempdir().expect("temp dir");
    let env_file = dir.path().join("swarmr.env");
    std::fs::write(&env_file, "SWARMR_ARGS=init\n").expect("env file");
    let local = unit
        .replace("/usr/local/bin/swarmr", env!("CARGO_BIN_EXE_swarmr"))
        .replace("/etc/swarmr/swarmr.env", &env_file.display().to_string());
    let path = dir.path().join("swarmr.service");
    std::fs::write(&path, local).expect("unit copy");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed: {stderr}"
    );
    assert!(
        !stderr.contains("swarmr.service"),
        "systemd-analyze warns about the unit: {stderr}"
    );
}
