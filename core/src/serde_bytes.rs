//! Byte strings as serde byte strings: postcard writes them exactly as a sequence of u8 (a
//! varint length, then the bytes), so the formats do not change, but they are read in one
//! copy instead of element by element, which made decoding a 1 KiB Txn a thousand calls.

use serde::de::{Deserializer, Error, Visitor};
use serde::ser::Serializer;

struct ByteBufVisitor;

impl<'de> Visitor<'de> for ByteBufVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a byte string")
    }

    fn visit_bytes<E: Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
        Ok(bytes.to_vec())
    }

    fn visit_byte_buf<E: Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(bytes)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(byte) = seq.next_element()? {
            bytes.push(byte);
        }
        Ok(bytes)
    }
}

/// `#[serde(with = "crate::serde_bytes::vec")]` for a `Vec<u8>`.
pub mod vec {
    use super::*;

    /// Writes the bytes as one byte string.
    pub fn serialize<S: Serializer>(
        bytes: &impl AsRef<[u8]>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes.as_ref())
    }

    /// Reads a byte string.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_byte_buf(ByteBufVisitor)
    }
}

/// `#[serde(with = "crate::serde_bytes::option")]` for an `Option<Vec<u8>>` (ZooKeeper's null
/// or present data).
pub mod option {
    use serde::de::{Deserializer, Visitor};
    use serde::ser::Serializer;

    struct Bytes<'a>(&'a [u8]);

    impl serde::Serialize for Bytes<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(self.0)
        }
    }

    /// Writes null, or the bytes as one byte string.
    pub fn serialize<S: Serializer>(
        data: &Option<Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match data {
            Some(bytes) => serializer.serialize_some(&Bytes(bytes)),
            None => serializer.serialize_none(),
        }
    }

    struct OptionVisitor;

    impl<'de> Visitor<'de> for OptionVisitor {
        type Value = Option<Vec<u8>>;

        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("an optional byte string")
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Option<Vec<u8>>, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Option<Vec<u8>>, D::Error> {
            super::vec::deserialize(deserializer).map(Some)
        }
    }

    /// Reads null or a byte string.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        deserializer.deserialize_option(OptionVisitor)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct AsSequence {
        data: Option<Vec<u8>>,
        raw: Vec<u8>,
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct AsBytes {
        #[serde(with = "super::option")]
        data: Option<Vec<u8>>,
        #[serde(with = "super::vec")]
        raw: Vec<u8>,
    }

    /// Guards against a format change: logs written before read the same.
    #[test]
    fn byte_strings_encode_as_sequences_of_u8_did() {
        for data in [None, Some(Vec::new()), Some(vec![0, 1, 255, 7])] {
            let raw: Vec<u8> = (0..300).map(|n| n as u8).collect();
            let old = postcard::to_allocvec(&AsSequence {
                data: data.clone(),
                raw: raw.clone(),
            })
            .unwrap();
            let new = postcard::to_allocvec(&AsBytes {
                data: data.clone(),
                raw: raw.clone(),
            })
            .unwrap();
            assert_eq!(old, new);
            let read: AsBytes = postcard::from_bytes(&old).unwrap();
            assert_eq!(read, AsBytes { data, raw });
        }
    }
}
