//! What the log holds: replicated entries (index, term, kind, payload) and the member's hard
//! state (term, vote, commit), as raft needs them kept; and the reading of records older
//! formats wrote.

use serde::{Deserialize, Serialize};

use crate::txn::{Proposal, Txn};

/// One record of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogRecord {
    /// A replicated log entry.
    Entry(LogEntry),
    /// The member's hard state from this point of the log on.
    HardState(HardState),
}

/// A replicated log entry as raft defines it: position, the leader term that wrote it, and an
/// opaque payload (for a normal entry, an encoded `Proposal`; empty for a new leader's entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Its position in the log; zxids are these indexes.
    pub index: u64,
    /// The term of the leader that wrote it.
    pub term: u64,
    /// What the payload is.
    pub kind: EntryKind,
    /// The payload.
    #[serde(with = "crate::serde_bytes::vec")]
    pub data: Vec<u8>,
}

/// The kind of a log entry (raft's EntryType).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// A Txn (or nothing: a new leader's entry).
    Normal,
    /// A membership change (raft's ConfChange).
    ConfChange,
    /// A membership change (raft's ConfChangeV2, joint consensus).
    ConfChangeV2,
}

/// Raft's hard state: what a member must not forget across a crash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The newest term the member has seen.
    pub term: u64,
    /// Whom it voted for in that term (0: nobody).
    pub vote: u64,
    /// The newest index it knows committed.
    pub commit: u64,
}

impl LogEntry {
    /// The entry a log written before replication holds for `(zxid, txn)`: term 1, no origin.
    pub fn legacy(zxid: i64, txn: Txn) -> LogEntry {
        LogEntry {
            index: zxid as u64,
            term: 1,
            kind: EntryKind::Normal,
            data: Proposal { origin: None, txn }.encode(),
        }
    }
}
