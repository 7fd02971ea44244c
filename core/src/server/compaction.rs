//! Snapshots and compaction: a member writes a durable snapshot once `snap_count` entries
//! applied since the last one and keeps it for followers too far behind; the log's memory is
//! compacted up to it (a single member, which has no follower, up to what it applied), and
//! log segments only purged snapshots needed are deleted.

use std::io;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Instant;

use raft::eraftpb::Snapshot;

use crate::random::SplitMix64;
use crate::replication::log::snapshot_metadata;
use crate::server::driver::Driver;
use crate::server::engine::Engine;
use crate::server::recovery::membership_of;
use crate::storage::{encode_payload, SnapshotMeta};

/// Applied entries a single member lets pile up before it drops them.
const SINGLE_MEMBER_ENTRIES_MAX: usize = 256;

/// Trees larger than this snapshot at most once per as many Txns as they have znodes.
const SNAPSHOT_AMORTIZED_FROM_ZNODES: u64 = 100_000;

/// A durable snapshot being written on its own thread.
pub(super) struct SnapshotInFlight {
    snapshot: Snapshot,
    /// When it was begun (encoding included), for the snapshottime metric.
    started: Instant,
    writing: JoinHandle<io::Result<()>>,
}

impl Driver {
    /// Writes a snapshot once `snap_count` entries applied since the last one, then drops
    /// the snapshots past `snapshots_retained` and the log only they needed. The tree is
    /// read-locked while it is encoded, so the snapshot is exact. A member that drives on its
    /// own thread writes and fsyncs the file on another one, as ZooKeeper snapshots in the
    /// background: the pipeline does not stop for the disk (that was a second-long stall at
    /// a million znodes). A simulation (the caller drives, time is manual) writes in place,
    /// so a seed replays.
    pub(super) fn snapshot_if_due(&mut self, engine: &Engine) {
        let Some(store) = &engine.snapshots else {
            return;
        };
        if let Some(in_flight) = self.snapshot_in_flight.take() {
            if !in_flight.writing.is_finished() {
                self.snapshot_in_flight = Some(in_flight);
                return;
            }
            let result = in_flight
                .writing
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the snapshot writer panicked")));
            self.snapshot_written(engine, in_flight.snapshot, in_flight.started, result);
        }
        let since = self
            .applied
            .saturating_sub(engine.snapshot_index.load(Ordering::Acquire));
        if since == 0 {
            return;
        }
        // A snapshot costs time in proportion to the tree (it is encoded under the tree's
        // read lock), so past SNAPSHOT_AMORTIZED_FROM_ZNODES it waits for at least as many
        // Txns as the tree has znodes: the cost per Txn stays bounded however large the tree
        // grows, and recovery replays no more Txns than a snapshot would have loaded znodes.
        let znodes = engine.znode_count() as u64;
        let interval = if znodes > SNAPSHOT_AMORTIZED_FROM_ZNODES {
            engine.config.snap_count.max(znodes)
        } else {
            engine.config.snap_count
        };
        // Between half the interval and all of it, drawn per member and per snapshot, as
        // ZooKeeper rolls snapCount: members that applied the same entries would otherwise
        // encode at the same moment, and an encode holds up the driver (at 800,000 znodes,
        // three members encoding at once on two cores kept a leader's heartbeats back long
        // enough for its followers to elect another).
        let last_snapshot = engine.snapshot_index.load(Ordering::Acquire);
        let mut roll = SplitMix64::new(last_snapshot ^ (u64::from(engine.config.member_id) << 56));
        let due = interval / 2 + roll.below(interval.div_ceil(2));
        if since < due || self.replica.is_none() {
            return;
        }
        let started = Instant::now();
        let Some(snapshot) = self.snapshot_now(engine) else {
            return;
        };
        let index = snapshot.get_metadata().index;
        if engine.threaded && !engine.clock.is_manual() {
            let store = store.clone();
            let data = snapshot.data.clone();
            let writing = std::thread::Builder::new()
                .name("zk-snapshot".into())
                .spawn(move || store.write(index as i64, &data));
            match writing {
                Ok(writing) => {
                    self.snapshot_in_flight = Some(SnapshotInFlight {
                        snapshot,
                        started,
                        writing,
                    });
                    return;
                }
                // No thread to spare: write it here.
                Err(error) => tracing::warn!(%error, "snapshot written on the driver thread"),
            }
        }
        let result = store.write(index as i64, &snapshot.data);
        self.snapshot_written(engine, snapshot, started, result);
    }

