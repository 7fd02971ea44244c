//! The Rust recipes for C: lock (exclusive, read, write), semaphore, leader election and
//! leader latch handles over a client's session, with kazoo's and Curator's znode layouts.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use zookeeper_core::client::recipes::{
    LeaderElection, LeaderLatch, Lock, LockKind, RecipeResult, Semaphore, SessionSlot,
};

use crate::boundary::{
    boundary, boundary_void, from_raw, into_raw, reference, required, text, write, UserData,
};
use crate::client::zk_client;
use crate::owned::{owned_strings, zk_strings};
use crate::result::zk_result;

/// Lock kinds of `zk_lock_new`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub enum zk_lock_kind {
    /// One holder at a time (kazoo's Lock).
    ZK_LOCK_EXCLUSIVE = 0,
    /// Shared with other readers, after every earlier writer (kazoo's ReadLock).
    ZK_LOCK_READ = 1,
    /// Alone, after every earlier reader and writer (kazoo's WriteLock).
    ZK_LOCK_WRITE = 2,
}

/// A lock contender (opaque). Thread-safe: `zk_lock_cancel` from one thread stops a
/// `zk_lock_acquire` waiting on another; `zk_lock_free` must be the last call.
pub struct zk_lock {
    lock: Lock,
}

/// A semaphore lease holder (opaque). Thread-safe as `zk_lock`.
pub struct zk_semaphore {
    semaphore: Semaphore,
}

/// A leader election contender (opaque). Thread-safe as `zk_lock`.
pub struct zk_leader_election {
    election: LeaderElection,
}

/// A leader latch participant (opaque). Thread-safe; `zk_leader_latch_free` must be the
/// last call.
pub struct zk_leader_latch {
    latch: LeaderLatch,
}

/// Told `true` when the participant becomes leader and `false` when it stops; runs on the
/// latch's worker thread, one call at a time.
pub type zk_leader_listener_fn = Option<unsafe extern "C" fn(userdata: *mut c_void, leader: bool)>;

/// Run by `zk_leader_election_run` while this contender leads.
pub type zk_leader_fn = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// The slot a recipe works through: the client's session, for good.
pub(crate) fn slot(handle: &zk_client) -> Result<SessionSlot, zk_result> {
    Ok(SessionSlot::fixed(handle.live()?))
}

/// A timeout in ms; -1 waits forever.
fn timeout(timeout_ms: i64) -> Result<Option<Duration>, zk_result> {
    match timeout_ms {
        -1 => Ok(None),
        ms if ms >= 0 => Ok(Some(Duration::from_millis(ms as u64))),
        _ => Err(zk_result::ZK_INVALID_ARGUMENT),
    }
}

/// Writes a recipe's boolean answer.
///
/// # Safety
/// `out` is NULL or writable.
unsafe fn answer_bool(result: RecipeResult<bool>, out: *mut bool) -> Result<(), zk_result> {
    let value = result?;
    // SAFETY: per the caller's contract.
    unsafe { write(out, value) };
    Ok(())
}

/// Writes a recipe's list of identifiers.
///
/// # Safety
/// `out` was checked non-NULL and is writable.
unsafe fn answer_strings(
    result: RecipeResult<Vec<String>>,
    out: *mut *mut zk_strings,
) -> Result<(), zk_result> {
    let strings = result?;
    // SAFETY: per the caller's contract.
    unsafe { write(out, owned_strings(&strings).into_view()) };
    Ok(())
}

