//! Secrets and configs through the Docker API, with the real `docker` CLI: created,
//! listed and inspected as Docker shows them (a secret's data never, a config's in
//! base64), used by a service the docker CLI creates, and refused removal while in use.

use std::process::Command;

use serde_json::Value;

use crate::dockerapi::docker;
use crate::util::*;

#[test]
#[ignore = "needs root and Docker"]
fn docker_cli_manages_secrets_and_configs_and_services_use_them() {
    let cluster = Cluster::init(&[]);
    let m1 = cluster.nodes[0].host();
    let secret_file = cluster.dir().join("token.txt");
    let config_file = cluster.dir().join("app.conf");
    std::fs::write(&secret_file, "s3cr3t-from-docker").expect("secret file");
    std::fs::write(&config_file, "listen=8080\n").expect("config file");
    let path = |p: &std::path::Path| p.to_str().expect("utf-8").to_string();
    docker(
        &cluster,
        &["secret", "create", "token", &path(&secret_file)],
    );
    docker(&cluster, &["config", "create", "app", &path(&config_file)]);

    assert!(docker(&cluster, &["secret", "ls"]).contains("token"));
    assert!(cli(&m1, "secret ls").contains("token"), "one state");
    let secret: Value = serde_json::from_str(&docker(&cluster, &["secret", "inspect", "token"]))
        .expect("secret JSON");
    assert_eq!(secret[0]["Spec"]["Name"], "token");
    assert!(
        secret[0]["Spec"]["Data"].is_null(),
        "a secret's data is never shown"
    );
    let config: Value = serde_json::from_str(&docker(&cluster, &["config", "inspect", "app"]))
        .expect("config JSON");
    assert_eq!(
        config[0]["Spec"]["Data"], "bGlzdGVuPTgwODAK",
        "base64 of the content"
    );

    docker(
        &cluster,
        &[
            "service",
            "create",
            "--name",
            "uses-files",
            "--secret",
            "token",
            "--config",
            "source=app,target=/etc/app.conf",
            "swarmr/busybox:latest",
            "sleep",
            "600",
        ],
    );
    let inspected: Value =
        serde_json::from_str(&cli(&m1, "service inspect uses-files")).expect("service JSON");
    let id = inspected[0]["ID"].as_str().expect("id").to_string();
    let container = containers(&id)
        .into_iter()
        .next()
        .expect("a running container");
    let cat = |file: &str| {
        let out = Command::new("docker")
            .args(["exec", &container, "cat", file])
            .output()
            .expect("exec");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(cat("/run/secrets/token"), "s3cr3t-from-docker");
    assert_eq!(cat("/etc/app.conf"), "listen=8080\n");
    let service: Value =
        serde_json::from_str(&docker(&cluster, &["service", "inspect", "uses-files"]))
            .expect("docker service JSON");
    let spec = &service[0]["Spec"]["TaskTemplate"]["ContainerSpec"];
    assert_eq!(spec["Secrets"][0]["SecretName"], "token", "{spec}");
    assert_eq!(
        spec["Configs"][0]["File"]["Name"], "/etc/app.conf",
        "{spec}"
    );

    let refused = Command::new("docker")
        .env("DOCKER_HOST", crate::dockerapi::docker_host(&cluster))
        .env("DOCKER_CONFIG", cluster.dir().join("docker-config"))
        .args(["secret", "rm", "token"])
        .output()
        .expect("docker secret rm");
    assert!(!refused.status.success(), "a secret in use is not removed");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("uses-files"));
    docker(&cluster, &["service", "rm", "uses-files"]);
    wait_until("the service's container is gone", || {
        containers(&id).is_empty()
    });
    docker(&cluster, &["secret", "rm", "token"]);
    docker(&cluster, &["config", "rm", "app"]);
    assert!(!cli(&m1, "secret ls").contains("token"));
}
