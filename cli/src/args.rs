//! The command line, mirroring `docker swarm`, `docker node` and friends.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

pub use crate::commands::{parse_replicas, parse_timeout};

pub const DEFAULT_DATA_DIR: &str = "/var/lib/swarmr";

/// Shown under `swarmr --help`, so a newcomer needs no README.
const GETTING_STARTED: &str = "\
Getting started (as root, Docker running; ports 2377/tcp and 4789/udp open between nodes):
  swarmr init --advertise-addr 10.1.0.11                  # first manager, runs in the foreground
  swarmr join-token worker                                # on a manager: the join command
  swarmr join --token SWMTKN-1-... 10.1.0.11:2377         # on another machine
  swarmr network create --driver overlay my-overlay
  swarmr service create --network my-overlay --replicas 3 --name web my-service
  swarmr service ps web
  swarmr network inspect my-overlay                       # every container, on every node

Every client command talks to the local node's socket unless -H names another.
Running deploy/systemd/swarmr.service and operating a cluster: deploy/OPERATIONS.md.";

#[derive(Parser)]
#[command(
    name = "swarmr",
    version,
    about = "A Swarm-like container orchestrator with a built-in VXLAN overlay",
    after_help = GETTING_STARTED
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

    /// Directory with ca.crt, client.crt and client.key (from `swarmr ca issue-client`),
    /// for talking to a manager's IP:PORT over mutual TLS.
    #[arg(long, global = true, env = "SWARMR_TLS_DIR")]
    pub tls_dir: Option<PathBuf>,

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
    /// Manage services.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// The cluster CA: certificates for remote CLI access.
    #[command(subcommand)]
    Ca(CaCommand),
    #[command(flatten)]
    Sealed(crate::secret_args::SealedCommand),
    #[command(flatten)]
    Observe(crate::observe_args::ObserveCommand),
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
    /// Raft entries between snapshots; the log before a snapshot is purged. Docker's
    /// default: a snapshot walks the whole state, and every 1,000 entries cost a quarter of
    /// the committed writes at 10,000 networks.
    #[arg(long, default_value_t = 10_000, hide = true)]
    pub snapshot_interval: u64,
    /// Resolvers the embedded DNS forwards non-cluster names to (IP or IP:PORT, repeatable
    /// or comma-separated; default: the nameservers of this host's /etc/resolv.conf).
    #[arg(long = "dns-upstream", value_delimiter = ',')]
    pub dns_upstream: Vec<String>,
    /// Node-local subnet of the egress bridge: tasks' way out (masqueraded), ports' way in.
    #[arg(long, default_value = "172.18.0.0/16")]
    pub egress_subnet: String,
    /// Leave this node's own network namespace alone: no egress bridge, no published
    /// ports (for several nodes sharing one namespace, as the loopback tests do).
    #[arg(long)]
    pub no_host_rules: bool,
    /// How VIPs are balanced: `auto` = BPF at the socket where it loads, else nftables NAT.
    #[arg(long, env = "SWARMR_VIP_BALANCER", default_value = "auto", value_parser = ["auto", "nftables"])]
    pub vip_balancer: String,
    /// How sandboxes forward: `auto` = unicast past the bridge by tc BPF where it loads.
    #[arg(long, env = "SWARMR_OVERLAY_FORWARDING", default_value = "auto", value_parser = ["auto", "bridge"])]
    pub overlay_forwarding: String,
    #[command(flatten)]
    pub extra: crate::docker_api_args::NodeExtraArgs,
    #[command(flatten)]
    pub keys: crate::secret_args::KeyArgs,
    #[command(flatten)]
    pub observe: crate::observe_args::NodeObserveArgs,
}

#[derive(Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// How often workers heartbeat; a node is Down after three missed periods.
    #[arg(long, default_value = "800ms", value_parser = humantime::parse_duration)]
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
    /// Lifetime of node certificates; nodes renew theirs half-way through.
    #[arg(long, default_value = "90d", value_parser = humantime::parse_duration)]
    pub cert_expiry: Duration,
}

