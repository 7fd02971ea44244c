//! The watch fan-out scenario: `sessions` sessions each leave a data watch on the same
//! `watches` znodes, then each round one more session sets one of those znodes and the round
//! times every session's notification; reported are the time to set all the watches and, over
//! the rounds, the time from the setData to the last session's notification.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;
use zookeeper_core::op::Op;
use zookeeper_core::proto::OpCode;
use zookeeper_core::CreateMode;

use crate::held::{Answer, HeldSession, Notification};
use crate::report::error_name;
use crate::scenario::{
    close_all, create_op, create_prefix, open_held, percentile, runtime, Kind, ScenarioConfig,
    ScenarioError,
};

/// ZooKeeper's NodeDataChanged event type: what a setData fires on a data watch.
pub const NODE_DATA_CHANGED: i32 = 3;
/// Quiet time before each round, so one round's stragglers and the next do not mix.
const ROUND_PAUSE_MS: u64 = 200;
/// How long a round waits for its notifications before counting the rest as missing.
const ROUND_TIMEOUT_MS: u64 = 30_000;

/// What a fan-out run measured.
#[derive(Clone, Debug, Serialize)]
pub struct FanoutReport {
    /// The servers, as given.
    pub hosts: Vec<String>,
    /// Watching sessions.
    pub sessions: usize,
    /// Znodes each session watches.
    pub watches: usize,
    /// The znode everything was created under.
    pub prefix: String,
    /// Seconds to open the watching sessions.
    pub connect_s: f64,
    /// Seconds from the first watch request to the last watch's answer (sessions x watches
    /// getData with a watch, every session at once).
    pub watches_set_s: f64,
    /// Watches set per second.
    pub watches_per_second: f64,
    /// Per round: ms from sending the setData to its answer.
    pub set_answer_ms: Vec<f64>,
    /// Per round: ms from sending the setData to the last session's notification (rounds
    /// where some never arrived are left out; see `notifications_missing`).
    pub last_notification_ms: Vec<f64>,
    /// Per round: ms from the setData to the median session's notification.
    pub median_notification_ms: Vec<f64>,
    /// p50 of `last_notification_ms`.
    pub last_p50_ms: Option<f64>,
    /// p99 of `last_notification_ms`.
    pub last_p99_ms: Option<f64>,
    /// The slowest round.
    pub last_max_ms: Option<f64>,
    /// Notifications that did not arrive within the round's timeout, over all rounds.
    pub notifications_missing: u64,
    /// Notifications that belonged to no round (another path or type, or a duplicate).
    pub notifications_stray: u64,
    /// "done", "skipped (--keep)" or "incomplete: <why>".
    pub cleanup: String,
}

impl FanoutReport {
    /// The report as a few lines for people.
    pub fn to_text(&self) -> String {
        let ms = |value: Option<f64>| value.map_or("-".into(), |value| format!("{value:.1}"));
        let mut text = String::new();
        let _ = writeln!(
            text,
            "watch fan-out: {} sessions x {} watches on {}",
            self.sessions,
            self.watches,
            self.hosts.join(",")
        );
        let _ = writeln!(text, "connect: {:.2} s", self.connect_s);
        let _ = writeln!(
            text,
            "watches set: {:.2} s ({:.0} watches/s)",
            self.watches_set_s, self.watches_per_second
        );
        let _ = writeln!(
            text,
            "setData to last notification over {} rounds: p50 {} ms, p99 {} ms, max {} ms",
            self.last_notification_ms.len(),
            ms(self.last_p50_ms),
            ms(self.last_p99_ms),
            ms(self.last_max_ms)
        );
        let _ = writeln!(
            text,
            "setData to median notification p50 {} ms; setData answered p50 {} ms",
            ms(percentile(&self.median_notification_ms, 50.0)),
            ms(percentile(&self.set_answer_ms, 50.0))
        );
        let _ = writeln!(
            text,
            "notifications missing {}, stray {}; cleanup {}",
            self.notifications_missing, self.notifications_stray, self.cleanup
        );
        text
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }
}

/// One round's bookkeeping: which sessions have seen the fired znode change, and when.
#[derive(Debug)]
pub struct RoundTally {
    path: String,
    started: Instant,
    seen: Vec<bool>,
    arrivals_ms: Vec<f64>,
    /// Notifications that were not this round's first for their session.
    pub strays: u64,
}

impl RoundTally {
    /// A round that set `path` at `started`, watched by sessions `0..sessions`.
    pub fn new(path: String, sessions: usize, started: Instant) -> RoundTally {
        RoundTally {
            path,
            started,
            seen: vec![false; sessions],
            arrivals_ms: Vec::with_capacity(sessions),
            strays: 0,
        }
    }

