//! Checks of user input: `network create --subnet/--gateway` and
//! `init --default-addr-pool/--default-addr-pool-mask-length`.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::error::{AddressRole, IpamError};

/// Swarm's default address pool.
pub const DEFAULT_POOL: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 0, 0), 8);
/// Swarm's default size of the subnets cut from the pools.
pub const DEFAULT_MASK_LEN: u8 = 24;
/// The longest prefix a network may have: network, gateway, one task, broadcast.
pub const MAX_SUBNET_PREFIX: u8 = 30;
/// The longest mask length of subnets cut from the default pools.
pub const MAX_POOL_MASK_LEN: u8 = 29;

/// The default pools, `[10.0.0.0/8]`.
pub fn default_pools() -> Vec<Ipv4Net> {
    vec![DEFAULT_POOL]
}

/// Parses `--subnet`: IPv4 CIDR, no host bits, room for a gateway and a task.
pub fn parse_subnet(input: &str) -> Result<Ipv4Net, IpamError> {
    let net: Ipv4Net = input
        .trim()
        .parse()
        .map_err(|source| IpamError::InvalidSubnet {
            input: input.to_owned(),
            source,
        })?;
    if net != net.trunc() {
        return Err(IpamError::SubnetHostBits {
            input: input.to_owned(),
            network: net.trunc(),
        });
    }
    check_subnet_size(net)?;
    Ok(net)
}

/// Refuses /31 and /32: they cannot hold a gateway and one task besides the
/// network and broadcast addresses.
pub fn check_subnet_size(subnet: Ipv4Net) -> Result<(), IpamError> {
    if subnet.prefix_len() > MAX_SUBNET_PREFIX {
        return Err(IpamError::SubnetTooSmall { subnet });
    }
    Ok(())
}

/// Parses `--gateway` and checks it against the (already valid) subnet.
pub fn parse_gateway(input: &str, subnet: Ipv4Net) -> Result<Ipv4Addr, IpamError> {
    let gateway: Ipv4Addr = input
        .trim()
        .parse()
        .map_err(|source| IpamError::InvalidGateway {
            input: input.to_owned(),
            source,
        })?;
    check_gateway(gateway, subnet)?;
    Ok(gateway)
}

/// The gateway must be a host address of the subnet: inside it, and neither
/// its network nor its broadcast address.
pub fn check_gateway(gateway: Ipv4Addr, subnet: Ipv4Net) -> Result<(), IpamError> {
    let suggestion = first_host(subnet);
    if !subnet.contains(&gateway) {
        return Err(IpamError::GatewayOutsideSubnet {
            gateway,
            subnet,
            suggestion,
        });
    }
    let role = if gateway == subnet.network() {
        AddressRole::Network
    } else if gateway == subnet.broadcast() {
        AddressRole::Broadcast
    } else {
        return Ok(());
    };
    Err(IpamError::GatewayNotHost {
        gateway,
        subnet,
        role,
        suggestion,
    })
}

/// The first host address (`.1` of a /24): the default gateway.
pub fn first_host(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()).saturating_add(1))
}

/// Parses the values of `--default-addr-pool`, each one CIDR or a
/// comma-separated list, in the order given.
pub fn parse_pools<S: AsRef<str>>(inputs: &[S]) -> Result<Vec<Ipv4Net>, IpamError> {
    let mut pools = Vec::new();
    for part in inputs
        .iter()
        .flat_map(|s| s.as_ref().split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let net: Ipv4Net = part.parse().map_err(|source| IpamError::InvalidPool {
            input: part.to_owned(),
            source,
        })?;
        if net != net.trunc() {
            return Err(IpamError::PoolHostBits {
                input: part.to_owned(),
                network: net.trunc(),
            });
        }
        pools.push(net);
    }
    Ok(pools)
}

/// Checks the pools and mask length given to `init`: at least one pool, no two
/// overlapping, and every pool's prefix <= mask length <= 29.
pub fn check_pools(pools: &[Ipv4Net], mask_len: u8) -> Result<(), IpamError> {
    if pools.is_empty() {
        return Err(IpamError::NoPools);
    }
    if mask_len > MAX_POOL_MASK_LEN {
        return Err(IpamError::MaskTooLong { mask_len });
    }
    for (i, &first) in pools.iter().enumerate() {
        if mask_len < first.prefix_len() {
            return Err(IpamError::MaskShorterThanPool {
                mask_len,
                pool: first,
            });
        }
        if let Some(&second) = pools[i + 1..].iter().find(|p| overlaps(first, **p)) {
            return Err(IpamError::PoolOverlap { first, second });
        }
    }
    Ok(())
}

