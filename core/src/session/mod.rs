//! Session liveness: which sessions have gone quiet past their timeout, in tick-sized buckets.
//!
//! This is the leader's `SessionTrackerImpl` with its `ExpiryQueue`, minus the thread and the
//! clock: the driver passes the time in, touches a session on each of its requests and pings,
//! and polls [`SessionTracker::expired`] to learn which sessions to close with a closeSession
//! Txn. Liveness is leader-local and not replicated; the session records themselves are (see
//! `tree`).
//!
//! Sessions are grouped into buckets one tick wide, as ZooKeeper does: a session touched at
//! `now` with timeout `t` expires at the first tick boundary strictly after `now + t`. Rounding
//! up gives every session up to a tick of grace, and means a touch only moves the session when
//! it crosses into a new bucket, so the touch on every request is usually one hash lookup.
//!
//! ```
//! use zookeeper_core::session::SessionTracker;
//!
//! let mut sessions = SessionTracker::new(2_000, 0);
//! sessions.add(0x101, 6_000, 0); // expires at 8_000: the tick boundary after 6_000
//! assert!(sessions.expired(7_999).is_empty());
//! assert!(sessions.touch(0x101, 5_000)); // now expires at 12_000
//! assert!(sessions.expired(8_000).is_empty());
//! assert_eq!(sessions.expired(12_000), [0x101]);
//! assert!(!sessions.touch(0x101, 12_001), "an expired session is closing");
//! ```

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};

use ahash::RandomState;

/// ZooKeeper's default `minSessionTimeout`, in ticks (`ZooKeeperServer.setMinSessionTimeout`).
pub const SESSION_TIMEOUT_TICKS_MIN_DEFAULT: u32 = 2;
/// ZooKeeper's default `maxSessionTimeout`, in ticks (`ZooKeeperServer.setMaxSessionTimeout`).
pub const SESSION_TIMEOUT_TICKS_MAX_DEFAULT: u32 = 20;

/// The session timeout a connect request gets: the requested one clamped into
/// `[min_ms, max_ms]`, as `ZooKeeperServer.processConnectRequest` does. The minimum is
/// applied first, so if `min_ms > max_ms` the result is `max_ms`, as in ZooKeeper.
pub fn negotiate_timeout(requested_ms: i64, min_ms: u32, max_ms: u32) -> u32 {
    let mut timeout_ms = requested_ms;
    if timeout_ms < i64::from(min_ms) {
        timeout_ms = i64::from(min_ms);
    }
    if timeout_ms > i64::from(max_ms) {
        timeout_ms = i64::from(max_ms);
    }
    u32::try_from(timeout_ms).expect("clamped into a u32 range")
}

/// One tracked session's liveness.
#[derive(Clone, Copy, Debug)]
struct Liveness {
    /// The negotiated timeout.
    timeout_ms: u32,
    /// The bucket the session sits in, or None once [`SessionTracker::expired`] has taken it
    /// out (ZooKeeper removes the whole bucket when it polls it).
    bucket_ms: Option<u64>,
    /// Set when the session is expiring or being closed: from then on it cannot be touched
    /// back to life (`SessionImpl.isClosing`).
    closing: bool,
    /// The member (raft id) whose connection the session's client last attached to; 0 when
    /// not known, as after a leader change (`SessionImpl.owner`).
    owner: u64,
}

/// Why a session's write may not proceed from a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerCheck {
    /// The session is unknown or closing.
    Expired,
    /// Its client attached to another member since (`SessionMovedException`).
    Moved,
}

/// The leader's table of live sessions and when each expires.
///
/// Time is whatever monotonic milliseconds the driver's clock gives; nothing here reads a
/// clock. A `now_ms` smaller than an earlier one is tolerated: no session expires before its
/// bucket time, and none is lost.
#[derive(Debug)]
pub struct SessionTracker {
    /// Bucket width (`tickTime`).
    tick_ms: u64,
    sessions: HashMap<i64, Liveness, RandomState>,
    /// Bucket time -> the sessions expiring then (`ExpiryQueue.expiryMap`). Bucket times are
    /// multiples of `tick_ms`; empty buckets are dropped at once.
    buckets: HashMap<u64, HashSet<i64, RandomState>, RandomState>,
    /// No bucket is earlier than this (`ExpiryQueue.nextExpirationTime`): polling starts here.
    next_expiration_ms: u64,
}

impl SessionTracker {
    /// An empty tracker with buckets `tick_ms` wide, starting at `now_ms`.
    ///
    /// # Panics
    ///
    /// If `tick_ms` is 0: the server config is validated before this is built.
    pub fn new(tick_ms: u64, now_ms: u64) -> SessionTracker {
        assert!(tick_ms > 0, "tick_ms must be greater than 0");
        SessionTracker {
            tick_ms,
            sessions: HashMap::default(),
            buckets: HashMap::default(),
            next_expiration_ms: round_to_next_interval(now_ms, tick_ms),
        }
    }

