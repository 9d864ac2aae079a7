//! One writer per run folder. A trainer holds an exclusive lock on the folder's
//! `training.lock` for as long as it runs, and writes its process ID into it; a second
//! trainer (`--resume`, `--out` or `sweep`) is refused, naming the folder and that process.
//! The operating system drops the lock when the process ends, however it ends (`kill -9`
//! included), so a lock is never left stale. Readers (`evaluate`, `predict`, `compare`,
//! `export`) take no lock: they read files that are replaced whole, or appended to a
//! whole line at a time (`metrics.csv`, whose torn last line they leave out), and write
//! none that a trainer writes.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// The lock's file name in a run folder.
pub const FILE: &str = "training.lock";

/// The exclusive right to write a run folder, held until it is dropped.
#[derive(Debug)]
pub(crate) struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock of the existing folder `run`, or says which process holds it.
    pub(crate) fn acquire(run: &Path) -> Result<RunLock> {
        RunLock::take(run, true)?.with_context(|| format!("creating {}", run.join(FILE).display()))
    }

    /// [`RunLock::acquire`], where the folder `run` already has a lock file: a folder
    /// another process trains is refused before anything in it is looked at, and none is
    /// made. `None` where there is no lock file.
    pub(crate) fn acquire_if_present(run: &Path) -> Result<Option<RunLock>> {
        RunLock::take(run, false)
    }

    fn take(run: &Path, create: bool) -> Result<Option<RunLock>> {
        let path = run.join(FILE);
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(&path);
        let mut file = match opened {
            Ok(file) => file,
            Err(e) if !create && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => bail!(
                "{} is being trained by another process{}; a run folder has one writer. Wait \
                 for it to end (or stop it with Ctrl-C), or give another folder",
                run.display(),
                holder(&path).map_or(String::new(), |pid| format!(" (PID {pid})"))
            ),
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
        file.set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Some(RunLock { _file: file }))
    }
}

/// The process ID the lock file at `path` names, when it names one.
fn holder(path: &Path) -> Option<u32> {
    let bytes = crate::files::read_regular(path, crate::files::SMALL_FILE).ok()?;
    String::from_utf8(bytes).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holder_and_taken_once_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let err = RunLock::acquire(dir.path()).unwrap_err().to_string();
        let pid = format!("PID {}", std::process::id());
        assert!(err.contains(&pid) && err.contains("one writer"), "{err}");
        drop(first);
        RunLock::acquire(dir.path()).unwrap();
    }
}
