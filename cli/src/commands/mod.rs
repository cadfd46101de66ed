//! Client commands, one file per group.

pub mod ca;
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
