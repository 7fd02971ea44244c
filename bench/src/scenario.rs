//! What the scenarios beyond the request mix (`fanout`, `ephemerals`) share: their settings,
//! checked once; opening many held sessions a bounded number at a time; the prefix they work
//! under; and percentiles over a handful of samples.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};
use zookeeper_core::op::{CreateRequest, Op};
use zookeeper_core::proto::{ErrorCode, OpCode};
use zookeeper_core::{Acl, CreateMode};

use crate::config::{
    SESSIONS_MAX, SESSION_TIMEOUT_MS_MAX, SESSION_TIMEOUT_MS_MIN, THREADS_MAX, VALUE_BYTES_MAX,
};
use crate::connection::{ConnectError, Connection, LostReason};
use crate::held::{HeldSession, Notification};
use crate::report::error_name;

/// Handshakes under way at once while opening sessions. A server's listen backlog is finite
/// (Apache ZooKeeper's defaults to 50): more connects at once than it holds are dropped by the
/// kernel and retried a second later, and the connect rate would measure that.
pub const HANDSHAKES_IN_FLIGHT_MAX: usize = 32;
/// Most watched znodes in the fan-out scenario.
pub const WATCHES_MAX: usize = 100_000;
/// Most fan-out rounds; each round fires a znode of its own, so at most `watches`.
pub const ROUNDS_MAX: usize = 10_000;

/// Which scenario, with the settings only it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Every session watches the same `watches` znodes; each of `rounds` rounds sets one of
    /// them and times the notifications.
    WatchFanout {
        /// Znodes each session watches (a data watch each).
        watches: usize,
        /// Rounds, each a setData of another znode.
        rounds: usize,
    },
    /// Every session creates one ephemeral znode, then all go silent and expire.
    Ephemerals,
}

/// A scenario run: the settings shared with the request mix, and the scenario's own.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioConfig {
    /// Which scenario.
    pub kind: Kind,
    /// Servers as `host:port`; session i connects to `hosts[i % hosts.len()]`.
    pub hosts: Vec<String>,
    /// Sessions measured (the fan-out's setter and the expiry's poller come on top).
    pub sessions: usize,
    /// The session timeout asked for.
    pub session_timeout: Duration,
    /// Bytes of the value each setData (fan-out) or create (ephemerals) writes.
    pub value_bytes: usize,
    /// Where to create everything; must not exist. None: `/bench-<random>`.
    pub prefix: Option<String>,
    /// Delete what was made afterwards.
    pub cleanup: bool,
    /// Client worker threads.
    pub threads: usize,
}

impl ScenarioConfig {
    /// Checks the rules the request mix's settings do not cover (its own `validate` checks
    /// hosts, prefix and the rest first).
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=SESSIONS_MAX).contains(&self.sessions) {
            return Err(format!(
                "--sessions must be between 1 and {SESSIONS_MAX} (got {})",
                self.sessions
            ));
        }
        let timeout_ms = self.session_timeout.as_millis() as u64;
        if !(SESSION_TIMEOUT_MS_MIN..=SESSION_TIMEOUT_MS_MAX).contains(&timeout_ms) {
            return Err(format!("--session-timeout must be between {SESSION_TIMEOUT_MS_MIN} ms and {SESSION_TIMEOUT_MS_MAX} ms"));
        }
        if self.value_bytes > VALUE_BYTES_MAX {
            return Err(format!(
                "--value-bytes must be at most {VALUE_BYTES_MAX} (got {})",
                self.value_bytes
            ));
        }
        if !(1..=THREADS_MAX).contains(&self.threads) {
            return Err(format!(
                "--threads must be between 1 and {THREADS_MAX} (got {})",
                self.threads
            ));
        }
        if self.hosts.is_empty() {
            return Err("--hosts must name at least one server".into());
        }
        if let Kind::WatchFanout { watches, rounds } = self.kind {
            if !(1..=WATCHES_MAX).contains(&watches) {
                return Err(format!(
                    "--watches must be between 1 and {WATCHES_MAX} (got {watches})"
                ));
            }
            if !(1..=ROUNDS_MAX.min(watches)).contains(&rounds) {
                return Err(format!(
                    "--rounds must be between 1 and --watches (each round fires a znode of its own), at most {ROUNDS_MAX} (got {rounds})"
                ));
            }
        }
        Ok(())
    }

    /// The prefix asked for, or a fresh `/bench-<random>`.
    pub fn prefix_or_random(&self) -> String {
        self.prefix.clone().unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.subsec_nanos());
            format!("/bench-{:08x}", nanos ^ std::process::id().rotate_left(16))
        })
    }
}

