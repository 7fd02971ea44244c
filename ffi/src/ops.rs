//! Every ZooKeeper operation, blocking and with a completion callback (`_async`). Each
//! operation's arguments are read once into an `Op` by its request builder; the blocking form
//! writes the answer to out-parameters (only on success), the async form hands it to the
//! completion on the client's dispatcher thread, with no thread per call.

use std::ffi::{c_char, c_void};

use zookeeper_core::op::{CreateRequest, Op};
use zookeeper_core::{AddWatchMode, Watcher, WatcherType};

use crate::answer::{call, call_async, expect, zk_completion_fn, Answer};
use crate::boundary::{boundary, data, reference, text, write, Outcome, UserData};
use crate::client::{zk_client, zk_watcher_fn};
use crate::result::zk_result;
use crate::types::{
    acl_argument, create_mode, hand_over, multi_ops, owned_string, read_ops, zk_acl, zk_acl_list,
    zk_bytes, zk_identity_list, zk_multi_results, zk_op, zk_read_op, zk_read_results, zk_stat,
    zk_strings,
};

/// A request ready to send: the op and the watcher it leaves.
type Request = (Op, Option<Watcher>);

/// Runs a blocking call: builds the request, waits, hands the answer to `deliver`.
///
/// # Safety
/// `client` is NULL or a live handle.
unsafe fn blocking(
    client: *const zk_client,
    build: impl FnOnce(&zk_client) -> Result<Request, zk_result>,
    deliver: impl FnOnce(zk_result, Option<Answer>) -> Outcome,
) -> zk_result {
    boundary(|| {
        // SAFETY: per the caller's contract.
        let handle = unsafe { reference(client) }?;
        let (op, watcher) = build(handle)?;
        let live = handle.live()?;
        let (code, answer) = call(&live, op, watcher);
        deliver(code, answer)
    })
}

/// Starts an async call: builds the request and sends it; `done` hears the answer.
///
/// # Safety
/// `client` is NULL or a live handle.
unsafe fn asynchronous(
    client: *const zk_client,
    build: impl FnOnce(&zk_client) -> Result<Request, zk_result>,
    done: zk_completion_fn,
    userdata: *mut c_void,
) -> zk_result {
    boundary(|| {
        let done = done.ok_or(zk_result::ZK_NULL_ARGUMENT)?;
        // SAFETY: per the caller's contract.
        let handle = unsafe { reference(client) }?;
        let (op, watcher) = build(handle)?;
        let live = handle.live()?;
        call_async(&live, op, watcher, done, UserData(userdata));
        Ok(())
    })
}

/// Writes a Stat the caller may have asked for.
///
/// # Safety
/// `stat_out` is NULL or writable.
unsafe fn deliver_stat(answer: &Answer, stat_out: *mut zk_stat) {
    if let Some(stat) = answer.stat {
        // SAFETY: per the caller's contract.
        unsafe { write(stat_out, stat) };
    }
}

// create

/// # Safety
/// Pointers are NULL or valid for the call.
unsafe fn create_request(
    path: *const c_char,
    data_bytes: *const u8,
    data_len: usize,
    acl: *const zk_acl,
    acl_len: usize,
    mode: i32,
    ttl_ms: i64,
) -> Result<Request, zk_result> {
    let mode = create_mode(mode)?;
    // SAFETY: per the caller's contract.
    let (path, bytes, acl) = unsafe {
        (
            text(path)?,
            data(data_bytes, data_len)?,
            acl_argument(acl, acl_len)?,
        )
    };
    let request = CreateRequest {
        path: path.to_string(),
        data: bytes.map(<[u8]>::to_vec),
        acl,
        mode,
        ttl_ms: if mode.is_ttl() { ttl_ms } else { -1 },
    };
    Ok((Op::Create(request), None))
}

/// Creates a znode in any `zk_create_mode` (`ttl_ms` is used by the TTL modes only). `data`
/// NULL with `data_len` 0 is null data; `acl` NULL with `acl_len` 0 is the open ACL. On
/// success writes the created path (with the sequence suffix; free with `zk_string_free`) and
/// its Stat to the out-parameters that are not NULL.
///
/// # Safety
/// Pointers are NULL or valid for the call; out-parameters are writable.
#[no_mangle]
pub unsafe extern "C" fn zk_create(
    client: *const zk_client,
    path: *const c_char,
    data: *const u8,
    data_len: usize,
    acl: *const zk_acl,
    acl_len: usize,
    mode: i32,
    ttl_ms: i64,
    path_out: *mut *mut c_char,
    stat_out: *mut zk_stat,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        blocking(
            client,
            |_| create_request(path, data, data_len, acl, acl_len, mode, ttl_ms),
            |code, answer| {
                let answer = expect(code, answer)?;
                // Allocated only when asked for: a NULL out-parameter must not leak a string.
                if let (Some(created), false) = (&answer.path, path_out.is_null()) {
                    write(path_out, owned_string(created.to_str().unwrap_or_default()));
                }
                deliver_stat(&answer, stat_out);
                Ok(())
            },
        )
    }
}

