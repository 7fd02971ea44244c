//! Apache ZooKeeper's snapshot files (`version-2/snapshot.<zxid>`, plain, `.gz` or `.snappy`):
//! read into znode images with the checksum and the optional digest trailer checked, and
//! written (plain, as 3.8 writes by default) for going back.
//!
//! Layout (FileSnap + SerializeUtils + DataTree, all jute): a file header (magic "ZKSN",
//! version 2, dbid), the sessions (count, then id and timeout each), the ACL table (count,
//! then a long key and a vector<ACL> each), then znodes in pre-order (path, data, ACL key,
//! StatPersisted) ended by the path "/", then an Adler-32 of everything before it and "/".
//! Since 3.6 a digest (zxid, version, digest) and a second checksum may follow.

use std::collections::HashMap;
use std::io::Read;

use super::jute::{Adler32, JuteError, JuteReader, JuteWriter, BUFFER_BYTES_MAX};
use crate::proto::Acl;
use crate::tree::ZnodeImage;

/// "ZKSN".
pub const SNAPSHOT_MAGIC: i32 = 0x5A4B_534E;
/// The only file version ZooKeeper has written.
const FILE_VERSION: i32 = 2;
/// ZooKeeper's `Ids.OPEN_ACL_UNSAFE` key in a snapshot's ACL table (never stored in it).
const OPEN_ACL_KEY: i64 = -1;
/// The most a snapshot may hold once decompressed: a stop for a damaged or hostile file.
pub const SNAPSHOT_BYTES_MAX: u64 = 64 * 1024 * 1024 * 1024;
/// The most sessions a snapshot may list.
pub const SESSIONS_MAX: usize = 10_000_000;
/// The most distinct ACLs a snapshot may list.
pub const ACLS_MAX: usize = 10_000_000;
/// xerial snappy-java's stream header: magic, then version and compatible version (ints).
const SNAPPY_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const SNAPPY_HEADER_BYTES: usize = 16;
/// The most one snappy-java chunk may expand to (it writes 32 KiB blocks by default).
const SNAPPY_CHUNK_BYTES_MAX: usize = 64 * 1024 * 1024;

/// A snapshot's contents, as ZooKeeper wrote them.
#[derive(Debug, Default)]
pub struct ZkSnapshot {
    /// (session id, timeout in ms).
    pub sessions: Vec<(i64, i32)>,
    /// The distinct ACLs; `ZnodeImage::acl` indexes this.
    pub acls: Vec<Vec<Acl>>,
    /// Znodes in pre-order, the root ("" in the file) as "/".
    pub znodes: Vec<ZnodeImage>,
    /// The digest trailer's zxid, when there is one.
    pub digest_zxid: Option<i64>,
}

/// How a snapshot file is compressed, from its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// `snapshot.<zxid>`.
    None,
    /// `snapshot.<zxid>.gz`.
    Gzip,
    /// `snapshot.<zxid>.snappy` (snappy-java's stream format).
    Snappy,
}

/// The zxid and compression a snapshot file name gives, or None for another file.
pub fn parse_snapshot_name(name: &str) -> Option<(i64, Compression)> {
    let rest = name.strip_prefix("snapshot.")?;
    let (digits, compression) = if let Some(digits) = rest.strip_suffix(".gz") {
        (digits, Compression::Gzip)
    } else if let Some(digits) = rest.strip_suffix(".snappy") {
        (digits, Compression::Snappy)
    } else {
        (rest, Compression::None)
    };
    let zxid = u64::from_str_radix(digits, 16).ok()?;
    Some((zxid as i64, compression))
}

/// The decompressed bytes of a snapshot file; errors name an offset in the compressed file.
pub fn decompress(file: &[u8], compression: Compression) -> Result<Vec<u8>, JuteError> {
    match compression {
        Compression::None => Ok(file.to_vec()),
        Compression::Gzip => {
            let mut bytes = Vec::new();
            let decoder = flate2::read::GzDecoder::new(file);
            decoder
                .take(SNAPSHOT_BYTES_MAX + 1)
                .read_to_end(&mut bytes)
                .map_err(|error| JuteError {
                    offset: 0,
                    reason: format!("gzip stream does not decompress: {error}"),
                })?;
            if bytes.len() as u64 > SNAPSHOT_BYTES_MAX {
                return Err(JuteError {
                    offset: 0,
                    reason: format!("decompresses past {SNAPSHOT_BYTES_MAX} bytes"),
                });
            }
            Ok(bytes)
        }
        Compression::Snappy => decompress_snappy(file),
    }
}

