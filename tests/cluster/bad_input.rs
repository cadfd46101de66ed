//! The bad-input list: commands a new user might type wrong, each of which must exit
//! non-zero with one error line saying what is wrong (and what to do), and change nothing.
//! Usage errors of the argument parser count as one line too: its `error:` line, followed
//! only by its usage hint.

use std::process::Command;

use crate::util::*;

/// (arguments after `-H <m1>`, text the error line must contain)
fn client_cases(long: &str) -> Vec<(Vec<String>, &'static str)> {
    let many_env: Vec<String> = (0..300)
        .flat_map(|i| ["-e".into(), format!("V{i}=x")])
        .collect();
    let big_value = format!("k={}", "v".repeat(5000));
    let big_key = format!("{}=v", "k".repeat(200));
    let big_image = "i".repeat(600);
    let table: Vec<(Vec<&str>, &str)> = vec![
        // service create
        (
            vec!["service", "create", "-d", "--name", "bad name", IMAGE],
            "invalid service name",
        ),
        (
            vec!["service", "create", "-d", "--name", long, IMAGE],
            "name is too long",
        ),
        (
            vec![
                "service",
                "create",
                "-d",
                "--replicas",
                "100000000000",
                "--name",
                "x",
                IMAGE,
            ],
            "at most 10000",
        ),
        (
            vec![
                "service",
                "create",
                "-d",
                "--replicas",
                "10001",
                "--name",
                "x",
                IMAGE,
            ],
            "at most 10000",
        ),
        (
            vec![
                "service",
                "create",
                "-d",
                "--replicas",
                "-1",
                "--name",
                "x",
                IMAGE,
            ],
            "not a number of replicas",
        ),
        (
            vec![
                "service",
                "create",
                "-d",
                "--mode",
                "global",
                "--replicas",
                "2",
                "--name",
                "x",
                IMAGE,
            ],
            "only works with --mode replicated",
        ),
        (
            vec![
                "service", "create", "-d", "--mode", "sideways", "--name", "x", IMAGE,
            ],
            "sideways",
        ),
        (
            vec!["service", "create", "-d", "--name", "x"],
            "required arguments",
        ),
        (
            vec![
                "service",
                "create",
                "-d",
                "--constraint",
                "nonsense",
                "--name",
                "x",
                IMAGE,
            ],
            "invalid constraint",
        ),
        (
            vec![
                "service",
                "create",
                "-d",
                "--constraint",
                "node.bogus==x",
                "--name",
                "x",
                IMAGE,
            ],
            "invalid constraint",
        ),
        (
            vec![
                "service",
                "create",
                "-d",
                "--network",
                "nope",
                "--name",
                "x",
                IMAGE,
            ],
            "network nope not found",
        ),
        (
            vec![
                "service",
                "create",
                "-d",
                "--restart-condition",
                "sometimes",
                "--name",
                "x",
                IMAGE,
            ],
            "sometimes",
        ),
        (
            vec![
                "service",
                "create",
                "-d",
                "--restart-delay",
                "soon",
                "--name",
                "x",
                IMAGE,
            ],
            "soon",
        ),
        (
            vec![
                "service",
                "create",
                "-d",
                "--endpoint-mode",
                "nat",
                "--name",
                "x",
                IMAGE,
            ],
            "nat",
        ),
        (
            vec!["service", "create", "-d", "--name", "bi-web", IMAGE],
            "already exists",
        ),
        (
            vec![
                "service", "create", "-d", "--label", &big_value, "--name", "x", IMAGE,
            ],
            "too long",
        ),
        (
            vec![
                "service",
                "create",
                "-d",
                "--container-label",
                &big_key,
                "--name",
                "x",
                IMAGE,
            ],
            "too long",
        ),
        (
            vec!["service", "create", "-d", "--name", "x", &big_image],
            "image name is too long",
        ),
        // service scale and the rest
        (
            vec!["service", "scale", "bi-web=100000000000"],
            "at most 10000",
        ),
        (
            vec!["service", "scale", "bi-web=-1"],
            "invalid replicas value",
        ),
        (vec!["service", "scale", "bi-web"], "use SERVICE=REPLICAS"),
        (vec!["service", "scale", "nope=2"], "service nope not found"),
        (
            vec!["service", "scale", "bi-web=abc"],
            "invalid replicas value",
        ),
        (vec!["service", "inspect", "nope"], "service nope not found"),
        (vec!["service", "rm", "nope"], "service nope not found"),
        (vec!["service", "ps", "nope"], "service nope not found"),
        (vec!["service", "logs", "nope"], "service nope not found"),
        (
            vec!["service", "logs", "--tail", "abc", "bi-web"],
            "invalid --tail",
        ),
        // networks
        (
            vec!["network", "create", "bad name"],
            "invalid network name",
        ),
        (vec!["network", "create", long], "name is too long"),
        (
            vec!["network", "create", "--driver", "bridge", "x"],
            "not supported",
        ),
        (
            vec!["network", "create", "--subnet", "10.0.0.0/33", "x"],
            "invalid subnet",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.1.0.0/24",
                "--gateway",
                "10.2.0.1",
                "x",
            ],
            "outside subnet",
        ),
        (
            vec!["network", "create", "--gateway", "10.0.0.1", "x"],
            "--gateway needs --subnet",
        ),
        (vec!["network", "create", "bi-net"], "already exists"),
        (
            vec![
                "network",
                "create",
                "--opt",
                "com.docker.network.driver.mtu=10",
                "x",
            ],
            "between 68 and 65535",
        ),
        (
            vec!["network", "create", "--subnet", "10.0.0.0/8", "x"],
            "overlaps",
        ),
        (
            vec!["network", "create", "--label", &big_key, "x"],
            "too long",
        ),
        (vec!["network", "inspect", "nope"], "network nope not found"),
        (vec!["network", "rm", "nope"], "network nope not found"),
        // nodes
        (vec!["node", "inspect", "nope"], "node nope not found"),
        (
            vec!["node", "update", "--availability", "sleepy", "m1"],
            "sleepy",
        ),
        (
            vec!["node", "update", "--label-add", "=x", "m1"],
            "key=value",
        ),
        (
            vec!["node", "update", "--label-rm", "absent", "m1"],
            "no label",
        ),
        (
            vec!["node", "update", "--label-add", &big_value, "m1"],
            "too long",
        ),
        (vec!["node", "demote", "m1"], "last manager"),
        (vec!["node", "rm", "m1"], "demote it first"),
        (vec!["node", "promote", "nope"], "node nope not found"),
        (vec!["node", "demote", "nope"], "node nope not found"),
        (vec!["node", "rm", "nope"], "node nope not found"),
        // more of the same kinds
        (
            vec![
                "service",
                "create",
                "-d",
                "--restart-max-attempts",
                "abc",
                "--name",
                "x",
                IMAGE,
            ],
            "abc",
        ),
        (
            vec![
                "service",
                "create",
                "-d",
                "--network",
                "bi-net",
                "--network",
                "nope",
                "--name",
                "x",
                IMAGE,
            ],
            "network nope not found",
        ),
        (vec!["service", "scale"], "required arguments"),
        (vec!["service", "rm"], "required arguments"),
        (vec!["service", "ls", "--format", "yaml"], "yaml"),
        (vec!["service", "ps", "bi-web", "--format", "yaml"], "yaml"),
        (
            vec!["service", "logs", "--tail", "-5", "bi-web"],
            "unexpected argument",
        ),
        (vec!["network", "create"], "required arguments"),
        (
            vec!["network", "create", "--subnet", "300.1.1.0/24", "x"],
            "invalid subnet",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.5.0.0/24",
                "--gateway",
                "10.5.0.0",
                "x",
            ],
            "network address",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.5.0.0/24",
                "--gateway",
                "10.5.0.255",
                "x",
            ],
            "broadcast address",
        ),
        (
            vec![
                "network",
                "create",
                "--opt",
                "com.docker.network.driver.mtu=abc",
                "x",
            ],
            "between 68 and 65535",
        ),
        (
            vec!["network", "ls", "--filter", "color=red"],
            "invalid --filter",
        ),
        (vec!["node", "ls", "--format", "yaml"], "yaml"),
        (
            vec!["node", "update", "--label-add", "k=v", "nope"],
            "node nope not found",
        ),
        // tokens, certificates
        (vec!["join-token", "bogus"], "bogus"),
        (vec!["join-token"], "required arguments"),
        (vec!["ca", "issue-client"], "required arguments"),
    ];
    let mut cases: Vec<(Vec<String>, &str)> = table
        .into_iter()
        .map(|(args, want)| (args.into_iter().map(String::from).collect(), want))
        .collect();
    let mut env = vec!["service".into(), "create".into(), "-d".into()];
    env.extend(many_env);
    env.extend(["--name".into(), "x".into(), IMAGE.into()]);
    cases.push((env, "too many environment variables"));
    cases
}

