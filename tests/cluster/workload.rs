//! Mounts, resources and container options on real Docker (issue 14): each mount type as
//! the container sees it, limits in `docker inspect`, reservations that hold a task
//! pending until a node fits, options in `docker inspect`, and updates that roll them.
//! Need root and Docker, hence `#[ignore]`.

use std::process::Command;

use serde_json::Value;

use crate::util::*;

/// `docker inspect` of one container, as JSON.
fn docker_inspect(container: &str) -> Value {
    let out = Command::new("docker")
        .args(["inspect", container])
        .output()
        .expect("docker inspect");
    let all: Value = serde_json::from_slice(&out.stdout).expect("inspect JSON");
    all[0].clone()
}

/// Runs `sh -c script` in the container; (success, stdout + stderr).
fn exec(container: &str, script: &str) -> (bool, String) {
    let out = Command::new("docker")
        .args(["exec", container, "sh", "-c", script])
        .output()
        .expect("docker exec");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn service_json(host: &str, name: &str) -> Value {
    let out = ok(&["-H", host, "service", "inspect", name]);
    let all: Value = serde_json::from_str(&out).expect("inspect JSON");
    all[0].clone()
}

fn ps(host: &str, name: &str) -> Vec<Value> {
    ok(&[
        "-H",
        host,
        "service",
        "ps",
        name,
        "--format",
        "json",
        "--no-trunc",
    ])
    .lines()
    .filter_map(|l| serde_json::from_str(l).ok())
    .collect()
}

/// The one running container of a service, once there is exactly one.
fn only_container(service_id: &str) -> String {
    wait_until("one running container", || {
        containers(service_id).len() == 1
    });
    containers(service_id).remove(0)
}

/// Removes a named volume this test made from the shared daemon, also after a failure.
struct VolumeGuard(String);

impl Drop for VolumeGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["volume", "rm", "-f", &self.0])
            .output();
    }
}

#[test]
#[ignore = "needs root and Docker"]
fn each_mount_type_and_the_limits_reach_the_container() {
    // Dropped after the cluster (which removes the containers that use the volume).
    let volume = format!("swarmr-test-wl-{}", std::process::id());
    let _guard = VolumeGuard(volume.clone());
    let cluster = Cluster::init(&["--dispatcher-heartbeat", "500ms"]);
    let m1 = cluster.nodes[0].host();
    let host_dir = cluster.dir().join("bind-src");
    std::fs::create_dir_all(&host_dir).expect("bind source");
    std::fs::write(host_dir.join("hello"), "from the host\n").expect("file");
    let bind = format!(
        "type=bind,source={},target=/ro,readonly",
        host_dir.display()
    );
    let vol = format!("type=volume,source={volume},target=/data,volume-label=test=swarmr");
    cli(
        &m1,
        &format!(
            "service create --name mounts --restart-delay 0s \
             --mount {bind} --mount {vol} --mount type=tmpfs,target=/scratch,tmpfs-size=8m \
             --limit-memory 64M --limit-cpu 0.5 --reserve-memory 32M \
             swarmr/busybox:latest sh -c 'date >> /data/starts; exec sleep 600'"
        ),
    );
    let id = service_json(&m1, "mounts")["ID"]
        .as_str()
        .expect("id")
        .to_string();
    let first = only_container(&id);

    let (read, text) = exec(&first, "cat /ro/hello");
    assert!(read && text.contains("from the host"), "{text}");
    let (wrote, text) = exec(&first, "touch /ro/nope");
    assert!(
        !wrote && text.contains("Read-only file system"),
        "a readonly bind refuses writes: {text}"
    );
    let (_, mounts) = exec(&first, "grep ' /scratch ' /proc/mounts");
    assert!(
        mounts.starts_with("tmpfs /scratch tmpfs") && mounts.contains("size=8192k"),
        "{mounts}"
    );

    let host = &docker_inspect(&first)["HostConfig"];
    assert_eq!(host["Memory"], 64 << 20);
    assert_eq!(host["NanoCpus"], 500_000_000);
    assert_eq!(host["MemoryReservation"], 32 << 20);
    let labels = Command::new("docker")
        .args(["volume", "inspect", "-f", "{{.Labels.test}}", &volume])
        .output()
        .expect("volume inspect");
    assert_eq!(
        String::from_utf8_lossy(&labels.stdout).trim(),
        "swarmr",
        "made through the API with its labels"
    );

    // The task ends, the orchestrator starts a new one: the volume still has its data.
    Command::new("docker")
        .args(["kill", &first])
        .output()
        .expect("docker kill");
    wait_until("a replacement container", || {
        containers(&id).first().is_some_and(|c| *c != first)
    });
    let second = only_container(&id);
    wait_until("the new task wrote too", || {
        exec(&second, "cat /data/starts").1.lines().count() == 2
    });

    let spec = service_json(&m1, "mounts");
    let template = &spec["Spec"]["TaskTemplate"];
    assert_eq!(template["ContainerSpec"]["Mounts"][0]["ReadOnly"], true);
    assert_eq!(
        template["ContainerSpec"]["Mounts"][2]["TmpfsOptions"]["SizeBytes"],
        8 << 20
    );
    assert_eq!(template["Resources"]["Limits"]["MemoryBytes"], 64 << 20);
    assert_eq!(
        template["Resources"]["Reservations"]["MemoryBytes"],
        32 << 20
    );

    // A bind source the node lacks fails the task with the path, shown by `service ps`.
    let missing = format!(
        "type=bind,source=/nonexistent/swarmr-{},target=/x",
        std::process::id()
    );
    cli(
        &m1,
        &format!(
            "service create -d --name nobind --mount {missing} swarmr/busybox:latest sleep 600"
        ),
    );
    wait_until("the task failed with the reason", || {
        ps(&m1, "nobind").iter().any(|t| {
            t["Error"].as_str().is_some_and(|e| {
                e.contains("does not exist on this node") && e.contains("/nonexistent/swarmr-")
            })
        })
    });
}

