//! The result of a run, per operation and in total, as a table for people or JSON for scripts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use zookeeper_core::ErrorCode;

use crate::config::OpKind;
use crate::recorder::{OpRecord, Recorder};

/// Everything a run measured, and what it was asked to do.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The servers, as given.
    pub hosts: Vec<String>,
    /// Sessions opened.
    pub sessions: usize,
    /// Requests outstanding per session, at most.
    pub pipeline: usize,
    /// Requests per second asked for in fixed-rate mode; None for the closed loop.
    pub rate_per_second: Option<f64>,
    /// The mix, as `create=30,get=70`.
    pub mix: String,
    /// Bytes per written value.
    pub value_bytes: usize,
    /// Keys created by the setup.
    pub keys: u64,
    /// How keys were picked.
    pub distribution: String,
    /// The seed of every random choice: give it to `--seed` to send the same requests again.
    pub seed: u64,
    /// The znode everything was created under.
    pub prefix: String,
    /// Seconds of load before measuring.
    pub warmup_s: f64,
    /// Seconds from the end of the warmup to the last answer counted.
    pub elapsed_s: f64,
    /// Each operation that was sent, in `OpKind::ALL` order.
    pub operations: Vec<OperationReport>,
    /// All operations together.
    pub total: OperationReport,
    /// Fixed-rate requests never sent because their session's backlog was full.
    pub tickets_dropped: u64,
    /// Connections that broke during the run.
    pub lost_connections: Vec<LostConnection>,
    /// Seconds the setup (prefix and keys) took.
    pub setup_s: f64,
    /// "done", "skipped (--keep)" or "incomplete: <why>".
    pub cleanup: String,
}

/// One operation's (or the total's) figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OperationReport {
    /// `create`, `get`, ..., or `total`.
    pub operation: String,
    /// Answered requests, errors included.
    pub completed: u64,
    /// Answered requests per second of the measured time.
    pub ops_per_second: f64,
    /// Answers with an error, by ZooKeeper's code name (`NoNode`).
    pub errors: BTreeMap<String, u64>,
    /// Requests a lost connection never answered.
    pub unanswered: u64,
    /// Latency percentiles of the answered requests, in microseconds.
    pub latency_us: Latency,
}

/// Latency percentiles in microseconds, as the HDR histogram reports them (each value is the
/// highest its bucket holds, within 0.1 %).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// Slowest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// A connection that broke.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LostConnection {
    /// Which session (0-based).
    pub session: usize,
    /// The server it was connected to.
    pub host: String,
    /// `setup`, `run` or `cleanup`.
    pub phase: String,
    /// Seconds into that phase.
    pub after_s: f64,
    /// What happened.
    pub reason: String,
    /// Its requests left unanswered (in the run phase: those inside the measured window).
    pub unanswered: u64,
}

/// Each operation's figures and the total's, from a phase's merged recorder; rates are per
/// second of `elapsed_s`.
pub fn operations(recorder: &Recorder, elapsed_s: f64) -> (Vec<OperationReport>, OperationReport) {
    let per_op = OpKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let op = recorder.op(kind)?;
            Some(operation_report(kind.name(), op, elapsed_s))
        })
        .collect();
    let total = match recorder.total() {
        Some(total) => operation_report("total", &total, elapsed_s),
        None => OperationReport {
            operation: "total".into(),
            completed: 0,
            ops_per_second: 0.0,
            errors: BTreeMap::new(),
            unanswered: 0,
            latency_us: Latency::default(),
        },
    };
    (per_op, total)
}

fn operation_report(name: &str, op: &OpRecord, elapsed_s: f64) -> OperationReport {
    let histogram = &op.latency_ns;
    let micros = |ns: u64| ns as f64 / 1_000.0;
    let latency_us = if histogram.is_empty() {
        Latency::default()
    } else {
        Latency {
            p50: micros(histogram.value_at_quantile(0.50)),
            p90: micros(histogram.value_at_quantile(0.90)),
            p99: micros(histogram.value_at_quantile(0.99)),
            p99_9: micros(histogram.value_at_quantile(0.999)),
            max: micros(histogram.max()),
            mean: histogram.mean() / 1_000.0,
        }
    };
    OperationReport {
        operation: name.into(),
        completed: op.completed(),
        ops_per_second: if elapsed_s > 0.0 {
            op.completed() as f64 / elapsed_s
        } else {
            0.0
        },
        errors: op
            .errors
            .iter()
            .map(|(&code, &count)| (error_name(code), count))
            .collect(),
        unanswered: op.unanswered,
        latency_us,
    }
}

