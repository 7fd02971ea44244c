//! A distributed semaphore with a fixed number of leases, in kazoo's layout: the lease count
//! in the semaphore's znode, one ephemeral child per lease holder, and the lock
//! `<path>-__lock__` that lets one contender at a time look at the leases, so waiting
//! contenders cause no herd effect.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::lock::{Lock, LockKind};
use super::support::{
    child_path, identifiers, normalize, retry, uuid_hex, Deadline, RecipeError, RecipeResult,
    SessionSlot, Signal,
};
use crate::client::{Client, Watcher};
use crate::proto::{Acl, CreateMode, ErrorCode};

/// A lease holder of a distributed semaphore (kazoo's `Semaphore`). Every user of one
/// semaphore must pass the same `leases_max`.
pub struct Semaphore {
    slot: SessionSlot,
    path: String,
    data: Vec<u8>,
    leases_max: u32,
    /// This holder's lease node: `<path>/<uuid>`.
    create_path: String,
    lock_path: String,
    acquired: AtomicBool,
    cancelled: AtomicBool,
    path_assured: AtomicBool,
    wake: Arc<Signal>,
}

impl Semaphore {
    /// Prepares a lease holder at `path`; nothing is created before `acquire`.
    ///
    /// # Panics
    /// When `leases_max` is 0 (bindings check it first and answer their own error).
    pub fn new(slot: SessionSlot, path: &str, identifier: &str, leases_max: u32) -> Semaphore {
        assert!(leases_max >= 1, "a semaphore needs at least one lease");
        let path = normalize(path);
        Semaphore {
            slot,
            create_path: child_path(&path, &uuid_hex()),
            lock_path: format!("{path}-__lock__"),
            path,
            data: identifier.as_bytes().to_vec(),
            leases_max,
            acquired: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
            path_assured: AtomicBool::new(false),
            wake: Arc::new(Signal::default()),
        }
    }

    /// The semaphore's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// This holder's lease node.
    pub fn create_path(&self) -> &str {
        &self.create_path
    }

    /// The lock contenders take to look at the leases.
    pub fn lock_path(&self) -> &str {
        &self.lock_path
    }

    /// The identifier stored in the lease node.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// How many leases the semaphore has.
    pub fn leases_max(&self) -> u32 {
        self.leases_max
    }

    /// True while this holder has a lease.
    pub fn is_acquired(&self) -> bool {
        self.acquired.load(Ordering::Acquire)
    }

