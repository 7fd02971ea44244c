//! Read-only mode (`readonlymode.enabled`): a member cut off from its quorum for a while
//! serves reads to clients that asked for a read-only session, refuses their writes and syncs
//! with NotReadOnly, and refuses everyone else, as ZooKeeper's `ReadOnlyZooKeeperServer`
//! does. Read-only sessions are this member's alone (nothing replicates while there is no
//! quorum): they end when the member serves its ensemble again, and their clients, which
//! look for a read-write member meanwhile, start sessions there.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::engine::Engine;
use super::pipeline::Answer;
use super::session_layer::{session_password, LocalSession, SessionSink};
use crate::op::{Op, OpKind, Reply};
use crate::proto::{ErrorCode, KeeperState, WatchedEvent};
use crate::session::negotiate_timeout;

/// How long a member waits without a quorum before it serves read-only clients, at least
/// (ZooKeeper waits max(2 s, tickTime)): an election is over long before.
const READ_ONLY_AFTER_MS_MIN: u64 = 2_000;

/// The bit read-only session ids carry above the creating entry's index, so they never
/// collide with replicated sessions (`member << 56 | index`).
const READ_ONLY_SESSION_BIT: i64 = 1 << 55;

/// This member's read-only sessions.
#[derive(Default)]
pub(super) struct ReadOnlySessions {
    sessions: HashMap<i64, Arc<LocalSession>>,
    next: i64,
}

impl Engine {
    /// True while the member serves read-only clients only: it is in an ensemble, read-only
    /// mode is enabled, and it has known no leader for a while.
    pub fn is_read_only(&self) -> bool {
        let config = self.config();
        if !config.read_only_enabled || !config.is_ensemble() || self.is_stopped() {
            return false;
        }
        let since = self.not_serving_since_ms.load(Ordering::Acquire);
        if since == u64::MAX || self.is_serving() {
            return false;
        }
        let wait_ms = READ_ONLY_AFTER_MS_MIN.max(u64::from(config.tick_ms));
        self.clock.now_ms().saturating_sub(since) >= wait_ms
    }

    /// Opens a read-only session (the client asked for one and the member is read-only), or
    /// resumes one of this member's; anything else is expired here.
    pub fn open_read_only_session(
        &self,
        session_id: i64,
        password: &[u8],
        requested_timeout_ms: i64,
        sink: Arc<dyn SessionSink>,
        ip: Option<&str>,
    ) -> Result<Arc<LocalSession>, ErrorCode> {
        if !self.is_read_only() {
            return Err(ErrorCode::ConnectionLoss);
        }
        let mut read_only = self.read_only.lock();
        if session_id != 0 {
            let session = read_only
                .sessions
                .get(&session_id)
                .filter(|session| session.password()[..] == *password && !session.is_closed())
                .cloned()
                .ok_or(ErrorCode::SessionExpired)?;
            session.touch(self.clock.now_ms());
            session.set_connection(ip);
            session.replace_sink(sink);
            return Ok(session);
        }
        if read_only.sessions.len() >= self.config().sessions_max {
            return Err(ErrorCode::QuotaExceeded);
        }
        read_only.next += 1;
        let member = i64::from(self.config().member_id) << 56;
        let session_id = member | READ_ONLY_SESSION_BIT | read_only.next;
        let timeout_ms = negotiate_timeout(
            requested_timeout_ms,
            self.config().session_timeout_ms_min(),
            self.config().session_timeout_ms_max(),
        );
        let session = Arc::new(LocalSession::new_read_only(
            session_id,
            session_password(read_only.next, self.clock.wall_ms()),
            timeout_ms,
            sink,
            self.clock.now_ms(),
        ));
        session.set_connection(ip);
        read_only.sessions.insert(session_id, session.clone());
        tracing::info!(
            session_id = format_args!("0x{session_id:x}"),
            "read-only session opened"
        );
        Ok(session)
    }

    /// A request of a read-only session: reads run against this member's tree; writes and
    /// syncs answer NotReadOnly; closeSession ends the session here.
    pub(super) fn submit_read_only(
        &self,
        session: &Arc<LocalSession>,
        op: Op,
        mut answer: Box<dyn Answer>,
    ) {
        if !self.is_read_only() || session.is_closed() {
            answer.respond(self.response(Err(ErrorCode::ConnectionLoss)));
            return;
        }
        session.touch(self.clock.now_ms());
        let result = match op.kind() {
            OpKind::AtOnce => match op {
                Op::AddAuth { scheme, auth } => {
                    session.add_auth(&scheme, &auth, self.config.super_digest.as_deref())
                }
                other => unreachable!("{other:?} is not an addAuth"),
            },
            OpKind::InTurn => {
                let mut on_watch = |path: &str, kind| answer.watch_registered(path, kind);
                let response = self.run_in_turn(session, op, &mut on_watch);
                answer.respond(response);
                return;
            }
            OpKind::Write if op == Op::CloseSession => {
                self.end_read_only_session(session.id(), false);
                Ok(Reply::Done)
            }
            OpKind::Write | OpKind::Sync => Err(ErrorCode::NotReadOnly),
        };
        answer.respond(self.response(result));
    }

    /// Ends one read-only session: its watches go, and unless its client closed it, the
    /// client hears it expired and its connection closes.
    fn end_read_only_session(&self, session_id: i64, expired: bool) {
        let Some(session) = self.read_only.lock().sessions.remove(&session_id) else {
            return;
        };
        self.watches.lock().remove_session(session_id);
        session.mark_closed();
        if expired {
            session.deliver(WatchedEvent::state(KeeperState::Expired));
            session.detach_sink();
        }
    }

    /// The member serves its ensemble again: every read-only session ends, so its client
    /// moves to a read-write session (ZooKeeper's read-only server shuts down).
    pub(super) fn end_read_only_sessions(&self) {
        let ids: Vec<i64> = self.read_only.lock().sessions.keys().copied().collect();
        for session_id in ids {
            self.end_read_only_session(session_id, true);
        }
    }

    /// Read-only sessions whose client has been silent for their timeout expire.
    pub(super) fn expire_read_only_sessions(&self) {
        let now_ms = self.clock.now_ms();
        let expired: Vec<i64> = self
            .read_only
            .lock()
            .sessions
            .values()
            .filter(|session| {
                now_ms.saturating_sub(session.last_touch_ms()) > u64::from(session.timeout_ms())
            })
            .map(|session| session.id())
            .collect();
        for session_id in expired {
            self.end_read_only_session(session_id, true);
        }
    }
}
