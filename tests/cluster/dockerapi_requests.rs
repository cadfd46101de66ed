//! The Docker API's answers to bad requests (raw HTTP with curl), docker-py, and the TCP
//! port with mutual TLS. Need root and Docker, hence `#[ignore]`.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::dockerapi::{docker, docker_at, docker_host};
use crate::util::*;

const IMAGE: &str = "swarmr/busybox:latest";

/// `(status, body)` of a raw request to the manager's Docker API socket.
fn curl(cluster: &Cluster, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let socket = cluster.nodes[0].data_dir.join("docker.sock");
    let socket = socket.display().to_string();
    let url = format!("http://docker{path}");
    let mut args = vec![
        "-s",
        "--unix-socket",
        &socket,
        "-X",
        method,
        "-w",
        "\n%{http_code}",
    ];
    if let Some(body) = body {
        args.extend(["-H", "Content-Type: application/json", "-d", body]);
    }
    args.push(&url);
    let out = Command::new("curl").args(&args).output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    let value = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
    (code.trim().parse().expect("status code"), value)
}

fn message(value: &Value) -> String {
    value["message"].as_str().unwrap_or_default().to_string()
}

#[test]
#[ignore = "needs root and Docker"]
fn bad_docker_api_requests_get_dockers_errors_with_nothing_written() {
    let cluster = Cluster::init(&[]);
    let host = cluster.nodes[0].host();
    let (code, body) = curl(
        &cluster,
        "POST",
        "/v1.41/services/create",
        Some("{\"Name\": "),
    );
    assert_eq!(code, 400, "{body}");
    assert!(message(&body).contains("invalid JSON"), "{body}");
    let unsupported = r#"{"Name":"bad","TaskTemplate":{"ContainerSpec":{"Image":"x","TTY":true}}}"#;
    let (code, body) = curl(
        &cluster,
        "POST",
        "/v1.41/services/create",
        Some(unsupported),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        message(&body).contains("TaskTemplate.ContainerSpec.TTY"),
        "{body}"
    );
    let unknown = r#"{"Name":"bad","Bogus":1,"TaskTemplate":{"ContainerSpec":{"Image":"x"}}}"#;
    let (code, body) = curl(&cluster, "POST", "/services/create", Some(unknown));
    assert_eq!(code, 400, "{body}");
    assert!(message(&body).contains("Bogus"), "{body}");
    assert!(cli(&host, "service ls -q").trim().is_empty());

    let good = format!(
        r#"{{"Name":"api-web","TaskTemplate":{{"ContainerSpec":{{"Image":"{IMAGE}","Args":["sleep","600"]}}}}}}"#
    );
    let (code, body) = curl(&cluster, "POST", "/services/create", Some(&good));
    assert_eq!(code, 201, "{body}");
    let id = body["ID"].as_str().expect("ID").to_string();
    let (code, body) = curl(&cluster, "POST", "/services/create", Some(&good));
    assert_eq!(code, 409, "a second service of that name: {body}");
    let (_, service) = curl(&cluster, "GET", &format!("/services/{id}"), None);
    let version = service["Version"]["Index"].as_u64().expect("version");
    let spec = service["Spec"].to_string();
    cli(&host, "service scale -d api-web=2");
    let stale = format!("/services/{id}/update?version={version}");
    let (code, body) = curl(&cluster, "POST", &stale, Some(&spec));
    assert_eq!(code, 500, "Docker answers a stale version with 500: {body}");
    assert!(message(&body).contains("update out of sequence"), "{body}");
    let (code, body) = curl(
        &cluster,
        "POST",
        &format!("/services/{id}/update"),
        Some(&spec),
    );
    assert_eq!(code, 400, "no version: {body}");

    let (code, body) = curl(&cluster, "GET", "/services/nosuch", None);
    assert_eq!(code, 404, "{body}");
    let (code, body) = curl(&cluster, "GET", "/v1.99/info", None);
    assert_eq!(code, 400, "{body}");
    assert!(message(&body).contains("too new"), "{body}");
    let (code, body) = curl(&cluster, "GET", "/v1.41/containers/json", None);
    assert_eq!(code, 501, "{body}");
    assert!(message(&body).contains("swarmr manager"), "{body}");
    let (code, _) = curl(
        &cluster,
        "GET",
        "/tasks?filters=%7B%22colour%22%3A%5B%22red%22%5D%7D",
        None,
    );
    assert_eq!(code, 400, "unknown filter");
}

#[test]
#[ignore = "needs root, Docker and docker-py"]
fn docker_py_creates_a_service_and_lists_its_tasks() {
    let cluster = Cluster::init(&[]);
    let host = cluster.nodes[0].host();
    let script = format!(
        r#"
import sys, time, docker
client = docker.DockerClient(base_url=sys.argv[1], version="1.41")
assert client.info()["Swarm"]["ControlAvailable"]
# docker-py's `command` is Docker's Command (the ENTRYPOINT); `args` is the CMD.
service = client.services.create("{IMAGE}", args=["sleep", "600"], name="py-web",
                                 mode=docker.types.ServiceMode("replicated", replicas=2),
                                 labels={{"from": "docker-py"}})
deadline = time.time() + 60
while time.time() < deadline:
    running = [t for t in service.tasks() if t["Status"]["State"] == "running"]
    if len(running) == 2:
        break
    time.sleep(0.5)
print(len(running), len(client.services.list(filters={{"label": "from=docker-py"}})))
"#
    );
    let out = Command::new("python3")
        .args(["-c", &script, &docker_host(&cluster)])
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "docker-py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "2 1",
        "two running tasks, one labelled service"
    );
    let listed = cli(&host, "service ls");
    assert!(listed.contains("py-web"), "{listed}");
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
#[ignore = "needs root and Docker"]
fn docker_cli_over_tcp_needs_a_client_certificate_of_the_cluster() {
    let addr = format!("127.0.0.1:{}", free_port());
    let cluster = Cluster::init(&["--docker-api-addr", &addr]);
    let host = cluster.nodes[0].host();
    let certs = cluster.dir().join("client-certs");
    let certs_text = certs.display().to_string();
    ok(&["-H", &host, "ca", "issue-client", "--out", &certs_text]);
    let tls = [
        ("DOCKER_HOST", format!("tcp://{addr}")),
        ("DOCKER_TLS_VERIFY", "1".to_string()),
        ("DOCKER_CERT_PATH", certs_text.clone()),
    ];
    wait_until("docker node ls over TLS", || {
        let out = docker_at(&cluster, &tls, &["node", "ls"]);
        String::from_utf8_lossy(&out.stdout).contains("m1")
    });
    // Without a client certificate the handshake is refused.
    let plain = [("DOCKER_HOST", format!("tcp://{addr}"))];
    let out = docker_at(&cluster, &plain, &["node", "ls"]);
    assert!(
        !out.status.success(),
        "a client without a certificate got in"
    );
    // A revoked client certificate is refused from then on.
    revoke_the_issued_cert(&host);
    let out = docker_at(&cluster, &tls, &["node", "ls"]);
    assert!(!out.status.success(), "a revoked certificate still works");
    // The unix socket is the owner's only.
    let socket = cluster.nodes[0].data_dir.join("docker.sock");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(socket)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert!(docker(&cluster, &["info"]).contains("Swarm: active"));
}
