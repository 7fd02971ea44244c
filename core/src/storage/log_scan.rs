//! Reading a log segment back: decoding its records and telling a torn tail (a crash) from
//! corruption (anything else), for `FileLog::open`.

use std::path::Path;

use super::error::StorageError;
use super::log::{
    Scan, FORMAT_VERSION, HEADER_BYTES, MAGIC, PAYLOAD_BYTES_MAX, RECORD_HEADER_BYTES,
};
use super::record::{LogEntry, LogRecord};
use crate::txn::Txn;

fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    u32::from_be_bytes(
        bytes[offset..offset + 4]
            .try_into()
            .expect("four bytes make a u32"),
    )
}

/// The record at `offset` (its 8-byte header is in bounds) of a segment in format `version`,
/// and where the next one starts, or why it is not one.
fn decode_record(bytes: &[u8], offset: usize, version: u32) -> Result<(LogRecord, usize), String> {
    let length = read_u32(bytes, offset);
    let checksum = read_u32(bytes, offset + 4);
    if length == 0 {
        return Err(format!("zero length with checksum {checksum:#010x}"));
    }
    if length > PAYLOAD_BYTES_MAX {
        return Err(format!(
            "length {length} exceeds PAYLOAD_BYTES_MAX ({PAYLOAD_BYTES_MAX})"
        ));
    }
    let start = offset + RECORD_HEADER_BYTES as usize;
    let end = start + length as usize;
    if end > bytes.len() {
        return Err(format!(
            "length {length} runs past the file end at {}",
            bytes.len()
        ));
    }
    let payload = &bytes[start..end];
    if crc32c::crc32c(payload) != checksum {
        return Err("checksum mismatch".into());
    }
    // Versions 1 and 2 held (zxid, Txn) pairs of a single member: entries of term 1.
    let legacy = |(zxid, txn): (i64, Txn)| LogRecord::Entry(LogEntry::legacy(zxid, txn));
    let decoded = match version {
        1 => postcard::take_from_bytes::<(i64, crate::txn::v1::Txn)>(payload)
            .map(|((zxid, txn), rest)| (legacy((zxid, Txn::from(txn))), rest)),
        2 => postcard::take_from_bytes::<(i64, Txn)>(payload)
            .map(|(pair, rest)| (legacy(pair), rest)),
        _ => postcard::take_from_bytes::<LogRecord>(payload),
    };
    match decoded {
        Ok((LogRecord::Entry(entry), [])) if entry.index == 0 || entry.index > i64::MAX as u64 => {
            Err(format!("entry index {} out of range", entry.index))
        }
        Ok((record, [])) => Ok((record, end)),
        Ok((_, rest)) => Err(format!("{} undecoded bytes in the payload", rest.len())),
        Err(error) => Err(format!("undecodable payload: {error}")),
    }
}

/// The offset of the first valid record at or after `from` (an entry after index `after`, or
/// a hard state): proof that a bad record before it is damage, not a torn tail.
fn find_valid_record(bytes: &[u8], from: usize, after: u64, version: u32) -> Option<usize> {
    let header = RECORD_HEADER_BYTES as usize;
    (from..bytes.len().saturating_sub(header - 1)).find(|&offset| {
        let length = read_u32(bytes, offset) as usize;
        // Cheap rejections first: most offsets in zeros or garbage fail here.
        length != 0
            && length <= PAYLOAD_BYTES_MAX as usize
            && offset + header + length <= bytes.len()
            && match decode_record(bytes, offset, version) {
                Ok((LogRecord::Entry(entry), _)) => entry.index > after,
                Ok((LogRecord::HardState(_), _)) => true,
                Err(_) => false,
            }
    })
}

