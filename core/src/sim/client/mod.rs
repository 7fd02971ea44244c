//! The simulation's clients: each keeps one session, moves it to another member when its link
//! breaks (resuming with id and password, then re-registering its watch with setWatches, as
//! ZooKeeper's clients do), and runs a workload on the register, the queue and ephemerals,
//! telling the history what it asked and what it heard.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::op::{CreateRequest, Op, Reply, SetWatchesRequest};
use crate::proto::{Acl, CreateMode, ErrorCode, EventType, KeeperState};
use crate::random::SplitMix64;
use crate::server::LocalSession;
use crate::sim::checks::History;
use crate::sim::cluster::Cluster;
use crate::sim::models::{QueueInput, QueueOutput, RegisterInput, RegisterOutput};
use crate::sim::record::{LinkChange, Record, Recorder};

mod answers;

/// The register's znode.
pub const REGISTER: &str = "/register";
/// The queue's parent znode.
pub const QUEUE: &str = "/queue";
/// Where ephemerals go.
pub const EPHEMERALS: &str = "/ephemerals";
/// Requests a client keeps in flight at most.
const IN_FLIGHT_MAX: usize = 2;
/// The session timeout clients ask for.
pub const SESSION_TIMEOUT_MS: i64 = 3_000;

/// What the simulation lends a client for one step.
pub struct Context<'a> {
    /// The members.
    pub cluster: &'a Cluster,
    /// Where answers and events are recorded.
    pub recorder: &'a Arc<Recorder>,
    /// What was asked and heard, and the checks run on it.
    pub history: &'a mut History,
    /// The simulation's randomness.
    pub random: &'a mut SplitMix64,
    /// The simulation's time.
    pub now_ms: u64,
}

/// A client's link to a member.
#[derive(Clone)]
enum Link {
    /// No session attached anywhere (a session to resume may be remembered).
    Down,
    /// An open or resume asked of `member`.
    Connecting { member: usize },
    /// Resumed on `member`; its watches are being re-registered.
    Rewatching {
        member: usize,
        session: Arc<LocalSession>,
    },
    /// Ready for requests.
    Up {
        member: usize,
        session: Arc<LocalSession>,
    },
}

/// What a request in flight was.
#[derive(Clone, Copy, Debug)]
enum Pending {
    /// The sync before a linearizable read or list of operation `paired` (register or
    /// queue history): if it fails, the read after it is no longer linearizable.
    Sync {
        paired: Paired,
    },
    /// getData on the register; `operation` is its index in the register history when it is
    /// a linearizable read.
    RegisterRead {
        operation: Option<usize>,
        watch: bool,
    },
    RegisterWrite {
        operation: usize,
    },
    Enqueue {
        operation: usize,
    },
    Remove {
        operation: usize,
    },
    List {
        operation: usize,
    },
    CreateEphemeral {
        path_number: u64,
    },
    DeleteEphemeral {
        path_number: u64,
    },
    Close,
    SetWatches,
}

/// The history operation a sync stands for.
#[derive(Clone, Copy, Debug)]
enum Paired {
    Register(usize),
    Queue(usize),
}

/// One simulated client.
pub struct SimClient {
    id: usize,
    link: Link,
    /// Its connection: a new one at each open or resume.
    epoch: u64,
    /// The session to resume, and its password.
    session: Option<(i64, [u8; 16])>,
    /// The newest zxid it heard, which a member must have applied to take its session.
    last_zxid_seen: i64,
    pending: BTreeMap<u64, (u64, Pending)>,
    next_request: u64,
    /// The register's version as last seen (for the next compare-and-set).
    known_version: Option<i32>,
    /// A queue item seen in a listing (to remove next).
    queue_head: Option<u32>,
    /// It holds a data watch on the register (re-registered after each move).
    watching: bool,
    /// Its ephemerals, by number: created (acknowledged).
    ephemerals: Vec<u64>,
    next_ephemeral: u64,
    writes: u64,
    /// When it acts next.
    pub next_action_ms: u64,
    /// While set, it stays silent (a hung client) until then.
    silent_until_ms: Option<u64>,
    /// Set once the run ends for it: it does nothing more.
    pub finished: bool,
    /// Linearizable reads whose sync failed: their answers do not count.
    voided: std::collections::BTreeSet<(bool, usize)>,
}

