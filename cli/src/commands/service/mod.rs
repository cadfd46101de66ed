//! `swarmr service create|ls|ps|inspect|rm|scale|update|rollback|logs`.
//!
//! `create` builds the spec (`create`), `converge` waits for the tasks to run and shows the
//! progress, `update` changes a spec and `rollout` waits for the update, `ps` lays out
//! task history, `inspect` shapes services like Docker's, `logs`
//! streams task output. This file holds the dispatch and the small list commands.

mod converge;
mod create;
pub use create::env_entries;
pub use workload_json::resources_json;
mod display;
mod inspect;
mod logs;
mod ps;
mod publish;
mod rollout;
mod rollout_json;
mod update;
mod workload_json;

use std::collections::HashSet;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use swarmr_proto::control_client::ControlClient;
use swarmr_proto::{
    ListServicesRequest, RemoveServiceRequest, ScaleServiceRequest, Service, ServiceSpec,
    ServiceView,
};
use tonic::transport::Channel;

use super::network::short_id;
use crate::args::{ListArgs, ServiceCommand, WaitArgs};
use crate::client;
use crate::output;

pub async fn run(host: &str, command: ServiceCommand) -> anyhow::Result<()> {
    match command {
        ServiceCommand::Create(args) => create::create(host, *args).await,
        ServiceCommand::Ls(args) => ls(host, args).await,
        ServiceCommand::Ps {
            list,
            no_trunc,
            services,
        } => ps::ps(host, &list, no_trunc, services).await,
        ServiceCommand::Inspect { pretty, services } => {
            inspect::inspect(host, pretty, services).await
        }
        ServiceCommand::Rm { services } => rm(host, services).await,
        ServiceCommand::Scale { wait, scales } => scale(host, &wait, &scales).await,
        ServiceCommand::Update(args) => update::update(host, *args).await,
        ServiceCommand::Rollback { wait, service } => update::rollback(host, &wait, &service).await,
        ServiceCommand::Logs {
            follow,
            tail,
            service,
        } => logs::logs(host, follow, &tail, service).await,
    }
}

type Control = ControlClient<Channel>;

fn spec(service: &Service) -> ServiceSpec {
    service.spec.clone().unwrap_or_default()
}

fn mode_label(spec: &ServiceSpec) -> &'static str {
    if spec.global {
        "global"
    } else {
        "replicated"
    }
}

/// One line of `service ls`.
struct LsRow {
    id: String,
    name: String,
    mode: &'static str,
    replicas: String,
    image: String,
    ports: String,
}

