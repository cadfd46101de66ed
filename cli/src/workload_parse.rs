//! Docker's spellings of mounts, sizes, CPUs, ulimits, extra hosts and capabilities, as
//! `docker service create` parses them (docker/cli `opts/mount.go`, go-units), turned
//! into the spec's values. Pure; every error names the flag and what to write instead.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context};
use swarmr_proto::convert::ULIMIT_NAMES;
use swarmr_proto::{Mount, MountType, Ulimit};

/// Splits one line of comma-separated fields, double quotes grouping (as Go's csv
/// reader does), so `"volume-opt=o=addr=1.2.3.4,rw"` stays one field.
fn csv_fields(line: &str) -> anyhow::Result<Vec<String>> {
    let (mut fields, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        bail!("a quote is not closed");
    }
    fields.push(field);
    Ok(fields)
}

fn parse_bool(key: &str, value: &str) -> anyhow::Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" => Ok(true),
        "0" | "f" | "false" => Ok(false),
        _ => bail!("invalid value for {key}: {value:?} (use true or false)"),
    }
}

fn set_key_value(map: &mut HashMap<String, String>, item: &str) {
    match item.split_once('=') {
        Some((k, v)) => map.insert(k.to_string(), v.to_string()),
        None => map.insert(item.to_string(), String::new()),
    };
}

/// `type=bind|volume|tmpfs,source=..,target=..[,readonly][,volume-*][,bind-*][,tmpfs-*]`;
/// the type defaults to volume, as in Docker.
pub fn parse_mount(text: &str) -> anyhow::Result<Mount> {
    parse_mount_fields(text).with_context(|| {
        let shown: String = text.chars().take(80).collect();
        format!("invalid --mount {shown:?}")
    })
}

fn parse_mount_fields(text: &str) -> anyhow::Result<Mount> {
    let mut mount = Mount {
        r#type: MountType::Volume as i32,
        ..Default::default()
    };
    let (mut volume_opt, mut bind_opt, mut tmpfs_opt) = (false, false, false);
    for field in csv_fields(text)? {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        match (key.as_str(), value) {
            ("readonly" | "ro", None) => mount.read_only = true,
            ("volume-nocopy", None) => (mount.no_copy, volume_opt) = (true, true),
            (_, None) => bail!("field {field:?} must be a key=value pair"),
            ("type", Some(v)) => mount.set_type(match v.to_ascii_lowercase().as_str() {
                "bind" => MountType::Bind,
                "volume" => MountType::Volume,
                "tmpfs" => MountType::Tmpfs,
                other => bail!("unknown type {other:?}: use bind, volume or tmpfs"),
            }),
            ("source" | "src", Some(v)) => mount.source = v.to_string(),
            ("target" | "dst" | "destination", Some(v)) => mount.target = v.to_string(),
            ("readonly" | "ro", Some(v)) => mount.read_only = parse_bool(&key, v)?,
            ("bind-propagation", Some(v)) => {
                (mount.propagation, bind_opt) = (v.to_ascii_lowercase(), true)
            }
            ("volume-nocopy", Some(v)) => {
                (mount.no_copy, volume_opt) = (parse_bool(&key, v)?, true)
            }
            ("volume-label", Some(v)) => {
                set_key_value(&mut mount.volume_labels, v);
                volume_opt = true;
            }
            ("volume-driver", Some(v)) => (mount.volume_driver, volume_opt) = (v.to_string(), true),
            ("volume-opt", Some(v)) => {
                set_key_value(&mut mount.volume_options, v);
                volume_opt = true;
            }
            ("tmpfs-size", Some(v)) => {
                (mount.tmpfs_size_bytes, tmpfs_opt) = (parse_bytes(v)?, true)
            }
            ("tmpfs-mode", Some(v)) => {
                let mode = u32::from_str_radix(v, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| anyhow!("invalid tmpfs-mode {v:?}: use octal such as 1777"))?;
                (mount.tmpfs_mode, tmpfs_opt) = (mode, true);
            }
            _ => bail!("unexpected key {key:?} in {field:?}"),
        }
    }
    if mount.target.is_empty() {
        bail!("target is required");
    }
    let kind = mount.r#type().label();
    let mixed = [
        (volume_opt, MountType::Volume, "volume"),
        (bind_opt, MountType::Bind, "bind"),
        (tmpfs_opt, MountType::Tmpfs, "tmpfs"),
    ];
    for (given, wanted, prefix) in mixed {
        if given && mount.r#type() != wanted {
            bail!("cannot mix '{prefix}-*' options with mount type '{kind}'");
        }
    }
    Ok(mount)
}