impl SimClient {
    /// Client number `id`, down, acting from `start_ms`.
    pub fn new(id: usize, start_ms: u64) -> SimClient {
        SimClient {
            id,
            link: Link::Down,
            epoch: 0,
            session: None,
            last_zxid_seen: 0,
            pending: BTreeMap::new(),
            next_request: 0,
            known_version: None,
            queue_head: None,
            watching: false,
            ephemerals: Vec::new(),
            next_ephemeral: 0,
            writes: 0,
            next_action_ms: start_ms,
            silent_until_ms: None,
            finished: false,
            voided: std::collections::BTreeSet::new(),
        }
    }

    /// The member it is attached to, if any.
    pub fn member(&self) -> Option<usize> {
        match &self.link {
            Link::Connecting { member }
            | Link::Rewatching { member, .. }
            | Link::Up { member, .. } => Some(*member),
            Link::Down => None,
        }
    }

    /// Its member went away (killed or paused): it notices and will move.
    pub fn lose_link(&mut self) {
        self.go_down();
    }

    /// Leaves its connection, as a client closes a broken one: the session stops counting as
    /// alive there.
    fn go_down(&mut self) {
        if let Link::Up { session, .. } | Link::Rewatching { session, .. } = &self.link {
            session.set_attached(false);
        }
        self.link = Link::Down;
    }

    /// Stops acting; its session is left to expire (`attached` false) or kept alive.
    pub fn finish(&mut self, keep_alive: bool) {
        self.finished = true;
        if let Link::Up { session, .. } | Link::Rewatching { session, .. } = &self.link {
            session.set_attached(keep_alive);
        }
    }

    /// The session it holds, when it is connected to a member and ready.
    pub fn connected_session(&self) -> Option<i64> {
        match &self.link {
            Link::Up { session, .. } => Some(session.id()),
            _ => None,
        }
    }

    /// The session it holds now.
    pub fn session_id(&self) -> Option<i64> {
        self.session.map(|(id, _)| id)
    }

    /// Takes one step of its workload if it is due.
    pub fn act(&mut self, context: &mut Context<'_>) {
        if self.finished || context.now_ms < self.next_action_ms {
            return;
        }
        self.next_action_ms = context.now_ms + 1 + context.random.below(40);
        if let Some(until) = self.silent_until_ms {
            if context.now_ms < until {
                return;
            }
            self.silent_until_ms = None;
            if let Link::Up { session, .. } = &self.link {
                session.set_attached(true);
            }
        }
        match self.link.clone() {
            Link::Down => self.connect(context),
            Link::Connecting { member } | Link::Rewatching { member, .. } => {
                if context.cluster.live(member).is_none() {
                    self.go_down();
                }
            }
            Link::Up { member, session } => {
                if context.cluster.live(member).is_none() {
                    self.go_down();
                } else if self.in_flight() < IN_FLIGHT_MAX {
                    self.request(context, member, &session);
                }
            }
        }
    }

    fn in_flight(&self) -> usize {
        self.pending
            .values()
            .filter(|(epoch, _)| *epoch == self.epoch)
            .count()
    }

    /// Asks a running member that has seen everything this client has for its session (a
    /// new one, or the one it holds).
    fn connect(&mut self, context: &mut Context<'_>) {
        let count = context.cluster.members.len();
        let start = context.random.below(count as u64) as usize;
        let Some(member) = (0..count)
            .map(|offset| (start + offset) % count)
            .find(|&member| {
                context.cluster.live(member).is_some_and(|engine| {
                    engine.is_serving() && engine.last_zxid() >= self.last_zxid_seen
                })
            })
        else {
            return;
        };
        let engine = context.cluster.live(member).expect("found running");
        self.epoch += 1;
        if crate::sim::tracing_enabled() {
            eprintln!(
                "client {}/{} connects to member {member} (session {:x?}, seen zxid {})",
                self.id,
                self.epoch,
                self.session_id(),
                self.last_zxid_seen
            );
        }
        self.link = Link::Connecting { member };
        let sink = context.recorder.sink(self.id, self.epoch);
        let done = context.recorder.opened(self.id, self.epoch);
        match self.session {
            Some((session_id, password)) => {
                engine.resume_session_then(session_id, &password, sink, None, done)
            }
            None => engine.open_session_then(SESSION_TIMEOUT_MS, sink, None, done),
        }
    }