/// `zk_create` with a completion: `reply->path` and `reply->stat`.
///
/// # Safety
/// As `zk_create`.
#[no_mangle]
pub unsafe extern "C" fn zk_create_async(
    client: *const zk_client,
    path: *const c_char,
    data: *const u8,
    data_len: usize,
    acl: *const zk_acl,
    acl_len: usize,
    mode: i32,
    ttl_ms: i64,
    done: zk_completion_fn,
    userdata: *mut c_void,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        asynchronous(
            client,
            |_| create_request(path, data, data_len, acl, acl_len, mode, ttl_ms),
            done,
            userdata,
        )
    }
}

// delete

/// # Safety
/// `path` is NULL or a valid string.
unsafe fn delete_request(path: *const c_char, version: i32) -> Result<Request, zk_result> {
    // SAFETY: per the caller's contract.
    Ok((Op::delete(unsafe { text(path) }?, version), None))
}

/// Deletes a childless znode; `version` -1 matches any.
///
/// # Safety
/// Pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn zk_delete(
    client: *const zk_client,
    path: *const c_char,
    version: i32,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        blocking(
            client,
            |_| delete_request(path, version),
            |code, answer| expect(code, answer).map(drop),
        )
    }
}

/// `zk_delete` with a completion.
///
/// # Safety
/// As `zk_delete`.
#[no_mangle]
pub unsafe extern "C" fn zk_delete_async(
    client: *const zk_client,
    path: *const c_char,
    version: i32,
    done: zk_completion_fn,
    userdata: *mut c_void,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe { asynchronous(client, |_| delete_request(path, version), done, userdata) }
}

// exists, get, get_children: reads that may leave a watch

/// # Safety
/// `path` is NULL or a valid string.
unsafe fn read_request(
    handle: &zk_client,
    path: *const c_char,
    watcher: zk_watcher_fn,
    watcher_userdata: *mut c_void,
    make: fn(String, bool) -> Op,
) -> Result<Request, zk_result> {
    // SAFETY: per the caller's contract.
    let path = unsafe { text(path) }?;
    let watcher = handle.watcher(watcher, watcher_userdata);
    Ok((make(path.to_string(), watcher.is_some()), watcher))
}

fn exists_op(path: String, watch: bool) -> Op {
    Op::Exists { path, watch }
}

fn get_data_op(path: String, watch: bool) -> Op {
    Op::GetData { path, watch }
}

fn get_children_op(path: String, watch: bool) -> Op {
    Op::GetChildren { path, watch }
}

/// The znode's Stat; `ZK_NONODE` when it does not exist. A watcher (NULL for none) fires on
/// the znode's creation, deletion or data change, and is left even when it does not exist.
///
/// # Safety
/// Pointers are NULL or valid for the call; `stat_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn zk_exists(
    client: *const zk_client,
    path: *const c_char,
    watcher: zk_watcher_fn,
    watcher_userdata: *mut c_void,
    stat_out: *mut zk_stat,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        blocking(
            client,
            |handle| read_request(handle, path, watcher, watcher_userdata, exists_op),
            |code, answer| {
                deliver_stat(&expect(code, answer)?, stat_out);
                Ok(())
            },
        )
    }
}

/// `zk_exists` with a completion: `reply->stat` (`ZK_NONODE` and no reply when absent).
///
/// # Safety
/// As `zk_exists`.
#[no_mangle]
pub unsafe extern "C" fn zk_exists_async(
    client: *const zk_client,
    path: *const c_char,
    watcher: zk_watcher_fn,
    watcher_userdata: *mut c_void,
    done: zk_completion_fn,
    userdata: *mut c_void,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        asynchronous(
            client,
            |handle| read_request(handle, path, watcher, watcher_userdata, exists_op),
            done,
            userdata,
        )
    }
}

/// The znode's data and Stat. `*data_out` becomes NULL for null data, else bytes to free with
/// `zk_bytes_free` (an empty value is a `zk_bytes` of length 0). A watcher fires on the
/// znode's deletion or data change.
///
/// # Safety
/// Pointers are NULL or valid for the call; out-parameters are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn zk_get(
    client: *const zk_client,
    path: *const c_char,
    watcher: zk_watcher_fn,
    watcher_userdata: *mut c_void,
    data_out: *mut *mut zk_bytes,
    stat_out: *mut zk_stat,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        blocking(
            client,
            |handle| read_request(handle, path, watcher, watcher_userdata, get_data_op),
            |code, answer| {
                let mut answer = expect(code, answer)?;
                hand_over(data_out, answer.data.take());
                deliver_stat(&answer, stat_out);
                Ok(())
            },
        )
    }
}

