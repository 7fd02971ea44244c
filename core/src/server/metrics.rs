//! The engine's one metrics registry: every figure `mntr`, `/metrics` and the AdminServer report
//! is counted here and read out at once into a `MetricsSnapshot`, so they never disagree. Names
//! are ZooKeeper 3.8's (`ServerMetrics`, `ZooKeeperServer.registerMetrics`) where ZooKeeper has
//! the figure, ours where it lacks one.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Engine, ServerRole};

/// Observations a summary keeps for its quantiles. ZooKeeper's Prometheus summaries keep a
/// ten-minute window; a count is a bound on memory that a quiet server does not age out.
const WINDOW_OBSERVATIONS_MAX: usize = 1024;

/// Whole-number observations with their count, total, min and max, as ZooKeeper's
/// `AvgMinMaxCounter`. Lock-free: every request of every connection adds to one.
#[derive(Debug)]
pub(crate) struct AvgMinMax {
    total: AtomicU64,
    count: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
}

impl Default for AvgMinMax {
    fn default() -> Self {
        AvgMinMax {
            total: AtomicU64::new(0),
            count: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
        }
    }
}

impl AvgMinMax {
    pub(crate) fn add(&self, value: u64) {
        self.total.fetch_add(value, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        // Read first: min and max rarely move, and a write on every request would bounce
        // their cache line between the cores answering requests.
        if value < self.min.load(Ordering::Relaxed) {
            self.min.fetch_min(value, Ordering::Relaxed);
        }
        if value > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(value, Ordering::Relaxed);
        }
    }

    /// The smallest observation; 0 before the first.
    pub(crate) fn min(&self) -> u64 {
        match self.min.load(Ordering::Relaxed) {
            u64::MAX => 0,
            min => min,
        }
    }

    /// The mean, rounded half up to 4 decimals as ZooKeeper rounds it; 0 before the first.
    pub(crate) fn avg(&self) -> f64 {
        let count = self.count.load(Ordering::Relaxed);
        if count == 0 {
            return 0.0;
        }
        let avg = self.total.load(Ordering::Relaxed) as f64 / count as f64;
        (avg * 10_000.0).round() / 10_000.0
    }

    pub(crate) fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

/// How much a summary reports, as ZooKeeper's `DetailLevel`: BASIC gives the median only,
/// ADVANCED the 90th and 99th percentiles too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Median only.
    Basic,
    /// Median, 90th and 99th percentiles (and p95/p999 in mntr).
    Advanced,
}

/// A distribution: count, total, min and max of everything observed, and quantiles over the
/// latest `WINDOW_OBSERVATIONS_MAX` observations.
#[derive(Debug)]
pub(crate) struct Summary {
    detail: Detail,
    all: AvgMinMax,
    /// A ring of the latest observations, written without a lock (a request's latency
    /// lands here on every connection's thread).
    window: Box<[AtomicU64]>,
    /// Observations ever added to the ring: the next goes at this modulo its length.
    added: AtomicU64,
}

impl Summary {
    fn new(detail: Detail) -> Summary {
        Summary {
            detail,
            all: AvgMinMax::default(),
            window: (0..WINDOW_OBSERVATIONS_MAX)
                .map(|_| AtomicU64::new(0))
                .collect(),
            added: AtomicU64::new(0),
        }
    }

    pub(crate) fn add(&self, value: u64) {
        self.all.add(value);
        let slot = self.added.fetch_add(1, Ordering::Relaxed) as usize % WINDOW_OBSERVATIONS_MAX;
        self.window[slot].store(value, Ordering::Relaxed);
    }

    /// Adds a duration in whole milliseconds, ZooKeeper's unit for times.
    pub(crate) fn add_duration(&self, elapsed: Duration) {
        self.add(elapsed.as_millis().try_into().unwrap_or(u64::MAX));
    }