    /// Counts `notification`; true once every session has seen the round's change.
    pub fn record(&mut self, notification: &Notification) -> bool {
        let fresh = notification.path == self.path
            && notification.event_type == NODE_DATA_CHANGED
            && self.seen.get(notification.session) == Some(&false);
        if fresh {
            self.seen[notification.session] = true;
            let after = notification.arrived.saturating_duration_since(self.started);
            self.arrivals_ms.push(after.as_secs_f64() * 1e3);
        } else {
            self.strays += 1;
        }
        self.is_complete()
    }

    /// Whether every session has seen it.
    pub fn is_complete(&self) -> bool {
        self.arrivals_ms.len() == self.seen.len()
    }

    /// Sessions that have not seen it.
    pub fn missing(&self) -> u64 {
        (self.seen.len() - self.arrivals_ms.len()) as u64
    }

    /// Ms to the last session's notification, once complete.
    pub fn last_ms(&self) -> Option<f64> {
        self.is_complete()
            .then(|| percentile(&self.arrivals_ms, 100.0))
            .flatten()
    }

    /// Ms to the median session's notification.
    pub fn median_ms(&self) -> Option<f64> {
        percentile(&self.arrivals_ms, 50.0)
    }
}

/// The path of watched znode `index`.
pub fn watched_path(prefix: &str, index: usize) -> String {
    format!("{prefix}/w{index}")
}

/// Runs the fan-out `config` describes (its kind must be `Kind::WatchFanout`).
pub fn run(config: &ScenarioConfig) -> Result<FanoutReport, ScenarioError> {
    let Kind::WatchFanout { watches, rounds } = config.kind else {
        return Err(ScenarioError::Config("not a watch-fanout run".into()));
    };
    config.validate().map_err(ScenarioError::Config)?;
    runtime(config.threads)?.block_on(execute(config, watches, rounds))
}

fn lost(
    session: &HeldSession,
    step: &'static str,
) -> impl Fn(crate::connection::LostReason) -> ScenarioError {
    let session = session.session;
    move |reason| ScenarioError::Lost {
        session,
        step,
        reason,
    }
}

/// The first error among `answers`, as a refusal of `step`.
fn refused(answers: &[Answer], step: &str) -> Result<(), ScenarioError> {
    match answers.iter().find(|answer| answer.err != 0) {
        None => Ok(()),
        Some(answer) => Err(ScenarioError::Refused(format!(
            "{step}: {}",
            error_name(answer.err)
        ))),
    }
}

async fn execute(
    config: &ScenarioConfig,
    watches: usize,
    rounds: usize,
) -> Result<FanoutReport, ScenarioError> {
    let prefix = config.prefix_or_random();
    // The setter is session number `sessions`; it watches nothing.
    let setter = open_held(config, config.sessions, 1, None)
        .await?
        .pop()
        .expect("one session asked for");
    if let Err(error) = create_prefix(&setter, &prefix).await {
        setter.close().await;
        return Err(error);
    }
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let outcome = async {
        let creates = (0..watches)
            .map(|index| {
                let path = watched_path(&prefix, index);
                (
                    OpCode::Create,
                    create_op(path, Vec::new(), CreateMode::Persistent),
                )
            })
            .collect();
        let created = setter
            .batch(creates)
            .await
            .map_err(lost(&setter, "creating the watched znodes"))?;
        refused(&created, "creating the watched znodes")?;

        let connect_start = Instant::now();
        let watchers = open_held(config, 0, config.sessions, Some(sender)).await?;
        let connect_s = connect_start.elapsed().as_secs_f64();

        let set_start = Instant::now();
        let setting: Vec<_> = watchers
            .into_iter()
            .map(|watcher| {
                let requests = (0..watches)
                    .map(|index| {
                        let path = watched_path(&prefix, index);
                        (OpCode::GetData, Op::GetData { path, watch: true })
                    })
                    .collect();
                tokio::spawn(async move {
                    let answers = watcher.batch(requests).await;
                    (watcher, answers)
                })
            })
            .collect();
        let mut watchers = Vec::with_capacity(config.sessions);
        let mut failure = None;
        for task in setting {
            let (watcher, answers) = task.await.expect("setting watches does not panic");
            let checked = answers
                .map_err(lost(&watcher, "setting watches"))
                .and_then(|answers| refused(&answers, "setting watches"));
            if let Err(error) = checked {
                failure.get_or_insert(error);
            }
            watchers.push(watcher);
        }
        let watches_set_s = set_start.elapsed().as_secs_f64();
        if let Some(error) = failure {
            close_all(watchers).await;
            return Err(error);
        }

        let mut report = FanoutReport {
            hosts: config.hosts.clone(),
            sessions: config.sessions,
            watches,
            prefix: prefix.clone(),
            connect_s,
            watches_set_s,
            watches_per_second: (config.sessions * watches) as f64 / watches_set_s,
            set_answer_ms: Vec::new(),
            last_notification_ms: Vec::new(),
            median_notification_ms: Vec::new(),
            last_p50_ms: None,
            last_p99_ms: None,
            last_max_ms: None,
            notifications_missing: 0,
            notifications_stray: 0,
            cleanup: String::new(),
        };
        for round in 0..rounds {
            tokio::time::sleep(Duration::from_millis(ROUND_PAUSE_MS)).await;
            while receiver.try_recv().is_ok() {
                report.notifications_stray += 1;
            }
            let path = watched_path(&prefix, round);
            let value = vec![b'v'; config.value_bytes];
            let started = Instant::now();
            let mut tally = RoundTally::new(path.clone(), config.sessions, started);
            let set = async {
                let set = Op::SetData {
                    path,
                    data: Some(value),
                    version: -1,
                };
                let answer = setter.call(OpCode::SetData, set).await;
                (answer, started.elapsed())
            };
            let collect = async {
                let deadline = tokio::time::sleep(Duration::from_millis(ROUND_TIMEOUT_MS));
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        notification = receiver.recv() => match notification {
                            Some(notification) if tally.record(&notification) => break,
                            Some(_) => {}
                            None => break,
                        },
                        () = &mut deadline => break,
                    }
                }
            };
            let ((answer, answered), ()) = tokio::join!(set, collect);
            match answer.map_err(lost(&setter, "setting a watched znode")) {
                Ok(answer) if answer.err == 0 => {}
                Ok(answer) => {
                    close_all(watchers).await;
                    return Err(ScenarioError::Refused(format!(
                        "setData of a watched znode: {}",
                        error_name(answer.err)
                    )));
                }
                Err(error) => {
                    close_all(watchers).await;
                    return Err(error);
                }
            }
            report.set_answer_ms.push(answered.as_secs_f64() * 1e3);
            report.notifications_missing += tally.missing();
            report.notifications_stray += tally.strays;
            report.last_notification_ms.extend(tally.last_ms());
            report.median_notification_ms.extend(tally.median_ms());
        }
        report.last_p50_ms = percentile(&report.last_notification_ms, 50.0);
        report.last_p99_ms = percentile(&report.last_notification_ms, 99.0);
        report.last_max_ms = percentile(&report.last_notification_ms, 100.0);
        // Closing the watchers first takes their watches away, so the deletes fire nothing.
        close_all(watchers).await;
        Ok(report)
    }
    .await;
    let cleanup = match config.cleanup {
        true => delete_all(&setter, &prefix, watches).await,
        false => "skipped (--keep)".to_string(),
    };
    setter.close().await;
    outcome.map(|report| FanoutReport { cleanup, ..report })
}

