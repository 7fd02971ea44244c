//! The `zk_ensemble` handle: an in-process ensemble for C test suites (members replicating
//! over an in-memory network, each serving ZooKeeper's client protocol on 127.0.0.1), its
//! connect string, in-process clients, and killing, restarting, partitioning and pausing its
//! members.
//!
//! Member indexes are checked before the ensemble is touched (the core panics on an index
//! past the end). Waits (for a leader, for a member to serve a new session) take the
//! ensemble's lock for one look at a time, so a kill or restart from another thread is never
//! held up behind them.

use std::collections::BTreeMap;
use std::ffi::c_char;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use zookeeper_core::{Ensemble, EnsembleConfig, ServerConfig};

use crate::boundary::{
    array, boundary, boundary_void, from_raw, into_raw, reference, required, write,
};
use crate::client::{connect_options, zk_client, zk_client_options};
use crate::owned::owned_string;
use crate::result::zk_result;
use crate::server::{clear_start_error, start_failed};

/// Most members an ensemble has (the core's `ensemble::MEMBERS_MAX`).
pub const ZK_ENSEMBLE_MEMBERS_MAX: u32 = 15;
const _: () = assert!(ZK_ENSEMBLE_MEMBERS_MAX as usize == zookeeper_core::ensemble::MEMBERS_MAX);

/// How often waits look at the ensemble again.
const POLL_INTERVAL_MS: u64 = 2;

/// How an in-process ensemble runs. Fill with `zk_ensemble_options_init`, then change what
/// you need.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct zk_ensemble_options {
    /// Voting members, 1 to `ZK_ENSEMBLE_MEMBERS_MAX`. Default 3.
    pub members: u32,
    /// ZooKeeper's tickTime in ms: session timeouts are clamped to 2..20 ticks. Default 2000.
    pub tick_ms: u32,
}

/// An ensemble of members in this process (opaque), indexed 0 to size - 1, each serving
/// ZooKeeper's client protocol on a port of 127.0.0.1 it keeps across restarts.
/// Thread-safe: any thread may call any function on it at once (kill and restart wait for
/// the calls in progress, never for a wait), except that `zk_ensemble_free` must be the last
/// call on it. Clients (`zk_ensemble_connect`, or over TCP) are handles of their own: they
/// may outlive the ensemble, disconnected, and are freed with `zk_client_free`.
pub struct zk_ensemble {
    ensemble: RwLock<Ensemble>,
    /// Each member's `127.0.0.1:port`, fixed for the ensemble's life.
    addresses: Vec<String>,
}

impl zk_ensemble {
    /// `member` as an index, if the ensemble has it.
    fn member(&self, member: u32) -> Result<usize, zk_result> {
        let member = member as usize;
        if member < self.addresses.len() {
            Ok(member)
        } else {
            Err(zk_result::ZK_INVALID_ARGUMENT)
        }
    }

    /// Looks at the ensemble every 2 ms until `look` finds something or `deadline` passes
    /// (None: without end), holding the lock for each look only. None when it passed.
    fn poll<T>(
        &self,
        deadline: Option<Instant>,
        mut look: impl FnMut(&Ensemble) -> Option<T>,
    ) -> Option<T> {
        loop {
            if let Some(found) = look(&self.ensemble.read()) {
                return Some(found);
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(POLL_INTERVAL_MS));
        }
    }
}

/// The instant `timeout_ms` from now; None for one no clock reaches (no deadline).
fn deadline(timeout_ms: u64) -> Option<Instant> {
    Instant::now().checked_add(Duration::from_millis(timeout_ms))
}

/// Fills `options` with the defaults: 3 members, 2 s ticks.
///
/// # Safety
/// `options` is NULL or points to writable memory for a `zk_ensemble_options`.
#[no_mangle]
pub unsafe extern "C" fn zk_ensemble_options_init(options: *mut zk_ensemble_options) -> zk_result {
    boundary(|| {
        required(options)?;
        let defaults = zk_ensemble_options {
            members: 3,
            tick_ms: ServerConfig::default().tick_ms,
        };
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { write(options, defaults) };
        Ok(())
    })
}

