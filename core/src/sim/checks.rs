//! The simulation's history and what is checked on it: writes (and synced reads) are
//! linearizable on the register and the queue; each session's answers come in request order
//! and never go back in time; a session reads its own writes; every watch fires once, in
//! zxid order, and before its session can see the change; ephemerals live exactly as long as
//! their session; a client told its session expired finds it gone.

use std::collections::{BTreeMap, BTreeSet};

use crate::op::Response;
use crate::proto::{ErrorCode, EventType, WatchedEvent};
use crate::sim::linearizability::{check, Model, Operation, Verdict};
use crate::sim::models::{Queue, QueueInput, QueueOutput, Register, RegisterInput, RegisterOutput};

/// What one session has shown so far.
#[derive(Default)]
struct SessionTrack {
    /// The register's mzxid when the pending data watch was set (None: no watch pending).
    watch_since: Option<i64>,
    /// The newest zxid of a watch event.
    last_event_zxid: i64,
    /// The newest zxid in an answer.
    last_answer_zxid: i64,
    /// The register's mzxid after the session's newest acknowledged write to it.
    last_write_mzxid: i64,
}

/// What is known of one ephemeral znode.
struct Ephemeral {
    owner: i64,
    created: bool,
    delete_asked: bool,
    deleted: bool,
}

/// Everything asked and heard, and the findings so far.
#[derive(Default)]
pub struct History {
    register: Vec<Operation<RegisterInput, RegisterOutput>>,
    queue: Vec<Operation<QueueInput, QueueOutput>>,
    sessions: BTreeMap<i64, SessionTrack>,
    /// The newest request answered per (client, connection).
    answered: BTreeMap<(usize, u64), u64>,
    ephemerals: BTreeMap<String, Ephemeral>,
    sequences: BTreeSet<u32>,
    opened: BTreeSet<i64>,
    closed: BTreeSet<i64>,
    expired: BTreeSet<i64>,
    violations: Vec<String>,
}

impl History {
    /// A finding.
    pub fn violation(&mut self, what: String) {
        self.violations.push(what);
    }

    /// The findings.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// How many operations the linearizability checks will look at: (register, queue).
    pub fn operation_counts(&self) -> (usize, usize) {
        (self.register.len(), self.queue.len())
    }

    /// An answer came. `session`: the session it was for; `current`: it came through the
    /// client's current connection.
    pub fn answered(
        &mut self,
        client: usize,
        epoch: u64,
        request: u64,
        session: Option<i64>,
        response: &Response,
        current: bool,
    ) {
        let previous = self.answered.insert((client, epoch), request);
        if previous.is_some_and(|previous| previous > request) {
            self.violation(format!(
                "client {client} connection {epoch}: request {request} answered after {previous:?}"
            ));
        }
        let (Some(session), true) = (session, current) else {
            return;
        };
        // A ConnectionLoss carries no zxid (ZooKeeper sends none: it closes the connection).
        if response.result == Err(ErrorCode::ConnectionLoss) {
            return;
        }
        let track = self.sessions.entry(session).or_default();
        if response.zxid < track.last_answer_zxid {
            let seen = track.last_answer_zxid;
            self.violation(format!(
                "session 0x{session:x}: an answer at zxid {} after one at {seen}",
                response.zxid
            ));
        } else {
            track.last_answer_zxid = response.zxid;
        }
    }

    /// A read of the register by `session` (on its current connection) showed `mzxid`.
    pub fn register_seen(&mut self, session: i64, at: u64, mzxid: i64) {
        let track = self.sessions.entry(session).or_default();
        let last_write = track.last_write_mzxid;
        let since = track.watch_since;
        if mzxid < last_write {
            self.violation(format!(
                "session 0x{session:x} at {at}: read the register at mzxid {mzxid} after writing it at {last_write}"
            ));
        }
        if let Some(since) = since.filter(|since| mzxid > *since) {
            self.violation(format!(
                "session 0x{session:x} at {at}: saw the register change (mzxid {mzxid}) before its watch set at {since} fired"
            ));
        }
    }

