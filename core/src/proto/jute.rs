//! Jute, ZooKeeper's record encoding: big-endian ints and longs, one-byte booleans, int-length
//! prefixed buffers, strings and vectors (-1 = null), records as their fields in order.
//!
//! The reader never trusts a length: every length is checked against the bytes left before
//! anything is allocated, so a hostile frame cannot make the server allocate more than the
//! frame it already holds.

use std::fmt;

use crate::proto::{Acl, Id, Perms, Stat};

/// Why a record could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The record needs more bytes than the frame has.
    Truncated,
    /// A length prefix is negative (other than -1 for null) or longer than the bytes left.
    BadLength(i32),
    /// A field holds a value the protocol does not define.
    BadValue(&'static str),
    /// Bytes are left over after the record.
    TrailingBytes(usize),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "record truncated"),
            DecodeError::BadLength(length) => write!(f, "invalid length prefix {length}"),
            DecodeError::BadValue(what) => write!(f, "invalid {what}"),
            DecodeError::TrailingBytes(count) => write!(f, "{count} bytes after the record"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Reads jute fields from a frame.
pub struct JuteReader<'a> {
    bytes: &'a [u8],
}

impl<'a> JuteReader<'a> {
    /// A reader over one frame's payload.
    pub fn new(bytes: &'a [u8]) -> Self {
        JuteReader { bytes }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// Fails unless every byte was read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.bytes.len() {
            0 => Ok(()),
            left => Err(DecodeError::TrailingBytes(left)),
        }
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < count {
            return Err(DecodeError::Truncated);
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(taken)
    }

    /// An int.
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    /// A long.
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    /// A boolean: one byte, anything but 0 is true (as Java's DataInput.readBoolean).
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1)?[0] != 0)
    }

    /// A length prefix: None for -1 (null); the length otherwise, checked against what is left
    /// times `unit_bytes_min` (the fewest bytes one element can take).
    fn length(&mut self, unit_bytes_min: usize) -> Result<Option<usize>, DecodeError> {
        let length = self.i32()?;
        if length == -1 {
            return Ok(None);
        }
        if length < 0 || (length as usize).saturating_mul(unit_bytes_min) > self.bytes.len() {
            return Err(DecodeError::BadLength(length));
        }
        Ok(Some(length as usize))
    }

    /// A buffer where null means nothing apart from empty (passwords, auth credentials):
    /// null reads as empty.
    pub fn buffer(&mut self) -> Result<Vec<u8>, DecodeError> {
        Ok(self.buffer_or_null()?.unwrap_or_default())
    }

    /// A buffer, or None for null: znode data, which ZooKeeper keeps null apart from empty.
    pub fn buffer_or_null(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        match self.length(1)? {
            Some(length) => Ok(Some(self.take(length)?.to_vec())),
            None => Ok(None),
        }
    }

    /// A string, or None for null. Invalid UTF-8 becomes U+FFFD, as Java decodes it (and
    /// path validation then refuses it).
    pub fn ustring_or_null(&mut self) -> Result<Option<String>, DecodeError> {
        match self.length(1)? {
            Some(length) => Ok(Some(
                String::from_utf8_lossy(self.take(length)?).into_owned(),
            )),
            None => Ok(None),
        }
    }

    /// A string; null reads as empty.
    pub fn ustring(&mut self) -> Result<String, DecodeError> {
        Ok(self.ustring_or_null()?.unwrap_or_default())
    }

    /// A vector whose elements take at least `element_bytes_min` bytes each; null reads as empty.
    pub fn vector<T>(
        &mut self,
        element_bytes_min: usize,
        mut element: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let Some(count) = self.length(element_bytes_min.max(1))? else {
            return Ok(Vec::new());
        };
        (0..count).map(|_| element(self)).collect()
    }

    /// A vector of strings.
    pub fn strings(&mut self) -> Result<Vec<String>, DecodeError> {
        self.vector(4, Self::ustring)
    }

    /// An ACL list; a null scheme or id reads as empty.
    pub fn acl(&mut self) -> Result<Vec<Acl>, DecodeError> {
        self.vector(12, |reader| {
            let perms = Perms(reader.i32()?);
            let scheme = reader.ustring()?;
            let id = reader.ustring()?;
            Ok(Acl::new(perms, Id::new(scheme, id)))
        })
    }

    /// An ACL list a client sent for a new ACL (create, setACL): as `acl`, but a scheme or
    /// id sent as null is marked so, since ZooKeeper answers it apart from an empty one.
    pub fn acl_as_sent(&mut self) -> Result<Vec<Acl>, DecodeError> {
        self.vector(12, |reader| {
            let perms = Perms(reader.i32()?);
            let scheme = reader.ustring_or_null()?;
            let id = reader.ustring_or_null()?;
            let mut entry = Id::new(
                scheme.clone().unwrap_or_default(),
                id.clone().unwrap_or_default(),
            );
            entry.scheme_is_null = scheme.is_none();
            entry.id_is_null = id.is_none();
            Ok(Acl::new(perms, entry))
        })
    }

    /// A Stat.
    pub fn stat(&mut self) -> Result<Stat, DecodeError> {
        Ok(Stat {
            czxid: self.i64()?,
            mzxid: self.i64()?,
            ctime: self.i64()?,
            mtime: self.i64()?,
            version: self.i32()?,
            cversion: self.i32()?,
            aversion: self.i32()?,
            ephemeral_owner: self.i64()?,
            data_length: self.i32()?,
            num_children: self.i32()?,
            pzxid: self.i64()?,
        })
    }
}

