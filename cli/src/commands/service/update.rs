//! `service update` and `service rollback`: the service's spec as read, changed by the
//! flags, sent back with the version read (so a concurrent change is not overwritten).

use std::collections::{HashMap, HashSet};

use anyhow::{bail, Context};
use swarmr_proto::{
    EndpointMode, GetServiceRequest, ListNetworksRequest, RollbackServiceRequest, Service,
    ServiceSpec, UpdateServiceRequest, UpdateState,
};

use super::create::env_entries;
use super::{converge, rollout, Control};
use crate::args::WaitArgs;
use crate::client;
use crate::commands::key_values;
use crate::rollout_args::ServiceUpdateArgs;

pub async fn update(host: &str, args: ServiceUpdateArgs) -> anyhow::Result<()> {
    let mut control = client::control(host).await?;
    let service = get(&mut control, &args.service).await?;
    let mut spec = service.spec.clone().unwrap_or_default();
    let networks = match args.network_rm.is_empty() {
        true => HashMap::new(),
        false => network_ids(&mut control).await?,
    };
    apply(&args, &mut spec, &networks)?;
    if args.rollback {
        if Some(&spec) != service.spec.as_ref() || args.force {
            bail!("--rollback takes no other change: run the rollback and the update apart");
        }
        return rollback(host, &args.wait, &service.id).await;
    }
    let before = converge::task_ids(&mut control, &service.id).await;
    let request = UpdateServiceRequest {
        reference: service.id.clone(),
        spec: Some(spec.clone()),
        version: service.meta.map_or(0, |m| m.version),
    };
    let updated = control
        .update_service(request)
        .await?
        .into_inner()
        .service
        .and_then(|v| v.service)
        .context("the manager returned no service")?;
    println!("{}", spec.name);
    if args.wait.detach {
        return Ok(());
    }
    let state = updated.update_status.map(|s| s.state());
    if state == Some(UpdateState::Updating) {
        rollout::wait(&mut control, &service.id, &args.wait, rollout::Mode::Update).await
    } else {
        converge::wait(&mut control, &service.id, &args.wait, &before).await
    }
}

pub async fn rollback(host: &str, wait: &WaitArgs, reference: &str) -> anyhow::Result<()> {
    let mut control = client::control(host).await?;
    let request = RollbackServiceRequest {
        reference: reference.to_string(),
    };
    let service = control
        .rollback_service(request)
        .await?
        .into_inner()
        .service
        .and_then(|v| v.service)
        .context("the manager returned no service")?;
    println!("{}", service.spec.as_ref().map_or("", |s| s.name.as_str()));
    if wait.detach {
        return Ok(());
    }
    rollout::wait(&mut control, &service.id, wait, rollout::Mode::Rollback).await
}

async fn get(control: &mut Control, reference: &str) -> anyhow::Result<Service> {
    let request = GetServiceRequest {
        reference: reference.to_string(),
    };
    control
        .get_service(request)
        .await?
        .into_inner()
        .service
        .and_then(|v| v.service)
        .context("the manager returned no service")
}

/// Network name and id → id, for `--network-rm`.
async fn network_ids(control: &mut Control) -> anyhow::Result<HashMap<String, String>> {
    let networks = control
        .list_networks(ListNetworksRequest {})
        .await?
        .into_inner()
        .networks;
    let mut ids = HashMap::new();
    for network in networks {
        let name = network.spec.map(|s| s.name).unwrap_or_default();
        ids.insert(name, network.id.clone());
        ids.insert(network.id.clone(), network.id);
    }
    Ok(ids)
}

/// Refuses a key both added and removed by the same update.
fn check_both(what: &str, added: &[String], removed: &[String]) -> anyhow::Result<()> {
    let removed: HashSet<&str> = removed.iter().map(String::as_str).collect();
    for item in added {
        let key = item.split_once('=').map_or(item.as_str(), |(k, _)| k);
        if removed.contains(key) {
            bail!("--{what}-add and --{what}-rm both name {key:?}: keep one of them");
        }
    }
    Ok(())
}

