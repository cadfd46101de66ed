//! Namespaces: sandboxes bind-mounted as `ip netns add` does, and netlink
//! sockets opened inside a namespace from a dedicated OS thread (never a
//! tokio worker: `setns` and `unshare` change the calling thread for good).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statfs::{statfs, NSFS_MAGIC};
use rtnetlink::Handle;

use crate::error::Cause;

/// Runs `f` on a fresh OS thread that exits afterwards.
pub(crate) async fn on_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Cause> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("swarmr-netns".into())
        .spawn(move || {
            // The receiver only goes away if the caller was cancelled.
            let _ = tx.send(f());
        })?;
    rx.await
        .map_err(|_| Cause::Other("namespace thread died".into()))
}

/// Opens a netlink connection inside the namespace `ns_file` refers to;
/// the connection is driven on the current tokio runtime.
pub(crate) async fn connect_in(ns_file: File) -> Result<Handle, Cause> {
    let runtime = tokio::runtime::Handle::current();
    let (conn, handle) = on_thread(move || -> Result<_, Cause> {
        setns(&ns_file, CloneFlags::CLONE_NEWNET)?;
        // The socket is created here, so it stays bound to this namespace.
        let _enter = runtime.enter();
        let (conn, handle, _) = rtnetlink::new_connection()?;
        Ok((conn, handle))
    })
    .await??;
    tokio::spawn(conn);
    Ok(handle)
}

/// True if `path` is a bind-mounted network namespace.
pub(crate) fn is_netns(path: &Path) -> bool {
    statfs(path).is_ok_and(|s| s.filesystem_type() == NSFS_MAGIC)
}

/// Usable sandboxes in `dir` whose name starts with `prefix`.
pub(crate) fn list_sandboxes(dir: &Path, prefix: &str) -> Result<Vec<String>, Cause> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err.into()),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) && is_netns(&entry.path()) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// `ip netns add <name>`, unless it exists. Must run on a dedicated thread:
/// it unshares the calling thread's network namespace.
pub(crate) fn create_sandbox(dir: &Path, name: &str) -> Result<(), Cause> {
    fs::create_dir_all(dir)?;
    make_shared(dir)?;
    let path = dir.join(name);
    if is_netns(&path) {
        return Ok(());
    }
    // A file left by a crash between create and bind mount.
    remove_sandbox(&path)?;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o000)
        .open(&path)?;
    let bound = unshare(CloneFlags::CLONE_NEWNET).and_then(|()| {
        let tid = nix::unistd::gettid();
        let own = format!("/proc/self/task/{tid}/ns/net");
        mount(
            Some(own.as_str()),
            &path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    });
    if let Err(err) = bound {
        let _ = fs::remove_file(&path);
        return Err(err.into());
    }
    Ok(())
}

/// Like iproute2: make `dir` a shared mount point, so that unmounting a
/// namespace there is seen by every mount namespace.
fn make_shared(dir: &Path) -> Result<(), Cause> {
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    match mount(None::<&str>, dir, Some("none"), shared, None::<&str>) {
        Ok(()) => return Ok(()),
        Err(Errno::EINVAL) => {}
        Err(err) => return Err(err.into()),
    }
    // Not a mount point yet: bind it on itself, then retry.
    let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(Some(dir), dir, Some("none"), bind, None::<&str>)?;
    mount(None::<&str>, dir, Some("none"), shared, None::<&str>)?;
    Ok(())
}

/// `ip netns delete`: lazy unmount and unlink; a missing sandbox is fine.
pub(crate) fn remove_sandbox(path: &Path) -> Result<(), Cause> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(err) => return Err(err.into()),
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err.into()),
    }
}