/// A lock contender at `path` on the client's session, listed as `identifier` (NULL: "").
/// Nothing is created before `zk_lock_acquire`.
///
/// # Safety
/// Pointers are NULL or valid for the call; `lock_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_lock_new(
    client: *const zk_client,
    path: *const c_char,
    identifier: *const c_char,
    kind: i32,
    lock_out: *mut *mut zk_lock,
) -> zk_result {
    boundary(|| {
        required(lock_out)?;
        let kind = match kind {
            0 => LockKind::Exclusive,
            1 => LockKind::Read,
            2 => LockKind::Write,
            _ => return Err(zk_result::ZK_INVALID_ARGUMENT),
        };
        // SAFETY: per the contract above.
        let (handle, path, identifier) = unsafe {
            (
                reference(client)?,
                text(path)?,
                crate::boundary::optional_text(identifier)?,
            )
        };
        let lock = Lock::new(slot(handle)?, path, identifier.unwrap_or(""), kind);
        // SAFETY: checked non-NULL.
        unsafe { write(lock_out, into_raw(zk_lock { lock })) };
        Ok(())
    })
}

/// Acquires the lock; `*acquired_out` true when held. Non-blocking: false at once when taken,
/// with one attempt at each step (`ZK_CONNECTIONLOSS` is not retried). Blocking: waits up to
/// `timeout_ms` (-1: forever), retrying connection loss within it (for at most 10 s), then
/// `ZK_TIMED_OUT`; `ZK_CANCELLED` after `zk_lock_cancel`. A failed attempt leaves no znode
/// behind. A blocking call from a watcher or completion of the lock's own client answers
/// `ZK_INVALID_STATE` at once: the event that ends the wait would queue behind it.
///
/// # Safety
/// `lock` is NULL or a live handle; `acquired_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn zk_lock_acquire(
    lock: *const zk_lock,
    blocking: bool,
    timeout_ms: i64,
    acquired_out: *mut bool,
) -> zk_result {
    boundary(|| {
        // SAFETY: per the contract above.
        let handle = unsafe { reference(lock) }?;
        let result = handle.lock.acquire(blocking, timeout(timeout_ms)?, true);
        // SAFETY: per the contract above.
        unsafe { answer_bool(result, acquired_out) }
    })
}

/// Releases the lock; `*released_out` false when this contender did not hold it (a lock
/// lost with its session included: its znode went with the session).
///
/// # Safety
/// `lock` is NULL or a live handle; `released_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn zk_lock_release(
    lock: *const zk_lock,
    released_out: *mut bool,
) -> zk_result {
    boundary(|| {
        // SAFETY: per the contract above.
        let handle = unsafe { reference(lock) }?;
        // SAFETY: per the contract above.
        unsafe { answer_bool(handle.lock.release(), released_out) }
    })
}

/// Whether this contender holds the lock now: acquired, and (for its ephemeral znode) on a
/// session that is still alive.
///
/// # Safety
/// `lock` is NULL or a live handle; `acquired_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_lock_is_acquired(
    lock: *const zk_lock,
    acquired_out: *mut bool,
) -> zk_result {
    boundary(|| {
        required(acquired_out)?;
        // SAFETY: per the contract above.
        let acquired = unsafe { reference(lock) }?.lock.is_acquired();
        // SAFETY: checked non-NULL.
        unsafe { write(acquired_out, acquired) };
        Ok(())
    })
}

/// Makes a waiting (or the next) `zk_lock_acquire` answer `ZK_CANCELLED`.
///
/// # Safety
/// `lock` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn zk_lock_cancel(lock: *const zk_lock) -> zk_result {
    boundary(|| {
        // SAFETY: per the contract above.
        unsafe { reference(lock) }?.lock.cancel();
        Ok(())
    })
}

/// The identifiers of every contender, holders first; free with `zk_strings_free`.
///
/// # Safety
/// `lock` is NULL or a live handle; `contenders_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_lock_contenders(
    lock: *const zk_lock,
    contenders_out: *mut *mut zk_strings,
) -> zk_result {
    boundary(|| {
        required(contenders_out)?;
        // SAFETY: per the contract above.
        let handle = unsafe { reference(lock) }?;
        // SAFETY: checked non-NULL.
        unsafe { answer_strings(handle.lock.contenders(), contenders_out) }
    })
}

