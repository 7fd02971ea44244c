//! ACLs and batches: get and set ACL, multi (atomic writes) and multi-read.

use std::ffi::{c_char, c_void};

use zookeeper_core::op::Op;

use super::{asynchronous, blocking, deliver_stat, Request};
use crate::answer::{expect, zk_completion_fn};
use crate::boundary::text;
use crate::client::zk_client;
use crate::owned::{hand_over, zk_acl_list, zk_multi_results, zk_read_results};
use crate::result::zk_result;
use crate::types::{acl_argument, multi_ops, read_ops, zk_acl, zk_op, zk_read_op, zk_stat};

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
