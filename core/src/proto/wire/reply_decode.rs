//! Reply frames decoded back into engine replies and watch events, for clients: the inverse of
//! `encode_reply`, `encode_header` and `encode_event`.
//!
//! A reply's body has no type tag: its shape follows from the opcode of the request it answers,
//! which only the client knows (it matches replies to requests by xid). Errors travel in the
//! header alone, so only successful replies have a body to decode, with one exception: a multi
//! that fails is still answered with err 0 and one result per op (see `decode_reply`).

use super::XID_NOTIFICATION;
use crate::op::{OpResult, ReadResult, Reply};
use crate::proto::jute::{DecodeError, JuteReader};
use crate::proto::{ClientInfo, ErrorCode, EventType, KeeperState, OpCode, Stat, WatchedEvent};

/// A reply's header: ZooKeeper's ReplyHeader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyHeader {
    /// The request's xid echoed; -1 for a notification, -2 for a ping, -4 for an auth packet.
    pub xid: i32,
    /// The server's last zxid when it answered (a notification: the zxid of the change; an auth
    /// reply: 0; an opcode the server does not serve: -1).
    pub zxid: i64,
    /// 0, or the ZooKeeper error code the request failed with (`ErrorCode::from_code`).
    pub err: i32,
}

impl ReplyHeader {
    /// True for a watch notification, whose body `decode_event` reads.
    pub fn is_notification(&self) -> bool {
        self.xid == XID_NOTIFICATION
    }
}

/// Splits a reply frame's payload (the bytes after the 4-byte length) into its header and body.
///
/// Err(Truncated) when the payload is shorter than the 16-byte header; the body may be empty.
pub fn decode_reply_header(payload: &[u8]) -> Result<(ReplyHeader, &[u8]), DecodeError> {
    let mut reader = JuteReader::new(payload);
    let header = ReplyHeader {
        xid: reader.i32()?,
        zxid: reader.i64()?,
        err: reader.i32()?,
    };
    let body = &payload[payload.len() - reader.remaining()..];
    Ok((header, body))
}

/// Decodes the body of a successful reply (and of a multi's reply whatever its header err) to
/// the request with `opcode` into the engine's `Reply` (crate::op::Reply).
///
/// The body must be exactly the record the opcode answers: bytes left over, a length that does
/// not fit, an unknown code inside a multi result, or an opcode no server answers with a body
/// all return Err. What the wire does not carry is filled in: a plain create's and a plain
/// getChildren's Stat (and a plain create's inside a multi) are `Stat::default()`.
///
/// Replies with a header err carry no body and are not for this function, multi's aside:
/// - exists on a missing znode is answered err NoNode with no body: the caller turns that into
///   `Reply::Exists(None)`; a successful exists always carries a Stat.
/// - a multi that fails is answered err 0 with one `OpResult::Error` per op (code `None` for
///   the ops before the failing one, `RuntimeInconsistency` after it); a multi refused before
///   it runs (as one mixing reads and writes) has a header err and no body.
/// - check (13) on its own answers the znode's Stat (ZooKeeper 3.9 and ours; 3.8.0 sends no
///   reply to a check that passes), which decodes as `Reply::Stat`.
///
/// Ping, auth, closeSession, delete, deleteContainer, setWatches, setWatches2, removeWatches
/// and checkWatches answer an empty body, addWatch an ErrorResponse of 0: all `Reply::Done`.
pub fn decode_reply(opcode: i32, body: &[u8]) -> Result<Reply, DecodeError> {
    let opcode = OpCode::from_code(opcode).ok_or(DecodeError::BadValue("reply opcode"))?;
    let mut reader = JuteReader::new(body);
    let reply = match opcode {
        OpCode::Create => Reply::Create {
            path: reader.ustring()?,
            stat: Stat::default(),
        },
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => Reply::Create {
            path: reader.ustring()?,
            stat: reader.stat()?,
        },
        OpCode::SetData | OpCode::SetAcl | OpCode::Check => Reply::Stat(reader.stat()?),
        OpCode::Exists => Reply::Exists(Some(reader.stat()?)),
        OpCode::GetData => Reply::Data {
            data: reader.buffer_or_null()?,
            stat: reader.stat()?,
        },
        OpCode::GetChildren => Reply::Children {
            children: reader.strings()?,
            stat: Stat::default(),
        },
        OpCode::GetChildren2 => Reply::Children {
            children: reader.strings()?,
            stat: reader.stat()?,
        },
        OpCode::GetAcl => Reply::Acl {
            acl: reader.acl()?,
            stat: reader.stat()?,
        },
        OpCode::GetAllChildrenNumber => Reply::Number(reader.i32()?),
        OpCode::GetEphemerals => Reply::Paths(reader.strings()?),
        OpCode::Sync => Reply::Sync(reader.ustring()?),
        OpCode::Multi => Reply::Multi(multi_results(&mut reader, op_result)?),
        OpCode::MultiRead => Reply::MultiRead(multi_results(&mut reader, read_result)?),
        OpCode::WhoAmI => Reply::WhoAmI(reader.vector(8, |reader| {
            Ok(ClientInfo {
                auth_scheme: reader.ustring()?,
                user: reader.ustring()?,
            })
        })?),
        OpCode::AddWatch => {
            // ZooKeeper's ErrorResponse: the outcome is in the header, the body always says 0.
            if reader.i32()? != 0 {
                return Err(DecodeError::BadValue("addWatch ErrorResponse"));
            }
            Reply::Done
        }
        // The new configuration's data and Stat (GetDataResponse).
        OpCode::Reconfig => Reply::Data {
            data: reader.buffer_or_null()?,
            stat: reader.stat()?,
        },
        // SetSASLResponse: a server without a SASL mechanism answers a null token. This client
        // speaks no SASL, so a real challenge is a reply it cannot take.
        OpCode::Sasl => match reader.buffer_or_null()? {
            None => Reply::Done,
            Some(_) => return Err(DecodeError::BadValue("sasl challenge")),
        },
        OpCode::Delete
        | OpCode::DeleteContainer
        | OpCode::Ping
        | OpCode::Auth
        | OpCode::CloseSession
        | OpCode::SetWatches
        | OpCode::SetWatches2
        | OpCode::RemoveWatches
        | OpCode::CheckWatches => Reply::Done,
        // Never answered with a body.
        OpCode::Notification | OpCode::CreateSession | OpCode::Error => {
            return Err(DecodeError::BadValue("reply opcode"))
        }
    };
    reader.finish()?;
    Ok(reply)
}

