//! A `PeerMessage` to bytes and back: one tag byte naming the variant, then raft's messages in
//! raft's own protobuf encoding and the others in postcard; a message longer than a frame may
//! be goes in parts, one per frame. Bytes that do not decode give a `CodecError`, never a
//! panic: they come off the network.

use std::fmt;

use protobuf::Message as _;
use raft::eraftpb::Message;

use super::frame;
use crate::replication::{Forwarded, PeerMessage};

/// `PeerMessage::Raft`: a raft message, protobuf.
const TAG_RAFT: u8 = 1;
/// `PeerMessage::Forward`: postcard of (term, run, requests).
const TAG_FORWARD: u8 = 2;
/// `PeerMessage::ForwardAck`: postcard of (term, run, through).
const TAG_FORWARD_ACK: u8 = 3;
/// `PeerMessage::Touches`: postcard of the session ids.
const TAG_TOUCHES: u8 = 4;
/// A part of a message longer than a frame may be; more parts follow.
const TAG_PART: u8 = 5;
/// The last part of such a message: the parts' bytes joined are the message's.
const TAG_LAST_PART: u8 = 6;

/// Why bytes are not a `PeerMessage`.
#[derive(Debug)]
pub enum CodecError {
    /// No bytes at all: not even a tag.
    Empty,
    /// A tag byte no variant has.
    UnknownTag(u8),
    /// A raft message that protobuf could not parse.
    Raft(protobuf::ProtobufError),
    /// A postcard body that did not decode.
    Body {
        /// The variant's tag.
        tag: u8,
        /// postcard's reason.
        reason: postcard::Error,
    },
    /// A postcard body followed by bytes it does not use (a sender of another version, or
    /// garbage): refused rather than guessed at.
    TrailingBytes {
        /// The variant's tag.
        tag: u8,
        /// How many bytes were left over.
        count: usize,
    },
    /// A message (or the parts of one so far) longer than `message_bytes_max`.
    PartsTooLong {
        /// The bytes the parts had reached.
        length: usize,
        /// The limit they broke.
        message_bytes_max: usize,
    },
    /// A whole message arrived between the parts of another.
    PartsInterrupted,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Empty => write!(f, "empty peer message"),
            CodecError::UnknownTag(tag) => write!(f, "unknown peer message tag {tag}"),
            CodecError::Raft(error) => write!(f, "raft message does not parse: {error}"),
            CodecError::Body { tag, reason } => {
                write!(f, "peer message with tag {tag} does not decode: {reason}")
            }
            CodecError::TrailingBytes { tag, count } => {
                write!(f, "peer message with tag {tag} has {count} trailing bytes")
            }
            CodecError::PartsTooLong {
                length,
                message_bytes_max,
            } => write!(
                f,
                "a message of {length} bytes (or more) exceeds message_bytes_max ({message_bytes_max})"
            ),
            CodecError::PartsInterrupted => {
                write!(f, "a message arrived between the parts of another")
            }
        }
    }
}

impl std::error::Error for CodecError {}

/// Appends the bytes of `message` to `out`.
pub(super) fn encode(message: &PeerMessage, out: &mut Vec<u8>) {
    match message {
        PeerMessage::Raft(raft_message) => {
            out.push(TAG_RAFT);
            raft_message
                .write_to_vec(out)
                .expect("raft's messages are proto3: no required field can be missing");
        }
        PeerMessage::Forward {
            term,
            run,
            requests,
        } => {
            out.push(TAG_FORWARD);
            append_postcard(&(term, run, requests), out);
        }
        PeerMessage::ForwardAck { term, run, through } => {
            out.push(TAG_FORWARD_ACK);
            append_postcard(&(term, run, through), out);
        }
        PeerMessage::Touches(session_ids) => {
            out.push(TAG_TOUCHES);
            append_postcard(session_ids, out);
        }
    }
}