/// Why a scenario stopped before it could report.
#[derive(Debug)]
pub enum ScenarioError {
    /// A setting broke its rule.
    Config(String),
    /// The client's runtime could not start.
    Runtime(std::io::Error),
    /// A session could not be opened.
    Connect {
        /// Which session.
        session: usize,
        /// Its server.
        host: String,
        /// What went wrong.
        error: ConnectError,
    },
    /// A session's connection broke in a step that needs every session.
    Lost {
        /// Which session.
        session: usize,
        /// The step.
        step: &'static str,
        /// Why.
        reason: LostReason,
    },
    /// The server refused a step; the message says which and why.
    Refused(String),
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScenarioError::Config(why) => f.write_str(why),
            ScenarioError::Runtime(error) => {
                write!(f, "cannot start the client's threads: {error}")
            }
            ScenarioError::Connect {
                session,
                host,
                error,
            } => write!(f, "session {session} cannot connect to {host}: {error}"),
            ScenarioError::Lost {
                session,
                step,
                reason,
            } => write!(
                f,
                "session {session} lost its connection while {step}: {reason}"
            ),
            ScenarioError::Refused(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// A runtime of `threads` workers.
pub fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, ScenarioError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("zookeeper-bench")
        .enable_all()
        .build()
        .map_err(ScenarioError::Runtime)
}

/// Opens sessions `first..first + count` (session i on host i mod hosts), at most
/// `HANDSHAKES_IN_FLIGHT_MAX` handshakes at a time, each held by its own task from the moment
/// it is open (so it pings while the others connect). On any failure the opened ones are
/// closed and the first error is returned.
pub async fn open_held(
    config: &ScenarioConfig,
    first: usize,
    count: usize,
    notifications: Option<mpsc::UnboundedSender<Notification>>,
) -> Result<Vec<HeldSession>, ScenarioError> {
    let permits = Arc::new(Semaphore::new(HANDSHAKES_IN_FLIGHT_MAX));
    let tasks: Vec<_> = (first..first + count)
        .map(|session| {
            let host = config.hosts[session % config.hosts.len()].clone();
            let (timeout, permits, notifications) = (
                config.session_timeout,
                Arc::clone(&permits),
                notifications.clone(),
            );
            tokio::spawn(async move {
                let permit = permits.acquire_owned().await.expect("never closed");
                let opened = Connection::open(&host, timeout).await;
                drop(permit);
                opened
                    .map(|connection| HeldSession::spawn(session, connection, notifications))
                    .map_err(|error| ScenarioError::Connect {
                        session,
                        host,
                        error,
                    })
            })
        })
        .collect();
    let mut held = Vec::with_capacity(count);
    let mut first_error = None;
    for task in tasks {
        match task.await.expect("opening a session does not panic") {
            Ok(session) => held.push(session),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    match first_error {
        None => Ok(held),
        Some(error) => {
            close_all(held).await;
            Err(error)
        }
    }
}

/// Closes every session, all at once.
pub async fn close_all(sessions: Vec<HeldSession>) {
    let closing: Vec<_> = sessions
        .into_iter()
        .map(|session| tokio::spawn(session.close()))
        .collect();
    for task in closing {
        let _ = task.await;
    }
}

/// A persistent znode at `path` with `data`, as an op.
pub fn create_op(path: String, data: Vec<u8>, mode: CreateMode) -> Op {
    Op::Create(CreateRequest {
        path,
        data: Some(data),
        acl: Acl::open_unsafe(),
        mode,
        ttl_ms: -1,
    })
}

/// Creates the prefix; an existing one is refused, since the cleanup deletes what is under it.
pub async fn create_prefix(session: &HeldSession, prefix: &str) -> Result<(), ScenarioError> {
    let create = create_op(prefix.to_string(), Vec::new(), CreateMode::Persistent);
    let answer = session
        .call(OpCode::Create, create)
        .await
        .map_err(|reason| ScenarioError::Lost {
            session: session.session,
            step: "creating the prefix",
            reason,
        })?;
    match answer.err {
        0 => Ok(()),
        err if ErrorCode::from_code(err) == Some(ErrorCode::NodeExists) => {
            Err(ScenarioError::Refused(format!(
                "{prefix} exists already; give another --prefix (or delete it), since the run deletes its prefix afterwards"
            )))
        }
        err => Err(ScenarioError::Refused(format!(
            "creating {prefix}: {}",
            error_name(err)
        ))),
    }
}

/// The nearest-rank `percent` percentile of `samples` (sorted here); None when empty.
pub fn percentile(samples: &[f64], percent: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((percent / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(kind: Kind) -> ScenarioConfig {
        ScenarioConfig {
            kind,
            hosts: vec!["127.0.0.1:2181".into()],
            sessions: 10,
            session_timeout: Duration::from_secs(4),
            value_bytes: 10,
            prefix: None,
            cleanup: true,
            threads: 2,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&samples, 50.0), Some(50.0));
        assert_eq!(percentile(&samples, 99.0), Some(99.0));
        assert_eq!(percentile(&samples, 100.0), Some(100.0));
        assert_eq!(percentile(&samples, 0.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn fanout_rounds_cannot_outnumber_the_watched_znodes() {
        let fanout = |watches, rounds| config(Kind::WatchFanout { watches, rounds }).validate();
        assert_eq!(fanout(1_000, 20), Ok(()));
        assert!(fanout(10, 11).unwrap_err().contains("--rounds must be"));
        assert!(fanout(0, 1).unwrap_err().contains("--watches must be"));
        assert_eq!(config(Kind::Ephemerals).validate(), Ok(()));
    }
}
