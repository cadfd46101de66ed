//! `swarmr secret|config create|ls|inspect|rm|update`: one code path for both kinds; they
//! differ in the RPCs called and in `inspect`, where a config shows its data (base64, as
//! Docker's `Spec.Data`) and a secret never does.

use std::io::Read;
use std::time::Duration;

use anyhow::{bail, Context};
use base64::Engine;
use serde_json::{json, Value};
use swarmr_proto::{
    Config, CreateSecretRequest, ListSecretsRequest, Meta, Secret, SecretRequest, SecretSpec,
    UpdateSecretRequest,
};

use super::key_values;
use super::network::short_id;
use super::node::millis_to_rfc3339;
use super::service::ps::human_duration;
use super::service::rollout::{wait, Mode};
use crate::args::{ListArgs, WaitArgs};
use crate::client;
use crate::output;
use crate::secret_args::{FileCommand, SealedCommand};

type Control = swarmr_proto::control_client::ControlClient<tonic::transport::Channel>;

/// One stored secret or config as the commands show it.
struct Shown {
    id: String,
    meta: Meta,
    spec: SecretSpec,
    revision: u64,
    /// Configs only.
    data: Option<Vec<u8>>,
}

impl From<Secret> for Shown {
    fn from(s: Secret) -> Self {
        let spec = s.spec.unwrap_or_default();
        Shown {
            id: s.id,
            meta: s.meta.unwrap_or_default(),
            spec,
            revision: s.revision,
            data: None,
        }
    }
}

fn config(c: Config, data: Option<Vec<u8>>) -> Shown {
    let spec = c.spec.unwrap_or_default();
    Shown {
        id: c.id,
        meta: c.meta.unwrap_or_default(),
        spec,
        revision: c.revision,
        data,
    }
}

pub async fn run(host: &str, command: SealedCommand) -> anyhow::Result<()> {
    let (secret, command) = match command {
        SealedCommand::Secret(c) => (true, c),
        SealedCommand::Config(c) => (false, c),
    };
    let mut control = client::control(host).await?;
    let control = &mut control;
    match command {
        FileCommand::Create { label, name, file } => {
            create(control, secret, label, name, &file).await
        }
        FileCommand::Ls(list) => {
            let request = ListSecretsRequest {};
            let all: Vec<Shown> = if secret {
                let reply = control.list_secrets(request).await?.into_inner();
                reply.secrets.into_iter().map(Shown::from).collect()
            } else {
                let reply = control.list_configs(request).await?.into_inner();
                reply.configs.into_iter().map(|c| config(c, None)).collect()
            };
            print_list(&all, &list);
            Ok(())
        }
        FileCommand::Inspect { names } => inspect(control, secret, names).await,
        FileCommand::Rm { names } => {
            for reference in names {
                let request = SecretRequest {
                    reference: reference.clone(),
                };
                if secret {
                    control.remove_secret(request).await?;
                } else {
                    control.remove_config(request).await?;
                }
                println!("{reference}");
            }
            Ok(())
        }
        FileCommand::Update { wait, name, file } => {
            update(control, secret, &wait, name, &file).await
        }
    }
}

fn kind(secret: bool) -> &'static str {
    if secret {
        "secret"
    } else {
        "config"
    }
}

async fn create(
    control: &mut Control,
    secret: bool,
    label: Vec<String>,
    name: String,
    file: &str,
) -> anyhow::Result<()> {
    let spec = SecretSpec {
        name,
        labels: key_values("label", &label)?,
    };
    let request = CreateSecretRequest {
        spec: Some(spec),
        data: read_data(kind(secret), file)?,
    };
    let id = if secret {
        control
            .create_secret(request)
            .await?
            .into_inner()
            .secret
            .map(|s| s.id)
    } else {
        control
            .create_config(request)
            .await?
            .into_inner()
            .config
            .map(|c| c.id)
    };
    println!("{}", id.context("the manager returned nothing")?);
    Ok(())
}

