//! The Docker Engine API a manager serves, driven by the real `docker` CLI (and docker-py,
//! curl) against `<data-dir>/docker.sock`: what docker creates, swarmr shows, and the
//! other way round. Need root and Docker, hence `#[ignore]`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::util::*;

const IMAGE: &str = "swarmr/busybox:latest";

/// The manager's Docker API socket, as DOCKER_HOST.
pub fn docker_host(cluster: &Cluster) -> String {
    format!(
        "unix://{}",
        cluster.nodes[0].data_dir.join("docker.sock").display()
    )
}

/// Runs the real docker CLI against `docker_host`, with its own config dir.
pub fn docker_at(cluster: &Cluster, envs: &[(&str, String)], args: &[&str]) -> Output {
    let mut command = Command::new("docker");
    command
        .args(args)
        .env("DOCKER_CONFIG", cluster.dir().join("docker-config"))
        .env("DOCKER_HOST", docker_host(cluster))
        .stdin(Stdio::null());
    for (key, value) in envs {
        command.env(key, value);
    }
    command.output().expect("run docker")
}

/// A docker command that must succeed; its stdout.
pub fn docker(cluster: &Cluster, args: &[&str]) -> String {
    let out = docker_at(cluster, &[], args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A docker command that must fail; its stderr.
fn docker_fails(cluster: &Cluster, args: &[&str]) -> String {
    let out = docker_at(cluster, &[], args);
    assert!(
        !out.status.success(),
        "docker {args:?} should have failed but printed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `NAME REPLICAS` lines of `docker service ls` (or `docker stack services STACK`).
fn replicas(cluster: &Cluster, args: &[&str]) -> Vec<String> {
    let mut all = args.to_vec();
    all.extend(["--format", "{{.Name}} {{.Replicas}}"]);
    let out = docker_at(cluster, &[], &all);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

fn swarmr_inspect(host: &str, service: &str) -> Value {
    let out = ok(&["-H", host, "service", "inspect", service]);
    serde_json::from_str::<Value>(&out).expect("inspect JSON")[0].clone()
}

fn swarmr_names(host: &str, kind: &str) -> String {
    ok(&["-H", host, kind, "ls"])
}

#[test]
#[ignore = "needs root and Docker"]
fn docker_cli_shows_the_cluster_and_manages_nodes_and_networks() {
    let cluster = Cluster::init(&[]);
    let host = cluster.nodes[0].host();
    let info = docker(&cluster, &["info"]);
    assert!(info.contains("Swarm: active"), "{info}");
    assert!(info.contains("Is Manager: true"), "{info}");
    let node_id = inspect(&host, "m1")["ID"].as_str().expect("id").to_string();
    assert!(info.contains(&format!("NodeID: {node_id}")), "{info}");
    let nodes = docker(&cluster, &["node", "ls"]);
    assert!(nodes.contains("m1") && nodes.contains("Leader"), "{nodes}");
    assert!(
        nodes.contains(&format!("{node_id} *")),
        "the node answering is marked: {nodes}"
    );
    docker(&cluster, &["node", "update", "--label-add", "zone=a", "m1"]);
    assert_eq!(inspect(&host, "m1")["Spec"]["Labels"]["zone"], "a");

    docker(&cluster, &["network", "create", "-d", "overlay", "dk-net"]);
    assert!(swarmr_names(&host, "network").contains("dk-net"));
    let listed = docker(
        &cluster,
        &[
            "network",
            "ls",
            "--format",
            "{{.Name}} {{.Driver}} {{.Scope}}",
        ],
    );
    assert!(listed.contains("dk-net overlay swarm"), "{listed}");
    let err = docker_fails(&cluster, &["network", "create", "dk-bridge"]);
    assert!(err.contains("-d overlay"), "{err}");
    cli(&host, "network create sw-net");
    let inspected = docker(
        &cluster,
        &["network", "inspect", "sw-net", "--format", "{{.Scope}}"],
    );
    assert_eq!(inspected.trim(), "swarm");
    docker(&cluster, &["network", "rm", "dk-net"]);
    assert!(!swarmr_names(&host, "network").contains("dk-net"));
    let err = docker_fails(&cluster, &["container", "ls"]);
    assert!(err.contains("swarmr manager"), "{err}");
}

#[test]
#[ignore = "needs root and Docker"]
fn docker_cli_creates_scales_updates_and_removes_services() {
    let cluster = Cluster::init(&[]);
    let host = cluster.nodes[0].host();
    docker(&cluster, &["network", "create", "-d", "overlay", "dk-net"]);
    docker(
        &cluster,
        &[
            "service",
            "create",
            "-d",
            "--name",
            "dk-web",
            "--replicas",
            "2",
            "--network",
            "dk-net",
            "--env",
            "A=1",
            "--label",
            "team=x",
            IMAGE,
            "sleep",
            "600",
        ],
    );
    wait_until("dk-web 2/2 in docker service ls", || {
        replicas(&cluster, &["service", "ls"]).contains(&"dk-web 2/2".to_string())
    });
    let spec = swarmr_inspect(&host, "dk-web")["Spec"].clone();
    assert_eq!(spec["Labels"]["team"], "x");
    assert_eq!(spec["TaskTemplate"]["ContainerSpec"]["Env"][0], "A=1");
    let ps = docker(
        &cluster,
        &[
            "service",
            "ps",
            "dk-web",
            "--format",
            "{{.Name}} {{.CurrentState}}",
        ],
    );
    assert_eq!(
        ps.lines().filter(|l| l.contains("Running")).count(),
        2,
        "{ps}"
    );

    docker(&cluster, &["service", "scale", "-d", "dk-web=3"]);
    assert_eq!(
        swarmr_inspect(&host, "dk-web")["Spec"]["Mode"]["Replicated"]["Replicas"],
        3
    );
    docker(
        &cluster,
        &["service", "update", "-d", "--env-add", "B=2", "dk-web"],
    );
    let env =
        swarmr_inspect(&host, "dk-web")["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"].clone();
    assert!(
        env.as_array().expect("env").iter().any(|e| e == "B=2"),
        "{env}"
    );
    docker(&cluster, &["service", "rollback", "-d", "dk-web"]);
    let env =
        swarmr_inspect(&host, "dk-web")["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"].clone();
    assert!(
        !env.as_array().expect("env").iter().any(|e| e == "B=2"),
        "{env}"
    );

    // What swarmr creates, docker shows; logs come through Docker's stream format.
    create_sleeper(&host, "sw-sleeper", &["-d"]);
    let listed = docker(&cluster, &["service", "ls", "--format", "{{.Name}}"]);
    assert!(
        listed.contains("sw-sleeper") && listed.contains("dk-web"),
        "{listed}"
    );
    cli(
        &host,
        &format!(
            "service create -d --name sw-echo {IMAGE} sh -c 'echo hello-from-swarmr; sleep 600'"
        ),
    );
    wait_until("docker service logs shows the task's output", || {
        let out = docker_at(&cluster, &[], &["service", "logs", "sw-echo"]);
        let text = String::from_utf8_lossy(&out.stdout);
        text.contains("hello-from-swarmr") && text.contains("sw-echo.1")
    });
    docker(&cluster, &["service", "rm", "dk-web"]);
    assert!(!swarmr_names(&host, "service").contains("dk-web"));
}

fn write_compose(dir: &Path) -> String {
    let path = dir.join("compose.yml");
    let compose = format!(
        r#"version: "3.8"
services:
  web:
    image: {IMAGE}
    command: ["sleep", "600"]
    environment: [ROLE=web]
    networks: [front]
    deploy:
      replicas: 2
      labels: {{tier: web}}
      restart_policy: {{condition: on-failure, delay: 2s}}
      update_config: {{parallelism: 1, delay: 1s}}
      placement: {{constraints: [node.role == manager]}}
  db:
    image: {IMAGE}
    entrypoint: ["sh", "-c"]
    command: ["sleep 600"]
    networks: [front]
    stop_grace_period: 3s
    volumes: ["/tmp:/host-tmp:ro"]
    deploy:
      resources:
        limits: {{cpus: "0.5", memory: 64M}}
networks:
  front:
    driver: overlay
"#
    );
    std::fs::write(&path, compose).expect("write compose file");
    path.display().to_string()
}

#[test]
#[ignore = "needs root and Docker"]
fn docker_stack_deploy_runs_a_compose_file_and_stack_rm_removes_it() {
    let cluster = Cluster::init(&[]);
    let host = cluster.nodes[0].host();
    let compose = write_compose(cluster.dir());
    let out = docker(
        &cluster,
        &["stack", "deploy", "--detach=true", "-c", &compose, "dkst"],
    );
    assert!(out.contains("Creating service dkst_web"), "{out}");
    wait_until("both stack services run all their replicas", || {
        let rows = replicas(&cluster, &["stack", "services", "dkst"]);
        rows.contains(&"dkst_web 2/2".to_string()) && rows.contains(&"dkst_db 1/1".to_string())
    });
    assert!(swarmr_names(&host, "network").contains("dkst_front"));
    let spec = swarmr_inspect(&host, "dkst_web")["Spec"].clone();
    assert_eq!(spec["Labels"]["com.docker.stack.namespace"], "dkst");
    assert_eq!(spec["Labels"]["tier"], "web");
    assert_eq!(
        spec["TaskTemplate"]["RestartPolicy"]["Condition"],
        "on-failure"
    );
    assert_eq!(
        spec["TaskTemplate"]["Placement"]["Constraints"][0],
        "node.role == manager"
    );
    let db = swarmr_inspect(&host, "dkst_db")["Spec"]["TaskTemplate"].clone();
    assert_eq!(db["ContainerSpec"]["Command"][0], "sh", "entrypoint: {db}");
    assert_eq!(
        db["ContainerSpec"]["Mounts"][0]["Target"], "/host-tmp",
        "{db}"
    );
    assert_eq!(db["Resources"]["Limits"]["NanoCPUs"], 500_000_000, "{db}");
    let tasks = docker(&cluster, &["stack", "ps", "dkst", "--format", "{{.Name}}"]);
    assert_eq!(
        tasks.lines().count(),
        3,
        "two web tasks and a db task: {tasks}"
    );
    let stacks = docker(&cluster, &["stack", "ls"]);
    assert!(stacks.contains("dkst"), "{stacks}");
    // Deploying the same file again updates in place.
    let again = docker(
        &cluster,
        &["stack", "deploy", "--detach=true", "-c", &compose, "dkst"],
    );
    assert!(again.contains("Updating service dkst_web"), "{again}");

    docker(&cluster, &["stack", "rm", "dkst"]);
    wait_until("the stack's services and network are gone", || {
        let services = swarmr_names(&host, "service");
        let networks = swarmr_names(&host, "network");
        !services.contains("dkst_") && !networks.contains("dkst_front")
    });
}

#[test]
#[ignore = "needs root, Docker and VXLAN"]
fn stack_services_resolve_each_other_by_their_short_names() {
    let cluster = Cluster::init_on_hosts(&[]);
    let host = cluster.nodes[0].host();
    let compose = write_compose(cluster.dir());
    docker(
        &cluster,
        &["stack", "deploy", "--detach=true", "-c", &compose, "dns"],
    );
    wait_until("the stack runs", || {
        let rows = replicas(&cluster, &["stack", "services", "dns"]);
        rows.contains(&"dns_web 2/2".to_string()) && rows.contains(&"dns_db 1/1".to_string())
    });
    let web = swarmr_inspect(&host, "dns_web");
    let vip = web["Endpoint"]["VirtualIPs"][0]["Addr"]
        .as_str()
        .expect("a VIP")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let db_id = swarmr_inspect(&host, "dns_db")["ID"]
        .as_str()
        .expect("id")
        .to_string();
    let db = containers(&db_id)
        .into_iter()
        .next()
        .expect("a db container");
    // `web` is the alias stack deploy gave dns_web on the stack's network.
    wait_until("db resolves web to web's VIP", || {
        let out = Command::new("docker")
            .args(["exec", &db, "nslookup", "web"])
            .output()
            .expect("docker exec");
        let text = String::from_utf8_lossy(&out.stdout);
        let answers = text.split_once("Name:").map_or("", |(_, rest)| rest);
        out.status.success() && answers.contains(&vip)
    });
}
