//! Snapshots and compaction: a member writes a durable snapshot once `snap_count` entries
//! applied since the last one and keeps it for followers too far behind; the log's memory is
//! compacted up to it (a single member, which has no follower, up to what it applied), and
//! log segments only purged snapshots needed are deleted.

use std::io;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use raft::eraftpb::{ConfState, Snapshot};

use crate::random::SplitMix64;
use crate::replication::log::snapshot_metadata;
use crate::server::driver::Driver;
use crate::server::engine::Engine;
use crate::server::recovery::membership_of;
use crate::storage::{encode_payload, SnapshotMeta};
use crate::tree::FrozenTree;

/// Applied entries a single member lets pile up before it drops them.
const SINGLE_MEMBER_ENTRIES_MAX: usize = 256;

/// Trees larger than this snapshot at most once per as many Txns as they have znodes.
const SNAPSHOT_AMORTIZED_FROM_ZNODES: u64 = 100_000;

/// A snapshot being encoded (and, when durable, written) on its own thread.
pub(super) struct SnapshotInFlight {
    taking: JoinHandle<io::Result<Taken>>,
    /// Written to the snapshot store (a periodic snapshot), or only kept in memory for a
    /// follower (one raft asked for).
    durable: bool,
}

/// What taking a snapshot gives back.
struct Taken {
    snapshot: Snapshot,
    /// Encoding it and writing it (with its fsync), for the snapshottime metric.
    took: Duration,
    /// The oldest snapshot kept once older ones were removed (durable snapshots only): the
    /// log is needed only after it.
    oldest_kept: Option<i64>,
}

/// The tree as applied at one index, with what its snapshot's metadata needs.
struct FrozenSnapshot {
    tree: FrozenTree,
    meta: SnapshotMeta,
    conf_state: ConfState,
}

impl FrozenSnapshot {
    /// The raft snapshot: the snapshot file's payload, with its index, term and membership.
    fn encode(self) -> Snapshot {
        let payload = encode_payload(&self.meta, &self.tree.encode());
        let mut snapshot = Snapshot {
            data: payload.into(),
            ..Snapshot::default()
        };
        snapshot.set_metadata(snapshot_metadata(
            self.meta.index,
            self.meta.term,
            &self.conf_state,
        ));
        snapshot
    }
}

impl Driver {
    /// Writes a snapshot once `snap_count` entries applied since the last one, then drops
    /// the snapshots past `snapshots_retained` and the log only they needed.
    pub(super) fn snapshot_if_due(&mut self, engine: &Engine) {
        if engine.snapshots.is_none() || self.snapshot_pending(engine) {
            return;
        }
        let since = self
            .applied
            .saturating_sub(engine.snapshot_index.load(Ordering::Acquire));
        if since == 0 {
            return;
        }
        // A snapshot costs time in proportion to the tree, so past
        // SNAPSHOT_AMORTIZED_FROM_ZNODES it waits for at least as many Txns as the tree has
        // znodes: the cost per Txn stays bounded however large the tree grows, and recovery
        // replays no more Txns than a snapshot would have loaded znodes.
        let znodes = engine.znode_count() as u64;
        let interval = if znodes > SNAPSHOT_AMORTIZED_FROM_ZNODES {
            engine.config.snap_count.max(znodes)
        } else {
            engine.config.snap_count
        };
        // Between half the interval and all of it, drawn per member and per snapshot, as
        // ZooKeeper rolls snapCount: members that applied the same entries would otherwise
        // encode at the same moment, on cores they share on a small machine.
        let last_snapshot = engine.snapshot_index.load(Ordering::Acquire);
        let mut roll = SplitMix64::new(last_snapshot ^ (u64::from(engine.config.member_id) << 56));
        let due = interval / 2 + roll.below(interval.div_ceil(2));
        if since >= due {
            self.take_snapshot(engine, true);
        }
    }

    /// Freezes the tree as applied (a pointer per 4,096 znodes, under the tree's read lock)
    /// and encodes it, then writes and fsyncs it when `durable`. A member that drives on its
    /// own thread does both on another one, as ZooKeeper snapshots in the background: the
    /// pipeline goes on applying while a million znodes are encoded (under the read lock,
    /// that held every write for a third of a second). A simulation (the caller drives,
    /// time is manual) does it in place, so a seed replays.
    fn take_snapshot(&mut self, engine: &Engine, durable: bool) {
        let Some(frozen) = self.freeze(engine) else {
            return;
        };
        let store = if durable {
            engine.snapshots.clone()
        } else {
            None
        };
        let keep = engine.config.snapshots_retained;
        let background = self.in_background(engine);
        let take = move || -> io::Result<Taken> {
            let started = Instant::now();
            let snapshot = frozen.encode();
            let mut oldest_kept = None;
            let mut took = started.elapsed();
            if let Some(store) = store {
                store.write(snapshot.get_metadata().index as i64, &snapshot.data)?;
                took = started.elapsed();
                // Purging verifies (reads) every snapshot kept and removes the others: here,
                // not on the driver. A snapshot not removed costs disk space, nothing more.
                let purged = store.detach(keep).and_then(|(oldest, removal)| {
                    oldest_kept = oldest;
                    if background {
                        removal.run_paced()
                    } else {
                        removal.run()
                    }
                });
                if let Err(error) = purged {
                    tracing::warn!(%error, "old snapshots not purged");
                }
            }
            Ok(Taken {
                snapshot,
                took,
                oldest_kept,
            })
        };
        if self.in_background(engine) {
            let spawned = std::thread::Builder::new()
                .name("zk-snapshot".into())
                .spawn(take);
            match spawned {
                Ok(taking) => self.snapshot_in_flight = Some(SnapshotInFlight { taking, durable }),
                // Nothing is lost: the snapshot stays due (or wanted) and is tried again.
                Err(error) => tracing::warn!(%error, "no thread to take a snapshot on"),
            }
            return;
        }
        self.snapshot_taken(engine, durable, take());
    }

