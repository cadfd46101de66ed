//! The operators' view (issue 19): `/metrics` in strict Prometheus (OpenMetrics) text that
//! follows a scale, `swarmr events` showing a create, a scale and a node going Down, and
//! the monitoring port off loopback refusing clients without a certificate of the cluster.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::util::*;

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

pub fn http_get(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "5", url])
        .output()
        .expect("run curl");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Checks `text` strictly against the OpenMetrics text format Prometheus scrapes: every
/// line a HELP, TYPE, UNIT or sample; every sample of a family declared before it, with
/// well-formed labels and a number; no series twice; `# EOF` last. Returns the samples.
fn parse_strict(text: &str) -> Vec<(String, f64)> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.last(),
        Some(&"# EOF"),
        "the exposition ends with # EOF"
    );
    let mut families: Vec<(String, String)> = Vec::new();
    let mut series = HashSet::new();
    let mut samples = Vec::new();
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (keyword, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            assert!(name_ok(name), "bad metric name in {line:?}");
            match keyword {
                "TYPE" => {
                    let kind = parts.next().unwrap_or("");
                    let known = [
                        "counter",
                        "gauge",
                        "histogram",
                        "summary",
                        "info",
                        "unknown",
                    ];
                    assert!(known.contains(&kind), "unknown type in {line:?}");
                    families.push((name.to_string(), kind.to_string()));
                }
                "HELP" | "UNIT" => {}
                _ => panic!("unexpected comment {line:?}"),
            }
            continue;
        }
        let (key, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let name = key.split('{').next().unwrap_or("");
        assert!(name_ok(name), "bad sample name in {line:?}");
        if let Some(labels) = key.strip_prefix(name).filter(|l| !l.is_empty()) {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .unwrap_or_else(|| panic!("bad labels in {line:?}"));
            for pair in inner.split("\",").filter(|p| !p.is_empty()) {
                let (k, v) = pair
                    .split_once("=\"")
                    .unwrap_or_else(|| panic!("bad label {pair:?}"));
                assert!(
                    name_ok(k) && !v.trim_end_matches('"').contains('"'),
                    "bad label {pair:?}"
                );
            }
        }
        let (family, kind) = families
            .last()
            .unwrap_or_else(|| panic!("{line:?} before any TYPE"));
        let suffixes: &[&str] = match kind.as_str() {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            _ => &[""],
        };
        assert!(
            suffixes.iter().any(|s| name == format!("{family}{s}")),
            "{line:?} is not a sample of the family {family} ({kind})"
        );
        assert!(series.insert(key.to_string()), "series {key} appears twice");
        samples.push((key.to_string(), value));
    }
    samples
}

