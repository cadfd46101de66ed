//! Client commands, one file per group.

pub mod ca;
pub mod events;
pub mod info;
pub mod network;
mod network_check;
pub mod node;
pub mod secret;
pub mod service;
pub mod swarm;

use std::collections::HashMap;

use anyhow::anyhow;

/// `k=v` pairs of a repeatable flag.
pub fn key_values(flag: &str, items: &[String]) -> anyhow::Result<HashMap<String, String>> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            None if !item.is_empty() => Ok((item.to_string(), String::new())),
            _ => Err(anyhow!("invalid --{flag} {item:?}: use key=value")),
        })
        .collect()
}

/// `swarmr completion SHELL`.
pub fn print_completions(shell: clap_complete::Shell) {
    use clap::CommandFactory;
    let mut command = crate::args::Cli::command();
    clap_complete::generate(shell, &mut command, "swarmr", &mut std::io::stdout());
}

pub fn parse_replicas(value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("{value:?} is not a number of replicas: use 0 or more"))
}

/// A duration like `90s` or `2m`; a bare number is seconds.
pub fn parse_timeout(value: &str) -> Result<std::time::Duration, String> {
    if let Ok(seconds) = value.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(seconds));
    }
    humantime::parse_duration(value).map_err(|e| format!("{value:?}: {e}"))
}
