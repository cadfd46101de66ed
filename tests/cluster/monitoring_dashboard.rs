//! The dashboard in a real browser: Debian's headless Chromium loads `/` from a manager's
//! monitoring port; the DOM it renders must show the test cluster's nodes, services and
//! overlay, and a screenshot lands in the cluster's temp dir for a person to look at.

use std::process::Command;

use crate::monitoring::{free_port, http_get};
use crate::util::*;

/// Chromium's headless run of `url` with `flags`; its stdout.
fn chromium(profile: &std::path::Path, url: &str, flags: &[&str]) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            // As root Chromium refuses to start sandboxed.
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            // Run the page's timers and fetches before dumping or shooting.
            "--virtual-time-budget=8000",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(flags)
        .arg(url)
        .output()
        .expect("run chromium (deploy/prereqs.sh installs it)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs root, Docker and chromium"]
fn the_dashboard_shows_the_clusters_nodes_and_services_in_chromium() {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut cluster = Cluster::init(&["--http-addr", &addr]);
    let host = cluster.nodes[0].host();
    cluster.join("dash-w1", "worker");
    ok(&["-H", &host, "network", "create", "dash-net"]);
    create_sleeper(
        &host,
        "dash-web",
        &["--replicas", "3", "--network", "dash-net"],
    );
    create_sleeper(
        &host,
        "dash-api",
        &["--replicas", "2", "--network", "dash-net", "-p", "18080:80"],
    );
    let url = format!("http://{addr}/");
    wait_until("the dashboard's data", || {
        http_get(&format!("http://{addr}/api/overview")).is_some_and(|v| v.contains("dash-api"))
    });
    let profile = cluster.dir().join("chromium-profile");
    let dom = chromium(&profile, &url, &["--dump-dom"]);
    for shown in [
        "m1", "dash-w1", "dash-web", "dash-api", "dash-net", "3/3", "2/2", "Leader", "VTEP",
    ] {
        assert!(
            dom.contains(shown),
            "the rendered dashboard lacks {shown:?}:\n{dom}"
        );
    }
    assert!(
        dom.contains("live"),
        "the page did not load its data:\n{dom}"
    );
    let shot = cluster.dir().join("dashboard.png");
    chromium(
        &profile,
        &url,
        &[
            "--window-size=1440,1100",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    println!("dashboard screenshot: {}", shot.display());
    if let Ok(keep) = std::env::var("SWARMR_DASHBOARD_SHOT") {
        std::fs::copy(&shot, keep).expect("copy the screenshot");
    }
}
