//! The command line, mirroring `docker swarm`, `docker node` and friends.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};

pub const DEFAULT_DATA_DIR: &str = "/var/lib/swarmr";

#[derive(Parser)]
#[command(
    name = "swarmr",
    version,
    about = "A Swarm-like container orchestrator with a built-in VXLAN overlay"
)]
pub struct Cli {
    /// Node to talk to: unix:///path/swarmr.sock, or IP:PORT of a manager.
    #[arg(
        long,
        short = 'H',
        global = true,
        env = "SWARMR_HOST",
        default_value = "unix:///var/lib/swarmr/swarmr.sock"
    )]
    pub host: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Start a new cluster with this node as its first manager (runs the node in the foreground).
    Init(InitArgs),
    /// Join a cluster as a worker or a manager, by token (runs the node in the foreground).
    Join(JoinArgs),
    /// Make the node this talks to leave the cluster.
    Leave(LeaveArgs),
    /// Show or rotate a join token.
    JoinToken(JoinTokenArgs),
    /// Manage the cluster's nodes.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Manage overlay networks.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Print a shell completion script (bash, zsh, fish, ...).
    Completion { shell: clap_complete::Shell },
}

#[derive(Args, Clone)]
pub struct NodeArgs {
    /// Where the node keeps its state, certificates and control socket.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Address the gRPC port listens on.
    #[arg(long, default_value = "0.0.0.0:2377")]
    pub listen_addr: SocketAddr,
    /// Address other nodes reach this one at (IP or IP:PORT); also the VXLAN endpoint.
    #[arg(long)]
    pub advertise_addr: Option<String>,
    /// Node name shown in `node ls` (default: the system hostname).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Raft entries between snapshots; the log before a snapshot is purged.
    #[arg(long, default_value_t = 1000, hide = true)]
    pub snapshot_interval: u64,
}

#[derive(Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// How often workers heartbeat; a node is Down after three missed periods.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub dispatcher_heartbeat: Duration,
    /// Restart this manager as the only one, keeping the state (recovery from quorum loss).
    #[arg(long)]
    pub force_new_cluster: bool,
    /// Address pools overlay subnets are cut from (CIDR, repeatable or comma-separated).
    #[arg(
        long = "default-addr-pool",
        value_delimiter = ',',
        default_value = "10.0.0.0/8"
    )]
    pub default_addr_pool: Vec<String>,
    /// Prefix length of the subnets cut from the pools.
    #[arg(long = "default-addr-pool-mask-length", default_value_t = 24)]
    pub default_addr_pool_mask_length: u8,
}

#[derive(Args)]
pub struct JoinArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// The join token from `swarmr join-token worker|manager`.
    #[arg(long, env = "SWARMR_JOIN_TOKEN")]
    pub token: String,
    /// A manager's address, IP:PORT.
    pub remote: String,
}

#[derive(Args)]
pub struct LeaveArgs {
    /// Leave even if this node is a manager.
    #[arg(long, short)]
    pub force: bool,
}

#[derive(Args)]
pub struct JoinTokenArgs {
    /// worker or manager
    #[arg(value_parser = ["worker", "manager"])]
    pub role: String,
    /// Only print the token.
    #[arg(long, short)]
    pub quiet: bool,
    /// Replace the token; the old one admits no new node.
    #[arg(long)]
    pub rotate: bool,
}

#[derive(Args)]
pub struct ListArgs {
    /// Only print ids.
    #[arg(long, short)]
    pub quiet: bool,
    /// `json` prints one JSON object per line; `table` (default) a table.
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
}

#[derive(Subcommand)]
pub enum NodeCommand {
    /// List nodes.
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Show nodes in detail (JSON array).
    Inspect {
        #[arg(required = true)]
        nodes: Vec<String>,
    },
    /// Change a node's availability or labels.
    Update {
        #[arg(long, value_parser = ["active", "pause", "drain"])]
        availability: Option<String>,
        /// Add or change a label (key=value).
        #[arg(long = "label-add")]
        label_add: Vec<String>,
        /// Remove a label by key.
        #[arg(long = "label-rm")]
        label_rm: Vec<String>,
        node: String,
    },
    /// Make nodes managers.
    Promote {
        #[arg(required = true)]
        nodes: Vec<String>,
    },
    /// Make managers workers.
    Demote {
        #[arg(required = true)]
        nodes: Vec<String>,
    },
    /// Remove nodes from the cluster.
    #[command(alias = "remove")]
    Rm {
        /// Remove even if the node is still Ready.
        #[arg(long, short)]
        force: bool,
        #[arg(required = true)]
        nodes: Vec<String>,
    },
}

#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Create an overlay network.
    Create {
        /// Network driver (only `overlay`).
        #[arg(long, short, default_value = "overlay")]
        driver: String,
        /// Subnet in CIDR form (default: the next free one from the cluster's pools).
        #[arg(long)]
        subnet: Option<String>,
        /// Gateway of the subnet (default: its first address).
        #[arg(long)]
        gateway: Option<String>,
        /// Let standalone containers attach.
        #[arg(long)]
        attachable: bool,
        /// No traffic leaves the network.
        #[arg(long)]
        internal: bool,
        /// Label key=value (repeatable).
        #[arg(long)]
        label: Vec<String>,
        /// Driver option key=value, e.g. com.docker.network.driver.mtu=1400 (repeatable).
        #[arg(long, short)]
        opt: Vec<String>,
        name: String,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        #[command(flatten)]
        list: ListArgs,
        /// Filter, e.g. name=front.
        #[arg(long, short)]
        filter: Vec<String>,
    },
    /// Show networks in detail (JSON array), with every container on every node.
    Inspect {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove networks.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove every network no service uses.
    Prune {
        /// Do not ask for confirmation.
        #[arg(long, short)]
        force: bool,
    },
}

pub fn print_completions(shell: clap_complete::Shell) {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "swarmr", &mut std::io::stdout());
}
