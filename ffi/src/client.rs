//! The `zk_client` handle: connecting (over TCP or to an embedded server), resuming a session,
//! the session's getters, watchers as C callbacks, closing and freeing.

use std::ffi::{c_char, c_void, CString};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use zookeeper_core::{
    Client, ClientState, ClientTls, ConnectOptions, ReadCacheConfig, SessionCredentials,
    WatchedEvent, Watcher,
};

use crate::boundary::{
    boundary, boundary_void, from_raw, into_raw, optional_text, reference, required, text, write,
    UserData,
};
use crate::result::zk_result;
use crate::watchers::{CWatchers, WATCHERS_PER_CLIENT_MAX};

/// A watch event as a watcher callback sees it; valid only during the callback.
#[repr(C)]
#[derive(Debug)]
pub struct zk_watch_event {
    /// ZooKeeper's event type: -1 none (a connection state change), 1 created, 2 deleted,
    /// 3 data changed, 4 children changed, 5 data watch removed, 6 child watch removed,
    /// 7 persistent watch removed.
    pub event_type: i32,
    /// ZooKeeper's connection state: 3 connected, 0 disconnected, -112 expired, 7 closed,
    /// 4 auth failed, 5 connected read-only.
    pub state: i32,
    /// The znode's path; "" for connection state changes.
    pub path: *const c_char,
    /// The zxid of the change; -1 for state changes and client-side events.
    pub zxid: i64,
}

/// A watcher: called on the client's dispatcher thread, one event at a time, in the order
/// the events happened, never while the library holds a lock the client needs. It may call
/// any function of the client, including `zk_client_close` and `zk_client_free`. A (watcher,
/// userdata) pair is one watcher; a client watches with at most 1,048,576 distinct pairs at
/// once (a pair counts while a watch, a queued event or a call holds it), and a call that
/// would add one more answers `ZK_LIMIT_EXCEEDED`.
pub type zk_watcher_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, event: *const zk_watch_event)>;

/// How a client connects. Fill with `zk_client_options_init`, then change what you need.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct zk_client_options {
    /// Requested session timeout in ms; the server clamps it into its range. Default 30000.
    pub session_timeout_ms: i32,
    /// The default watcher (connection state changes, `watch` requests without their own
    /// watcher); NULL for none.
    pub watcher: zk_watcher_fn,
    /// Passed to `watcher`.
    pub watcher_userdata: *mut c_void,
    /// Keep up to this many znodes in the watch-coherent read cache; 0 (default) is off.
    pub read_cache_entries_max: usize,
    /// Most data bytes (and child names) the read cache keeps; 0 is the default (64 MiB).
    pub read_cache_bytes_max: usize,
    /// Most time a read-cache entry is served after it was read, in ms; 0 (default): while
    /// its watch lives. Negative is refused (`ZK_INVALID_ARGUMENT`).
    pub read_cache_ttl_ms: i64,
    /// While disconnected, keep answering from the read cache (entries younger than
    /// `read_cache_ttl_ms`) instead of dropping it. Outside ZooKeeper's guarantees: such
    /// answers may be older than changes the server made since.
    pub read_cache_serve_stale_while_disconnected: bool,
    /// Over TCP: how long connecting waits for a server, in ms; 0 (default) is the session
    /// timeout.
    pub connect_timeout_ms: i64,
    /// Over TCP: accept a read-only server.
    pub read_only: bool,
    /// Resume the session `resume_session_id` / `resume_password` instead of opening one.
    pub resume: bool,
    /// The session id to resume (from `zk_client_session_id`).
    pub resume_session_id: i64,
    /// The session password to resume (from `zk_client_session_password`).
    pub resume_password: [u8; 16],
    /// Over TCP: connect over TLS to every server of the connect string.
    pub tls: bool,
    /// PEM file of the CA certificates the server's certificate must chain to (the server
    /// must be named in it as the connect string names it); needed unless
    /// `tls_skip_verification`. NULL: none.
    pub tls_ca_file: *const c_char,
    /// PEM file of this client's certificate chain, for servers that ask for one (its
    /// subject is the `x509` ACL id); NULL: none.
    pub tls_cert_file: *const c_char,
    /// PEM file of the certificate's private key (not encrypted); NULL: the cert file's own.
    pub tls_key_file: *const c_char,
    /// Accept any server certificate: encrypted but not authenticated, for tests only.
    pub tls_skip_verification: bool,
}

