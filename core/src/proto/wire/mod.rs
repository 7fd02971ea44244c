//! The client protocol's messages: the handshake, request frames decoded into engine `Op`s,
//! and engine `Response`s encoded as the replies ZooKeeper sends (and decoded back, for
//! clients), field for field as zookeeper.jute lays them out.

mod decode;
mod reply;
mod reply_decode;
mod request;

pub use decode::decode_request;
pub use reply::{encode_event, encode_header, encode_reply};
pub use reply_decode::{decode_event, decode_reply, decode_reply_header, ReplyHeader};
pub use request::encode_request;

use crate::op::Op;
use crate::proto::jute::{DecodeError, JuteReader, JuteWriter};
use crate::proto::{ErrorCode, OpCode};

/// The protocol version clients and servers speak.
pub const PROTOCOL_VERSION: i32 = 0;
/// xid of watch notifications.
pub const XID_NOTIFICATION: i32 = -1;
/// xid of pings.
pub const XID_PING: i32 = -2;
/// xid of auth packets.
pub const XID_AUTH: i32 = -4;
/// xid of setWatches after a reconnect.
pub const XID_SET_WATCHES: i32 = -8;

/// The handshake a client opens a connection with (no request header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectRequest {
    /// 0.
    pub protocol_version: i32,
    /// The newest zxid the client has seen; a server behind it must refuse the client.
    pub last_zxid_seen: i64,
    /// Requested session timeout.
    pub timeout_ms: i32,
    /// 0 for a new session, else the session to resume.
    pub session_id: i64,
    /// The session's password when resuming.
    pub password: Vec<u8>,
    /// Absent for clients older than 3.4, which also do not expect it in the response.
    pub read_only: Option<bool>,
}

impl ConnectRequest {
    /// Decodes the first frame of a connection.
    pub fn decode(payload: &[u8]) -> Result<ConnectRequest, DecodeError> {
        let mut reader = JuteReader::new(payload);
        let request = ConnectRequest {
            protocol_version: reader.i32()?,
            last_zxid_seen: reader.i64()?,
            timeout_ms: reader.i32()?,
            session_id: reader.i64()?,
            password: reader.buffer()?,
            read_only: if reader.remaining() > 0 {
                Some(reader.bool()?)
            } else {
                None
            },
        };
        Ok(request)
    }

    /// The frame a client sends.
    pub fn encode_frame(&self) -> Vec<u8> {
        let mut writer = JuteWriter::frame();
        writer
            .i32(self.protocol_version)
            .i64(self.last_zxid_seen)
            .i32(self.timeout_ms)
            .i64(self.session_id)
            .buffer(&self.password);
        if let Some(read_only) = self.read_only {
            writer.bool(read_only);
        }
        writer.into_frame()
    }
}

/// The server's answer to the handshake. A session id of 0 and timeout 0 mean "expired".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectResponse {
    /// 0.
    pub protocol_version: i32,
    /// The negotiated timeout.
    pub timeout_ms: i32,
    /// The session.
    pub session_id: i64,
    /// Its password.
    pub password: Vec<u8>,
    /// Sent only when the request carried it.
    pub read_only: Option<bool>,
}

impl ConnectResponse {
    /// The answer for a session that cannot be resumed: the client reports it as expired.
    pub fn expired(read_only: Option<bool>) -> ConnectResponse {
        ConnectResponse {
            protocol_version: PROTOCOL_VERSION,
            timeout_ms: 0,
            session_id: 0,
            password: vec![0; 16],
            read_only: read_only.map(|_| false),
        }
    }

    /// The frame sent to the client.
    pub fn encode_frame(&self) -> Vec<u8> {
        let mut writer = JuteWriter::frame();
        writer
            .i32(self.protocol_version)
            .i32(self.timeout_ms)
            .i64(self.session_id)
            .buffer(&self.password);
        if let Some(read_only) = self.read_only {
            writer.bool(read_only);
        }
        writer.into_frame()
    }

    /// Decodes a handshake answer (for clients and tests).
    pub fn decode(payload: &[u8]) -> Result<ConnectResponse, DecodeError> {
        let mut reader = JuteReader::new(payload);
        Ok(ConnectResponse {
            protocol_version: reader.i32()?,
            timeout_ms: reader.i32()?,
            session_id: reader.i64()?,
            password: reader.buffer()?,
            read_only: if reader.remaining() > 0 {
                Some(reader.bool()?)
            } else {
                None
            },
        })
    }
}

/// What a request frame asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// An op for the engine.
    Op(Op),
    /// A ping: answered at once, it only keeps the session alive.
    Ping,
    /// A request answered with an error: an unknown opcode, or a body that does not decode.
    Refuse(ErrorCode),
}

/// A decoded request frame: its header and what it asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestFrame {
    /// The client's request number, echoed in the reply.
    pub xid: i32,
    /// The opcode as sent; it decides the reply's shape.
    pub opcode: i32,
    /// For multi and multiRead: each op's opcode, which decides its result's shape.
    pub multi_opcodes: Vec<i32>,
    /// The request.
    pub request: Request,
}

/// True for the opcodes ZooKeeper serves as a request of their own (its `Request.isValid`, plus
/// auth and sasl, which it handles before that check; a standalone check is served as 3.9
/// serves it). Any other opcode is answered Unimplemented with zxid -1 and the connection is
/// closed.
pub fn is_served(opcode: i32) -> bool {
    use OpCode::*;
    matches!(
        OpCode::from_code(opcode),
        Some(
            CloseSession
                | Check
                | Create
                | Create2
                | CreateTtl
                | CreateContainer
                | Delete
                | DeleteContainer
                | Exists
                | GetAcl
                | GetChildren
                | GetAllChildrenNumber
                | GetChildren2
                | GetData
                | GetEphemerals
                | Multi
                | MultiRead
                | Ping
                | Reconfig
                | SetAcl
                | SetData
                | SetWatches
                | SetWatches2
                | Sync
                | CheckWatches
                | RemoveWatches
                | AddWatch
                | WhoAmI
                | Auth
                | Sasl
        )
    )
}

#[cfg(test)]
mod tests;
