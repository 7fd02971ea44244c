//! Request frames decoded into engine ops, with ZooKeeper's answers for what does not decode.

use super::{is_served, Request, RequestFrame};
use crate::op::{CreateRequest, Op, ReadOp, ReconfigRequest, SetWatchesRequest};
use crate::proto::jute::{DecodeError, JuteReader};
use crate::proto::{AddWatchMode, CreateMode, ErrorCode, OpCode, WatcherType};

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
    let data = reader.buffer_or_null()?;
    let acl = reader.acl_as_sent()?;
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
            data: reader.buffer_or_null()?,
            version: reader.i32()?,
        },
        OpCode::GetAcl => Op::GetAcl {
            path: reader.ustring()?,
        },
        OpCode::SetAcl => Op::SetAcl {
            path: reader.ustring()?,
            acl: reader.acl_as_sent()?,
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
        // ZooKeeper 3.9 fails an unknown mode or watcher type while processing the request
        // and answers MarshallingError.
        OpCode::AddWatch => {
            let path = reader.ustring()?;
            let mode = AddWatchMode::from_code(reader.i32()?)
                .ok_or(BodyError::Code(ErrorCode::MarshallingError))?;
            Op::AddWatch { path, mode }
        }
        OpCode::RemoveWatches | OpCode::CheckWatches => {
            let path = reader.ustring()?;
            let watcher_type = WatcherType::from_code(reader.i32()?)
                .ok_or(BodyError::Code(ErrorCode::MarshallingError))?;
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
        OpCode::Reconfig => Op::Reconfig(ReconfigRequest {
            joining_servers: reader.ustring_or_null()?,
            leaving_servers: reader.ustring_or_null()?,
            new_members: reader.ustring_or_null()?,
            config_version: reader.i64()?,
        }),
        OpCode::Sasl => {
            // GetSASLRequest: the client's token, read and set aside (no mechanism is served).
            reader.buffer_or_null()?;
            Op::Sasl
        }
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
                data: reader.buffer_or_null()?,
                version: reader.i32()?,
            }),
            OpCode::Check => writes.push(Op::Check {
                path: reader.ustring()?,
                version: reader.i32()?,
            }),
            // ZooKeeper reads these records' watch flags and drops them: no multiRead leaves
            // a watch.
            OpCode::GetChildren => {
                let (path, _watch) = path_watch(reader)?;
                reads.push(ReadOp::GetChildren { path });
            }
            OpCode::GetData => {
                let (path, _watch) = path_watch(reader)?;
                reads.push(ReadOp::GetData { path });
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
