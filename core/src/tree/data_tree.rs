//! The DataTree: every znode by path, the session records, and `apply`, the only way they change.
//!
//! Semantics follow ZooKeeper's `DataTree.processTxn` so clients see the same Stats, with one
//! deliberate difference: a Txn that cannot apply (NoNode, NodeExists, NotEmpty...) returns its
//! error and leaves the tree exactly as it was. ZooKeeper patches a parent's cversion or pzxid
//! even then, to cope with its fuzzy snapshots; our snapshots must not need that, and a
//! half-applied Txn would make replicas' trees differ in ways no test could explain.
//!
//! Reads (`get`, `stat`) are one hash lookup and allocate nothing, because they run under a
//! shared lock on every read request.

use super::shared_acl::SharedAcl;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::acl_cache::AclCache;
use super::path;
use super::znode::{OwnerKind, Znode};
use super::znode_table::ZnodeTable;
use super::{Change, ChangeKind};
use crate::proto::{Acl, ErrorCode, Stat};
use crate::txn::{Txn, TxnOp};

/// The replicated part of a session: what every member must agree on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// The negotiated timeout.
    pub timeout_ms: u32,
    /// The password a client must show to resume the session.
    pub password: [u8; 16],
}

/// What applying one Txn did: the outcome for the requester and the changes watches care about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The outcome; an error means this Txn (or, for a multi, that slot) changed nothing.
    pub result: Result<TxnResult, ErrorCode>,
    /// The changes, in the order ZooKeeper fires their watches.
    pub changes: Vec<Change>,
}

/// The outcome of a Txn that applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnResult {
    /// A znode was created.
    Created {
        /// Its path.
        path: String,
        /// Its Stat.
        stat: Stat,
    },
    /// A znode was deleted.
    Deleted,
    /// SetData or SetAcl: the znode's Stat afterwards.
    Stat(Stat),
    /// A check inside a multi.
    Checked,
    /// One result per sub-op, in order.
    Multi(Vec<Result<TxnResult, ErrorCode>>),
    /// A session record was added.
    SessionCreated,
    /// A session record was removed, and with it these ephemerals (sorted).
    SessionClosed {
        /// The deleted ephemerals' paths.
        deleted: Vec<String>,
    },
    /// A refused write's Txn: nothing changed.
    Refused(crate::txn::Refusal),
}

/// The znode tree with its indexes, and the session records.
/// Equality compares every znode (data, ACL, stored Stat fields, children), every index, the
/// session records and the counters: two equal trees answer every read alike.
#[derive(Debug, PartialEq, Eq)]
pub struct DataTree {
    /// Every znode, by path and by parent.
    pub(super) nodes: ZnodeTable,
    pub(super) acls: AclCache,
    /// Ephemeral paths by owning session; sessions without ephemerals have no entry.
    pub(super) ephemerals: HashMap<i64, BTreeSet<Box<str>>, ahash::RandomState>,
    pub(super) containers: BTreeSet<Box<str>>,
    pub(super) ttls: BTreeSet<Box<str>>,
    /// Ordered, so that iterating sessions (for snapshots) is the same on every replica.
    pub(super) sessions: BTreeMap<i64, SessionRecord>,
    pub(super) last_zxid: i64,
    /// Sum of every znode's path and data lengths (see [`DataTree::approximate_data_size`]),
    /// kept as znodes change so the mntr four-letter word need not scan the tree.
    pub(super) data_size_bytes: u64,
    /// The paths with a quota (a `zookeeper_limits` znode under "/zookeeper/quota").
    pub(super) quota_paths: BTreeSet<Box<str>>,
}

impl Default for DataTree {
    fn default() -> DataTree {
        DataTree::new()
    }
}