/// Frees the contender (its znode stays while held: release first). NULL is ignored.
///
/// # Safety
/// `lock` is NULL or a handle from this library, not used after this call.
#[no_mangle]
pub unsafe extern "C" fn zk_lock_free(lock: *mut zk_lock) {
    // SAFETY: per the contract above.
    boundary_void(|| drop(unsafe { from_raw(lock) }));
}

/// A lease holder of the semaphore at `path` with `leases_max` leases (every user must pass
/// the same count; 0 is `ZK_INVALID_ARGUMENT`).
///
/// # Safety
/// Pointers are NULL or valid for the call; `semaphore_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_semaphore_new(
    client: *const zk_client,
    path: *const c_char,
    identifier: *const c_char,
    leases_max: u32,
    semaphore_out: *mut *mut zk_semaphore,
) -> zk_result {
    boundary(|| {
        required(semaphore_out)?;
        if leases_max == 0 {
            return Err(zk_result::ZK_INVALID_ARGUMENT);
        }
        // SAFETY: per the contract above.
        let (handle, path, identifier) = unsafe {
            (
                reference(client)?,
                text(path)?,
                crate::boundary::optional_text(identifier)?,
            )
        };
        let semaphore = Semaphore::new(slot(handle)?, path, identifier.unwrap_or(""), leases_max);
        // SAFETY: checked non-NULL.
        unsafe { write(semaphore_out, into_raw(zk_semaphore { semaphore })) };
        Ok(())
    })
}

/// Acquires a lease, as `zk_lock_acquire` (timeouts, retries, `ZK_INVALID_STATE` inside the
/// client's own callbacks); `ZK_LEASE_MISMATCH` when the semaphore was made with another
/// lease count.
///
/// # Safety
/// `semaphore` is NULL or a live handle; `acquired_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn zk_semaphore_acquire(
    semaphore: *const zk_semaphore,
    blocking: bool,
    timeout_ms: i64,
    acquired_out: *mut bool,
) -> zk_result {
    boundary(|| {
        // SAFETY: per the contract above.
        let handle = unsafe { reference(semaphore) }?;
        let result = handle.semaphore.acquire(blocking, timeout(timeout_ms)?);
        // SAFETY: per the contract above.
        unsafe { answer_bool(result, acquired_out) }
    })
}

/// Gives the lease back; `*released_out` false when none was held.
///
/// # Safety
/// `semaphore` is NULL or a live handle; `released_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn zk_semaphore_release(
    semaphore: *const zk_semaphore,
    released_out: *mut bool,
) -> zk_result {
    boundary(|| {
        // SAFETY: per the contract above.
        let handle = unsafe { reference(semaphore) }?;
        // SAFETY: per the contract above.
        unsafe { answer_bool(handle.semaphore.release(), released_out) }
    })
}

/// Makes a waiting (or the next) `zk_semaphore_acquire` answer `ZK_CANCELLED`, also one
/// waiting for another contender to finish looking at the leases.
///
/// # Safety
/// `semaphore` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn zk_semaphore_cancel(semaphore: *const zk_semaphore) -> zk_result {
    boundary(|| {
        // SAFETY: per the contract above.
        unsafe { reference(semaphore) }?.semaphore.cancel();
        Ok(())
    })
}

/// The identifiers of the lease holders, unordered; free with `zk_strings_free`.
///
/// # Safety
/// `semaphore` is NULL or a live handle; `holders_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_semaphore_lease_holders(
    semaphore: *const zk_semaphore,
    holders_out: *mut *mut zk_strings,
) -> zk_result {
    boundary(|| {
        required(holders_out)?;
        // SAFETY: per the contract above.
        let handle = unsafe { reference(semaphore) }?;
        // SAFETY: checked non-NULL.
        unsafe { answer_strings(handle.semaphore.lease_holders(), holders_out) }
    })
}

/// Frees the lease holder (a held lease stays: release first). NULL is ignored.
///
/// # Safety
/// `semaphore` is NULL or a handle from this library, not used after this call.
#[no_mangle]
pub unsafe extern "C" fn zk_semaphore_free(semaphore: *mut zk_semaphore) {
    // SAFETY: per the contract above.
    boundary_void(|| drop(unsafe { from_raw(semaphore) }));
}

