//! Turning the node flags into checked settings: data dir, addresses, hostname.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use swarmr_worker::network::discovery::VipMode;

use crate::args::NodeArgs;

pub struct Settings {
    pub data_dir: PathBuf,
    pub listen_addr: SocketAddr,
    /// IP:PORT other nodes dial.
    pub api_addr: String,
    pub hostname: String,
    pub snapshot_interval: u64,
    /// Where the embedded DNS forwards names that are not the cluster's.
    pub dns_upstreams: Vec<SocketAddr>,
    /// Egress and published ports in the node namespace.
    pub host_net: swarmr_worker::network::mesh::HostNet,
    pub vip_mode: VipMode,
    /// Forward overlay frames past the sandbox bridge by BPF where it loads.
    pub overlay_fast_path: bool,
    /// Where the Docker API listens on TCP (with mutual TLS), if anywhere.
    pub docker_api_addr: Option<SocketAddr>,
    /// The monitoring port (`--http-addr`), if any.
    pub http_addr: Option<SocketAddr>,
    /// What the node reports instead of the engine's CPUs and memory, if set.
    pub resources: crate::workload_args::NodeResourceFlags,
    /// Wraps the data key on a manager; never inside the data dir.
    pub secrets_key_file: PathBuf,
}

impl Settings {
    pub fn resolve(args: &NodeArgs) -> anyhow::Result<Self> {
        let advertise_ip = match &args.advertise_addr {
            Some(text) => parse_advertise(text, args.listen_addr.port())?,
            None if !args.listen_addr.ip().is_unspecified() => args.listen_addr,
            None => SocketAddr::new(default_route_ip()?, args.listen_addr.port()),
        };
        if args.snapshot_interval < 10 {
            bail!("--snapshot-interval must be at least 10 entries");
        }
        let egress_subnet: swarmr_worker::network::mesh::Ipv4Net = args
            .egress_subnet
            .parse()
            .ok()
            .filter(|n: &swarmr_worker::network::mesh::Ipv4Net| (8..=29).contains(&n.prefix_len()))
            .ok_or_else(|| {
                anyhow!(
                    "invalid --egress-subnet {:?}: use an IPv4 CIDR between /8 and /29, e.g. 172.18.0.0/16",
                    args.egress_subnet
                )
            })?;
        let secrets_key_file = std::path::absolute(&args.keys.secrets_key_file)?;
        if secrets_key_file.starts_with(std::path::absolute(&args.data_dir)?) {
            bail!(
                "--secrets-key-file {} is inside the data dir: keep it elsewhere (e.g. the default /etc/swarmr/secrets.key), or a copy of the data dir reveals every secret",
                secrets_key_file.display()
            );
        }
        Ok(Self {
            secrets_key_file,
            data_dir: args.data_dir.clone(),
            listen_addr: args.listen_addr,
            api_addr: advertise_ip.to_string(),
            hostname: match &args.hostname {
                Some(name) if !name.trim().is_empty() => name.trim().to_string(),
                Some(_) => bail!("--hostname must not be empty"),
                None => system_hostname(),
            },
            snapshot_interval: args.snapshot_interval,
            dns_upstreams: if args.dns_upstream.is_empty() {
                swarmr_worker::network::discovery::host_resolvers()
            } else {
                args.dns_upstream
                    .iter()
                    .map(|text| parse_upstream(text))
                    .collect::<anyhow::Result<_>>()?
            },
            host_net: swarmr_worker::network::mesh::HostNet {
                enabled: !args.no_host_rules,
                egress_subnet: swarmr_worker::network::mesh::Ipv4Net::new(
                    egress_subnet.network(),
                    egress_subnet.prefix_len(),
                )?,
                node_pid: std::process::id(),
            },
            vip_mode: match args.vip_balancer.as_str() {
                "nftables" => VipMode::Nftables,
                _ => VipMode::Auto,
            },
            overlay_fast_path: args.overlay_forwarding != "bridge",
            docker_api_addr: args.extra.docker_api_addr,
            http_addr: args.observe.http_addr,
            resources: args.extra.resources.clone(),
        })
    }
}

fn parse_advertise(text: &str, default_port: u16) -> anyhow::Result<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let ip: IpAddr = text.parse().map_err(|_| {
        anyhow!("invalid --advertise-addr {text:?}: use an IP address, optionally with :PORT")
    })?;
    if ip.is_unspecified() {
        bail!(
            "--advertise-addr {text} is not an address other nodes can reach: use this node's IP"
        );
    }
    Ok(SocketAddr::new(ip, default_port))
}

fn parse_upstream(text: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let ip: IpAddr = text.parse().map_err(|_| {
        anyhow!("invalid --dns-upstream {text:?}: use an IP address, optionally with :PORT")
    })?;
    Ok(SocketAddr::new(ip, 53))
}

/// The source address the kernel would use for an outside destination. Connecting a UDP
/// socket only consults the routing table: no packet is sent.
fn default_route_ip() -> anyhow::Result<IpAddr> {
    let pick = || -> std::io::Result<IpAddr> {
        let socket = UdpSocket::bind("0.0.0.0:0")?;
        socket.connect("192.0.2.1:9")?;
        Ok(socket.local_addr()?.ip())
    };
    pick().context("could not choose an advertise address: pass --advertise-addr <IP>")
}

fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertise_takes_ip_or_ip_port() {
        assert_eq!(
            parse_advertise("192.0.2.5", 2377).unwrap().to_string(),
            "192.0.2.5:2377"
        );
        assert_eq!(
            parse_advertise("192.0.2.5:4000", 2377).unwrap().port(),
            4000
        );
        let err = parse_advertise("not-an-ip", 2377).unwrap_err().to_string();
        assert!(err.contains("invalid --advertise-addr"), "{err}");
        assert!(parse_advertise("0.0.0.0", 2377).is_err());
    }
}