    fn submit(
        &mut self,
        context: &mut Context<'_>,
        member: usize,
        session: &Arc<LocalSession>,
        op: Op,
        pending: Pending,
    ) {
        let request = self.next_request;
        self.next_request += 1;
        self.pending.insert(request, (self.epoch, pending));
        if crate::sim::tracing_enabled() {
            eprintln!(
                "client {}/{} request {request} to member {member} session 0x{:x}: {op:?}",
                self.id,
                self.epoch,
                session.id()
            );
        }
        let answer = context.recorder.answer(self.id, self.epoch, request);
        let engine = context
            .cluster
            .live(member)
            .expect("submitting to a running member");
        engine.submit(session, op, answer);
    }

    /// One request of the workload.
    fn request(&mut self, context: &mut Context<'_>, member: usize, session: &Arc<LocalSession>) {
        let open = Acl::open_unsafe();
        let choice = context.random.below(100);
        let now = context.recorder.tick();
        match choice {
            0..=24 if self.known_version.is_some() => {
                self.writes += 1;
                let value = ((self.id as u64) << 32) | self.writes;
                let expected_version = self.known_version.unwrap_or(-1);
                let operation = context.history.register_call(
                    now,
                    RegisterInput::Write {
                        expected_version,
                        value,
                    },
                );
                let op = Op::SetData {
                    path: REGISTER.into(),
                    data: Some(value.to_string().into_bytes()),
                    version: expected_version,
                };
                self.submit(
                    context,
                    member,
                    session,
                    op,
                    Pending::RegisterWrite { operation },
                );
            }
            0..=39 => {
                let watch = context.random.below(2) == 0;
                let operation = context.history.register_call(now, RegisterInput::Read);
                let paired = Paired::Register(operation);
                self.submit(
                    context,
                    member,
                    session,
                    sync(REGISTER),
                    Pending::Sync { paired },
                );
                let op = Op::GetData {
                    path: REGISTER.into(),
                    watch,
                };
                let operation = Some(operation);
                self.submit(
                    context,
                    member,
                    session,
                    op,
                    Pending::RegisterRead { operation, watch },
                );
            }
            40..=49 => {
                let watch = context.random.below(2) == 0;
                let op = Op::GetData {
                    path: REGISTER.into(),
                    watch,
                };
                let pending = Pending::RegisterRead {
                    operation: None,
                    watch,
                };
                self.submit(context, member, session, op, pending);
            }
            50..=62 => {
                let operation = context.history.queue_call(now, QueueInput::Enqueue);
                let op = Op::Create(CreateRequest {
                    path: format!("{QUEUE}/item-"),
                    data: Some(Vec::new()),
                    acl: open,
                    mode: CreateMode::PersistentSequential,
                    ttl_ms: -1,
                });
                self.submit(context, member, session, op, Pending::Enqueue { operation });
            }
            63..=77 if self.queue_head.is_some() && choice >= 70 => {
                let sequence = self.queue_head.take().expect("checked");
                let operation = context
                    .history
                    .queue_call(now, QueueInput::Remove(sequence));
                let op = Op::Delete {
                    path: format!("{QUEUE}/item-{sequence:010}"),
                    version: -1,
                };
                self.submit(context, member, session, op, Pending::Remove { operation });
            }
            63..=77 => {
                let operation = context.history.queue_call(now, QueueInput::List);
                let paired = Paired::Queue(operation);
                self.submit(
                    context,
                    member,
                    session,
                    sync(QUEUE),
                    Pending::Sync { paired },
                );
                let op = Op::GetChildren {
                    path: QUEUE.into(),
                    watch: false,
                };
                self.submit(context, member, session, op, Pending::List { operation });
            }
            78..=85 => {
                let path_number = self.next_ephemeral;
                self.next_ephemeral += 1;
                let op = Op::Create(CreateRequest {
                    path: self.ephemeral_path(path_number),
                    data: Some(Vec::new()),
                    acl: open,
                    mode: CreateMode::Ephemeral,
                    ttl_ms: -1,
                });
                context
                    .history
                    .ephemeral_asked(&self.ephemeral_path(path_number), session.id());
                self.submit(
                    context,
                    member,
                    session,
                    op,
                    Pending::CreateEphemeral { path_number },
                );
            }
            86..=89 if !self.ephemerals.is_empty() => {
                let path_number = self.ephemerals.remove(0);
                let op = Op::Delete {
                    path: self.ephemeral_path(path_number),
                    version: -1,
                };
                context
                    .history
                    .ephemeral_delete_asked(&self.ephemeral_path(path_number));
                self.submit(
                    context,
                    member,
                    session,
                    op,
                    Pending::DeleteEphemeral { path_number },
                );
            }
            90 | 91 if self.in_flight() == 0 => {
                self.submit(context, member, session, Op::CloseSession, Pending::Close);
            }
            92 | 93 => {
                // Hangs for a while: its session lives on its last touch, and may expire.
                session.set_attached(false);
                self.silent_until_ms = Some(context.now_ms + 500 + context.random.below(6_000));
            }
            _ => {}
        }
    }