/// `zk_get` with a completion: `reply->data` (NULL for null data) and `reply->stat`.
///
/// # Safety
/// As `zk_get`.
#[no_mangle]
pub unsafe extern "C" fn zk_get_async(
    client: *const zk_client,
    path: *const c_char,
    watcher: zk_watcher_fn,
    watcher_userdata: *mut c_void,
    done: zk_completion_fn,
    userdata: *mut c_void,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        asynchronous(
            client,
            |handle| read_request(handle, path, watcher, watcher_userdata, get_data_op),
            done,
            userdata,
        )
    }
}

/// The znode's children (sorted; free with `zk_strings_free`) and its Stat. A watcher fires
/// when a child is created or deleted, or the znode is deleted.
///
/// # Safety
/// Pointers are NULL or valid for the call; out-parameters are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn zk_get_children(
    client: *const zk_client,
    path: *const c_char,
    watcher: zk_watcher_fn,
    watcher_userdata: *mut c_void,
    children_out: *mut *mut zk_strings,
    stat_out: *mut zk_stat,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        blocking(
            client,
            |handle| read_request(handle, path, watcher, watcher_userdata, get_children_op),
            |code, answer| {
                let mut answer = expect(code, answer)?;
                hand_over(children_out, answer.children.take());
                deliver_stat(&answer, stat_out);
                Ok(())
            },
        )
    }
}

/// `zk_get_children` with a completion: `reply->children` and `reply->stat`.
///
/// # Safety
/// As `zk_get_children`.
#[no_mangle]
pub unsafe extern "C" fn zk_get_children_async(
    client: *const zk_client,
    path: *const c_char,
    watcher: zk_watcher_fn,
    watcher_userdata: *mut c_void,
    done: zk_completion_fn,
    userdata: *mut c_void,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        asynchronous(
            client,
            |handle| read_request(handle, path, watcher, watcher_userdata, get_children_op),
            done,
            userdata,
        )
    }
}

// set

/// # Safety
/// Pointers are NULL or valid for the call.
unsafe fn set_request(
    path: *const c_char,
    data_bytes: *const u8,
    data_len: usize,
    version: i32,
) -> Result<Request, zk_result> {
    // SAFETY: per the caller's contract.
    let (path, bytes) = unsafe { (text(path)?, data(data_bytes, data_len)?) };
    Ok((Op::set_data(path, bytes, version), None))
}

/// Replaces the znode's data (NULL with length 0: null data); `version` -1 matches any.
/// Writes the new Stat.
///
/// # Safety
/// Pointers are NULL or valid for the call; `stat_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn zk_set(
    client: *const zk_client,
    path: *const c_char,
    data: *const u8,
    data_len: usize,
    version: i32,
    stat_out: *mut zk_stat,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        blocking(
            client,
            |_| set_request(path, data, data_len, version),
            |code, answer| {
                deliver_stat(&expect(code, answer)?, stat_out);
                Ok(())
            },
        )
    }
}

/// `zk_set` with a completion: `reply->stat`.
///
/// # Safety
/// As `zk_set`.
#[no_mangle]
pub unsafe extern "C" fn zk_set_async(
    client: *const zk_client,
    path: *const c_char,
    data: *const u8,
    data_len: usize,
    version: i32,
    done: zk_completion_fn,
    userdata: *mut c_void,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        asynchronous(
            client,
            |_| set_request(path, data, data_len, version),
            done,
            userdata,
        )
    }
}

// ACLs

/// # Safety
/// `path` is NULL or a valid string.
unsafe fn get_acl_request(path: *const c_char) -> Result<Request, zk_result> {
    // SAFETY: per the caller's contract.
    let path = unsafe { text(path) }?.to_string();
    Ok((Op::GetAcl { path }, None))
}

/// The znode's ACL (free with `zk_acl_list_free`; digests masked without ADMIN) and Stat.
///
/// # Safety
/// Pointers are NULL or valid for the call; out-parameters are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn zk_get_acl(
    client: *const zk_client,
    path: *const c_char,
    acl_out: *mut *mut zk_acl_list,
    stat_out: *mut zk_stat,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        blocking(
            client,
            |_| get_acl_request(path),
            |code, answer| {
                let mut answer = expect(code, answer)?;
                hand_over(acl_out, answer.acl.take());
                deliver_stat(&answer, stat_out);
                Ok(())
            },
        )
    }
}

