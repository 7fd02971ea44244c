//! Session layer: the sessions attached to this member, their identities, and where their events go.
//!
//! Identities (addAuth, a client certificate's) belong to the session's current connection, as
//! in ZooKeeper, and are per member, not replicated: a client that reconnects, here or to
//! another member, re-sends its auth, as ZooKeeper clients do.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::op::Reply;
use crate::proto::{ClientInfo, ErrorCode, Id, WatchedEvent};
use crate::server::pipeline::Pipeline;
use crate::tree::acl;

/// Where a session's watch events and state changes go.
pub trait SessionSink: Send + Sync {
    /// Takes one event. Called while engine locks are held, in the order events happened: it
    /// must not block and must not call back into the engine (queue the event instead).
    fn deliver(&self, event: WatchedEvent);

    /// The session no longer sends here: it moved to another connection (a client
    /// reconnected) or it ended. A connection should close. Called with engine locks held:
    /// must not block.
    fn detach(&self) {}

    /// The member stopped serving for now (it lost its leader, or its leader changed): the
    /// session lives on, and requests in flight were answered ConnectionLoss. A connection
    /// should close, so its client reconnects (to this member or another), as ZooKeeper's
    /// clients do when a member leaves its quorum. Must not block.
    fn disconnected(&self) {
        self.detach();
    }

    /// The member serves again after `disconnected`. Must not block.
    fn reconnected(&self) {}

    /// The member stopped serving. `session_lives_on`: the session is durable (the member
    /// keeps a data directory), so a client may resume it once a member serves again; an
    /// in-memory member's sessions end with it. Must not block.
    fn member_stopped(&self, session_lives_on: bool) {
        let _ = session_lives_on;
        self.detach();
    }
}

/// A session attached to this member.
pub struct LocalSession {
    id: i64,
    password: [u8; 16],
    timeout_ms: u32,
    identities: RwLock<Vec<Id>>,
    sink: RwLock<Arc<dyn SessionSink>>,
    closed: AtomicBool,
    /// An in-process client counts as alive while attached; a detached session lives on its
    /// last touch, like a TCP client that stopped pinging.
    attached: AtomicBool,
    last_touch_ms: AtomicU64,
    /// The session's requests not answered yet, in order.
    pub(super) pipeline: Mutex<Pipeline>,
    /// A read-only session of a member without its quorum (see read_only.rs).
    read_only: bool,
}

impl LocalSession {
    pub(crate) fn new(
        id: i64,
        password: [u8; 16],
        timeout_ms: u32,
        identities: Vec<Id>,
        sink: Arc<dyn SessionSink>,
        now_ms: u64,
    ) -> LocalSession {
        LocalSession {
            id,
            password,
            timeout_ms,
            identities: RwLock::new(identities),
            sink: RwLock::new(sink),
            closed: AtomicBool::new(false),
            attached: AtomicBool::new(true),
            last_touch_ms: AtomicU64::new(now_ms),
            pipeline: Mutex::new(Pipeline::default()),
            read_only: false,
        }
    }

    /// A read-only session: this member's alone, never replicated; it lives on its client's
    /// pings.
    pub(crate) fn new_read_only(
        id: i64,
        password: [u8; 16],
        timeout_ms: u32,
        sink: Arc<dyn SessionSink>,
        now_ms: u64,
    ) -> LocalSession {
        let session = LocalSession {
            read_only: true,
            ..LocalSession::new(id, password, timeout_ms, Vec::new(), sink, now_ms)
        };
        session.set_attached(false);
        session
    }

    /// True for a read-only session.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The session id.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The password a client shows to resume the session.
    pub fn password(&self) -> [u8; 16] {
        self.password
    }

    /// The negotiated timeout.
    pub fn timeout_ms(&self) -> u32 {
        self.timeout_ms
    }

