//! Persist stage: the replicated log on disk (`FileLog`: entries and hard states in segmented,
//! checksummed files, docs/format.md), snapshots (`SnapshotStore`), and the `Disk` seam a
//! crash test replaces with a `FakeDisk` that knows what was really durable. Storage never
//! interprets a Txn: it keeps entries and bytes.

pub mod disk;
pub mod error;
mod fake_disk;
pub mod log;
mod log_scan;
pub mod record;
pub mod snapshot;

pub use disk::{Disk, DiskFile, FileRemoval, RealDisk};
pub use error::StorageError;
pub use fake_disk::{Crash, FakeDisk};
pub use log::{FileLog, LogContents, LogOptions};
pub use record::{EntryKind, HardState, LogEntry, LogRecord};
pub use snapshot::{
    decode_payload, encode_payload, Membership, SnapshotFile, SnapshotMeta, SnapshotStore,
    SNAPSHOT_FORMAT_VERSION,
};