/// Where a client stands with its session, as `zk_client_state` reports it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub enum zk_session_state {
    /// The session is live.
    ZK_STATE_CONNECTED = 0,
    /// Authentication failed: every call answers `ZK_AUTHFAILED`.
    ZK_STATE_AUTH_FAILED = 1,
    /// The server expired the session.
    ZK_STATE_EXPIRED = 2,
    /// The session was closed.
    ZK_STATE_CLOSED = 3,
    /// Over TCP: looking for a server; calls wait for one up to the session timeout.
    ZK_STATE_CONNECTING = 4,
}

/// What the read cache did so far.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct zk_read_cache_stats {
    /// Reads answered from the cache.
    pub hits: u64,
    /// Reads that went to the server.
    pub misses: u64,
    /// Entries dropped by an event, a removed watch or a connection change.
    pub invalidations: u64,
    /// Entries dropped to stay within the bounds.
    pub evictions: u64,
    /// Answers cached now (a znode's data, existence and children count one each).
    pub entries: u64,
    /// Bytes cached now (data, and child names).
    pub bytes: u64,
    /// Entries dropped because they outlived `read_cache_ttl_ms`.
    pub expirations: u64,
    /// Server-side watches of evicted entries the client removed.
    pub watches_released: u64,
    /// getData answered from the cache.
    pub data_hits: u64,
    /// getData sent to the server.
    pub data_misses: u64,
    /// exists answered from the cache.
    pub exists_hits: u64,
    /// exists sent to the server.
    pub exists_misses: u64,
    /// getChildren (and getChildren2) answered from the cache.
    pub children_hits: u64,
    /// getChildren (and getChildren2) sent to the server.
    pub children_misses: u64,
}

/// A session on a ZooKeeper server (opaque). Thread-safe: any thread may call any function
/// on it at once, except that `zk_client_free` must be the last call on it.
pub struct zk_client {
    /// Kept after a close: freeing the handle still waits for the client's dispatcher.
    client: Arc<Client>,
    /// False once closed: later calls answer `ZK_CLOSED_HANDLE`.
    open: AtomicBool,
    /// One watcher per (callback, userdata), so the same pair registered twice fires once
    /// and `zk_remove_watches` finds it, as with one Watcher object in ZooKeeper's clients.
    watchers: Mutex<CWatchers>,
}

impl zk_client {
    pub(crate) fn new(client: Client) -> zk_client {
        zk_client {
            client: Arc::new(client),
            open: AtomicBool::new(true),
            watchers: Mutex::new(CWatchers::new(WATCHERS_PER_CLIENT_MAX)),
        }
    }

    /// The client while the handle is open.
    pub(crate) fn live(&self) -> Result<Arc<Client>, zk_result> {
        if self.open.load(Ordering::Acquire) {
            Ok(self.client.clone())
        } else {
            Err(zk_result::ZK_CLOSED_HANDLE)
        }
    }

    /// The watcher for a callback and its userdata; None for a NULL callback.
    /// `ZK_LIMIT_EXCEEDED` past `WATCHERS_PER_CLIENT_MAX` live pairs.
    pub(crate) fn watcher(
        &self,
        callback: zk_watcher_fn,
        userdata: *mut c_void,
    ) -> Result<Option<Watcher>, zk_result> {
        let Some(callback) = callback else {
            return Ok(None);
        };
        let pair = (callback as usize, userdata as usize);
        self.watchers
            .lock()
            .get_or_insert(pair, || c_watcher(callback, UserData(userdata)))
            .map(Some)
    }

    /// The watcher already standing for a callback and its userdata.
    pub(crate) fn known_watcher(
        &self,
        callback: zk_watcher_fn,
        userdata: *mut c_void,
    ) -> Option<Watcher> {
        let callback = callback?;
        self.watchers
            .lock()
            .get((callback as usize, userdata as usize))
    }
}

type WatcherCallback = unsafe extern "C" fn(*mut c_void, *const zk_watch_event);

fn c_watcher(callback: WatcherCallback, userdata: UserData) -> Watcher {
    Watcher::new(move |event: WatchedEvent| {
        let path = CString::new(event.path).unwrap_or_default();
        let c_event = zk_watch_event {
            event_type: event.event_type.code(),
            state: event.state.code(),
            path: path.as_ptr(),
            zxid: event.zxid,
        };
        // SAFETY: the callback and userdata are the caller's, called as the header documents
        // (on the dispatcher thread, with an event valid for the call).
        unsafe { callback(userdata.get(), &c_event) };
    })
}