/// Decodes a notification body (the reply with xid -1): ZooKeeper's WatcherEvent.
///
/// The WatcherEvent record has no zxid: the change's zxid is the notification header's, so
/// the event comes back with zxid -1 and the caller sets `event.zxid = header.zxid`.
pub fn decode_event(body: &[u8]) -> Result<WatchedEvent, DecodeError> {
    let mut reader = JuteReader::new(body);
    let event_type =
        EventType::from_code(reader.i32()?).ok_or(DecodeError::BadValue("event type"))?;
    let state =
        KeeperState::from_code(reader.i32()?).ok_or(DecodeError::BadValue("keeper state"))?;
    let path = reader.ustring()?;
    reader.finish()?;
    Ok(WatchedEvent {
        event_type,
        state,
        path,
        zxid: -1,
    })
}

/// MultiResponse: (MultiHeader, result) pairs until a header with done set. Each pair takes at
/// least the header's 9 bytes, so the loop ends within the body.
fn multi_results<T>(
    reader: &mut JuteReader<'_>,
    result: fn(i32, &mut JuteReader<'_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut results = Vec::new();
    loop {
        let op_type = reader.i32()?;
        let done = reader.bool()?;
        // The header's err repeats an error result's own; ZooKeeper's client reads the result's.
        let _err = reader.i32()?;
        if done {
            return Ok(results);
        }
        results.push(result(op_type, reader)?);
    }
}

/// An ErrorResult's code: nonzero codes must be ZooKeeper's.
fn error_code(reader: &mut JuteReader<'_>) -> Result<Option<ErrorCode>, DecodeError> {
    match reader.i32()? {
        0 => Ok(None),
        code => ErrorCode::from_code(code)
            .map(Some)
            .ok_or(DecodeError::BadValue("multi result error code")),
    }
}

/// One write's result. A plain create answers its path only; create2, and ZooKeeper's type for
/// every other create kind, answers path and Stat.
fn op_result(op_type: i32, reader: &mut JuteReader<'_>) -> Result<OpResult, DecodeError> {
    let op_type = OpCode::from_code(op_type).ok_or(DecodeError::BadValue("multi result type"))?;
    Ok(match op_type {
        OpCode::Create => OpResult::Create {
            path: reader.ustring()?,
            stat: Stat::default(),
        },
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => OpResult::Create {
            path: reader.ustring()?,
            stat: reader.stat()?,
        },
        OpCode::Delete => OpResult::Delete,
        OpCode::SetData => OpResult::SetData(reader.stat()?),
        OpCode::Check => OpResult::Check,
        OpCode::Error => OpResult::Error(error_code(reader)?),
        _ => return Err(DecodeError::BadValue("multi result type")),
    })
}

/// One read's result; a read's error always has a code.
fn read_result(op_type: i32, reader: &mut JuteReader<'_>) -> Result<ReadResult, DecodeError> {
    let op_type =
        OpCode::from_code(op_type).ok_or(DecodeError::BadValue("multiRead result type"))?;
    Ok(match op_type {
        OpCode::GetData => ReadResult::Data {
            data: reader.buffer_or_null()?,
            stat: reader.stat()?,
        },
        OpCode::GetChildren => ReadResult::Children(reader.strings()?),
        OpCode::Error => ReadResult::Error(
            error_code(reader)?.ok_or(DecodeError::BadValue("multiRead error code"))?,
        ),
        _ => return Err(DecodeError::BadValue("multiRead result type")),
    })
}
