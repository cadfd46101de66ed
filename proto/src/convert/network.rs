//! Networks and published ports as every crate reads them: the routing mesh's network,
//! Docker's spellings of protocols and publish modes, addresses without their prefix.

use std::net::Ipv4Addr;

use crate::{Network, PortProtocol, PublishMode};

impl Network {
    /// The routing mesh's network (`ingress`).
    pub fn is_ingress(&self) -> bool {
        self.spec.as_ref().is_some_and(|s| s.ingress)
    }
}

impl PortProtocol {
    pub fn label(self) -> &'static str {
        match self {
            PortProtocol::Tcp => "tcp",
            PortProtocol::Udp => "udp",
        }
    }
}

impl PublishMode {
    pub fn label(self) -> &'static str {
        match self {
            PublishMode::Ingress => "ingress",
            PublishMode::Host => "host",
        }
    }
}

/// `10.0.0.5/24` (or `10.0.0.5`) → `10.0.0.5`; `None` if it is no IPv4 address.
pub fn addr_ip(addr: &str) -> Option<Ipv4Addr> {
    addr.split('/').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_lose_their_prefix() {
        assert_eq!(addr_ip("10.0.0.5/24"), Some(Ipv4Addr::new(10, 0, 0, 5)));
        assert_eq!(addr_ip("10.0.0.5"), Some(Ipv4Addr::new(10, 0, 0, 5)));
        assert_eq!(addr_ip(""), None);
    }
}
