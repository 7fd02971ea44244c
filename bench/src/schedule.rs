//! Fixed-rate mode: when each request is due, and the pacer thread that hands each session the
//! due times of its requests.
//!
//! A request's latency is measured from its due time, not from when it was sent: when the
//! server (or a full pipeline) holds requests back, the ones due meanwhile wait and that wait
//! is counted, instead of the load generator quietly sending less (coordinated omission).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::Sender;

/// Requests a session may have due and not yet sent; past it the pacer drops the request and
/// counts it (the server is far behind the rate and the run says so).
pub const BACKLOG_PER_SESSION_MAX: usize = 100_000;

/// The longest the pacer sleeps at once, so it never oversleeps a due time by much more than
/// the system's timer slack even when the rate is low.
const PACER_SLEEP_MS_MAX: u64 = 50;

/// Request i of a fixed-rate run is due i / rate seconds after the start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    interval_ns: f64,
}

impl Schedule {
    /// The schedule of `rate_per_second` requests per second.
    ///
    /// # Panics
    ///
    /// When the rate is not a positive finite number (validated settings never are).
    pub fn new(rate_per_second: f64) -> Schedule {
        assert!(
            rate_per_second.is_finite() && rate_per_second > 0.0,
            "a schedule needs a positive rate (got {rate_per_second})"
        );
        Schedule {
            interval_ns: 1e9 / rate_per_second,
        }
    }

    /// When request `ticket` is due, counted from the start; computed from the ticket number
    /// each time, so rounding never accumulates over a long run.
    pub fn offset(&self, ticket: u64) -> Duration {
        Duration::from_nanos(self.offset_ns(ticket))
    }

    fn offset_ns(&self, ticket: u64) -> u64 {
        (ticket as f64 * self.interval_ns).round() as u64
    }

    /// The first ticket due at or after `offset`.
    pub fn first_at_or_after(&self, offset: Duration) -> u64 {
        let target = u64::try_from(offset.as_nanos()).unwrap_or(u64::MAX);
        // The float estimate is within a ticket or so; settle it against offset_ns itself, so
        // the answer agrees exactly with `offset`.
        let mut ticket = (target as f64 / self.interval_ns).floor() as u64;
        while ticket > 0 && self.offset_ns(ticket - 1) >= target {
            ticket -= 1;
        }
        while self.offset_ns(ticket) < target {
            ticket += 1;
        }
        ticket
    }

    /// How many tickets are due by `elapsed` (those with `offset(ticket) <= elapsed`).
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        self.first_at_or_after(elapsed + Duration::from_nanos(1))
    }

    /// The number of tickets a run issues: those due before `warmup + duration`, or those due
    /// in the warmup plus `ops` more.
    pub fn ticket_limit(&self, warmup: Duration, length: crate::config::Length) -> u64 {
        match length {
            crate::config::Length::Duration(duration) => self.first_at_or_after(warmup + duration),
            crate::config::Length::Ops(ops) => self.first_at_or_after(warmup).saturating_add(ops),
        }
    }
}

/// The session ticket `ticket` goes to: round robin, so each session runs at rate / sessions.
pub fn session_of(ticket: u64, sessions: usize) -> usize {
    (ticket % sessions as u64) as usize
}

/// Starts the pacer: a thread that sends each ticket's due time to its session when it falls
/// due (a thread of its own, since a runtime's timer wheel rounds sleeps up to a millisecond,
/// and that lateness would be counted as the server's). A session whose receiver is gone (its
/// connection was lost) is skipped; the pacer ends after `ticket_limit` tickets or when every
/// session is gone, and dropping the senders tells the sessions the run is over. Tickets that
/// find a session's backlog full are counted in `dropped`.
pub fn spawn_pacer(
    schedule: Schedule,
    start: Instant,
    ticket_limit: u64,
    senders: Vec<Sender<Instant>>,
    dropped: Arc<AtomicU64>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("zookeeper-bench-pacer".into())
        .spawn(move || {
            let mut senders: Vec<Option<Sender<Instant>>> = senders.into_iter().map(Some).collect();
            let mut ticket = 0;
            while ticket < ticket_limit {
                let due = start + schedule.offset(ticket);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep((due - now).min(Duration::from_millis(PACER_SLEEP_MS_MAX)));
                    continue;
                }
                if !hand_out(&mut senders, ticket, due, &dropped) {
                    return;
                }
                ticket += 1;
            }
        })
}

