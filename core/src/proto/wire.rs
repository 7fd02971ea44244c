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

/// True for the opcodes ZooKeeper serves as a request of their own (its `Request.isValid`, plus
/// auth and sasl, which it handles before that check). Any other opcode, standalone check
/// included, is answered Unimplemented with zxid -1 and the connection is closed.
pub fn is_served(opcode: i32) -> bool {
    use OpCode::*;
    matches!(
        OpCode::from_code(opcode),
        Some(
            CloseSession
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
    // A multi refused part-way has no op results for the types read so far to shape.
    if matches!(request, Request::Refuse(_)) {
        multi_opcodes.clear();
    }
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
    let Some(known) = OpCode::from_code(opcode).filter(|_| is_served(opcode)) else {
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

/// The frame a ZooKeeper client sends for a request: the length prefix, the RequestHeader and
/// the op's record, field for field as zookeeper.jute (and `MultiOperationRecord` for multi)
/// lays them out. It is the inverse of `decode_request`: for every frame that function returns,
/// `decode_request(&encode_request(&frame)[4..])` gives the same frame back.
///
/// The header carries `frame.opcode` as given. Where one op has several records the opcode
/// picks the record: createTTL adds the TTL (`ttl_ms` is sent under no other opcode) and
/// setWatches2 adds the persistent lists. In a multi each op's MultiHeader type is its entry in
/// `multi_opcodes`, or, where that list has no entry, the type the Java client sends for the op.
///
/// `Request::Refuse` is what the server makes of a request it will not run, so no client sends
/// one; it encodes as a frame `decode_request` refuses with the same code: the header alone,
/// or for BadArguments the record with its flags, mode or watcher type out of range.
///
/// # Panics
///
/// In debug builds, when `frame.opcode` cannot carry the op (say getData with a delete), or a
/// multi holds an op that is not a create, delete, setData or check: both are the caller's bug.
pub fn encode_request(frame: &RequestFrame) -> Vec<u8> {
    let mut writer = JuteWriter::frame();
    writer.i32(frame.xid).i32(frame.opcode);
    let opcode = OpCode::from_code(frame.opcode);
    match &frame.request {
        // A ping is a header alone (ClientCnxn sends no record with it).
        Request::Ping => {
            debug_assert_eq!(
                opcode,
                Some(OpCode::Ping),
                "a ping goes under the ping opcode"
            )
        }
        Request::Refuse(code) => encode_refused_body(&mut writer, opcode, *code),
        Request::Op(op) => {
            debug_assert!(
                opcode.is_some_and(|opcode| opcode_carries(opcode, op)),
                "opcode {} cannot carry {op:?}",
                frame.opcode
            );
            encode_op(&mut writer, opcode, &frame.multi_opcodes, op);
        }
    }
    writer.into_frame()
}

/// True when a request under `opcode` decodes to an op of `op`'s kind.
fn opcode_carries(opcode: OpCode, op: &Op) -> bool {
    use OpCode as Code;
    match op {
        Op::Create(_) => matches!(
            opcode,
            Code::Create | Code::Create2 | Code::CreateContainer | Code::CreateTtl
        ),
        Op::GetChildren { .. } => matches!(opcode, Code::GetChildren | Code::GetChildren2),
        Op::SetWatches(_) => matches!(opcode, Code::SetWatches | Code::SetWatches2),
        Op::Delete { .. } => opcode == Code::Delete,
        Op::SetData { .. } => opcode == Code::SetData,
        Op::SetAcl { .. } => opcode == Code::SetAcl,
        Op::Check { .. } => opcode == Code::Check,
        Op::Multi(_) => opcode == Code::Multi,
        Op::GetData { .. } => opcode == Code::GetData,
        Op::Exists { .. } => opcode == Code::Exists,
        Op::GetAcl { .. } => opcode == Code::GetAcl,
        Op::GetAllChildrenNumber { .. } => opcode == Code::GetAllChildrenNumber,
        Op::GetEphemerals { .. } => opcode == Code::GetEphemerals,
        Op::Sync { .. } => opcode == Code::Sync,
        Op::MultiRead(_) => opcode == Code::MultiRead,
        Op::WhoAmI => opcode == Code::WhoAmI,
        Op::AddAuth { .. } => opcode == Code::Auth,
        Op::AddWatch { .. } => opcode == Code::AddWatch,
        Op::RemoveWatches { .. } => opcode == Code::RemoveWatches,
        Op::CheckWatches { .. } => opcode == Code::CheckWatches,
        Op::DeleteContainer { .. } => opcode == Code::DeleteContainer,
        Op::CloseSession => opcode == Code::CloseSession,
    }
}

/// The op's record. `multi_opcodes` is used only by a multi, for its ops' MultiHeaders.
fn encode_op(writer: &mut JuteWriter, opcode: Option<OpCode>, multi_opcodes: &[i32], op: &Op) {
    match op {
        // CreateRequest, or CreateTTLRequest: the same fields and the TTL last.
        Op::Create(create) => {
            writer
                .ustring(&create.path)
                .buffer(&create.data)
                .acl(&create.acl)
                .i32(create.mode.flag());
            if opcode == Some(OpCode::CreateTtl) {
                writer.i64(create.ttl_ms);
            }
        }
        // DeleteRequest and CheckVersionRequest.
        Op::Delete { path, version } | Op::Check { path, version } => {
            writer.ustring(path).i32(*version);
        }
        Op::SetData {
            path,
            data,
            version,
        } => {
            writer.ustring(path).buffer(data).i32(*version);
        }
        Op::SetAcl { path, acl, version } => {
            writer.ustring(path).acl(acl).i32(*version);
        }
        // GetDataRequest, ExistsRequest, GetChildrenRequest and GetChildren2Request.
        Op::GetData { path, watch }
        | Op::Exists { path, watch }
        | Op::GetChildren { path, watch } => {
            writer.ustring(path).bool(*watch);
        }
        // One-path records (DeleteContainerRequest writes its path as a buffer: the same bytes).
        Op::GetAcl { path }
        | Op::GetAllChildrenNumber { path }
        | Op::Sync { path }
        | Op::DeleteContainer { path }
        | Op::GetEphemerals { prefix: path } => {
            writer.ustring(path);
        }
        Op::Multi(ops) => {
            for (index, op) in ops.iter().enumerate() {
                let op_type = multi_opcodes
                    .get(index)
                    .copied()
                    .unwrap_or_else(|| java_multi_op_type(op));
                // The Java client sends -1 in each MultiHeader's err.
                writer.i32(op_type).bool(false).i32(-1);
                encode_op(writer, OpCode::from_code(op_type), &[], op);
            }
            writer.i32(-1).bool(true).i32(-1);
        }
        Op::MultiRead(reads) => {
            for read in reads {
                let (op_type, path, watch) = match read {
                    ReadOp::GetData { path, watch } => (OpCode::GetData, path, watch),
                    ReadOp::GetChildren { path, watch } => (OpCode::GetChildren, path, watch),
                };
                writer.i32(op_type.code()).bool(false).i32(-1);
                writer.ustring(path).bool(*watch);
            }
            writer.i32(-1).bool(true).i32(-1);
        }
        // whoAmI and closeSession send the header alone.
        Op::WhoAmI | Op::CloseSession => {}
        // AuthPacket; the Java client always sends type 0, and ZooKeeper ignores it.
        Op::AddAuth { scheme, auth } => {
            writer.i32(0).ustring(scheme).buffer(auth);
        }
        Op::AddWatch { path, mode } => {
            writer.ustring(path).i32(*mode as i32);
        }
        Op::RemoveWatches { path, watcher_type } | Op::CheckWatches { path, watcher_type } => {
            writer.ustring(path).i32(*watcher_type as i32);
        }
        // SetWatches, or SetWatches2 with the persistent lists after the others.
        Op::SetWatches(request) => {
            writer
                .i64(request.relative_zxid)
                .strings(&request.data)
                .strings(&request.exist)
                .strings(&request.child);
            if opcode == Some(OpCode::SetWatches2) {
                writer
                    .strings(&request.persistent)
                    .strings(&request.persistent_recursive);
            }
        }
    }
}

/// The MultiHeader type the Java client's `Op` gives a multi op (`Op.Create.getOpcode`).
fn java_multi_op_type(op: &Op) -> i32 {
    let op_type = match op {
        Op::Create(create) if create.mode.is_ttl() => OpCode::CreateTtl,
        Op::Create(create) if create.mode.is_container() => OpCode::CreateContainer,
        Op::Create(_) => OpCode::Create,
        Op::Delete { .. } => OpCode::Delete,
        Op::SetData { .. } => OpCode::SetData,
        Op::Check { .. } => OpCode::Check,
        other => {
            debug_assert!(false, "a multi holds only writes, not {other:?}");
            OpCode::Error
        }
    };
    op_type.code()
}

/// The body of a frame that `decode_request` refuses with `code` under `opcode`: nothing (an
/// unknown opcode, sasl, reconfig, or a truncated record), or for BadArguments the record
/// with an out-of-range create flag, watch mode or watcher type.
fn encode_refused_body(writer: &mut JuteWriter, opcode: Option<OpCode>, code: ErrorCode) {
    if code != ErrorCode::BadArguments {
        return;
    }
    match opcode {
        Some(OpCode::Create | OpCode::Create2 | OpCode::CreateContainer) => {
            writer.ustring("").buffer(&[]).acl(&[]).i32(-1);
        }
        Some(OpCode::CreateTtl) => {
            writer.ustring("").buffer(&[]).acl(&[]).i32(-1).i64(-1);
        }
        Some(OpCode::AddWatch) => {
            writer.ustring("").i32(-1);
        }
        Some(OpCode::RemoveWatches | OpCode::CheckWatches) => {
            writer.ustring("").i32(0);
        }
        _ => {}
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