/// ZooKeeper's name for an error code (`NoNode`), or `code <n>` for one it does not define.
pub fn error_name(code: i32) -> String {
    match ErrorCode::from_code(code) {
        Some(code) => format!("{code:?}"),
        None => format!("code {code}"),
    }
}

impl Report {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// The report as a table with a few lines of context.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        let mode = match self.rate_per_second {
            Some(rate) => format!("fixed rate {} requests/s", thousands(rate.round() as u64)),
            None => "closed loop".into(),
        };
        let _ = writeln!(
            text,
            "zookeeper-bench: {} | {} sessions x {} pipelined | {mode}",
            self.hosts.join(","),
            self.sessions,
            self.pipeline
        );
        let _ = writeln!(
            text,
            "mix {} | values {} B | {} keys, {} | seed {} | prefix {}",
            self.mix, self.value_bytes, self.keys, self.distribution, self.seed, self.prefix
        );
        let _ = writeln!(
            text,
            "measured {:.2} s after {:.2} s warmup | setup {:.2} s | cleanup {}",
            self.elapsed_s, self.warmup_s, self.setup_s, self.cleanup
        );
        let _ = writeln!(
            text,
            "\n{:<9} {:>11} {:>11} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10}",
            "operation",
            "completed",
            "ops/s",
            "errors",
            "p50 us",
            "p90 us",
            "p99 us",
            "p99.9 us",
            "max us"
        );
        for op in self.operations.iter().chain([&self.total]) {
            let errors: u64 = op.errors.values().sum();
            let latency = &op.latency_us;
            let _ = writeln!(
                text,
                "{:<9} {:>11} {:>11} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>10.1}",
                op.operation,
                thousands(op.completed),
                thousands(op.ops_per_second.round() as u64),
                thousands(errors),
                latency.p50,
                latency.p90,
                latency.p99,
                latency.p99_9,
                latency.max
            );
        }
        for op in &self.operations {
            for (name, count) in &op.errors {
                let _ = writeln!(
                    text,
                    "errors: {} {name} x {}",
                    op.operation,
                    thousands(*count)
                );
            }
            if op.unanswered > 0 {
                let _ = writeln!(
                    text,
                    "unanswered: {} x {} (connection lost)",
                    op.operation,
                    thousands(op.unanswered)
                );
            }
        }
        if self.tickets_dropped > 0 {
            let _ = writeln!(
                text,
                "dropped: {} requests never sent, their session's backlog was full (the server is far behind the rate)",
                thousands(self.tickets_dropped)
            );
        }
        for lost in &self.lost_connections {
            let _ = writeln!(text, "{}", describe_lost(lost));
        }
        text
    }
}

/// One line saying which connection broke, when and why.
pub fn describe_lost(lost: &LostConnection) -> String {
    format!(
        "lost connection: session {} to {} in {} after {:.2} s: {}; {} requests unanswered",
        lost.session, lost.host, lost.phase, lost.after_s, lost.reason, lost.unanswered
    )
}