/// Fills `options` with the defaults: 30 s session timeout, no watcher, no read cache, no
/// resume, plain TCP.
///
/// # Safety
/// `options` is NULL or points to writable memory for a `zk_client_options`.
#[no_mangle]
pub unsafe extern "C" fn zk_client_options_init(options: *mut zk_client_options) -> zk_result {
    boundary(|| {
        required(options)?;
        let defaults = zk_client_options {
            session_timeout_ms: 30_000,
            watcher: None,
            watcher_userdata: std::ptr::null_mut(),
            read_cache_entries_max: 0,
            read_cache_bytes_max: 0,
            read_cache_ttl_ms: 0,
            read_cache_serve_stale_while_disconnected: false,
            connect_timeout_ms: 0,
            read_only: false,
            resume: false,
            resume_session_id: 0,
            resume_password: [0; 16],
            tls: false,
            tls_ca_file: std::ptr::null(),
            tls_cert_file: std::ptr::null(),
            tls_key_file: std::ptr::null(),
            tls_skip_verification: false,
        };
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { write(options, defaults) };
        Ok(())
    })
}

/// The Rust options for C options (NULL: the defaults).
///
/// # Safety
/// `options` is NULL or points to a `zk_client_options` whose TLS file names are NULL or
/// NUL-terminated strings.
pub(crate) unsafe fn connect_options(
    options: *const zk_client_options,
) -> Result<ConnectOptions, zk_result> {
    // SAFETY: forwarded from the caller.
    let Some(options) = (unsafe { options.as_ref() }) else {
        return Ok(ConnectOptions::default());
    };
    if options.session_timeout_ms <= 0
        || options.connect_timeout_ms < 0
        || options.read_cache_ttl_ms < 0
    {
        return Err(zk_result::ZK_INVALID_ARGUMENT);
    }
    let defaults = ReadCacheConfig::default();
    let path = |pointer: *const c_char| -> Result<Option<PathBuf>, zk_result> {
        // SAFETY: NULL or a NUL-terminated string, per the contract above.
        Ok(unsafe { optional_text(pointer) }?.map(PathBuf::from))
    };
    let tls = if options.tls {
        Some(ClientTls {
            ca_file: path(options.tls_ca_file)?,
            cert_file: path(options.tls_cert_file)?,
            key_file: path(options.tls_key_file)?,
            skip_verification: options.tls_skip_verification,
        })
    } else {
        None
    };
    Ok(ConnectOptions {
        tls,
        session_timeout_ms: options.session_timeout_ms as i64,
        watcher: options
            .watcher
            .map(|callback| c_watcher(callback, UserData(options.watcher_userdata))),
        read_only: options.read_only,
        read_cache: (options.read_cache_entries_max > 0).then_some(ReadCacheConfig {
            entries_max: options.read_cache_entries_max,
            bytes_max: if options.read_cache_bytes_max == 0 {
                defaults.bytes_max
            } else {
                options.read_cache_bytes_max
            },
            ttl_ms: (options.read_cache_ttl_ms > 0).then_some(options.read_cache_ttl_ms as u64),
            serve_stale_while_disconnected: options.read_cache_serve_stale_while_disconnected,
        }),
        connect_timeout_ms: (options.connect_timeout_ms > 0)
            .then_some(options.connect_timeout_ms as u64),
        resume: options.resume.then_some(SessionCredentials {
            session_id: options.resume_session_id,
            password: options.resume_password,
        }),
        ..ConnectOptions::default()
    })
}

/// Opens a session over TCP: `connect_string` is ZooKeeper's `host:port[,host:port...][/chroot]`.
/// Returns once a server granted the session (`ZK_CONNECTIONLOSS` if none did in time;
/// `ZK_SESSIONEXPIRED` when resuming a session the server no longer has; `ZK_BADARGUMENTS`
/// for TLS files that cannot be used). `options` may be NULL for the defaults. On success
/// `*client_out` is a new handle for `zk_client_free`. `zk_client_connect_error` tells why a
/// failed connect failed, when it knows more than the code (an unknown CA, a refused
/// certificate, an unreadable file).
///
/// # Safety
/// Pointers are NULL or valid as documented; `client_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_client_connect(
    connect_string: *const c_char,
    options: *const zk_client_options,
    client_out: *mut *mut zk_client,
) -> zk_result {
    boundary(|| {
        required(client_out)?;
        // SAFETY: per the contract above.
        let (connect_string, options) =
            unsafe { (text(connect_string)?, connect_options(options)?) };
        CONNECT_ERROR.with(|last| last.borrow_mut().take());
        let client = Client::connect(connect_string, options).map_err(|error| {
            CONNECT_ERROR.with(|last| *last.borrow_mut() = error.detail().map(str::to_string));
            zk_result::from(&error)
        })?;
        // SAFETY: checked non-NULL.
        unsafe { write(client_out, into_raw(zk_client::new(client))) };
        Ok(())
    })
}