impl From<&ServiceView> for LsRow {
    fn from(view: &ServiceView) -> Self {
        let service = view.service.clone().unwrap_or_default();
        let spec = spec(&service);
        LsRow {
            id: service.id,
            name: spec.name.clone(),
            mode: mode_label(&spec),
            replicas: format!("{}/{}", view.running, view.desired),
            image: spec.container.map(|c| c.image).unwrap_or_default(),
            ports: service
                .ports
                .iter()
                .map(publish::port_column)
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

impl LsRow {
    fn cells(&self) -> Vec<String> {
        let (id, name, image) = (short_id(&self.id), self.name.clone(), self.image.clone());
        vec![
            id,
            name,
            self.mode.into(),
            self.replicas.clone(),
            image,
            self.ports.clone(),
        ]
    }

    fn json(&self) -> Value {
        json!({
            "ID": self.id, "Name": self.name, "Mode": self.mode,
            "Replicas": self.replicas, "Image": self.image, "Ports": self.ports,
        })
    }
}

async fn ls(host: &str, args: ListArgs) -> anyhow::Result<()> {
    let mut control = client::control(host).await?;
    let services = control
        .list_services(ListServicesRequest {})
        .await?
        .into_inner()
        .services;
    let rows: Vec<LsRow> = services.iter().map(LsRow::from).collect();
    if args.quiet {
        rows.iter().for_each(|r| println!("{}", r.id));
    } else if args.format == "json" {
        rows.iter().for_each(|r| println!("{}", r.json()));
    } else {
        let cells: Vec<Vec<String>> = rows.iter().map(LsRow::cells).collect();
        let headers = ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"];
        print!("{}", output::table(&headers, &cells));
    }
    Ok(())
}

/// Docker's habit for commands over several objects: do every one, then fail if any failed.
fn joined_errors(errors: Vec<String>) -> anyhow::Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    Err(anyhow!(errors.join("\n")))
}

async fn rm(host: &str, services: Vec<String>) -> anyhow::Result<()> {
    let mut control = client::control(host).await?;
    let mut errors = Vec::new();
    for reference in services {
        let request = RemoveServiceRequest {
            reference: reference.clone(),
        };
        match control.remove_service(request).await {
            Ok(_) => println!("{reference}"),
            Err(status) => errors.push(output::status_text(&status)),
        }
    }
    joined_errors(errors)
}

/// `SERVICE=REPLICAS` of `service scale`.
fn parse_scale(item: &str) -> anyhow::Result<(String, u64)> {
    let Some((name, count)) = item.split_once('=') else {
        bail!("invalid scale {item:?}: use SERVICE=REPLICAS");
    };
    if name.is_empty() {
        bail!("invalid scale {item:?}: use SERVICE=REPLICAS");
    }
    let replicas = count.parse::<u64>().map_err(|_| {
        anyhow!(
            "invalid replicas value {count:?} for service {name}: use a whole number, 0 or more"
        )
    })?;
    Ok((name.to_string(), replicas))
}

async fn scale(host: &str, wait: &WaitArgs, items: &[String]) -> anyhow::Result<()> {
    let scales = items
        .iter()
        .map(|item| parse_scale(item))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut control = client::control(host).await?;
    let mut errors = Vec::new();
    let mut scaled = Vec::new();
    for (reference, replicas) in scales {
        // Tasks that failed before this scale do not count against it.
        let before = match wait.detach {
            true => HashSet::new(),
            false => converge::task_ids(&mut control, &reference).await,
        };
        let request = ScaleServiceRequest {
            reference: reference.clone(),
            replicas,
        };
        match control.scale_service(request).await {
            Ok(reply) => {
                println!("{reference} scaled to {replicas}");
                let service = reply.into_inner().service.and_then(|v| v.service);
                scaled.push((service.map(|s| s.id), before));
            }
            Err(status) => errors.push(output::status_text(&status)),
        }
    }
    if !wait.detach {
        for (id, before) in scaled {
            let id = id.context("the manager returned no service")?;
            if let Err(e) = converge::wait(&mut control, &id, wait, &before).await {
                errors.push(output::error_text(&e));
            }
        }
    }
    joined_errors(errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmr_proto::ContainerSpec;

    #[test]
    fn scale_arguments_are_checked() {
        assert_eq!(parse_scale("web=3").unwrap(), ("web".to_string(), 3));
        assert_eq!(parse_scale("web=0").unwrap(), ("web".to_string(), 0));
        let negative = parse_scale("web=-1").unwrap_err().to_string();
        assert!(negative.contains("\"-1\""), "{negative}");
        assert!(parse_scale("web=x").is_err());
        assert!(parse_scale("web").is_err());
        assert!(parse_scale("=3").is_err());
    }

    #[test]
    fn ls_row_shows_counts_and_short_id() {
        let view = ServiceView {
            service: Some(Service {
                id: "0123456789abcdefghijklmno".into(),
                spec: Some(ServiceSpec {
                    name: "web".into(),
                    container: Some(ContainerSpec {
                        image: "nginx:1.25".into(),
                        ..Default::default()
                    }),
                    replicas: Some(3),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            running: 2,
            desired: 3,
        };
        let row = LsRow::from(&view);
        let cells = row.cells();
        assert_eq!(
            cells[..5],
            ["0123456789ab", "web", "replicated", "2/3", "nginx:1.25"]
        );
        let json = row.json();
        assert_eq!(json["ID"], "0123456789abcdefghijklmno");
        assert_eq!(json["Replicas"], "2/3");
        assert_eq!(json["Mode"], "replicated");
        assert_eq!(json["Ports"], "");
    }
}