impl DataTree {
    /// A tree as a fresh ZooKeeper server holds it.
    ///
    /// Observed on Apache ZooKeeper 3.8.0 standalone (kazoo get/get_acls/get_children): all four
    /// znodes have empty data and czxid = mzxid = pzxid = ctime = mtime = version = 0 and
    /// ephemeralOwner = 0.
    /// - "/": children [zookeeper], cversion -1, aversion 0, ACL world:anyone ALL.
    /// - "/zookeeper": children [config, quota], cversion -2, aversion 0, world:anyone ALL.
    /// - "/zookeeper/quota": no children, cversion 0, aversion 0, world:anyone ALL.
    /// - "/zookeeper/config": no children, cversion 0, aversion -1, world:anyone READ.
    ///
    /// The negative cversions are the client form `2 * creates - children` of a stored 0 (the
    /// children were linked in without a create); config's aversion -1 comes from ZooKeeper
    /// setting its ACL with version -1.
    pub fn new() -> DataTree {
        let mut tree = DataTree {
            nodes: ZnodeTable::default(),
            acls: AclCache::default(),
            ephemerals: HashMap::default(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            sessions: BTreeMap::new(),
            last_zxid: 0,
            data_size_bytes: 0,
            quota_paths: BTreeSet::new(),
        };
        // One intern per znode: the cache counts users, and a SetAcl on one of these must not
        // drop the entry the others still share.
        let mut system_znode =
            |path, acl: Vec<Acl>| Znode::new(path, Some(&[]), tree.acls.intern(&acl), 0, 0, 0);
        let root = system_znode("/", Acl::open_unsafe());
        let zookeeper = system_znode("/zookeeper", Acl::open_unsafe());
        let quota = system_znode("/zookeeper/quota", Acl::open_unsafe());
        let mut config = system_znode(path::CONFIG_ZNODE, Acl::read_unsafe());
        config.aversion = -1;
        for znode in [root, zookeeper, quota, config] {
            tree.nodes
                .insert(znode)
                .expect("a fresh tree has room for its system znodes");
        }
        tree.data_size_bytes = tree
            .nodes
            .iter()
            .map(|node| node_size_bytes(node.path(), node.data()))
            .sum();
        tree
    }

    /// Writes an ensemble's membership into "/zookeeper/config" as each ZooKeeper member does
    /// at start and after a reconfiguration, outside the log: the data, mzxid the
    /// configuration's version, version -1 and mtime the member's wall clock (seen on a
    /// 3-member Apache ZooKeeper 3.8.0 ensemble).
    pub fn set_membership(&mut self, text: &[u8], version_zxid: i64, now_ms: i64) {
        let path = crate::tree::path::CONFIG_ZNODE;
        let Some(node) = self.nodes.get_mut(path) else {
            return;
        };
        let old_bytes = node_size_bytes(path, node.data());
        node.set_data(Some(text));
        node.mzxid = version_zxid;
        node.mtime = now_ms;
        node.version = -1;
        self.data_size_bytes =
            self.data_size_bytes - old_bytes + node_size_bytes(path, node.data());
    }

    /// The znode at `path`, if any.
    pub fn get(&self, path: &str) -> Option<&Znode> {
        self.nodes.get(path)
    }

    /// The client-visible Stat of the znode at `path`, if any.
    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.nodes.get(path).map(Znode::stat)
    }