    /// Waits for a snapshot still being written (the member stops).
    pub(super) fn finish_snapshot(&mut self, engine: &Engine) {
        if let Some(in_flight) = self.snapshot_in_flight.take() {
            let result = in_flight
                .writing
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the snapshot writer panicked")));
            self.snapshot_written(engine, in_flight.snapshot, in_flight.started, result);
        }
    }

    /// A snapshot file is durable (or failed): it counts from now on, and what it made
    /// unnecessary goes.
    fn snapshot_written(
        &mut self,
        engine: &Engine,
        snapshot: Snapshot,
        started: Instant,
        result: io::Result<()>,
    ) {
        let Some(store) = &engine.snapshots else {
            return;
        };
        if let Err(error) = result {
            return self.fail(engine, error);
        }
        engine
            .metrics()
            .snapshot_time
            .add_duration(started.elapsed());
        let index = snapshot.get_metadata().index;
        engine.snapshot_index.store(index, Ordering::Release);
        tracing::info!(
            zxid = format_args!("0x{index:x}"),
            bytes = snapshot.data.len(),
            "snapshot written"
        );
        let purge = store.purge(engine.config.snapshots_retained);
        let Some(replica) = &mut self.replica else {
            return;
        };
        if engine.config.is_ensemble() {
            replica.log_mut().set_snapshot(snapshot);
        }
        match purge {
            Ok(Some(oldest)) => {
                if let Err(error) = replica.log_mut().purge_through(oldest as u64) {
                    self.fail(engine, error);
                }
            }
            Ok(None) => {}
            // A snapshot that could not be removed costs disk space, nothing more.
            Err(error) => tracing::warn!(%error, "old snapshots not purged"),
        }
    }

    /// Bounds the entries kept in memory: a single member drops what it applied; an ensemble
    /// member keeps the newest `log_entries_max` for followers a little behind, and a leader
    /// also what its streaming followers still lack (up to `lagging_follower_log_bytes_max`).
    /// No snapshot is taken to compact (at a million znodes one costs a fraction of a second
    /// under the tree's lock): only when raft asks for one a follower needs.
    pub(super) fn compact_if_due(&mut self, engine: &Engine) {
        let Some(replica) = &self.replica else {
            return;
        };
        // A follower needs entries compacted away: it gets a snapshot of the tree as applied.
        if replica.log().take_snapshot_wanted() {
            if let Some(snapshot) = self.snapshot_now(engine) {
                if let Some(replica) = &mut self.replica {
                    replica.log_mut().set_snapshot(snapshot);
                }
            }
            return;
        }
        // A single member has no follower to catch up: what it applied, it drops (in batches,
        // so the log's memory is reused rather than churned).
        if !engine.config.is_ensemble() {
            if replica.log().entries_in_memory() > SINGLE_MEMBER_ENTRIES_MAX {
                let applied = self.applied;
                if let Some(replica) = &mut self.replica {
                    replica.log_mut().compact_through(applied);
                }
            }
            return;
        }
        if replica.log().entries_in_memory() <= engine.config.log_entries_max {
            return;
        }
        let recent_from = replica
            .last_index()
            .saturating_sub(engine.config.log_entries_max as u64);
        let mut through = self.applied.min(recent_from);
        if let Some(matched) = replica.slowest_streaming_match() {
            if replica.log().bytes_in_memory() <= engine.config.lagging_follower_log_bytes_max {
                through = through.min(matched);
            }
        }
        if let Some(replica) = &mut self.replica {
            replica.log_mut().compact_through(through);
        }
    }

    /// A raft snapshot of the tree as applied now: the snapshot file's payload, with the
    /// index, term and membership it was taken at.
    fn snapshot_now(&self, engine: &Engine) -> Option<Snapshot> {
        let replica = self.replica.as_ref()?;
        let tree = engine.tree.read();
        let index = tree.last_zxid() as u64;
        let term = replica.term_of(index)?;
        let conf_state = replica.conf_state();
        let meta = SnapshotMeta {
            index,
            term,
            membership: membership_of(&conf_state),
        };
        let payload = encode_payload(&meta, &tree.to_snapshot());
        drop(tree);
        let mut snapshot = Snapshot {
            data: payload.into(),
            ..Snapshot::default()
        };
        snapshot.set_metadata(snapshot_metadata(index, term, &conf_state));
        Some(snapshot)
    }
}
