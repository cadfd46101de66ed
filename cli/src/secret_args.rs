//! The flags of `swarmr secret|config`, `--secret`/`--config` of `service create` and
//! `--secret-add`/`--secret-rm`/`--config-add`/`--config-rm` of `service update`, and the
//! node's `--secrets-key-file`; with how they change a container spec.

use std::path::PathBuf;

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use swarmr_proto::{ContainerSpec, SecretReference};

/// `swarmr secret ...` and `swarmr config ...`, flattened into the top-level commands.
#[derive(Subcommand)]
pub enum SealedCommand {
    /// Manage secrets: encrypted at rest, sent only to nodes whose tasks use them.
    #[command(subcommand)]
    Secret(FileCommand),
    /// Manage configs: as secrets, but `inspect` shows their data.
    #[command(subcommand)]
    Config(FileCommand),
}

#[derive(Subcommand)]
pub enum FileCommand {
    /// Create one from a file, or from standard input with `-`.
    Create {
        /// Label key=value (repeatable).
        #[arg(long, short)]
        label: Vec<String>,
        name: String,
        /// A file, or `-` for standard input.
        file: String,
    },
    /// List them.
    #[command(alias = "list")]
    Ls(crate::args::ListArgs),
    /// Show them in detail (JSON array).
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove them (refused while a service uses one).
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Store a new value and roll every service that uses it (beyond Docker).
    Update {
        #[command(flatten)]
        wait: crate::args::WaitArgs,
        name: String,
        /// A file, or `-` for standard input.
        file: String,
    },
}

/// The node daemon's key-encryption key of the data key.
#[derive(Args, Clone)]
pub struct KeyArgs {
    /// File holding the key that wraps the cluster's data key on a manager (made, 0600,
    /// if missing); keep it outside the data dir.
    #[arg(
        long,
        env = "SWARMR_SECRETS_KEY_FILE",
        default_value = swarmr_manager::secrets::keyfile::DEFAULT_KEY_FILE
    )]
    pub secrets_key_file: PathBuf,
}

/// `service create --secret --config`.
#[derive(Args, Clone, Default)]
pub struct FileFlags {
    /// Give the service a secret: NAME, or source=NAME[,target=PATH][,uid=N][,gid=N][,mode=0444]
    /// (default target /run/secrets/NAME; repeatable).
    #[arg(long)]
    pub secret: Vec<String>,
    /// Give the service a config, as --secret (default target /NAME; repeatable).
    #[arg(long)]
    pub config: Vec<String>,
}

impl FileFlags {
    pub fn apply(&self, container: &mut ContainerSpec) -> anyhow::Result<()> {
        container.secrets = parse_all("secret", &self.secret)?;
        container.configs = parse_all("config", &self.config)?;
        Ok(())
    }
}

/// `service update --secret-add --secret-rm --config-add --config-rm`.
#[derive(Args, Clone, Default)]
pub struct FileUpdateFlags {
    /// Add a secret, as --secret of create (repeatable).
    #[arg(long)]
    pub secret_add: Vec<String>,
    /// Remove a secret, by name or id (repeatable).
    #[arg(long)]
    pub secret_rm: Vec<String>,
    /// Add a config, as --config of create (repeatable).
    #[arg(long)]
    pub config_add: Vec<String>,
    /// Remove a config, by name or id (repeatable).
    #[arg(long)]
    pub config_rm: Vec<String>,
}

impl FileUpdateFlags {
    pub fn apply(&self, container: &mut ContainerSpec) -> anyhow::Result<()> {
        change(
            "secret",
            &mut container.secrets,
            &self.secret_add,
            &self.secret_rm,
        )?;
        change(
            "config",
            &mut container.configs,
            &self.config_add,
            &self.config_rm,
        )
    }
}

fn change(
    kind: &str,
    refs: &mut Vec<SecretReference>,
    add: &[String],
    rm: &[String],
) -> anyhow::Result<()> {
    let added = parse_all(kind, add)?;
    if let Some(both) = added.iter().find(|r| rm.contains(&r.name)) {
        bail!(
            "--{kind}-add and --{kind}-rm both name {:?}: keep one of them",
            both.name
        );
    }
    for name in rm {
        if !refs.iter().any(|r| &r.name == name || &r.id == name) {
            bail!("--{kind}-rm {name:?}: the service has no such {kind}");
        }
    }
    refs.retain(|r| !rm.contains(&r.name) && !rm.contains(&r.id));
    refs.extend(added);
    Ok(())
}

fn parse_all(kind: &str, items: &[String]) -> anyhow::Result<Vec<SecretReference>> {
    items.iter().map(|item| parse_ref(kind, item)).collect()
}

/// Docker's forms: `NAME`, or `source=NAME,target=PATH,uid=N,gid=N,mode=M` (mode as
/// Go's base-0 number: `0440` is octal).
pub fn parse_ref(kind: &str, text: &str) -> anyhow::Result<SecretReference> {
    let bad = |why: &str| anyhow!("invalid --{kind} {text:?}: {why}");
    let mut r = SecretReference::default();
    if !text.contains('=') {
        if text.is_empty() || text.contains(',') {
            return Err(bad(
                "use NAME or source=NAME[,target=PATH,uid=N,gid=N,mode=0444]",
            ));
        }
        r.name = text.to_string();
        return Ok(r);
    }
    for part in text.split(',') {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| bad("each option is key=value"))?;
        let number = |what: &str| {
            parse_number(value).ok_or_else(|| bad(&format!("{what} must be a number")))
        };
        match key.trim() {
            "source" | "src" => r.name = value.to_string(),
            "target" | "dst" | "destination" => r.target = value.to_string(),
            "uid" => r.uid = number("uid")?,
            "gid" => r.gid = number("gid")?,
            "mode" => r.mode = number("mode")?,
            other => {
                return Err(bad(&format!(
                    "unknown option {other:?}: use source, target, uid, gid or mode"
                )))
            }
        }
    }
    if r.name.is_empty() {
        return Err(bad("source=NAME is required"));
    }
    Ok(r)
}

fn parse_number(text: &str) -> Option<u32> {
    if let Some(hex) = text.strip_prefix("0x") {
        return u32::from_str_radix(hex, 16).ok();
    }
    if let Some(octal) = text.strip_prefix("0o") {
        return u32::from_str_radix(octal, 8).ok();
    }
    if text.len() > 1 && text.starts_with('0') {
        return u32::from_str_radix(&text[1..], 8).ok();
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_take_dockers_forms() {
        let r = parse_ref("secret", "db").unwrap();
        assert_eq!((r.name.as_str(), r.target.as_str(), r.mode), ("db", "", 0));
        let r = parse_ref("secret", "source=db,target=/etc/pw,uid=33,gid=34,mode=0400").unwrap();
        assert_eq!((r.uid, r.gid, r.mode), (33, 34, 0o400));
        assert_eq!(r.target, "/etc/pw");
        for bad in [
            "",
            "target=/x",
            "source=db,mode=rw",
            "source=db,colour=red",
            "a,b",
        ] {
            assert!(parse_ref("secret", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn update_adds_and_removes_by_name() {
        let mut container = ContainerSpec::default();
        let flags = FileUpdateFlags {
            secret_add: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        flags.apply(&mut container).unwrap();
        let flags = FileUpdateFlags {
            secret_rm: vec!["a".into()],
            ..Default::default()
        };
        flags.apply(&mut container).unwrap();
        let names: Vec<&str> = container.secrets.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["b"]);
        let err = flags.apply(&mut container).unwrap_err().to_string();
        assert!(err.contains("has no such secret"), "{err}");
    }
}
