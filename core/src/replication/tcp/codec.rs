//! A `PeerMessage` to bytes and back: one tag byte naming the variant, then raft's messages in
//! raft's own protobuf encoding and the others in postcard. Bytes that do not decode give a
//! `CodecError`, never a panic: they come off the network.

use std::fmt;

use protobuf::Message as _;
use raft::eraftpb::Message;

use crate::replication::{Forwarded, PeerMessage};

/// `PeerMessage::Raft`: a raft message, protobuf.
const TAG_RAFT: u8 = 1;
/// `PeerMessage::Forward`: postcard of (term, run, requests).
const TAG_FORWARD: u8 = 2;
/// `PeerMessage::ForwardAck`: postcard of (term, run, through).
const TAG_FORWARD_ACK: u8 = 3;
/// `PeerMessage::Touches`: postcard of the session ids.
const TAG_TOUCHES: u8 = 4;

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

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn arbitrary_bodies_behind_every_tag_never_panic(
            tag in 0u8..6,
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