/// Starts an in-process ensemble; `options` may be NULL for the defaults. Returns once every
/// member runs (a leader follows within ~100-200 ms: `zk_ensemble_wait_for_leader`).
/// `ZK_START_FAILED` for a member count outside 1..`ZK_ENSEMBLE_MEMBERS_MAX`, an invalid
/// tick or a port that cannot be bound (`zk_server_start_error` says which).
///
/// # Safety
/// Pointers are NULL or valid as documented; `ensemble_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_ensemble_start(
    options: *const zk_ensemble_options,
    ensemble_out: *mut *mut zk_ensemble,
) -> zk_result {
    boundary(|| {
        clear_start_error();
        required(ensemble_out)?;
        let mut config = EnsembleConfig {
            client_ports: true,
            ..EnsembleConfig::default()
        };
        // SAFETY: per the contract above.
        if let Some(options) = unsafe { options.as_ref() } {
            config.members = options.members as usize;
            config.server.tick_ms = options.tick_ms;
        } else {
            config.server.tick_ms = ServerConfig::default().tick_ms;
        }
        let ensemble =
            Ensemble::start_with(config).map_err(|error| start_failed(error.to_string()))?;
        let addresses = ensemble
            .client_addresses()
            .iter()
            .map(ToString::to_string)
            .collect();
        let handle = zk_ensemble {
            ensemble: RwLock::new(ensemble),
            addresses,
        };
        // SAFETY: checked non-NULL.
        unsafe { write(ensemble_out, into_raw(handle)) };
        Ok(())
    })
}

/// How many members the ensemble has, running or not.
///
/// # Safety
/// `ensemble` is NULL or a live handle; `members_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_ensemble_size(
    ensemble: *const zk_ensemble,
    members_out: *mut u32,
) -> zk_result {
    boundary(|| {
        required(members_out)?;
        // SAFETY: per the contract above.
        let handle = unsafe { reference(ensemble) }?;
        // SAFETY: checked non-NULL; at most ZK_ENSEMBLE_MEMBERS_MAX members.
        unsafe { write(members_out, handle.addresses.len() as u32) };
        Ok(())
    })
}

/// Every member's `127.0.0.1:port`, comma-separated: a connect string for
/// `zk_client_connect` (or any ZooKeeper client), which fails over between members. The
/// ports do not change while the ensemble lives. Free `*connect_string_out` with
/// `zk_string_free`.
///
/// # Safety
/// `ensemble` is NULL or a live handle; `connect_string_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_ensemble_connect_string(
    ensemble: *const zk_ensemble,
    connect_string_out: *mut *mut c_char,
) -> zk_result {
    boundary(|| {
        required(connect_string_out)?;
        // SAFETY: per the contract above.
        let handle = unsafe { reference(ensemble) }?;
        let connect_string = handle.addresses.join(",");
        // SAFETY: checked non-NULL.
        unsafe { write(connect_string_out, owned_string(&connect_string)) };
        Ok(())
    })
}

/// `127.0.0.1:port` where `member` serves TCP clients, the same across its restarts.
/// `ZK_INVALID_ARGUMENT` for a member the ensemble does not have. Free `*address_out` with
/// `zk_string_free`.
///
/// # Safety
/// `ensemble` is NULL or a live handle; `address_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_ensemble_client_address(
    ensemble: *const zk_ensemble,
    member: u32,
    address_out: *mut *mut c_char,
) -> zk_result {
    boundary(|| {
        required(address_out)?;
        // SAFETY: per the contract above.
        let handle = unsafe { reference(ensemble) }?;
        let address = &handle.addresses[handle.member(member)?];
        // SAFETY: checked non-NULL.
        unsafe { write(address_out, owned_string(address)) };
        Ok(())
    })
}