    /// `session`'s write of the register was acknowledged, leaving `mzxid`.
    pub fn register_written(&mut self, session: i64, at: u64, mzxid: i64) {
        self.register_seen(session, at, mzxid);
        let track = self.sessions.entry(session).or_default();
        track.last_write_mzxid = track.last_write_mzxid.max(mzxid);
    }

    /// `session` set a data watch on the register after reading it at `mzxid`.
    pub fn watch_set(&mut self, session: i64, mzxid: i64) {
        let track = self.sessions.entry(session).or_default();
        track.watch_since = Some(track.watch_since.map_or(mzxid, |since| since.min(mzxid)));
    }

    /// A watch event reached `session` (through its current connection).
    pub fn watch_event(&mut self, session: i64, at: u64, event: &WatchedEvent) {
        let track = self.sessions.entry(session).or_default();
        if event.zxid >= 0 {
            if event.zxid < track.last_event_zxid {
                let last = track.last_event_zxid;
                self.violation(format!(
                    "session 0x{session:x} at {at}: event {event:?} after one at zxid {last}"
                ));
                return;
            }
            let track = self.sessions.entry(session).or_default();
            track.last_event_zxid = event.zxid;
        }
        if event.path != crate::sim::client::REGISTER {
            return;
        }
        let track = self.sessions.entry(session).or_default();
        match track.watch_since.take() {
            None => self.violation(format!(
                "session 0x{session:x} at {at}: {event:?} fired with no watch pending (twice?)"
            )),
            Some(since) if event.zxid >= 0 && event.zxid <= since => self.violation(format!(
                "session 0x{session:x} at {at}: {event:?} for a change before its watch at {since}"
            )),
            Some(_) if event.event_type != EventType::NodeDataChanged => self.violation(format!(
                "session 0x{session:x} at {at}: {event:?} on a register never deleted"
            )),
            Some(_) => {}
        }
    }

    /// A register operation began at `call`; answers its index.
    pub fn register_call(&mut self, call: u64, input: RegisterInput) -> usize {
        self.register.push(Operation {
            call,
            ret: None,
            input,
            output: RegisterOutput::Unknown,
        });
        self.register.len() - 1
    }

    /// A register operation was answered.
    pub fn register_return(&mut self, operation: usize, at: u64, output: RegisterOutput) {
        let operation = &mut self.register[operation];
        operation.ret = Some(at);
        operation.output = output;
    }

    /// A queue operation began at `call`; answers its index.
    pub fn queue_call(&mut self, call: u64, input: QueueInput) -> usize {
        self.queue.push(Operation {
            call,
            ret: None,
            input,
            output: QueueOutput::Unknown,
        });
        self.queue.len() - 1
    }

    /// A queue operation was answered.
    pub fn queue_return(&mut self, operation: usize, at: u64, output: QueueOutput) {
        if let QueueOutput::Enqueued(sequence) = output {
            if !self.sequences.insert(sequence) {
                self.violation(format!("sequence number {sequence} issued twice"));
            }
        }
        let operation = &mut self.queue[operation];
        operation.ret = Some(at);
        operation.output = output;
    }

    /// An ephemeral create was sent for `owner`.
    pub fn ephemeral_asked(&mut self, path: &str, owner: i64) {
        self.ephemerals.insert(
            path.to_string(),
            Ephemeral {
                owner,
                created: false,
                delete_asked: false,
                deleted: false,
            },
        );
    }

    /// The create was acknowledged.
    pub fn ephemeral_created(&mut self, path: &str) {
        if let Some(ephemeral) = self.ephemerals.get_mut(path) {
            ephemeral.created = true;
        }
    }

    /// A delete was sent.
    pub fn ephemeral_delete_asked(&mut self, path: &str) {
        if let Some(ephemeral) = self.ephemerals.get_mut(path) {
            ephemeral.delete_asked = true;
        }
    }

    /// The delete was acknowledged.
    pub fn ephemeral_deleted(&mut self, path: &str) {
        if let Some(ephemeral) = self.ephemerals.get_mut(path) {
            ephemeral.deleted = true;
        }
    }

