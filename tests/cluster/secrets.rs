//! Secrets and configs on real Docker: the files a task gets (content, owner, mode), that
//! only the node running such a task receives them, that their plaintext is nowhere in any
//! node's data dir, key file or log, that one in use cannot be removed, and that `secret
//! update` rolls its services to the new value. Need root and Docker, hence `#[ignore]`.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use serde_json::Value;

use crate::util::*;

const FILES_DIR: &str = "/run/swarmr/files";

/// Unmounts the nodes' secret tmpfs on drop, also after a failed assertion.
struct Tmpfs(Vec<String>);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        for id in &self.0 {
            let dir = format!("{FILES_DIR}/{id}");
            let _ = Command::new("umount").args(["-l", &dir]).output();
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

fn node_id(node: &Node) -> String {
    let text = std::fs::read_to_string(node.data_dir.join("node.json")).expect("node.json");
    let value: Value = serde_json::from_str(&text).expect("node.json is JSON");
    value["node_id"].as_str().expect("node_id").to_string()
}

fn tmpfs_guard(cluster: &Cluster) -> Tmpfs {
    Tmpfs(cluster.nodes.iter().map(node_id).collect())
}

/// A value no other test or run could contain.
fn marker(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("swarmr-{what}-{}-{nanos}", std::process::id())
}

fn input(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write input");
    path.display().to_string()
}

fn inspect_one(host: &str, kind: &str, name: &str) -> Value {
    let out = ok(&["-H", host, kind, "inspect", name]);
    let array: Value = serde_json::from_str(&out).expect("inspect JSON");
    array[0].clone()
}

fn exec(container: &str, args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(["exec", container])
        .args(args)
        .output()
        .expect("docker exec");
    assert!(out.status.success(), "docker exec {args:?}: {:?}", out);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if kind.is_file() {
            let bytes = std::fs::read(&path).unwrap_or_default();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                found.push(path);
            }
        }
    }
    found
}

fn assert_nowhere_at_rest(cluster: &Cluster, plaintexts: &[&str]) {
    for text in plaintexts {
        let found = files_containing(cluster.dir(), text.as_bytes());
        assert!(found.is_empty(), "plaintext {text:?} found in {found:?}");
    }
}

fn service_id(host: &str, name: &str) -> String {
    inspect_one(host, "service", name)["ID"]
        .as_str()
        .expect("ID")
        .to_string()
}

fn one_container(service: &str) -> String {
    let mut found = Vec::new();
    wait_until("exactly one container", || {
        found = containers(service);
        found.len() == 1
    });
    found.remove(0)
}

/// Content, owner and mode of the task's files, each a read-only bind from tmpfs.
fn assert_files(container: &str, secret: &str, config: &str) {
    let file = |path: &str| {
        (
            exec(container, &["cat", path]),
            exec(container, &["stat", "-c", "%u %g %a", path]),
        )
    };
    assert_eq!(
        file("/run/secrets/pw"),
        (secret.to_string(), "33 34 440".into())
    );
    assert_eq!(
        file("/run/secrets/db-pw"),
        (secret.to_string(), "0 0 444".into())
    );
    assert_eq!(
        file("/etc/app.conf"),
        (config.to_string(), "0 0 444".into())
    );
    let mounts = exec(container, &["cat", "/proc/mounts"]);
    assert!(
        mounts
            .lines()
            .any(|l| l.contains("/run/secrets/pw") && l.contains("tmpfs") && l.contains("ro")),
        "{mounts}"
    );
}