    /// The child names of the znode at `path`, sorted; `None` if it does not exist.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        self.nodes.get(path).map(|node| self.child_names(node))
    }

    /// The child names of `znode` (one of this tree's), sorted.
    pub fn child_names(&self, znode: &Znode) -> Vec<String> {
        let children = self.nodes.sorted_children(znode);
        children
            .iter()
            .map(|child| child.name().to_owned())
            .collect()
    }

    /// The number of descendants of the znode at `path` (not counting itself), as
    /// ZooKeeper's getAllChildrenNumber; for "/" that includes "/zookeeper" and its children.
    pub fn all_children_number(&self, path: &str) -> Option<i32> {
        let node = self.nodes.get(path)?;
        if path == "/" {
            return Some((self.nodes.len() - 1) as i32);
        }
        // Walk the subtree rather than scan every path: the cost is the answer's size.
        let mut count: i32 = 0;
        let mut pending: Vec<&Znode> = self.nodes.children(node).collect();
        while let Some(child) = pending.pop() {
            count += 1;
            pending.extend(self.nodes.children(child));
        }
        Some(count)
    }

    /// The paths of the session's ephemerals, sorted.
    pub fn ephemerals(&self, session_id: i64) -> Vec<String> {
        self.ephemerals
            .get(&session_id)
            .map(|paths| paths.iter().map(|path| path.to_string()).collect())
            .unwrap_or_default()
    }

    /// How many ephemerals the session owns.
    pub fn ephemeral_count(&self, session_id: i64) -> usize {
        self.ephemerals
            .get(&session_id)
            .map_or(0, |paths| paths.len())
    }

    /// Every session record, in session id order.
    pub fn sessions(&self) -> impl Iterator<Item = (i64, &SessionRecord)> + '_ {
        self.sessions.iter().map(|(id, record)| (*id, record))
    }

    /// The record of one session.
    pub fn session(&self, session_id: i64) -> Option<&SessionRecord> {
        self.sessions.get(&session_id)
    }

    /// The highest zxid applied; 0 for a fresh tree.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Records that the log entry at `zxid` applied without a Txn (a new leader's empty
    /// entry, a membership change), so `last_zxid` names the newest applied log position.
    pub fn mark_applied(&mut self, zxid: i64) {
        self.last_zxid = self.last_zxid.max(zxid);
    }

    /// The number of znodes, the four system znodes included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// ZooKeeper's `approximateDataSize` (mntr's `zk_approximate_data_size`): the sum over
    /// znodes of path length plus data length, in bytes.
    pub fn approximate_data_size(&self) -> u64 {
        self.data_size_bytes
    }

    /// The number of distinct ACLs the znodes share (a memory metric).
    pub fn distinct_acl_count(&self) -> usize {
        self.acls.len()
    }

    /// The containers and TTL znodes the reaper should delete at `now_ms`, sorted, as
    /// ZooKeeper's `ContainerManager.getCandidates` with no never-used interval: containers
    /// that have had a child and have none now, and childless TTL znodes not modified for
    /// longer than their TTL.
    pub fn reap_candidates(&self, now_ms: i64) -> Vec<String> {
        let empty_node = |path: &str| self.nodes.get(path).filter(|node| node.num_children() == 0);
        let containers = self
            .containers
            .iter()
            .filter(|path| empty_node(path).is_some_and(|node| node.cversion > 0));
        let ttls = self.ttls.iter().filter(|path| {
            empty_node(path).is_some_and(|node| match OwnerKind::of(node.ephemeral_owner) {
                OwnerKind::Ttl(ttl_ms) => ttl_ms != 0 && now_ms.saturating_sub(node.mtime) > ttl_ms,
                _ => false,
            })
        });
        let mut candidates: Vec<String> = containers
            .chain(ttls)
            .map(|path| path.to_string())
            .collect();
        candidates.sort_unstable();
        candidates
    }

    /// Applies a committed Txn at `zxid`. Never panics on a Txn that does not fit the tree: the
    /// error comes back in `result` and that op changes nothing (a multi's other ops still apply).
    pub fn apply(&mut self, zxid: i64, txn: &Txn) -> Applied {
        let mut changes = Vec::new();
        let result = self.apply_op(zxid, txn.time_ms, &txn.op, &mut changes);
        self.last_zxid = self.last_zxid.max(zxid);
        Applied { result, changes }
    }

    fn apply_op(
        &mut self,
        zxid: i64,
        time_ms: i64,
        op: &TxnOp,
        changes: &mut Vec<Change>,
    ) -> Result<TxnResult, ErrorCode> {
        match op {
            TxnOp::CreateSession {
                session_id,
                timeout_ms,
                password,
            } => {
                // A replayed create keeps the first record, as ZooKeeper's session tracker does.
                self.sessions.entry(*session_id).or_insert(SessionRecord {
                    timeout_ms: *timeout_ms,
                    password: *password,
                });
                Ok(TxnResult::SessionCreated)
            }
            TxnOp::CloseSession { session_id } => self.close_session(zxid, *session_id, changes),
            TxnOp::Create {
                path,
                data,
                acl,
                ephemeral_owner,
                parent_cversion,
            } => self.create(
                zxid,
                time_ms,
                path,
                data,
                acl,
                *ephemeral_owner,
                *parent_cversion,
                changes,
            ),
            TxnOp::Delete { path } => self
                .delete(zxid, path, changes)
                .map(|()| TxnResult::Deleted),
            TxnOp::SetData {
                path,
                data,
                version,
            } => {
                let node = self.nodes.get_mut(path.as_str()).ok_or(ErrorCode::NoNode)?;
                let bytes_diff =
                    data_bytes(data.as_deref()) as i64 - data_bytes(node.data()) as i64;
                self.data_size_bytes = self.data_size_bytes.wrapping_add_signed(bytes_diff);
                node.set_data(data.as_deref());
                node.mtime = time_ms;
                node.mzxid = zxid;
                node.version = *version;
                changes.push(change(path, ChangeKind::DataChanged, &node.acl));
                let stat = node.stat();
                self.quota_after_set_data(path, bytes_diff);
                Ok(TxnResult::Stat(stat))
            }
            TxnOp::SetAcl { path, acl, version } => {
                if !self.nodes.contains(path.as_str()) {
                    return Err(ErrorCode::NoNode);
                }
                let shared = self.acls.intern(acl);
                let node = self.nodes.get_mut(path.as_str()).ok_or(ErrorCode::NoNode)?;
                let old = std::mem::replace(&mut node.acl, shared);
                node.aversion = *version;
                let stat = node.stat();
                self.acls.release(old);
                Ok(TxnResult::Stat(stat))
            }
            TxnOp::Check { path } => {
                if self.nodes.contains(path.as_str()) {
                    Ok(TxnResult::Checked)
                } else {
                    Err(ErrorCode::NoNode)
                }
            }
            TxnOp::Multi(ops) => {
                let results = ops
                    .iter()
                    .map(|op| self.apply_op(zxid, time_ms, op, changes))
                    .collect();
                Ok(TxnResult::Multi(results))
            }
            TxnOp::Failed(refusal) => Ok(TxnResult::Refused(refusal.clone())),
            TxnOp::Reconfig { members } => {
                let path = crate::tree::path::CONFIG_ZNODE;
                let text = format!("{members}version={zxid:x}");
                self.set_membership(text.as_bytes(), zxid, time_ms);
                let node = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
                changes.push(change(path, ChangeKind::DataChanged, &node.acl));
                Ok(TxnResult::Stat(node.stat()))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        zxid: i64,
        time_ms: i64,
        path: &str,
        data: &Option<Vec<u8>>,
        acl: &[Acl],
        ephemeral_owner: i64,
        parent_cversion: i32,
        changes: &mut Vec<Change>,
    ) -> Result<TxnResult, ErrorCode> {
        path::validate(path)?;
        if self.nodes.contains(path) {
            return Err(ErrorCode::NodeExists);
        }
        let parent_path = path::parent(path);
        let parent = self.nodes.get(parent_path).ok_or(ErrorCode::NoNode)?;
        if parent.is_ephemeral() {
            // Prepare refuses this; applying it would leave a child that outlives nothing
            // and blocks its parent's deletion at session close.
            return Err(ErrorCode::NoChildrenForEphemerals);
        }

        let acl = self.acls.intern(acl);
        let node = Znode::new(
            path,
            data.as_deref(),
            acl.clone(),
            ephemeral_owner,
            zxid,
            time_ms,
        );
        let stat = node.stat();
        let parent = self.nodes.get_mut(parent_path).ok_or(ErrorCode::NoNode)?;
        // -1 means "one more than now", as in ZooKeeper's older create Txns.
        let parent_cversion = if parent_cversion == -1 {
            parent.cversion.wrapping_add(1)
        } else {
            parent_cversion
        };
        // Only move forward: replaying a create after a later one must not rewind the parent.
        if parent_cversion > parent.cversion {
            parent.cversion = parent_cversion;
            parent.pzxid = zxid;
        }
        let parent_acl = parent.acl.clone();
        self.data_size_bytes += node_size_bytes(path, data.as_deref());
        self.nodes
            .insert(node)
            .expect("checked above: the path is free and the parent exists");
        match OwnerKind::of(ephemeral_owner) {
            OwnerKind::Persistent => {}
            OwnerKind::Session(session_id) => {
                self.ephemerals
                    .entry(session_id)
                    .or_default()
                    .insert(path.into());
            }
            OwnerKind::Container => {
                self.containers.insert(path.into());
            }
            OwnerKind::Ttl(_) => {
                self.ttls.insert(path.into());
            }
        }
        self.quota_after_create(path, data.as_deref());
        changes.push(change(path, ChangeKind::Created, &acl));
        changes.push(change(
            parent_path,
            ChangeKind::ChildrenChanged,
            &parent_acl,
        ));
        Ok(TxnResult::Created {
            path: path.to_owned(),
            stat,
        })
    }

    fn delete(
        &mut self,
        zxid: i64,
        path: &str,
        changes: &mut Vec<Change>,
    ) -> Result<(), ErrorCode> {
        if path == "/" {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
        if node.num_children() > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        let parent_path = path::parent(path);
        let Some(parent) = self.nodes.get_mut(parent_path) else {
            debug_assert!(false, "znode {path} has no parent");
            return Err(ErrorCode::NoNode);
        };
        // Deletes leave the stored cversion alone (clients still see it grow, see Znode::stat).
        if zxid > parent.pzxid {
            parent.pzxid = zxid;
        }
        let parent_acl = parent.acl.clone();
        let node = self.nodes.remove(path)?;
        self.data_size_bytes -= node_size_bytes(path, node.data());
        self.quota_after_delete(path, node.data());
        changes.push(change(path, ChangeKind::Deleted, &node.acl));
        changes.push(change(
            parent_path,
            ChangeKind::ChildrenChanged,
            &parent_acl,
        ));
        self.acls.release(node.acl);
        match OwnerKind::of(node.ephemeral_owner) {
            OwnerKind::Persistent => {}
            OwnerKind::Session(session_id) => {
                if let Some(paths) = self.ephemerals.get_mut(&session_id) {
                    paths.remove(path);
                    if paths.is_empty() {
                        self.ephemerals.remove(&session_id);
                    }
                }
            }
            OwnerKind::Container => {
                self.containers.remove(path);
            }
            OwnerKind::Ttl(_) => {
                self.ttls.remove(path);
            }
        }
        Ok(())
    }

    fn close_session(
        &mut self,
        zxid: i64,
        session_id: i64,
        changes: &mut Vec<Change>,
    ) -> Result<TxnResult, ErrorCode> {
        let known = self.sessions.remove(&session_id).is_some();
        let paths = self.ephemerals.remove(&session_id).unwrap_or_default();
        if !known && paths.is_empty() {
            return Err(ErrorCode::UnknownSession);
        }
        let mut deleted = Vec::with_capacity(paths.len());
        // Sorted order, so every replica fires the same events in the same order.
        for path in paths {
            // The index entry is already gone, so delete's own unindexing finds nothing to do.
            if self.delete(zxid, &path, changes).is_ok() {
                deleted.push(path.into_string());
            } else {
                debug_assert!(
                    false,
                    "ephemeral {path} of session {session_id:#x} could not be deleted"
                );
            }
        }
        Ok(TxnResult::SessionClosed { deleted })
    }
}

/// One znode's share of [`DataTree::approximate_data_size`]. The root counts no path, because
/// ZooKeeper keys it by the empty string.
pub(super) fn node_size_bytes(path: &str, data: Option<&[u8]>) -> u64 {
    let path_bytes = if path == "/" { 0 } else { path.len() };
    (path_bytes + data_bytes(data)) as u64
}

/// The length of data, null counting as empty (as ZooKeeper's Stat.dataLength does).
pub fn data_bytes(data: Option<&[u8]>) -> usize {
    data.map_or(0, <[u8]>::len)
}

fn change(path: &str, kind: ChangeKind, acl: &SharedAcl) -> Change {
    Change {
        path: path.to_owned(),
        kind,
        acl: acl.clone(),
    }
}

#[cfg(test)]
#[path = "data_tree_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "data_tree_index_tests.rs"]
mod index_tests;

#[cfg(test)]
#[path = "data_tree_size_tests.rs"]
mod data_size_tests;
