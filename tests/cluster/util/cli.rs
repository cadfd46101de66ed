//! Running the `swarmr` client against a node, and the waits tests build on.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::BIN;

/// `swarmr join` arguments for a throwaway node on loopback (any free port).
pub fn join_args<'a>(dir: &'a str, token: &'a str, remote: &'a str) -> Vec<&'a str> {
    vec![
        "join",
        "--token",
        token,
        "--data-dir",
        dir,
        "--listen-addr",
        "127.0.0.1:0",
        "--advertise-addr",
        "127.0.0.1",
        "--no-host-rules",
        remote,
    ]
}

pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        // A service that cannot converge fails sooner than the 60 s a user waits.
        .env("SWARMR_CONVERGE_TIMEOUT", "20s")
        .stdin(Stdio::null())
        .output()
        .expect("run swarmr")
}

/// `service create --name NAME FLAGS... swarmr/busybox:latest sleep 600` on `host`, which
/// must succeed (without `-d` in FLAGS it returns once every replica runs).
pub fn create_sleeper(host: &str, name: &str, flags: &[&str]) -> String {
    let mut args = vec!["-H", host, "service", "create", "--name", name];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["swarmr/busybox:latest", "sleep", "600"]);
    ok(&args)
}

/// `swarmr -H HOST <line>`, the line split as a shell would (quotes group words), which
/// must succeed; returns its stdout. `cli(&m1, "network create --subnet 10.9.0.0/16 big")`.
pub fn cli(host: &str, line: &str) -> String {
    let words = shlex::split(line).unwrap_or_else(|| panic!("unbalanced quotes in {line:?}"));
    let mut args = vec!["-H", host];
    args.extend(words.iter().map(String::as_str));
    ok(&args)
}

/// Like [`cli`], for a command that must fail; returns its stderr.
pub fn cli_fails(host: &str, line: &str) -> String {
    let words = shlex::split(line).unwrap_or_else(|| panic!("unbalanced quotes in {line:?}"));
    let mut args = vec!["-H", host];
    args.extend(words.iter().map(String::as_str));
    fails(&args)
}

/// Runs a client command that must succeed; returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "swarmr {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a client command that must fail; returns its stderr.
pub fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        !out.status.success(),
        "swarmr {args:?} should have failed but printed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Revokes the one certificate `ca ls` lists (its first row); returns its id.
pub fn revoke_the_issued_cert(host: &str) -> String {
    let listed = cli(host, "ca ls");
    let id = listed
        .lines()
        .nth(1)
        .and_then(|row| row.split_whitespace().next())
        .expect("the issued certificate is listed");
    cli(host, &format!("ca revoke {id}"));
    id.to_string()
}

pub fn node_rows(host: &str) -> Vec<Value> {
    let out = run(&["-H", host, "node", "ls", "--format", "json"]);
    if !out.status.success() {
        return Vec::new();
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

pub fn node_row(host: &str, hostname: &str) -> Option<Value> {
    node_rows(host)
        .into_iter()
        .find(|r| r["Hostname"] == hostname)
}

/// `node inspect`, or None when the read is refused (during an election, say).
pub fn try_inspect(host: &str, node: &str) -> Option<Value> {
    let out = run(&["-H", host, "node", "inspect", node]);
    let array: Value = serde_json::from_slice(&out.stdout).ok()?;
    out.status.success().then(|| array[0].clone())
}

pub fn inspect(host: &str, node: &str) -> Value {
    let out = ok(&["-H", host, "node", "inspect", node]);
    let array: Value = serde_json::from_str(&out).expect("inspect prints JSON");
    array[0].clone()
}

/// Polls `check` until it holds; panics after 60 s. Waits, never timing assertions.
pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    wait_until_explained(what, || check().then_some(()).ok_or_else(String::new));
}

/// Like [`wait_until`], with `check` saying what it saw when it does not hold yet: the
/// last of those is in the panic, so a failure in CI tells which part never held.
pub fn wait_until_explained(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = String::new();
    while Instant::now() < deadline {
        match check() {
            Ok(()) => return,
            Err(last) => seen = last,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if seen.is_empty() {
        panic!("timed out waiting for: {what}");
    }
    panic!("timed out waiting for: {what}; last seen: {seen}");
}
