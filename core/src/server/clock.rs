//! The `Clock` seam: the only place the engine learns what time it is.
//!
//! The core never reads a clock; the driver asks this trait and hands times to the core (inside
//! Txns for znode times, as `now_ms` for session expiry). Tests use `ManualClock` and move time
//! themselves, which makes session expiry and TTL reaping deterministic.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A source of time.
pub trait Clock: Send + Sync {
    /// Monotonic milliseconds since an arbitrary start; never goes back. Drives session expiry.
    fn now_ms(&self) -> u64;
    /// Milliseconds since the Unix epoch, for znode ctime/mtime and TTLs.
    fn wall_ms(&self) -> i64;
    /// True when time moves only when a test moves it (no ticker thread is started).
    fn is_manual(&self) -> bool {
        false
    }
}

/// The machine's clocks.
pub struct SystemClock {
    start: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            start: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn wall_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to; clones share the same time.
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<ManualTime>,
}

struct ManualTime {
    now_ms: AtomicU64,
    wall_base_ms: AtomicI64,
}

impl ManualClock {
    /// Starts at monotonic 0 and at wall time `wall_start_ms`.
    pub fn new(wall_start_ms: i64) -> ManualClock {
        ManualClock {
            inner: Arc::new(ManualTime {
                now_ms: AtomicU64::new(0),
                wall_base_ms: AtomicI64::new(wall_start_ms),
            }),
        }
    }

    /// Moves both clocks forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.inner.now_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Steps the wall clock by `delta_ms` (either way) as an NTP step would; the monotonic
    /// clock does not move.
    pub fn jump_wall(&self, delta_ms: i64) {
        self.inner
            .wall_base_ms
            .fetch_add(delta_ms, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        // 2026-01-01T00:00:00Z: a fixed, recognisable start for znode times in tests.
        ManualClock::new(1_767_225_600_000)
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.inner.now_ms.load(Ordering::SeqCst)
    }

    fn wall_ms(&self) -> i64 {
        self.inner.wall_base_ms.load(Ordering::SeqCst) + self.now_ms() as i64
    }

    fn is_manual(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::new(1000);
        let shared = clock.clone();
        assert_eq!((clock.now_ms(), clock.wall_ms()), (0, 1000));
        shared.advance(250);
        assert_eq!((clock.now_ms(), clock.wall_ms()), (250, 1250));
        assert!(clock.is_manual());
    }
}