/// A contender in the election at `path`, listed as `identifier`.
///
/// # Safety
/// Pointers are NULL or valid for the call; `election_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_leader_election_new(
    client: *const zk_client,
    path: *const c_char,
    identifier: *const c_char,
    election_out: *mut *mut zk_leader_election,
) -> zk_result {
    boundary(|| {
        required(election_out)?;
        // SAFETY: per the contract above.
        let (handle, path, identifier) = unsafe {
            (
                reference(client)?,
                text(path)?,
                crate::boundary::optional_text(identifier)?,
            )
        };
        let election = LeaderElection::new(slot(handle)?, path, identifier.unwrap_or(""));
        // SAFETY: checked non-NULL.
        unsafe { write(election_out, into_raw(zk_leader_election { election })) };
        Ok(())
    })
}

/// Blocks until elected, calls `lead(userdata)` on this thread, and gives up leadership when
/// it returns. `*led_out` is false when `zk_leader_election_cancel` stopped the wait first.
/// `ZK_INVALID_STATE` from a watcher or completion of the election's own client.
///
/// # Safety
/// `election` is NULL or a live handle; `lead` is callable; `led_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn zk_leader_election_run(
    election: *const zk_leader_election,
    lead: zk_leader_fn,
    userdata: *mut c_void,
    led_out: *mut bool,
) -> zk_result {
    boundary(|| {
        let lead = lead.ok_or(zk_result::ZK_NULL_ARGUMENT)?;
        // SAFETY: per the contract above.
        let handle = unsafe { reference(election) }?;
        let userdata = UserData(userdata);
        // SAFETY: the caller's function with its userdata, on the caller's thread.
        let led = handle.election.run(|| unsafe { lead(userdata.get()) })?;
        // SAFETY: per the contract above.
        unsafe { write(led_out, led.is_some()) };
        Ok(())
    })
}

/// Stops contending; a running leader function is not interrupted.
///
/// # Safety
/// `election` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn zk_leader_election_cancel(
    election: *const zk_leader_election,
) -> zk_result {
    boundary(|| {
        // SAFETY: per the contract above.
        unsafe { reference(election) }?.election.cancel();
        Ok(())
    })
}

/// The identifiers of the contenders, the leader first; free with `zk_strings_free`.
///
/// # Safety
/// `election` is NULL or a live handle; `contenders_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_leader_election_contenders(
    election: *const zk_leader_election,
    contenders_out: *mut *mut zk_strings,
) -> zk_result {
    boundary(|| {
        required(contenders_out)?;
        // SAFETY: per the contract above.
        let handle = unsafe { reference(election) }?;
        // SAFETY: checked non-NULL.
        unsafe { answer_strings(handle.election.contenders(), contenders_out) }
    })
}

/// Frees the contender. NULL is ignored.
///
/// # Safety
/// `election` is NULL or a handle from this library, not used after this call.
#[no_mangle]
pub unsafe extern "C" fn zk_leader_election_free(election: *mut zk_leader_election) {
    // SAFETY: per the contract above.
    boundary_void(|| drop(unsafe { from_raw(election) }));
}

/// A leader latch participant at `path`, listed as `identifier`; `listener` (NULL for none)
/// hears each gain and loss of leadership. Nothing is created before `zk_leader_latch_start`.
///
/// # Safety
/// Pointers are NULL or valid for the call; `latch_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_leader_latch_new(
    client: *const zk_client,
    path: *const c_char,
    identifier: *const c_char,
    listener: zk_leader_listener_fn,
    listener_userdata: *mut c_void,
    latch_out: *mut *mut zk_leader_latch,
) -> zk_result {
    boundary(|| {
        required(latch_out)?;
        // SAFETY: per the contract above.
        let (handle, path, identifier) = unsafe {
            (
                reference(client)?,
                text(path)?,
                crate::boundary::optional_text(identifier)?,
            )
        };
        let latch = LeaderLatch::new(slot(handle)?, path, identifier.unwrap_or(""));
        if let Some(listener) = listener {
            let userdata = UserData(listener_userdata);
            // SAFETY: the caller's listener, run on the latch's worker thread as documented.
            latch.add_listener(Arc::new(move |leader| unsafe {
                listener(userdata.get(), leader)
            }));
        }
        // SAFETY: checked non-NULL.
        unsafe { write(latch_out, into_raw(zk_leader_latch { latch })) };
        Ok(())
    })
}