#[test]
#[ignore = "needs root and Docker"]
fn a_reservation_no_node_meets_waits_until_one_fits() {
    let mut cluster = Cluster::init(&[
        "--dispatcher-heartbeat",
        "500ms",
        "--resources-memory",
        "256M",
        "--resources-cpus",
        "1",
    ]);
    let m1 = cluster.nodes[0].host();
    let node = inspect(&m1, "m1");
    assert_eq!(node["Description"]["Resources"]["MemoryBytes"], 256 << 20);
    assert_eq!(node["Description"]["Resources"]["NanoCPUs"], 1_000_000_000);

    cli(
        &m1,
        "service create -d --name big --reserve-memory 512M swarmr/busybox:latest sleep 600",
    );
    let why = "no suitable node (insufficient memory on 1 node)";
    wait_until("the task pending with the reason", || {
        ps(&m1, "big").iter().any(|t| {
            t["Error"] == why
                && t["CurrentState"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("Pending"))
        })
    });
    // Lowered by an update, the reservation fits: the task is replaced and runs.
    cli(&m1, "service update --reserve-memory 128M big");
    let id = service_json(&m1, "big")["ID"]
        .as_str()
        .expect("id")
        .to_string();
    only_container(&id);
    // 128M of 256M are reserved now: a second 200M task fits nowhere until a node joins.
    cli(&m1, "service create -d --name more --reserve-memory 200M --reserve-cpu 0.5 swarmr/busybox:latest sleep 600");
    wait_until("the second task pending", || {
        ps(&m1, "more").iter().any(|t| t["Error"] == why)
    });
    cluster.join_with("w1", "worker", &["--resources-memory", "1G"]);
    let more = service_json(&m1, "more")["ID"]
        .as_str()
        .expect("id")
        .to_string();
    only_container(&more);
    let placed = ps(&m1, "more");
    assert!(
        placed
            .iter()
            .any(|t| t["Node"] == "w1" && t["DesiredState"] == "Running"),
        "{placed:?}"
    );
}

