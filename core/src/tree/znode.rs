//! One znode: its data, its shared ACL, the Stat fields ZooKeeper persists, and its children.
//!
//! A tree may hold millions of znodes, so a znode is kept small: data is a boxed slice, the ACL
//! is an `Arc<[Acl]>` shared with every znode that has the same ACL (interned by the tree),
//! children are a sorted set of boxed names that allocates nothing while empty, and the Stat
//! fields that can be derived (data length, number of children) are not stored.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::proto::{Acl, Stat, CONTAINER_EPHEMERAL_OWNER};

/// A znode as the tree stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Znode {
    /// None: ZooKeeper's null data, which reads back as null, not empty.
    pub(super) data: Option<Box<[u8]>>,
    pub(super) acl: Arc<[Acl]>,
    pub(super) children: BTreeSet<Box<str>>,
    pub(super) czxid: i64,
    pub(super) mzxid: i64,
    pub(super) pzxid: i64,
    pub(super) ctime: i64,
    pub(super) mtime: i64,
    /// The raw owner: 0, a session id, `CONTAINER_EPHEMERAL_OWNER` or a TTL encoding.
    pub(super) ephemeral_owner: i64,
    pub(super) version: i32,
    /// The number of children ever created, as ZooKeeper persists it (not the client's cversion).
    pub(super) cversion: i32,
    pub(super) aversion: i32,
}

/// What an `ephemeral_owner` value means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OwnerKind {
    /// A plain persistent znode.
    Persistent,
    /// Dies with this session.
    Session(i64),
    /// Deleted by the reaper once it has had children and has none left.
    Container,
    /// Deleted by the reaper when childless and unmodified for this many milliseconds.
    Ttl(i64),
}

impl OwnerKind {
    /// Classifies an owner value as ZooKeeper's `EphemeralType.get` does with extended types
    /// (TTLs) enabled.
    pub(super) fn of(ephemeral_owner: i64) -> OwnerKind {
        if ephemeral_owner == 0 {
            OwnerKind::Persistent
        } else if ephemeral_owner == CONTAINER_EPHEMERAL_OWNER {
            OwnerKind::Container
        } else if let Some(ttl_ms) = owner_ttl_ms(ephemeral_owner) {
            OwnerKind::Ttl(ttl_ms)
        } else {
            OwnerKind::Session(ephemeral_owner)
        }
    }
}

/// Top byte all ones marks an extended owner (ZooKeeper's `EphemeralType.EXTENDED_MASK`).
const EXTENDED_MASK: i64 = 0xFF00_0000_0000_0000_u64 as i64;
/// Bits 40..56 name the extended feature; 0 is TTL, the only one ZooKeeper defines.
const FEATURE_MASK: i64 = 0x00FF_FF00_0000_0000;
/// The TTL itself, in milliseconds.
const TTL_VALUE_MASK: i64 = 0x0000_00FF_FFFF_FFFF;

/// The `ephemeral_owner` that marks a TTL znode: `0xFF00_0000_0000_0000 | ttl_ms`.
///
/// `ttl_ms` must be in `1..=TTL_MS_MAX`; prepare rejects other TTLs, so one here is a bug:
/// debug builds panic, release builds keep the low 40 bits.
pub fn ttl_owner(ttl_ms: i64) -> i64 {
    debug_assert!(
        ttl_ms > 0 && ttl_ms <= crate::proto::TTL_MS_MAX,
        "TTL {ttl_ms} ms out of range"
    );
    EXTENDED_MASK | (ttl_ms & TTL_VALUE_MASK)
}

/// The TTL in milliseconds encoded in a TTL znode's `ephemeral_owner`; `None` for any other owner.
///
/// An owner with the extended top byte but a feature other than TTL is not a TTL znode (ZooKeeper
/// would refuse it outright); here it reads as a session id, which no session has.
pub fn owner_ttl_ms(ephemeral_owner: i64) -> Option<i64> {
    let extended = ephemeral_owner & EXTENDED_MASK == EXTENDED_MASK;
    (extended && ephemeral_owner & FEATURE_MASK == 0).then_some(ephemeral_owner & TTL_VALUE_MASK)
}

impl Znode {
    /// A new znode with no children, all versions 0, created and last modified at `zxid`/`time_ms`.
    pub(super) fn new(
        data: Option<&[u8]>,
        acl: Arc<[Acl]>,
        ephemeral_owner: i64,
        zxid: i64,
        time_ms: i64,
    ) -> Znode {
        Znode {
            data: data.map(Into::into),
            acl,
            children: BTreeSet::new(),
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time_ms,
            mtime: time_ms,
            ephemeral_owner,
            version: 0,
            cversion: 0,
            aversion: 0,
        }
    }

    /// The data; None for null data.
    pub fn data(&self) -> Option<&[u8]> {
        self.data.as_deref()
    }

    /// The ACL.
    pub fn acl(&self) -> &[Acl] {
        &self.acl
    }

    /// The ACL as shared among znodes (cheap to clone).
    pub fn shared_acl(&self) -> Arc<[Acl]> {
        self.acl.clone()
    }

