//! Distributed locks: the exclusive `Lock` and the read and write sides of a shared lock, with
//! kazoo's node names, so kazoo processes and ours exclude each other.
//!
//! A contender creates an ephemeral sequential znode `<uuid><name><sequence>` under the lock
//! path and holds the lock when no contender it must exclude has a lower sequence number;
//! otherwise it watches the nearest such predecessor only (no herd effect) and looks again when
//! that one goes. The znodes are ephemeral, so a holder whose session ends releases the lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::protected::create_protected;
use super::support::{
    child_path, ensure_path, identifiers, normalize, refuse_in_callback, retry, split_sequence,
    uuid_hex, Deadline, RecipeError, RecipeResult, SessionSlot, Signal,
};
use crate::client::Watcher;
use crate::proto::{CreateMode, ErrorCode};

/// Which side of a lock a contender takes; it decides the node name and who excludes whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// kazoo's `Lock`: one holder at a time.
    Exclusive,
    /// kazoo's `ReadLock`: any number of readers together, after every earlier writer.
    Read,
    /// kazoo's `WriteLock`: alone, after every earlier reader and writer.
    Write,
}

/// kazoo's node name for writers and exclusive holders.
const WRITE_NAME: &str = "__lock__";
/// kazoo's node name for readers.
const READ_NAME: &str = "__rlock__";

impl LockKind {
    fn node_name(self) -> &'static str {
        match self {
            LockKind::Exclusive | LockKind::Write => WRITE_NAME,
            LockKind::Read => READ_NAME,
        }
    }

    /// Node names that exclude this contender when present at a lower sequence number.
    fn excluded_by(self) -> &'static [&'static str] {
        match self {
            LockKind::Exclusive | LockKind::Read => &[WRITE_NAME],
            LockKind::Write => &[WRITE_NAME, READ_NAME],
        }
    }
}

#[derive(Default)]
struct Held {
    /// The name (not path) of this contender's znode while it has one.
    node: Option<String>,
    /// The session the znode was created under: an ephemeral one ends with it, and the lock
    /// with it.
    session_id: i64,
    ephemeral: bool,
    acquired: bool,
}

/// A contender for a distributed lock; not reentrant. Share it between threads by reference:
/// `cancel` from one thread stops an `acquire` waiting on another.
pub struct Lock {
    slot: SessionSlot,
    path: String,
    data: Vec<u8>,
    kind: LockKind,
    extra_exclusions: Vec<String>,
    /// `<uuid><node name>`: a retried create finds the node a lost reply created (Curator's
    /// protected create, as kazoo does it).
    prefix: String,
    held: Mutex<Held>,
    cancelled: AtomicBool,
    wake: Arc<Signal>,
    /// Raises `wake`; one for every watch the contender sets, so waits do not pile up watchers.
    watcher: Watcher,
    /// One acquire at a time per contender: a second waits for the first.
    acquiring: Mutex<()>,
}

/// Our contender znode is gone (its session ended): create a new one and start over.
struct NodeVanished;

impl Lock {
    /// Prepares a contender for the lock at `path`; nothing is created before `acquire`.
    /// `identifier` is stored in the contender's znode and listed by `contenders`.
    pub fn new(slot: SessionSlot, path: &str, identifier: &str, kind: LockKind) -> Lock {
        let wake = Arc::new(Signal::default());
        let raised = wake.clone();
        Lock {
            slot,
            path: normalize(path),
            data: identifier.as_bytes().to_vec(),
            kind,
            extra_exclusions: Vec::new(),
            prefix: uuid_hex() + kind.node_name(),
            held: Mutex::new(Held::default()),
            cancelled: AtomicBool::new(false),
            wake,
            // Any event wakes the waiter: the predecessor going, or a connection change that
            // may mean our own node is gone.
            watcher: Watcher::new(move |_| raised.raise()),
            acquiring: Mutex::new(()),
        }
    }

    /// Also yields to contenders whose node names end in one of `names` (other
    /// implementations' lock nodes; kazoo's `extra_lock_patterns`).
    pub fn with_extra_exclusions(mut self, names: &[&str]) -> Lock {
        self.extra_exclusions = names.iter().map(|name| name.to_string()).collect();
        self
    }

    /// The lock's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path this contender creates its node at, before the sequence number.
    pub fn create_path(&self) -> String {
        child_path(&self.path, &self.prefix)
    }

    /// The random prefix of this contender's node name.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The identifier stored in this contender's znode.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The name of this contender's znode while it has one.
    pub fn node(&self) -> Option<String> {
        self.held.lock().node.clone()
    }

    /// True while this contender holds the lock: acquired, and for an ephemeral znode, the
    /// session it was created under is still the slot's and alive (the znode went with it).
    pub fn is_acquired(&self) -> bool {
        let held = self.held.lock();
        held.acquired && self.node_lives(&held)
    }