/// The message `bytes` hold (all of them: trailing bytes are an error).
pub(super) fn decode(bytes: &[u8]) -> Result<PeerMessage, CodecError> {
    let (&tag, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    match tag {
        TAG_RAFT => Message::parse_from_bytes(body)
            .map(PeerMessage::Raft)
            .map_err(CodecError::Raft),
        TAG_FORWARD => {
            let (term, run, requests): (u64, u64, Vec<Forwarded>) = take_postcard(tag, body)?;
            Ok(PeerMessage::Forward {
                term,
                run,
                requests,
            })
        }
        TAG_FORWARD_ACK => {
            let (term, run, through) = take_postcard(tag, body)?;
            Ok(PeerMessage::ForwardAck { term, run, through })
        }
        TAG_TOUCHES => Ok(PeerMessage::Touches(take_postcard(tag, body)?)),
        unknown => Err(CodecError::UnknownTag(unknown)),
    }
}

/// Appends `message` to `out` as one frame, or, when its bytes are longer than a frame may
/// be, as parts in consecutive frames: a snapshot of a large tree is one raft message of
/// hundreds of MiB, and no frame limit suits every tree.
///
/// # Errors
/// `PartsTooLong` when the message is longer than `message_bytes_max` (the peer would refuse
/// it); `out` is then unchanged.
pub(super) fn push_message(
    out: &mut Vec<u8>,
    frame_bytes_max: u32,
    message_bytes_max: usize,
    message: &PeerMessage,
) -> Result<(), CodecError> {
    // Nearly every message fits a frame: encode it in place, and only the rare long one again.
    if frame::push_frame(out, frame_bytes_max, |out| encode(message, out)).is_ok() {
        return Ok(());
    }
    let mut bytes = Vec::new();
    encode(message, &mut bytes);
    if bytes.len() > message_bytes_max {
        return Err(CodecError::PartsTooLong {
            length: bytes.len(),
            message_bytes_max,
        });
    }
    let part_bytes_max = frame_bytes_max as usize - 1;
    let mut parts = bytes.chunks(part_bytes_max).peekable();
    while let Some(part) = parts.next() {
        let tag = if parts.peek().is_some() {
            TAG_PART
        } else {
            TAG_LAST_PART
        };
        frame::push_frame(out, frame_bytes_max, |out| {
            out.push(tag);
            out.extend_from_slice(part);
        })
        .expect("a part fits its frame");
    }
    Ok(())
}

/// Joins the parts of a message that came in several frames.
#[derive(Default)]
pub(super) struct Parts {
    bytes: Vec<u8>,
}

impl Parts {
    /// The message bytes `frame` completes: the frame itself when it is a whole message, the
    /// joined parts when it is a last part, `None` while parts are still coming.
    ///
    /// # Errors
    /// `PartsTooLong` past `message_bytes_max` (checked before the part is kept), and
    /// `PartsInterrupted` for a whole message between parts: either ends the connection.
    pub(super) fn take(
        &mut self,
        frame: Vec<u8>,
        message_bytes_max: usize,
    ) -> Result<Option<Vec<u8>>, CodecError> {
        let last = match frame.first() {
            Some(&TAG_PART) => false,
            Some(&TAG_LAST_PART) => true,
            _ if self.bytes.is_empty() => return Ok(Some(frame)),
            _ => return Err(CodecError::PartsInterrupted),
        };
        let length = self.bytes.len() + frame.len() - 1;
        if length > message_bytes_max {
            return Err(CodecError::PartsTooLong {
                length,
                message_bytes_max,
            });
        }
        self.bytes.extend_from_slice(&frame[1..]);
        Ok(last.then(|| std::mem::take(&mut self.bytes)))
    }
}

fn append_postcard<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    let buffer = std::mem::take(out);
    *out = postcard::to_extend(value, buffer).expect("a Vec never refuses bytes");
}

