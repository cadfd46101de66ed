//! `service create`: the spec from the flags, the default name from the image.

use std::collections::HashSet;

use anyhow::{bail, Context};
use swarmr_proto::{
    ContainerSpec, CreateServiceRequest, EndpointMode, RestartCondition, RestartPolicy, ServiceSpec,
};

use super::converge;
use crate::args::ServiceCreateArgs;
use crate::client;
use crate::commands::key_values;

pub async fn create(host: &str, args: ServiceCreateArgs) -> anyhow::Result<()> {
    let spec = build_spec(&args)?;
    let mut control = client::control(host).await?;
    let service = control
        .create_service(CreateServiceRequest { spec: Some(spec) })
        .await?
        .into_inner()
        .service
        .context("the manager returned no service")?;
    println!("{}", service.id);
    if args.wait.detach {
        return Ok(());
    }
    converge::wait(&mut control, &service.id, &args.wait, &HashSet::new()).await
}

fn build_spec(args: &ServiceCreateArgs) -> anyhow::Result<ServiceSpec> {
    let (replicas, global) = mode(&args.mode, args.replicas)?;
    let name = match &args.name {
        Some(name) => name.clone(),
        None => image_base_name(&args.image),
    };
    if name.is_empty() {
        bail!(
            "cannot name the service after image {:?}: pass --name",
            args.image
        );
    }
    let mut container = ContainerSpec {
        image: args.image.clone(),
        command: args.command.clone(),
        env: env_entries(&args.env, |key| std::env::var(key).ok()),
        labels: key_values("container-label", &args.container_label)?,
        ..Default::default()
    };
    args.container_flags.apply(&mut container)?;
    args.workload.apply(&mut container)?;
    args.files.apply(&mut container)?;
    let restart = RestartPolicy {
        condition: restart_condition(&args.restart_condition)? as i32,
        delay_ms: u64::try_from(args.restart_delay.as_millis()).unwrap_or(u64::MAX),
        max_attempts: args.restart_max_attempts,
    };
    let endpoint_mode = match args.endpoint_mode.as_str() {
        "vip" => EndpointMode::Vip,
        "dnsrr" => EndpointMode::Dnsrr,
        other => bail!("invalid --endpoint-mode {other:?}: use vip or dnsrr"),
    };
    let (mut update_config, mut rollback_config) = (None, None);
    args.rollout
        .apply(&mut update_config, &mut rollback_config, true)?;
    Ok(ServiceSpec {
        name,
        labels: key_values("label", &args.label)?,
        container: Some(container),
        networks: args.network.clone(),
        replicas,
        global,
        constraints: args.constraint.clone(),
        restart: Some(restart),
        endpoint_mode: endpoint_mode as i32,
        ports: super::publish::parse_ports(&args.publish)?,
        update_config,
        rollback_config,
        network_aliases: Vec::new(),
    })
}

/// `(replicas, global)` for the spec: replicated mode defaults to one replica.
fn mode(mode: &str, replicas: Option<u64>) -> anyhow::Result<(Option<u64>, bool)> {
    match (mode, replicas) {
        ("replicated", replicas) => Ok((Some(replicas.unwrap_or(1)), false)),
        ("global", None) => Ok((None, true)),
        ("global", Some(_)) => bail!("--replicas only works with --mode replicated"),
        (other, _) => bail!("invalid --mode {other:?}: use replicated or global"),
    }
}

fn restart_condition(condition: &str) -> anyhow::Result<RestartCondition> {
    Ok(match condition {
        "any" => RestartCondition::Any,
        "on-failure" => RestartCondition::OnFailure,
        "none" => RestartCondition::None,
        other => bail!("invalid --restart-condition {other:?}: use any, on-failure or none"),
    })
}

