//! The operator: reconfigures the simulated ensemble while the nemesis strikes, as a ZooKeeper
//! operator runs `reconfig` with the super user's digest: it removes a voter, makes one an
//! observer, and brings them back, one reconfig at a time through a session on any member.
//! Before the final checks it restores the whole membership, so every member can be compared.

use std::sync::Arc;

use crate::op::{Op, ReconfigRequest, Reply};
use crate::random::SplitMix64;
use crate::server::membership::{MemberRole, Membership};
use crate::server::LocalSession;
use crate::sim::cluster::Cluster;
use crate::sim::record::{LinkChange, Record, Recorder};

/// The operator's client number in the recorder.
pub const OPERATOR: usize = usize::MAX - 1;
/// The super user's `user:password` (its digest is in every member's configuration).
pub const SUPER_AUTH: &[u8] = b"super:sim-operator";
/// Fewest voters the operator leaves (the engine refuses fewer than two).
const VOTERS_MIN: usize = 2;
/// The request number of the operator's addAuth (its reconfigs are request 0).
const AUTH_REQUEST: u64 = 1;
/// How long the operator waits for an answer before it tries elsewhere.
const GIVE_UP_MS: u64 = 3_000;

/// The membership of a simulated ensemble of `size` members (ids 0..size): what each member's
/// "/zookeeper/config" holds at start. The addresses are names only: members talk over the
/// in-memory network.
pub fn full_membership(size: usize) -> Membership {
    let text: String = (0..size)
        .map(|id| format!("server.{id}=sim{id}:1:2:participant;3\n"))
        .collect();
    Membership::parse_dynamic(&text).expect("the simulated membership parses")
}

/// The operator's state.
pub struct Operator {
    /// When it acts next.
    pub next_ms: u64,
    /// Its session (with the super user's identity) and the member it is attached to.
    session: Option<(usize, Arc<LocalSession>)>,
    /// The member a session is being opened on, and the session until its identity is added.
    opening: (usize, Option<Arc<LocalSession>>),
    /// The connection number (a new one per session opened).
    epoch: u64,
    /// A session open or a reconfig awaits its answer.
    waiting: bool,
    /// Since when (a member that lost its quorum may never answer: the operator gives up
    /// after `GIVE_UP_MS`, as a client's connection times out).
    waiting_since_ms: u64,
    /// Set once the run ends: it only restores the whole membership.
    pub restoring: bool,
    /// Set once the whole membership was restored.
    pub restored: bool,
    full: Membership,
    /// Every reconfig asked, with its time and outcome, for the report.
    pub log: Vec<String>,
}

impl Operator {
    /// An operator for an ensemble of `size` members, acting first at `start_ms`.
    pub fn new(size: usize, start_ms: u64) -> Operator {
        Operator {
            next_ms: start_ms,
            session: None,
            opening: (0, None),
            epoch: 0,
            waiting: false,
            waiting_since_ms: 0,
            restoring: false,
            restored: false,
            full: full_membership(size),
            log: Vec::new(),
        }
    }

    /// Opens a session, or asks the next reconfig, when due.
    pub fn act(
        &mut self,
        cluster: &Cluster,
        recorder: &Arc<Recorder>,
        random: &mut SplitMix64,
        now_ms: u64,
    ) {
        if self.waiting && now_ms >= self.waiting_since_ms + GIVE_UP_MS {
            // Answers of the abandoned connection are ignored from now on.
            self.waiting = false;
            self.epoch += 1;
            self.let_go();
            if let Some(last) = self.log.last_mut() {
                last.push_str(" -> no answer");
            }
        }
        if self.waiting || now_ms < self.next_ms || (self.restored && self.restoring) {
            return;
        }
        let attached = self.session.as_ref().filter(|(member, _)| {
            cluster
                .live(*member)
                .is_some_and(|engine| engine.is_serving())
        });
        let Some((member, session)) = attached.cloned() else {
            self.open(cluster, recorder, random, now_ms);
            return;
        };
        let engine = cluster.live(member).expect("checked live");
        let current = engine.membership();
        let target = if self.restoring {
            if same_roles(&current, &self.full) {
                self.restored = true;
                self.let_go();
                return;
            }
            // One member at a time, so the voters running now are a majority of each new
            // membership (a member not in it is not replicated to, so it is not synced).
            let mut target = current.clone();
            if let Some(spec) = self
                .full
                .members
                .values()
                .find(|spec| current.members.get(&spec.id) != Some(spec))
            {
                target.members.insert(spec.id, spec.clone());
            }
            target
        } else {
            self.next_target(&current, random)
        };
        let new_members: Vec<String> = target
            .config_text()
            .lines()
            .filter(|line| line.starts_with("server."))
            .map(str::to_string)
            .collect();
        self.waiting = true;
        self.waiting_since_ms = now_ms;
        self.log.push(format!(
            "{now_ms} ms: via member {member}: voters {:?} observers {:?}",
            target.voters(),
            target.observers()
        ));
        let op = Op::Reconfig(ReconfigRequest {
            joining_servers: None,
            leaving_servers: None,
            new_members: Some(new_members.join(",")),
            config_version: -1,
        });
        engine.submit(&session, op, recorder.answer(OPERATOR, self.epoch, 0));
    }

