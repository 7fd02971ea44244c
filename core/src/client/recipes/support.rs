//! What every recipe shares: the session a recipe works through, its error, retries on
//! connection loss bounded by the caller's deadline, wake-ups and sequential-node names.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Condvar, Mutex};

use crate::client::{Client, Error};
use crate::proto::{Acl, CreateMode, ErrorCode};

/// A connection-loss retry waits at most this long in total, then lets the error through: the
/// client itself already waits up to the session timeout for a server before answering
/// ConnectionLoss, so more patience here only hides a dead ensemble.
pub(crate) const RETRY_TOTAL_MS_MAX: u64 = 10_000;
const RETRY_SLEEP_MS_MIN: u64 = 50;
const RETRY_SLEEP_MS_MAX: u64 = 1_000;

/// Why a recipe call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecipeError {
    /// A ZooKeeper operation failed (session expired, no auth, ...).
    ZooKeeper(Error),
    /// The wait for a lock, lease or leadership ran past its timeout (kazoo's LockTimeout).
    Timeout,
    /// `cancel()` stopped the wait (kazoo's CancelledError).
    Cancelled,
    /// The recipe's session slot holds no client (closed, or between sessions).
    NoSession,
    /// A semaphore's znode stores a different lease count than this user asked for.
    LeaseMismatch {
        /// The count stored in the semaphore's znode.
        stored: u32,
        /// The count this user passed.
        expected: u32,
    },
    /// The call does not fit the recipe's state (starting a latch twice).
    InvalidState(&'static str),
}

impl RecipeError {
    /// The ZooKeeper code behind a ZooKeeper failure, for bindings that map errors to codes.
    pub fn zookeeper_code(&self) -> Option<ErrorCode> {
        match self {
            RecipeError::ZooKeeper(error) => Some(error.code()),
            _ => None,
        }
    }

    /// True when no retry on this session can help: the session ended or there is none.
    pub(crate) fn session_is_gone(&self) -> bool {
        match self {
            RecipeError::NoSession => true,
            RecipeError::ZooKeeper(error) => error.code() == ErrorCode::SessionExpired,
            _ => false,
        }
    }
}

impl From<Error> for RecipeError {
    fn from(error: Error) -> RecipeError {
        RecipeError::ZooKeeper(error)
    }
}

impl fmt::Display for RecipeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecipeError::ZooKeeper(error) => write!(f, "{error}"),
            RecipeError::Timeout => f.write_str("the wait timed out"),
            RecipeError::Cancelled => f.write_str("the wait was cancelled"),
            RecipeError::NoSession => f.write_str("the client is closed"),
            RecipeError::LeaseMismatch { stored, expected } => write!(
                f,
                "inconsistent max leases: {stored} stored, {expected} expected"
            ),
            RecipeError::InvalidState(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for RecipeError {}

/// A recipe call's result.
pub type RecipeResult<T> = std::result::Result<T, RecipeError>;

type Subscriber = Arc<dyn Fn() + Send + Sync>;

struct SlotInner {
    current: Mutex<Option<Arc<Client>>>,
    subscribers: Mutex<Vec<(u64, Subscriber)>>,
    next_subscriber: AtomicU64,
}

/// The session a recipe works through. A Rust or C program hands its recipes one client for
/// good (`SessionSlot::fixed`); a binding whose client opens a new session after the old one
/// expired (Python's `start()`) puts each new client in the slot, and a leader latch rejoins
/// through it, as Curator's recipes follow their framework's new session.
#[derive(Clone)]
pub struct SessionSlot {
    inner: Arc<SlotInner>,
}

impl SessionSlot {
    /// A slot holding `client`, or nothing yet.
    pub fn new(client: Option<Arc<Client>>) -> SessionSlot {
        SessionSlot {
            inner: Arc::new(SlotInner {
                current: Mutex::new(client),
                subscribers: Mutex::new(Vec::new()),
                next_subscriber: AtomicU64::new(1),
            }),
        }
    }

    /// A slot that always holds `client`.
    pub fn fixed(client: Arc<Client>) -> SessionSlot {
        SessionSlot::new(Some(client))
    }

    /// The client of the current session.
    pub fn client(&self) -> RecipeResult<Arc<Client>> {
        self.inner
            .current
            .lock()
            .clone()
            .ok_or(RecipeError::NoSession)
    }

    /// Puts the client of a new session in the slot (None: there is none) and tells every
    /// subscriber, outside the slot's locks.
    pub fn set(&self, client: Option<Arc<Client>>) {
        *self.inner.current.lock() = client;
        let subscribers: Vec<Subscriber> = self
            .inner
            .subscribers
            .lock()
            .iter()
            .map(|(_, subscriber)| subscriber.clone())
            .collect();
        for subscriber in subscribers {
            subscriber();
        }
    }

    /// Calls `subscriber` after every `set`; returns the id `unsubscribe` takes.
    pub(crate) fn subscribe(&self, subscriber: Subscriber) -> u64 {
        let id = self.inner.next_subscriber.fetch_add(1, Ordering::Relaxed);
        self.inner.subscribers.lock().push((id, subscriber));
        id
    }

    pub(crate) fn unsubscribe(&self, id: u64) {
        self.inner
            .subscribers
            .lock()
            .retain(|(known, _)| *known != id);
    }
}

impl fmt::Debug for SessionSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let session = self.inner.current.lock().as_ref().map(|c| c.session_id());
        f.debug_struct("SessionSlot")
            .field("session_id", &session)
            .finish()
    }
}