/// Docker's memory sizes (go-units `RAMInBytes`): `512M`, `2g`, `1.5GiB`, `1024` (bytes);
/// powers of 1024.
pub fn parse_bytes(text: &str) -> anyhow::Result<i64> {
    let bad = || {
        anyhow!("invalid size {text:?}: use a number with an optional unit b, k, m, g, t or p (512M, 2G)")
    };
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let power = match unit {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return Err(bad()),
    };
    let bytes = number * 1024f64.powi(power);
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as i64)
}

/// Docker's CPU counts (`--limit-cpu 0.5`) in NanoCPUs, exactly: more than 9 decimals
/// is refused, as Docker does.
pub fn parse_nano_cpus(text: &str) -> anyhow::Result<i64> {
    let bad = |why: &str| anyhow!("invalid CPU count {text:?}: {why}");
    let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .chars()
            .chain(fraction.chars())
            .all(|c| c.is_ascii_digit())
    {
        return Err(bad("use a number of CPUs such as 0.5 or 2"));
    }
    if fraction.len() > 9 {
        return Err(bad("it is too precise (at most 9 decimals)"));
    }
    let whole: i64 = match whole {
        "" => 0,
        w => w.parse().map_err(|_| bad("it is too large"))?,
    };
    let fraction: i64 = format!("{fraction:0<9}").parse().unwrap_or(0);
    whole
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(fraction))
        .ok_or_else(|| bad("it is too large"))
}