thread_local! {
    /// What the calling thread's last failed `zk_client_connect` could say beyond its code.
    static CONNECT_ERROR: std::cell::RefCell<Option<String>> =
        const { std::cell::RefCell::new(None) };
}

/// Copies why this thread's last `zk_client_connect` failed, NUL-terminated, into `buffer`
/// of `buffer_bytes`: "TLS handshake with 127.0.0.1:2281 failed: invalid peer certificate:
/// UnknownIssuer", "cannot read ca.pem: ...". `ZK_INVALID_STATE` when the last connect on
/// this thread succeeded or its code says all there is; `ZK_BUFFER_TOO_SMALL` when the text
/// does not fit (nothing written).
///
/// # Safety
/// `buffer` is NULL or writable for `buffer_bytes` bytes.
#[no_mangle]
pub unsafe extern "C" fn zk_client_connect_error(
    buffer: *mut c_char,
    buffer_bytes: usize,
) -> zk_result {
    boundary(|| {
        required(buffer)?;
        let text = CONNECT_ERROR
            .with(|last| last.borrow().clone())
            .ok_or(zk_result::ZK_INVALID_STATE)?;
        // A NUL inside would cut the text short; none comes from the client's messages.
        let text = text.replace('\0', " ");
        if text.len() + 1 > buffer_bytes {
            return Err(zk_result::ZK_BUFFER_TOO_SMALL);
        }
        // SAFETY: checked non-NULL, and writable for buffer_bytes >= text.len() + 1.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buffer.cast::<u8>(), text.len());
            *buffer.add(text.len()) = 0;
        }
        Ok(())
    })
}

/// Closes the session: its ephemerals go at once and its watchers hear the Closed state.
/// Later calls on the handle answer `ZK_CLOSED_HANDLE`; closing twice answers it too. Safe to
/// call from the client's own watcher or completion callbacks. Callbacks already queued still
/// run; `zk_client_free` waits for them.
///
/// # Safety
/// `client` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn zk_client_close(client: *const zk_client) -> zk_result {
    boundary(|| {
        // SAFETY: per the contract above.
        let handle = unsafe { reference(client) }?;
        if !handle.open.swap(false, Ordering::AcqRel) {
            return Err(zk_result::ZK_CLOSED_HANDLE);
        }
        handle.watchers.lock().clear();
        handle
            .client
            .close()
            .map_err(|error| zk_result::from(&error))
    })
}

/// Frees the handle, closing its session first if it is open. NULL is ignored.
///
/// Before it returns, every watcher and completion still queued runs (completions of calls
/// the server did not answer hear `ZK_SESSIONEXPIRED`) and the callback running on another
/// thread, if any, ends: once it returns, no callback of this client runs again, so the
/// caller may free whatever their userdata points to. Called from one of the client's own
/// callbacks it runs the queued ones itself, as ZooKeeper's `zookeeper_close` does. Do not
/// call it while holding a lock one of the client's callbacks waits for.
///
/// # Safety
/// `client` is NULL or a handle from this library, not used after this call.
#[no_mangle]
pub unsafe extern "C" fn zk_client_free(client: *mut zk_client) {
    boundary_void(|| {
        // SAFETY: per the contract above. The handle is borrowed until the dispatcher stopped,
        // since a callback running meanwhile may still call functions on it.
        let Some(handle) = (unsafe { client.as_ref() }) else {
            return;
        };
        handle.open.store(false, Ordering::Release);
        handle.watchers.lock().clear();
        let _ = handle.client.close_and_join();
        // SAFETY: no callback of this client runs any more; the caller makes no other call.
        drop(unsafe { from_raw(client) });
    });
}

/// The session id.
///
/// # Safety
/// `client` is NULL or a live handle; `session_id_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_client_session_id(
    client: *const zk_client,
    session_id_out: *mut i64,
) -> zk_result {
    boundary(|| {
        required(session_id_out)?;
        // SAFETY: per the contract above.
        let live = unsafe { reference(client) }?.live()?;
        // SAFETY: checked non-NULL.
        unsafe { write(session_id_out, live.session_id()) };
        Ok(())
    })
}