    fn read(&self) -> SummaryValue {
        // A reader racing a writer may see a slot's previous value: quantiles are estimates.
        let filled = (self.added.load(Ordering::Relaxed) as usize).min(WINDOW_OBSERVATIONS_MAX);
        let mut sorted: Vec<u64> = self.window[..filled]
            .iter()
            .map(|value| value.load(Ordering::Relaxed))
            .collect();
        sorted.sort_unstable();
        let quantile = |q: f64| -> Option<f64> {
            if sorted.is_empty() {
                return None;
            }
            // Nearest rank: the smallest value with at least q of the window at or below it.
            let rank = (q * sorted.len() as f64).ceil() as usize;
            Some(sorted[rank.clamp(1, sorted.len()) - 1] as f64)
        };
        let wanted: &[f64] = match self.detail {
            Detail::Basic => &[0.5],
            Detail::Advanced => &[0.5, 0.9, 0.95, 0.99, 0.999],
        };
        SummaryValue {
            detail: self.detail,
            count: self.all.count(),
            sum: self.all.total(),
            min: self.all.min(),
            max: self.all.max(),
            avg: self.all.avg(),
            quantiles: wanted.iter().map(|&q| (q, quantile(q))).collect(),
        }
    }
}

/// Sizes in bytes, last, smallest and largest, as ZooKeeper's `BufferStats` (-1 until the
/// first): proposals a leader made (srvr's "Proposal sizes last/min/max") and replies sent.
#[derive(Debug)]
pub(crate) struct BufferStats {
    last: AtomicI64,
    min: AtomicI64,
    max: AtomicI64,
    count: AtomicU64,
}

impl Default for BufferStats {
    fn default() -> Self {
        BufferStats {
            last: AtomicI64::new(-1),
            min: AtomicI64::new(-1),
            max: AtomicI64::new(-1),
            count: AtomicU64::new(0),
        }
    }
}

impl BufferStats {
    /// Notes one size.
    pub(crate) fn record(&self, size_bytes: usize) {
        let size = size_bytes as i64;
        self.last.store(size, Ordering::Relaxed);
        // -1 means none yet; compare-and-swap so two writers cannot lose a smaller size.
        let _ = self
            .min
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |min| {
                (min < 0 || size < min).then_some(size)
            });
        if size > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(size, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// (last, min, max, count).
    pub(crate) fn read(&self) -> (i64, i64, i64, u64) {
        (
            self.last.load(Ordering::Relaxed),
            self.min.load(Ordering::Relaxed),
            self.max.load(Ordering::Relaxed),
            self.count.load(Ordering::Relaxed),
        )
    }
}

/// What the engine and its front ends count as they go; gauges of the tree and sessions are
/// read from them when a snapshot is taken.
#[derive(Debug)]
pub struct Metrics {
    pub(crate) started: Instant,
    pub(crate) packets_received: AtomicU64,
    pub(crate) packets_sent: AtomicU64,
    /// Every answered request, in milliseconds (ZooKeeper's ServerStats latency).
    pub(crate) request_latency: AvgMinMax,
    pub(crate) alive_connections: AtomicU64,
    /// Connections refused by a limit.
    pub(crate) connections_rejected: AtomicU64,
    /// Milliseconds per log fsync.
    pub(crate) fsync_time: Summary,
    /// Milliseconds to write a snapshot.
    pub(crate) snapshot_time: Summary,
    /// Milliseconds from a read's arrival to its answer (pings included, as ZooKeeper counts).
    pub(crate) read_latency: Summary,
    /// Milliseconds from a write's arrival to its answer.
    pub(crate) update_latency: Summary,
    /// Log entries made durable by one fsync (ours: how well writes share fsyncs).
    pub(crate) group_commit_entries: Summary,
    /// Committed entries handed to apply and not yet applied (ours).
    pub(crate) apply_queue_depth: AtomicU64,
    /// Fsyncs slower than `FSYNC_WARNING_MS`.
    pub(crate) fsync_threshold_exceed_count: AtomicU64,
    pub(crate) proposal_sizes: BufferStats,
    /// Replies sent to clients, without their length prefix.
    pub(crate) client_response_sizes: BufferStats,
}

/// An fsync slower than this many milliseconds is logged and counted (ZooKeeper's
/// `fsync.warningthresholdms`).
pub(crate) const FSYNC_WARNING_MS: u64 = 1000;

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            packets_received: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            request_latency: AvgMinMax::default(),
            alive_connections: AtomicU64::new(0),
            connections_rejected: AtomicU64::new(0),
            fsync_time: Summary::new(Detail::Basic),
            snapshot_time: Summary::new(Detail::Basic),
            read_latency: Summary::new(Detail::Advanced),
            update_latency: Summary::new(Detail::Advanced),
            group_commit_entries: Summary::new(Detail::Basic),
            apply_queue_depth: AtomicU64::new(0),
            fsync_threshold_exceed_count: AtomicU64::new(0),
            proposal_sizes: BufferStats::default(),
            client_response_sizes: BufferStats::default(),
        }
    }
}