/// `service inspect` lists the references as Docker; `secret inspect` never shows data,
/// `config inspect` shows it in base64.
fn assert_inspect_shapes(m1: &str, secret: &str, config: &str) {
    let spec = &inspect_one(m1, "service", "sec-web")["Spec"]["TaskTemplate"]["ContainerSpec"];
    assert_eq!(spec["Secrets"][0]["SecretName"], "db-pw");
    assert_eq!(spec["Secrets"][0]["File"]["Name"], "/run/secrets/pw");
    assert_eq!(spec["Secrets"][0]["File"]["Mode"], 0o440);
    assert_eq!(spec["Configs"][0]["File"]["Name"], "/etc/app.conf");

    // inspect: a secret never shows its data; a config does (base64, as Docker).
    let shown = inspect_one(m1, "secret", "db-pw");
    assert_eq!(shown["Spec"]["Name"], "db-pw");
    assert_eq!(shown["Spec"]["Labels"]["k"], "v");
    assert!(shown["Spec"].get("Data").is_none(), "{shown}");
    assert!(!cli(m1, "secret inspect db-pw").contains(secret));
    let shown = inspect_one(m1, "config", "app-conf");
    let data = shown["Spec"]["Data"].as_str().expect("config data");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64");
    assert_eq!(decoded, config.as_bytes());
    let listed = cli(m1, "secret ls");
    assert!(
        listed.starts_with("ID") && listed.contains("CREATED") && listed.contains("db-pw"),
        "{listed}"
    );
}

/// Only w1 runs a task that uses them: only w1 received them (its log names the ids; the
/// others' logs never do, and they have no tmpfs of files).
fn assert_only_w1_received(cluster: &mut Cluster, ids: &[&str]) {
    let w1 = cluster.node("w1").log();
    assert!(
        ids.iter().all(|id| w1.contains(id)) && w1.contains("received from the dispatcher"),
        "{w1}"
    );
    for name in ["m1", "w2"] {
        let node = cluster.node(name);
        let log = node.log();
        assert!(
            ids.iter().all(|id| !log.contains(id)),
            "{name} heard of them: {log}"
        );
        let dir = format!("{FILES_DIR}/{}", node_id(node));
        assert!(!Path::new(&dir).exists(), "{name} has {dir}");
    }
}

/// A restarted manager opens its wrapped data key with its key file; a restarted worker
/// adopts the task, whose files stay on its tmpfs.
fn assert_restarts_keep_key_and_files(cluster: &mut Cluster, container: &str, secret: &str) {
    let m1 = cluster.nodes[0].host();
    cluster.node("m1").restart();
    cluster.node("w1").restart();
    wait_until("config readable after the restart", || {
        run(&["-H", &m1, "config", "inspect", "app-conf"])
            .status
            .success()
    });
    let service = service_id(&m1, "sec-web");
    assert_eq!(one_container(&service), container);
    assert_eq!(exec(container, &["cat", "/run/secrets/pw"]), secret);
    wait_until("w1 back in session", || {
        cluster
            .node("w1")
            .log()
            .matches("session established")
            .count()
            >= 2
    });
    // A rescan later (5 s), the live task's files are still on w1's tmpfs.
    std::thread::sleep(std::time::Duration::from_secs(6));
    let w1_files = format!("{FILES_DIR}/{}", node_id(cluster.node("w1")));
    let task_dirs: Vec<_> = std::fs::read_dir(&w1_files).expect("w1 tmpfs").collect();
    assert_eq!(task_dirs.len(), 1, "{w1_files}");
}

