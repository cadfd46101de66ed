//! Errors of the overlay driver, one variant per failed step.

use crate::netlink::Ns;

/// What went wrong underneath a step.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    #[error(transparent)]
    Netlink(Box<rtnetlink::Error>),
    #[error(transparent)]
    Os(#[from] nix::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

impl From<rtnetlink::Error> for Cause {
    fn from(err: rtnetlink::Error) -> Self {
        Cause::Netlink(Box::new(err))
    }
}

impl Cause {
    /// The errno behind the failure, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Cause::Netlink(err) => match err.as_ref() {
                rtnetlink::Error::NetlinkError(msg) => Some(-msg.raw_code()),
                _ => None,
            },
            Cause::Os(errno) => Some(*errno as i32),
            Cause::Io(err) => err.raw_os_error(),
            _ => None,
        }
    }

    /// True for "no such file, device or entry": deletes treat it as done.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(libc_errno::ENOENT) | Some(libc_errno::ENODEV) | Some(libc_errno::ESRCH)
        )
    }
}

/// errno values used for matching.
pub(crate) mod libc_errno {
    pub const ENOENT: i32 = nix::errno::Errno::ENOENT as i32;
    pub const ENODEV: i32 = nix::errno::Errno::ENODEV as i32;
    pub const ESRCH: i32 = nix::errno::Errno::ESRCH as i32;
}

/// A failed step of the driver, with the namespace and object it was about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening a netlink socket inside a namespace.
    #[error("connect netlink in {ns}")]
    ConnectNetlink {
        ns: Ns,
        #[source]
        source: Cause,
    },
    /// No link holds the underlay address.
    #[error("no link in the node namespace holds underlay address {addr}")]
    FindUnderlay { addr: std::net::Ipv4Addr },
    #[error("list sandboxes in {dir}")]
    ListSandboxes {
        dir: String,
        #[source]
        source: Cause,
    },
    #[error("ensure sandbox {name}")]
    EnsureSandbox {
        name: String,
        #[source]
        source: Cause,
    },
    #[error("delete sandbox {name}")]
    DeleteSandbox {
        name: String,
        #[source]
        source: Cause,
    },
    #[error("list links in {ns}")]
    ListLinks {
        ns: Ns,
        #[source]
        source: Cause,
    },
    #[error("list addresses in {ns}")]
    ListAddresses {
        ns: Ns,
        #[source]
        source: Cause,
    },
    #[error("list routes in {ns}")]
    ListRoutes {
        ns: Ns,
        #[source]
        source: Cause,
    },
    #[error("list fdb in {ns}")]
    ListFdb {
        ns: Ns,
        #[source]
        source: Cause,
    },
    #[error("list neighbours in {ns}")]
    ListNeighbours {
        ns: Ns,
        #[source]
        source: Cause,
    },
    #[error("find link {link} in {ns}")]
    FindLink {
        ns: Ns,
        link: String,
        #[source]
        source: Cause,
    },
    #[error("create bridge {link} in {ns}")]
    CreateBridge {
        ns: Ns,
        link: String,
        #[source]
        source: Cause,
    },
    #[error("create vxlan {link} in {ns}")]
    CreateVxlan {
        ns: Ns,
        link: String,
        #[source]
        source: Cause,
    },
    #[error("create veth {link} in {ns}")]
    CreateVeth {
        ns: Ns,
        link: String,
        #[source]
        source: Cause,
    },
    #[error("delete link {link} in {ns}")]
    DeleteLink {
        ns: Ns,
        link: String,
        #[source]
        source: Cause,
    },
    #[error("move link {link} from {ns} to {target}")]
    MoveLinkToNetns {
        ns: Ns,
        link: String,
        target: Ns,
        #[source]
        source: Cause,
    },
    #[error("rename link {link} in {ns} to {new_name}")]
    RenameLink {
        ns: Ns,
        link: String,
        new_name: String,
        #[source]
        source: Cause,
    },
    #[error("set master of {link} in {ns} to {master}")]
    SetLinkMaster {
        ns: Ns,
        link: String,
        master: String,
        #[source]
        source: Cause,
    },
    #[error("set mtu of {link} in {ns}")]
    SetLinkMtu {
        ns: Ns,
        link: String,
        #[source]
        source: Cause,
    },
    #[error("set link {link} up in {ns}")]
    SetLinkUp {
        ns: Ns,
        link: String,
        #[source]
        source: Cause,
    },
    #[error("add address {addr} to {link} in {ns}")]
    AddAddress {
        ns: Ns,
        link: String,
        addr: String,
        #[source]
        source: Cause,
    },
    #[error("delete address {addr} from {link} in {ns}")]
    DelAddress {
        ns: Ns,
        link: String,
        addr: String,
        #[source]
        source: Cause,
    },
    #[error("add default route via {gateway} on {link} in {ns}")]
    AddDefaultRoute {
        ns: Ns,
        link: String,
        gateway: std::net::Ipv4Addr,
        #[source]
        source: Cause,
    },
    #[error("add fdb entry {mac} on {link} in {ns}")]
    AddFdb {
        ns: Ns,
        link: String,
        mac: String,
        #[source]
        source: Cause,
    },
    #[error("delete fdb entry {mac} on {link} in {ns}")]
    DelFdb {
        ns: Ns,
        link: String,
        mac: String,
        #[source]
        source: Cause,
    },
    #[error("add neighbour {ip} on {link} in {ns}")]
    AddNeigh {
        ns: Ns,
        link: String,
        ip: std::net::Ipv4Addr,
        #[source]
        source: Cause,
    },
    #[error("delete neighbour {ip} on {link} in {ns}")]
    DelNeigh {
        ns: Ns,
        link: String,
        ip: std::net::Ipv4Addr,
        #[source]
        source: Cause,
    },
    /// A failure made up by [`crate::fake::FakeNetlink`].
    #[error("{what}")]
    Simulated {
        what: String,
        #[source]
        source: Cause,
    },
    /// `teardown` could not remove every sandbox.
    #[error("teardown left sandboxes behind: {}", failures.join("; "))]
    Teardown { failures: Vec<String> },
}

impl Error {
    /// The underlying cause, if the step had one.
    pub fn cause(&self) -> Option<&Cause> {
        std::error::Error::source(self).and_then(|s| s.downcast_ref::<Cause>())
    }

    /// True when the object was not there (deletes treat this as done).
    pub fn is_not_found(&self) -> bool {
        self.cause().is_some_and(Cause::is_not_found)
    }
}

/// `err: cause: cause…` on one line, for reports and logs.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}