    /// The Stat as clients see it (`DataNode.copyStat`). Two fields differ from what is stored:
    /// `cversion` is reported as `2 * creates - children` (every create and every delete
    /// counts once, since each child still missing was deleted), and `ephemeral_owner` is 0 for
    /// container and TTL znodes.
    pub fn stat(&self) -> Stat {
        let num_children = self.children.len() as i32;
        let ephemeral_owner = match OwnerKind::of(self.ephemeral_owner) {
            OwnerKind::Session(session_id) => session_id,
            OwnerKind::Persistent | OwnerKind::Container | OwnerKind::Ttl(_) => 0,
        };
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: self.aversion,
            ephemeral_owner,
            data_length: self.data.as_deref().map_or(0, <[u8]>::len) as i32,
            num_children,
            pzxid: self.pzxid,
        }
    }

    /// The number of children ever created here, as ZooKeeper persists `cversion`. Prepare
    /// derives the next sequence suffix and the create Txn's `parent_cversion` (this + 1)
    /// from it.
    pub fn child_creates(&self) -> i32 {
        self.cversion
    }

    /// The stored `ephemeral_owner`: 0, a session id, `CONTAINER_EPHEMERAL_OWNER`, or a TTL
    /// encoding (see `owner_ttl_ms`). Clients see 0 for the last two; see `stat`.
    pub fn ephemeral_owner(&self) -> i64 {
        self.ephemeral_owner
    }

    /// True when the znode dies with a session (and so may not have children).
    pub fn is_ephemeral(&self) -> bool {
        matches!(OwnerKind::of(self.ephemeral_owner), OwnerKind::Session(_))
    }

    /// The child names, sorted.
    pub fn children(&self) -> impl Iterator<Item = &str> + '_ {
        self.children.iter().map(|name| &**name)
    }

    /// The number of children.
    pub fn num_children(&self) -> usize {
        self.children.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::TTL_MS_MAX;

    fn znode(owner: i64) -> Znode {
        Znode::new(Some(b"abc"), Acl::open_unsafe().into(), owner, 7, 1000)
    }

    #[test]
    fn a_new_znode_has_every_stat_field_from_its_create() {
        let stat = znode(0).stat();
        assert_eq!(
            stat,
            Stat {
                czxid: 7,
                mzxid: 7,
                ctime: 1000,
                mtime: 1000,
                version: 0,
                cversion: 0,
                aversion: 0,
                ephemeral_owner: 0,
                data_length: 3,
                num_children: 0,
                pzxid: 7,
            }
        );
    }

    #[test]
    fn client_cversion_counts_creates_and_deletes() {
        // Three children created, one deleted since: ZooKeeper reports 2 * 3 - 2 = 4.
        let mut node = znode(0);
        node.cversion = 3;
        node.children.insert("a".into());
        node.children.insert("b".into());
        assert_eq!(node.stat().cversion, 4);
        assert_eq!(node.stat().num_children, 2);
        assert_eq!(node.child_creates(), 3);
        assert_eq!(node.children().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn clients_see_owner_zero_for_containers_and_ttls() {
        assert_eq!(znode(CONTAINER_EPHEMERAL_OWNER).stat().ephemeral_owner, 0);
        assert_eq!(znode(ttl_owner(5000)).stat().ephemeral_owner, 0);
        assert_eq!(
            znode(0x0100_0000_0000_0002).stat().ephemeral_owner,
            0x0100_0000_0000_0002
        );
        assert!(znode(0x0100_0000_0000_0002).is_ephemeral());
        assert!(!znode(CONTAINER_EPHEMERAL_OWNER).is_ephemeral());
        assert!(!znode(ttl_owner(1)).is_ephemeral());
    }

    #[test]
    fn ttl_owner_encoding_round_trips() {
        assert_eq!(ttl_owner(1), 0xFF00_0000_0000_0001_u64 as i64);
        assert_eq!(ttl_owner(TTL_MS_MAX), 0xFF00_00FF_FFFF_FFFF_u64 as i64);
        for ttl in [1, 1000, 86_400_000, TTL_MS_MAX] {
            assert_eq!(owner_ttl_ms(ttl_owner(ttl)), Some(ttl));
            assert_eq!(OwnerKind::of(ttl_owner(ttl)), OwnerKind::Ttl(ttl));
        }
        assert_eq!(owner_ttl_ms(0), None);
        assert_eq!(owner_ttl_ms(CONTAINER_EPHEMERAL_OWNER), None);
        assert_eq!(owner_ttl_ms(0x0100_0000_0000_0002), None);
        // Extended byte with a non-TTL feature: not a TTL.
        assert_eq!(owner_ttl_ms(0xFF01_0000_0000_0001_u64 as i64), None);
        assert_eq!(OwnerKind::of(0), OwnerKind::Persistent);
        assert_eq!(
            OwnerKind::of(CONTAINER_EPHEMERAL_OWNER),
            OwnerKind::Container
        );
        assert_eq!(OwnerKind::of(42), OwnerKind::Session(42));
    }

    #[test]
    fn znodes_stay_small() {
        // A regression guard: the per-znode footprint is what bounds a big tree's memory.
        assert!(
            std::mem::size_of::<Znode>() <= 128,
            "{}",
            std::mem::size_of::<Znode>()
        );
    }
}