const IMAGE: &str = "swarmr/busybox:latest";

/// What a refused command must not change.
fn state(host: &str) -> Vec<String> {
    [
        vec!["node", "ls", "-q"],
        vec!["node", "inspect", "m1"],
        vec!["network", "ls", "--format", "json"],
        vec!["service", "ls", "--format", "json"],
        vec!["service", "inspect", "bi-web"],
    ]
    .into_iter()
    .map(|args| {
        let mut full = vec!["-H", host];
        full.extend(args);
        ok(&full)
    })
    .collect()
}

/// Non-zero exit, one error line (the parser's usage hint aside) containing `want`.
fn assert_refused(args: &[String], want: &str) {
    let shown: Vec<String> = args.iter().map(|a| a.chars().take(40).collect()).collect();
    let out = Command::new(BIN)
        .args(args)
        .env("SWARMR_CONVERGE_TIMEOUT", "5s")
        .output()
        .expect("run swarmr");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{shown:?} succeeded: {stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("Error:") || l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{shown:?}: not one error line: {stderr}");
    let usage_only = stderr.lines().filter(|l| !l.trim().is_empty()).all(|l| {
        errors.contains(&l)
            || l.starts_with("  ")
            || l.starts_with("Usage:")
            || l.starts_with("For more information")
    });
    assert!(usage_only, "{shown:?}: more than an error line: {stderr}");
    assert!(
        errors[0].contains(want),
        "{shown:?}: {:?} lacks {want:?}",
        errors[0]
    );
    assert!(
        errors[0].len() < 400,
        "{shown:?}: an error line of {} bytes",
        errors[0].len()
    );
}

#[test]
fn bad_input_is_refused_with_one_line_and_changes_nothing() {
    let cluster = Cluster::init(&[]);
    let m1 = cluster.nodes[0].host();
    wait_until("m1 Ready", || {
        node_row(&m1, "m1").is_some_and(|r| r["Status"] == "Ready")
    });
    ok(&["-H", &m1, "network", "create", "bi-net"]);
    ok(&[
        "-H",
        &m1,
        "service",
        "create",
        "-d",
        "--replicas",
        "0",
        "--name",
        "bi-web",
        IMAGE,
    ]);
    let before = state(&m1);
    let long = "a".repeat(100);
    let cases = client_cases(&long);
    assert!(cases.len() >= 60, "{} cases", cases.len());
    for (args, want) in cases {
        let mut full = vec!["-H".to_string(), m1.clone()];
        full.extend(args);
        assert_refused(&full, want);
    }
    refused_joins(&cluster);
    assert_eq!(state(&m1), before, "a refused command changed the cluster");
}

/// What a joining node says about itself is checked by the manager (nothing is stored).
fn refused_joins(cluster: &Cluster) {
    let token = cluster.token("worker");
    let remote = cluster.nodes[0].addr();
    let long_host = "h".repeat(300);
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "--advertise-addr",
                "127.0.0.1:4000",
                "--hostname",
                &long_host,
            ],
            "hostname is too long",
        ),
        (
            &[
                "--advertise-addr",
                "127.0.0.1:4000",
                "--hostname",
                "tab\there",
            ],
            "control characters",
        ),
        (
            &["--advertise-addr", "127.0.0.1"],
            "not an address other nodes can reach",
        ),
    ];
    for (i, (flags, want)) in cases.into_iter().enumerate() {
        let dir = cluster.dir().join(format!("refused-join-{i}"));
        let mut args = vec![
            BIN.to_string(),
            "join".into(),
            "--token".into(),
            token.clone(),
            "--data-dir".into(),
            dir.display().to_string(),
            "--listen-addr".into(),
            "127.0.0.1:0".into(),
        ];
        args.extend(flags.iter().map(|f| f.to_string()));
        args.push(remote.clone());
        // `timeout`: an accepted join would run the node in the foreground.
        let out = Command::new("timeout")
            .arg("30")
            .args(&args)
            .output()
            .expect("run swarmr join");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flags:?} joined");
        assert!(stderr.contains(want), "{flags:?}: {stderr}");
        assert!(
            !dir.join("node.crt").exists(),
            "{flags:?} wrote a certificate"
        );
    }
}