    /// Starts tracking `session_id` with `timeout_ms`, as if touched at `now_ms`
    /// (`SessionTrackerImpl.trackSession`). Returns true if the session was new. Adding a
    /// tracked session sets its timeout and reschedules it, keeping its closing state.
    pub fn add(&mut self, session_id: i64, timeout_ms: u32, now_ms: u64) -> bool {
        let bucket_ms = self.expiry_ms(now_ms, timeout_ms);
        match self.sessions.get_mut(&session_id) {
            Some(liveness) => {
                liveness.timeout_ms = timeout_ms;
                let old_bucket_ms = liveness.bucket_ms.replace(bucket_ms);
                if old_bucket_ms != Some(bucket_ms) {
                    self.move_between_buckets(session_id, old_bucket_ms, bucket_ms);
                }
                false
            }
            None => {
                let liveness = Liveness {
                    timeout_ms,
                    bucket_ms: Some(bucket_ms),
                    closing: false,
                    owner: 0,
                };
                self.sessions.insert(session_id, liveness);
                self.move_between_buckets(session_id, None, bucket_ms);
                true
            }
        }
    }

    /// Records activity on `session_id` at `now_ms`, pushing its expiry to a full timeout from
    /// now (`SessionTrackerImpl.touchSession`). Returns false, and changes nothing, if the
    /// session is unknown or closing: the caller then answers SessionExpired.
    ///
    /// O(1); allocates nothing unless the session moves into a bucket no other session is in.
    pub fn touch(&mut self, session_id: i64, now_ms: u64) -> bool {
        let tick_ms = self.tick_ms;
        let Some(liveness) = self.sessions.get_mut(&session_id) else {
            return false;
        };
        if liveness.closing {
            return false;
        }
        let bucket_ms =
            round_to_next_interval(now_ms.saturating_add(liveness.timeout_ms.into()), tick_ms);
        let old_bucket_ms = liveness.bucket_ms.replace(bucket_ms);
        if old_bucket_ms != Some(bucket_ms) {
            self.move_between_buckets(session_id, old_bucket_ms, bucket_ms);
        }
        true
    }

    /// Stops tracking `session_id`, once its closeSession has been applied
    /// (`SessionTrackerImpl.removeSession`). Returns false if it was not tracked.
    pub fn remove(&mut self, session_id: i64) -> bool {
        let Some(liveness) = self.sessions.remove(&session_id) else {
            return false;
        };
        if let Some(bucket_ms) = liveness.bucket_ms {
            self.leave_bucket(session_id, bucket_ms);
        }
        true
    }

    /// Marks `session_id` as closing, when a closeSession for it is prepared
    /// (`SessionTrackerImpl.setSessionClosing`): it can no longer be touched. It stays in its
    /// bucket, so if the close is never applied it still expires. Unknown sessions are ignored.
    pub fn set_closing(&mut self, session_id: i64) {
        if let Some(liveness) = self.sessions.get_mut(&session_id) {
            liveness.closing = true;
        }
    }

    /// The session's client attached to member `owner` (raft id): writes from elsewhere are
    /// refused from now on (`SessionTrackerImpl.setOwner`). Unknown sessions are ignored.
    pub fn set_owner(&mut self, session_id: i64, owner: u64) {
        if let Some(liveness) = self.sessions.get_mut(&session_id) {
            liveness.owner = owner;
        }
    }

    /// Whether a write of `session_id` sent through member `member` may proceed
    /// (`SessionTrackerImpl.checkSession`): the session must be active and attached there. A
    /// session whose owner is not known yet becomes `member`'s.
    pub fn check_owner(&mut self, session_id: i64, member: u64) -> Result<(), OwnerCheck> {
        let liveness = match self.sessions.get_mut(&session_id) {
            Some(liveness) if !liveness.closing => liveness,
            _ => return Err(OwnerCheck::Expired),
        };
        if liveness.owner == 0 {
            liveness.owner = member;
        }
        if liveness.owner == member {
            Ok(())
        } else {
            Err(OwnerCheck::Moved)
        }
    }

    /// Whether `session_id` is tracked and not closing: requests on it may proceed.
    pub fn is_active(&self, session_id: i64) -> bool {
        self.sessions
            .get(&session_id)
            .is_some_and(|liveness| !liveness.closing)
    }

