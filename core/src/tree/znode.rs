//! One znode: its path and data, its shared ACL, the Stat fields ZooKeeper persists, and the
//! slots of its children in the tree's znode table.
//!
//! A tree may hold millions of znodes, so a znode is kept small (104 bytes, plus one allocation
//! holding its path and data): the path and data share that allocation, the ACL is a thin
//! `SharedAcl` shared with every znode that has the same ACL (interned by the tree), children
//! are table slots rather than names (a child's name is the end of its own path) and a leaf
//! allocates none, and the Stat fields that can be derived (data length, number of children)
//! are not stored.

use super::shared_acl::SharedAcl;

use super::znode_slab::Slot;
use crate::proto::{Acl, Stat, CONTAINER_EPHEMERAL_OWNER};

/// The top bit of `path_bytes` marks null data; the rest is the path's length.
const NULL_DATA_BIT: u32 = 1 << 31;

/// The longest path a znode can have: `path_bytes` keeps its top bit for the null flag.
/// Requests are far smaller (the client port caps a frame well below this).
pub const PATH_BYTES_MAX: usize = (NULL_DATA_BIT - 1) as usize;

/// A znode as the tree stores it. `Clone` serves the slab's copy-on-write chunks only.
#[derive(Clone, Debug)]
pub struct Znode {
    /// The path's bytes, then the data's: one allocation instead of two saves a pointer and
    /// an allocator header per znode.
    bytes: Box<[u8]>,
    pub(super) acl: SharedAcl,
    /// The children's table slots, unordered; None while there are none (most znodes are
    /// leaves, and a leaf then spends 8 bytes here and no allocation). Boxed on purpose: a
    /// `Vec` inline would cost every leaf 24 bytes.
    #[allow(clippy::box_collection)]
    pub(super) children: Option<Box<Vec<Slot>>>,
    pub(super) czxid: i64,
    pub(super) mzxid: i64,
    pub(super) pzxid: i64,
    pub(super) ctime: i64,
    pub(super) mtime: i64,
    /// The raw owner: 0, a session id, `CONTAINER_EPHEMERAL_OWNER` or a TTL encoding.
    pub(super) ephemeral_owner: i64,
    /// The path's length in `bytes`, with `NULL_DATA_BIT` set for ZooKeeper's null data
    /// (which reads back as null, not empty).
    path_bytes: u32,
    /// Where this znode sits in its parent's `children`, so a delete unlinks it in O(1).
    pub(super) slot_in_parent: u32,
    pub(super) version: i32,
    /// The number of children ever created, as ZooKeeper persists it (not the client's cversion).
    pub(super) cversion: i32,
    pub(super) aversion: i32,
}

/// Two znodes are equal when a client could not tell them apart: the same path, data, ACL,
/// stored Stat fields and number of children. Where children sit in the table is not
/// compared (the table compares child names).
impl PartialEq for Znode {
    fn eq(&self, other: &Znode) -> bool {
        self.bytes == other.bytes
            && self.path_bytes == other.path_bytes
            && self.acl == other.acl
            && self.num_children() == other.num_children()
            && (self.czxid, self.mzxid, self.pzxid, self.ctime, self.mtime)
                == (
                    other.czxid,
                    other.mzxid,
                    other.pzxid,
                    other.ctime,
                    other.mtime,
                )
            && self.ephemeral_owner == other.ephemeral_owner
            && (self.version, self.cversion, self.aversion)
                == (other.version, other.cversion, other.aversion)
    }
}