/// Runs `change` on the ensemble after checking the handle and `member`.
///
/// # Safety
/// `ensemble` is NULL or a live handle.
unsafe fn change_member(
    ensemble: *const zk_ensemble,
    member: u32,
    change: impl FnOnce(&RwLock<Ensemble>, usize) -> Result<(), zk_result>,
) -> zk_result {
    boundary(|| {
        // SAFETY: per the contract above.
        let handle = unsafe { reference(ensemble) }?;
        let member = handle.member(member)?;
        change(&handle.ensemble, member)
    })
}

/// Crashes `member` as kill -9 would: its port closes, its clients are disconnected, its
/// disk keeps only what it made durable. Nothing for a member that is down.
/// `ZK_INVALID_ARGUMENT` for a member the ensemble does not have.
///
/// # Safety
/// `ensemble` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn zk_ensemble_kill(ensemble: *const zk_ensemble, member: u32) -> zk_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        change_member(ensemble, member, |ensemble, member| {
            ensemble.write().kill(member);
            Ok(())
        })
    }
}

/// Starts `member` again on its disk and port (a running member is killed first); it
/// rejoins and catches up. `ZK_START_FAILED` if its port was taken meanwhile
/// (`zk_server_start_error` says so); `ZK_INVALID_ARGUMENT` for a member the ensemble does
/// not have.
///
/// # Safety
/// `ensemble` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn zk_ensemble_restart(
    ensemble: *const zk_ensemble,
    member: u32,
) -> zk_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        change_member(ensemble, member, |ensemble, member| {
            clear_start_error();
            ensemble
                .write()
                .restart(member)
                .map_err(|error| start_failed(error.to_string()))
        })
    }
}

/// Splits the members into groups that reach only each other: `group_of_member[i]` is
/// member i's group, any number; members with the same number reach each other, and no
/// other member (a number of its own isolates a member). `members` must be the ensemble's
/// size (else `ZK_INVALID_ARGUMENT`, and nothing changes). Replaces any earlier partition;
/// clients still reach every running member.
///
/// # Safety
/// `ensemble` is NULL or a live handle; `group_of_member` points to `members` readable
/// numbers.
#[no_mangle]
pub unsafe extern "C" fn zk_ensemble_partition(
    ensemble: *const zk_ensemble,
    group_of_member: *const u32,
    members: usize,
) -> zk_result {
    boundary(|| {
        // SAFETY: per the contract above.
        let (handle, group_of_member) =
            unsafe { (reference(ensemble)?, array(group_of_member, members)?) };
        if group_of_member.len() != handle.addresses.len() {
            return Err(zk_result::ZK_INVALID_ARGUMENT);
        }
        let mut groups: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (member, group) in group_of_member.iter().enumerate() {
            groups.entry(*group).or_default().push(member);
        }
        let groups: Vec<&[usize]> = groups.values().map(Vec::as_slice).collect();
        handle.ensemble.read().partition(&groups);
        Ok(())
    })
}

/// Cuts `member` off from every other member. `ZK_INVALID_ARGUMENT` for a member the
/// ensemble does not have.
///
/// # Safety
/// `ensemble` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn zk_ensemble_isolate(
    ensemble: *const zk_ensemble,
    member: u32,
) -> zk_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        change_member(ensemble, member, |ensemble, member| {
            ensemble.read().isolate(member);
            Ok(())
        })
    }
}

/// Every member reaches every other again.
///
/// # Safety
/// `ensemble` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn zk_ensemble_heal(ensemble: *const zk_ensemble) -> zk_result {
    boundary(|| {
        // SAFETY: per the contract above.
        unsafe { reference(ensemble) }?.ensemble.read().heal();
        Ok(())
    })
}

/// Stops `member` as SIGSTOP would: it answers no peer and no client until
/// `zk_ensemble_resume` (calls of its in-process clients wait meanwhile). Nothing for a
/// member that is down. `ZK_INVALID_ARGUMENT` for a member the ensemble does not have.
///
/// # Safety
/// `ensemble` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn zk_ensemble_pause(ensemble: *const zk_ensemble, member: u32) -> zk_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        change_member(ensemble, member, |ensemble, member| {
            ensemble.read().pause(member);
            Ok(())
        })
    }
}