#[test]
fn bad_init_flags_write_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&[&str], &str); 6] = [
        (
            &["--dispatcher-heartbeat", "1ms"],
            "--dispatcher-heartbeat must be between",
        ),
        (
            &["--dispatcher-heartbeat", "2h"],
            "--dispatcher-heartbeat must be between",
        ),
        (
            &["--default-addr-pool", "10.0.0.0/33"],
            "invalid default address pool",
        ),
        (&["--default-addr-pool-mask-length", "40"], "mask length 40"),
        (&["--cert-expiry", "1s"], "--cert-expiry must be at least"),
        (&["--dns-upstream", "nonsense"], "invalid --dns-upstream"),
    ];
    for (i, (flags, want)) in cases.into_iter().enumerate() {
        let data = dir.path().join(format!("n{i}"));
        let mut args: Vec<String> = ["init", "--data-dir"].map(String::from).to_vec();
        args.push(data.display().to_string());
        args.extend(["--listen-addr".into(), "127.0.0.1:0".into()]);
        args.extend(flags.iter().map(|f| f.to_string()));
        // `timeout`: were a case accepted, init would run the node in the foreground.
        let mut with_timeout = vec![BIN.to_string()];
        with_timeout.extend(args);
        let out = Command::new("timeout")
            .arg("30")
            .args(&with_timeout)
            .output()
            .expect("run swarmr init");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flags:?} accepted");
        assert!(stderr.contains(want), "{flags:?}: {stderr}");
        assert!(!data.exists(), "{flags:?} wrote {}", data.display());
    }
}