fn take_postcard<'a, T: serde::Deserialize<'a>>(tag: u8, body: &'a [u8]) -> Result<T, CodecError> {
    let (value, rest) =
        postcard::take_from_bytes(body).map_err(|reason| CodecError::Body { tag, reason })?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(CodecError::TrailingBytes {
            tag,
            count: rest.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use raft::eraftpb::{Entry, EntryType, MessageType, Snapshot};

    use super::*;
    use crate::op::{CreateRequest, Op};
    use crate::proto::{Acl, CreateMode, Id};
    use crate::replication::ForwardedRequest;
    use crate::txn::Origin;

    fn round_trip(message: PeerMessage) {
        let mut bytes = vec![0xAA]; // encode appends: what is there already stays
        encode(&message, &mut bytes);
        assert_eq!(bytes[0], 0xAA);
        assert_eq!(decode(&bytes[1..]).unwrap(), message);
    }

    fn raft_append() -> Message {
        let mut message = Message::default();
        message.set_msg_type(MessageType::MsgAppend);
        message.to = 2;
        message.from = 1;
        message.term = 7;
        message.log_term = 6;
        message.index = 41;
        message.commit = 40;
        let mut entry = Entry::default();
        entry.set_entry_type(EntryType::EntryNormal);
        entry.term = 7;
        entry.index = 42;
        entry.data = bytes::Bytes::from_static(b"a txn");
        message.set_entries(vec![entry, Entry::default()].into());
        message.context = bytes::Bytes::from_static(b"read index context");
        message
    }

    fn raft_snapshot() -> Message {
        let mut message = Message::default();
        message.set_msg_type(MessageType::MsgSnapshot);
        message.to = 3;
        message.from = 1;
        let mut snapshot = Snapshot {
            data: bytes::Bytes::from(vec![7u8; 100_000]),
            ..Snapshot::default()
        };
        snapshot.mut_metadata().index = 99;
        snapshot.mut_metadata().term = 4;
        snapshot.mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
        message.set_snapshot(snapshot);
        message
    }

    fn forwarded(seq: u64, request: ForwardedRequest) -> Forwarded {
        Forwarded {
            seq,
            origin: Origin {
                member: 2,
                run: 5,
                request: seq + 100,
            },
            session_id: 0x0100_0000_0000_002a,
            identities: vec![Id::anyone(), Id::new("digest", "user:hash")],
            request,
        }
    }

    #[test]
    fn every_variant_round_trips() {
        round_trip(PeerMessage::Raft(Message::default()));
        round_trip(PeerMessage::Raft(raft_append()));
        round_trip(PeerMessage::Raft(raft_snapshot()));
        round_trip(PeerMessage::Forward {
            term: 3,
            run: 9,
            requests: vec![
                forwarded(
                    1,
                    ForwardedRequest::Write(Op::Create(CreateRequest {
                        path: "/a".into(),
                        data: Some(b"v1".to_vec()),
                        acl: Acl::open_unsafe(),
                        mode: CreateMode::PersistentSequential,
                        ttl_ms: -1,
                    })),
                ),
                forwarded(
                    2,
                    ForwardedRequest::Write(Op::SetData {
                        path: "/a".into(),
                        data: None,
                        version: -1,
                    }),
                ),
                forwarded(
                    3,
                    ForwardedRequest::OpenSession {
                        timeout_ms: 30_000,
                        password: [9; 16],
                    },
                ),
            ],
        });
        round_trip(PeerMessage::Forward {
            term: 0,
            run: 0,
            requests: Vec::new(),
        });
        round_trip(PeerMessage::ForwardAck {
            term: u64::MAX,
            run: 1,
            through: 12,
        });
        round_trip(PeerMessage::Touches(vec![1, -1, i64::MIN, i64::MAX]));
        round_trip(PeerMessage::Touches(Vec::new()));
    }

    #[test]
    fn malformed_bytes_name_what_is_wrong() {
        assert!(matches!(decode(&[]), Err(CodecError::Empty)));
        assert!(matches!(decode(&[0]), Err(CodecError::UnknownTag(0))));
        assert!(matches!(
            decode(&[200, 1]),
            Err(CodecError::UnknownTag(200))
        ));
        assert!(matches!(
            decode(&[TAG_FORWARD_ACK, 1]),
            Err(CodecError::Body {
                tag: TAG_FORWARD_ACK,
                ..
            })
        ));
        let mut bytes = Vec::new();
        encode(&PeerMessage::Touches(vec![5]), &mut bytes);
        bytes.extend_from_slice(&[0, 0]);
        assert!(matches!(
            decode(&bytes),
            Err(CodecError::TrailingBytes {
                tag: TAG_TOUCHES,
                count: 2
            })
        ));
        // A protobuf field header claiming more bytes than follow.
        assert!(matches!(
            decode(&[TAG_RAFT, 0x72, 0xff, 0xff, 0xff, 0x0f]),
            Err(CodecError::Raft(_))
        ));
        // A postcard vector claiming billions of session ids in a few bytes.
        assert!(matches!(
            decode(&[TAG_TOUCHES, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Err(CodecError::Body { .. })
        ));
    }

    /// Reads every frame of `bytes` through `Parts`, as the listener does.
    fn read_messages(
        bytes: &[u8],
        message_bytes_max: usize,
    ) -> Result<Vec<PeerMessage>, CodecError> {
        let mut reader = bytes;
        let mut parts = Parts::default();
        let mut messages = Vec::new();
        while let Some(frame) = frame::read_frame(&mut reader, u32::MAX).unwrap() {
            if let Some(body) = parts.take(frame, message_bytes_max)? {
                messages.push(decode(&body)?);
            }
        }
        Ok(messages)
    }

    #[test]
    fn a_message_longer_than_a_frame_goes_in_parts_and_comes_back_whole() {
        let snapshot = PeerMessage::Raft(raft_snapshot());
        let touches = PeerMessage::Touches(vec![1, 2]);
        let mut bytes = Vec::new();
        for message in [&touches, &snapshot, &touches] {
            push_message(&mut bytes, 1024, 1 << 20, message).unwrap();
        }
        // A message that fits is the one frame it always was.
        let mut one_frame = Vec::new();
        frame::push_frame(&mut one_frame, 1024, |out| encode(&touches, out)).unwrap();
        assert_eq!(bytes[..one_frame.len()], one_frame[..]);
        // The snapshot's ~100 KB went as parts of 1,023 bytes behind their tag.
        let mut encoded = Vec::new();
        encode(&snapshot, &mut encoded);
        let frames = {
            let mut reader = &bytes[..];
            std::iter::from_fn(|| frame::read_frame(&mut reader, 1024).unwrap()).count()
        };
        assert_eq!(frames, 2 + encoded.len().div_ceil(1023));
        assert_eq!(
            read_messages(&bytes, 1 << 20).unwrap(),
            vec![touches.clone(), snapshot.clone(), touches]
        );
    }

    #[test]
    fn messages_past_message_bytes_max_are_refused_either_way() {
        let snapshot = PeerMessage::Raft(raft_snapshot());
        let mut bytes = vec![1, 2, 3];
        assert!(matches!(
            push_message(&mut bytes, 1024, 50_000, &snapshot),
            Err(CodecError::PartsTooLong {
                message_bytes_max: 50_000,
                ..
            })
        ));
        assert_eq!(bytes, [1, 2, 3], "nothing of it was kept");
        // A receiver with a lower limit stops at the part that crosses it.
        let mut bytes = Vec::new();
        push_message(&mut bytes, 1024, 1 << 20, &snapshot).unwrap();
        assert!(matches!(
            read_messages(&bytes, 50_000),
            Err(CodecError::PartsTooLong { length, message_bytes_max: 50_000 }) if length <= 50_000 + 1023
        ));
    }

    #[test]
    fn a_whole_message_between_parts_is_refused() {
        let mut parts = Parts::default();
        assert_eq!(parts.take(vec![TAG_PART, 1, 2], 100).unwrap(), None);
        let mut touches = Vec::new();
        encode(&PeerMessage::Touches(vec![1]), &mut touches);
        assert!(matches!(
            parts.take(touches, 100),
            Err(CodecError::PartsInterrupted)
        ));
        // Parts of parts are not a message.
        let mut parts = Parts::default();
        assert_eq!(parts.take(vec![TAG_PART, TAG_PART], 100).unwrap(), None);
        let body = parts.take(vec![TAG_LAST_PART, 1], 100).unwrap().unwrap();
        assert!(matches!(
            decode(&body),
            Err(CodecError::UnknownTag(TAG_PART))
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn arbitrary_bodies_behind_every_tag_never_panic(
            tag in 0u8..8,
            body in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let mut bytes = vec![tag];
            bytes.extend_from_slice(&body);
            let _ = decode(&bytes);
        }

        #[test]
        fn acks_and_touches_round_trip(
            term in any::<u64>(),
            run in any::<u64>(),
            through in any::<u64>(),
            session_ids in proptest::collection::vec(any::<i64>(), 0..64),
        ) {
            round_trip(PeerMessage::ForwardAck { term, run, through });
            round_trip(PeerMessage::Touches(session_ids));
        }
    }
}