/// Writes jute fields into a buffer.
#[derive(Default)]
pub struct JuteWriter {
    bytes: Vec<u8>,
}

impl JuteWriter {
    /// An empty writer.
    pub fn new() -> Self {
        JuteWriter::default()
    }

    /// A writer that starts with a 4-byte placeholder for the frame length (see `into_frame`).
    pub fn frame() -> Self {
        JuteWriter::frame_with_capacity(0)
    }

    /// `frame`, with room for `payload_bytes` more before it grows (one allocation for a
    /// reply whose size is known).
    pub fn frame_with_capacity(payload_bytes: usize) -> Self {
        let mut bytes = Vec::with_capacity(4 + payload_bytes);
        bytes.extend_from_slice(&[0; 4]);
        JuteWriter { bytes }
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The frame: the placeholder from `frame()` filled with the payload's length.
    ///
    /// # Panics
    /// If the payload passes 2 GiB, which no frame may: callers bound what they encode.
    pub fn into_frame(mut self) -> Vec<u8> {
        let length = i32::try_from(self.bytes.len() - 4).expect("a frame's payload fits 2 GiB");
        self.bytes[..4].copy_from_slice(&length.to_be_bytes());
        self.bytes
    }

    /// An int.
    pub fn i32(&mut self, value: i32) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// A long.
    pub fn i64(&mut self, value: i64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// A boolean.
    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.bytes.push(value as u8);
        self
    }

    /// A buffer.
    pub fn buffer(&mut self, value: &[u8]) -> &mut Self {
        self.i32(value.len() as i32);
        self.bytes.extend_from_slice(value);
        self
    }

    /// A buffer, or null (length -1) for None.
    pub fn buffer_or_null(&mut self, value: Option<&[u8]>) -> &mut Self {
        match value {
            Some(value) => self.buffer(value),
            None => self.i32(-1),
        }
    }

    /// A string.
    pub fn ustring(&mut self, value: &str) -> &mut Self {
        self.buffer(value.as_bytes())
    }

    /// A string, or null (length -1) for None.
    pub fn ustring_or_null(&mut self, value: Option<&str>) -> &mut Self {
        self.buffer_or_null(value.map(str::as_bytes))
    }

    /// A vector of strings.
    pub fn strings<S: AsRef<str>>(&mut self, values: &[S]) -> &mut Self {
        self.i32(values.len() as i32);
        for value in values {
            self.ustring(value.as_ref());
        }
        self
    }

    /// An ACL list.
    pub fn acl(&mut self, acl: &[Acl]) -> &mut Self {
        self.i32(acl.len() as i32);
        for entry in acl {
            self.i32(entry.perms.0)
                .ustring(&entry.id.scheme)
                .ustring(&entry.id.id);
        }
        self
    }

    /// A Stat.
    pub fn stat(&mut self, stat: &Stat) -> &mut Self {
        self.i64(stat.czxid)
            .i64(stat.mzxid)
            .i64(stat.ctime)
            .i64(stat.mtime)
            .i32(stat.version)
            .i32(stat.cversion)
            .i32(stat.aversion)
            .i64(stat.ephemeral_owner)
            .i32(stat.data_length)
            .i32(stat.num_children)
            .i64(stat.pzxid)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_new_acl_keeps_a_null_id_apart_from_an_empty_one() {
        let mut frame = JuteWriter::new();
        frame.i32(2);
        frame.i32(31).ustring("x509").ustring_or_null(None);
        frame.i32(31).ustring("x509").ustring("");
        let bytes = frame.into_bytes();
        let sent = JuteReader::new(&bytes).acl_as_sent().unwrap();
        assert_eq!(
            (sent[0].id.id_is_null, sent[1].id.id_is_null),
            (true, false)
        );
        assert_eq!(sent[0].id.id, "");
        // Elsewhere (a reply's ACL) null reads as empty, as every other string.
        let read = JuteReader::new(&bytes).acl().unwrap();
        assert_eq!(read[0], read[1]);
    }

    #[test]
    fn lengths_are_checked_before_allocating() {
        let mut frame = JuteWriter::new();
        frame.i32(i32::MAX);
        let bytes = frame.into_bytes();
        assert_eq!(
            JuteReader::new(&bytes).buffer(),
            Err(DecodeError::BadLength(i32::MAX))
        );
        let bytes = (-2i32).to_be_bytes();
        assert_eq!(
            JuteReader::new(&bytes).ustring(),
            Err(DecodeError::BadLength(-2))
        );
        // A vector of a million ACLs cannot fit in 8 bytes.
        let mut frame = JuteWriter::new();
        frame.i32(1_000_000).i32(0);
        let bytes = frame.into_bytes();
        assert_eq!(
            JuteReader::new(&bytes).acl(),
            Err(DecodeError::BadLength(1_000_000))
        );
    }

    #[test]
    fn null_reads_as_empty_and_truncation_is_caught() {
        let bytes = (-1i32).to_be_bytes();
        assert_eq!(JuteReader::new(&bytes).buffer(), Ok(vec![]));
        assert_eq!(JuteReader::new(&bytes).buffer_or_null(), Ok(None));
        let mut frame = JuteWriter::new();
        frame.buffer_or_null(None).buffer_or_null(Some(b""));
        let bytes = frame.into_bytes();
        let mut reader = JuteReader::new(&bytes);
        assert_eq!(reader.buffer_or_null(), Ok(None));
        assert_eq!(reader.buffer_or_null(), Ok(Some(vec![])));
        assert_eq!(JuteReader::new(&bytes).ustring_or_null(), Ok(None));
        assert_eq!(JuteReader::new(&bytes).strings(), Ok(vec![]));
        assert_eq!(
            JuteReader::new(&[0, 0, 0]).i32(),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            JuteReader::new(&[0, 0, 0, 5, b'a']).ustring(),
            Err(DecodeError::BadLength(5))
        );
    }

    /// Any Stat, field by field (shared with the wire tests).
    pub(crate) fn any_stat() -> impl Strategy<Value = Stat> {
        (any::<[i64; 6]>(), any::<[i32; 5]>()).prop_map(|(longs, ints)| Stat {
            czxid: longs[0],
            mzxid: longs[1],
            ctime: longs[2],
            mtime: longs[3],
            version: ints[0],
            cversion: ints[1],
            aversion: ints[2],
            ephemeral_owner: longs[4],
            data_length: ints[3],
            num_children: ints[4],
            pzxid: longs[5],
        })
    }

    proptest! {
        #[test]
        fn fields_round_trip(
            int in any::<i32>(),
            long in any::<i64>(),
            flag in any::<bool>(),
            data in proptest::collection::vec(any::<u8>(), 0..64),
            text in ".{0,16}",
            names in proptest::collection::vec(".{0,8}", 0..5),
            stat in any_stat(),
            perms in any::<i32>(),
        ) {
            let acl = vec![Acl::new(Perms(perms), Id::new("digest", text.clone()))];
            let mut writer = JuteWriter::new();
            writer.i32(int).i64(long).bool(flag).buffer(&data).ustring(&text).strings(&names).acl(&acl).stat(&stat);
            let bytes = writer.into_bytes();
            let mut reader = JuteReader::new(&bytes);
            prop_assert_eq!(reader.i32().unwrap(), int);
            prop_assert_eq!(reader.i64().unwrap(), long);
            prop_assert_eq!(reader.bool().unwrap(), flag);
            prop_assert_eq!(reader.buffer().unwrap(), data);
            prop_assert_eq!(reader.ustring().unwrap(), text);
            prop_assert_eq!(reader.strings().unwrap(), names);
            prop_assert_eq!(reader.acl().unwrap(), acl);
            prop_assert_eq!(reader.stat().unwrap(), stat);
            prop_assert!(reader.finish().is_ok());
        }
    }
}
