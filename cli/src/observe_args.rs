//! The operators' flags and commands (issue 19): the node's monitoring port and log
//! format, `swarmr events` and `swarmr info`.

use std::net::SocketAddr;

use clap::{Args, Subcommand, ValueEnum};

#[derive(Args, Clone)]
pub struct NodeObserveArgs {
    /// Serve /metrics (Prometheus), /healthz and, on managers, the dashboard at IP:PORT.
    /// Plain HTTP on a loopback address; any other address speaks only the cluster's mutual
    /// TLS with a client certificate (`swarmr ca issue-client`). Off by default.
    #[arg(long, value_name = "IP:PORT")]
    pub http_addr: Option<SocketAddr>,
    /// How the node logs on stderr: `text`, or `json` (one object per line, with the
    /// node, task and network ids as fields).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum LogFormat {
    Text,
    Json,
}

/// `swarmr events` and `swarmr info`, flattened into the top-level commands.
#[derive(Subcommand)]
pub enum ObserveCommand {
    /// Stream changes to the cluster as they commit, as `docker events` does.
    Events(EventsArgs),
    /// Show the cluster at a glance (the Swarm section of `docker info`).
    Info(InfoArgs),
}

#[derive(Args)]
pub struct EventsArgs {
    /// `type=service|node|network|task|secret|config` or `name=NAME|ID` (repeatable;
    /// values of one key are alternatives).
    #[arg(long = "filter", short = 'f')]
    pub filters: Vec<String>,
    /// `json` prints one JSON object per line in Docker's shape; `text` (default) a line.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Also show the events this manager kept since then: a duration (`10m`), an RFC 3339
    /// time or unix seconds.
    #[arg(long)]
    pub since: Option<String>,
}

#[derive(Args)]
pub struct InfoArgs {
    /// `json` prints the whole answer as one JSON object; `text` (default) a summary.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}
