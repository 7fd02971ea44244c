//! What one phase observed, per operation: an HDR histogram of latencies, error codes and
//! requests left unanswered, counting only requests that started inside the measured window.

use std::collections::BTreeMap;
use std::time::Instant;

use hdrhistogram::Histogram;

use crate::config::OpKind;

/// Longest latency told apart, in nanoseconds (an hour); longer ones count as an hour.
pub const LATENCY_NS_MAX: u64 = 3_600_000_000_000;
/// Significant decimal digits the histograms keep (0.1 % resolution at every magnitude).
pub const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;

/// One operation's outcomes.
#[derive(Clone, Debug)]
pub struct OpRecord {
    /// Latency of every answered request (errors included), in nanoseconds.
    pub latency_ns: Histogram<u64>,
    /// Answers with a nonzero error code, by code (for a multi: its failing op's code).
    pub errors: BTreeMap<i32, u64>,
    /// Requests sent and never answered because their connection was lost.
    pub unanswered: u64,
}

impl OpRecord {
    fn new() -> OpRecord {
        OpRecord {
            latency_ns: Histogram::new_with_bounds(1, LATENCY_NS_MAX, LATENCY_SIGNIFICANT_DIGITS)
                .expect("the latency bounds are valid"),
            errors: BTreeMap::new(),
            unanswered: 0,
        }
    }

    /// Answered requests.
    pub fn completed(&self) -> u64 {
        self.latency_ns.len()
    }

    fn merge(&mut self, other: &OpRecord) {
        // Same bounds on both sides, so adding cannot fail.
        self.latency_ns
            .add(&other.latency_ns)
            .expect("histograms share their bounds");
        for (&code, &count) in &other.errors {
            *self.errors.entry(code).or_default() += count;
        }
        self.unanswered += other.unanswered;
    }
}

/// The outcomes of one phase of one session (or, merged, of every session).
#[derive(Clone, Debug)]
pub struct Recorder {
    record_from: Instant,
    ops: [Option<Box<OpRecord>>; OpKind::ALL.len()],
    last_completion: Option<Instant>,
}

impl Recorder {
    /// A recorder that counts requests started at or after `record_from` (before it: warmup).
    pub fn new(record_from: Instant) -> Recorder {
        Recorder {
            record_from,
            ops: Default::default(),
            last_completion: None,
        }
    }

    /// Counts the answer to a request of `kind` that started at `start` and was answered at
    /// `end` with error code `err` (0: success).
    pub fn record(&mut self, kind: OpKind, start: Instant, end: Instant, err: i32) {
        if start < self.record_from {
            return;
        }
        let latency_ns =
            u64::try_from(end.saturating_duration_since(start).as_nanos()).unwrap_or(u64::MAX);
        let op = self.op_mut(kind);
        op.latency_ns.saturating_record(latency_ns);
        if err != 0 {
            *op.errors.entry(err).or_default() += 1;
        }
        self.last_completion = self.last_completion.max(Some(end));
    }

    /// Counts a request of `kind` started at `start` that its lost connection never answered.
    pub fn record_unanswered(&mut self, kind: OpKind, start: Instant) {
        if start >= self.record_from {
            self.op_mut(kind).unanswered += 1;
        }
    }

    /// Adds another recorder's outcomes to these.
    pub fn merge(&mut self, other: &Recorder) {
        for kind in OpKind::ALL {
            if let Some(theirs) = &other.ops[kind.index()] {
                self.op_mut(kind).merge(theirs);
            }
        }
        self.last_completion = self.last_completion.max(other.last_completion);
    }

    /// One operation's outcomes; None when no request of it was counted.
    pub fn op(&self, kind: OpKind) -> Option<&OpRecord> {
        self.ops[kind.index()].as_deref()
    }

    /// Every operation's outcomes together; None when nothing was counted.
    pub fn total(&self) -> Option<OpRecord> {
        let mut total: Option<OpRecord> = None;
        for op in self.ops.iter().flatten() {
            total.get_or_insert_with(OpRecord::new).merge(op);
        }
        total
    }

    /// Where counting starts.
    pub fn record_from(&self) -> Instant {
        self.record_from
    }

    /// When the last counted request was answered.
    pub fn last_completion(&self) -> Option<Instant> {
        self.last_completion
    }

    /// Answers with a nonzero code, over every operation.
    pub fn error_count(&self) -> u64 {
        self.ops
            .iter()
            .flatten()
            .flat_map(|op| op.errors.values())
            .sum()
    }

    fn op_mut(&mut self, kind: OpKind) -> &mut OpRecord {
        // Created on first use: a histogram is some 270 KB, and most mixes use few kinds.
        self.ops[kind.index()].get_or_insert_with(|| Box::new(OpRecord::new()))
    }
}