    /// The sessions whose bucket time is at or before `now_ms`, in id order
    /// (`ExpiryQueue.poll`, repeated until it is empty). Each is marked closing and taken out
    /// of its bucket, so it is returned once; it stays tracked until [`SessionTracker::remove`].
    /// A session already closing is returned too, as ZooKeeper expires it again: its close
    /// may have been lost with a leader change.
    ///
    /// Allocates nothing when no bucket is due, so the driver may poll it every tick.
    pub fn expired(&mut self, now_ms: u64) -> Vec<i64> {
        if now_ms < self.next_expiration_ms {
            return Vec::new();
        }
        let mut expired = Vec::new();
        let steps = (now_ms - self.next_expiration_ms) / self.tick_ms + 1;
        if steps <= self.buckets.len() as u64 {
            // Few ticks since the last poll: visit each due bucket time.
            let mut bucket_ms = self.next_expiration_ms;
            while bucket_ms <= now_ms {
                if let Some(sessions) = self.buckets.remove(&bucket_ms) {
                    expired.extend(sessions);
                }
                bucket_ms += self.tick_ms;
            }
        } else {
            // The clock jumped further than there are buckets: scanning the buckets is cheaper.
            self.buckets.retain(|&bucket_ms, sessions| {
                if bucket_ms > now_ms {
                    return true;
                }
                expired.extend(sessions.drain());
                false
            });
        }
        self.next_expiration_ms = round_to_next_interval(now_ms, self.tick_ms);
        for session_id in &expired {
            let liveness = self
                .sessions
                .get_mut(session_id)
                .expect("bucketed session is tracked");
            liveness.bucket_ms = None;
            liveness.closing = true;
        }
        expired.sort_unstable();
        expired
    }

    /// The earliest time at which [`SessionTracker::expired`] can return a session; the driver
    /// may sleep until then (`ExpiryQueue.getWaitTime`).
    pub fn next_expiration_ms(&self) -> u64 {
        self.next_expiration_ms
    }

    /// The timeout `session_id` was added with, or None if it is not tracked.
    pub fn timeout_ms(&self, session_id: i64) -> Option<u32> {
        self.sessions
            .get(&session_id)
            .map(|liveness| liveness.timeout_ms)
    }

    /// Number of tracked sessions, closing ones included.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is tracked.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// When a session touched at `now_ms` with `timeout_ms` expires.
    fn expiry_ms(&self, now_ms: u64, timeout_ms: u32) -> u64 {
        round_to_next_interval(now_ms.saturating_add(timeout_ms.into()), self.tick_ms)
    }

    /// Moves `session_id` from bucket `from_ms` (if any) into bucket `to_ms`.
    fn move_between_buckets(&mut self, session_id: i64, from_ms: Option<u64>, to_ms: u64) {
        if let Some(from_ms) = from_ms {
            self.leave_bucket(session_id, from_ms);
        }
        self.buckets.entry(to_ms).or_default().insert(session_id);
        // Only a clock that went backwards can put a bucket before the poll cursor; lowering
        // the cursor keeps that bucket reachable instead of leaking it.
        self.next_expiration_ms = self.next_expiration_ms.min(to_ms);
    }

    fn leave_bucket(&mut self, session_id: i64, bucket_ms: u64) {
        let sessions = self
            .buckets
            .get_mut(&bucket_ms)
            .expect("session's bucket exists");
        let removed = sessions.remove(&session_id);
        debug_assert!(removed, "session {session_id:#x} missing from its bucket");
        if sessions.is_empty() {
            self.buckets.remove(&bucket_ms);
        }
    }

    /// Panics if the sessions and the buckets disagree.
    #[cfg(test)]
    fn check_invariants(&self) {
        let mut bucketed = 0;
        for (&bucket_ms, sessions) in &self.buckets {
            assert!(!sessions.is_empty(), "empty bucket {bucket_ms} left behind");
            assert_eq!(
                bucket_ms % self.tick_ms,
                0,
                "bucket {bucket_ms} not on a tick boundary"
            );
            assert!(
                bucket_ms >= self.next_expiration_ms,
                "bucket {bucket_ms} behind the cursor"
            );
            for session_id in sessions {
                assert_eq!(self.sessions[session_id].bucket_ms, Some(bucket_ms));
                bucketed += 1;
            }
        }
        let expected = self
            .sessions
            .values()
            .filter(|liveness| liveness.bucket_ms.is_some())
            .count();
        assert_eq!(bucketed, expected);
    }
}

/// The first multiple of `tick_ms` strictly after `time_ms` (`ExpiryQueue.roundToNextInterval`).
fn round_to_next_interval(time_ms: u64, tick_ms: u64) -> u64 {
    (time_ms / tick_ms)
        .saturating_add(1)
        .saturating_mul(tick_ms)
}
