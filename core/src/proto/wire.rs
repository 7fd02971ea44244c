//! The client protocol's messages: the handshake, request frames decoded into engine `Op`s,
//! and engine `Response`s encoded as the replies ZooKeeper sends, field for field as
//! zookeeper.jute lays them out.

use crate::op::{
    CreateRequest, Op, OpResult, ReadOp, ReadResult, Reply, Response, SetWatchesRequest,
};
use crate::proto::jute::{DecodeError, JuteReader, JuteWriter};
use crate::proto::{AddWatchMode, CreateMode, ErrorCode, OpCode, WatchedEvent, WatcherType};

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
    /// A request answered with an error without reaching the engine (sasl, reconfig, unknown
    /// opcodes, or a body that does not decode).
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

/// Decodes a request frame. Err only when even the header is unreadable (the connection is
/// then closed); a body that does not decode becomes `Request::Refuse(MarshallingError)`, as
/// ZooKeeper answers it.
pub fn decode_request(payload: &[u8]) -> Result<RequestFrame, DecodeError> {
    let mut reader = JuteReader::new(payload);
    let xid = reader.i32()?;
    let opcode = reader.i32()?;
    let mut multi_opcodes = Vec::new();
    let request = match decode_body(opcode, &mut reader, &mut multi_opcodes) {
        Ok(request) => request,
        Err(BodyError::Code(code)) => Request::Refuse(code),
        Err(BodyError::Decode(error)) => {
            tracing::debug!(%error, opcode, "request body does not decode");
            Request::Refuse(ErrorCode::MarshallingError)
        }
    };
    Ok(RequestFrame {
        xid,
        opcode,
        multi_opcodes,
        request,
    })
}

enum BodyError {
    Decode(DecodeError),
    Code(ErrorCode),
}

impl From<DecodeError> for BodyError {
    fn from(error: DecodeError) -> Self {
        BodyError::Decode(error)
    }
}

fn path_watch(reader: &mut JuteReader<'_>) -> Result<(String, bool), DecodeError> {
    Ok((reader.ustring()?, reader.bool()?))
}

/// CreateMode for a create opcode. ZooKeeper's plain create and create2 never make a
/// container (the Txn they log is a plain create), createContainer always does.
fn create_mode(opcode: OpCode, flags: i32) -> Result<CreateMode, BodyError> {
    let mode = CreateMode::from_flag(flags).ok_or(BodyError::Code(ErrorCode::BadArguments))?;
    Ok(match (opcode, mode) {
        (OpCode::CreateContainer, _) => CreateMode::Container,
        (OpCode::Create | OpCode::Create2, CreateMode::Container) => CreateMode::Persistent,
        (_, mode) => mode,
    })
}

fn create(opcode: OpCode, reader: &mut JuteReader<'_>) -> Result<Op, BodyError> {
    let path = reader.ustring()?;
    let data = reader.buffer()?;
    let acl = reader.acl()?;
    let flags = reader.i32()?;
    let ttl_ms = if opcode == OpCode::CreateTtl {
        reader.i64()?
    } else {
        -1
    };
    let mode = create_mode(opcode, flags)?;
    Ok(Op::Create(CreateRequest {
        path,
        data,
        acl,
        mode,
        ttl_ms,
    }))
}

