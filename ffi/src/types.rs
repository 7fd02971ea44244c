//! The C data types a caller passes in (Stat, ACL entries, create modes, multi ops) and their
//! reading into the Rust API's types. What the library hands out is in `owned.rs`.

use std::ffi::c_char;

use zookeeper_core::op::{Op, ReadOp};
use zookeeper_core::{Acl, CreateMode, Id, Perms, Stat};

use crate::boundary::{array, data, text};
use crate::result::zk_result;

/// A znode's Stat, field for field as ZooKeeper's.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct zk_stat {
    /// zxid of the change that created the znode.
    pub czxid: i64,
    /// zxid of the change that last modified its data.
    pub mzxid: i64,
    /// Creation time, ms since the Unix epoch.
    pub ctime: i64,
    /// Last data change time, ms since the Unix epoch.
    pub mtime: i64,
    /// Data version.
    pub version: i32,
    /// Child list version.
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// Owning session for an ephemeral, else 0.
    pub ephemeral_owner: i64,
    /// Data length in bytes.
    pub data_length: i32,
    /// Number of children.
    pub num_children: i32,
    /// zxid of the last change to the children.
    pub pzxid: i64,
}

impl From<Stat> for zk_stat {
    fn from(stat: Stat) -> zk_stat {
        zk_stat {
            czxid: stat.czxid,
            mzxid: stat.mzxid,
            ctime: stat.ctime,
            mtime: stat.mtime,
            version: stat.version,
            cversion: stat.cversion,
            aversion: stat.aversion,
            ephemeral_owner: stat.ephemeral_owner,
            data_length: stat.data_length,
            num_children: stat.num_children,
            pzxid: stat.pzxid,
        }
    }
}

/// Permission bits of an ACL entry, ZooKeeper's values.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub enum zk_perm {
    /// Read data and list children.
    ZK_PERM_READ = 1,
    /// Set data.
    ZK_PERM_WRITE = 2,
    /// Create children.
    ZK_PERM_CREATE = 4,
    /// Delete children.
    ZK_PERM_DELETE = 8,
    /// Set the ACL.
    ZK_PERM_ADMIN = 16,
    /// Everything.
    ZK_PERM_ALL = 31,
}

/// Create modes, ZooKeeper's flag values (pass them as `int32_t`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub enum zk_create_mode {
    /// Lives until deleted.
    ZK_PERSISTENT = 0,
    /// Deleted when the creating session ends.
    ZK_EPHEMERAL = 1,
    /// Persistent, with a sequence suffix.
    ZK_PERSISTENT_SEQUENTIAL = 2,
    /// Ephemeral, with a sequence suffix.
    ZK_EPHEMERAL_SEQUENTIAL = 3,
    /// Deleted once its last child is gone.
    ZK_CONTAINER = 4,
    /// Deleted after its TTL without changes or children.
    ZK_PERSISTENT_WITH_TTL = 5,
    /// TTL, with a sequence suffix.
    ZK_PERSISTENT_SEQUENTIAL_WITH_TTL = 6,
}

/// One ACL entry. In arguments the strings are the caller's; in answers they belong to the
/// list they came in.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct zk_acl {
    /// `zk_perm` bits.
    pub perms: i32,
    /// `world`, `auth`, `digest` or `ip`.
    pub scheme: *const c_char,
    /// The id within the scheme (`anyone` for world).
    pub id: *const c_char,
}

/// Operation kinds in `zk_multi` and `zk_multi_read` (ZooKeeper's opcode numbers).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub enum zk_op_kind {
    /// A failed op in `zk_multi_results`.
    ZK_OP_ERROR = -1,
    /// Create (multi).
    ZK_OP_CREATE = 1,
    /// Delete (multi).
    ZK_OP_DELETE = 2,
    /// Read data (multi-read).
    ZK_OP_GET_DATA = 4,
    /// Set data (multi).
    ZK_OP_SET_DATA = 5,
    /// List children (multi-read).
    ZK_OP_GET_CHILDREN = 8,
    /// Version check (multi).
    ZK_OP_CHECK = 13,
}

/// One write of a `zk_multi`. Fields an op kind does not use are ignored.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct zk_op {
    /// `ZK_OP_CREATE`, `ZK_OP_DELETE`, `ZK_OP_SET_DATA` or `ZK_OP_CHECK`.
    pub kind: i32,
    /// The znode.
    pub path: *const c_char,
    /// Create and set: the data; NULL with `data_len` 0 is null data.
    pub data: *const u8,
    /// Length of `data` in bytes.
    pub data_len: usize,
    /// Create: the ACL; NULL with `acl_len` 0 is the open ACL (world:anyone, all).
    pub acl: *const zk_acl,
    /// Entries in `acl`.
    pub acl_len: usize,
    /// Create: a `zk_create_mode`.
    pub mode: i32,
    /// Create with a TTL mode: the TTL in ms; else ignored.
    pub ttl_ms: i64,
    /// Delete, set and check: the expected version, -1 for any.
    pub version: i32,
}

