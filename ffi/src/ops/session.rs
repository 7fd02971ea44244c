//! Session-wide operations: sync, auth, persistent watches and their removal, ephemerals,
//! descendant counts and identities.

use std::ffi::{c_char, c_void};

use zookeeper_core::op::Op;
use zookeeper_core::{AddWatchMode, WatcherType};

use super::{asynchronous, blocking, Request};
use crate::answer::{expect, zk_completion_fn};
use crate::boundary::{data, text, write};
use crate::client::{zk_client, zk_watcher_fn};
use crate::owned::{hand_over, zk_identity_list, zk_strings};
use crate::result::zk_result;

// sync, auth, watches, session queries

/// # Safety
/// `path` is NULL or a valid string.
unsafe fn path_request(path: *const c_char, make: fn(String) -> Op) -> Result<Request, zk_result> {
    // SAFETY: per the caller's contract.
    Ok((make(unsafe { text(path) }?.to_string()), None))
}

fn sync_op(path: String) -> Op {
    Op::Sync { path }
}

fn ephemerals_op(prefix: String) -> Op {
    Op::GetEphemerals { prefix }
}

fn children_number_op(path: String) -> Op {
    Op::GetAllChildrenNumber { path }
}

/// Waits until the server has applied every change committed before the call.
///
/// # Safety
/// Pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn zk_sync(client: *const zk_client, path: *const c_char) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        blocking(
            client,
            |_| path_request(path, sync_op),
            |code, answer| expect(code, answer).map(drop),
        )
    }
}

/// `zk_sync` with a completion: `reply->path`.
///
/// # Safety
/// As `zk_sync`.
#[no_mangle]
pub unsafe extern "C" fn zk_sync_async(
    client: *const zk_client,
    path: *const c_char,
    done: zk_completion_fn,
    userdata: *mut c_void,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe { asynchronous(client, |_| path_request(path, sync_op), done, userdata) }
}

/// # Safety
/// Pointers are NULL or valid for the call.
unsafe fn add_auth_request(
    scheme: *const c_char,
    auth: *const u8,
    auth_len: usize,
) -> Result<Request, zk_result> {
    // SAFETY: per the caller's contract.
    let (scheme, auth) = unsafe { (text(scheme)?, data(auth, auth_len)?) };
    let auth = auth.ok_or(zk_result::ZK_NULL_ARGUMENT)?;
    Ok((
        Op::AddAuth {
            scheme: scheme.to_string(),
            auth: auth.to_vec(),
        },
        None,
    ))
}

/// Adds an identity to the session (`digest` with `user:password`). An unknown scheme fails
/// with `ZK_AUTHFAILED`, and every later call then fails the same way.
///
/// # Safety
/// Pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn zk_add_auth(
    client: *const zk_client,
    scheme: *const c_char,
    auth: *const u8,
    auth_len: usize,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        blocking(
            client,
            |_| add_auth_request(scheme, auth, auth_len),
            |code, answer| expect(code, answer).map(drop),
        )
    }
}

/// `zk_add_auth` with a completion. Returns without waiting for the server; the completion
/// runs on the dispatcher thread once it answered, after a failure has moved the client to
/// `ZK_STATE_AUTH_FAILED`.
///
/// # Safety
/// As `zk_add_auth`.
#[no_mangle]
pub unsafe extern "C" fn zk_add_auth_async(
    client: *const zk_client,
    scheme: *const c_char,
    auth: *const u8,
    auth_len: usize,
    done: zk_completion_fn,
    userdata: *mut c_void,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        asynchronous(
            client,
            |_| add_auth_request(scheme, auth, auth_len),
            done,
            userdata,
        )
    }
}

/// Modes of `zk_add_watch`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub enum zk_add_watch_mode {
    /// Fires for the znode's data, existence and children, and stays until removed.
    ZK_ADD_WATCH_PERSISTENT = 0,
    /// Fires for the znode and every descendant (data and existence), and stays.
    ZK_ADD_WATCH_PERSISTENT_RECURSIVE = 1,
}

/// # Safety
/// `path` is NULL or a valid string.
unsafe fn add_watch_request(
    handle: &zk_client,
    path: *const c_char,
    mode: i32,
    watcher: zk_watcher_fn,
    watcher_userdata: *mut c_void,
) -> Result<Request, zk_result> {
    let mode = AddWatchMode::from_code(mode).ok_or(zk_result::ZK_INVALID_ARGUMENT)?;
    // SAFETY: per the caller's contract.
    let path = unsafe { text(path) }?.to_string();
    let watcher = handle
        .watcher(watcher, watcher_userdata)?
        .ok_or(zk_result::ZK_NULL_ARGUMENT)?;
    Ok((Op::AddWatch { path, mode }, Some(watcher)))
}

/// Leaves a persistent or persistent-recursive watch (`zk_add_watch_mode`) on `path`, which
/// need not exist; `watcher` (required) hears every change until the watch is removed.
///
/// # Safety
/// Pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn zk_add_watch(
    client: *const zk_client,
    path: *const c_char,
    mode: i32,
    watcher: zk_watcher_fn,
    watcher_userdata: *mut c_void,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        blocking(
            client,
            |handle| add_watch_request(handle, path, mode, watcher, watcher_userdata),
            |code, answer| expect(code, answer).map(drop),
        )
    }
}

/// `zk_add_watch` with a completion.
///
/// # Safety
/// As `zk_add_watch`.
#[no_mangle]
pub unsafe extern "C" fn zk_add_watch_async(
    client: *const zk_client,
    path: *const c_char,
    mode: i32,
    watcher: zk_watcher_fn,
    watcher_userdata: *mut c_void,
    done: zk_completion_fn,
    userdata: *mut c_void,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        asynchronous(
            client,
            |handle| add_watch_request(handle, path, mode, watcher, watcher_userdata),
            done,
            userdata,
        )
    }
}