    /// A session on a member that serves, with the super user's identity.
    fn open(
        &mut self,
        cluster: &Cluster,
        recorder: &Arc<Recorder>,
        random: &mut SplitMix64,
        now_ms: u64,
    ) {
        self.let_go();
        let size = cluster.members.len();
        let member = random.below(size as u64) as usize;
        let Some(engine) = cluster.live(member).filter(|engine| engine.is_serving()) else {
            self.next_ms = now_ms + 100;
            return;
        };
        self.epoch += 1;
        self.waiting = true;
        self.waiting_since_ms = now_ms;
        engine.open_session_then(
            6_000,
            recorder.sink(OPERATOR, self.epoch),
            None,
            recorder.opened(OPERATOR, self.epoch),
        );
        self.opening = (member, None);
    }

    /// The next change: bring back a member that is out or observing, or take a voter out or
    /// make it an observer, while at least `VOTERS_MIN` voters stay.
    fn next_target(&self, current: &Membership, random: &mut SplitMix64) -> Membership {
        let mut target = current.clone();
        let away: Vec<u8> = self
            .full
            .members
            .keys()
            .copied()
            .filter(|id| {
                current
                    .members
                    .get(id)
                    .is_none_or(|spec| spec.role == MemberRole::Observer)
            })
            .collect();
        let voters = current.voters();
        if !away.is_empty() && (voters.len() <= VOTERS_MIN || random.below(2) == 0) {
            let id = away[random.below(away.len() as u64) as usize];
            target.members.insert(id, self.full.members[&id].clone());
        } else if voters.len() > VOTERS_MIN {
            let id = voters[random.below(voters.len() as u64) as usize];
            if random.below(2) == 0 {
                target.members.remove(&id);
            } else if let Some(spec) = target.members.get_mut(&id) {
                spec.role = MemberRole::Observer;
            }
        }
        target
    }

    /// Leaves its session to expire, as a client that closed its broken connection.
    fn let_go(&mut self) {
        if let Some((_, session)) = self.session.take() {
            session.set_attached(false);
        }
    }

    /// Takes a record meant for the operator.
    pub fn on_record(
        &mut self,
        cluster: &Cluster,
        recorder: &Arc<Recorder>,
        record: Record,
        random: &mut SplitMix64,
        now_ms: u64,
    ) {
        match record {
            Record::Opened { epoch, result, .. } if epoch == self.epoch => match result {
                Ok(session) => {
                    let (member, _) = self.opening;
                    if let Some(engine) = cluster.live(member) {
                        let auth = Op::AddAuth {
                            scheme: "digest".into(),
                            auth: SUPER_AUTH.to_vec(),
                        };
                        engine.submit(
                            &session,
                            auth,
                            recorder.answer(OPERATOR, epoch, AUTH_REQUEST),
                        );
                        self.opening.1 = Some(session);
                    } else {
                        self.waiting = false;
                    }
                }
                Err(_) => {
                    self.waiting = false;
                    self.next_ms = now_ms + 100;
                }
            },
            Record::Answered {
                epoch,
                request: AUTH_REQUEST,
                response,
                ..
            } if epoch == self.epoch => {
                self.waiting = false;
                let session = self.opening.1.take();
                if let (Ok(_), Some(session)) = (response.result, session) {
                    self.session = Some((self.opening.0, session));
                }
            }
            Record::Answered {
                epoch, response, ..
            } if epoch == self.epoch => {
                self.waiting = false;
                let outcome = match &response.result {
                    Ok(Reply::Data { data, .. }) => {
                        format!(
                            "ok: {}",
                            String::from_utf8_lossy(data.as_deref().unwrap_or_default())
                                .replace('\n', " ")
                        )
                    }
                    Ok(other) => format!("unexpected answer {other:?}"),
                    Err(code) => format!("{code:?}"),
                };
                if let Some(last) = self.log.last_mut() {
                    last.push_str(&format!(" -> {outcome}"));
                }
                if response.result.is_err() {
                    self.let_go();
                }
                self.next_ms = now_ms
                    + if self.restoring {
                        50
                    } else {
                        300 + random.below(1_500)
                    };
            }
            Record::Link {
                epoch,
                change: LinkChange::Disconnected,
                ..
            } if epoch == self.epoch => self.let_go(),
            _ => {}
        }
    }
}

/// True when `a` and `b` have the same members in the same roles.
pub fn same_roles(a: &Membership, b: &Membership) -> bool {
    a.voters() == b.voters() && a.observers() == b.observers()
}

impl super::Sim {
    /// With the faults undone, the operator brings every member back as a voter; then every
    /// member must run with that membership, in its tree and in raft.
    pub(super) fn restore_membership(&mut self) {
        let now_ms = self.now_ms();
        let Some(operator) = &mut self.operator else {
            return;
        };
        operator.restoring = true;
        operator.next_ms = now_ms;
        let restored = self.run_until(60_000, |sim| {
            sim.operator
                .as_ref()
                .is_some_and(|operator| operator.restored)
                .then_some(())
        });
        if let Err(problem) = restored {
            let log = self.operator.as_ref().map(|operator| operator.log.clone());
            self.history.violation(format!(
                "the whole membership was not restored: {problem}; {log:?}"
            ));
            return;
        }
        let full = full_membership(self.cluster.members.len());
        let agreed = self.run_until(30_000, |sim| {
            (0..sim.cluster.members.len())
                .all(|member| {
                    sim.cluster.live(member).is_some_and(|engine| {
                        same_roles(&engine.membership(), &full)
                            && engine.replication_status().is_some_and(|status| {
                                !status.leading || status.voters == full.members.len()
                            })
                    })
                })
                .then_some(())
        });
        if let Err(problem) = agreed {
            self.history.violation(format!(
                "members disagree on the restored membership: {problem}"
            ));
        }
    }
}