/// Reads one segment. `previous_index` is the last entry index of the segments before it,
/// which this segment's first entry must follow (None: not checked).
pub(super) fn scan_segment(
    path: &Path,
    bytes: &[u8],
    name_index: u64,
    previous_index: Option<u64>,
    is_last: bool,
) -> Result<Scan, StorageError> {
    let corrupt = |offset: u64, reason: String| StorageError::Corrupt {
        file: path.to_path_buf(),
        offset,
        reason,
    };
    let file_bytes = bytes.len() as u64;
    let header = HEADER_BYTES as usize;
    let version = (bytes.len() >= header && bytes.starts_with(MAGIC)).then(|| read_u32(bytes, 8));
    let version = match version {
        Some(version @ 1..=FORMAT_VERSION) => version,
        Some(version) if version > FORMAT_VERSION => {
            return Err(StorageError::NewerFormat {
                file: path.to_path_buf(),
                version,
            });
        }
        _ => {
            // A header cut short by a crash reads as a prefix of the real one followed by
            // zeros (or the file end); anything else is not our file or is damaged.
            let mut expected = MAGIC.to_vec();
            expected.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
            let seen = &bytes[..bytes.len().min(header)];
            let matching = seen
                .iter()
                .zip(&expected)
                .take_while(|(seen, expected)| seen == expected)
                .count();
            if is_last && seen[matching..].iter().all(|byte| *byte == 0) {
                return Ok(Scan {
                    records: Vec::new(),
                    end: 0,
                    dirty_until: 0,
                    file_bytes,
                    version: FORMAT_VERSION,
                });
            }
            return Err(corrupt(0, "not a log segment header".into()));
        }
    };

    let mut records: Vec<LogRecord> = Vec::new();
    let mut last_index: Option<u64> = None;
    let mut offset = header;
    loop {
        if bytes.len() - offset < RECORD_HEADER_BYTES as usize {
            if bytes[offset..].iter().all(|byte| *byte == 0) {
                break;
            }
            // Fewer bytes than a record header, not all zero: torn if this is the tail.
            if !is_last {
                return Err(corrupt(
                    offset as u64,
                    "a record header cut short by the file end".into(),
                ));
            }
            break;
        }
        if read_u32(bytes, offset) == 0 && read_u32(bytes, offset + 4) == 0 {
            break;
        }
        match decode_record(bytes, offset, version) {
            Ok((LogRecord::Entry(entry), end)) => {
                let expected = match last_index {
                    Some(last) => Some(last + 1),
                    None => previous_index.map(|previous| previous + 1),
                };
                if last_index.is_none() && entry.index != name_index {
                    return Err(corrupt(
                        offset as u64,
                        format!(
                            "first entry {:#x} differs from the name's {name_index:#x}",
                            entry.index
                        ),
                    ));
                }
                if expected.is_some_and(|expected| entry.index != expected) {
                    return Err(corrupt(
                        offset as u64,
                        format!(
                            "entry {:#x} does not follow {:#x}",
                            entry.index,
                            expected.unwrap_or_default() - 1
                        ),
                    ));
                }
                last_index = Some(entry.index);
                records.push(LogRecord::Entry(entry));
                offset = end;
            }
            Ok((record, end)) => {
                records.push(record);
                offset = end;
            }
            Err(reason) if !is_last => return Err(corrupt(offset as u64, reason)),
            Err(reason) => {
                let after = last_index.or(previous_index).unwrap_or(0);
                if let Some(valid) = find_valid_record(bytes, offset + 1, after, version) {
                    return Err(corrupt(
                        offset as u64,
                        format!("{reason}, yet a valid record follows at offset {valid}"),
                    ));
                }
                // A torn tail: the log ends here.
                break;
            }
        }
    }
    let dirty_until = offset + last_nonzero_end(&bytes[offset..]);
    Ok(Scan {
        records,
        end: offset as u64,
        dirty_until: dirty_until as u64,
        file_bytes,
        version,
    })
}

/// The length of `bytes` up to its last non-zero byte. Preallocated segments end in megabytes of
/// zeros: compare them a block at a time, then look inside the last block that is not all zero.
fn last_nonzero_end(bytes: &[u8]) -> usize {
    const BLOCK_BYTES: usize = 4096;
    const ZEROS: [u8; BLOCK_BYTES] = [0; BLOCK_BYTES];
    let mut end = bytes.len();
    while end > 0 {
        let start = end.saturating_sub(BLOCK_BYTES);
        let block = &bytes[start..end];
        if block != &ZEROS[..block.len()] {
            return start
                + block
                    .iter()
                    .rposition(|byte| *byte != 0)
                    .map_or(0, |last| last + 1);
        }
        end = start;
    }
    0
}