    /// True after `cancel` until the cancelled acquire reported it.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Makes a pending `acquire` fail with `Cancelled`.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.wake.raise();
    }

    /// Acquires a lease; `Ok(true)` when held. `blocking == false` answers `Ok(false)` at
    /// once when every lease is taken; a blocking call waits up to `timeout` (None: forever),
    /// then fails with `Timeout`. `LeaseMismatch` when the semaphore was made with another
    /// lease count.
    pub fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> RecipeResult<bool> {
        self.cancelled.store(false, Ordering::Release);
        let deadline = Deadline::after(timeout);
        match self.inner_acquire(blocking, deadline) {
            Ok(acquired) => {
                self.acquired.store(acquired, Ordering::Release);
                Ok(acquired)
            }
            Err(error @ RecipeError::LeaseMismatch { .. }) => Err(error),
            Err(error) => {
                if let Ok(client) = self.slot.client() {
                    let _ = client.delete(&self.create_path, -1);
                }
                self.cancelled.store(false, Ordering::Release);
                self.acquired.store(false, Ordering::Release);
                Err(error)
            }
        }
    }

    fn ensure_semaphore_node(&self) -> RecipeResult<()> {
        let count = self.leases_max.to_string();
        let created = retry(|| {
            let client = self.slot.client()?;
            Ok(create_with_parents(&client, &self.path, count.as_bytes())?)
        });
        match created {
            Ok(()) => {}
            Err(error) if error.zookeeper_code() == Some(ErrorCode::NodeExists) => {
                let (stored, _) = retry(|| Ok(self.slot.client()?.get_data(&self.path, None)?))?;
                let stored = stored.unwrap_or_default();
                // Non-numeric data: the znode is used for something else too (kazoo's rule).
                if let Some(stored) = std::str::from_utf8(&stored)
                    .ok()
                    .and_then(|text| text.trim().parse::<u32>().ok())
                {
                    if stored != self.leases_max {
                        return Err(RecipeError::LeaseMismatch {
                            stored,
                            expected: self.leases_max,
                        });
                    }
                }
            }
            Err(error) => return Err(error),
        }
        self.path_assured.store(true, Ordering::Release);
        Ok(())
    }

    fn inner_acquire(&self, blocking: bool, deadline: Deadline) -> RecipeResult<bool> {
        if !self.path_assured.load(Ordering::Acquire) {
            self.ensure_semaphore_node()?;
        }
        if retry(|| Ok(self.slot.client()?.exists(&self.create_path, None)?))?.is_some() {
            return Ok(true);
        }
        let identifier = String::from_utf8_lossy(&self.data);
        let lock = Lock::new(
            self.slot.clone(),
            &self.lock_path,
            &identifier,
            LockKind::Exclusive,
        );
        if !lock.acquire(blocking, deadline.remaining(), true)? {
            return Ok(false);
        }
        let outcome = self.take_lease(blocking, deadline);
        let released = lock.release();
        let acquired = outcome?;
        released?;
        Ok(acquired)
    }

    /// Holding the lock: takes a lease when one is free, else waits for a holder to leave.
    fn take_lease(&self, blocking: bool, deadline: Deadline) -> RecipeResult<bool> {
        loop {
            self.wake.lower();
            if self.is_cancelled() {
                return Err(RecipeError::Cancelled);
            }
            let wake = self.wake.clone();
            let watcher = Watcher::new(move |_| wake.raise());
            let children = retry(|| {
                Ok(self
                    .slot
                    .client()?
                    .get_children(&self.path, Some(watcher.clone()))?)
            })?;
            if children.len() < self.leases_max as usize {
                let created = retry(|| {
                    Ok(self.slot.client()?.create(
                        &self.create_path,
                        &self.data,
                        &Acl::open_unsafe(),
                        CreateMode::Ephemeral,
                    )?)
                });
                return match created {
                    // A retried create whose first reply was lost.
                    Err(error) if error.zookeeper_code() == Some(ErrorCode::NodeExists) => Ok(true),
                    Err(error) => Err(error),
                    Ok(_) => Ok(true),
                };
            }
            if !blocking {
                return Ok(false);
            }
            if !self.wake.wait(deadline) {
                return Err(RecipeError::Timeout);
            }
        }
    }

    /// Gives the lease back; `Ok(false)` when this holder had none.
    pub fn release(&self) -> RecipeResult<bool> {
        if !self.is_acquired() {
            return Ok(false);
        }
        match retry(|| Ok(self.slot.client()?.delete(&self.create_path, -1)?)) {
            Ok(()) => {}
            Err(error) if error.zookeeper_code() == Some(ErrorCode::NoNode) => {}
            Err(error) => return Err(error),
        }
        self.acquired.store(false, Ordering::Release);
        Ok(true)
    }

    /// The identifiers of the current lease holders, unordered.
    pub fn lease_holders(&self) -> RecipeResult<Vec<String>> {
        if retry(|| Ok(self.slot.client()?.exists(&self.path, None)?))?.is_none() {
            return Ok(Vec::new());
        }
        let children = retry(|| Ok(self.slot.client()?.get_children(&self.path, None)?))?;
        let paths: Vec<String> = children
            .iter()
            .map(|child| child_path(&self.path, child))
            .collect();
        identifiers(&self.slot, &paths)
    }
}

/// Creates `path` with `data`, and its missing ancestors empty (kazoo's `makepath=True`).
fn create_with_parents(client: &Client, path: &str, data: &[u8]) -> crate::client::Result<()> {
    match client.create(path, data, &Acl::open_unsafe(), CreateMode::Persistent) {
        Ok(_) => Ok(()),
        Err(error) if error.code() == ErrorCode::NoNode => {
            if let Some(index) = path.rfind('/').filter(|index| *index > 0) {
                match create_with_parents(client, &path[..index], b"") {
                    Err(error) if error.code() != ErrorCode::NodeExists => return Err(error),
                    _ => {}
                }
            }
            client
                .create(path, data, &Acl::open_unsafe(), CreateMode::Persistent)
                .map(drop)
        }
        Err(error) => Err(error),
    }
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore")
            .field("path", &self.path)
            .field("leases_max", &self.leases_max)
            .field("acquired", &self.is_acquired())
            .finish()
    }
}