    /// False once an ephemeral znode's session is no longer the slot's live one.
    fn node_lives(&self, held: &Held) -> bool {
        !held.ephemeral
            || self.slot.client().is_ok_and(|client| {
                client.session_id() == held.session_id && !client.state().is_terminal()
            })
    }

    /// Forgets a znode that went with its session, so the next acquire starts afresh.
    fn forget_lost_node(&self) {
        let mut held = self.held.lock();
        if held.node.is_some() && !self.node_lives(&held) {
            *held = Held::default();
        }
    }

    /// True after `cancel` until a cancelled acquire has reported it.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Makes a pending (or the next) `acquire` fail with `Cancelled`.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.wake.raise();
    }

    /// Forgets a cancel that another recipe's acquire reported for this lock (a semaphore's
    /// cancel reaches its inner lock, whose acquire may have succeeded first).
    pub(crate) fn clear_cancelled(&self) {
        self.cancelled.store(false, Ordering::Release);
    }

    /// Acquires the lock; `Ok(true)` when held.
    ///
    /// `blocking == false` answers `Ok(false)` at once when another contender holds it, and
    /// makes one attempt at each step (a connection loss is not retried). A blocking call
    /// waits up to `timeout` (None: forever), then fails with `Timeout`, or with `Cancelled`
    /// after `cancel`; connection loss is retried within that time. `ephemeral == false`
    /// makes the node persistent: the lock then outlives the session and only `release` frees
    /// it. A failed or non-blocking attempt leaves no node behind. `InvalidState` for a
    /// blocking call inside a callback of the slot's client (see `refuse_in_callback`).
    pub fn acquire(
        &self,
        blocking: bool,
        timeout: Option<Duration>,
        ephemeral: bool,
    ) -> RecipeResult<bool> {
        let deadline = if blocking {
            refuse_in_callback(&self.slot)?;
            Deadline::after(timeout)
        } else {
            Deadline::now()
        };
        let _serial = match (blocking, deadline.remaining()) {
            (false, _) => self.acquiring.try_lock(),
            (true, None) => Some(self.acquiring.lock()),
            (true, Some(remaining)) => match self.acquiring.try_lock_for(remaining) {
                Some(serial) => Some(serial),
                None => return Err(RecipeError::Timeout),
            },
        };
        let Some(_serial) = _serial else {
            return Ok(false);
        };
        self.forget_lost_node();
        let already_acquired = self.is_acquired();
        match self.acquire_until(blocking, deadline, ephemeral) {
            Ok(true) => {
                self.held.lock().acquired = true;
                Ok(true)
            }
            Ok(false) => {
                if !already_acquired {
                    self.best_effort_cleanup();
                }
                Ok(false)
            }
            Err(error) => {
                if !already_acquired {
                    self.best_effort_cleanup();
                }
                self.cancelled.store(false, Ordering::Release);
                Err(error)
            }
        }
    }

    fn acquire_until(
        &self,
        blocking: bool,
        deadline: Deadline,
        ephemeral: bool,
    ) -> RecipeResult<bool> {
        if self.is_acquired() {
            // Not reentrant: a second acquire on a held lock waits as kazoo's does, for
            // cancel() or the timeout, and then reports failure.
            if blocking {
                self.wake.lower();
                self.wake.wait(deadline);
                if self.is_cancelled() {
                    return Err(RecipeError::Cancelled);
                }
            }
            return Ok(false);
        }
        loop {
            match self.contend(blocking, deadline, ephemeral)? {
                Ok(gotten) => return Ok(gotten),
                // Our session ended under us; a client with a new session gets a fresh place
                // in line.
                Err(NodeVanished) => {
                    self.held.lock().node = None;
                    if deadline.expired() {
                        return if blocking {
                            Err(RecipeError::Timeout)
                        } else {
                            Ok(false)
                        };
                    }
                }
            }
        }
    }

    fn contend(
        &self,
        blocking: bool,
        deadline: Deadline,
        ephemeral: bool,
    ) -> RecipeResult<Result<bool, NodeVanished>> {
        retry(deadline, || ensure_path(&*self.slot.client()?, &self.path))?;
        let node = match self.node() {
            Some(node) => node,
            None => {
                let mode = if ephemeral {
                    CreateMode::EphemeralSequential
                } else {
                    CreateMode::PersistentSequential
                };
                let session_id = self.slot.client()?.session_id();
                let created = create_protected(
                    &self.slot,
                    &self.path,
                    &self.prefix,
                    &self.data,
                    mode,
                    deadline,
                )?;
                let node = created.rsplit('/').next().unwrap_or_default().to_string();
                let mut held = self.held.lock();
                held.node = Some(node.clone());
                held.session_id = session_id;
                held.ephemeral = ephemeral;
                node
            }
        };
        loop {
            self.wake.lower();
            if self.is_cancelled() {
                return Err(RecipeError::Cancelled);
            }
            let predecessor = match self.predecessor(&node, deadline)? {
                Ok(None) => return Ok(Ok(true)),
                Ok(Some(predecessor)) => predecessor,
                Err(vanished) => return Ok(Err(vanished)),
            };
            if !blocking {
                return Ok(Ok(false));
            }
            let predecessor_path = child_path(&self.path, &predecessor);
            let exists = retry(deadline, || {
                Ok(self
                    .slot
                    .client()?
                    .exists(&predecessor_path, Some(self.watcher.clone()))?)
            })?;
            if exists.is_none() {
                continue;
            }
            if !self.wake.wait(deadline) {
                return Err(RecipeError::Timeout);
            }
        }
    }

    /// The nearest contender before `node` that excludes us; None when we hold the lock.
    fn predecessor(
        &self,
        node: &str,
        deadline: Deadline,
    ) -> RecipeResult<Result<Option<String>, NodeVanished>> {
        let our_sequence = split_sequence(node).map(|(_, sequence)| sequence);
        let children = retry(deadline, || {
            Ok(self.slot.client()?.get_children(&self.path, None)?)
        })?;
        let mut found_self = false;
        let mut best: Option<(i64, &String)> = None;
        for child in &children {
            if child == node {
                found_self = true;
                continue;
            }
            let (Some(sequence), Some(ours)) = (self.excluding_sequence(child), our_sequence)
            else {
                continue;
            };
            if sequence < ours && best.is_none_or(|(best_sequence, _)| sequence > best_sequence) {
                best = Some((sequence, child));
            }
        }
        if !found_self {
            return Ok(Err(NodeVanished));
        }
        Ok(Ok(best.map(|(_, child)| child.clone())))
    }

    /// The sequence number of `child` if it is a contender that excludes us.
    fn excluding_sequence(&self, child: &str) -> Option<i64> {
        let (stem, sequence) = split_sequence(child)?;
        let excludes = self
            .kind
            .excluded_by()
            .iter()
            .any(|name| stem.ends_with(name))
            || self
                .extra_exclusions
                .iter()
                .any(|name| stem.ends_with(name.as_str()));
        excludes.then_some(sequence)
    }

    fn best_effort_cleanup(&self) {
        let node = self.node().or_else(|| {
            let children = self
                .slot
                .client()
                .ok()?
                .get_children(&self.path, None)
                .ok()?;
            children
                .into_iter()
                .find(|child| child.starts_with(&self.prefix))
        });
        if let (Some(node), Ok(client)) = (node, self.slot.client()) {
            let _ = client.delete(&child_path(&self.path, &node), -1);
        }
        self.held.lock().node = None;
    }

    /// Releases the lock; `Ok(false)` when this contender did not hold it, a lock lost with
    /// its session included. An ephemeral znode found gone (NoNode, or the session expiring
    /// during the call) counts as released.
    pub fn release(&self) -> RecipeResult<bool> {
        self.forget_lost_node();
        if !self.is_acquired() {
            return Ok(false);
        }
        let (node, ephemeral) = {
            let held = self.held.lock();
            (held.node.clone(), held.ephemeral)
        };
        if let Some(node) = node {
            let path = child_path(&self.path, &node);
            match retry(Deadline::none(), || {
                Ok(self.slot.client()?.delete(&path, -1)?)
            }) {
                Ok(()) => {}
                Err(error) if error.zookeeper_code() == Some(ErrorCode::NoNode) => {}
                Err(error) if ephemeral && error.session_is_gone() => {}
                Err(error) => return Err(error),
            }
        }
        *self.held.lock() = Held::default();
        Ok(true)
    }

    /// The identifiers of every contender, holders first, then in line. A contender created
    /// without an identifier appears as "".
    pub fn contenders(&self) -> RecipeResult<Vec<String>> {
        retry(Deadline::none(), || {
            ensure_path(&*self.slot.client()?, &self.path)
        })?;
        let children = retry(Deadline::none(), || {
            Ok(self.slot.client()?.get_children(&self.path, None)?)
        })?;
        let names: Vec<&str> = [self.kind.node_name()]
            .into_iter()
            .chain(self.kind.excluded_by().iter().copied())
            .chain(self.extra_exclusions.iter().map(String::as_str))
            .collect();
        let mut ordered: Vec<(i64, String)> = children
            .into_iter()
            .filter_map(|child| {
                let (stem, sequence) = split_sequence(&child)?;
                let contender = names.iter().any(|name| stem.ends_with(name));
                contender.then_some((sequence, child.clone()))
            })
            .collect();
        ordered.sort();
        let paths: Vec<String> = ordered
            .iter()
            .map(|(_, child)| child_path(&self.path, child))
            .collect();
        identifiers(&self.slot, &paths)
    }
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("node", &self.node())
            .finish()
    }
}
