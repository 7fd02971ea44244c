//! Leader election by running a function while holding a lock (kazoo's `Election`): leadership
//! lasts while the function runs. For a long-lived leader told when it gains and loses
//! leadership, see `LeaderLatch`.

use super::lock::{Lock, LockKind};
use super::support::{RecipeError, RecipeResult, SessionSlot};

/// A contender in an election.
pub struct LeaderElection {
    lock: Lock,
}

/// Releases the lock if the leader's function unwinds, as a `with` block would.
struct ReleaseOnUnwind<'a> {
    lock: &'a Lock,
    armed: bool,
}

impl Drop for ReleaseOnUnwind<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.lock.release();
        }
    }
}

impl LeaderElection {
    /// Prepares a contender in the election at `path`, listed as `identifier`.
    pub fn new(slot: SessionSlot, path: &str, identifier: &str) -> LeaderElection {
        LeaderElection {
            lock: Lock::new(slot, path, identifier, LockKind::Exclusive),
        }
    }

    /// Blocks until elected, runs `lead`, and gives up leadership when it returns; its value
    /// comes back as `Some`. `Ok(None)` without running it after `cancel`. A leader whose
    /// session ends is replaced, but its function is not interrupted; the next `run` contends
    /// afresh. `InvalidState` inside a callback of the slot's client.
    pub fn run<T>(&self, lead: impl FnOnce() -> T) -> RecipeResult<Option<T>> {
        match self.lock.acquire(true, None, true) {
            Ok(true) => {}
            // Not elected: only lead a lock this contender holds.
            Ok(false) | Err(RecipeError::Cancelled) => return Ok(None),
            Err(error) => return Err(error),
        }
        let mut guard = ReleaseOnUnwind {
            lock: &self.lock,
            armed: true,
        };
        let value = lead();
        guard.armed = false;
        self.lock.release()?;
        Ok(Some(value))
    }

    /// Stops contending; a running leader function is not interrupted.
    pub fn cancel(&self) {
        self.lock.cancel();
    }

    /// The identifiers of the contenders, the leader first.
    pub fn contenders(&self) -> RecipeResult<Vec<String>> {
        self.lock.contenders()
    }

    /// The lock the election runs on.
    pub fn lock(&self) -> &Lock {
        &self.lock
    }
}
