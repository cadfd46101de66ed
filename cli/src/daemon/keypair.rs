//! The node's key and certificate are one pair: a crash must never leave a new key next
//! to an old certificate (the node could not start again). A new pair is staged first
//! (`node.key.new`, then `node.crt.new`, each written whole and fsynced), the directory is
//! fsynced, and only then are both renamed into place, key first. At start,
//! [`recover`] finishes a swap a crash interrupted: a staged certificate means the staged
//! pair is complete, so both are moved in; a staged key alone is a pair never completed,
//! and is dropped (the old pair is intact).

use std::path::Path;

use anyhow::Context;

use super::certs::write_file;

pub const STAGED_KEY: &str = "node.key.new";
pub const STAGED_CERT: &str = "node.crt.new";

/// Replaces `key_name` and `cert_name` in `dir` by the new pair, as one change.
pub fn swap(dir: &Path, names: (&str, &str), key_pem: &str, cert_pem: &str) -> anyhow::Result<()> {
    write_file(&dir.join(STAGED_KEY), key_pem, 0o600)?;
    write_file(&dir.join(STAGED_CERT), cert_pem, 0o644)?;
    sync_dir(dir)?;
    finish(dir, names)
}

/// Completes or drops a swap a crash interrupted; nothing to do after a clean run.
pub fn recover(dir: &Path, names: (&str, &str)) -> anyhow::Result<()> {
    if dir.join(STAGED_CERT).exists() {
        return finish(dir, names);
    }
    let key = dir.join(STAGED_KEY);
    if key.exists() {
        std::fs::remove_file(&key).with_context(|| format!("remove {}", key.display()))?;
    }
    Ok(())
}

fn finish(dir: &Path, (key_name, cert_name): (&str, &str)) -> anyhow::Result<()> {
    let rename = |from: &str, to: &str| {
        let (from, to) = (dir.join(from), dir.join(to));
        std::fs::rename(&from, &to).with_context(|| format!("move {} into place", from.display()))
    };
    // After a crash between the two, the key may already be in place.
    if dir.join(STAGED_KEY).exists() {
        rename(STAGED_KEY, key_name)?;
    }
    rename(STAGED_CERT, cert_name)?;
    sync_dir(dir)
}

/// Makes the directory's entries (creations, renames) durable.
pub fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("sync {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: (&str, &str) = ("node.key", "node.crt");

    fn read(dir: &Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).unwrap_or_default()
    }

    fn pair(dir: &Path) -> (String, String) {
        (read(dir, "node.key"), read(dir, "node.crt"))
    }

    #[test]
    fn a_crash_mid_swap_never_leaves_a_mixed_pair() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        swap(d, NAMES, "key1", "cert1").unwrap();
        assert_eq!(pair(d), ("key1".into(), "cert1".into()));

        // Crashed after the key moved in, before the certificate did.
        std::fs::write(d.join(STAGED_CERT), "cert2").unwrap();
        std::fs::write(d.join("node.key"), "key2").unwrap();
        recover(d, NAMES).unwrap();
        assert_eq!(pair(d), ("key2".into(), "cert2".into()));

        // Crashed after staging both, before any rename.
        std::fs::write(d.join(STAGED_KEY), "key3").unwrap();
        std::fs::write(d.join(STAGED_CERT), "cert3").unwrap();
        recover(d, NAMES).unwrap();
        assert_eq!(pair(d), ("key3".into(), "cert3".into()));

        // Crashed while staging: the old pair stays, the half-staged key goes.
        std::fs::write(d.join(STAGED_KEY), "key4").unwrap();
        recover(d, NAMES).unwrap();
        assert_eq!(pair(d), ("key3".into(), "cert3".into()));
        assert!(!d.join(STAGED_KEY).exists());

        // Clean: nothing to do, twice.
        recover(d, NAMES).unwrap();
        recover(d, NAMES).unwrap();
        assert_eq!(pair(d), ("key3".into(), "cert3".into()));
    }
}