#[derive(Subcommand)]
pub enum CaCommand {
    /// Issue a client certificate for remote CLI access (run on a manager): writes ca.crt,
    /// client.crt, client.key (0600) to DIR, for `swarmr --tls-dir DIR -H <IP:2377> ...`.
    IssueClient {
        #[arg(long)]
        out: PathBuf,
    },
    /// List the client certificates on record that have not expired.
    Ls,
    /// Refuse a client certificate from now on, on every manager.
    Revoke { id: String },
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
    /// Compare every node's kernel (sandboxes, devices, addresses, FDB and neighbour
    /// entries, egress, published-port rules and routes) with the cluster state; print
    /// each difference. Exits 0 only when every node matches.
    Check {
        /// `table` (default) or `json` (one object per difference or unchecked node).
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
}

#[derive(Subcommand)]
pub enum ServiceCommand {
    /// Create a service; waits until its tasks run unless -d.
    Create(Box<ServiceCreateArgs>),
    /// List services.
    #[command(alias = "list")]
    Ls(ListArgs),
    /// List the tasks of services, with the earlier tasks of each slot.
    Ps {
        #[command(flatten)]
        list: ListArgs,
        /// Do not truncate ids, images and errors.
        #[arg(long)]
        no_trunc: bool,
        #[arg(required = true)]
        services: Vec<String>,
    },
    /// Show services in detail (JSON array).
    Inspect {
        /// Print a readable summary instead of JSON.
        #[arg(long)]
        pretty: bool,
        #[arg(required = true)]
        services: Vec<String>,
    },
    /// Remove services.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        services: Vec<String>,
    },
    /// Scale replicated services: SERVICE=REPLICAS...
    Scale {
        #[command(flatten)]
        wait: WaitArgs,
        #[arg(required = true, value_name = "SERVICE=REPLICAS")]
        scales: Vec<String>,
    },
    /// Change a service; its tasks are replaced group by group when their template
    /// changes. Waits until the update completes unless -d.
    Update(Box<crate::rollout_args::ServiceUpdateArgs>),
    /// Return a service to the spec it had before its last update.
    Rollback {
        #[command(flatten)]
        wait: WaitArgs,
        service: String,
    },
    /// Print the output of a service's tasks.
    Logs {
        /// Keep printing new output.
        #[arg(long, short)]
        follow: bool,
        /// Number of lines to show from the end of each task's output, or `all`.
        #[arg(long, short = 'n', default_value = "all")]
        tail: String,
        service: String,
    },
}

/// How `service create` and `service scale` wait for the tasks to run.
#[derive(Args, Clone)]
pub struct WaitArgs {
    /// Return at once instead of waiting for the tasks to run.
    #[arg(long, short)]
    pub detach: bool,
    /// Do not show progress while waiting.
    #[arg(long, short)]
    pub quiet: bool,
    /// Give up waiting after this long (e.g. 60s, 2m).
    #[arg(
        long,
        hide = true,
        env = "SWARMR_CONVERGE_TIMEOUT",
        default_value = "60s",
        value_parser = parse_timeout
    )]
    pub converge_timeout: Duration,
}

#[derive(Args)]
pub struct ServiceCreateArgs {
    /// Service name (default: the image's base name).
    #[arg(long)]
    pub name: Option<String>,
    /// Publish a port: `PUBLISHED:TARGET[/udp]`, or
    /// `published=P,target=T[,protocol=tcp|udp][,mode=ingress|host]` (repeatable).
    #[arg(long, short = 'p')]
    pub publish: Vec<String>,
    /// Attach to an overlay network, by name or id (repeatable).
    #[arg(long)]
    pub network: Vec<String>,
    /// Number of tasks (replicated mode; default 1).
    #[arg(long, allow_negative_numbers = true, value_parser = parse_replicas)]
    pub replicas: Option<u64>,
    /// `replicated` (a fixed number of tasks) or `global` (one task per node).
    #[arg(long, default_value = "replicated", value_parser = ["replicated", "global"])]
    pub mode: String,
    /// Environment variable KEY=VALUE, or KEY to copy it from here (repeatable).
    #[arg(long, short)]
    pub env: Vec<String>,
    /// Service label key=value (repeatable).
    #[arg(long)]
    pub label: Vec<String>,
    /// Container label key=value (repeatable).
    #[arg(long)]
    pub container_label: Vec<String>,
    /// Placement constraint, e.g. node.role==manager or node.labels.zone!=a (repeatable).
    #[arg(long)]
    pub constraint: Vec<String>,
    /// When to restart a task's container.
    #[arg(long, default_value = "any", value_parser = ["any", "on-failure", "none"])]
    pub restart_condition: String,
    /// Wait between restarts (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub restart_delay: Duration,
    /// Give up restarting after this many attempts (0 = never give up).
    #[arg(long, default_value_t = 0)]
    pub restart_max_attempts: u64,
    /// How other tasks reach the service: `vip` (one virtual IP) or `dnsrr` (DNS round robin).
    #[arg(long, default_value = "vip", value_parser = ["vip", "dnsrr"])]
    pub endpoint_mode: String,
    #[command(flatten)]
    pub rollout: crate::rollout_args::RolloutFlags,
    #[command(flatten)]
    pub container_flags: crate::rollout_args::ContainerFlags,
    #[command(flatten)]
    pub workload: crate::workload_args::WorkloadFlags,
    #[command(flatten)]
    pub files: crate::secret_args::FileFlags,
    #[command(flatten)]
    pub wait: WaitArgs,
    /// Image to run.
    pub image: String,
    /// Command and arguments to run instead of the image's default.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}