    /// Whether disk work goes to threads of its own: yes when the member drives on its own
    /// thread; a simulation (the caller drives, time is manual) does it in place, so a seed
    /// replays.
    fn in_background(&self, engine: &Engine) -> bool {
        engine.threaded && !engine.clock.is_manual()
    }

    /// True while a snapshot is still being taken; collects one that has finished.
    fn snapshot_pending(&mut self, engine: &Engine) -> bool {
        let Some(in_flight) = self.snapshot_in_flight.take() else {
            return false;
        };
        if !in_flight.taking.is_finished() {
            self.snapshot_in_flight = Some(in_flight);
            return true;
        }
        self.collect_snapshot(engine, in_flight);
        false
    }

    /// Waits for a snapshot still being taken (the member stops).
    pub(super) fn finish_snapshot(&mut self, engine: &Engine) {
        if let Some(in_flight) = self.snapshot_in_flight.take() {
            self.collect_snapshot(engine, in_flight);
        }
    }

    fn collect_snapshot(&mut self, engine: &Engine, in_flight: SnapshotInFlight) {
        let result = in_flight
            .taking
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the snapshot thread panicked")));
        self.snapshot_taken(engine, in_flight.durable, result);
    }

    /// A snapshot is taken: a durable one counts from now on (`snapshot_written`); one raft
    /// asked for goes to the followers that need it.
    fn snapshot_taken(&mut self, engine: &Engine, durable: bool, result: io::Result<Taken>) {
        match result {
            Err(error) => self.fail(engine, error),
            Ok(taken) if durable => self.snapshot_written(engine, taken),
            Ok(taken) => {
                if let Some(replica) = &mut self.replica {
                    replica.log_mut().set_snapshot(taken.snapshot);
                }
            }
        }
    }

    /// A snapshot file is durable: it counts from now on, and the log segments only older
    /// snapshots needed go, removed a step at a time on a thread of their own: unlinking a
    /// 64 MiB segment takes 10-20 ms on ext4 and holds up the log's next fsync, and with
    /// several removed on the driver a 3-member ensemble's setData p99 was 142 ms instead of
    /// 34 (`FileRemoval::run_paced`).
    fn snapshot_written(&mut self, engine: &Engine, taken: Taken) {
        let index = taken.snapshot.get_metadata().index;
        // A snapshot installed from the leader while this one was written may be newer.
        engine.snapshot_index.fetch_max(index, Ordering::AcqRel);
        engine.metrics().snapshot_time.add_duration(taken.took);
        tracing::info!(
            zxid = format_args!("0x{index:x}"),
            bytes = taken.snapshot.data.len(),
            took_ms = taken.took.as_millis() as u64,
            "snapshot written"
        );
        let background = self.in_background(engine);
        let Some(replica) = &mut self.replica else {
            return;
        };
        if engine.config.is_ensemble() {
            replica.log_mut().set_snapshot(taken.snapshot);
        }
        let Some(oldest) = taken.oldest_kept else {
            return;
        };
        let removal = match replica.log_mut().detach_through(oldest as u64) {
            Ok(Some(removal)) if !removal.is_empty() => removal,
            Ok(_) => return,
            Err(error) => return self.fail(engine, error),
        };
        // A segment not removed costs disk space; recovery takes it as not purged yet.
        let warn = |error: io::Error| tracing::warn!(%error, "old log segments not removed");
        if !background {
            return removal.run().unwrap_or_else(warn);
        }
        let remove = move || removal.run_paced().unwrap_or_else(warn);
        if let Err(error) = std::thread::Builder::new()
            .name("zk-log-purge".into())
            .spawn(remove)
        {
            tracing::warn!(%error, "no thread to remove old log segments on");
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
        // A follower needs entries compacted away: it gets a snapshot of the tree as applied
        // (or of the one being taken; raft asks again until it has one new enough).
        if replica.log().take_snapshot_wanted() {
            if !self.snapshot_pending(engine) {
                self.take_snapshot(engine, false);
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

    /// The tree as applied now, with the index, term and membership it was applied at.
    fn freeze(&self, engine: &Engine) -> Option<FrozenSnapshot> {
        let replica = self.replica.as_ref()?;
        let tree = engine.tree.read().frozen();
        let index = tree.last_zxid() as u64;
        let term = replica.term_of(index)?;
        let conf_state = replica.conf_state();
        let meta = SnapshotMeta {
            index,
            term,
            membership: membership_of(&conf_state),
        };
        Some(FrozenSnapshot {
            tree,
            meta,
            conf_state,
        })
    }
}
