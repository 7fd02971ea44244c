//! The tree as plain znode records, for converters (`migrate/`): a foreign snapshot becomes
//! `ZnodeImage`s that pass through the same checked decoder as our own snapshots, and a tree
//! becomes `ZnodeImage`s that a foreign writer can lay out its own way.

use std::collections::HashMap;

use super::data_tree::{DataTree, SessionRecord};
use super::path;
use super::snapshot::{Bytes, Head, SnapshotDecodeError, ZnodeRecord};
use super::znode::Znode;
use crate::proto::Acl;

/// One znode with its stored Stat fields, as a snapshot keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZnodeImage {
    /// The absolute path ("/" for the root).
    pub path: String,
    /// The data; None is ZooKeeper's null data, kept apart from empty.
    pub data: Option<Vec<u8>>,
    /// The index of the znode's ACL in the ACL table that travels with the images.
    pub acl: u32,
    /// The zxid that created it.
    pub czxid: i64,
    /// The zxid that last set its data.
    pub mzxid: i64,
    /// The zxid that last changed its children.
    pub pzxid: i64,
    /// Creation time, milliseconds since the epoch.
    pub ctime: i64,
    /// Last data change, milliseconds since the epoch.
    pub mtime: i64,
    /// 0, a session id, the container marker or a TTL encoding (ZooKeeper's stored value).
    pub ephemeral_owner: i64,
    /// Data version.
    pub version: i32,
    /// The stored cversion (children ever created), as ZooKeeper persists it.
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
}

impl DataTree {
    /// Builds a tree from znode images in pre-order (a parent before its subtree, the root
    /// first), the ACL table they index and the sessions, checked as a snapshot is.
    ///
    /// # Errors
    /// Whatever `from_snapshot` refuses: a znode before its parent, a duplicate path, a child
    /// of an ephemeral, an ACL index outside `acls`, a repeated session.
    pub fn from_images(
        last_zxid: i64,
        acls: &[Vec<Acl>],
        sessions: &[(i64, SessionRecord)],
        znodes: &[ZnodeImage],
    ) -> Result<DataTree, SnapshotDecodeError> {
        let mut children: HashMap<&str, u32> = HashMap::with_capacity(znodes.len());
        for znode in znodes {
            if znode.path != "/" {
                *children.entry(path::parent(&znode.path)).or_default() += 1;
            }
        }
        let mut sorted_sessions: Vec<(i64, u32, [u8; 16])> = sessions
            .iter()
            .map(|(id, record)| (*id, record.timeout_ms, record.password))
            .collect();
        sorted_sessions.sort_unstable_by_key(|session| session.0);
        let head = Head {
            last_zxid,
            acls: acls.to_vec(),
            sessions: sorted_sessions,
            znode_count: znodes.len() as u64,
        };
        let mut bytes = postcard::to_allocvec(&head).expect("a Vec never refuses bytes");
        for znode in znodes {
            let record = ZnodeRecord {
                path: znode.path.as_str(),
                data: znode.data.as_deref().map(Bytes),
                acl: znode.acl,
                czxid: znode.czxid,
                mzxid: znode.mzxid,
                pzxid: znode.pzxid,
                ctime: znode.ctime,
                mtime: znode.mtime,
                ephemeral_owner: znode.ephemeral_owner,
                version: znode.version,
                cversion: znode.cversion,
                aversion: znode.aversion,
                num_children: children.get(znode.path.as_str()).copied().unwrap_or(0),
            };
            bytes = postcard::to_extend(&record, bytes).expect("a Vec never refuses bytes");
        }
        DataTree::from_snapshot(&bytes)
    }

    /// The tree's znodes in pre-order (children by name) with the ACL table they index.
    pub fn images(&self) -> (Vec<Vec<Acl>>, Vec<ZnodeImage>) {
        let mut acl_index: HashMap<usize, u32> = HashMap::new();
        let mut acls: Vec<Vec<Acl>> = Vec::new();
        let mut images = Vec::with_capacity(self.nodes.len());
        let mut image_of = |node: &Znode| {
            let key = node.acl.address();
            let acl = *acl_index.entry(key).or_insert_with(|| {
                acls.push(node.acl.to_vec());
                (acls.len() - 1) as u32
            });
            images.push(ZnodeImage {
                path: node.path().to_owned(),
                data: node.data().map(<[u8]>::to_vec),
                acl,
                czxid: node.czxid,
                mzxid: node.mzxid,
                pzxid: node.pzxid,
                ctime: node.ctime,
                mtime: node.mtime,
                ephemeral_owner: node.ephemeral_owner,
                version: node.version,
                cversion: node.cversion,
                aversion: node.aversion,
            });
        };
        self.nodes.visit_in_preorder(&mut image_of);
        (acls, images)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::{Txn, TxnOp};

    #[test]
    fn images_round_trip_through_from_images() {
        let mut tree = DataTree::new();
        let create = |path: &str, data: Option<&[u8]>, owner: i64| Txn {
            time_ms: 7,
            op: TxnOp::Create {
                path: path.into(),
                data: data.map(<[u8]>::to_vec),
                acl: Acl::open_unsafe(),
                ephemeral_owner: owner,
                parent_cversion: -1,
            },
        };
        tree.apply(
            2,
            &Txn {
                time_ms: 1,
                op: TxnOp::CreateSession {
                    session_id: 5,
                    timeout_ms: 4000,
                    password: [3; 16],
                },
            },
        );
        tree.apply(3, &create("/a", None, 0)).result.unwrap();
        tree.apply(4, &create("/a/b", Some(b"x"), 0))
            .result
            .unwrap();
        tree.apply(5, &create("/e", Some(b""), 5)).result.unwrap();
        let (acls, images) = tree.images();
        let sessions: Vec<_> = tree.sessions().map(|(id, record)| (id, *record)).collect();
        let rebuilt = DataTree::from_images(tree.last_zxid(), &acls, &sessions, &images).unwrap();
        assert_eq!(rebuilt.to_snapshot(), tree.to_snapshot());
    }

    #[test]
    fn a_znode_before_its_parent_is_refused() {
        let tree = DataTree::new();
        let (acls, mut images) = tree.images();
        let mut orphan = images[0].clone();
        orphan.path = "/missing/child".into();
        images.push(orphan);
        assert!(DataTree::from_images(0, &acls, &[], &images).is_err());
    }
}