/// Copies the 16-byte session password into `password_out`; `ZK_BUFFER_TOO_SMALL` (nothing
/// written) when `password_len` is less than 16.
///
/// # Safety
/// `client` is NULL or a live handle; `password_out` has `password_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn zk_client_session_password(
    client: *const zk_client,
    password_out: *mut u8,
    password_len: usize,
) -> zk_result {
    boundary(|| {
        required(password_out)?;
        // SAFETY: per the contract above.
        let live = unsafe { reference(client) }?.live()?;
        let password = live.session_password();
        if password_len < password.len() {
            return Err(zk_result::ZK_BUFFER_TOO_SMALL);
        }
        // SAFETY: non-NULL with at least 16 writable bytes, per the check and the contract.
        unsafe { std::ptr::copy_nonoverlapping(password.as_ptr(), password_out, password.len()) };
        Ok(())
    })
}

/// The session timeout the server granted, in ms.
///
/// # Safety
/// `client` is NULL or a live handle; `timeout_ms_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_client_session_timeout_ms(
    client: *const zk_client,
    timeout_ms_out: *mut i32,
) -> zk_result {
    boundary(|| {
        required(timeout_ms_out)?;
        // SAFETY: per the contract above.
        let live = unsafe { reference(client) }?.live()?;
        let timeout_ms = i32::try_from(live.session_timeout_ms()).unwrap_or(i32::MAX);
        // SAFETY: checked non-NULL.
        unsafe { write(timeout_ms_out, timeout_ms) };
        Ok(())
    })
}

/// Where the client stands: a `zk_session_state`. A closed handle reports
/// `ZK_STATE_CLOSED` (and `ZK_OK`).
///
/// # Safety
/// `client` is NULL or a live handle; `state_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_client_state(
    client: *const zk_client,
    state_out: *mut i32,
) -> zk_result {
    boundary(|| {
        required(state_out)?;
        // SAFETY: per the contract above.
        let handle = unsafe { reference(client) }?;
        let state = match handle.live() {
            Ok(live) => match live.state() {
                ClientState::Connected => zk_session_state::ZK_STATE_CONNECTED,
                ClientState::AuthFailed => zk_session_state::ZK_STATE_AUTH_FAILED,
                ClientState::Expired => zk_session_state::ZK_STATE_EXPIRED,
                ClientState::Closed => zk_session_state::ZK_STATE_CLOSED,
                ClientState::Connecting => zk_session_state::ZK_STATE_CONNECTING,
            },
            Err(_) => zk_session_state::ZK_STATE_CLOSED,
        };
        // SAFETY: checked non-NULL.
        unsafe { write(state_out, state as i32) };
        Ok(())
    })
}

/// The read cache's counters; `ZK_INVALID_STATE` when the client has no cache.
///
/// # Safety
/// `client` is NULL or a live handle; `stats_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_client_read_cache_stats(
    client: *const zk_client,
    stats_out: *mut zk_read_cache_stats,
) -> zk_result {
    boundary(|| {
        required(stats_out)?;
        // SAFETY: per the contract above.
        let live = unsafe { reference(client) }?.live()?;
        let stats = live.read_cache_stats().ok_or(zk_result::ZK_INVALID_STATE)?;
        let stats = zk_read_cache_stats {
            hits: stats.hits,
            misses: stats.misses,
            invalidations: stats.invalidations,
            evictions: stats.evictions,
            entries: stats.entries as u64,
            bytes: stats.bytes as u64,
            expirations: stats.expirations,
            watches_released: stats.watches_released,
            data_hits: stats.data.hits,
            data_misses: stats.data.misses,
            exists_hits: stats.exists.hits,
            exists_misses: stats.exists.misses,
            children_hits: stats.children.hits,
            children_misses: stats.children.misses,
        };
        // SAFETY: checked non-NULL.
        unsafe { write(stats_out, stats) };
        Ok(())
    })
}

/// For a client of an embedded server: `false` cuts it off as a network partition would (its
/// session then expires after its timeout), `true` reattaches it. Over TCP it does nothing.
///
/// # Safety
/// `client` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn zk_client_set_attached(
    client: *const zk_client,
    attached: bool,
) -> zk_result {
    boundary(|| {
        // SAFETY: per the contract above.
        let live = unsafe { reference(client) }?.live()?;
        live.set_attached(attached);
        Ok(())
    })
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