/// Watcher types of `zk_remove_watches`, ZooKeeper's values.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub enum zk_watcher_type {
    /// One-shot child watches.
    ZK_WATCHER_CHILDREN = 1,
    /// One-shot data and exists watches.
    ZK_WATCHER_DATA = 2,
    /// Every kind.
    ZK_WATCHER_ANY = 3,
    /// Persistent watches.
    ZK_WATCHER_PERSISTENT = 4,
    /// Persistent recursive watches.
    ZK_WATCHER_PERSISTENT_RECURSIVE = 5,
}

/// # Safety
/// `path` is NULL or a valid string.
unsafe fn remove_watches_request(
    handle: &zk_client,
    path: *const c_char,
    watcher_type: i32,
    watcher: zk_watcher_fn,
    watcher_userdata: *mut c_void,
) -> Result<Request, zk_result> {
    let watcher_type =
        WatcherType::from_code(watcher_type).ok_or(zk_result::ZK_INVALID_ARGUMENT)?;
    // SAFETY: per the caller's contract.
    let path = unsafe { text(path) }?.to_string();
    let watcher = match watcher {
        None => None,
        // A pair never registered waits nowhere.
        Some(_) => Some(
            handle
                .known_watcher(watcher, watcher_userdata)
                .ok_or(zk_result::ZK_NOWATCHER)?,
        ),
    };
    Ok((Op::RemoveWatches { path, watcher_type }, watcher))
}

/// Removes the watchers of `watcher_type` (`zk_watcher_type`) on `path`: every one when
/// `watcher` is NULL, else only the (watcher, userdata) pair. Each removed watcher hears a
/// "watch removed" event. `ZK_NOWATCHER` when none matches.
///
/// # Safety
/// Pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn zk_remove_watches(
    client: *const zk_client,
    path: *const c_char,
    watcher_type: i32,
    watcher: zk_watcher_fn,
    watcher_userdata: *mut c_void,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        blocking(
            client,
            |handle| remove_watches_request(handle, path, watcher_type, watcher, watcher_userdata),
            |code, answer| expect(code, answer).map(drop),
        )
    }
}

/// `zk_remove_watches` with a completion. Returns without waiting for the server's answer;
/// the removed watchers hear their "watch removed" event before the completion runs. Made
/// while another removal or a call setting a watch is on its way, it first waits for their
/// answers (as calls setting watches wait for a removal), so calls keep their order.
///
/// # Safety
/// As `zk_remove_watches`.
#[no_mangle]
pub unsafe extern "C" fn zk_remove_watches_async(
    client: *const zk_client,
    path: *const c_char,
    watcher_type: i32,
    watcher: zk_watcher_fn,
    watcher_userdata: *mut c_void,
    done: zk_completion_fn,
    userdata: *mut c_void,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        asynchronous(
            client,
            |handle| remove_watches_request(handle, path, watcher_type, watcher, watcher_userdata),
            done,
            userdata,
        )
    }
}

/// The session's ephemerals whose path starts with `prefix` ("/" for all), sorted; free
/// with `zk_strings_free`.
///
/// # Safety
/// Pointers are NULL or valid for the call; `paths_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn zk_get_ephemerals(
    client: *const zk_client,
    prefix: *const c_char,
    paths_out: *mut *mut zk_strings,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        blocking(
            client,
            |_| path_request(prefix, ephemerals_op),
            |code, answer| {
                hand_over(paths_out, expect(code, answer)?.children.take());
                Ok(())
            },
        )
    }
}

/// `zk_get_ephemerals` with a completion: `reply->children`.
///
/// # Safety
/// As `zk_get_ephemerals`.
#[no_mangle]
pub unsafe extern "C" fn zk_get_ephemerals_async(
    client: *const zk_client,
    prefix: *const c_char,
    done: zk_completion_fn,
    userdata: *mut c_void,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        asynchronous(
            client,
            |_| path_request(prefix, ephemerals_op),
            done,
            userdata,
        )
    }
}

/// The number of descendants of the znode.
///
/// # Safety
/// Pointers are NULL or valid for the call; `number_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn zk_get_all_children_number(
    client: *const zk_client,
    path: *const c_char,
    number_out: *mut i32,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        blocking(
            client,
            |_| path_request(path, children_number_op),
            |code, answer| {
                write(number_out, expect(code, answer)?.number);
                Ok(())
            },
        )
    }
}

/// `zk_get_all_children_number` with a completion: `reply->number`.
///
/// # Safety
/// As `zk_get_all_children_number`.
#[no_mangle]
pub unsafe extern "C" fn zk_get_all_children_number_async(
    client: *const zk_client,
    path: *const c_char,
    done: zk_completion_fn,
    userdata: *mut c_void,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        asynchronous(
            client,
            |_| path_request(path, children_number_op),
            done,
            userdata,
        )
    }
}

/// The session's authenticated identities; free with `zk_identity_list_free`.
///
/// # Safety
/// `client` is NULL or a live handle; `identities_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn zk_whoami(
    client: *const zk_client,
    identities_out: *mut *mut zk_identity_list,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        blocking(
            client,
            |_| Ok((Op::WhoAmI, None)),
            |code, answer| {
                hand_over(identities_out, expect(code, answer)?.identities.take());
                Ok(())
            },
        )
    }
}

/// `zk_whoami` with a completion: `reply->identities`.
///
/// # Safety
/// As `zk_whoami`.
#[no_mangle]
pub unsafe extern "C" fn zk_whoami_async(
    client: *const zk_client,
    done: zk_completion_fn,
    userdata: *mut c_void,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe { asynchronous(client, |_| Ok((Op::WhoAmI, None)), done, userdata) }
}