/// One read of a `zk_multi_read`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct zk_read_op {
    /// `ZK_OP_GET_DATA` or `ZK_OP_GET_CHILDREN`.
    pub kind: i32,
    /// The znode.
    pub path: *const c_char,
}

/// An ACL argument; NULL with length 0 is the open ACL (world:anyone, all permissions).
///
/// # Safety
/// `acl` is NULL or points to `acl_len` entries whose strings are valid for the call.
pub(crate) unsafe fn acl_argument(
    acl: *const zk_acl,
    acl_len: usize,
) -> Result<Vec<Acl>, zk_result> {
    if acl.is_null() && acl_len == 0 {
        return Ok(Acl::open_unsafe());
    }
    // SAFETY: forwarded from the caller.
    let entries = unsafe { array(acl, acl_len) }?;
    entries
        .iter()
        .map(|entry| {
            // SAFETY: the caller promises valid strings in each entry.
            let (scheme, id) = unsafe { (text(entry.scheme)?, text(entry.id)?) };
            Ok(Acl {
                perms: Perms(entry.perms),
                id: Id::new(scheme, id),
            })
        })
        .collect()
}

/// A create mode argument.
pub(crate) fn create_mode(mode: i32) -> Result<CreateMode, zk_result> {
    CreateMode::from_flag(mode).ok_or(zk_result::ZK_INVALID_ARGUMENT)
}

/// A multi's ops.
///
/// # Safety
/// `ops` is NULL or points to `count` ops whose pointers are valid for the call.
pub(crate) unsafe fn multi_ops(ops: *const zk_op, count: usize) -> Result<Vec<Op>, zk_result> {
    // SAFETY: forwarded from the caller.
    let ops = unsafe { array(ops, count) }?;
    ops.iter()
        .map(|op| {
            // SAFETY: the caller promises valid pointers in each op.
            let path = unsafe { text(op.path) }?;
            let kind = op.kind;
            Ok(match kind {
                _ if kind == zk_op_kind::ZK_OP_CREATE as i32 => {
                    // SAFETY: as above.
                    let (bytes, acl) = unsafe {
                        (
                            data(op.data, op.data_len)?,
                            acl_argument(op.acl, op.acl_len)?,
                        )
                    };
                    Op::Create(zookeeper_core::CreateRequest {
                        path: path.to_string(),
                        data: bytes.map(<[u8]>::to_vec),
                        acl,
                        mode: create_mode(op.mode)?,
                        ttl_ms: if create_mode(op.mode)?.is_ttl() {
                            op.ttl_ms
                        } else {
                            -1
                        },
                    })
                }
                _ if kind == zk_op_kind::ZK_OP_DELETE as i32 => Op::delete(path, op.version),
                _ if kind == zk_op_kind::ZK_OP_SET_DATA as i32 => {
                    // SAFETY: as above.
                    let bytes = unsafe { data(op.data, op.data_len) }?;
                    Op::set_data(path, bytes, op.version)
                }
                _ if kind == zk_op_kind::ZK_OP_CHECK as i32 => Op::check(path, op.version),
                _ => return Err(zk_result::ZK_INVALID_ARGUMENT),
            })
        })
        .collect()
}

/// A multi-read's reads.
///
/// # Safety
/// `reads` is NULL or points to `count` reads whose paths are valid for the call.
pub(crate) unsafe fn read_ops(
    reads: *const zk_read_op,
    count: usize,
) -> Result<Vec<ReadOp>, zk_result> {
    // SAFETY: forwarded from the caller.
    let reads = unsafe { array(reads, count) }?;
    reads
        .iter()
        .map(|read| {
            // SAFETY: the caller promises a valid path.
            let path = unsafe { text(read.path) }?.to_string();
            match read.kind {
                kind if kind == zk_op_kind::ZK_OP_GET_DATA as i32 => Ok(ReadOp::GetData { path }),
                kind if kind == zk_op_kind::ZK_OP_GET_CHILDREN as i32 => {
                    Ok(ReadOp::GetChildren { path })
                }
                _ => Err(zk_result::ZK_INVALID_ARGUMENT),
            }
        })
        .collect()
}