/// Deletes the watched znodes (NoNode is fine: the setup may have stopped early), then the
/// prefix.
async fn delete_all(setter: &HeldSession, prefix: &str, watches: usize) -> String {
    let deletes = (0..watches)
        .map(|index| {
            let path = watched_path(prefix, index);
            (OpCode::Delete, Op::Delete { path, version: -1 })
        })
        .chain([(
            OpCode::Delete,
            Op::Delete {
                path: prefix.to_string(),
                version: -1,
            },
        )])
        .collect();
    match setter.batch(deletes).await {
        Err(reason) => format!("incomplete: {reason}"),
        Ok(answers) => match answers.last().map(|answer| answer.err) {
            Some(0) => "done".into(),
            Some(err) => format!("incomplete: deleting {prefix}: {}", error_name(err)),
            None => "incomplete: no answer".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(
        session: usize,
        path: &str,
        event_type: i32,
        after_ms: u64,
        start: Instant,
    ) -> Notification {
        Notification {
            session,
            path: path.into(),
            event_type,
            arrived: start + Duration::from_millis(after_ms),
        }
    }

    #[test]
    fn a_round_completes_when_every_session_has_seen_its_change() {
        let start = Instant::now();
        let mut tally = RoundTally::new("/p/w3".into(), 3, start);
        assert!(!tally.record(&notification(1, "/p/w3", NODE_DATA_CHANGED, 5, start)));
        // Another znode, another event type, a session out of range, a duplicate: strays.
        assert!(!tally.record(&notification(0, "/p/w4", NODE_DATA_CHANGED, 6, start)));
        assert!(!tally.record(&notification(0, "/p/w3", 2, 6, start)));
        assert!(!tally.record(&notification(7, "/p/w3", NODE_DATA_CHANGED, 6, start)));
        assert!(!tally.record(&notification(1, "/p/w3", NODE_DATA_CHANGED, 7, start)));
        assert_eq!((tally.strays, tally.missing()), (4, 2));
        assert_eq!(tally.last_ms(), None);
        assert!(!tally.record(&notification(2, "/p/w3", NODE_DATA_CHANGED, 9, start)));
        assert!(tally.record(&notification(0, "/p/w3", NODE_DATA_CHANGED, 20, start)));
        assert_eq!(tally.missing(), 0);
        assert_eq!(tally.last_ms(), Some(20.0));
        assert_eq!(tally.median_ms(), Some(9.0));
    }
}
