//! A concurrent history through leader failovers, checked against a grow-only set: a
//! writer adds networks (one name each) through any manager, a reader lists them through
//! any manager, and the leader is killed (-9) and restarted again and again. Then:
//! - no acknowledged add is lost, and none comes back as "already exists" (applied once);
//! - every read is linearizable for a grow-only set: it holds every add acknowledged
//!   before the read began, and no add that began after the read ended.
//!
//! `SWARMR_FAULTS_LONG=1` kills the leader 20 times instead of 3. Under CPU load this test
//! found a manager just restarted after `kill -9` serving stale reads: it announced a
//! garbage applied index at start-up (see `StateMachine::announce_applied`).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

const PREFIX: &str = "lin-";

/// One add: the name, when it was invoked and answered (since the start), and how.
#[derive(Clone, Debug)]
struct Add {
    host: usize,
    name: String,
    invoked: Duration,
    answered: Duration,
    acked: bool,
    error: String,
}

/// One read: the names it saw, and which manager answered.
#[derive(Clone, Debug)]
struct Read {
    host: usize,
    invoked: Duration,
    answered: Duration,
    names: BTreeSet<String>,
}

fn leader_name(host: &str) -> Option<String> {
    node_rows(host)
        .into_iter()
        .find(|r| r["ManagerStatus"] == "Leader")
        .and_then(|r| r["Hostname"].as_str().map(String::from))
}

fn listed(host: &str) -> Option<BTreeSet<String>> {
    let out = run(&["-H", host, "network", "ls", "--format", "json"]);
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|n| n["Name"].as_str().map(String::from))
            .filter(|n| n.starts_with(PREFIX))
            .collect(),
    )
}

/// Linearizability of every read against the adds, for a grow-only set.
fn check_reads(adds: &[Add], reads: &[Read]) -> Vec<String> {
    let mut violations = Vec::new();
    for read in reads {
        for add in adds {
            let before = add.acked && add.answered < read.invoked;
            let shown =
                |r: &Read| format!("read on m{} {:?}..{:?}", r.host + 1, r.invoked, r.answered);
            if before && !read.names.contains(&add.name) {
                violations.push(format!(
                    "{} misses {add:?} (sent to m{}), acknowledged before it",
                    shown(read),
                    add.host + 1
                ));
            }
            if add.invoked > read.answered && read.names.contains(&add.name) {
                violations.push(format!("{} holds {add:?}, invoked after it", shown(read)));
            }
        }
    }
    violations
}

#[test]
fn the_history_stays_linearizable_through_leader_kills() {
    let kills = if std::env::var_os("SWARMR_FAULTS_LONG").is_some() {
        20
    } else {
        3
    };
    let mut cluster = Cluster::three_managers(&[]);
    let names = ["m1", "m2", "m3"];
    let hosts: Vec<String> = names.iter().map(|n| cluster.node(n).host()).collect();
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let adds = Arc::new(Mutex::new(Vec::<Add>::new()));
    let reads = Arc::new(Mutex::new(Vec::<Read>::new()));

    let writer = {
        let (hosts, stop, adds) = (hosts.clone(), stop.clone(), adds.clone());
        thread::spawn(move || {
            let mut i = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let name = format!("{PREFIX}{i}");
                let invoked = start.elapsed();
                let host = i % hosts.len();
                let out = run(&["-H", &hosts[host], "network", "create", &name]);
                let error = String::from_utf8_lossy(&out.stderr).trim().to_string();
                let add = Add {
                    host,
                    name,
                    invoked,
                    answered: start.elapsed(),
                    acked: out.status.success(),
                    error,
                };
                adds.lock().expect("adds").push(add);
                i += 1;
            }
        })
    };
    let reader = {
        let (hosts, stop, reads) = (hosts.clone(), stop.clone(), reads.clone());
        thread::spawn(move || {
            let mut i = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let invoked = start.elapsed();
                let host = i % hosts.len();
                if let Some(names) = listed(&hosts[host]) {
                    let read = Read {
                        host,
                        invoked,
                        answered: start.elapsed(),
                        names,
                    };
                    reads.lock().expect("reads").push(read);
                }
                i += 1;
            }
        })
    };

    for _ in 0..kills {
        thread::sleep(Duration::from_secs(2));
        let Some(leader) = hosts.iter().find_map(|h| leader_name(h)) else {
            continue;
        };
        eprintln!("{:?}: killing the leader {leader}", start.elapsed());
        cluster.node(&leader).kill();
        thread::sleep(Duration::from_secs(2));
        cluster.node(&leader).restart();
        eprintln!("{:?}: {leader} restarted", start.elapsed());
    }
    thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    writer.join().expect("writer");
    reader.join().expect("reader");

    let adds = adds.lock().expect("adds").clone();
    let reads = reads.lock().expect("reads").clone();
    let acked: Vec<&Add> = adds.iter().filter(|a| a.acked).collect();
    assert!(acked.len() > 10, "too few writes to check: {}", acked.len());
    let mut finals = None;
    wait_until("a final read", || {
        finals = hosts.iter().find_map(|h| listed(h));
        finals.is_some()
    });
    let finals = finals.unwrap_or_default();
    for add in &acked {
        assert!(finals.contains(&add.name), "acknowledged add lost: {add:?}");
    }
    let applied_twice: Vec<&Add> = adds
        .iter()
        .filter(|a| a.error.contains("already exists"))
        .collect();
    assert!(
        applied_twice.is_empty(),
        "a committed add came back as failed: {applied_twice:?}"
    );
    let violations = check_reads(&adds, &reads);
    assert!(
        violations.is_empty(),
        "{} violations, first: {}",
        violations.len(),
        violations[0]
    );
    let gap = acked
        .windows(2)
        .map(|w| w[1].answered.saturating_sub(w[0].answered))
        .max()
        .unwrap_or_default();
    eprintln!(
        "{kills} leader kills: {} adds acknowledged, {} failed, {} reads checked; longest gap between acknowledged adds {gap:?}",
        acked.len(),
        adds.len() - acked.len(),
        reads.len()
    );
}

#[test]
fn the_checker_finds_stale_and_future_reads() {
    let at = Duration::from_millis;
    let add = |name: &str, invoked, answered| Add {
        host: 0,
        name: name.into(),
        invoked: at(invoked),
        answered: at(answered),
        acked: true,
        error: String::new(),
    };
    let read = |invoked, answered, names: &[&str]| Read {
        host: 0,
        invoked: at(invoked),
        answered: at(answered),
        names: names.iter().map(|n| n.to_string()).collect(),
    };
    let adds = [add("a", 0, 10), add("b", 50, 60)];
    assert!(check_reads(&adds, &[read(20, 30, &["a"]), read(55, 58, &["a", "b"])]).is_empty());
    assert_eq!(check_reads(&adds, &[read(20, 30, &[])]).len(), 1, "stale");
    assert_eq!(
        check_reads(&adds, &[read(20, 30, &["a", "b"])]).len(),
        1,
        "from the future"
    );
}
