//! A member's client sessions as the driver serves them: a new session is created through
//! the leader (the CreateSession Txn), a reconnecting client resumes its session once this
//! member has caught up with the leader (ReadIndex), and sync answers once this member applied
//! everything committed when it was asked (ReadIndex again).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use raft::{ReadState, StateRole};

use crate::proto::ErrorCode;
use crate::replication::ForwardedRequest;
use crate::server::apply::Waiter;
use crate::server::driver::{Driver, Reached, SessionDone};
use crate::server::engine::Engine;
use crate::server::session_layer::{session_password, LocalSession, SessionSink};
use crate::session::negotiate_timeout;

/// A client asking for a new session.
pub(super) struct OpenSession {
    pub(super) requested_timeout_ms: i64,
    pub(super) sink: Arc<dyn SessionSink>,
    pub(super) ip: Option<String>,
    pub(super) done: SessionDone,
}

/// A client reconnecting with a session's id and password.
pub(super) struct ResumeSession {
    pub(super) session_id: i64,
    pub(super) password: Vec<u8>,
    pub(super) sink: Arc<dyn SessionSink>,
    pub(super) ip: Option<String>,
    pub(super) done: SessionDone,
}

/// A sync waiting for raft's read index.
pub(super) struct PendingSync {
    pub(super) waiter: Waiter,
    /// The raft tick it was (last) asked at, to ask again if the answer was lost.
    pub(super) asked_at_tick: u64,
}

impl Driver {
    /// sync: asks raft for the leader's commit index (ReadIndex); answered once applied here.
    pub(super) fn sync(
        &mut self,
        engine: &Engine,
        session: Arc<LocalSession>,
        seq: u64,
        path: String,
    ) {
        if let Err(waiter) = self.ask_read_index(Waiter::Sync { session, seq, path }) {
            waiter.fail(engine, ErrorCode::ConnectionLoss);
        }
    }

    /// Asks raft for the leader's commit index on `waiter`'s behalf; gives the waiter back
    /// when no leader is known (or the member stopped).
    pub(super) fn ask_read_index(&mut self, waiter: Waiter) -> Result<(), Waiter> {
        let Some(replica) = self.replica.as_mut().filter(|_| self.role.leader != 0) else {
            return Err(waiter);
        };
        let request = self.next_request;
        self.next_request += 1;
        replica.read_index(request.to_le_bytes().to_vec());
        let asked_at_tick = self.raft_ticks;
        self.syncs.insert(
            request,
            PendingSync {
                waiter,
                asked_at_tick,
            },
        );
        Ok(())
    }

    /// raft answered a read index: the sync (or resume) goes on once this member applied
    /// through it.
    pub(super) fn read_state(&mut self, engine: &Engine, read_state: ReadState) {
        let Ok(request) = <[u8; 8]>::try_from(read_state.request_ctx.as_slice()) else {
            return;
        };
        let Some(sync) = self.syncs.remove(&u64::from_le_bytes(request)) else {
            return; // answered already (it was asked again)
        };
        let waiter = sync.waiter;
        self.defer(
            engine,
            read_state.index,
            Box::new(move |engine, reached| match reached {
                Reached::Applied => waiter.caught_up(engine),
                Reached::Abandoned => waiter.fail(engine, ErrorCode::ConnectionLoss),
            }),
        );
    }

    pub(super) fn open(&mut self, engine: &Engine, open: OpenSession) {
        if engine.failed.load(Ordering::Acquire) || self.replica.is_none() {
            return (open.done)(Err(ErrorCode::SystemError));
        }
        if engine.sessions.read().len() >= engine.config.sessions_max {
            return (open.done)(Err(ErrorCode::QuotaExceeded));
        }
        let timeout_ms = negotiate_timeout(
            open.requested_timeout_ms,
            engine.config.session_timeout_ms_min(),
            engine.config.session_timeout_ms_max(),
        );
        let password = session_password(self.next_request as i64, engine.clock.wall_ms());
        let origin = self.wait_for(Waiter::Open(open));
        self.route(
            engine,
            origin,
            0,
            Vec::new(),
            ForwardedRequest::OpenSession {
                timeout_ms,
                password,
            },
        );
    }

    /// A client reconnecting with its session's id and password. The leader decides from
    /// its tracker (it decides expiry, so a session cannot end between this check and the
    /// move, and the new connection hears of any end). A follower first catches up with the
    /// leader's commit index (ReadIndex): its tree then holds every session created before the
    /// client asked, and none that ended.
    pub(super) fn resume(&mut self, engine: &Engine, resume: ResumeSession) {
        if self.role.state == StateRole::Leader {
            let session_id = resume.session_id;
            let alive = self.lead.ready && self.tracker.is_active(session_id);
            let result = attach_resumed(engine, &resume, alive);
            let result = result.map_err(|code| {
                if self.lead.ready {
                    code
                } else {
                    ErrorCode::ConnectionLoss
                }
            });
            if result.is_ok() {
                self.tracker.touch(session_id, engine.clock.now_ms());
                self.tracker.set_owner(session_id, self.me);
            }
            return (resume.done)(result);
        }
        let session_id = resume.session_id;
        match self.ask_read_index(Waiter::Resume(resume)) {
            // The leader learns of the move ahead of any write on the new connection: both
            // travel in this member's forward stream, in order.
            Ok(()) => {
                let origin = self.origin(0);
                self.route(
                    engine,
                    origin,
                    session_id,
                    Vec::new(),
                    ForwardedRequest::Attach,
                );
            }
            Err(waiter) => waiter.fail(engine, ErrorCode::ConnectionLoss),
        }
    }
}

/// Attaches a resumed session here (unless it is not `alive` or the password is wrong:
/// SessionExpired, as ZooKeeper answers both), its events going to the new connection.
pub(super) fn attach_resumed(
    engine: &Engine,
    resume: &ResumeSession,
    alive: bool,
) -> Result<Arc<LocalSession>, ErrorCode> {
    let session_id = resume.session_id;
    let known = engine.sessions.read().get(&session_id).cloned();
    let (session, attached_here) = match known {
        Some(session) => (session, false),
        // A session created elsewhere, or recovered at start-up: attach it here.
        None => {
            let record = engine.tree.read().session(session_id).cloned();
            let record = record.filter(|record| alive && record.password[..] == resume.password);
            let record = record.ok_or(ErrorCode::SessionExpired)?;
            let session = Arc::new(LocalSession::new(
                session_id,
                record.password,
                record.timeout_ms,
                Vec::new(),
                resume.sink.clone(),
                engine.clock.now_ms(),
            ));
            session.set_attached(false);
            engine.sessions.write().insert(session_id, session.clone());
            (session, true)
        }
    };
    if !alive || session.is_closed() || session.password()[..] != resume.password {
        return Err(ErrorCode::SessionExpired);
    }
    session.touch(engine.clock.now_ms());
    session.set_connection(resume.ip.as_deref());
    if !attached_here {
        // A new connection: the old one's watches end with it, as a ZooKeeper server's die
        // with the connection they were left on, and so do its requests not run yet
        // (answered ConnectionLoss, which no one reads; writes already at the driver still
        // apply). The client sends setWatches for the watches it knows; one left by a read of
        // the old connection whose answer it never heard would fire on the new one, unasked.
        let old_requests = session.pipeline.lock().drain();
        for answer in old_requests {
            answer.respond(engine.response(Err(ErrorCode::ConnectionLoss)));
        }
        engine.watches.lock().remove_session(session_id);
        session.replace_sink(resume.sink.clone());
    }
    Ok(session)
}