    fn ephemeral_path(&self, number: u64) -> String {
        format!("{EPHEMERALS}/c{}-{number}", self.id)
    }

    /// Takes what happened to this client.
    pub fn on_record(&mut self, context: &mut Context<'_>, at: u64, record: Record) {
        match record {
            Record::Opened { epoch, result, .. } => self.opened(context, at, epoch, result),
            Record::Answered {
                epoch,
                request,
                response,
                ..
            } => self.answered(context, at, epoch, request, response),
            Record::Event { epoch, event, .. } => {
                if epoch != self.epoch {
                    return; // an old connection's: a real client closed it
                }
                let Some(session_id) = self.session_id() else {
                    return;
                };
                if event.event_type == EventType::None && event.state == KeeperState::Expired {
                    context.history.session_expired(session_id, at);
                    self.session_ended();
                } else if event.event_type != EventType::None {
                    if event.path == REGISTER {
                        self.watching = false;
                    }
                    context.history.watch_event(session_id, at, &event);
                }
            }
            Record::Link { epoch, change, .. } => {
                if epoch == self.epoch
                    && matches!(
                        change,
                        LinkChange::Disconnected | LinkChange::Detached | LinkChange::Stopped
                    )
                {
                    self.go_down();
                }
            }
        }
    }

    fn session_ended(&mut self) {
        self.session = None;
        self.go_down();
        self.watching = false;
        self.known_version = None;
        self.ephemerals.clear();
    }

    fn opened(
        &mut self,
        context: &mut Context<'_>,
        at: u64,
        epoch: u64,
        result: Result<Arc<LocalSession>, crate::proto::ErrorCode>,
    ) {
        if epoch != self.epoch {
            // A connection given up on: the session granted there goes unattended and expires.
            if let Ok(session) = result {
                session.set_attached(false);
            }
            return;
        }
        let Link::Connecting { member } = self.link.clone() else {
            if let Ok(session) = result {
                session.set_attached(false);
            }
            return;
        };
        match result {
            Ok(session) => {
                session.set_attached(self.silent_until_ms.is_none() && !self.finished);
                let resumed = self.session.is_some();
                self.session = Some((session.id(), session.password()));
                if !resumed {
                    context.history.session_opened(session.id());
                    self.link = Link::Up { member, session };
                    return;
                }
                self.link = Link::Rewatching {
                    member,
                    session: session.clone(),
                };
                let data = if self.watching {
                    vec![REGISTER.to_string()]
                } else {
                    Vec::new()
                };
                let op = Op::SetWatches(SetWatchesRequest {
                    relative_zxid: self.last_zxid_seen,
                    data,
                    exist: Vec::new(),
                    child: Vec::new(),
                    persistent: Vec::new(),
                    persistent_recursive: Vec::new(),
                });
                self.submit(context, member, &session, op, Pending::SetWatches);
            }
            Err(ErrorCode::SessionExpired) => {
                if let Some(session_id) = self.session_id() {
                    context.history.session_expired(session_id, at);
                }
                self.session_ended();
            }
            Err(_) => self.go_down(),
        }
    }
}

fn sync(path: &str) -> Op {
    Op::Sync { path: path.into() }
}