impl Metrics {
    /// Counts a request's answer: latency server-wide and as a read or an update.
    pub(crate) fn record_request(&self, is_write: bool, latency_ms: u64) {
        self.request_latency.add(latency_ms);
        if is_write {
            self.update_latency.add(latency_ms);
        } else {
            self.read_latency.add(latency_ms);
        }
    }

    /// Counts one fsync of `entries` log entries.
    pub(crate) fn record_fsync(&self, elapsed: Duration, entries: usize) {
        self.fsync_time.add_duration(elapsed);
        self.group_commit_entries.add(entries as u64);
        let elapsed_ms = elapsed.as_millis() as u64;
        if elapsed_ms > FSYNC_WARNING_MS {
            self.fsync_threshold_exceed_count
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "fsync of the transaction log took {elapsed_ms} ms, more than {FSYNC_WARNING_MS} ms"
            );
        }
    }
}

/// A number as ZooKeeper reports it: most are whole, averages are doubles.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    /// A whole number.
    Whole(i64),
    /// A double (Java's `Double.toString` in mntr).
    Double(f64),
}

impl Number {
    /// The value as Prometheus carries every sample.
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Whole(value) => value as f64,
            Number::Double(value) => value,
        }
    }
}

/// A summary read out.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryValue {
    /// How many quantiles it reports.
    pub detail: Detail,
    /// Observations since start.
    pub count: u64,
    /// Their total.
    pub sum: u64,
    /// The smallest (0 before the first).
    pub min: u64,
    /// The largest.
    pub max: u64,
    /// The mean, to 4 decimals.
    pub avg: f64,
    /// (quantile, value over the recent window; None before the first observation).
    pub quantiles: Vec<(f64, Option<f64>)>,
}

/// What a metric is, for Prometheus's `# TYPE` line.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricValue {
    /// Goes up and down.
    Gauge(Number),
    /// Only grows.
    Counter(u64),
    /// A distribution.
    Summary(SummaryValue),
}

/// One named metric.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// ZooKeeper's name (without mntr's `zk_` prefix).
    pub name: &'static str,
    /// Its value when the snapshot was taken.
    pub value: MetricValue,
}

/// Every metric at one moment, in a fixed order.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsSnapshot {
    /// The member's role when the snapshot was taken (None: serving no one); the leader's
    /// and the ensemble's gauges are there only for the roles ZooKeeper reports them on.
    pub role: Option<ServerRole>,
    /// The metrics.
    pub metrics: Vec<Metric>,
}

impl MetricsSnapshot {
    /// The metric called `name`.
    pub fn get(&self, name: &str) -> Option<&MetricValue> {
        self.metrics
            .iter()
            .find(|metric| metric.name == name)
            .map(|metric| &metric.value)
    }