/// `-e KEY=VALUE` as given; `-e KEY` takes KEY's value from this environment, like Docker
/// (and stays a bare `KEY` when it is not set here).
pub fn env_entries(items: &[String], lookup: impl Fn(&str) -> Option<String>) -> Vec<String> {
    items
        .iter()
        .map(|item| match (item.contains('='), lookup(item)) {
            (false, Some(value)) => format!("{item}={value}"),
            _ => item.clone(),
        })
        .collect()
}

/// The service name Docker users expect from an image reference: its last path component,
/// without registry, tag or digest (`localhost:5000/a/b:1@sha256:..` → `b`).
pub fn image_base_name(image: &str) -> String {
    let without_digest = image.split('@').next().unwrap_or_default();
    let last = without_digest.rsplit('/').next().unwrap_or_default();
    let without_tag = last.split(':').next().unwrap_or_default();
    without_tag.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_name_drops_registry_path_tag_and_digest() {
        let cases = [
            ("my-service", "my-service"),
            ("nginx", "nginx"),
            ("nginx:1.25", "nginx"),
            ("repo/nginx:1.25", "nginx"),
            ("localhost:5000/a/b", "b"),
            ("localhost:5000/a/b:2", "b"),
            ("localhost:5000/a/b@sha256:0123abcd", "b"),
            ("localhost:5000/a/b:2@sha256:0123abcd", "b"),
            ("", ""),
        ];
        for (image, name) in cases {
            assert_eq!(image_base_name(image), name, "{image}");
        }
    }

    #[test]
    fn mode_and_replicas() {
        assert_eq!(mode("replicated", None).unwrap(), (Some(1), false));
        assert_eq!(mode("replicated", Some(0)).unwrap(), (Some(0), false));
        assert_eq!(mode("replicated", Some(5)).unwrap(), (Some(5), false));
        assert_eq!(mode("global", None).unwrap(), (None, true));
        let err = mode("global", Some(2)).unwrap_err().to_string();
        assert_eq!(err, "--replicas only works with --mode replicated");
        assert!(mode("job", None).is_err());
    }

    #[test]
    fn env_keys_without_value_come_from_here() {
        let lookup = |key: &str| (key == "HOME").then(|| "/root".to_string());
        let items = [
            "A=1".to_string(),
            "HOME".into(),
            "UNSET".into(),
            "B=".into(),
        ];
        assert_eq!(
            env_entries(&items, lookup),
            ["A=1", "HOME=/root", "UNSET", "B="]
        );
    }

    fn parse(args: &[&str]) -> Result<ServiceCreateArgs, clap::Error> {
        use clap::Parser;
        let argv = ["swarmr", "service", "create"].iter().chain(args);
        match crate::args::Cli::try_parse_from(argv)?.command {
            crate::args::Command::Service(crate::args::ServiceCommand::Create(args)) => Ok(*args),
            _ => panic!("not a service create"),
        }
    }

    #[test]
    fn command_after_the_image_is_kept_whole() {
        let args = parse(&[
            "--name",
            "w",
            "alpine",
            "sh",
            "-c",
            "echo hi; sleep 1d",
            "-d",
        ])
        .unwrap();
        assert_eq!(args.image, "alpine");
        assert_eq!(args.command, ["sh", "-c", "echo hi; sleep 1d", "-d"]);
        assert!(!args.wait.detach);
        let spec = build_spec(&args).unwrap();
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.restart.map(|r| r.delay_ms), Some(5000));
    }

    #[test]
    fn replicas_flag_is_checked() {
        let negative = parse(&["--replicas", "-1", "alpine"])
            .err()
            .map(|e| e.to_string());
        assert!(negative.is_some_and(|e| e.contains("is not a number of replicas")));
        let global = parse(&["--mode", "global", "--replicas", "2", "alpine"]).unwrap();
        let err = build_spec(&global).unwrap_err().to_string();
        assert_eq!(err, "--replicas only works with --mode replicated");
        let global =
            build_spec(&parse(&["--mode", "global", "-d", "repo/agent:1"]).unwrap()).unwrap();
        assert_eq!(
            (global.replicas, global.global, global.name.as_str()),
            (None, true, "agent")
        );
    }
}