/// `nofile=1024:2048`, or `nofile=1024` for soft = hard.
pub fn parse_ulimit(text: &str) -> anyhow::Result<Ulimit> {
    let bad = |why: String| anyhow!("invalid --ulimit {text:?}: {why}");
    let (name, limits) = text
        .split_once('=')
        .ok_or_else(|| bad("use NAME=SOFT[:HARD], e.g. nofile=1024:2048".into()))?;
    if !ULIMIT_NAMES.contains(&name) {
        return Err(bad(format!(
            "unknown name {name:?}: use one of {}",
            ULIMIT_NAMES.join(", ")
        )));
    }
    let number = |n: &str| {
        n.parse::<i64>()
            .map_err(|_| bad(format!("{n:?} is not a number")))
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((soft, hard)) => (number(soft)?, number(hard)?),
        None => (number(limits)?, number(limits)?),
    };
    if soft > hard {
        return Err(bad("the soft limit must be at most the hard limit".into()));
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// `--host host:ip` as Docker's spec keeps it: `ip host`.
pub fn parse_host(text: &str) -> anyhow::Result<String> {
    let bad = || anyhow!("invalid host mapping {text:?}: use HOSTNAME:IP, e.g. db:10.0.0.5");
    let (host, ip) = text.split_once(':').ok_or_else(bad)?;
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    let ip: std::net::IpAddr = ip.trim_matches(['[', ']']).parse().map_err(|_| bad())?;
    Ok(format!("{ip} {host}"))
}

/// `net_admin` → `CAP_NET_ADMIN`; `all` → `ALL`, as Docker normalizes them.
pub fn normalize_cap(text: &str) -> String {
    let upper = text.trim().to_ascii_uppercase();
    if upper == "ALL" || upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// Docker's `--env-file`: `KEY=VALUE` lines, `#` comments and blank lines skipped, a bare
/// `KEY` taking its value from here (as `-e KEY`).
pub fn read_env_file(path: &str) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --env-file {path:?}"))?;
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.split_once('=').map_or(line, |(k, _)| k);
        if key.is_empty() || key.contains(char::is_whitespace) {
            bail!(
                "--env-file {path:?} line {}: {key:?} is not a variable name",
                number + 1
            );
        }
        entries.push(line.to_string());
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_parse_as_docker_does() {
        let bind = parse_mount("type=bind,source=/srv/x,target=/x,readonly").unwrap();
        assert_eq!(
            (bind.r#type(), bind.source.as_str(), bind.target.as_str()),
            (MountType::Bind, "/srv/x", "/x")
        );
        assert!(bind.read_only);
        let volume = parse_mount(
            "src=data,dst=/data,volume-driver=local,volume-opt=type=tmpfs,\"volume-opt=o=size=1m,uid=1\",volume-label=a=b,volume-nocopy",
        )
        .unwrap();
        assert_eq!(volume.r#type(), MountType::Volume, "volume by default");
        assert_eq!(volume.volume_options["o"], "size=1m,uid=1");
        assert_eq!(volume.volume_options["type"], "tmpfs");
        assert_eq!(
            (volume.volume_labels["a"].as_str(), volume.no_copy),
            ("b", true)
        );
        let tmpfs =
            parse_mount("type=tmpfs,target=/scratch,tmpfs-size=64m,tmpfs-mode=1770").unwrap();
        assert_eq!(
            (tmpfs.tmpfs_size_bytes, tmpfs.tmpfs_mode),
            (64 << 20, 0o1770)
        );
        let ro = parse_mount("type=bind,src=/a,dst=/b,ro=false,bind-propagation=rshared").unwrap();
        assert_eq!((ro.read_only, ro.propagation.as_str()), (false, "rshared"));
        let errors = [
            ("type=bind,source=/a", "target is required"),
            ("type=nfs,target=/a", "unknown type"),
            ("type=bind,target=/a,volume-nocopy", "cannot mix 'volume-*'"),
            (
                "type=volume,target=/a,tmpfs-size=1m",
                "cannot mix 'tmpfs-*'",
            ),
            (
                "type=tmpfs,target=/a,bind-propagation=shared",
                "cannot mix 'bind-*'",
            ),
            ("target=/a,color=red", "unexpected key"),
            ("target=/a,source", "key=value pair"),
            ("target=/a,readonly=maybe", "invalid value for readonly"),
            ("type=tmpfs,target=/a,tmpfs-mode=999", "octal"),
            ("type=tmpfs,target=/a,tmpfs-size=lots", "invalid size"),
            ("target=\"/a", "quote"),
        ];
        for (text, want) in errors {
            let err = format!("{:#}", parse_mount(text).unwrap_err());
            assert!(err.starts_with("invalid --mount"), "{err}");
            assert!(err.contains(want), "{text}: {err:?} lacks {want:?}");
        }
    }

    #[test]
    fn sizes_and_cpus_use_dockers_units() {
        let sizes = [
            ("512M", 512 << 20),
            ("2G", 2 << 30),
            ("2g", 2 << 30),
            ("1.5GiB", 3 << 29),
            ("1024", 1024),
            ("64kb", 64 << 10),
            ("1 t", 1 << 40),
        ];
        for (text, want) in sizes {
            assert_eq!(parse_bytes(text).unwrap(), want, "{text}");
        }
        for bad in ["", "M", "12Q", "-1", "1e400"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
        let cpus = [
            ("0.5", 500_000_000),
            ("2", 2_000_000_000),
            (".25", 250_000_000),
        ];
        for (text, want) in cpus {
            assert_eq!(parse_nano_cpus(text).unwrap(), want, "{text}");
        }
        assert!(parse_nano_cpus("0.0000000001")
            .unwrap_err()
            .to_string()
            .contains("too precise"));
        for bad in ["", ".", "-1", "one", "1.2.3", "99999999999999999"] {
            assert!(parse_nano_cpus(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ulimits_hosts_and_caps() {
        let nofile = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!(
            (nofile.name.as_str(), nofile.soft, nofile.hard),
            ("nofile", 1024, 2048)
        );
        assert_eq!(parse_ulimit("nproc=64").unwrap().hard, 64);
        for (bad, want) in [
            ("nofile", "NAME=SOFT"),
            ("files=1", "unknown name"),
            ("nofile=2:1", "at most the hard"),
            ("nofile=x", "not a number"),
        ] {
            let err = parse_ulimit(bad).unwrap_err().to_string();
            assert!(err.contains(want), "{bad}: {err}");
        }
        assert_eq!(parse_host("db:10.0.0.5").unwrap(), "10.0.0.5 db");
        assert_eq!(parse_host("v6:::1").unwrap(), "::1 v6");
        for bad in ["db", ":1.2.3.4", "db:nope"] {
            assert!(parse_host(bad).is_err(), "{bad}");
        }
        assert_eq!(normalize_cap("net_admin"), "CAP_NET_ADMIN");
        assert_eq!(normalize_cap("CAP_SYS_TIME"), "CAP_SYS_TIME");
        assert_eq!(normalize_cap("all"), "ALL");
    }

    #[test]
    fn env_files_skip_comments_and_check_names() {
        let dir = std::env::temp_dir().join(format!("swarmr-env-{}", std::process::id()));
        std::fs::write(&dir, "# comment\nA=1\n\n  B=two words\nC\n").unwrap();
        let path = dir.to_string_lossy().to_string();
        assert_eq!(read_env_file(&path).unwrap(), ["A=1", "B=two words", "C"]);
        std::fs::write(&dir, "BAD KEY=1\n").unwrap();
        let err = read_env_file(&path).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
        std::fs::remove_file(&dir).unwrap();
        assert!(read_env_file("/nonexistent/env").is_err());
    }
}