#[test]
#[ignore = "needs root and Docker"]
fn secrets_and_configs_reach_only_their_tasks_with_owner_and_mode() {
    let mut cluster = Cluster::init(&["--dispatcher-heartbeat", "500ms"])
        .joined(&[("w1", "worker"), ("w2", "worker")]);
    let _tmpfs = tmpfs_guard(&cluster);
    let m1 = cluster.nodes[0].host();
    let inputs = tempfile::tempdir().expect("tempdir");
    let (secret, config) = (marker("secret"), marker("config"));
    let secret_id = ok(&[
        "-H",
        &m1,
        "secret",
        "create",
        "--label",
        "k=v",
        "db-pw",
        &input(inputs.path(), "s", &secret),
    ]);
    let config_id = ok(&[
        "-H",
        &m1,
        "config",
        "create",
        "app-conf",
        &input(inputs.path(), "c", &config),
    ]);
    let (secret_id, config_id) = (secret_id.trim(), config_id.trim());
    create_sleeper(
        &m1,
        "sec-web",
        &[
            "--constraint",
            "node.hostname==w1",
            "--secret",
            "source=db-pw,target=pw,uid=33,gid=34,mode=0440",
            "--secret",
            "db-pw",
            "--config",
            "source=app-conf,target=/etc/app.conf",
        ],
    );
    let container = one_container(&service_id(&m1, "sec-web"));
    assert_files(&container, &secret, &config);
    assert_inspect_shapes(&m1, &secret, &config);

    assert_only_w1_received(&mut cluster, &[secret_id, config_id]);
    // The scan finds what is there: the input files hold the plaintext.
    assert_eq!(files_containing(inputs.path(), secret.as_bytes()).len(), 1);
    assert_nowhere_at_rest(&cluster, &[&secret, &config]);

    assert_restarts_keep_key_and_files(&mut cluster, &container, &secret);

    // In use: refused, naming the service; nothing removed.
    let err = cli_fails(&m1, "secret rm db-pw");
    assert!(err.contains("in use by service(s) sec-web"), "{err}");
    let err = cli_fails(&m1, "config rm app-conf");
    assert!(err.contains("in use by service(s) sec-web"), "{err}");
    assert!(cli(&m1, "secret ls -q").contains(secret_id));
}

#[test]
#[ignore = "needs root and Docker"]
fn secret_update_rolls_its_services_and_a_new_manager_gets_the_data_key() {
    let mut cluster = Cluster::init(&["--dispatcher-heartbeat", "500ms"])
        .joined(&[("w1", "worker"), ("m2", "manager")]);
    let _tmpfs = tmpfs_guard(&cluster);
    let (m1, m2) = (cluster.nodes[0].host(), cluster.node("m2").host());
    let inputs = tempfile::tempdir().expect("tempdir");
    let (v1, v2) = (marker("v1"), marker("v2"));
    // Created through the joined manager: it must have been handed the data key.
    let v1_file = input(inputs.path(), "v1", &v1);
    wait_until("m2 can seal secrets", || {
        run(&["-H", &m2, "secret", "create", "api-key", &v1_file])
            .status
            .success()
    });
    create_sleeper(
        &m1,
        "sec-roll",
        &[
            "--replicas",
            "2",
            "--secret",
            "api-key",
            "--update-parallelism",
            "1",
        ],
    );
    let service = service_id(&m1, "sec-roll");
    for container in containers(&service) {
        assert_eq!(exec(&container, &["cat", "/run/secrets/api-key"]), v1);
    }
    // The same value again is no new revision, so nothing rolls.
    ok(&["-H", &m1, "secret", "update", "api-key", &v1_file]);
    assert_eq!(inspect_one(&m1, "secret", "api-key")["Revision"], 1);
    ok(&[
        "-H",
        &m1,
        "secret",
        "update",
        "api-key",
        &input(inputs.path(), "v2", &v2),
    ]);
    let shown = inspect_one(&m1, "service", "sec-roll");
    assert_eq!(shown["UpdateStatus"]["State"], "completed", "{shown}");
    assert_eq!(inspect_one(&m1, "secret", "api-key")["Revision"], 2);
    wait_until("two containers with the new value", || {
        let now = containers(&service);
        now.len() == 2
            && now
                .iter()
                .all(|c| exec(c, &["cat", "/run/secrets/api-key"]) == v2)
    });
    assert_nowhere_at_rest(&cluster, &[&v1, &v2]);

    // Once its service is gone the secret can go, and its files leave the node's tmpfs.
    cli(&m1, "service rm sec-roll");
    wait_until("containers removed", || containers(&service).is_empty());
    cli(&m1, "secret rm api-key");
    let files: Vec<String> = cluster.nodes.iter().map(node_id).collect();
    wait_until("task files removed", || {
        files.iter().all(|id| {
            std::fs::read_dir(format!("{FILES_DIR}/{id}")).map_or(true, |d| d.count() == 0)
        })
    });
}
