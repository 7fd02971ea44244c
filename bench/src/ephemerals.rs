//! The ephemerals scenario: `sessions` sessions open (a bounded number of handshakes at a
//! time), each creates one ephemeral znode, then every one goes silent at once (sockets
//! dropped, no closeSession) and one more session polls the prefix's child count until the
//! server has expired them all; reported are the connect rate, the create rate and that
//! cleanup time.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;
use zookeeper_core::op::{Op, Reply};
use zookeeper_core::proto::wire;
use zookeeper_core::proto::OpCode;
use zookeeper_core::CreateMode;

use crate::held::HeldSession;
use crate::report::error_name;
use crate::scenario::{
    close_all, create_op, create_prefix, open_held, runtime, Kind, ScenarioConfig, ScenarioError,
};

/// How often the poller counts the prefix's children while the sessions expire.
pub const POLL_INTERVAL_MS: u64 = 20;
/// How long the poller waits, past the session timeout, for the last ephemeral to go.
const EXPIRY_GRACE_MS: u64 = 60_000;

/// What an ephemerals run measured.
#[derive(Clone, Debug, Serialize)]
pub struct EphemeralsReport {
    /// The servers, as given.
    pub hosts: Vec<String>,
    /// Sessions, each with one ephemeral.
    pub sessions: usize,
    /// The znode the ephemerals were created under.
    pub prefix: String,
    /// The session timeout the server agreed to, in ms.
    pub session_timeout_ms: u64,
    /// Seconds to open every session.
    pub connect_s: f64,
    /// Sessions opened per second.
    pub connects_per_second: f64,
    /// Seconds from the first create to the last answer (one per session, all at once).
    pub create_s: f64,
    /// Ephemerals created (answered) per second.
    pub creates_per_second: f64,
    /// Sessions whose connection broke before their create was answered (then dropped,
    /// so their ephemerals, if made, expire with the rest or earlier).
    pub sessions_lost: u64,
    /// The first of them and why.
    pub first_lost: Option<String>,
    /// Seconds from the sessions going silent to the poller's first count below `sessions`.
    pub first_expiry_s: Option<f64>,
    /// Seconds from the sessions going silent to the poller's first count of 0: the server
    /// expired every session and deleted every ephemeral. None when it never got there.
    pub all_expired_s: Option<f64>,
    /// Ephemerals still there when the poller gave up (0 when they all went).
    pub left: u64,
    /// "done", "skipped (--keep)" or "incomplete: <why>".
    pub cleanup: String,
}

impl EphemeralsReport {
    /// The report as a few lines for people.
    pub fn to_text(&self) -> String {
        let seconds = |value: Option<f64>| value.map_or("-".into(), |value| format!("{value:.2}"));
        let mut text = String::new();
        let _ = writeln!(
            text,
            "ephemerals: {} sessions on {}, session timeout {} ms",
            self.sessions,
            self.hosts.join(","),
            self.session_timeout_ms
        );
        let _ = writeln!(
            text,
            "connect: {:.2} s ({:.0} sessions/s)",
            self.connect_s, self.connects_per_second
        );
        let _ = writeln!(
            text,
            "create ephemeral: {:.2} s ({:.0} creates/s)",
            self.create_s, self.creates_per_second
        );
        if let Some(first_lost) = &self.first_lost {
            let _ = writeln!(
                text,
                "sessions lost before their create was answered: {} (first {first_lost})",
                self.sessions_lost
            );
        }
        let _ = writeln!(
            text,
            "after going silent: first ephemeral gone {} s, all gone {} s ({} left); cleanup {}",
            seconds(self.first_expiry_s),
            seconds(self.all_expired_s),
            self.left,
            self.cleanup
        );
        text
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }
}

/// The path of session `session`'s ephemeral.
pub fn ephemeral_path(prefix: &str, session: usize) -> String {
    format!("{prefix}/e{session}")
}

/// Runs the scenario `config` describes (its kind must be `Kind::Ephemerals`).
pub fn run(config: &ScenarioConfig) -> Result<EphemeralsReport, ScenarioError> {
    if config.kind != Kind::Ephemerals {
        return Err(ScenarioError::Config("not an ephemerals run".into()));
    }
    config.validate().map_err(ScenarioError::Config)?;
    runtime(config.threads)?.block_on(execute(config))
}

/// The prefix's child count, asked with exists.
async fn children(poller: &HeldSession, prefix: &str) -> Result<u64, ScenarioError> {
    let exists = Op::Exists {
        path: prefix.to_string(),
        watch: false,
    };
    let answer = poller
        .call(OpCode::Exists, exists)
        .await
        .map_err(|reason| ScenarioError::Lost {
            session: poller.session,
            step: "counting the ephemerals",
            reason,
        })?;
    if answer.err != 0 {
        return Err(ScenarioError::Refused(format!(
            "exists {prefix}: {}",
            error_name(answer.err)
        )));
    }
    match wire::decode_reply(OpCode::Exists.code(), &answer.body) {
        Ok(Reply::Exists(Some(stat))) => Ok(stat.num_children.max(0) as u64),
        _ => Err(ScenarioError::Refused(format!(
            "exists {prefix}: the reply did not decode"
        ))),
    }
}

