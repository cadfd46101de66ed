//! The bad-input list: commands a new user might type wrong, each of which must exit
//! non-zero with one error line saying what is wrong (and what to do), and change nothing.
//! Usage errors of the argument parser count as one line too: its `error:` line, followed
//! only by its usage hint.

use std::process::Command;

use crate::util::*;

/// The list in `testdata/bad_input.txt`, placeholders filled in, plus the cases too
/// long to write there: (arguments after `-H <m1>`, text the error line must contain).
fn client_cases() -> Vec<(Vec<String>, String)> {
    let fill = |word: &str| match word {
        "{IMAGE}" => IMAGE.to_string(),
        "{long}" => "a".repeat(100),
        "{big_value}" => format!("k={}", "v".repeat(5000)),
        "{big_key}" => format!("{}=v", "k".repeat(200)),
        "{big_image}" => "i".repeat(600),
        other => other.to_string(),
    };
    let mut cases: Vec<(Vec<String>, String)> = include_str!("testdata/bad_input.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (args, want) = line.rsplit_once(" => ").expect("ARGS => WANT");
            (args.split(" | ").map(fill).collect(), want.to_string())
        })
        .collect();
    let mut env: Vec<String> = ["service", "create", "-d"].map(String::from).to_vec();
    env.extend((0..300).flat_map(|i| ["-e".to_string(), format!("V{i}=x")]));
    env.extend(["--name", "x", IMAGE].map(String::from));
    cases.push((env, "too many environment variables".into()));
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
fn bad_input_gets_a_one_line_error_with_no_state_change() {
    let cluster = Cluster::init(&[]);
    let m1 = cluster.nodes[0].host();
    wait_until("m1 Ready", || {
        node_row(&m1, "m1").is_some_and(|r| r["Status"] == "Ready")
    });
    cli(&m1, "network create bi-net");
    cli(
        &m1,
        &format!("service create -d --replicas 0 --name bi-web {IMAGE}"),
    );
    let before = state(&m1);
    let cases = client_cases();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    for (args, want) in cases {
        let mut full = vec!["-H".to_string(), m1.clone()];
        full.extend(args);
        assert_refused(&full, &want);
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