fn sample(samples: &[(String, f64)], key: &str) -> Option<f64> {
    samples.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

#[test]
#[ignore = "needs root and Docker"]
fn metrics_parse_strictly_and_follow_a_scale() {
    let addr = format!("127.0.0.1:{}", free_port());
    let cluster = Cluster::init(&["--http-addr", &addr]);
    let host = cluster.nodes[0].host();
    let url = format!("http://{addr}/metrics");
    wait_until("the monitoring port answers", || http_get(&url).is_some());
    assert_eq!(
        http_get(&format!("http://{addr}/healthz")).as_deref(),
        Some("ok\n")
    );
    create_sleeper(&host, "mon-web", &["--replicas", "1"]);
    let running = "swarmr_service_replicas_running{service=\"mon-web\"}";
    let samples_now = || parse_strict(&http_get(&url).unwrap_or_default());
    wait_until("one replica in the metrics", || {
        sample(&samples_now(), running) == Some(1.0)
    });
    let samples = samples_now();
    for key in [
        "swarmr_raft_is_leader",
        "swarmr_raft_term",
        "swarmr_raft_proposals_total{outcome=\"committed\"}",
        "swarmr_nodes{status=\"ready\",availability=\"active\",role=\"manager\"}",
        "swarmr_store_objects{kind=\"service\"}",
        "swarmr_controller_reconciles_total{controller=\"scheduler\"}",
        "swarmr_netdriver_reconciles_total",
    ] {
        assert!(
            sample(&samples, key).is_some(),
            "{key} missing from /metrics"
        );
    }
    ok(&["-H", &host, "service", "scale", "mon-web=3", "-d"]);
    wait_until("three replicas in the metrics", || {
        let samples = samples_now();
        sample(&samples, running) == Some(3.0)
            && sample(
                &samples,
                "swarmr_tasks{service=\"mon-web\",state=\"running\"}",
            ) == Some(3.0)
            && sample(
                &samples,
                "swarmr_service_replicas_desired{service=\"mon-web\"}",
            ) == Some(3.0)
    });
}

/// `swarmr events` as a child process, killed (by its PID) on drop.
struct Events {
    child: Child,
    out: std::path::PathBuf,
}

impl Events {
    fn start(host: &str, out: std::path::PathBuf, flags: &[&str]) -> Self {
        let file = std::fs::File::create(&out).expect("events file");
        let child = Command::new(BIN)
            .args(["-H", host, "events", "--format", "json"])
            .args(flags)
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .expect("start swarmr events");
        Events { child, out }
    }

    fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn wait_for(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let mut found = None;
        wait_until(what, || {
            found = self.lines().into_iter().find(|e| check(e));
            found.is_some()
        });
        found.unwrap_or_default()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs root and Docker"]
fn events_show_a_create_a_scale_and_a_node_going_down() {
    let mut cluster = Cluster::init(&["--dispatcher-heartbeat", "200ms"]);
    let host = cluster.nodes[0].host();
    cluster.join("ev-w1", "worker");
    let events = Events::start(
        &host,
        cluster.dir().join("events.json"),
        &["--filter", "type=service", "--filter", "type=node"],
    );
    // The stream is open once a change made after it shows up.
    ok(&[
        "-H",
        &host,
        "node",
        "update",
        "--label-add",
        "ev=1",
        "ev-w1",
    ]);
    events.wait_for("the stream is open", |e| e["Type"] == "node");
    create_sleeper(&host, "ev-web", &["--replicas", "1", "-d"]);
    let created = events.wait_for("a service create", |e| {
        e["Type"] == "service" && e["Action"] == "create"
    });
    assert_eq!(
        created["Actor"]["Attributes"]["name"], "ev-web",
        "{created}"
    );
    assert!(created["timeNano"].as_i64().unwrap_or(0) > 0, "{created}");
    let id = created["Actor"]["ID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ok(&["-H", &host, "service", "scale", "ev-web=4", "-d"]);
    let scaled = events.wait_for("a scale", |e| {
        e["Action"] == "update" && e["Actor"]["Attributes"]["replicas.new"] == "4"
    });
    assert_eq!(scaled["Actor"]["ID"], id.as_str(), "{scaled}");
    assert_eq!(
        scaled["Actor"]["Attributes"]["replicas.old"], "1",
        "{scaled}"
    );
    cluster.node("ev-w1").kill();
    let down = events.wait_for("the worker going Down", |e| {
        e["Type"] == "node" && e["Actor"]["Attributes"]["state.new"] == "down"
    });
    assert_eq!(down["Actor"]["Attributes"]["name"], "ev-w1", "{down}");
    assert_eq!(down["Actor"]["Attributes"]["state.old"], "ready", "{down}");
    // The filter held: only services and nodes.
    assert!(events
        .lines()
        .iter()
        .all(|e| e["Type"] == "service" || e["Type"] == "node"));
    // --since replays what this manager kept; a name filter narrows it.
    let out = run_with_timeout(&[
        "-H",
        &host,
        "events",
        "--format",
        "json",
        "--since",
        "10m",
        "--filter",
        "name=ev-web",
    ]);
    let replayed: Vec<Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        replayed
            .iter()
            .any(|e| e["Action"] == "create" && e["Type"] == "service"),
        "{out}"
    );
    assert!(
        replayed
            .iter()
            .all(|e| e["Actor"]["Attributes"]["name"] == "ev-web"),
        "{out}"
    );
    let err = fails(&["-H", &host, "events", "--filter", "colour=red"]);
    assert!(err.contains("invalid filter"), "{err}");
}

/// Runs a never-ending client command for a few seconds; its stdout so far.
fn run_with_timeout(args: &[&str]) -> String {
    let out = Command::new("timeout")
        .arg("5")
        .arg(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run swarmr under timeout");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs root, Docker and network namespaces"]
fn the_monitoring_port_off_loopback_needs_a_client_certificate() {
    let cluster = Cluster::init_on_hosts(&["--http-addr", "0.0.0.0:9464"]);
    let node = &cluster.nodes[0];
    let host = node.host();
    let netns = node.netns.clone().expect("a host namespace");
    let certs = cluster.dir().join("client-certs");
    let certs_text = certs.display().to_string();
    ok(&["-H", &host, "ca", "issue-client", "--out", &certs_text]);
    let curl = |args: &[&str]| {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{netns}"))
            .args(["curl", "-s", "--max-time", "5"])
            .args(args)
            .output()
            .expect("run curl")
    };
    let url = format!("https://{}:9464/metrics", node.ip);
    let with_cert = [
        "--cacert",
        &format!("{certs_text}/ca.crt"),
        "--cert",
        &format!("{certs_text}/client.crt"),
        "--key",
        &format!("{certs_text}/client.key"),
    ];
    let mut args: Vec<&str> = with_cert.iter().map(|s| &**s).collect();
    args.push(&url);
    wait_until("metrics over mutual TLS", || {
        String::from_utf8_lossy(&curl(&args).stdout).contains("swarmr_raft_term")
    });
    let plain = curl(&[&format!("http://{}:9464/metrics", node.ip)]);
    assert!(
        !String::from_utf8_lossy(&plain.stdout).contains("swarmr_"),
        "plain HTTP got the metrics"
    );
    let no_cert = curl(&["--cacert", &format!("{certs_text}/ca.crt"), &url]);
    assert!(
        !no_cert.status.success() && !String::from_utf8_lossy(&no_cert.stdout).contains("swarmr_"),
        "a client without a certificate got the metrics"
    );
}
