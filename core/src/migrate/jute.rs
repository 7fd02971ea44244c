//! Jute, ZooKeeper's record encoding, read from untrusted bytes with every length bounded, and
//! written for export: big-endian integers, length-prefixed strings, buffers and vectors
//! (length -1 for null).

use crate::proto::{Acl, Id, Perms};

/// The longest string a ZooKeeper record may hold here (paths, ACL schemes and ids).
pub const STRING_BYTES_MAX: usize = 64 * 1024;
/// The most znode data a record may hold: ZooKeeper's jute.maxbuffer default is 1 MiB, which
/// operators raise; 64 MiB leaves room and still stops a damaged length from allocating much.
pub const BUFFER_BYTES_MAX: usize = 64 * 1024 * 1024;
/// The most entries one ACL may have.
pub const ACL_ENTRIES_MAX: usize = 1024;

/// Why bytes are not the record expected, and where in them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JuteError {
    /// The byte offset where the bad field starts.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

/// Reads jute fields from a byte slice, tracking the offset for error reports.
pub struct JuteReader<'a> {
    bytes: &'a [u8],
    offset: usize,
    /// Added to offsets in errors (where these bytes sit in their file).
    base: u64,
}

impl<'a> JuteReader<'a> {
    /// A reader at the start of `bytes`, whose errors name offsets from `base`.
    pub fn new(bytes: &'a [u8], base: u64) -> JuteReader<'a> {
        JuteReader {
            bytes,
            offset: 0,
            base,
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.offset
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    /// An error at the current offset.
    pub fn error(&self, reason: impl Into<String>) -> JuteError {
        JuteError {
            offset: self.base + self.offset as u64,
            reason: reason.into(),
        }
    }

    fn take(&mut self, length: usize, what: &str) -> Result<&'a [u8], JuteError> {
        if self.remaining() < length {
            return Err(self.error(format!(
                "{what}: {length} bytes wanted, {} left",
                self.remaining()
            )));
        }
        let taken = &self.bytes[self.offset..self.offset + length];
        self.offset += length;
        Ok(taken)
    }

    /// A one-byte boolean or byte.
    pub fn read_u8(&mut self) -> Result<u8, JuteError> {
        Ok(self.take(1, "byte")?[0])
    }

    /// A big-endian i32.
    pub fn read_i32(&mut self) -> Result<i32, JuteError> {
        let bytes = self.take(4, "int")?;
        Ok(i32::from_be_bytes(bytes.try_into().expect("4 bytes")))
    }

    /// A big-endian i64.
    pub fn read_i64(&mut self) -> Result<i64, JuteError> {
        let bytes = self.take(8, "long")?;
        Ok(i64::from_be_bytes(bytes.try_into().expect("8 bytes")))
    }

    /// A buffer (None for length -1), at most `bytes_max`.
    pub fn read_buffer(&mut self, bytes_max: usize) -> Result<Option<&'a [u8]>, JuteError> {
        let start = self.offset;
        let length = self.read_i32()?;
        if length == -1 {
            return Ok(None);
        }
        if length < 0 || length as usize > bytes_max {
            self.offset = start;
            return Err(self.error(format!("length {length} outside 0..={bytes_max} bytes")));
        }
        self.take(length as usize, "buffer").map(Some)
    }

    /// A UTF-8 string (None for length -1).
    pub fn read_string(&mut self) -> Result<Option<String>, JuteError> {
        let start = self.offset;
        let Some(bytes) = self.read_buffer(STRING_BYTES_MAX)? else {
            return Ok(None);
        };
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(Some(text.to_owned())),
            Err(_) => {
                self.offset = start;
                Err(self.error("string is not UTF-8"))
            }
        }
    }

    /// A string that must be present.
    pub fn read_present_string(&mut self, what: &str) -> Result<String, JuteError> {
        let start = self.offset;
        self.read_string()?.ok_or_else(|| {
            self.offset = start;
            self.error(format!("{what} is null"))
        })
    }