/// `zk_get_acl` with a completion: `reply->acl` and `reply->stat`.
///
/// # Safety
/// As `zk_get_acl`.
#[no_mangle]
pub unsafe extern "C" fn zk_get_acl_async(
    client: *const zk_client,
    path: *const c_char,
    done: zk_completion_fn,
    userdata: *mut c_void,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe { asynchronous(client, |_| get_acl_request(path), done, userdata) }
}

/// # Safety
/// Pointers are NULL or valid for the call.
unsafe fn set_acl_request(
    path: *const c_char,
    acl: *const zk_acl,
    acl_len: usize,
    version: i32,
) -> Result<Request, zk_result> {
    // SAFETY: per the caller's contract.
    let (path, acl) = unsafe { (text(path)?, acl_argument(acl, acl_len)?) };
    Ok((
        Op::SetAcl {
            path: path.to_string(),
            acl,
            version,
        },
        None,
    ))
}

/// Replaces the znode's ACL; `version` -1 matches any ACL version. Writes the new Stat.
///
/// # Safety
/// Pointers are NULL or valid for the call; `stat_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn zk_set_acl(
    client: *const zk_client,
    path: *const c_char,
    acl: *const zk_acl,
    acl_len: usize,
    version: i32,
    stat_out: *mut zk_stat,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        blocking(
            client,
            |_| set_acl_request(path, acl, acl_len, version),
            |code, answer| {
                deliver_stat(&expect(code, answer)?, stat_out);
                Ok(())
            },
        )
    }
}

/// `zk_set_acl` with a completion: `reply->stat`.
///
/// # Safety
/// As `zk_set_acl`.
#[no_mangle]
pub unsafe extern "C" fn zk_set_acl_async(
    client: *const zk_client,
    path: *const c_char,
    acl: *const zk_acl,
    acl_len: usize,
    version: i32,
    done: zk_completion_fn,
    userdata: *mut c_void,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        asynchronous(
            client,
            |_| set_acl_request(path, acl, acl_len, version),
            done,
            userdata,
        )
    }
}

// multi and multi-read

/// Applies create, delete, set and check ops atomically. The results (free with
/// `zk_multi_results_free`) are written on success and also when the server failed the
/// multi, where they say which op failed and why (the call then returns that op's code);
/// they are not written for an error found before sending (a bad path, a NULL argument).
///
/// # Safety
/// `ops` points to `ops_len` ops; pointers are valid for the call; `results_out` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn zk_multi(
    client: *const zk_client,
    ops: *const zk_op,
    ops_len: usize,
    results_out: *mut *mut zk_multi_results,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        blocking(
            client,
            |_| Ok((Op::Multi(multi_ops(ops, ops_len)?), None)),
            |code, answer| {
                if let Some(results) = answer.and_then(|mut answer| answer.multi_results.take()) {
                    hand_over(results_out, Some(results));
                }
                match code {
                    zk_result::ZK_OK => Ok(()),
                    failed => Err(failed),
                }
            },
        )
    }
}

/// `zk_multi` with a completion: `reply->multi_results`, also for a failed multi.
///
/// # Safety
/// As `zk_multi`.
#[no_mangle]
pub unsafe extern "C" fn zk_multi_async(
    client: *const zk_client,
    ops: *const zk_op,
    ops_len: usize,
    done: zk_completion_fn,
    userdata: *mut c_void,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        asynchronous(
            client,
            |_| Ok((Op::Multi(multi_ops(ops, ops_len)?), None)),
            done,
            userdata,
        )
    }
}

/// Reads several znodes; each read succeeds or fails on its own (see `zk_read_result`).
/// Free the results with `zk_read_results_free`.
///
/// # Safety
/// `reads` points to `reads_len` reads; `results_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn zk_multi_read(
    client: *const zk_client,
    reads: *const zk_read_op,
    reads_len: usize,
    results_out: *mut *mut zk_read_results,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        blocking(
            client,
            |_| Ok((Op::MultiRead(read_ops(reads, reads_len)?), None)),
            |code, answer| {
                hand_over(results_out, expect(code, answer)?.read_results.take());
                Ok(())
            },
        )
    }
}

/// `zk_multi_read` with a completion: `reply->read_results`.
///
/// # Safety
/// As `zk_multi_read`.
#[no_mangle]
pub unsafe extern "C" fn zk_multi_read_async(
    client: *const zk_client,
    reads: *const zk_read_op,
    reads_len: usize,
    done: zk_completion_fn,
    userdata: *mut c_void,
) -> zk_result {
    // SAFETY: forwarded contracts.
    unsafe {
        asynchronous(
            client,
            |_| Ok((Op::MultiRead(read_ops(reads, reads_len)?), None)),
            done,
            userdata,
        )
    }
}

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

/// `zk_add_auth` with a completion.
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
        .watcher(watcher, watcher_userdata)
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

/// `zk_remove_watches` with a completion.
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
