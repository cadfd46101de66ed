//! `--publish`: Docker's long form `published=P,target=T,protocol=tcp|udp,mode=ingress|host`
//! and short form `P:T[/udp]` (or just `T[/udp]`: the cluster picks the published port).

use anyhow::{anyhow, bail};
use swarmr_proto::{PortConfig, PortProtocol, PublishMode};

fn port_number(text: &str, what: &str, spec: &str) -> anyhow::Result<u32> {
    text.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .map(u32::from)
        .ok_or_else(|| anyhow!("invalid --publish {spec:?}: {what} port {text:?} is not a number between 1 and 65535"))
}

fn protocol(text: &str, spec: &str) -> anyhow::Result<PortProtocol> {
    match text {
        "tcp" => Ok(PortProtocol::Tcp),
        "udp" => Ok(PortProtocol::Udp),
        other => bail!("invalid --publish {spec:?}: protocol {other:?} is not tcp or udp"),
    }
}

fn long_form(spec: &str) -> anyhow::Result<PortConfig> {
    let mut port = PortConfig::default();
    for field in spec.split(',') {
        let (key, value) = field.split_once('=').ok_or_else(|| {
            anyhow!("invalid --publish {spec:?}: {field:?} is not key=value (published=, target=, protocol=, mode=)")
        })?;
        match key {
            "published" => port.published_port = port_number(value, "published", spec)?,
            "target" => port.target_port = port_number(value, "target", spec)?,
            "protocol" => port.protocol = protocol(value, spec)? as i32,
            "mode" => {
                port.publish_mode = match value {
                    "ingress" => PublishMode::Ingress,
                    "host" => PublishMode::Host,
                    other => bail!("invalid --publish {spec:?}: mode {other:?} is not ingress or host"),
                } as i32
            }
            other => bail!("invalid --publish {spec:?}: unknown field {other:?} (published, target, protocol, mode)"),
        }
    }
    if port.target_port == 0 {
        bail!("invalid --publish {spec:?}: target=PORT is required");
    }
    Ok(port)
}

fn short_form(spec: &str) -> anyhow::Result<PortConfig> {
    let (ports, proto) = match spec.split_once('/') {
        Some((ports, proto)) => (ports, protocol(proto, spec)?),
        None => (spec, PortProtocol::Tcp),
    };
    let (published, target) = match ports.split(':').collect::<Vec<_>>()[..] {
        [target] => (0, port_number(target, "target", spec)?),
        [published, target] => (
            port_number(published, "published", spec)?,
            port_number(target, "target", spec)?,
        ),
        _ => bail!("invalid --publish {spec:?}: use PUBLISHED:TARGET[/udp] (a host IP cannot be given: every node answers)"),
    };
    Ok(PortConfig {
        protocol: proto as i32,
        target_port: target,
        published_port: published,
        ..Default::default()
    })
}

/// The ports of every `--publish` given.
pub fn parse_ports(items: &[String]) -> anyhow::Result<Vec<PortConfig>> {
    items
        .iter()
        .map(|spec| {
            if spec.contains('=') {
                long_form(spec)
            } else {
                short_form(spec)
            }
        })
        .collect()
}

/// `--publish-rm` then `--publish-add` on a spec's ports. A removal names a target port
/// (and protocol, and published port if given); naming one that is not published is
/// refused, as is adding and removing the same port.
pub fn update_ports(
    ports: &mut Vec<PortConfig>,
    add: &[String],
    rm: &[String],
) -> anyhow::Result<()> {
    let added = parse_ports(add)?;
    for (spec, gone) in rm.iter().zip(parse_ports(rm)?) {
        let matches = |p: &PortConfig| {
            p.target_port == gone.target_port
                && p.protocol == gone.protocol
                && (gone.published_port == 0 || p.published_port == gone.published_port)
        };
        if added.iter().any(&matches) {
            bail!("--publish-add and --publish-rm both name port {spec:?}: give it once");
        }
        let before = ports.len();
        ports.retain(|p| !matches(p));
        if ports.len() == before {
            bail!(
                "--publish-rm {spec:?}: the service publishes no such port (see service inspect)"
            );
        }
    }
    for port in added {
        ports.retain(|p| {
            !(p.target_port == port.target_port
                && p.protocol == port.protocol
                && p.published_port == port.published_port)
        });
        ports.push(port);
    }
    Ok(())
}

/// Docker's PORTS column entry: `*:8080->80/tcp`.
pub fn port_column(port: &PortConfig) -> String {
    let proto = port.protocol().label();
    format!("*:{}->{}/{proto}", port.published_port, port.target_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> PortConfig {
        let mut ports = parse_ports(&[spec.to_string()]).expect(spec);
        ports.remove(0)
    }

    #[test]
    fn short_and_long_forms_give_the_same_port() {
        assert_eq!(one("8080:80"), one("published=8080,target=80"));
        let udp = one("5353:53/udp");
        assert_eq!(
            (udp.published_port, udp.target_port, udp.protocol()),
            (5353, 53, PortProtocol::Udp)
        );
        let host = one("mode=host,published=8081,target=80");
        assert_eq!(host.publish_mode(), PublishMode::Host);
        assert_eq!(one("80").published_port, 0, "the cluster picks it");
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (spec, want) in [
            ("8080:http", "target port \"http\""),
            ("0:80", "published port \"0\""),
            ("127.0.0.1:8080:80", "a host IP cannot be given"),
            ("8080:80/sctp", "protocol \"sctp\""),
            ("published=8080", "target=PORT is required"),
            ("published=8080,target=80,mode=bridge", "mode \"bridge\""),
            ("published=8080,target=80,ip=1", "unknown field \"ip\""),
        ] {
            let err = parse_ports(&[spec.to_string()])
                .expect_err(spec)
                .to_string();
            assert!(err.contains(want), "{spec}: {err}");
        }
    }

    #[test]
    fn publish_add_and_rm_change_only_the_ports_they_name() {
        let mut ports = vec![one("8080:80"), one("5353:53/udp")];
        update_ports(&mut ports, &["9090:90".into()], &["53/udp".into()]).expect("update");
        let got: Vec<String> = ports.iter().map(port_column).collect();
        assert_eq!(got, ["*:8080->80/tcp", "*:9090->90/tcp"]);
        let err = update_ports(&mut ports, &[], &["81".into()]).expect_err("not published");
        assert!(err.to_string().contains("publishes no such port"), "{err}");
        let err = update_ports(&mut ports, &["8080:80".into()], &["80".into()]).expect_err("both");
        assert!(err.to_string().contains("both name port"), "{err}");
    }

    #[test]
    fn the_ports_column_reads_like_dockers() {
        assert_eq!(port_column(&one("8080:80")), "*:8080->80/tcp");
        assert_eq!(port_column(&one("5353:53/udp")), "*:5353->53/udp");
    }
}