    /// A gauge's or counter's value, as mntr prints it.
    pub fn number(&self, name: &str) -> Option<Number> {
        match self.get(name)? {
            MetricValue::Gauge(number) => Some(*number),
            MetricValue::Counter(count) => Some(Number::Whole(*count as i64)),
            MetricValue::Summary(_) => None,
        }
    }
}

impl Engine {
    /// The engine's registry, for the front ends that count into it.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The node count ZooKeeper reports (srvr's "Node count", mntr's zk_znode_count): its
    /// node table holds the root twice, under "" and "/", and every count it prints says so.
    pub fn reported_node_count(&self) -> usize {
        self.znode_count() + 1
    }

    /// Every metric now: what mntr, `/metrics` and the AdminServer's monitor report.
    pub fn metrics_snapshot(&self) -> MetricsSnapshot {
        let metrics = &self.metrics;
        let whole = |value: u64| MetricValue::Gauge(Number::Whole(value as i64));
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let latency = &metrics.request_latency;
        let mut list = vec![
            (
                "avg_latency",
                MetricValue::Gauge(Number::Double(latency.avg())),
            ),
            ("max_latency", whole(latency.max())),
            ("min_latency", whole(latency.min())),
            ("packets_received", whole(load(&metrics.packets_received))),
            ("packets_sent", whole(load(&metrics.packets_sent))),
            (
                "num_alive_connections",
                whole(load(&metrics.alive_connections)),
            ),
            // Requests wait in per-session queues bounded by the connection's queue bytes;
            // none is outstanding in ZooKeeper's sense (queued ahead of the processors).
            ("outstanding_requests", whole(0)),
            (
                "uptime",
                whole(metrics.started.elapsed().as_millis() as u64),
            ),
            ("znode_count", whole(self.reported_node_count() as u64)),
            ("watch_count", whole(self.watch_count() as u64)),
            ("ephemerals_count", whole(self.ephemeral_count() as u64)),
            ("approximate_data_size", whole(self.approximate_data_size())),
            ("global_sessions", whole(self.session_count() as u64)),
            ("local_sessions", whole(0)),
        ];
        let (last, min, max, _) = metrics.client_response_sizes.read();
        let signed = |value: i64| MetricValue::Gauge(Number::Whole(value));
        list.extend([
            ("last_client_response_size", signed(last)),
            ("max_client_response_size", signed(max)),
            ("min_client_response_size", signed(min)),
        ]);
        let role = self.role();
        list.extend(self.quorum_gauges(role.unwrap_or(ServerRole::Standalone)));
        if let Some(open) = open_file_descriptor_count() {
            list.push(("open_file_descriptor_count", whole(open)));
        }
        if let Some(max) = max_file_descriptor_count() {
            list.push(("max_file_descriptor_count", whole(max)));
        }
        list.extend([
            (
                "connection_rejected",
                MetricValue::Counter(load(&metrics.connections_rejected)),
            ),
            ("fsynctime", MetricValue::Summary(metrics.fsync_time.read())),
            (
                "snapshottime",
                MetricValue::Summary(metrics.snapshot_time.read()),
            ),
            // ZooKeeper 3.8's mntr prints update latency before read latency.
            (
                "updatelatency",
                MetricValue::Summary(metrics.update_latency.read()),
            ),
            (
                "readlatency",
                MetricValue::Summary(metrics.read_latency.read()),
            ),
            (
                "group_commit_batch_size",
                MetricValue::Summary(metrics.group_commit_entries.read()),
            ),
            ("apply_queue_depth", whole(load(&metrics.apply_queue_depth))),
        ]);
        MetricsSnapshot {
            role,
            metrics: list
                .into_iter()
                .map(|(name, value)| Metric { name, value })
                .collect(),
        }
    }
}