    /// A vector<ACL> (null reads as empty).
    pub fn read_acl(&mut self) -> Result<Vec<Acl>, JuteError> {
        let start = self.offset;
        let count = self.read_i32()?;
        if count == -1 {
            return Ok(Vec::new());
        }
        if count < 0 || count as usize > ACL_ENTRIES_MAX {
            self.offset = start;
            return Err(self.error(format!(
                "ACL of {count} entries outside 0..={ACL_ENTRIES_MAX}"
            )));
        }
        let mut acl = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let perms = Perms(self.read_i32()?);
            let scheme = self.read_present_string("ACL scheme")?;
            let id = self.read_present_string("ACL id")?;
            acl.push(Acl::new(perms, Id::new(scheme, id)));
        }
        Ok(acl)
    }
}

/// Writes jute fields into a growing buffer.
#[derive(Default)]
pub struct JuteWriter {
    /// The bytes written so far.
    pub bytes: Vec<u8>,
}

impl JuteWriter {
    /// A big-endian i32.
    pub fn write_i32(&mut self, value: i32) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }

    /// A big-endian i64.
    pub fn write_i64(&mut self, value: i64) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }

    /// A buffer; None as length -1.
    pub fn write_buffer(&mut self, value: Option<&[u8]>) {
        match value {
            None => self.write_i32(-1),
            Some(bytes) => {
                self.write_i32(bytes.len() as i32);
                self.bytes.extend_from_slice(bytes);
            }
        }
    }

    /// A string.
    pub fn write_string(&mut self, value: &str) {
        self.write_buffer(Some(value.as_bytes()));
    }

    /// A vector<ACL>.
    pub fn write_acl(&mut self, acl: &[Acl]) {
        self.write_i32(acl.len() as i32);
        for entry in acl {
            self.write_i32(entry.perms.0);
            self.write_string(&entry.id.scheme);
            self.write_string(&entry.id.id);
        }
    }
}

/// Adler-32, the checksum ZooKeeper's snapshots and transaction logs carry.
pub fn adler32(bytes: &[u8]) -> u32 {
    Adler32::default().update(bytes).value()
}

/// Adler-32 fed in pieces.
#[derive(Clone, Copy)]
pub struct Adler32 {
    a: u32,
    b: u32,
}

impl Default for Adler32 {
    fn default() -> Self {
        Adler32 { a: 1, b: 0 }
    }
}

impl Adler32 {
    const MODULUS: u32 = 65_521;
    /// The most bytes summed before reducing: b stays below 2^32 (zlib's NMAX).
    const CHUNK_BYTES_MAX: usize = 5552;

    /// Adds `bytes`.
    pub fn update(mut self, bytes: &[u8]) -> Adler32 {
        for chunk in bytes.chunks(Self::CHUNK_BYTES_MAX) {
            for byte in chunk {
                self.a += u32::from(*byte);
                self.b += self.a;
            }
            self.a %= Self::MODULUS;
            self.b %= Self::MODULUS;
        }
        self
    }

    /// The checksum so far.
    pub fn value(self) -> u32 {
        (self.b << 16) | self.a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler32_matches_the_known_value() {
        // zlib's adler32("Wikipedia") = 0x11E60398.
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(adler32(&[0xFF; 100_000]), {
            let mut a: u64 = 1;
            let mut b: u64 = 0;
            for _ in 0..100_000 {
                a = (a + 0xFF) % 65_521;
                b = (b + a) % 65_521;
            }
            ((b << 16) | a) as u32
        });
    }

    #[test]
    fn lengths_are_bounded_and_errors_name_the_offset() {
        let mut writer = JuteWriter::default();
        writer.write_i64(9);
        writer.write_i32(i32::MAX);
        let mut reader = JuteReader::new(&writer.bytes, 100);
        assert_eq!(reader.read_i64().unwrap(), 9);
        let error = reader.read_buffer(10).unwrap_err();
        assert_eq!(error.offset, 108);
        let mut reader = JuteReader::new(&writer.bytes[..3], 0);
        assert!(reader.read_i32().is_err());
    }
}
