//! Every ZooKeeper operation, blocking and with a completion callback (`_async`). Each
//! operation's arguments are read once into an `Op` by its request builder; the blocking form
//! writes the answer to out-parameters (only on success), the async form hands it to the
//! completion on the client's dispatcher thread, with no thread per call. `nodes.rs` has the
//! znode operations, `batches.rs` ACLs and multi, `session.rs` the rest.

mod batches;
pub(crate) mod nodes;
mod session;

pub use session::{zk_add_watch_mode, zk_watcher_type};

use std::ffi::c_void;

use zookeeper_core::op::Op;
use zookeeper_core::Watcher;

use crate::answer::{call, call_async, zk_completion_fn, Answer};
use crate::boundary::{boundary, reference, write, Outcome, UserData};
use crate::client::zk_client;
use crate::result::zk_result;
use crate::types::zk_stat;

/// A request ready to send: the op and the watcher it leaves.
pub(crate) type Request = (Op, Option<Watcher>);

/// Runs a blocking call: builds the request, waits, hands the answer to `deliver`.
///
/// # Safety
/// `client` is NULL or a live handle.
pub(crate) unsafe fn blocking(
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
pub(crate) unsafe fn asynchronous(
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
pub(crate) unsafe fn deliver_stat(answer: &Answer, stat_out: *mut zk_stat) {
    if let Some(stat) = answer.stat {
        // SAFETY: per the caller's contract.
        unsafe { write(stat_out, stat) };
    }
}