pub(crate) fn retryable(error: &RecipeError) -> bool {
    matches!(
        error.zookeeper_code(),
        Some(ErrorCode::ConnectionLoss | ErrorCode::OperationTimeout)
    )
}

/// Runs `call`, retrying on connection loss and operation timeout with backoff (see `Backoff`)
/// until `deadline`: a call whose deadline has passed (a non-blocking one) gets one attempt.
/// Any other error (session expiry, which no retry can cure, included) returns at once.
pub(crate) fn retry<T>(
    deadline: Deadline,
    mut call: impl FnMut() -> RecipeResult<T>,
) -> RecipeResult<T> {
    let mut backoff = Backoff::until(deadline);
    loop {
        match call() {
            Err(error) if retryable(&error) && backoff.pause() => {}
            other => return other,
        }
    }
}

/// The pauses between retries: 50 ms growing to 1 s, jittered, until the caller's deadline
/// and for at most `RETRY_TOTAL_MS_MAX` however far that is (kazoo's `retry.deadline =
/// timeout`, with a cap).
pub(crate) struct Backoff {
    end: Instant,
    sleep_ms: u64,
}

impl Backoff {
    pub(crate) fn until(deadline: Deadline) -> Backoff {
        let cap = Instant::now() + Duration::from_millis(RETRY_TOTAL_MS_MAX);
        Backoff {
            end: deadline.end.map_or(cap, |end| end.min(cap)),
            sleep_ms: RETRY_SLEEP_MS_MIN,
        }
    }

    /// Sleeps before the next attempt, never past the end; false (at once) when the end has
    /// come.
    pub(crate) fn pause(&mut self) -> bool {
        let left = self.end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(jittered(self.sleep_ms).min(left));
        self.sleep_ms = (self.sleep_ms * 2).min(RETRY_SLEEP_MS_MAX);
        true
    }
}

/// Between half and one and a half times `ms`, so contenders that failed together do not
/// retry together.
fn jittered(ms: u64) -> Duration {
    let random = random_u64() % 1_000;
    Duration::from_micros(ms * (500 + random))
}

/// A point in time a blocking call must return by; `None` means no limit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    end: Option<Instant>,
}

impl Deadline {
    /// `timeout` from now; None, or a timeout too far to represent, is no limit.
    pub(crate) fn after(timeout: Option<Duration>) -> Deadline {
        Deadline {
            end: timeout.and_then(|timeout| Instant::now().checked_add(timeout)),
        }
    }

    /// Passed already: a non-blocking call's, which makes each step one attempt.
    pub(crate) fn now() -> Deadline {
        Deadline {
            end: Some(Instant::now()),
        }
    }

    /// No limit of the caller's (retries keep their own cap).
    pub(crate) fn none() -> Deadline {
        Deadline { end: None }
    }

    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.end
            .map(|end| end.saturating_duration_since(Instant::now()))
    }

    pub(crate) fn expired(&self) -> bool {
        self.end.is_some_and(|end| Instant::now() >= end)
    }
}

/// A flag a watch callback raises and a waiting recipe lowers: the wake-up between the
/// dispatcher thread and the thread that waits.
#[derive(Default)]
pub(crate) struct Signal {
    raised: Mutex<bool>,
    changed: Condvar,
}

impl Signal {
    pub(crate) fn raise(&self) {
        *self.raised.lock() = true;
        self.changed.notify_all();
    }

    pub(crate) fn lower(&self) {
        *self.raised.lock() = false;
    }

    /// Waits until raised or until `deadline`; true when raised.
    pub(crate) fn wait(&self, deadline: Deadline) -> bool {
        let mut raised = self.raised.lock();
        while !*raised {
            match deadline.end {
                Some(end) => {
                    if self.changed.wait_until(&mut raised, end).timed_out() {
                        return *raised;
                    }
                }
                None => self.changed.wait(&mut raised),
            }
        }
        true
    }
}

