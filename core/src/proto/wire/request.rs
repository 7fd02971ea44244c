//! Requests encoded as the frames a ZooKeeper client sends: the inverse of `decode_request`,
//! for clients and tests.

use super::{Request, RequestFrame};
use crate::op::{Op, ReadOp};
use crate::proto::jute::JuteWriter;
use crate::proto::{ErrorCode, OpCode};

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
        Op::Reconfig(_) => opcode == Code::Reconfig,
        Op::CloseSession => opcode == Code::CloseSession,
        Op::Ping => opcode == Code::Ping,
        Op::Sasl => opcode == Code::Sasl,
        // The server's name for a request it could not read; no client sends it.
        Op::Refused(_) => false,
    }
}

/// The op's record. `multi_opcodes` is used only by a multi, for its ops' MultiHeaders.
fn encode_op(writer: &mut JuteWriter, opcode: Option<OpCode>, multi_opcodes: &[i32], op: &Op) {
    match op {
        // CreateRequest, or CreateTTLRequest: the same fields and the TTL last.
        Op::Create(create) => {
            writer
                .ustring(&create.path)
                .buffer_or_null(create.data.as_deref())
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
            writer
                .ustring(path)
                .buffer_or_null(data.as_deref())
                .i32(*version);
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
                let (op_type, path) = match read {
                    ReadOp::GetData { path } => (OpCode::GetData, path),
                    ReadOp::GetChildren { path } => (OpCode::GetChildren, path),
                };
                // The records' watch flag, which ZooKeeper ignores inside a multiRead.
                writer.i32(op_type.code()).bool(false).i32(-1);
                writer.ustring(path).bool(false);
            }
            writer.i32(-1).bool(true).i32(-1);
        }
        // whoAmI, closeSession and ping send the header alone.
        Op::WhoAmI | Op::CloseSession | Op::Ping | Op::Refused(_) => {}
        // GetSASLRequest with an empty token.
        Op::Sasl => {
            writer.buffer(&[]);
        }
        Op::Reconfig(request) => {
            writer
                .ustring_or_null(request.joining_servers.as_deref())
                .ustring_or_null(request.leaving_servers.as_deref())
                .ustring_or_null(request.new_members.as_deref())
                .i64(request.config_version);
        }
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
pub(super) fn java_multi_op_type(op: &Op) -> i32 {
    let op_type = match op {
        Op::Create(create) => OpCode::for_create(create.mode, OpCode::Create),
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
/// unknown opcode, or a truncated record), or for BadArguments the create record with an
/// out-of-range flag.
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
        _ => {}
    }
}
