//! Hosts as network namespaces on one underlay bridge (TEST-NET-1 addresses), removed on
//! drop: the machines of a multi-host test.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Runs `ip`; a failure fails the test.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Which of a host's packets an asymmetric cut drops.
#[derive(Clone, Copy, Debug)]
pub enum OneWay {
    Inbound,
    Outbound,
}

const CUT_TABLE: &str = "swarmr_test_cut";

/// Host namespaces on one underlay bridge (its own namespace), removed on drop.
pub struct Underlay {
    prefix: String,
    hosts: Vec<String>,
}

impl Underlay {
    pub fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let prefix = format!(
            "sw{}{}",
            std::process::id() % 10000,
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let underlay = Underlay {
            prefix,
            hosts: Vec::new(),
        };
        let ns = underlay.underlay_ns();
        ip(&["netns", "add", &ns]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ip(&["-n", &ns, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &ns, "link", "set", "br0", "up"]);
        underlay
    }

    fn underlay_ns(&self) -> String {
        format!("{}u", self.prefix)
    }

    pub fn host_ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A host namespace wired to the bridge; returns its underlay IP (192.0.2.N).
    pub fn add_host(&mut self, name: &str) -> String {
        let addr = format!("192.0.2.{}", self.hosts.len() + 1);
        self.add_host_at(name, &addr);
        addr
    }

    /// A host namespace wired to the bridge at `addr`.
    pub fn add_host_at(&mut self, name: &str, addr: &str) {
        self.hosts.push(self.host_ns(name));
        let n = self.hosts.len();
        let (ns, under) = (self.host_ns(name), self.underlay_ns());
        let (host_end, bridge_end) = (
            format!("{}{n}h", self.prefix),
            format!("{}{n}u", self.prefix),
        );
        ip(&["netns", "add", &ns]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ip(&[
            "link",
            "add",
            &host_end,
            "type",
            "veth",
            "peer",
            "name",
            &bridge_end,
        ]);
        ip(&["link", "set", &host_end, "netns", &ns]);
        ip(&["link", "set", &bridge_end, "netns", &under]);
        ip(&["-n", &ns, "link", "set", &host_end, "name", "eth0"]);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        ip(&["-n", &under, "link", "set", &bridge_end, "master", "br0"]);
        ip(&["-n", &under, "link", "set", &bridge_end, "up"]);
    }
}

impl Underlay {
    /// The bridge's end of `name`'s link, as `add_host_at` named it.
    fn bridge_end(&self, name: &str) -> String {
        let ns = self.host_ns(name);
        let n = self
            .hosts
            .iter()
            .position(|h| *h == ns)
            .expect("a host of this underlay")
            + 1;
        format!("{}{n}u", self.prefix)
    }

    /// Cuts `name` off the underlay (its link to the bridge goes down): a partition.
    pub fn cut(&self, name: &str) {
        self.set_bridge_end(name, "down");
    }

    /// Drops what `name` receives, or what it sends, on its underlay link (nftables in
    /// its namespace), while the link stays up: a half-broken network.
    pub fn cut_one_way(&self, name: &str, way: OneWay) {
        let (hook, match_dev) = match way {
            OneWay::Inbound => ("input", "iifname"),
            OneWay::Outbound => ("output", "oifname"),
        };
        let rules = format!(
            "table inet {CUT_TABLE} {{\n chain cut {{\n type filter hook {hook} priority 0\n \
             {match_dev} \"eth0\" drop\n }}\n}}\n"
        );
        let mut nft = Command::new("ip")
            .args(["netns", "exec", &self.host_ns(name), "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("run nft");
        use std::io::Write;
        nft.stdin
            .take()
            .expect("nft stdin")
            .write_all(rules.as_bytes())
            .expect("write nft rules");
        assert!(nft.wait().expect("nft").success(), "nft {rules}");
    }

    /// Wires `name` back, whichever way it was cut.
    pub fn heal(&self, name: &str) {
        // Absent unless `cut_one_way` made it.
        let _ = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.host_ns(name),
                "nft",
                "delete",
                "table",
                "inet",
                CUT_TABLE,
            ])
            .output();
        self.set_bridge_end(name, "up");
    }

    fn set_bridge_end(&self, name: &str, state: &str) {
        let (ns, end) = (self.underlay_ns(), self.bridge_end(name));
        ip(&["-n", &ns, "link", "set", &end, state]);
    }
}

impl Drop for Underlay {
    fn drop(&mut self) {
        for ns in self
            .hosts
            .iter()
            .chain(std::iter::once(&self.underlay_ns()))
        {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