/// Whether two CIDR blocks share an address (one then contains the other).
pub fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn subnet_parsing_table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("10.0.9.0/24", Ok("10.0.9.0/24")),
            (" 10.0.9.0/24 ", Ok("10.0.9.0/24")),
            ("10.0.9.0/30", Ok("10.0.9.0/30")),
            ("10.1.0.0/16", Ok("10.1.0.0/16")),
            (
                "10.0.0.0/33",
                Err("invalid subnet \"10.0.0.0/33\": use CIDR notation like 10.0.9.0/24"),
            ),
            (
                "10.0.9.0",
                Err("invalid subnet \"10.0.9.0\": use CIDR notation like 10.0.9.0/24"),
            ),
            (
                "fd00::/64",
                Err("invalid subnet \"fd00::/64\": use CIDR notation like 10.0.9.0/24"),
            ),
            (
                "10.0.9.5/24",
                Err("invalid subnet \"10.0.9.5/24\": the address has host bits set; use 10.0.9.0/24"),
            ),
            (
                "10.0.9.0/31",
                Err("subnet 10.0.9.0/31 is too small: it must hold a gateway and at least one task; use /30 or larger"),
            ),
            (
                "10.0.9.7/32",
                Err("subnet 10.0.9.7/32 is too small: it must hold a gateway and at least one task; use /30 or larger"),
            ),
        ];
        for (input, want) in cases {
            let got = parse_subnet(input)
                .map(|n| n.to_string())
                .map_err(|e| e.to_string());
            assert_eq!(
                got,
                want.map(str::to_owned).map_err(str::to_owned),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn gateway_table() {
        let subnet = net("10.0.9.0/24");
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("10.0.9.1", Ok("10.0.9.1")),
            ("10.0.9.254", Ok("10.0.9.254")),
            (
                "10.0.9.0",
                Err("gateway 10.0.9.0 is the network address of 10.0.9.0/24: use a host address, such as 10.0.9.1"),
            ),
            (
                "10.0.9.255",
                Err("gateway 10.0.9.255 is the broadcast address of 10.0.9.0/24: use a host address, such as 10.0.9.1"),
            ),
            (
                "10.0.10.1",
                Err("gateway 10.0.10.1 is outside subnet 10.0.9.0/24: use an address inside it, such as 10.0.9.1"),
            ),
            (
                "10.0.9.x",
                Err("invalid gateway \"10.0.9.x\": use an IPv4 address like 10.0.9.1"),
            ),
        ];
        for (input, want) in cases {
            let got = parse_gateway(input, subnet)
                .map(|g| g.to_string())
                .map_err(|e| e.to_string());
            assert_eq!(
                got,
                want.map(str::to_owned).map_err(str::to_owned),
                "input {input:?}"
            );
        }
        // The smallest accepted subnet still has two host addresses.
        assert!(check_gateway("10.0.9.2".parse().unwrap(), net("10.0.9.0/30")).is_ok());
        assert!(check_gateway("10.0.9.3".parse().unwrap(), net("10.0.9.0/30")).is_err());
    }

    #[test]
    fn pool_table() {
        let cases: &[(&[&str], u8, Result<(), &str>)] = &[
            (&["10.0.0.0/8"], 24, Ok(())),
            (&["10.0.0.0/8,192.168.0.0/16"], 24, Ok(())),
            (&["10.10.0.0/16", "10.20.0.0/16"], 16, Ok(())),
            (&["10.0.0.0/8"], 29, Ok(())),
            (
                &["10.0.0.0/8"],
                30,
                Err("default address pool mask length 30 is too long: each network needs at least 8 addresses; use 29 or less"),
            ),
            (
                &["10.0.0.0/16"],
                8,
                Err("default address pool mask length 8 is shorter than the prefix of pool 10.0.0.0/16: use a mask length of at least 16"),
            ),
            (
                &["10.0.0.0/8", "10.20.0.0/16"],
                24,
                Err("default address pools 10.0.0.0/8 and 10.20.0.0/16 overlap: give pools that do not overlap"),
            ),
            (
                &["10.0.0.0/8", "10.0.0.0/8"],
                24,
                Err("default address pools 10.0.0.0/8 and 10.0.0.0/8 overlap: give pools that do not overlap"),
            ),
            (
                &[""],
                24,
                Err("no default address pool given: give at least one, like --default-addr-pool 10.0.0.0/8"),
            ),
            (
                &["10.0.0.0/8,10.300.0.0/16"],
                24,
                Err("invalid default address pool \"10.300.0.0/16\": use CIDR notation like 10.0.0.0/8"),
            ),
            (
                &["10.1.0.0/8"],
                24,
                Err("invalid default address pool \"10.1.0.0/8\": the address has host bits set; use 10.0.0.0/8"),
            ),
        ];
        for (inputs, mask_len, want) in cases {
            let got = parse_pools(inputs)
                .and_then(|p| check_pools(&p, *mask_len))
                .map_err(|e| e.to_string());
            assert_eq!(
                got,
                want.map_err(str::to_owned),
                "inputs {inputs:?} /{mask_len}"
            );
        }
        assert_eq!(
            parse_pools(&["10.0.0.0/8, 192.168.0.0/16", "172.16.0.0/12"]).unwrap(),
            vec![
                net("10.0.0.0/8"),
                net("192.168.0.0/16"),
                net("172.16.0.0/12")
            ],
            "order is kept"
        );
    }

    #[test]
    fn same_input_twice_gives_same_answer() {
        for _ in 0..2 {
            assert_eq!(parse_subnet("10.0.9.0/24").unwrap(), net("10.0.9.0/24"));
            assert!(check_pools(&default_pools(), DEFAULT_MASK_LEN).is_ok());
        }
    }
}