impl Eq for Znode {}

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
    /// A new znode at `path` with no children, all versions 0, created and last modified at
    /// `zxid`/`time_ms`.
    ///
    /// # Panics
    /// When `path` is longer than `PATH_BYTES_MAX` (no request can carry such a path).
    pub(super) fn new(
        path: &str,
        data: Option<&[u8]>,
        acl: SharedAcl,
        ephemeral_owner: i64,
        zxid: i64,
        time_ms: i64,
    ) -> Znode {
        let mut znode = Znode {
            bytes: Box::default(),
            acl,
            children: None,
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time_ms,
            mtime: time_ms,
            ephemeral_owner,
            path_bytes: 0,
            slot_in_parent: 0,
            version: 0,
            cversion: 0,
            aversion: 0,
        };
        znode.store(path.as_bytes(), data);
        znode
    }

    /// Replaces path and data in one new allocation sized to fit.
    fn store(&mut self, path: &[u8], data: Option<&[u8]>) {
        assert!(
            path.len() <= PATH_BYTES_MAX,
            "a znode path of {} bytes",
            path.len()
        );
        let data_bytes = data.unwrap_or_default();
        let mut bytes = Vec::with_capacity(path.len() + data_bytes.len());
        bytes.extend_from_slice(path);
        bytes.extend_from_slice(data_bytes);
        self.bytes = bytes.into_boxed_slice();
        self.path_bytes = path.len() as u32 | if data.is_none() { NULL_DATA_BIT } else { 0 };
    }

    /// The full path.
    pub fn path(&self) -> &str {
        std::str::from_utf8(self.path_as_bytes()).expect("a znode's path was stored from a str")
    }

    /// The full path as bytes (no UTF-8 check: what the hash index compares).
    pub(super) fn path_as_bytes(&self) -> &[u8] {
        &self.bytes[..(self.path_bytes & !NULL_DATA_BIT) as usize]
    }

    /// The last component of the path ("" for the root).
    pub fn name(&self) -> &str {
        super::path::name(self.path())
    }

    /// The data; None for null data.
    pub fn data(&self) -> Option<&[u8]> {
        if self.path_bytes & NULL_DATA_BIT != 0 {
            return None;
        }
        Some(&self.bytes[self.path_bytes as usize..])
    }

    /// Replaces the data (None: null data).
    pub(super) fn set_data(&mut self, data: Option<&[u8]>) {
        let path = std::mem::take(&mut self.bytes);
        let path_bytes = (self.path_bytes & !NULL_DATA_BIT) as usize;
        self.store(&path[..path_bytes], data);
    }

    /// The ACL.
    pub fn acl(&self) -> &[Acl] {
        &self.acl
    }

    /// The ACL as shared among znodes (cheap to clone).
    pub fn shared_acl(&self) -> SharedAcl {
        self.acl.clone()
    }

    /// The Stat as clients see it (`DataNode.copyStat`). Two fields differ from what is stored:
    /// `cversion` is reported as `2 * creates - children` (every create and every delete
    /// counts once, since each child still missing was deleted), and `ephemeral_owner` is 0 for
    /// container and TTL znodes.
    pub fn stat(&self) -> Stat {
        let num_children = self.num_children() as i32;
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
            data_length: self.data().map_or(0, <[u8]>::len) as i32,
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

    /// The number of children.
    pub fn num_children(&self) -> usize {
        self.children.as_ref().map_or(0, |children| children.len())
    }

    /// The slots of the children, in no particular order.
    pub(super) fn child_slots(&self) -> &[Slot] {
        self.children.as_deref().map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::TTL_MS_MAX;

    fn znode(owner: i64) -> Znode {
        Znode::new(
            "/z",
            Some(b"abc"),
            Acl::open_unsafe().into(),
            owner,
            7,
            1000,
        )
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
        node.children = Some(Box::new(vec![1, 2]));
        assert_eq!(node.stat().cversion, 4);
        assert_eq!(node.stat().num_children, 2);
        assert_eq!(node.child_creates(), 3);
    }

    #[test]
    fn path_and_data_share_one_allocation_and_null_stays_null() {
        let mut node = znode(0);
        assert_eq!(
            (node.path(), node.name(), node.data()),
            ("/z", "z", Some(&b"abc"[..]))
        );
        node.set_data(None);
        assert_eq!(
            (node.path(), node.data(), node.stat().data_length),
            ("/z", None, 0)
        );
        node.set_data(Some(b""));
        assert_eq!((node.path(), node.data()), ("/z", Some(&b""[..])));
        node.set_data(Some(b"longer data"));
        assert_eq!(
            (node.path(), node.data()),
            ("/z", Some(&b"longer data"[..]))
        );
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
        // A regression guard: the per-znode footprint is what bounds a big tree's memory
        // (docs/benchmarks.md, "Memory per znode").
        assert!(
            std::mem::size_of::<Znode>() <= 104,
            "{}",
            std::mem::size_of::<Znode>()
        );
    }
}
