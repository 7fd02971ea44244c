//! Forwarding: a follower hands its sessions' writes and new sessions to its leader as one
//! numbered stream per leader term, sent again until acknowledged (the leader takes each
//! number once, in order), and tells the leader which of its sessions are alive.

use std::collections::VecDeque;

use crate::replication::{Forwarded, PeerMessage};
use crate::server::driver::Driver;
use crate::server::engine::Engine;

/// Raft ticks without an acknowledgement before the unacknowledged requests are sent again.
const RESEND_AFTER_TICKS: u32 = 2;
/// Requests one message carries at most.
const REQUESTS_PER_MESSAGE_MAX: usize = 1024;

/// A follower's stream of requests to its leader.
#[derive(Default)]
pub(super) struct ForwardStream {
    /// The leader it goes to (raft id; 0: none) and that leader's term.
    leader: u64,
    term: u64,
    /// The number the next request gets (from 1).
    next_seq: u64,
    /// Requests not acknowledged yet, oldest first.
    unacked: VecDeque<Forwarded>,
    /// How many of the newest in `unacked` were never sent.
    unsent: usize,
    ticks_since_sent: u32,
}

impl ForwardStream {
    /// Streams to `leader` for its `term` from now (0: no leader).
    pub(super) fn follow(&mut self, leader: u64, term: u64) {
        self.leader = leader;
        self.term = term;
        self.restart();
    }

    /// Starts the stream anew: what was not acknowledged is dropped (its requests were
    /// answered ConnectionLoss).
    pub(super) fn restart(&mut self) {
        self.next_seq = 1;
        self.unacked.clear();
        self.unsent = 0;
        self.ticks_since_sent = 0;
    }

    /// Queues a request for the leader; it goes out when the round ends.
    pub(super) fn push(&mut self, mut request: Forwarded) {
        request.seq = self.next_seq;
        self.next_seq += 1;
        self.unacked.push_back(request);
        self.unsent += 1;
    }

    /// The leader took the stream through `through`. Answers a run to move to when the
    /// leader knows a newer run of this member than `run` (this member restarted with its
    /// clock set back): the stream must start again under a newer one.
    pub(super) fn acked(
        &mut self,
        from: u64,
        term: u64,
        acked_run: u64,
        run: u64,
        through: u64,
    ) -> Option<u64> {
        if from != self.leader || term != self.term {
            return None;
        }
        if acked_run > run {
            return Some(acked_run + 1);
        }
        if acked_run == run {
            while self
                .unacked
                .front()
                .is_some_and(|request| request.seq <= through)
            {
                self.unacked.pop_front();
            }
            self.unsent = self.unsent.min(self.unacked.len());
            self.ticks_since_sent = 0;
        }
        None
    }

    /// A raft tick: after a while without acknowledgement, everything unacknowledged goes
    /// out again.
    pub(super) fn tick(&mut self) {
        if self.unacked.is_empty() {
            return;
        }
        self.ticks_since_sent += 1;
        if self.ticks_since_sent >= RESEND_AFTER_TICKS {
            self.unsent = self.unacked.len();
        }
    }

    /// The requests to send now, oldest first (at most one message's worth).
    fn take_unsent(&mut self) -> Vec<Forwarded> {
        if self.unsent == 0 || self.leader == 0 {
            return Vec::new();
        }
        let start = self.unacked.len() - self.unsent;
        let end = (start + REQUESTS_PER_MESSAGE_MAX).min(self.unacked.len());
        self.unsent -= end - start;
        self.ticks_since_sent = 0;
        self.unacked.range(start..end).cloned().collect()
    }
}

impl Driver {
    /// Sends the leader what the stream has not sent yet.
    pub(super) fn flush_forwards(&mut self, engine: &Engine) {
        let _ = engine;
        loop {
            let requests = self.forward.take_unsent();
            if requests.is_empty() {
                return;
            }
            self.send(
                self.role.leader,
                PeerMessage::Forward {
                    term: self.role.term,
                    run: self.run,
                    requests,
                },
            );
        }
    }

    /// Tells the leader which sessions attached here were alive since the last touches.
    pub(super) fn send_touches(&mut self, engine: &Engine, now_ms: u64) {
        let since_ms = self.last_touches_ms;
        self.last_touches_ms = now_ms;
        let alive: Vec<i64> = engine
            .sessions
            .read()
            .values()
            .filter(|session| session.is_attached() || session.last_touch_ms() > since_ms)
            .map(|session| session.id())
            .collect();
        if !alive.is_empty() {
            self.send(self.role.leader, PeerMessage::Touches(alive));
        }
    }
}
