//! Errors of IP address and VXLAN id management, one variant per failure.

use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use thiserror::Error;

/// Which reserved role an address plays in its subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressRole {
    Network,
    Broadcast,
    Gateway,
}

impl fmt::Display for AddressRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressRole::Network => "network",
            AddressRole::Broadcast => "broadcast",
            AddressRole::Gateway => "gateway",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IpamError {
    /// `network create --subnet` did not parse as IPv4 CIDR.
    #[error("invalid subnet {input:?}: use CIDR notation like 10.0.9.0/24")]
    InvalidSubnet {
        input: String,
        #[source]
        source: ipnet::AddrParseError,
    },
    /// A subnet was given with host bits set (`10.0.9.5/24`).
    #[error("invalid subnet {input:?}: the address has host bits set; use {network}")]
    SubnetHostBits { input: String, network: Ipv4Net },
    /// /31 and /32 cannot hold a network, a gateway, a task and a broadcast address.
    #[error("subnet {subnet} is too small: it must hold a gateway and at least one task; use /30 or larger")]
    SubnetTooSmall { subnet: Ipv4Net },
    /// A user-given subnet clashes with the subnet of an existing network.
    #[error("subnet {subnet} overlaps {existing}, the subnet of an existing network: choose a subnet that does not overlap it, or remove that network first")]
    SubnetOverlap { subnet: Ipv4Net, existing: Ipv4Net },
    /// `--gateway` did not parse as an IPv4 address.
    #[error("invalid gateway {input:?}: use an IPv4 address like 10.0.9.1")]
    InvalidGateway {
        input: String,
        #[source]
        source: std::net::AddrParseError,
    },
    #[error("gateway {gateway} is outside subnet {subnet}: use an address inside it, such as {suggestion}")]
    GatewayOutsideSubnet {
        gateway: Ipv4Addr,
        subnet: Ipv4Net,
        suggestion: Ipv4Addr,
    },
    /// The gateway would be the network or broadcast address.
    #[error("gateway {gateway} is the {role} address of {subnet}: use a host address, such as {suggestion}")]
    GatewayNotHost {
        gateway: Ipv4Addr,
        subnet: Ipv4Net,
        role: AddressRole,
        suggestion: Ipv4Addr,
    },
    /// Every host address of the network is held by a task, a VIP or the gateway.
    #[error("no free address in {subnet} (all {capacity} in use): remove services or tasks on this network, or create a network with a larger subnet")]
    Exhausted { subnet: Ipv4Net, capacity: u64 },
    /// An address handed to `reserve`/`release` belongs to another subnet.
    #[error("address {ip} is not in subnet {subnet}")]
    AddressOutsideSubnet { ip: Ipv4Addr, subnet: Ipv4Net },
    /// The network, broadcast or gateway address cannot be given to a task or VIP.
    #[error("address {ip} is the {role} address of {subnet} and cannot be given to a task or VIP")]
    AddressNotAssignable {
        ip: Ipv4Addr,
        subnet: Ipv4Net,
        role: AddressRole,
    },
    /// A persisted allocation cursor is not a host address of the subnet.
    #[error("allocation cursor {cursor} is not a host address of {subnet}")]
    CursorOutsideSubnet { cursor: Ipv4Addr, subnet: Ipv4Net },
    /// Every subnet of the mask length in the default pools overlaps an existing network.
    #[error("no free /{mask_len} subnet left in the default address pools ({pools}): remove unused networks, or give the network an explicit --subnet")]
    PoolsExhausted { mask_len: u8, pools: String },
    /// `init --default-addr-pool` did not parse as IPv4 CIDR.
    #[error("invalid default address pool {input:?}: use CIDR notation like 10.0.0.0/8")]
    InvalidPool {
        input: String,
        #[source]
        source: ipnet::AddrParseError,
    },
    #[error(
        "invalid default address pool {input:?}: the address has host bits set; use {network}"
    )]
    PoolHostBits { input: String, network: Ipv4Net },
    #[error(
        "no default address pool given: give at least one, like --default-addr-pool 10.0.0.0/8"
    )]
    NoPools,
    #[error("default address pools {first} and {second} overlap: give pools that do not overlap")]
    PoolOverlap { first: Ipv4Net, second: Ipv4Net },
    /// The mask length would make subnets bigger than the pool they are cut from.
    #[error("default address pool mask length {mask_len} is shorter than the prefix of pool {pool}: use a mask length of at least {}", pool.prefix_len())]
    MaskShorterThanPool { mask_len: u8, pool: Ipv4Net },
    #[error("default address pool mask length {mask_len} is too long: each network needs at least 8 addresses; use 29 or less")]
    MaskTooLong { mask_len: u8 },
    /// VXLAN ids are 24 bits and 0 is not a valid id.
    #[error("VXLAN id {vni} is out of range: use 1 to 16777215")]
    VniOutOfRange { vni: u32 },
    #[error("no free VXLAN id left (all from {first} to {last} are in use): remove unused overlay networks")]
    VnisExhausted { first: u32, last: u32 },
}
