//! Replicate, persist, apply: Txns are proposed in prepare order, made durable in batches (one
//! commit covers every Txn proposed so far: group commit) and applied in zxid order, their
//! watches fired as they apply.
//!
//! A writer proposes under the writer lock, then lets go of it while its Txn commits, so the
//! next writer can prepare (against the pending changes) and propose meanwhile; whoever finds
//! committed Txns first applies them all, in order. Locks: writer -> log -> applying, and
//! applying -> tree -> watches -> sessions; pending alone after applying.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;

use super::engine::Engine;
use crate::prepare::Prepare;
use crate::proto::{ErrorCode, Perms};
use crate::tree::{acl, Applied};
use crate::txn::Txn;

/// A proposed Txn waiting to be applied.
pub(super) struct Queued {
    zxid: i64,
    txn: Arc<Txn>,
    slot: Arc<Slot>,
}

/// Where the applier leaves a Txn's outcome for its proposer.
#[derive(Default)]
pub(super) struct Slot(Mutex<Option<Applied>>);

/// A proposal's claim on its outcome.
pub struct Ticket {
    zxid: i64,
    slot: Arc<Slot>,
}

impl Engine {
    /// Runs `prepare_with` against the tree plus the pending changes, for the Txn that will get
    /// the next zxid. The caller holds the writer lock.
    pub(super) fn prepare<R>(&self, prepare_with: impl FnOnce(&mut Prepare<'_>) -> R) -> R {
        let zxid = self.log.lock().next_zxid();
        let tree = self.tree.read();
        let mut pending = self.pending.lock();
        let mut prepare = Prepare::new(&tree, &mut pending, &self.limits, zxid);
        prepare_with(&mut prepare)
    }

    /// Proposes a prepared Txn. The caller holds the writer lock, so zxids follow prepare order.
    pub(super) fn propose(&self, txn: Txn) -> Result<Ticket, ErrorCode> {
        if self.failed.load(Ordering::Acquire) {
            return Err(ErrorCode::SystemError);
        }
        let txn = Arc::new(txn);
        let zxid = match self.log.lock().propose(txn.clone()) {
            Ok(zxid) => zxid,
            Err(error) => return Err(self.fail(error)),
        };
        let slot = Arc::new(Slot::default());
        self.applying.lock().push_back(Queued {
            zxid,
            txn,
            slot: slot.clone(),
        });
        Ok(Ticket { zxid, slot })
    }

    /// Waits until the proposal is committed and applied; answers its outcome. Needs no lock:
    /// the reply to a write is sent only after its Txn is durable.
    pub(super) fn complete(&self, ticket: Ticket) -> Result<Applied, ErrorCode> {
        let committed = {
            let mut log = self.log.lock();
            if log.committed_zxid() >= ticket.zxid {
                log.committed_zxid()
            } else {
                match log.commit() {
                    Ok(zxid) => zxid,
                    Err(error) => return Err(self.fail(error)),
                }
            }
        };
        self.apply_committed(committed);
        let applied = ticket.slot.0.lock().take();
        applied.ok_or(ErrorCode::SystemError)
    }

    /// Proposes and completes in one go (for callers that keep the writer lock throughout).
    pub(super) fn commit(&self, txn: Txn) -> Result<Applied, ErrorCode> {
        let ticket = self.propose(txn)?;
        self.complete(ticket)
    }

    /// Writes a snapshot once `snap_count` Txns have applied since the last one, then drops the
    /// snapshots past `snapshots_retained` and the log only they needed. Runs outside the
    /// writer lock; the tree is read-locked while it is encoded, so the snapshot is exact.
    pub(super) fn snapshot_if_due(&self) {
        let Some(store) = &self.snapshots else {
            return;
        };
        if self.failed.load(Ordering::Acquire)
            || self.last_zxid() - self.snapshot_zxid.load(Ordering::Acquire)
                < self.config.snap_count as i64
        {
            return;
        }
        let (zxid, bytes) = {
            let tree = self.tree.read();
            (tree.last_zxid(), tree.to_snapshot())
        };
        if let Err(error) = store.write(zxid, &bytes) {
            self.fail(error);
            return;
        }
        self.snapshot_zxid.store(zxid, Ordering::Release);
        tracing::info!(
            zxid = format_args!("0x{zxid:x}"),
            bytes = bytes.len(),
            "snapshot written"
        );
        match store.purge(self.config.snapshots_retained) {
            Ok(Some(oldest)) => {
                if let Err(error) = self.log.lock().purge_through(oldest) {
                    self.fail(error);
                }
            }
            Ok(None) => {}
            // A snapshot that could not be removed costs disk space, nothing more.
            Err(error) => tracing::warn!(%error, "old snapshots not purged"),
        }
    }

    /// The member cannot promise durability anymore: it stops accepting writes (fail-stop),
    /// and what it prepared will never apply.
    fn fail(&self, error: std::io::Error) -> ErrorCode {
        tracing::error!(%error, "the log failed; this member stops accepting writes");
        self.failed.store(true, Ordering::Release);
        self.pending.lock().clear();
        ErrorCode::SystemError
    }

    /// Applies, in zxid order, every queued Txn committed through `committed`.
    fn apply_committed(&self, committed: i64) {
        let mut applied_through = None;
        {
            let mut queue = self.applying.lock();
            while queue.front().is_some_and(|queued| queued.zxid <= committed) {
                let queued = queue.pop_front().expect("front checked");
                let applied = self.apply(queued.zxid, &queued.txn);
                *queued.slot.0.lock() = Some(applied);
                applied_through = Some(queued.zxid);
            }
        }
        if let Some(zxid) = applied_through {
            self.pending.lock().applied_through(zxid);
        }
    }

    /// Applies one Txn and fires its watches before any later read can see its change.
    fn apply(&self, zxid: i64, txn: &Txn) -> Applied {
        let mut tree = self.tree.write();
        let applied = tree.apply(zxid, txn);
        if !applied.changes.is_empty() {
            let mut events = Vec::new();
            // The change each event came from, for its ACL.
            let mut sources = Vec::new();
            let mut watches = self.watches.lock();
            for (index, change) in applied.changes.iter().enumerate() {
                watches.fire(change, zxid, &mut events);
                sources.resize(events.len(), index);
            }
            drop(watches);
            if !events.is_empty() {
                let sessions = self.sessions.read();
                for ((session_id, event), index) in events.into_iter().zip(sources) {
                    let Some(session) = sessions.get(&session_id) else {
                        continue;
                    };
                    // As ZooKeeper 3.9 (CVE-2024-23944): a session hears only of znodes it may
                    // read; the watch is used up all the same.
                    if acl::check(
                        &applied.changes[index].acl,
                        Perms::READ,
                        &session.identities(),
                    ) {
                        session.deliver(event);
                    }
                }
            }
        }
        drop(tree);
        applied
    }
}