/// Continues a paused member. `ZK_INVALID_ARGUMENT` for a member the ensemble does not have.
///
/// # Safety
/// `ensemble` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn zk_ensemble_resume(
    ensemble: *const zk_ensemble,
    member: u32,
) -> zk_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        change_member(ensemble, member, |ensemble, member| {
            ensemble.read().resume(member);
            Ok(())
        })
    }
}

/// The member that leads and serves now, or -1 when none does (an election, no quorum).
///
/// # Safety
/// `ensemble` is NULL or a live handle; `leader_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_ensemble_leader(
    ensemble: *const zk_ensemble,
    leader_out: *mut i32,
) -> zk_result {
    boundary(|| {
        required(leader_out)?;
        // SAFETY: per the contract above.
        let leader = unsafe { reference(ensemble) }?.ensemble.read().leader();
        // SAFETY: checked non-NULL.
        unsafe { write(leader_out, leader.map_or(-1, |leader| leader as i32)) };
        Ok(())
    })
}

/// Waits up to `timeout_ms` (0 or more) for a member to lead and serve, and writes it to
/// `*leader_out` (which may be NULL). `ZK_TIMED_OUT` when none did in time;
/// `ZK_INVALID_ARGUMENT` for a negative timeout.
///
/// # Safety
/// `ensemble` is NULL or a live handle; `leader_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn zk_ensemble_wait_for_leader(
    ensemble: *const zk_ensemble,
    timeout_ms: i64,
    leader_out: *mut i32,
) -> zk_result {
    boundary(|| {
        // SAFETY: per the contract above.
        let handle = unsafe { reference(ensemble) }?;
        let timeout_ms = u64::try_from(timeout_ms).map_err(|_| zk_result::ZK_INVALID_ARGUMENT)?;
        let leader = handle
            .poll(deadline(timeout_ms), Ensemble::leader)
            .ok_or(zk_result::ZK_TIMED_OUT)?;
        // SAFETY: NULL or writable per the contract.
        unsafe { write(leader_out, leader as i32) };
        Ok(())
    })
}

/// Opens an in-process session (no TCP) on `member`, waiting up to the connect timeout
/// (`connect_timeout_ms`, by default the session timeout) for it to serve: a member without
/// its quorum, or paused, does not. `ZK_CONNECTIONLOSS` for a member that is down or did not
/// serve in time; `ZK_INVALID_ARGUMENT` for a member the ensemble does not have. `options`
/// may be NULL. The client does not follow its member's restart: a killed member's clients
/// answer `ZK_CONNECTIONLOSS` until freed.
///
/// # Safety
/// Pointers are NULL or valid as documented; `client_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_ensemble_connect(
    ensemble: *const zk_ensemble,
    member: u32,
    options: *const zk_client_options,
    client_out: *mut *mut zk_client,
) -> zk_result {
    boundary(|| {
        required(client_out)?;
        // SAFETY: per the contract above.
        let (handle, options) = unsafe { (reference(ensemble)?, connect_options(options)?) };
        let member = handle.member(member)?;
        let timeout_ms = options
            .connect_timeout_ms
            .unwrap_or(options.session_timeout_ms.max(0) as u64);
        let client = handle
            .poll(deadline(timeout_ms), |ensemble| {
                ensemble.try_connect(member, options.clone())
            })
            .ok_or(zk_result::ZK_CONNECTIONLOSS)?
            .map_err(|error| zk_result::from(&error))?;
        // SAFETY: checked non-NULL.
        unsafe { write(client_out, into_raw(zk_client::new(client))) };
        Ok(())
    })
}

/// Stops every member and frees the ensemble. NULL is ignored. Its clients are
/// disconnected; free them with `zk_client_free` (before or after).
///
/// # Safety
/// `ensemble` is NULL or a handle from this library, not used after this call.
#[no_mangle]
pub unsafe extern "C" fn zk_ensemble_free(ensemble: *mut zk_ensemble) {
    // SAFETY: per the contract above.
    boundary_void(|| drop(unsafe { from_raw(ensemble) }));
}