    /// A session was granted.
    pub fn session_opened(&mut self, session: i64) {
        if !self.opened.insert(session) {
            self.violation(format!("session id 0x{session:x} granted twice"));
        }
    }

    /// A client's closeSession was acknowledged.
    pub fn session_closed(&mut self, session: i64) {
        self.closed.insert(session);
        self.sessions.remove(&session);
    }

    /// A client heard its session expired.
    pub fn session_expired(&mut self, session: i64, _at: u64) {
        self.expired.insert(session);
        self.sessions.remove(&session);
    }

    /// Checks the ensemble's final state: `alive` the sessions it holds, `present` the
    /// ephemerals under the ephemerals' parent with their owners.
    pub fn check_final_state(&mut self, alive: &BTreeSet<i64>, present: &BTreeMap<String, i64>) {
        for session in self.closed.iter().chain(&self.expired) {
            if alive.contains(session) {
                self.violations.push(format!(
                    "session 0x{session:x} ended (its client was told) but lives on"
                ));
            }
        }
        for (path, owner) in present {
            match self.ephemerals.get(path) {
                None => self
                    .violations
                    .push(format!("ephemeral {path} exists but was never created")),
                Some(ephemeral) if ephemeral.owner != *owner => self.violations.push(format!(
                    "ephemeral {path} owned by 0x{owner:x}, created by 0x{:x}",
                    ephemeral.owner
                )),
                Some(ephemeral) if ephemeral.deleted => self.violations.push(format!(
                    "ephemeral {path} was deleted (acknowledged) but exists"
                )),
                Some(_) if !alive.contains(owner) => self
                    .violations
                    .push(format!("ephemeral {path} outlived its session 0x{owner:x}")),
                Some(_) => {}
            }
        }
        for (path, ephemeral) in &self.ephemerals {
            let lives = alive.contains(&ephemeral.owner);
            if lives && ephemeral.created && !ephemeral.delete_asked && !present.contains_key(path)
            {
                self.violations.push(format!(
                    "ephemeral {path} (acknowledged) is gone while its session 0x{:x} lives",
                    ephemeral.owner
                ));
            }
        }
    }

    /// Every data watch still pending for a session in `connected` (sessions whose client is
    /// connected to a serving member) must be older than the register's final change: a watch
    /// set before a change it never heard of is a watch that did not fire.
    pub fn check_watches_fired(&mut self, connected: &BTreeSet<i64>, register_mzxid: i64) {
        for (session, track) in &self.sessions {
            if let Some(since) = track.watch_since {
                if connected.contains(session) && register_mzxid > since {
                    self.violations.push(format!(
                        "session 0x{session:x}: its watch set at {since} never fired for the change at {register_mzxid}"
                    ));
                }
            }
        }
    }

    /// Runs the linearizability checks; adds a finding for each history with none.
    pub fn check_linearizable(&mut self) {
        let findings = [
            linearizability_finding("register", &Register, &self.register),
            linearizability_finding("queue", &Queue, &self.queue),
        ];
        self.violations.extend(findings.into_iter().flatten());
    }
}

/// What the search found wrong with one object's history, if anything. `SIM_DUMP` prints the
/// whole history of a failing one.
fn linearizability_finding<M: Model>(
    name: &str,
    model: &M,
    history: &[Operation<M::Input, M::Output>],
) -> Option<String>
where
    M::Input: std::fmt::Debug,
    M::Output: std::fmt::Debug,
{
    match check(model, history) {
        Verdict::Linearizable => None,
        Verdict::Violation { longest } => {
            if std::env::var_os("SIM_DUMP").is_some() {
                for (index, operation) in history.iter().enumerate() {
                    eprintln!("{name} {index}: {operation:?}");
                }
                eprintln!("longest: {longest:?}");
            }
            Some(format!(
                "the {name}'s history is not linearizable; the longest order explains {} of {} operations, last {:?}",
                longest.len(),
                history.len(),
                longest.last().map(|index| &history[*index])
            ))
        }
        Verdict::GaveUp => Some(format!("the {name}'s linearizability search gave up")),
    }
}
