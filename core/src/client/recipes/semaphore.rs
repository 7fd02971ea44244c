//! A distributed semaphore with a fixed number of leases, in kazoo's layout: the lease count
//! in the semaphore's znode, one ephemeral child per lease holder, and the lock
//! `<path>-__lock__` that lets one contender at a time look at the leases, so waiting
//! contenders cause no herd effect.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::lock::{Lock, LockKind};
use super::support::{
    child_path, identifiers, normalize, refuse_in_callback, retry, uuid_hex, Deadline, RecipeError,
    RecipeResult, SessionSlot, Signal,
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
    /// The lock `<path>-__lock__` taken to look at the leases; kept, so `cancel` reaches an
    /// acquire waiting on it.
    lock: Lock,
    /// The session the lease node was created under while this holder has one: the
    /// (ephemeral) lease ends with it.
    lease_session: Mutex<Option<i64>>,
    cancelled: AtomicBool,
    path_assured: AtomicBool,
    wake: Arc<Signal>,
    /// Raises `wake`; one for every watch, so waits do not pile up watchers.
    watcher: Watcher,
}

impl Semaphore {
    /// Prepares a lease holder at `path`; nothing is created before `acquire`.
    ///
    /// # Panics
    /// When `leases_max` is 0 (bindings check it first and answer their own error).
    pub fn new(slot: SessionSlot, path: &str, identifier: &str, leases_max: u32) -> Semaphore {
        assert!(leases_max >= 1, "a semaphore needs at least one lease");
        let path = normalize(path);
        let lock = Lock::new(
            slot.clone(),
            &format!("{path}-__lock__"),
            identifier,
            LockKind::Exclusive,
        );
        let wake = Arc::new(Signal::default());
        let raised = wake.clone();
        Semaphore {
            slot,
            create_path: child_path(&path, &uuid_hex()),
            lock,
            path,
            data: identifier.as_bytes().to_vec(),
            leases_max,
            lease_session: Mutex::new(None),
            cancelled: AtomicBool::new(false),
            path_assured: AtomicBool::new(false),
            wake,
            watcher: Watcher::new(move |_| raised.raise()),
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
        self.lock.path()
    }

    /// The identifier stored in the lease node.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// How many leases the semaphore has.
    pub fn leases_max(&self) -> u32 {
        self.leases_max
    }

    /// True while this holder has a lease: taken, and under the slot's live session (the
    /// lease node went with an ended one).
    pub fn is_acquired(&self) -> bool {
        let lease_session = *self.lease_session.lock();
        lease_session.is_some_and(|session_id| {
            self.slot.client().is_ok_and(|client| {
                client.session_id() == session_id && !client.state().is_terminal()
            })
        })
    }

    /// True after `cancel` until a cancelled acquire has reported it.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Makes a pending (or the next) `acquire` fail with `Cancelled`, also while it waits for
    /// the lock that guards the leases.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.lock.cancel();
        self.wake.raise();
    }

    /// Acquires a lease; `Ok(true)` when held. `blocking == false` answers `Ok(false)` at
    /// once when every lease is taken, one attempt at each step; a blocking call waits up to
    /// `timeout` (None: forever), retrying connection loss within it, then fails with
    /// `Timeout`, or `Cancelled` after `cancel`. `LeaseMismatch` when the semaphore was made
    /// with another lease count; `InvalidState` for a blocking call inside a callback of the
    /// slot's client.
    pub fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> RecipeResult<bool> {
        let deadline = if blocking {
            refuse_in_callback(&self.slot)?;
            Deadline::after(timeout)
        } else {
            Deadline::now()
        };
        // Held already: a failure below must not take the lease back.
        if self.is_acquired() {
            return Ok(true);
        }
        match self.inner_acquire(blocking, deadline) {
            Ok(acquired) => Ok(acquired),
            Err(error @ RecipeError::LeaseMismatch { .. }) => Err(error),
            Err(error) => {
                if let Ok(client) = self.slot.client() {
                    let _ = client.delete(&self.create_path, -1);
                }
                // The cancel, if any, is reported now: on this holder and its inner lock.
                self.cancelled.store(false, Ordering::Release);
                self.lock.clear_cancelled();
                *self.lease_session.lock() = None;
                Err(error)
            }
        }
    }

    fn ensure_semaphore_node(&self, deadline: Deadline) -> RecipeResult<()> {
        let count = self.leases_max.to_string();
        let created = retry(deadline, || {
            let client = self.slot.client()?;
            Ok(create_with_parents(&client, &self.path, count.as_bytes())?)
        });
        match created {
            Ok(()) => {}
            Err(error) if error.zookeeper_code() == Some(ErrorCode::NodeExists) => {
                let (stored, _) = retry(deadline, || {
                    Ok(self.slot.client()?.get_data(&self.path, None)?)
                })?;
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
        if self.is_cancelled() {
            return Err(RecipeError::Cancelled);
        }
        if !self.path_assured.load(Ordering::Acquire) {
            self.ensure_semaphore_node(deadline)?;
        }
        if !self.lock.acquire(blocking, deadline.remaining(), true)? {
            return Ok(false);
        }
        let outcome = self.take_lease(blocking, deadline);
        let released = self.lock.release();
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
            let children = retry(deadline, || {
                Ok(self
                    .slot
                    .client()?
                    .get_children(&self.path, Some(self.watcher.clone()))?)
            })?;
            if children.len() < self.leases_max as usize {
                let session_id = self.slot.client()?.session_id();
                let created = retry(deadline, || {
                    Ok(self.slot.client()?.create(
                        &self.create_path,
                        &self.data,
                        &Acl::open_unsafe(),
                        CreateMode::Ephemeral,
                    )?)
                });
                match created {
                    // A retried create whose first reply was lost.
                    Err(error) if error.zookeeper_code() == Some(ErrorCode::NodeExists) => {}
                    Err(error) => return Err(error),
                    Ok(_) => {}
                }
                *self.lease_session.lock() = Some(session_id);
                return Ok(true);
            }
            if !blocking {
                return Ok(false);
            }
            if !self.wake.wait(deadline) {
                return Err(RecipeError::Timeout);
            }
        }
    }

    /// Gives the lease back; `Ok(false)` when this holder had none, a lease lost with its
    /// session included. A lease node found gone (NoNode, or the session expiring during the
    /// call) counts as given back.
    pub fn release(&self) -> RecipeResult<bool> {
        if !self.is_acquired() {
            *self.lease_session.lock() = None;
            return Ok(false);
        }
        match retry(Deadline::none(), || {
            Ok(self.slot.client()?.delete(&self.create_path, -1)?)
        }) {
            Ok(()) => {}
            Err(error) if error.zookeeper_code() == Some(ErrorCode::NoNode) => {}
            Err(error) if error.session_is_gone() => {}
            Err(error) => return Err(error),
        }
        *self.lease_session.lock() = None;
        Ok(true)
    }

    /// The identifiers of the current lease holders, unordered.
    pub fn lease_holders(&self) -> RecipeResult<Vec<String>> {
        if retry(Deadline::none(), || {
            Ok(self.slot.client()?.exists(&self.path, None)?)
        })?
        .is_none()
        {
            return Ok(Vec::new());
        }
        let children = retry(Deadline::none(), || {
            Ok(self.slot.client()?.get_children(&self.path, None)?)
        })?;
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
