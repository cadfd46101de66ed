//! One `swarmr` process of a test cluster: its data dir, log, control socket and
//! lifecycle (kill, clean stop, restart with the same command).

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::cli::wait_until;
use super::BIN;

/// A loopback IP no other node of this test run uses: 127.<pid>.<n>.<n>.
pub(super) fn fresh_ip() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let pid = std::process::id();
    format!(
        "127.{}.{}.{}",
        10 + pid % 240,
        (pid / 240) % 250 + 1,
        n % 250 + 1
    )
}

pub struct Node {
    /// The host network namespace the node runs in (multi-host tests), if any.
    pub netns: Option<String>,
    pub name: String,
    pub ip: String,
    pub data_dir: PathBuf,
    pub(super) child: Option<Child>,
    pub(super) args: Vec<String>,
}

impl Node {
    pub fn addr(&self) -> String {
        format!("{}:2377", self.ip)
    }

    /// `--host` value for this node's control socket.
    pub fn host(&self) -> String {
        format!("unix://{}", self.data_dir.join("swarmr.sock").display())
    }

    pub fn log_path(&self) -> PathBuf {
        self.data_dir.with_extension("log")
    }

    /// The node's `--secrets-key-file`.
    pub fn key_path(&self) -> PathBuf {
        self.data_dir.with_extension("key")
    }

    pub(super) fn spawn(&mut self) {
        std::fs::create_dir_all(&self.data_dir).expect("data dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        // nsenter execs swarmr, so the child's PID is the node's own.
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{ns}")).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let child = command
            .args(&self.args)
            .env("SWARMR_LOG", "info")
            // Beside the data dir, never in it; removed with the cluster's directory.
            .env("SWARMR_SECRETS_KEY_FILE", self.key_path())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start swarmr");
        self.child = Some(child);
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait: a clean stop.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the same command again without waiting for it to come up (it may exit).
    pub fn respawn(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts the same command again (init or join resume from the data dir).
    pub fn restart(&mut self) {
        self.respawn();
        let socket = self.data_dir.join("swarmr.sock");
        let mut exited = false;
        wait_until(&format!("{} socket", self.name), || {
            exited = !self.is_running();
            exited || socket.exists()
        });
        assert!(!exited, "{} exited on restart", self.name);
    }

    /// Starts the node's command again with `extra` flags for this run only.
    pub fn restart_with(&mut self, extra: &[&str]) {
        let saved = self.args.clone();
        self.args.extend(extra.iter().map(|s| s.to_string()));
        self.restart();
        self.args = saved;
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}
