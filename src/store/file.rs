//! The file store: the position in a local state file, replaced atomically on each write, and
//! the advisory lock on `<state_file>.lock` that makes one instance per state file visible.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::types::{lock_path, parse_position, show_value, LeaseHolder, StoreError};
use crate::value::Id;

/// The position in a local file, replaced atomically on each write.
pub struct FileStore {
    path: PathBuf,
    dir: PathBuf,
    /// The lock file, while this instance holds its lock (`Store::lock`).
    lock: Option<File>,
}

/// Makes temporary file names unique within this process.
// pub(super) for the facade's tests (mod.rs), whose temporary directories share it.
pub(super) static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl FileStore {
    /// `path`'s directory must exist: creating it would hide a typo in `state_file`.
    pub fn open(path: &Path) -> Result<FileStore, StoreError> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        match fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(StoreError::File {
                    path: path.to_owned(),
                    doing: "opening",
                    cause: io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{} is not a directory", dir.display()),
                    ),
                })
            }
            Err(e) => {
                return Err(StoreError::File {
                    path: path.to_owned(),
                    doing: "opening",
                    cause: io::Error::new(
                        e.kind(),
                        format!(
                            "its directory {}: {e}; create it or set repliqate.state_file",
                            dir.display()
                        ),
                    ),
                })
            }
        }
        Ok(FileStore {
            path: path.to_owned(),
            dir,
            lock: None,
        })
    }

    pub(super) fn describe(&self) -> String {
        format!("state file {}", self.path.display())
    }

    pub(super) fn read(&mut self) -> Result<Option<Id>, StoreError> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(cause) => {
                return Err(StoreError::File {
                    path: self.path.clone(),
                    doing: "reading",
                    cause,
                })
            }
        };
        match parse_position(&bytes) {
            Some(id) => Ok(Some(id)),
            None => Err(StoreError::Corrupt {
                store: self.describe(),
                value: show_value(&bytes),
            }),
        }
    }

    pub(super) fn lock(&mut self, owner: &str) -> Result<(), StoreError> {
        if self.lock.is_some() {
            return Ok(());
        }
        let path = lock_path(&self.path);
        let err = |doing, cause| StoreError::File {
            path: path.clone(),
            doing,
            cause,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|cause| err("opening the lock file", cause))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    path: self.path.clone(),
                    holder: read_holder(&mut file),
                })
            }
            Err(fs::TryLockError::Error(cause)) => return Err(err("locking", cause)),
        }
        // Who holds it, for the other side's message.
        file.set_len(0)
            .and_then(|()| file.write_all(format!("{owner}\n").as_bytes()))
            .map_err(|cause| err("writing the lock file", cause))?;
        self.lock = Some(file);
        Ok(())
    }

    /// The instance holding the lock, found without taking it for more than a moment and
    /// without creating the lock file.
    pub(super) fn lock_holder(&mut self) -> Result<Option<LeaseHolder>, StoreError> {
        let path = lock_path(&self.path);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(cause) => {
                return Err(StoreError::File {
                    path,
                    doing: "opening the lock file",
                    cause,
                })
            }
        };
        match file.try_lock_shared() {
            // Nobody holds it; ours goes with the file.
            Ok(()) => Ok(None),
            Err(fs::TryLockError::WouldBlock) => Ok(Some(LeaseHolder {
                owner: read_holder(&mut file),
                expires_in: None,
            })),
            Err(fs::TryLockError::Error(cause)) => Err(StoreError::File {
                path,
                doing: "locking",
                cause,
            }),
        }
    }

    /// Removes the state file (and makes that durable): no position is stored.
    pub(super) fn remove(&mut self) -> Result<(), StoreError> {
        let err = |doing, cause| StoreError::File {
            path: self.path.clone(),
            doing,
            cause,
        };
        match fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(cause) => return Err(err("removing the", cause)),
        }
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|cause| err("syncing the directory of the", cause))
    }

    /// Write to a new temporary file, fsync it, rename it over the old one, fsync the
    /// directory: after a crash the file holds either the old or the new position, never a mix
    /// (rename(2) is atomic; the directory fsync makes the rename itself durable).
    pub(super) fn write(&mut self, pos: Id) -> Result<(), StoreError> {
        let file_name = self
            .path
            .file_name()
            .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
        let tmp = self.dir.join(format!(
            ".{file_name}.tmp-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let err = |doing, cause| StoreError::File {
            path: self.path.clone(),
            doing,
            cause,
        };
        let written = (|| {
            // 0600 from creation on, and O_EXCL so that we never write through a planted link.
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(format!("{pos}\n").as_bytes())?;
            file.sync_all()
        })();
        if let Err(cause) = written {
            let _ = fs::remove_file(&tmp);
            return Err(err("writing a temporary file next to the", cause));
        }
        if let Err(cause) = fs::rename(&tmp, &self.path) {
            let _ = fs::remove_file(&tmp);
            return Err(err("replacing the", cause));
        }
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|cause| err("syncing the directory of the", cause))
    }
}

/// The owner a lock file names (what its holder wrote), for messages.
fn read_holder(file: &mut File) -> String {
    use std::io::Read;
    let mut text = String::new();
    let _ = file.take(256).read_to_string(&mut text);
    match text.trim() {
        "" => "an instance that has not written its name yet".to_string(),
        owner => owner.to_string(),
    }
}