/// The spec after the flags. Pure, so the rules are tested without a cluster.
fn apply(
    args: &ServiceUpdateArgs,
    spec: &mut ServiceSpec,
    networks: &HashMap<String, String>,
) -> anyhow::Result<()> {
    check_both("env", &args.env_add, &args.env_rm)?;
    check_both("label", &args.label_add, &args.label_rm)?;
    check_both(
        "container-label",
        &args.container_label_add,
        &args.container_label_rm,
    )?;
    check_both("constraint", &args.constraint_add, &args.constraint_rm)?;
    check_both("network", &args.network_add, &args.network_rm)?;
    if args.replicas.is_some() && spec.global {
        bail!(
            "--replicas only works with replicated services; {} is global",
            spec.name
        );
    }
    let container = spec.container.get_or_insert_with(Default::default);
    if let Some(image) = &args.image {
        if image.trim().is_empty() {
            bail!("--image is empty: give an image such as my-service:v2");
        }
        container.image = image.clone();
    }
    let key = |entry: &str| entry.split_once('=').map_or(entry, |(k, _)| k).to_string();
    let added = env_entries(&args.env_add, |k| std::env::var(k).ok());
    let dropped: HashSet<String> = args.env_rm.iter().chain(&added).map(|e| key(e)).collect();
    container.env.retain(|e| !dropped.contains(&key(e)));
    container.env.extend(added);
    let container_labels = key_values("container-label-add", &args.container_label_add)?;
    container.labels.extend(container_labels);
    for label in &args.container_label_rm {
        container.labels.remove(label);
    }
    if let Some(line) = &args.args {
        container.command = shlex::split(line).ok_or_else(|| {
            anyhow::anyhow!("--args {line:?} has an unclosed quote: close it or escape it")
        })?;
    }
    if args.force {
        container.force_update += 1;
    }
    args.container_flags.apply(container)?;
    args.workload.apply(container)?;
    args.files.apply(container)?;
    spec.labels
        .extend(key_values("label-add", &args.label_add)?);
    for label in &args.label_rm {
        spec.labels.remove(label);
    }
    spec.constraints.retain(|c| !args.constraint_rm.contains(c));
    for constraint in &args.constraint_add {
        if !spec.constraints.contains(constraint) {
            spec.constraints.push(constraint.clone());
        }
    }
    for network in &args.network_rm {
        let id = networks.get(network).unwrap_or(network);
        if !spec.networks.contains(id) {
            bail!("service {} is not on network {network:?}", spec.name);
        }
        spec.networks.retain(|n| n != id);
    }
    spec.networks.extend(args.network_add.iter().cloned());
    super::publish::update_ports(&mut spec.ports, &args.publish_add, &args.publish_rm)?;
    if let Some(replicas) = args.replicas {
        spec.replicas = Some(replicas);
    }
    match args.endpoint_mode.as_deref() {
        Some("vip") => spec.set_endpoint_mode(EndpointMode::Vip),
        Some("dnsrr") => spec.set_endpoint_mode(EndpointMode::Dnsrr),
        _ => {}
    }
    args.rollout
        .apply(&mut spec.update_config, &mut spec.rollback_config, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmr_proto::ContainerSpec;

    fn parse(args: &[&str]) -> ServiceUpdateArgs {
        use clap::Parser;
        let argv = ["swarmr", "service", "update"].iter().chain(args);
        match crate::args::Cli::try_parse_from(argv).map(|c| c.command) {
            Ok(crate::args::Command::Service(crate::args::ServiceCommand::Update(a))) => *a,
            _ => panic!("not a service update"),
        }
    }

    fn spec() -> ServiceSpec {
        ServiceSpec {
            name: "web".into(),
            container: Some(ContainerSpec {
                image: "my-service:v1".into(),
                env: vec!["A=1".into(), "OLD=x".into()],
                ..Default::default()
            }),
            networks: vec!["net-id".into()],
            replicas: Some(2),
            ..Default::default()
        }
    }

    #[test]
    fn flags_change_only_what_they_name() {
        let args = parse(&[
            "--image",
            "my-service:v2",
            "--env-add",
            "A=2",
            "--env-rm",
            "OLD",
            "--label-add",
            "a=b",
            "--replicas",
            "5",
            "--constraint-add",
            "node.role==worker",
            "--force",
            "--update-order",
            "start-first",
            "web",
        ]);
        let mut spec = spec();
        apply(&args, &mut spec, &HashMap::new()).unwrap();
        let container = spec.container.clone().unwrap();
        assert_eq!(container.image, "my-service:v2");
        assert_eq!(container.env, ["A=2"]);
        assert_eq!(container.force_update, 1);
        assert_eq!(spec.labels["a"], "b");
        assert_eq!((spec.replicas, spec.constraints.len()), (Some(5), 1));
        let update = spec.update_config.unwrap();
        assert_eq!(update.order(), swarmr_proto::UpdateOrder::StartFirst);
        assert_eq!(spec.rollback_config, None, "no rollback flag given");
    }

    #[test]
    fn conflicting_or_wrong_flags_are_refused() {
        let err = |argv: &[&str]| {
            let mut spec = spec();
            let networks = HashMap::from([("front".to_string(), "net-id".to_string())]);
            apply(&parse(argv), &mut spec, &networks)
                .unwrap_err()
                .to_string()
        };
        let both = err(&["--env-add", "K=V", "--env-rm", "K", "web"]);
        assert_eq!(
            both,
            "--env-add and --env-rm both name \"K\": keep one of them"
        );
        let missing = err(&["--network-rm", "back", "web"]);
        assert_eq!(missing, "service web is not on network \"back\"");
        let mut spec = spec();
        let networks = HashMap::from([("front".to_string(), "net-id".to_string())]);
        apply(
            &parse(&["--network-rm", "front", "web"]),
            &mut spec,
            &networks,
        )
        .unwrap();
        assert!(spec.networks.is_empty());
    }

    #[test]
    fn endpoint_mode_switches() {
        let mut updated = spec();
        let args = parse(&["--endpoint-mode", "dnsrr", "web"]);
        apply(&args, &mut updated, &HashMap::new()).expect("valid");
        assert_eq!(updated.endpoint_mode(), EndpointMode::Dnsrr);
    }

    #[test]
    fn args_replace_the_command() {
        let mut updated = spec();
        let args = parse(&["--args", "sleep 'a b'", "web"]);
        apply(&args, &mut updated, &HashMap::new()).expect("valid");
        let command = &updated.container.as_ref().expect("container").command;
        assert_eq!(command, &["sleep", "a b"]);
        let cleared = parse(&["--args", "", "web"]);
        apply(&cleared, &mut updated, &HashMap::new()).expect("valid");
        assert!(updated
            .container
            .as_ref()
            .expect("container")
            .command
            .is_empty());
        let unclosed = parse(&["--args", "sleep 'x", "web"]);
        let err = apply(&unclosed, &mut updated, &HashMap::new()).expect_err("refused");
        assert!(err.to_string().contains("unclosed quote"), "{err}");
    }
}