/// Refuses to wait inside one of the recipe client's own callbacks: the event that would end
/// the wait is queued behind the waiting callback on the same dispatcher thread, so the wait
/// could only time out.
pub(crate) fn refuse_in_callback(slot: &SessionSlot) -> RecipeResult<()> {
    if slot.client()?.is_dispatcher_thread() {
        return Err(RecipeError::InvalidState(
            "a blocking recipe call cannot wait inside a callback of its own client",
        ));
    }
    Ok(())
}

/// `parent/name`, with the root's children written `/name`.
pub(crate) fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// A recipe path as users write it, without a trailing slash ("/" stays "/").
pub(crate) fn normalize(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    }
}

/// A sequential znode's name split into the name it was created with and its sequence
/// number; None without the suffix ZooKeeper appends: ten digits, or a minus sign and nine
/// once the parent's counter wrapped.
pub fn split_sequence(name: &str) -> Option<(&str, i64)> {
    let bytes = name.as_bytes();
    if bytes.len() >= 10 {
        let tail = &name[name.len() - 10..];
        let digits = tail.strip_prefix('-').unwrap_or(tail);
        if digits.bytes().all(|byte| byte.is_ascii_digit()) {
            // A ten-digit tail may itself follow a minus sign ("-0000000001" is eleven long):
            // ZooKeeper's "%010d" writes a negative number as a minus and nine digits, so the
            // ten-digit reading is the right one and the stem keeps the minus.
            return tail
                .parse()
                .ok()
                .map(|sequence| (&name[..name.len() - 10], sequence));
        }
    }
    None
}

/// Creates every missing ancestor of `path` and `path` itself (persistent, empty, open ACL),
/// as kazoo's `ensure_path`.
pub(crate) fn ensure_path(client: &Client, path: &str) -> RecipeResult<()> {
    if path == "/" || client.exists(path, None)?.is_some() {
        return Ok(());
    }
    let mut prefix = String::new();
    for part in path.split('/').filter(|part| !part.is_empty()) {
        prefix.push('/');
        prefix.push_str(part);
        match client.create(&prefix, b"", &Acl::open_unsafe(), CreateMode::Persistent) {
            Ok(_) => {}
            Err(error) if error.code() == ErrorCode::NodeExists => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// The identifiers stored in `paths`' znodes, in order; znodes gone meanwhile are skipped.
pub(crate) fn identifiers(slot: &SessionSlot, paths: &[String]) -> RecipeResult<Vec<String>> {
    let mut found = Vec::with_capacity(paths.len());
    for path in paths {
        match retry(Deadline::none(), || {
            Ok(slot.client()?.get_data(path, None)?)
        }) {
            Ok((data, _)) => {
                found.push(String::from_utf8_lossy(data.as_deref().unwrap_or_default()).into())
            }
            Err(error) if error.zookeeper_code() == Some(ErrorCode::NoNode) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(found)
}

/// 64 random bits: std's per-process random hasher keys, a counter and the clock, hashed.
/// Enough to make recipe node names unique; not for secrets.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// A random version-4 UUID's 16 bytes.
fn uuid_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&random_u64().to_be_bytes());
    bytes[8..].copy_from_slice(&random_u64().to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes
}

/// A random UUID as 32 hex digits, as kazoo's `uuid.uuid4().hex` names its nodes.
pub(crate) fn uuid_hex() -> String {
    uuid_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A random UUID in its dashed form, as Curator's protected nodes carry it.
pub(crate) fn uuid_dashed() -> String {
    let hex = uuid_hex();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_suffixes_split_as_zookeeper_writes_them() {
        assert_eq!(
            split_sequence("abc__lock__0000000042"),
            Some(("abc__lock__", 42))
        );
        assert_eq!(split_sequence("x-latch--000000001"), Some(("x-latch-", -1)));
        assert_eq!(split_sequence("0000000007"), Some(("", 7)));
        assert_eq!(split_sequence("lock-12"), None);
        assert_eq!(split_sequence("abc__lock__00000000x2"), None);
    }

    #[test]
    fn uuids_have_their_forms_and_differ() {
        let (first, second) = (uuid_hex(), uuid_hex());
        assert_eq!(first.len(), 32);
        assert_ne!(first, second);
        let dashed = uuid_dashed();
        assert_eq!(dashed.len(), 36);
        assert_eq!(dashed.as_bytes()[14], b'4', "version 4: {dashed}");
    }

    #[test]
    fn paths_normalize_and_join() {
        assert_eq!(normalize("/a/b/"), "/a/b");
        assert_eq!(normalize("/"), "/");
        assert_eq!(child_path("/", "x"), "/x");
        assert_eq!(child_path("/a", "x"), "/a/x");
    }
}