async fn execute(config: &ScenarioConfig) -> Result<EphemeralsReport, ScenarioError> {
    let prefix = config.prefix_or_random();
    // The poller is session number `sessions`; it creates the prefix and counts.
    let poller = open_held(config, config.sessions, 1, None)
        .await?
        .pop()
        .expect("one session asked for");
    if let Err(error) = create_prefix(&poller, &prefix).await {
        poller.close().await;
        return Err(error);
    }
    let outcome = async {
        let connect_start = Instant::now();
        let sessions = open_held(config, 0, config.sessions, None).await?;
        let connect_s = connect_start.elapsed().as_secs_f64();
        let session_timeout_ms = sessions[0].timeout.as_millis() as u64;

        let create_start = Instant::now();
        let creating: Vec<_> = sessions
            .into_iter()
            .map(|session| {
                let path = ephemeral_path(&prefix, session.session);
                let create = create_op(path, vec![b'e'; config.value_bytes], CreateMode::Ephemeral);
                tokio::spawn(async move {
                    let answer = session.call(OpCode::Create, create).await;
                    (session, answer)
                })
            })
            .collect();
        let mut sessions = Vec::with_capacity(config.sessions);
        let (mut failure, mut sessions_lost, mut first_lost) = (None, 0u64, None);
        for task in creating {
            let (session, answer) = task.await.expect("a create does not panic");
            match answer {
                Ok(answer) if answer.err == 0 => {}
                Ok(answer) => {
                    failure.get_or_insert(ScenarioError::Refused(format!(
                        "creating an ephemeral: {}",
                        error_name(answer.err)
                    )));
                }
                // An overloaded server (or client) can stay silent past 2/3 of a short
                // session timeout: counted and reported, and the run goes on without it.
                Err(reason) => {
                    sessions_lost += 1;
                    first_lost.get_or_insert(format!("session {}: {reason}", session.session));
                }
            }
            sessions.push(session);
        }
        let create_s = create_start.elapsed().as_secs_f64();
        if let Some(error) = failure {
            close_all(sessions).await;
            return Err(error);
        }
        // A lost session's create may or may not have been applied.
        let created = children(&poller, &prefix).await?;
        let expected = config.sessions as u64 - sessions_lost..=config.sessions as u64;
        if !expected.contains(&created) {
            close_all(sessions).await;
            return Err(ScenarioError::Refused(format!(
                "{created} ephemerals under {prefix} after {} creates ({sessions_lost} unanswered)",
                config.sessions
            )));
        }

        // Every socket closed, no closeSession: from here only expiry removes the ephemerals.
        let silent_from = Instant::now();
        let abandoning: Vec<_> = sessions
            .into_iter()
            .map(|session| tokio::spawn(session.abandon()))
            .collect();
        for task in abandoning {
            let _ = task.await;
        }
        let give_up = silent_from
            + Duration::from_millis(session_timeout_ms.saturating_mul(2) + EXPIRY_GRACE_MS);
        let (mut first_expiry_s, mut all_expired_s, mut left) = (None, None, created);
        while Instant::now() < give_up {
            left = children(&poller, &prefix).await?;
            let after = silent_from.elapsed().as_secs_f64();
            if left < created {
                first_expiry_s.get_or_insert(after);
            }
            if left == 0 {
                all_expired_s = Some(after);
                break;
            }
            tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
        }
        Ok(EphemeralsReport {
            hosts: config.hosts.clone(),
            sessions: config.sessions,
            prefix: prefix.clone(),
            session_timeout_ms,
            connect_s,
            connects_per_second: config.sessions as f64 / connect_s,
            create_s,
            creates_per_second: (config.sessions as u64 - sessions_lost) as f64 / create_s,
            sessions_lost,
            first_lost,
            first_expiry_s,
            all_expired_s,
            left,
            cleanup: String::new(),
        })
    }
    .await;
    // Ephemerals still there (a run that stopped early, or expiry that never came) make the
    // prefix's delete fail NotEmpty; that is reported, and they go when their sessions expire.
    let cleanup = match config.cleanup {
        false => "skipped (--keep)".to_string(),
        true => {
            let delete = Op::Delete {
                path: prefix.clone(),
                version: -1,
            };
            match poller.call(OpCode::Delete, delete).await {
                Ok(answer) if answer.err == 0 => "done".into(),
                Ok(answer) => format!("incomplete: deleting {prefix}: {}", error_name(answer.err)),
                Err(reason) => format!("incomplete: {reason}"),
            }
        }
    };
    poller.close().await;
    outcome.map(|report| EphemeralsReport { cleanup, ..report })
}
