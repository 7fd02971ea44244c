//! The requests of each phase: the setup's key creates, the measured run's mix (and when a
//! closed-loop run stops), and the cleanup's deletes, shared out among the sessions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use zookeeper_core::op::Op;

use crate::config::OpKind;
use crate::session::Source;
use crate::workload::{created_path, encode_into, key_path, opcode, SessionWorkload, Workload};

/// Hands out the numbers 0..end once each, to whichever session asks first.
#[derive(Debug)]
pub struct SharedCursor {
    next: AtomicU64,
    end: u64,
}

impl SharedCursor {
    /// A cursor over 0..end.
    pub fn new(end: u64) -> SharedCursor {
        SharedCursor {
            next: AtomicU64::new(0),
            end,
        }
    }

    /// The next number, or None once all are handed out.
    pub fn take(&self) -> Option<u64> {
        self.next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |next| {
                (next < self.end).then_some(next + 1)
            })
            .ok()
    }
}

/// The setup: every session creates keys until all are created.
pub struct SetupSource {
    /// The run's workload (prefix and value).
    pub workload: Arc<Workload>,
    /// Which key is next.
    pub keys: Arc<SharedCursor>,
}

impl Source for SetupSource {
    fn next(&mut self, xid: i32, _now: Instant, buffer: &mut Vec<u8>) -> Option<OpKind> {
        let index = self.keys.take()?;
        let create = self.workload.key_create(index);
        encode_into(buffer, xid, opcode(OpKind::Create), create);
        Some(OpKind::Create)
    }
}

/// When a closed-loop run stops sending: at a time, or after a number of requests counted
/// from the end of the warmup (shared by every session).
#[derive(Debug, Clone)]
pub enum ClosedLoopStop {
    /// Send until this time.
    Until(Instant),
    /// Send freely before `measure_from`, then as many as `budget` holds.
    Budget {
        /// The end of the warmup.
        measure_from: Instant,
        /// Requests left to send after the warmup.
        budget: Arc<SharedCursor>,
    },
    /// The pacer decides (fixed rate): every request asked for is sent.
    Pacer,
}

impl ClosedLoopStop {
    fn admits(&self, now: Instant) -> bool {
        match self {
            ClosedLoopStop::Until(until) => now < *until,
            ClosedLoopStop::Budget {
                measure_from,
                budget,
            } => now < *measure_from || budget.take().is_some(),
            ClosedLoopStop::Pacer => true,
        }
    }
}

/// The measured run (and its warmup): the mix, drawn by one session's generator.
pub struct RunSource {
    /// This session's requests.
    pub workload: SessionWorkload,
    /// When to stop.
    pub stop: ClosedLoopStop,
}

impl Source for RunSource {
    fn next(&mut self, xid: i32, now: Instant, buffer: &mut Vec<u8>) -> Option<OpKind> {
        if !self.stop.admits(now) {
            return None;
        }
        let (kind, op) = self.workload.next_op();
        encode_into(buffer, xid, opcode(kind), op);
        Some(kind)
    }
}

/// What the cleanup deletes: every key, then every znode a session's creates left.
#[derive(Debug)]
pub struct CleanupList {
    /// The prefix.
    pub prefix: String,
    /// Keys `k0..k<keys-1>`.
    pub keys: u64,
    /// Left by creates: (session, sequence) pairs.
    pub created: Vec<(usize, u64)>,
    /// Further paths (found by listing the prefix).
    pub extra: Vec<String>,
}

impl CleanupList {
    /// How many deletes the list holds.
    pub fn len(&self) -> u64 {
        self.keys + self.created.len() as u64 + self.extra.len() as u64
    }

    /// True when there is nothing to delete.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The path of delete number `index` (< `len()`).
    fn path(&self, index: u64) -> String {
        if index < self.keys {
            return key_path(&self.prefix, index);
        }
        let index = (index - self.keys) as usize;
        match self.created.get(index) {
            Some(&(session, sequence)) => created_path(&self.prefix, session, sequence),
            None => self.extra[index - self.created.len()].clone(),
        }
    }
}

/// The cleanup: every session deletes from the shared list until it is done.
pub struct CleanupSource {
    /// What to delete.
    pub list: Arc<CleanupList>,
    /// Which delete is next.
    pub cursor: Arc<SharedCursor>,
}

impl Source for CleanupSource {
    fn next(&mut self, xid: i32, _now: Instant, buffer: &mut Vec<u8>) -> Option<OpKind> {
        let index = self.cursor.take()?;
        let path = self.list.path(index);
        encode_into(
            buffer,
            xid,
            opcode(OpKind::Delete),
            Op::Delete { path, version: -1 },
        );
        Some(OpKind::Delete)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_cursor_hands_out_each_number_once_across_threads() {
        let cursor = Arc::new(SharedCursor::new(10_000));
        let takers: Vec<_> = (0..4)
            .map(|_| {
                let cursor = Arc::clone(&cursor);
                std::thread::spawn(move || std::iter::from_fn(|| cursor.take()).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<u64> = takers.into_iter().flat_map(|t| t.join().unwrap()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..10_000).collect::<Vec<_>>());
    }

    #[test]
    fn a_budget_counts_only_requests_after_the_warmup() {
        let measure_from = Instant::now() + Duration::from_secs(60);
        let stop = ClosedLoopStop::Budget {
            measure_from,
            budget: Arc::new(SharedCursor::new(2)),
        };
        assert!(
            (0..100).all(|_| stop.admits(Instant::now())),
            "warmup is free"
        );
        assert!(stop.admits(measure_from));
        assert!(stop.admits(measure_from));
        assert!(!stop.admits(measure_from));
        let until = ClosedLoopStop::Until(measure_from);
        assert!(until.admits(Instant::now()) && !until.admits(measure_from));
    }

    #[test]
    fn the_cleanup_list_covers_keys_creates_and_extras() {
        let list = CleanupList {
            prefix: "/p".into(),
            keys: 2,
            created: vec![(0, 5), (3, 0)],
            extra: vec!["/p/other".into()],
        };
        let paths: Vec<String> = (0..list.len()).map(|index| list.path(index)).collect();
        assert_eq!(paths, ["/p/k0", "/p/k1", "/p/c0-5", "/p/c3-0", "/p/other"]);
    }
}