fn decode_body(
    opcode: i32,
    reader: &mut JuteReader<'_>,
    multi_opcodes: &mut Vec<i32>,
) -> Result<Request, BodyError> {
    let Some(known) = OpCode::from_code(opcode) else {
        return Err(BodyError::Code(ErrorCode::Unimplemented));
    };
    let op = match known {
        OpCode::Ping => return Ok(Request::Ping),
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
            create(known, reader)?
        }
        OpCode::Delete => Op::Delete {
            path: reader.ustring()?,
            version: reader.i32()?,
        },
        OpCode::Exists => {
            let (path, watch) = path_watch(reader)?;
            Op::Exists { path, watch }
        }
        OpCode::GetData => {
            let (path, watch) = path_watch(reader)?;
            Op::GetData { path, watch }
        }
        OpCode::GetChildren | OpCode::GetChildren2 => {
            let (path, watch) = path_watch(reader)?;
            Op::GetChildren { path, watch }
        }
        OpCode::SetData => Op::SetData {
            path: reader.ustring()?,
            data: reader.buffer()?,
            version: reader.i32()?,
        },
        OpCode::GetAcl => Op::GetAcl {
            path: reader.ustring()?,
        },
        OpCode::SetAcl => Op::SetAcl {
            path: reader.ustring()?,
            acl: reader.acl()?,
            version: reader.i32()?,
        },
        OpCode::Sync => Op::Sync {
            path: reader.ustring()?,
        },
        OpCode::Check => Op::Check {
            path: reader.ustring()?,
            version: reader.i32()?,
        },
        OpCode::Multi | OpCode::MultiRead => return decode_multi(known, reader, multi_opcodes),
        OpCode::GetAllChildrenNumber => Op::GetAllChildrenNumber {
            path: reader.ustring()?,
        },
        OpCode::GetEphemerals => Op::GetEphemerals {
            prefix: reader.ustring()?,
        },
        OpCode::AddWatch => {
            let path = reader.ustring()?;
            let mode = AddWatchMode::from_code(reader.i32()?)
                .ok_or(BodyError::Code(ErrorCode::BadArguments))?;
            Op::AddWatch { path, mode }
        }
        OpCode::RemoveWatches | OpCode::CheckWatches => {
            let path = reader.ustring()?;
            let watcher_type = WatcherType::from_code(reader.i32()?)
                .ok_or(BodyError::Code(ErrorCode::BadArguments))?;
            if known == OpCode::RemoveWatches {
                Op::RemoveWatches { path, watcher_type }
            } else {
                Op::CheckWatches { path, watcher_type }
            }
        }
        OpCode::SetWatches | OpCode::SetWatches2 => {
            let relative_zxid = reader.i64()?;
            let data = reader.strings()?;
            let exist = reader.strings()?;
            let child = reader.strings()?;
            let (persistent, persistent_recursive) = if known == OpCode::SetWatches2 {
                (reader.strings()?, reader.strings()?)
            } else {
                (Vec::new(), Vec::new())
            };
            Op::SetWatches(SetWatchesRequest {
                relative_zxid,
                data,
                exist,
                child,
                persistent,
                persistent_recursive,
            })
        }
        OpCode::Auth => {
            let _type = reader.i32()?;
            Op::AddAuth {
                scheme: reader.ustring()?,
                auth: reader.buffer()?,
            }
        }
        OpCode::WhoAmI => Op::WhoAmI,
        OpCode::CloseSession => Op::CloseSession,
        OpCode::DeleteContainer => Op::DeleteContainer {
            path: reader.ustring()?,
        },
        // A standalone server has reconfiguration disabled, as ZooKeeper's default.
        OpCode::Reconfig => return Err(BodyError::Code(ErrorCode::ReconfigDisabled)),
        OpCode::Sasl => return Err(BodyError::Code(ErrorCode::Unimplemented)),
        OpCode::Notification | OpCode::CreateSession | OpCode::Error => {
            return Err(BodyError::Code(ErrorCode::Unimplemented))
        }
    };
    Ok(Request::Op(op))
}

/// MultiOperationRecord: (MultiHeader, op) pairs until a header with done set. Writes and reads
/// cannot mix; anything else is a record ZooKeeper cannot decode.
fn decode_multi(
    opcode: OpCode,
    reader: &mut JuteReader<'_>,
    multi_opcodes: &mut Vec<i32>,
) -> Result<Request, BodyError> {
    let mut writes = Vec::new();
    let mut reads = Vec::new();
    loop {
        let op_type = reader.i32()?;
        let done = reader.bool()?;
        let _err = reader.i32()?;
        if done {
            break;
        }
        let op_code =
            OpCode::from_code(op_type).ok_or(BodyError::Code(ErrorCode::MarshallingError))?;
        match op_code {
            OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                writes.push(
                    create(op_code, reader)
                        .map_err(|_| BodyError::Code(ErrorCode::MarshallingError))?,
                )
            }
            OpCode::Delete => writes.push(Op::Delete {
                path: reader.ustring()?,
                version: reader.i32()?,
            }),
            OpCode::SetData => writes.push(Op::SetData {
                path: reader.ustring()?,
                data: reader.buffer()?,
                version: reader.i32()?,
            }),
            OpCode::Check => writes.push(Op::Check {
                path: reader.ustring()?,
                version: reader.i32()?,
            }),
            OpCode::GetChildren => {
                let (path, watch) = path_watch(reader)?;
                reads.push(ReadOp::GetChildren { path, watch });
            }
            OpCode::GetData => {
                let (path, watch) = path_watch(reader)?;
                reads.push(ReadOp::GetData { path, watch });
            }
            _ => return Err(BodyError::Code(ErrorCode::MarshallingError)),
        }
        multi_opcodes.push(op_type);
    }
    match (opcode, writes.is_empty(), reads.is_empty()) {
        (OpCode::Multi, _, true) => Ok(Request::Op(Op::Multi(writes))),
        (OpCode::MultiRead, true, _) => Ok(Request::Op(Op::MultiRead(reads))),
        _ => Err(BodyError::Code(ErrorCode::MarshallingError)),
    }
}