    /// True once the session was closed or expired.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn mark_closed(&self) -> bool {
        !self.closed.swap(true, Ordering::AcqRel)
    }

    /// Stops (false) or resumes (true) counting the session as alive between requests.
    pub fn set_attached(&self, attached: bool) {
        self.attached.store(attached, Ordering::Release);
    }

    pub(crate) fn is_attached(&self) -> bool {
        self.attached.load(Ordering::Acquire)
    }

    pub(crate) fn touch(&self, now_ms: u64) {
        self.last_touch_ms.fetch_max(now_ms, Ordering::AcqRel);
    }

    pub(crate) fn last_touch_ms(&self) -> u64 {
        self.last_touch_ms.load(Ordering::Acquire)
    }

    pub(crate) fn identities(&self) -> parking_lot::RwLockReadGuard<'_, Vec<Id>> {
        self.identities.read()
    }

    /// The identities as they are now, for a write that is prepared later: a request is
    /// judged by the identities its session had when it was sent, as ZooKeeper judges it.
    pub(crate) fn identities_now(&self) -> Vec<Id> {
        self.identities.read().clone()
    }

    /// Adds an identity unless the session already has it.
    pub(crate) fn add_identity(&self, id: Id) {
        let mut identities = self.identities.write();
        if !identities.contains(&id) {
            identities.push(id);
        }
    }

    /// addAuth: adds the identities `auth` grants under `scheme` (the ip scheme vouches for
    /// the connection's own address); AuthFailed for a scheme no provider serves.
    pub(crate) fn add_auth(
        &self,
        scheme: &str,
        auth: &[u8],
        super_digest: Option<&str>,
    ) -> Result<Reply, ErrorCode> {
        let ip = self
            .identities()
            .iter()
            .find(|id| id.scheme == "ip")
            .map(|id| id.id.clone());
        let ids =
            authenticate(scheme, auth, super_digest, ip.as_deref()).ok_or(ErrorCode::AuthFailed)?;
        for id in ids {
            self.add_identity(id);
        }
        Ok(Reply::Done)
    }

    pub(crate) fn deliver(&self, event: WatchedEvent) {
        self.sink.read().deliver(event);
    }

    /// Tells the session's current sink that the session no longer sends there.
    pub(crate) fn detach_sink(&self) {
        self.sink.read().detach();
    }

    /// Tells the session's current sink that the member stopped serving for now.
    pub(crate) fn disconnected(&self) {
        self.sink.read().disconnected();
    }

    /// Tells the session's current sink that the member serves again.
    pub(crate) fn reconnected(&self) {
        self.sink.read().reconnected();
    }

    /// Tells the session's current sink that the member stopped.
    pub(crate) fn member_stopped(&self, session_lives_on: bool) {
        self.sink.read().member_stopped(session_lives_on);
    }

    /// Points the session's events at a new connection; the old one is told it was replaced.
    pub(crate) fn replace_sink(&self, sink: Arc<dyn SessionSink>) {
        let old = std::mem::replace(&mut *self.sink.write(), sink);
        old.detach();
    }

    /// Gives the session a new connection's identities: its `ip` (when it has an address) and
    /// nothing else, until the connection's certificate or addAuth adds more. ZooKeeper keeps
    /// auth info per connection (`ServerCnxn.authInfo`), so what an earlier connection of a
    /// resumed session proved (addAuth, a certificate) does not follow the session; clients
    /// re-send their auth on every new connection for that reason.
    pub(crate) fn set_connection(&self, ip: Option<&str>) {
        let mut identities = self.identities.write();
        identities.clear();
        identities.extend(ip.map(|ip| Id::new("ip", ip)));
    }

    /// Adds the identities the connection's client certificate gives: `x509`, and `super` for
    /// the configured super user (whose id is the subject, where digest's super id is empty).
    pub(crate) fn add_certificate_identities(&self, certificate: Vec<Id>) {
        for id in certificate {
            self.add_identity(id);
        }
    }

    /// whoAmI: each identity's scheme and user, as ZooKeeper's AuthUtil reports them.
    pub(crate) fn client_infos(&self) -> Vec<ClientInfo> {
        self.identities()
            .iter()
            .map(|id| ClientInfo {
                auth_scheme: id.scheme.clone(),
                user: match id.scheme.as_str() {
                    "digest" => id.id.split(':').next().unwrap_or_default().to_string(),
                    // X509AuthenticationProvider's user name is its id, the subject.
                    "ip" | "x509" => id.id.clone(),
                    _ => String::new(),
                },
            })
            .collect()
    }
}

/// A session password: 16 bytes no client can guess from the session id. Derived from a
/// per-process random key (std's hasher seeds) so apply stays deterministic: the password
/// travels inside the CreateSession Txn.
pub(super) fn session_password(session_id: i64, wall_ms: i64) -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new();
    let mut password = [0u8; 16];
    for (index, chunk) in password.chunks_mut(8).enumerate() {
        let mut hasher = random.build_hasher();
        hasher.write_i64(session_id);
        hasher.write_i64(wall_ms);
        hasher.write_usize(index);
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    password
}

/// addAuth: the identities a credential grants, or None when the scheme is unknown.
fn authenticate(
    scheme: &str,
    auth: &[u8],
    super_digest: Option<&str>,
    connection_ip: Option<&str>,
) -> Option<Vec<Id>> {
    match scheme {
        "digest" => {
            let digest = acl::digest(&String::from_utf8_lossy(auth));
            let mut ids = Vec::with_capacity(2);
            if super_digest == Some(digest.as_str()) {
                ids.push(Id::new("super", ""));
            }
            ids.push(Id::new("digest", digest));
            Some(ids)
        }
        // ZooKeeper's ip provider ignores the credential and vouches for the connection's address.
        "ip" => connection_ip.map(|ip| vec![Id::new("ip", ip)]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_differ_between_sessions() {
        assert_ne!(session_password(1, 5), session_password(2, 5));
    }

    struct NoSink;
    impl SessionSink for NoSink {
        fn deliver(&self, _event: WatchedEvent) {}
    }

    #[test]
    fn a_new_connection_keeps_none_of_the_earlier_ones_identities() {
        let session = LocalSession::new(1, [0; 16], 10_000, Vec::new(), Arc::new(NoSink), 0);
        session.set_connection(Some("10.0.0.1"));
        session.add_certificate_identities(vec![Id::new("x509", "CN=a")]);
        session.add_auth("digest", b"u:p", None).unwrap();
        assert_eq!(session.identities().len(), 3);
        // As a ZooKeeper server rebuilds auth info for each connection (ServerCnxn.authInfo).
        session.set_connection(Some("10.0.0.2"));
        assert_eq!(*session.identities(), vec![Id::new("ip", "10.0.0.2")]);
        session.set_connection(None);
        assert!(session.identities().is_empty());
    }

    #[test]
    fn digest_auth_grants_super_only_for_the_super_digest() {
        let super_digest = acl::digest("super:secret");
        let ids = authenticate("digest", b"super:secret", Some(&super_digest), None).unwrap();
        assert_eq!(
            ids,
            vec![
                Id::new("super", ""),
                Id::new("digest", super_digest.clone())
            ]
        );
        let ids = authenticate("digest", b"bob:pw", Some(&super_digest), None).unwrap();
        assert_eq!(ids, vec![Id::new("digest", acl::digest("bob:pw"))]);
        assert_eq!(
            authenticate("ip", b"", None, Some("10.0.0.1")),
            Some(vec![Id::new("ip", "10.0.0.1")])
        );
        assert_eq!(authenticate("kerberos", b"x", None, None), None);
    }
}