async fn inspect(control: &mut Control, secret: bool, names: Vec<String>) -> anyhow::Result<()> {
    let mut out = Vec::new();
    for reference in names {
        let request = SecretRequest { reference };
        let shown = if secret {
            let reply = control.get_secret(request).await?.into_inner();
            reply.secret.map(Shown::from)
        } else {
            let reply = control.get_config(request).await?.into_inner();
            reply.config.map(|c| config(c, Some(reply.data)))
        };
        out.push(inspect_json(
            &shown.context("the manager returned nothing")?,
        ));
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// A new value; then, unless -d, waits for each service it rolls.
async fn update(
    control: &mut Control,
    secret: bool,
    wait_args: &WaitArgs,
    name: String,
    file: &str,
) -> anyhow::Result<()> {
    let request = UpdateSecretRequest {
        reference: name.clone(),
        data: read_data(kind(secret), file)?,
    };
    let services = if secret {
        control.update_secret(request).await?.into_inner().services
    } else {
        control.update_config(request).await?.into_inner().services
    };
    println!("{name}");
    if services.is_empty() || wait_args.detach {
        return Ok(());
    }
    eprintln!("rolling service(s) {}", services.join(", "));
    for service in &services {
        wait(control, service, wait_args, Mode::Update).await?;
    }
    Ok(())
}

/// The data from a file, or standard input for `-`, at most the limit plus one byte (the
/// manager says what the limit is).
fn read_data(kind: &str, file: &str) -> anyhow::Result<Vec<u8>> {
    let cap = (swarmr_manager::control::MAX_SECRET_DATA + 1) as u64;
    let mut data = Vec::new();
    if file == "-" {
        std::io::stdin()
            .take(cap)
            .read_to_end(&mut data)
            .context("read standard input")?;
    } else {
        let opened = std::fs::File::open(file)
            .with_context(|| format!("cannot read the {kind} file {file:?}"))?;
        opened
            .take(cap)
            .read_to_end(&mut data)
            .with_context(|| format!("read {file:?}"))?;
    }
    if data.is_empty() {
        bail!("the {kind} data is empty: give a file with content, or pipe it to `-`");
    }
    Ok(data)
}

fn ago(ms: i64) -> String {
    let now = swarmr_proto::convert::now_millis();
    let age = Duration::from_millis(now.saturating_sub(ms).max(0) as u64);
    format!("{} ago", human_duration(age))
}

fn print_list(all: &[Shown], list: &ListArgs) {
    if list.quiet {
        all.iter().for_each(|s| println!("{}", s.id));
        return;
    }
    if list.format == "json" {
        for s in all {
            let row = json!({ "ID": s.id, "Name": s.spec.name, "CreatedAt": ago(s.meta.created_at), "UpdatedAt": ago(s.meta.updated_at) });
            println!("{row}");
        }
        return;
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|s| {
            vec![
                short_id(&s.id),
                s.spec.name.clone(),
                ago(s.meta.created_at),
                ago(s.meta.updated_at),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(&["ID", "NAME", "CREATED", "UPDATED"], &rows)
    );
}

/// Docker's shape: ID, Version.Index, CreatedAt, UpdatedAt, Spec (Name, Labels, and a
/// config's Data in base64); plus swarmr's Revision.
fn inspect_json(s: &Shown) -> Value {
    let mut spec = json!({ "Name": s.spec.name, "Labels": s.spec.labels });
    if let Some(data) = &s.data {
        spec["Data"] = json!(base64::engine::general_purpose::STANDARD.encode(data));
    }
    json!({
        "ID": s.id,
        "Version": { "Index": s.meta.version },
        "CreatedAt": millis_to_rfc3339(s.meta.created_at),
        "UpdatedAt": millis_to_rfc3339(s.meta.updated_at),
        "Spec": spec,
        "Revision": s.revision,
    })
}

/// Docker's `ContainerSpec.Secrets` and `.Configs` for `service inspect` (with swarmr's
/// revision of each).
pub fn add_refs_json(container: &swarmr_proto::ContainerSpec, out: &mut Value) {
    let refs = |list: &[swarmr_proto::SecretReference], kind: &str| -> Value {
        let items: Vec<Value> = list
            .iter()
            .map(|r| {
                json!({
                    "File": { "Name": r.target, "UID": r.uid.to_string(), "GID": r.gid.to_string(), "Mode": r.mode },
                    format!("{kind}ID"): r.id,
                    format!("{kind}Name"): r.name,
                    "Revision": r.revision,
                })
            })
            .collect();
        json!(items)
    };
    if !container.secrets.is_empty() {
        out["Secrets"] = refs(&container.secrets, "Secret");
    }
    if !container.configs.is_empty() {
        out["Configs"] = refs(&container.configs, "Config");
    }
}