impl Engine {
    /// The gauges ZooKeeper registers for a leader (`LeaderZooKeeperServer`) and, on any
    /// ensemble member, the quorum's size.
    fn quorum_gauges(&self, role: ServerRole) -> Vec<(&'static str, MetricValue)> {
        let whole = |value: u64| MetricValue::Gauge(Number::Whole(value as i64));
        let status = match role {
            ServerRole::Standalone | ServerRole::ReadOnly => return Vec::new(),
            _ => self.replication_status(),
        };
        let Some(status) = status else {
            return Vec::new();
        };
        let mut gauges = Vec::new();
        if role == ServerRole::Leader {
            let learners = &status.learners;
            let synced = |voter: bool| {
                learners
                    .iter()
                    .filter(|learner| learner.synced && learner.voter == voter)
                    .count() as u64
            };
            let receiving = learners
                .iter()
                .filter(|learner| learner.receiving_snapshot)
                .count() as u64;
            let (last, min, max, count) = self.proposal_sizes();
            let signed = |value: i64| MetricValue::Gauge(Number::Whole(value));
            gauges.extend([
                ("min_proposal_size", signed(min)),
                ("max_proposal_size", signed(max)),
                ("last_proposal_size", signed(last)),
                ("synced_followers", whole(synced(true))),
                // Observers are raft learners: ZooKeeper's non-voting followers do not
                // exist here.
                ("synced_non_voting_followers", whole(0)),
                ("synced_observers", whole(synced(false))),
                ("pending_syncs", whole(receiving)),
                ("leader_uptime", whole(self.leader_uptime_ms())),
                ("learners", whole(learners.len() as u64)),
                ("proposal_count", whole(count)),
            ]);
        }
        gauges.push(("quorum_size", whole(status.voters as u64)));
        gauges
    }
}

/// Open descriptors of this process, where /proc says (Linux).
pub(crate) fn open_file_descriptor_count() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

/// The soft limit on open descriptors (RLIMIT_NOFILE), where /proc says (Linux).
pub(crate) fn max_file_descriptor_count() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    //! Guards against figures that differ from ZooKeeper's in rounding, empty values or
    //! quantiles.

    use super::*;

    #[test]
    fn an_empty_counter_reports_zeros() {
        let counter = AvgMinMax::default();
        assert_eq!((counter.min(), counter.avg(), counter.max()), (0, 0.0, 0));
    }

    #[test]
    fn the_average_is_rounded_to_four_decimals() {
        let counter = AvgMinMax::default();
        for latency_ms in [0, 1, 3, 1, 2, 0, 1, 1, 3, 2, 1, 1, 1] {
            counter.add(latency_ms);
        }
        // 17 / 13 = 1.307692...: ZooKeeper prints 1.3077.
        assert_eq!(counter.avg(), 1.3077);
        assert_eq!((counter.min(), counter.max()), (0, 3));
    }

    #[test]
    fn summaries_report_nearest_rank_quantiles_of_the_recent_window() {
        let summary = Summary::new(Detail::Advanced);
        assert_eq!(summary.read().quantiles[0], (0.5, None));
        for value in 1..=100 {
            summary.add(value);
        }
        let value = summary.read();
        assert_eq!(
            (value.count, value.sum, value.min, value.max),
            (100, 5050, 1, 100)
        );
        assert_eq!(
            value.quantiles,
            vec![
                (0.5, Some(50.0)),
                (0.9, Some(90.0)),
                (0.95, Some(95.0)),
                (0.99, Some(99.0)),
                (0.999, Some(100.0))
            ]
        );
        // Past the window the oldest observations no longer count for quantiles.
        for _ in 0..WINDOW_OBSERVATIONS_MAX {
            summary.add(7);
        }
        let value = summary.read();
        assert_eq!(value.quantiles[0], (0.5, Some(7.0)));
        assert_eq!(value.count, 100 + WINDOW_OBSERVATIONS_MAX as u64);
        assert_eq!(value.max, 100);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn descriptor_counts_come_from_proc() {
        assert!(open_file_descriptor_count().unwrap() > 0);
        assert!(max_file_descriptor_count().unwrap() > 0);
    }
}