fn decompress_snappy(file: &[u8]) -> Result<Vec<u8>, JuteError> {
    if file.len() < SNAPPY_HEADER_BYTES || &file[..8] != SNAPPY_MAGIC {
        return Err(JuteError {
            offset: 0,
            reason: "no snappy-java stream header".into(),
        });
    }
    let mut reader = JuteReader::new(&file[SNAPPY_HEADER_BYTES..], SNAPPY_HEADER_BYTES as u64);
    let mut decoder = snap::raw::Decoder::new();
    let mut bytes = Vec::new();
    while reader.remaining() > 0 {
        let chunk = reader
            .read_buffer(SNAPPY_CHUNK_BYTES_MAX)?
            .ok_or_else(|| reader.error("null snappy chunk"))?;
        let length = snap::raw::decompress_len(chunk)
            .map_err(|error| reader.error(format!("snappy chunk: {error}")))?;
        if length > SNAPPY_CHUNK_BYTES_MAX || (bytes.len() + length) as u64 > SNAPSHOT_BYTES_MAX {
            return Err(reader.error(format!("snappy chunk expands to {length} bytes")));
        }
        let start = bytes.len();
        bytes.resize(start + length, 0);
        decoder
            .decompress(chunk, &mut bytes[start..])
            .map_err(|error| reader.error(format!("snappy chunk: {error}")))?;
    }
    Ok(bytes)
}

/// Reads a decompressed snapshot; `progress` is told how many bytes were read so far.
pub fn read_snapshot(bytes: &[u8], progress: &mut dyn FnMut(u64)) -> Result<ZkSnapshot, JuteError> {
    let mut reader = JuteReader::new(bytes, 0);
    let magic = reader.read_i32()?;
    if magic != SNAPSHOT_MAGIC {
        return Err(JuteError {
            offset: 0,
            reason: format!("magic {magic:#x} is not ZooKeeper's snapshot magic"),
        });
    }
    let version = reader.read_i32()?;
    if version != FILE_VERSION {
        return Err(JuteError {
            offset: 4,
            reason: format!("snapshot file version {version}, expected {FILE_VERSION}"),
        });
    }
    let _dbid = reader.read_i64()?;
    let mut snapshot = ZkSnapshot::default();
    let count = read_count(&mut reader, SESSIONS_MAX, "sessions")?;
    for _ in 0..count {
        let id = reader.read_i64()?;
        let timeout_ms = reader.read_i32()?;
        snapshot.sessions.push((id, timeout_ms));
    }

    let count = read_count(&mut reader, ACLS_MAX, "ACLs")?;
    let mut acl_slots: HashMap<i64, u32> = HashMap::with_capacity(count);
    for _ in 0..count {
        let key = reader.read_i64()?;
        let acl = reader.read_acl()?;
        acl_slots.insert(key, snapshot.acls.len() as u32);
        snapshot.acls.push(acl);
    }

    loop {
        let path_offset = reader.position();
        let path = reader.read_present_string("path")?;
        if path == "/" {
            break;
        }
        let data = reader.read_buffer(BUFFER_BYTES_MAX)?.map(<[u8]>::to_vec);
        let acl_key = reader.read_i64()?;
        let acl = match acl_slots.get(&acl_key) {
            Some(slot) => *slot,
            None if acl_key == OPEN_ACL_KEY => {
                snapshot.acls.push(Acl::open_unsafe());
                let slot = (snapshot.acls.len() - 1) as u32;
                acl_slots.insert(OPEN_ACL_KEY, slot);
                slot
            }
            None => {
                return Err(JuteError {
                    offset: path_offset as u64,
                    reason: format!("znode {path} names ACL {acl_key}, not in the table"),
                })
            }
        };
        let czxid = reader.read_i64()?;
        let mzxid = reader.read_i64()?;
        let ctime = reader.read_i64()?;
        let mtime = reader.read_i64()?;
        let version = reader.read_i32()?;
        let cversion = reader.read_i32()?;
        let aversion = reader.read_i32()?;
        let ephemeral_owner = reader.read_i64()?;
        let pzxid = reader.read_i64()?;
        snapshot.znodes.push(ZnodeImage {
            path: if path.is_empty() { "/".into() } else { path },
            data,
            acl,
            czxid,
            mzxid,
            pzxid,
            ctime,
            mtime,
            ephemeral_owner,
            version,
            cversion,
            aversion,
        });
        if snapshot.znodes.len() % 4096 == 0 {
            progress(reader.position() as u64);
        }
    }
    check_seal(&mut reader, bytes)?;
    // Since 3.6: a digest and a second seal. Older snapshots end here.
    if reader.remaining() > 0 {
        let zxid = reader.read_i64()?;
        let digest_version = reader.read_i32()?;
        if digest_version < 2 {
            reader.read_string()?;
        } else {
            reader.read_i64()?;
        }
        snapshot.digest_zxid = Some(zxid);
        check_seal(&mut reader, bytes)?;
    }
    if reader.remaining() > 0 {
        return Err(reader.error(format!("{} bytes after the snapshot", reader.remaining())));
    }
    progress(bytes.len() as u64);
    Ok(snapshot)
}