/// Sends `due` to the ticket's session or, when that one is gone, the next live one. False
/// when no session is left.
fn hand_out(
    senders: &mut [Option<Sender<Instant>>],
    ticket: u64,
    due: Instant,
    dropped: &AtomicU64,
) -> bool {
    let sessions = senders.len();
    let first = session_of(ticket, sessions);
    for step in 0..sessions {
        let slot = &mut senders[(first + step) % sessions];
        let Some(sender) = slot else { continue };
        match sender.try_send(due) {
            Ok(()) => return true,
            Err(TrySendError::Full(_)) => {
                dropped.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            Err(TrySendError::Closed(_)) => *slot = None,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Length;

    #[test]
    fn tickets_are_due_at_multiples_of_the_interval() {
        let schedule = Schedule::new(1_000.0);
        assert_eq!(schedule.offset(0), Duration::ZERO);
        assert_eq!(schedule.offset(1), Duration::from_millis(1));
        assert_eq!(schedule.offset(1_000), Duration::from_secs(1));
        // 3/s: a third of a second does not divide into nanoseconds; no drift either way.
        let thirds = Schedule::new(3.0);
        assert_eq!(thirds.offset(1), Duration::from_nanos(333_333_333));
        assert_eq!(thirds.offset(2), Duration::from_nanos(666_666_667));
        assert_eq!(
            thirds.offset(3_000_000_000),
            Duration::from_secs(1_000_000_000)
        );
    }

    #[test]
    fn due_counts_agree_with_offsets() {
        for rate in [1.0, 3.0, 7.0, 999.0, 1_000.0, 12_345.6, 1e7] {
            let schedule = Schedule::new(rate);
            for ticket in [0u64, 1, 2, 3, 17, 1_000, 123_457, 10_000_000] {
                let at = schedule.offset(ticket);
                assert_eq!(
                    schedule.due_by(at),
                    ticket + 1,
                    "rate {rate}, ticket {ticket}"
                );
                assert_eq!(schedule.first_at_or_after(at), ticket, "rate {rate}");
                if ticket > 0 {
                    let just_before = at - Duration::from_nanos(1);
                    assert_eq!(schedule.due_by(just_before), ticket, "rate {rate}");
                }
            }
        }
    }

    #[test]
    fn a_run_issues_the_tickets_of_its_window() {
        let schedule = Schedule::new(100.0);
        // 2 s of warmup and 3 s measured at 100/s: tickets 0..500 (500 is due at 5 s exactly).
        let duration = Length::Duration(Duration::from_secs(3));
        assert_eq!(schedule.ticket_limit(Duration::from_secs(2), duration), 500);
        // The warmup's 200 tickets, then 50 measured ones.
        let ops = Length::Ops(50);
        assert_eq!(schedule.ticket_limit(Duration::from_secs(2), ops), 250);
        assert_eq!(schedule.ticket_limit(Duration::ZERO, ops), 50);
    }

    #[test]
    fn tickets_go_round_robin_and_skip_lost_sessions() {
        assert_eq!(
            (0..7)
                .map(|ticket| session_of(ticket, 3))
                .collect::<Vec<_>>(),
            [0, 1, 2, 0, 1, 2, 0]
        );
        let (first, mut first_rx) = tokio::sync::mpsc::channel(1);
        let (second, second_rx) = tokio::sync::mpsc::channel(1);
        drop(second_rx);
        let dropped = AtomicU64::new(0);
        let mut senders = vec![Some(first), Some(second)];
        let due = Instant::now();
        // Ticket 1 belongs to the lost second session: the first takes it.
        assert!(hand_out(&mut senders, 1, due, &dropped));
        assert_eq!(first_rx.try_recv().unwrap(), due);
        assert!(senders[1].is_none());
        // A full backlog drops the ticket and counts it.
        assert!(hand_out(&mut senders, 0, due, &dropped));
        assert!(hand_out(&mut senders, 0, due, &dropped));
        assert_eq!(dropped.load(Ordering::Relaxed), 1);
        drop(first_rx);
        assert!(!hand_out(&mut senders, 2, due, &dropped), "no session left");
    }

    #[test]
    fn the_pacer_sends_each_ticket_at_its_time() {
        let schedule = Schedule::new(1_000.0);
        let (sender, mut receiver) = tokio::sync::mpsc::channel(BACKLOG_PER_SESSION_MAX);
        let start = Instant::now();
        let dropped = Arc::new(AtomicU64::new(0));
        spawn_pacer(schedule, start, 50, vec![sender], Arc::clone(&dropped))
            .unwrap()
            .join()
            .unwrap();
        let mut dues = vec![];
        while let Ok(due) = receiver.try_recv() {
            dues.push(due);
        }
        let expected: Vec<Instant> = (0..50).map(|t| start + schedule.offset(t)).collect();
        assert_eq!(
            dues, expected,
            "each due time is the schedule's, however late sent"
        );
        assert!(start.elapsed() >= Duration::from_millis(49));
        assert_eq!(dropped.load(Ordering::Relaxed), 0);
    }
}
