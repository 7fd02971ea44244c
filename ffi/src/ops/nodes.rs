//! The znode operations: create (every mode), delete, exists, get, get children, set.

use std::ffi::{c_char, c_void};

use zookeeper_core::op::{CreateRequest, Op};

use super::{asynchronous, blocking, deliver_stat, Request};
use crate::answer::{expect, zk_completion_fn};
use crate::boundary::{data, text, write};
use crate::client::{zk_client, zk_watcher_fn};
use crate::owned::{hand_over, owned_string, zk_bytes, zk_strings};
use crate::result::zk_result;
use crate::types::{acl_argument, create_mode, zk_acl, zk_stat};

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
    let watcher = handle.watcher(watcher, watcher_userdata)?;
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