/// A reply frame carrying only a header (errors, and ops whose reply has no body).
pub fn encode_header(xid: i32, zxid: i64, err: i32) -> Vec<u8> {
    let mut writer = JuteWriter::frame();
    writer.i32(xid).i64(zxid).i32(err);
    writer.into_frame()
}

/// A watch notification frame (xid -1; the zxid of the change, as ZooKeeper 3.9 sends).
pub fn encode_event(event: &WatchedEvent) -> Vec<u8> {
    let mut writer = JuteWriter::frame();
    writer
        .i32(XID_NOTIFICATION)
        .i64(event.zxid)
        .i32(0)
        .i32(event.event_type.code())
        .i32(event.state.code())
        .ustring(&event.path);
    writer.into_frame()
}

/// The reply frame for a request.
pub fn encode_reply(frame: &RequestFrame, response: &Response) -> Vec<u8> {
    let reply = match &response.result {
        Err(code) => return encode_header(frame.xid, response.zxid, code.code()),
        Ok(Reply::Exists(None)) => {
            return encode_header(frame.xid, response.zxid, ErrorCode::NoNode.code())
        }
        Ok(reply) => reply,
    };
    let mut writer = JuteWriter::frame();
    writer.i32(frame.xid).i64(response.zxid).i32(0);
    let opcode = OpCode::from_code(frame.opcode);
    match reply {
        Reply::Create { path, stat } => {
            writer.ustring(path);
            if opcode != Some(OpCode::Create) {
                writer.stat(stat);
            }
        }
        Reply::Stat(stat) | Reply::Exists(Some(stat)) => {
            writer.stat(stat);
        }
        Reply::Exists(None) => unreachable!("answered as NoNode above"),
        Reply::Data { data, stat } => {
            writer.buffer(data).stat(stat);
        }
        Reply::Children { children, stat } => {
            writer.strings(children);
            if opcode == Some(OpCode::GetChildren2) {
                writer.stat(stat);
            }
        }
        Reply::Acl { acl, stat } => {
            writer.acl(acl).stat(stat);
        }
        Reply::Number(number) => {
            writer.i32(*number);
        }
        Reply::Paths(paths) => {
            writer.strings(paths);
        }
        Reply::Sync(path) => {
            writer.ustring(path);
        }
        Reply::Multi(results) => encode_multi(&mut writer, &frame.multi_opcodes, results),
        Reply::MultiRead(results) => encode_multi_read(&mut writer, results),
        Reply::WhoAmI(infos) => {
            writer.i32(infos.len() as i32);
            for info in infos {
                writer.ustring(&info.auth_scheme).ustring(&info.user);
            }
        }
        Reply::Done => {
            // addWatch answers an ErrorResponse(0) body; every other op answers nothing.
            if opcode == Some(OpCode::AddWatch) {
                writer.i32(0);
            }
        }
    }
    writer.into_frame()
}

fn multi_header(writer: &mut JuteWriter, op_type: i32, err: i32) {
    writer.i32(op_type).bool(false).i32(err);
}

fn encode_multi(writer: &mut JuteWriter, opcodes: &[i32], results: &[OpResult]) {
    for (index, result) in results.iter().enumerate() {
        let opcode = opcodes
            .get(index)
            .copied()
            .unwrap_or(OpCode::Create2.code());
        match result {
            // A plain create answers its path; every other create kind answers path and Stat
            // (ZooKeeper types those results create2).
            OpResult::Create { path, .. } if opcode == OpCode::Create.code() => {
                multi_header(writer, opcode, 0);
                writer.ustring(path);
            }
            OpResult::Create { path, stat } => {
                multi_header(writer, OpCode::Create2.code(), 0);
                writer.ustring(path).stat(stat);
            }
            OpResult::Delete => multi_header(writer, OpCode::Delete.code(), 0),
            OpResult::SetData(stat) => {
                multi_header(writer, OpCode::SetData.code(), 0);
                writer.stat(stat);
            }
            OpResult::Check => multi_header(writer, OpCode::Check.code(), 0),
            OpResult::Error(code) => {
                let err = code.map_or(0, ErrorCode::code);
                multi_header(writer, OpCode::Error.code(), err);
                writer.i32(err);
            }
        }
    }
    writer.i32(-1).bool(true).i32(-1);
}

fn encode_multi_read(writer: &mut JuteWriter, results: &[ReadResult]) {
    for result in results {
        match result {
            ReadResult::Data { data, stat } => {
                multi_header(writer, OpCode::GetData.code(), 0);
                writer.buffer(data).stat(stat);
            }
            ReadResult::Children(children) => {
                multi_header(writer, OpCode::GetChildren.code(), 0);
                writer.strings(children);
            }
            ReadResult::Error(code) => {
                multi_header(writer, OpCode::Error.code(), code.code());
                writer.i32(code.code());
            }
        }
    }
    writer.i32(-1).bool(true).i32(-1);
}
