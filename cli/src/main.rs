//! `swarmr`: the node daemon (`init`, `join`) and the client commands, Docker-style.
//!
//! Layout: `args` holds the clap definitions; `daemon/` runs a node; `commands/` has one
//! file per command group; `client` connects to a node; `output` prints tables and JSON.

mod args;
mod client;
mod commands;
mod daemon;
mod docker_api_args;
mod observe_args;
mod output;
mod rollout_args;
mod secret_args;
mod workload_args;
mod workload_parse;
mod workload_update;

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

use args::{Cli, Command};
use observe_args::ObserveCommand;

fn main() -> ExitCode {
    let cli = Cli::parse();
    client::use_tls_dir(cli.tls_dir.clone());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {}", output::error_text(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init(args) => daemon::init(args).await,
        Command::Join(args) => daemon::join(args).await,
        Command::Leave(args) => commands::swarm::leave(&cli.host, args).await,
        Command::JoinToken(args) => commands::swarm::join_token(&cli.host, args).await,
        Command::Node(cmd) => commands::node::run(&cli.host, cmd).await,
        Command::Network(cmd) => commands::network::run(&cli.host, cmd).await,
        Command::Service(cmd) => commands::service::run(&cli.host, cmd).await,
        Command::Ca(cmd) => commands::ca::run(&cli.host, cmd).await,
        Command::Sealed(cmd) => commands::secret::run(&cli.host, cmd).await,
        Command::Observe(ObserveCommand::Events(args)) => {
            commands::events::run(&cli.host, args).await
        }
        Command::Observe(ObserveCommand::Info(args)) => commands::info::run(&cli.host, args).await,
        Command::Completion { shell } => {
            commands::print_completions(shell);
            Ok(())
        }
    }
}
