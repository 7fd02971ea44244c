//! Apache ZooKeeper's transaction logs (`version-2/log.<first zxid>`): each file decoded into
//! its transactions, stopping at the preallocated zeros and telling a damaged record apart.
//!
//! Layout (FileTxnLog, jute): a file header (magic "ZKLG", version 2, dbid), then records:
//! an Adler-32 of the entry (long), the entry as a buffer (TxnHeader, the Txn record, since
//! 3.6 maybe a TxnDigest), then the byte 'B'. A zero length ends the written part.

use super::jute::{adler32, JuteError, JuteReader};
use crate::proto::Acl;

/// "ZKLG".
pub const LOG_MAGIC: i32 = 0x5A4B_4C47;
/// The most one log entry may hold: a multi of several full znodes.
pub const ENTRY_BYTES_MAX: usize = 256 * 1024 * 1024;
/// The most operations one multi may hold.
pub const MULTI_OPS_MAX: usize = 1_000_000;
/// The most paths a CloseSessionTxn may list.
const CLOSE_PATHS_MAX: usize = 10_000_000;

/// ZooKeeper's OpCode values that appear in a log.
mod op_code {
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const SET_DATA: i32 = 5;
    pub const SET_ACL: i32 = 7;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const RECONFIG: i32 = 16;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const DELETE_CONTAINER: i32 = 20;
    pub const CREATE_TTL: i32 = 21;
    pub const CREATE_SESSION: i32 = -10;
    pub const CLOSE_SESSION: i32 = -11;
    pub const ERROR: i32 = -1;
}

/// One logged transaction's header (TxnHeader).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkTxnHeader {
    /// The session that asked.
    pub session_id: i64,
    /// Its zxid.
    pub zxid: i64,
    /// When the leader prepared it, ms since the epoch.
    pub time_ms: i64,
}

/// What a logged transaction does, in ZooKeeper's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZkTxn {
    /// createSession (the header's session id).
    CreateSession {
        /// Negotiated timeout.
        timeout_ms: i32,
    },
    /// closeSession (the header's session id).
    CloseSession,
    /// create, create2, createContainer, createTTL.
    Create {
        /// Path with any sequence suffix.
        path: String,
        /// Data; None is null.
        data: Option<Vec<u8>>,
        /// ACL.
        acl: Vec<Acl>,
        /// 0, the header's session, the container marker or a TTL encoding.
        ephemeral_owner: i64,
        /// The parent's cversion after it (-1 from a pre-3.3 log: apply works it out).
        parent_cversion: i32,
    },
    /// delete, deleteContainer.
    Delete {
        /// Path.
        path: String,
    },
    /// setData.
    SetData {
        /// Path.
        path: String,
        /// Data; None is null.
        data: Option<Vec<u8>>,
        /// The new version.
        version: i32,
    },
    /// setACL.
    SetAcl {
        /// Path.
        path: String,
        /// ACL.
        acl: Vec<Acl>,
        /// The new ACL version.
        version: i32,
    },
    /// check, inside a multi.
    Check {
        /// Path.
        path: String,
    },
    /// reconfig: a new /zookeeper/config, which each of our members writes for itself.
    Reconfig,
    /// An error: the zxid was used, nothing changed.
    Error,
    /// multi; a failed one holds Error entries and changes nothing.
    Multi(Vec<ZkTxn>),
}

/// One record of a log file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkLogRecord {
    /// Where the record starts in its file.
    pub offset: u64,
    /// Its header.
    pub header: ZkTxnHeader,
    /// Its transaction.
    pub txn: ZkTxn,
}

/// A log file's records up to where the written part ends, or to the first bad record.
#[derive(Debug, Default)]
pub struct ZkLogFile {
    /// The records that decoded.
    pub records: Vec<ZkLogRecord>,
    /// The first bad record, if the file has one: what is wrong, and where.
    pub damage: Option<JuteError>,
}

/// Decodes one log file's bytes. A damaged header is an error; a damaged record ends the
/// records and is reported in `damage`, for the caller to refuse or stop at.
pub fn read_log(bytes: &[u8]) -> Result<ZkLogFile, JuteError> {
    let mut reader = JuteReader::new(bytes, 0);
    let magic = reader.read_i32()?;
    if magic != LOG_MAGIC {
        return Err(JuteError {
            offset: 0,
            reason: format!("magic {magic:#x} is not ZooKeeper's log magic"),
        });
    }
    let version = reader.read_i32()?;
    if version != 2 {
        return Err(JuteError {
            offset: 4,
            reason: format!("log file version {version}, expected 2"),
        });
    }
    let _dbid = reader.read_i64()?;
    let mut file = ZkLogFile::default();
    loop {
        let offset = reader.position() as u64;
        // Preallocated zeros (or nothing) where a record would start end the written part.
        if bytes[offset as usize..]
            .iter()
            .take(12)
            .all(|byte| *byte == 0)
        {
            break;
        }
        match read_record(&mut reader) {
            Ok((header, txn)) => file.records.push(ZkLogRecord {
                offset,
                header,
                txn,
            }),
            Err(error) => {
                file.damage = Some(JuteError {
                    offset,
                    reason: format!("{} (at byte {})", error.reason, error.offset),
                });
                break;
            }
        }
    }
    Ok(file)
}