/// Joins the election in the background; `ZK_INVALID_STATE` when started or closed before.
///
/// # Safety
/// `latch` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn zk_leader_latch_start(latch: *const zk_leader_latch) -> zk_result {
    boundary(|| {
        // SAFETY: per the contract above.
        Ok(unsafe { reference(latch) }?.latch.start()?)
    })
}

/// Leaves the election (another participant takes over); the listener hears `false` only
/// with `notify_leader`. Waits up to 15 s for the znode's deletion unless called from the
/// listener. Closing twice does nothing.
///
/// # Safety
/// `latch` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn zk_leader_latch_close(
    latch: *const zk_leader_latch,
    notify_leader: bool,
) -> zk_result {
    boundary(|| {
        // SAFETY: per the contract above.
        unsafe { reference(latch) }?.latch.close(notify_leader);
        Ok(())
    })
}

/// Whether this participant leads now.
///
/// # Safety
/// `latch` is NULL or a live handle; `leader_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_leader_latch_has_leadership(
    latch: *const zk_leader_latch,
    leader_out: *mut bool,
) -> zk_result {
    boundary(|| {
        required(leader_out)?;
        // SAFETY: per the contract above.
        let leader = unsafe { reference(latch) }?.latch.has_leadership();
        // SAFETY: checked non-NULL.
        unsafe { write(leader_out, leader) };
        Ok(())
    })
}

/// Waits up to `timeout_ms` (-1: forever) until this participant leads; `*leader_out` says
/// whether it does. `ZK_INVALID_STATE` for a wait (a timeout other than 0) from a watcher or
/// completion of the latch's own client.
///
/// # Safety
/// `latch` is NULL or a live handle; `leader_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_leader_latch_await(
    latch: *const zk_leader_latch,
    timeout_ms: i64,
    leader_out: *mut bool,
) -> zk_result {
    boundary(|| {
        required(leader_out)?;
        let timeout = timeout(timeout_ms)?;
        // SAFETY: per the contract above.
        let leader = unsafe { reference(latch) }?
            .latch
            .await_leadership(timeout)?;
        // SAFETY: checked non-NULL.
        unsafe { write(leader_out, leader) };
        Ok(())
    })
}

/// The identifiers of all participants, the leader first; free with `zk_strings_free`.
///
/// # Safety
/// `latch` is NULL or a live handle; `participants_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_leader_latch_participants(
    latch: *const zk_leader_latch,
    participants_out: *mut *mut zk_strings,
) -> zk_result {
    boundary(|| {
        required(participants_out)?;
        // SAFETY: per the contract above.
        let handle = unsafe { reference(latch) }?;
        // SAFETY: checked non-NULL.
        unsafe { answer_strings(handle.latch.participants(), participants_out) }
    })
}

/// Closes (silently, if started) and frees the participant. NULL is ignored. Once it
/// returns the listener is not called again: a call in progress on the latch's worker is
/// waited for, unless this is called from that very call (then it returns at once and the
/// worker deletes the znode on its own).
///
/// # Safety
/// `latch` is NULL or a handle from this library, not used after this call.
#[no_mangle]
pub unsafe extern "C" fn zk_leader_latch_free(latch: *mut zk_leader_latch) {
    // SAFETY: per the contract above.
    boundary_void(|| drop(unsafe { from_raw(latch) }));
}
