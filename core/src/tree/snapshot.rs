//! The tree as bytes: `DataTree::to_snapshot` and `DataTree::from_snapshot`.
//!
//! Layout (postcard throughout): a head — last zxid, the table of distinct ACLs (each written
//! once, sorted by its encoding so equal trees give equal bytes), the session records and the
//! znode count — then one record per znode in pre-order (a parent before its children, children
//! by name). A record holds the path, the data, the ACL's index in the table, the stored Stat
//! fields and the number of children, which decoding checks against the children it rebuilt.
//!
//! Everything derivable (children sets, the ephemeral, container and TTL indexes, the ACL cache's
//! counts, the data size) is rebuilt rather than stored, so a snapshot cannot disagree with
//! itself; what is stored is checked as it is read, and a violation is an error, never a panic:
//! the bytes may come from a damaged disk.

use super::shared_acl::SharedAcl;
use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

use super::acl_cache::AclCache;
use super::data_tree::{node_size_bytes, DataTree, SessionRecord};
use super::path;
use super::znode::{OwnerKind, Znode, PATH_BYTES_MAX};
use super::znode_slab::{Slot, ZnodeSlab};
use crate::proto::Acl;

/// Why snapshot bytes could not become a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotDecodeError {
    /// The bytes are not a snapshot encoding (truncated, bad varint, bad UTF-8, trailing bytes).
    Encoding {
        /// What postcard or the framing reported.
        reason: String,
    },
    /// The bytes decode but break a tree invariant.
    Invariant {
        /// The znode (or session, as `session <id>`) concerned.
        path: String,
        /// The rule it breaks.
        reason: &'static str,
    },
}

impl fmt::Display for SnapshotDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotDecodeError::Encoding { reason } => {
                write!(f, "snapshot encoding is malformed: {reason}")
            }
            SnapshotDecodeError::Invariant { path, reason } => {
                write!(f, "snapshot breaks a tree invariant at {path}: {reason}")
            }
        }
    }
}

impl std::error::Error for SnapshotDecodeError {}

fn encoding(error: postcard::Error) -> SnapshotDecodeError {
    SnapshotDecodeError::Encoding {
        reason: error.to_string(),
    }
}

fn invariant(path: &str, reason: &'static str) -> SnapshotDecodeError {
    SnapshotDecodeError::Invariant {
        path: path.to_owned(),
        reason,
    }
}

/// Everything before the znodes.
#[derive(Serialize, Deserialize)]
pub(super) struct Head<A> {
    pub(super) last_zxid: i64,
    /// Distinct ACLs; a znode names one by index.
    pub(super) acls: Vec<A>,
    /// (session id, timeout, password), by increasing session id.
    pub(super) sessions: Vec<(i64, u32, [u8; 16])>,
    pub(super) znode_count: u64,
}

/// One znode; borrows from the tree when encoding and from the bytes when decoding. `D` is
/// the data as the format version keeps it: `Option<Bytes>` (null kept apart from empty) since
/// version 2, `Bytes` in version 1.
#[derive(Serialize, Deserialize)]
pub(super) struct ZnodeRecord<'a, D> {
    pub(super) path: &'a str,
    pub(super) data: D,
    pub(super) acl: u32,
    pub(super) czxid: i64,
    pub(super) mzxid: i64,
    pub(super) pzxid: i64,
    pub(super) ctime: i64,
    pub(super) mtime: i64,
    pub(super) ephemeral_owner: i64,
    pub(super) version: i32,
    /// The stored cversion (children ever created), not the client's.
    pub(super) cversion: i32,
    pub(super) aversion: i32,
    pub(super) num_children: u32,
}

/// Data as one length-prefixed byte string (serde would write a slice element by element).
pub(super) struct Bytes<'a>(pub(super) &'a [u8]);