/// 1234567 as "1,234,567".
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn at(base: Instant, micros: u64) -> Instant {
        base + Duration::from_micros(micros)
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let start = Instant::now();
        let mut recorder = Recorder::new(start);
        // Latencies of 1..=1000 us, one each.
        for micros in 1..=1_000 {
            recorder.record(OpKind::Get, start, at(start, micros), 0);
        }
        let (ops, total) = operations(&recorder, 2.0);
        assert_eq!(ops.len(), 1);
        let get = &ops[0];
        assert_eq!((get.operation.as_str(), get.completed), ("get", 1_000));
        assert_eq!(get.ops_per_second, 500.0);
        let close = |value: f64, expected: f64| (value - expected).abs() <= expected * 0.001;
        for (value, expected) in [
            (get.latency_us.p50, 500.0),
            (get.latency_us.p90, 900.0),
            (get.latency_us.p99, 990.0),
            (get.latency_us.p99_9, 999.0),
            (get.latency_us.max, 1_000.0),
            (get.latency_us.mean, 500.5),
        ] {
            assert!(close(value, expected), "{value} against {expected}");
        }
        assert_eq!(total.latency_us, get.latency_us);
    }

    #[test]
    fn errors_are_named_and_counted_per_operation_and_in_total() {
        let start = Instant::now();
        let mut first = Recorder::new(start);
        let mut second = Recorder::new(start);
        first.record(OpKind::Set, start, at(start, 10), -101);
        first.record(OpKind::Set, start, at(start, 10), 0);
        second.record(OpKind::Set, start, at(start, 30), -101);
        second.record(OpKind::Delete, start, at(start, 20), -111);
        second.record(OpKind::Delete, start, at(start, 20), -999);
        second.record_unanswered(OpKind::Delete, start);
        first.merge(&second);
        let (ops, total) = operations(&first, 1.0);
        let names: Vec<&str> = ops.iter().map(|op| op.operation.as_str()).collect();
        assert_eq!(names, ["set", "delete"]);
        assert_eq!(ops[0].completed, 3);
        assert_eq!(ops[0].errors, BTreeMap::from([("NoNode".to_string(), 2)]));
        assert_eq!(
            ops[1].errors,
            BTreeMap::from([("NotEmpty".to_string(), 1), ("code -999".to_string(), 1)])
        );
        assert_eq!((ops[1].unanswered, total.unanswered), (1, 1));
        assert_eq!((total.completed, first.error_count()), (5, 4));
        // HDR reports the highest value of a bucket: within 0.1 %.
        assert!(
            (total.latency_us.max - 30.0).abs() <= 0.03,
            "{}",
            total.latency_us.max
        );
    }

    #[test]
    fn requests_started_in_the_warmup_are_not_counted() {
        let warmup_start = Instant::now();
        let measure_from = at(warmup_start, 1_000);
        let mut recorder = Recorder::new(measure_from);
        recorder.record(OpKind::Get, warmup_start, at(warmup_start, 1_500), 0);
        recorder.record_unanswered(OpKind::Get, warmup_start);
        assert!(recorder.op(OpKind::Get).is_none());
        recorder.record(OpKind::Get, measure_from, at(warmup_start, 1_100), 0);
        assert_eq!(recorder.op(OpKind::Get).unwrap().completed(), 1);
        assert_eq!(recorder.last_completion(), Some(at(warmup_start, 1_100)));
    }

    #[test]
    fn the_text_table_and_json_carry_the_figures() {
        let start = Instant::now();
        let mut recorder = Recorder::new(start);
        recorder.record(OpKind::Create, start, at(start, 250), 0);
        recorder.record(OpKind::Create, start, at(start, 250), -110);
        let (operations, total) = operations(&recorder, 0.5);
        let report = Report {
            hosts: vec!["127.0.0.1:2181".into()],
            sessions: 2,
            pipeline: 8,
            rate_per_second: None,
            mix: "create=1".into(),
            value_bytes: 100,
            keys: 10,
            distribution: "uniform".into(),
            seed: 5,
            prefix: "/bench-x".into(),
            warmup_s: 0.0,
            elapsed_s: 0.5,
            operations,
            total,
            tickets_dropped: 0,
            lost_connections: vec![LostConnection {
                session: 1,
                host: "127.0.0.1:2181".into(),
                phase: "run".into(),
                after_s: 0.25,
                reason: "the server closed the connection".into(),
                unanswered: 3,
            }],
            setup_s: 0.1,
            cleanup: "done".into(),
        };
        let text = report.to_text();
        assert!(
            text.contains("\ncreate              2           4        1     250.1"),
            "{text}"
        );
        assert!(text.contains("errors: create NodeExists x 1"), "{text}");
        assert!(
            text.contains("lost connection: session 1 to 127.0.0.1:2181 in run"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["total"]["completed"], 2);
        assert_eq!(json["operations"][0]["errors"]["NodeExists"], 1);
        let p99_9 = json["operations"][0]["latency_us"]["p99_9"]
            .as_f64()
            .unwrap();
        assert!((p99_9 - 250.0).abs() <= 0.25, "{p99_9}");
        assert_eq!(json["lost_connections"][0]["unanswered"], 3);
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