fn read_count(reader: &mut JuteReader<'_>, max: usize, what: &str) -> Result<usize, JuteError> {
    let count = reader.read_i32()?;
    if count < 0 || count as usize > max {
        return Err(reader.error(format!("{count} {what} outside 0..={max}")));
    }
    Ok(count as usize)
}

/// The Adler-32 of everything before it, then "/".
fn check_seal(reader: &mut JuteReader<'_>, bytes: &[u8]) -> Result<(), JuteError> {
    let expected = Adler32::default()
        .update(&bytes[..reader.position()])
        .value();
    let offset = reader.position();
    let stored = reader.read_i64()?;
    if stored != i64::from(expected) {
        return Err(JuteError {
            offset: offset as u64,
            reason: format!("checksum {stored:#x} does not match the content's {expected:#x}"),
        });
    }
    if reader.read_string()?.as_deref() != Some("/") {
        return Err(reader.error("checksum not followed by \"/\""));
    }
    Ok(())
}

/// A plain snapshot file as ZooKeeper 3.8 writes it, without the digest (3.8 loads a snapshot
/// that has none as an older one). The root is written with ZooKeeper's path "".
pub fn write_snapshot(snapshot: &ZkSnapshot) -> Vec<u8> {
    let mut writer = JuteWriter::default();
    writer.write_i32(SNAPSHOT_MAGIC);
    writer.write_i32(FILE_VERSION);
    writer.write_i64(-1);
    writer.write_i32(snapshot.sessions.len() as i32);
    for (id, timeout_ms) in &snapshot.sessions {
        writer.write_i64(*id);
        writer.write_i32(*timeout_ms);
    }
    // Keys from 1: ZooKeeper's cache numbers its ACLs so, and -1 means the open ACL.
    writer.write_i32(snapshot.acls.len() as i32);
    for (slot, acl) in snapshot.acls.iter().enumerate() {
        writer.write_i64(slot as i64 + 1);
        writer.write_acl(acl);
    }
    for znode in &snapshot.znodes {
        writer.write_string(if znode.path == "/" { "" } else { &znode.path });
        writer.write_buffer(znode.data.as_deref());
        writer.write_i64(i64::from(znode.acl) + 1);
        writer.write_i64(znode.czxid);
        writer.write_i64(znode.mzxid);
        writer.write_i64(znode.ctime);
        writer.write_i64(znode.mtime);
        writer.write_i32(znode.version);
        writer.write_i32(znode.cversion);
        writer.write_i32(znode.aversion);
        writer.write_i64(znode.ephemeral_owner);
        writer.write_i64(znode.pzxid);
    }
    writer.write_string("/");
    let checksum = Adler32::default().update(&writer.bytes).value();
    writer.write_i64(i64::from(checksum));
    writer.write_string("/");
    writer.bytes
}