/// Reads the next znode record as snapshot format `version` wrote it; data as `Option`.
fn take_record(
    bytes: &[u8],
    version: u32,
) -> Result<(ZnodeRecord<'_, Option<Bytes<'_>>>, &[u8]), postcard::Error> {
    if version >= 2 {
        return postcard::take_from_bytes(bytes);
    }
    let (record, rest) = postcard::take_from_bytes::<ZnodeRecord<'_, Bytes<'_>>>(bytes)?;
    let record = ZnodeRecord {
        path: record.path,
        data: Some(record.data),
        acl: record.acl,
        czxid: record.czxid,
        mzxid: record.mzxid,
        pzxid: record.pzxid,
        ctime: record.ctime,
        mtime: record.mtime,
        ephemeral_owner: record.ephemeral_owner,
        version: record.version,
        cversion: record.cversion,
        aversion: record.aversion,
        num_children: record.num_children,
    };
    Ok((record, rest))
}

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Bytes<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <&'de [u8]>::deserialize(deserializer).map(Bytes)
    }
}

/// A znode whose children are still being read.
struct Frame<'a> {
    path: &'a str,
    ephemeral: bool,
    stored_children: u32,
}

impl Frame<'_> {
    /// Checks the children the table linked under this znode against the count the snapshot
    /// stored: a count that differs means records were lost or added.
    fn finish(self, tree: &DataTree) -> Result<(), SnapshotDecodeError> {
        let linked = tree.nodes.get(self.path).map_or(0, Znode::num_children);
        if linked != self.stored_children as usize {
            return Err(invariant(
                self.path,
                "children count does not match the znodes",
            ));
        }
        Ok(())
    }
}

/// The smallest encoded znode record (one byte per varint, empty path and data), used to bound
/// what an untrusted znode count may reserve.
const RECORD_BYTES_MIN: usize = 14;

/// A tree's content as of one moment, unchanged by the writes that follow: what a snapshot
/// encodes, on another thread while the tree goes on changing. Taking one costs a pointer per
/// 4,096 znodes (see `ZnodeSlab`) and a sort of the distinct ACLs.
pub struct FrozenTree {
    last_zxid: i64,
    /// The distinct ACLs sorted by their encoding, so equal trees give equal bytes.
    acls: Vec<SharedAcl>,
    /// Each ACL's index in `acls`, by the address of the cache's shared copy (every znode
    /// holds that copy).
    acl_index: HashMap<usize, u32, ahash::RandomState>,
    /// (session id, timeout, password), by increasing session id.
    sessions: Vec<(i64, u32, [u8; 16])>,
    znodes: ZnodeSlab,
    root: Option<Slot>,
    znode_count: usize,
    data_size_bytes: u64,
}

impl DataTree {
    /// The tree as it is now, to encode later (see [`FrozenTree`]).
    pub fn frozen(&self) -> FrozenTree {
        let mut acls: Vec<(Vec<u8>, SharedAcl)> = self
            .acls
            .iter()
            .map(|(acl, _users)| {
                let key = postcard::to_allocvec(&**acl).expect("a Vec never refuses bytes");
                (key, acl.clone())
            })
            .collect();
        acls.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let acls: Vec<SharedAcl> = acls.into_iter().map(|(_, acl)| acl).collect();
        let acl_index = acls
            .iter()
            .enumerate()
            .map(|(index, acl)| (acl.address(), index as u32))
            .collect();
        let (znodes, root) = self.nodes.frozen();
        FrozenTree {
            last_zxid: self.last_zxid,
            acls,
            acl_index,
            sessions: self
                .sessions
                .iter()
                .map(|(id, record)| (*id, record.timeout_ms, record.password))
                .collect(),
            znodes,
            root,
            znode_count: self.nodes.len(),
            data_size_bytes: self.data_size_bytes,
        }
    }

    /// The tree as snapshot bytes: equal trees give equal bytes.
    ///
    /// # Panics
    /// As [`FrozenTree::encode`].
    pub fn to_snapshot(&self) -> Vec<u8> {
        self.frozen().encode()
    }
}