#[test]
#[ignore = "needs root and Docker"]
fn container_options_reach_docker_and_updates_roll_them() {
    let cluster = Cluster::init(&["--dispatcher-heartbeat", "500ms"]);
    let m1 = cluster.nodes[0].host();
    let env_file = cluster.dir().join("env");
    std::fs::write(&env_file, "# settings\nFROM_FILE=yes\n").expect("env file");
    let env_file = env_file.display().to_string();
    cli(
        &m1,
        &format!(
            "service create --name opts --user 1000:1000 --workdir /tmp \
             --hostname '{{{{.Service.Name}}}}-{{{{.Task.Slot}}}}-{{{{.Node.Hostname}}}}' \
             --cap-add net_admin --cap-drop MKNOD --read-only --init --entrypoint sleep \
             --env-file {env_file} --add-host db:10.0.0.5 --ulimit nofile=1024:2048 \
             --sysctl net.core.somaxconn=1024 --dns-search example.org --group 42 \
             --log-driver json-file --log-opt max-size=1m swarmr/busybox:latest 600"
        ),
    );
    let id = service_json(&m1, "opts")["ID"]
        .as_str()
        .expect("id")
        .to_string();
    let first = only_container(&id);
    let inspected = docker_inspect(&first);
    let (config, host) = (&inspected["Config"], &inspected["HostConfig"]);
    assert_eq!(config["User"], "1000:1000");
    assert_eq!(config["WorkingDir"], "/tmp");
    assert_eq!(config["Hostname"], "opts-1-m1");
    assert_eq!(config["Entrypoint"], serde_json::json!(["sleep"]));
    assert!(
        config["Env"]
            .as_array()
            .is_some_and(|e| e.contains(&"FROM_FILE=yes".into())),
        "{config}"
    );
    assert_eq!(host["CapAdd"], serde_json::json!(["CAP_NET_ADMIN"]));
    assert_eq!(host["CapDrop"], serde_json::json!(["CAP_MKNOD"]));
    assert_eq!(
        (host["ReadonlyRootfs"].clone(), host["Init"].clone()),
        (true.into(), true.into())
    );
    assert_eq!(host["ExtraHosts"], serde_json::json!(["db:10.0.0.5"]));
    assert_eq!(host["Ulimits"][0]["Hard"], 2048);
    assert_eq!(host["Sysctls"]["net.core.somaxconn"], "1024");
    assert_eq!(host["DnsSearch"], serde_json::json!(["example.org"]));
    assert_eq!(host["GroupAdd"], serde_json::json!(["42"]));
    assert_eq!(host["LogConfig"]["Config"]["max-size"], "1m");
    let (_, whoami) = exec(&first, "id -u; hostname; cat /proc/1/comm");
    assert_eq!(
        whoami.lines().collect::<Vec<_>>(),
        ["1000", "opts-1-m1", "docker-init"]
    );

    // An update of options replaces the task: the new container has the new settings.
    cli(&m1, "service update --read-only=false --cap-add SYS_TIME --cap-drop NET_ADMIN --host-rm db --user '' opts");
    wait_until("the task replaced", || {
        containers(&id).first().is_some_and(|c| *c != first)
    });
    let second = only_container(&id);
    let host = docker_inspect(&second)["HostConfig"].clone();
    assert_eq!(host["ReadonlyRootfs"], false);
    assert_eq!(host["CapAdd"], serde_json::json!(["CAP_SYS_TIME"]));
    assert_eq!(
        host["CapDrop"],
        serde_json::json!(["CAP_MKNOD", "CAP_NET_ADMIN"])
    );
    assert!(
        host["ExtraHosts"].is_null() || host["ExtraHosts"] == serde_json::json!([]),
        "{host}"
    );
    let spec = service_json(&m1, "opts");
    let container = &spec["Spec"]["TaskTemplate"]["ContainerSpec"];
    assert_eq!(
        container["Hostname"],
        "{{.Service.Name}}-{{.Task.Slot}}-{{.Node.Hostname}}"
    );
    assert!(
        container.get("User").is_none() && container.get("ReadOnly").is_none(),
        "{container}"
    );
    assert_eq!(
        spec["PreviousSpec"]["TaskTemplate"]["ContainerSpec"]["ReadOnly"],
        true
    );
}