fn read_record(reader: &mut JuteReader<'_>) -> Result<(ZkTxnHeader, ZkTxn), JuteError> {
    let checksum = reader.read_i64()?;
    let entry = reader
        .read_buffer(ENTRY_BYTES_MAX)?
        .ok_or_else(|| reader.error("null entry"))?;
    let entry_offset = reader.position() - entry.len();
    if reader.read_u8()? != b'B' {
        return Err(reader.error("entry not followed by 'B' (a partial write)"));
    }
    let actual = adler32(entry);
    if checksum != i64::from(actual) {
        return Err(reader.error(format!(
            "checksum {checksum:#x} does not match the entry's {actual:#x}"
        )));
    }
    let mut entry_reader = JuteReader::new(entry, entry_offset as u64);
    let session_id = entry_reader.read_i64()?;
    let _cxid = entry_reader.read_i32()?;
    let zxid = entry_reader.read_i64()?;
    let time_ms = entry_reader.read_i64()?;
    let kind = entry_reader.read_i32()?;
    let header = ZkTxnHeader {
        session_id,
        zxid,
        time_ms,
    };
    // Whatever follows the record (a TxnDigest since 3.6) is not needed: our tree has its own.
    let txn = read_txn(&mut entry_reader, kind, session_id, true)?;
    Ok((header, txn))
}

/// One Txn record of type `kind`; `top` is false inside a multi.
fn read_txn(
    reader: &mut JuteReader<'_>,
    kind: i32,
    session_id: i64,
    top: bool,
) -> Result<ZkTxn, JuteError> {
    use op_code::*;
    Ok(match kind {
        CREATE_SESSION => ZkTxn::CreateSession {
            timeout_ms: reader.read_i32()?,
        },
        CLOSE_SESSION => {
            // The paths to delete (3.6+, may be absent): ours come from the ephemerals index.
            if reader.remaining() >= 4 {
                let count = reader.read_i32()?;
                if count > 0 && count as usize <= CLOSE_PATHS_MAX {
                    for _ in 0..count {
                        reader.read_string()?;
                    }
                }
            }
            ZkTxn::CloseSession
        }
        CREATE | CREATE2 => {
            let path = reader.read_present_string("path")?;
            let data = reader
                .read_buffer(super::jute::BUFFER_BYTES_MAX)?
                .map(<[u8]>::to_vec);
            let acl = reader.read_acl()?;
            let ephemeral = reader.read_u8()? != 0;
            // A version-0 create (before 3.3) ends here; -1 asks apply to work it out.
            let parent_cversion = if reader.remaining() >= 4 {
                reader.read_i32()?
            } else {
                -1
            };
            ZkTxn::Create {
                path,
                data,
                acl,
                ephemeral_owner: if ephemeral { session_id } else { 0 },
                parent_cversion,
            }
        }
        CREATE_CONTAINER | CREATE_TTL => {
            let path = reader.read_present_string("path")?;
            let data = reader
                .read_buffer(super::jute::BUFFER_BYTES_MAX)?
                .map(<[u8]>::to_vec);
            let acl = reader.read_acl()?;
            let parent_cversion = reader.read_i32()?;
            let ephemeral_owner = if kind == CREATE_CONTAINER {
                i64::MIN
            } else {
                let ttl_ms = reader.read_i64()?;
                if !(1..=crate::proto::TTL_MS_MAX).contains(&ttl_ms) {
                    return Err(reader.error(format!("TTL {ttl_ms} ms out of range")));
                }
                crate::tree::ttl_owner(ttl_ms)
            };
            ZkTxn::Create {
                path,
                data,
                acl,
                ephemeral_owner,
                parent_cversion,
            }
        }
        DELETE | DELETE_CONTAINER => ZkTxn::Delete {
            path: reader.read_present_string("path")?,
        },
        SET_DATA => ZkTxn::SetData {
            path: reader.read_present_string("path")?,
            data: reader
                .read_buffer(super::jute::BUFFER_BYTES_MAX)?
                .map(<[u8]>::to_vec),
            version: reader.read_i32()?,
        },
        RECONFIG if top => {
            reader.read_present_string("path")?;
            reader.read_buffer(super::jute::BUFFER_BYTES_MAX)?;
            reader.read_i32()?;
            ZkTxn::Reconfig
        }
        SET_ACL => ZkTxn::SetAcl {
            path: reader.read_present_string("path")?,
            acl: reader.read_acl()?,
            version: reader.read_i32()?,
        },
        CHECK if !top => {
            let path = reader.read_present_string("path")?;
            reader.read_i32()?;
            ZkTxn::Check { path }
        }
        ERROR => {
            reader.read_i32()?;
            ZkTxn::Error
        }
        MULTI if top => {
            let start = reader.position();
            let count = reader.read_i32()?;
            if count < 0 || count as usize > MULTI_OPS_MAX {
                return Err(reader.error(format!("multi of {count} operations (at {start})")));
            }
            let mut ops = Vec::with_capacity((count as usize).min(1024));
            for _ in 0..count {
                let kind = reader.read_i32()?;
                let bytes = reader
                    .read_buffer(ENTRY_BYTES_MAX)?
                    .ok_or_else(|| reader.error("null multi operation"))?;
                let base = reader.position() - bytes.len();
                let mut inner = JuteReader::new(bytes, base as u64);
                ops.push(read_txn(&mut inner, kind, session_id, false)?);
            }
            ZkTxn::Multi(ops)
        }
        other => {
            return Err(reader.error(format!(
                "transaction type {other} is not one ZooKeeper logs"
            )))
        }
    })
}

/// The first zxid a log file name gives, or None for another file.
pub fn parse_log_name(name: &str) -> Option<i64> {
    let digits = name.strip_prefix("log.")?;
    u64::from_str_radix(digits, 16).ok().map(|zxid| zxid as i64)
}