impl FrozenTree {
    /// The zxid of the last Txn the tree had applied.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// The snapshot bytes: equal trees give equal bytes.
    ///
    /// # Panics
    /// When the tree broke its own invariants (a znode unreachable from the root, a znode whose
    /// ACL the cache did not hold): writing such a snapshot would persist the bug.
    pub fn encode(&self) -> Vec<u8> {
        let head = Head {
            last_zxid: self.last_zxid,
            acls: self.acls.iter().map(|acl| &**acl).collect::<Vec<&[Acl]>>(),
            sessions: self.sessions.clone(),
            znode_count: self.znode_count as u64,
        };
        // Paths average a few tens of bytes; start big enough to avoid most regrowth.
        let capacity_bytes = 64 + self.znode_count * 48 + self.data_size_bytes as usize;
        let mut bytes = Vec::with_capacity(capacity_bytes);
        bytes = postcard::to_extend(&head, bytes).expect("a Vec never refuses bytes");

        let acl_of = |node: &Znode| -> u32 {
            if let Some(index) = self.acl_index.get(&(node.acl.address())) {
                return *index;
            }
            // Every znode should hold the cache's copy; an equal ACL still encodes right.
            debug_assert!(false, "{} holds its own copy of a cached ACL", node.path());
            self.acls
                .iter()
                .position(|acl| **acl == *node.acl)
                .unwrap_or_else(|| panic!("{}'s ACL is not in the ACL cache", node.path()))
                as u32
        };
        let encode = |bytes: Vec<u8>, node: &Znode| -> Vec<u8> {
            let record = ZnodeRecord {
                path: node.path(),
                data: node.data().map(Bytes),
                acl: acl_of(node),
                czxid: node.czxid,
                mzxid: node.mzxid,
                pzxid: node.pzxid,
                ctime: node.ctime,
                mtime: node.mtime,
                ephemeral_owner: node.ephemeral_owner,
                version: node.version,
                cversion: node.cversion,
                aversion: node.aversion,
                num_children: node.num_children() as u32,
            };
            postcard::to_extend(&record, bytes).expect("a Vec never refuses bytes")
        };

        // Children by name, so equal trees give equal bytes whatever order their children
        // were linked in.
        let mut written: usize = 0;
        if let Some(root) = self.root {
            self.znodes.visit_in_preorder(root, &mut |node| {
                bytes = encode(std::mem::take(&mut bytes), node);
                written += 1;
            });
        }
        // Check before persisting: every znode hangs off the root.
        assert_eq!(
            written, self.znode_count,
            "znodes unreachable from the root would be lost"
        );
        bytes
    }
}

impl DataTree {
    /// Rebuilds a tree from `to_snapshot`'s bytes, with every index, and checks it.
    ///
    /// # Errors
    /// `Encoding` when the bytes do not decode (or bytes are left over), `Invariant` when they
    /// decode to something no tree can be: a znode before its parent or without one, a
    /// duplicate path, a child under an ephemeral, a children count that does not match, an
    /// ACL index outside the table, sessions out of order.
    pub fn from_snapshot(bytes: &[u8]) -> Result<DataTree, SnapshotDecodeError> {
        DataTree::from_snapshot_of_version(bytes, crate::storage::SNAPSHOT_FORMAT_VERSION)
    }

    /// `from_snapshot` for bytes an older build wrote in snapshot format `version` (1: data
    /// never null).
    pub fn from_snapshot_of_version(
        bytes: &[u8],
        version: u32,
    ) -> Result<DataTree, SnapshotDecodeError> {
        let (head, mut rest) =
            postcard::take_from_bytes::<Head<Vec<Acl>>>(bytes).map_err(encoding)?;
        let mut tree = DataTree {
            nodes: Default::default(),
            acls: AclCache::default(),
            ephemerals: HashMap::default(),
            containers: Default::default(),
            ttls: Default::default(),
            sessions: Default::default(),
            last_zxid: head.last_zxid,
            data_size_bytes: 0,
            quota_paths: Default::default(),
        };

        let mut previous_session: Option<i64> = None;
        for (session_id, timeout_ms, password) in head.sessions {
            if previous_session.is_some_and(|previous| previous >= session_id) {
                return Err(invariant(
                    &format!("session {session_id:#x}"),
                    "sessions out of order or repeated",
                ));
            }
            previous_session = Some(session_id);
            tree.sessions.insert(
                session_id,
                SessionRecord {
                    timeout_ms,
                    password,
                },
            );
        }

        let acl_table: Vec<SharedAcl> = head.acls.into_iter().map(SharedAcl::from).collect();
        let mut acl_users: Vec<u64> = vec![0; acl_table.len()];
        // The count is untrusted: reserve no more than the remaining bytes could hold.
        let reserve = (head.znode_count as usize).min(rest.len() / RECORD_BYTES_MIN);
        tree.nodes.reserve(reserve);
        // The znodes from the root to the one just read (pre-order keeps a znode's parent on
        // this stack), each with the children read so far: a znode's children set is built
        // in one go when it leaves the stack, and its stored count checked then.
        let mut ancestors: Vec<Frame<'_>> = Vec::new();

        for position in 0..head.znode_count {
            let (record, after) = take_record(rest, version).map_err(encoding)?;
            rest = after;
            let path = record.path;
            if position == 0 {
                if path != "/" {
                    return Err(invariant(path, "the first znode is not the root"));
                }
            } else {
                if path == "/" || path::validate(path).is_err() || path.len() > PATH_BYTES_MAX {
                    return Err(invariant(path, "not a valid znode path"));
                }
                let parent_path = path::parent(path);
                // Every frame above the parent is a finished subtree; popping them keeps the
                // search amortised constant.
                let Some(depth) = ancestors
                    .iter()
                    .rposition(|frame| frame.path == parent_path)
                else {
                    return Err(invariant(path, "parent missing or not before its subtree"));
                };
                for done in ancestors.drain(depth + 1..).rev() {
                    done.finish(&tree)?;
                }
                if ancestors[depth].ephemeral {
                    return Err(invariant(path, "child of an ephemeral znode"));
                }
            }
            let acl_slot = record.acl as usize;
            let Some(acl) = acl_table.get(acl_slot) else {
                return Err(invariant(path, "ACL index outside the ACL table"));
            };
            acl_users[acl_slot] += 1;
            let mut node = Znode::new(
                path,
                record.data.map(|data| data.0),
                acl.clone(),
                record.ephemeral_owner,
                record.czxid,
                record.ctime,
            );
            node.mzxid = record.mzxid;
            node.pzxid = record.pzxid;
            node.mtime = record.mtime;
            node.version = record.version;
            node.cversion = record.cversion;
            node.aversion = record.aversion;
            tree.data_size_bytes += node_size_bytes(path, node.data());
            match OwnerKind::of(node.ephemeral_owner) {
                OwnerKind::Persistent => {}
                OwnerKind::Session(session_id) => {
                    tree.ephemerals
                        .entry(session_id)
                        .or_default()
                        .insert(path.into());
                }
                OwnerKind::Container => {
                    tree.containers.insert(path.into());
                }
                OwnerKind::Ttl(_) => {
                    tree.ttls.insert(path.into());
                }
            }
            ancestors.push(Frame {
                path,
                ephemeral: node.is_ephemeral(),
                stored_children: record.num_children,
            });
            // The parent is on the stack, so the table can only refuse a duplicate.
            if tree.nodes.insert(node).is_err() {
                return Err(invariant(path, "duplicate znode"));
            }
        }
        if !rest.is_empty() {
            return Err(SnapshotDecodeError::Encoding {
                reason: format!("{} bytes after the last znode", rest.len()),
            });
        }
        while let Some(done) = ancestors.pop() {
            done.finish(&tree)?;
        }

        // The table may repeat an ACL (add_users merges them); the znodes must then share the
        // cache's copy, so that the cache's counts and the znodes agree.
        let mut shared_by_slot: Vec<Option<SharedAcl>> = vec![None; acl_table.len()];
        for (slot, acl) in acl_table.iter().enumerate() {
            if acl_users[slot] > 0 {
                let held = tree.acls.add_users(acl.clone(), acl_users[slot]);
                if !SharedAcl::ptr_eq(&held, acl) {
                    shared_by_slot[slot] = Some(held);
                }
            }
        }
        if shared_by_slot.iter().any(Option::is_some) {
            for node in tree.nodes.iter_mut() {
                let replaced = acl_table
                    .iter()
                    .position(|acl| SharedAcl::ptr_eq(acl, &node.acl))
                    .and_then(|slot| shared_by_slot[slot].clone());
                if let Some(held) = replaced {
                    node.acl = held;
                }
            }
        }
        tree.rebuild_quota_paths();
        Ok(tree)
    }
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
