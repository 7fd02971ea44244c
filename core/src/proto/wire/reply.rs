//! Engine responses and watch events encoded as the reply frames ZooKeeper sends.

use super::{RequestFrame, XID_NOTIFICATION};
use crate::op::{OpResult, ReadResult, Reply, Response};
use crate::proto::jute::JuteWriter;
use crate::proto::{ErrorCode, OpCode, WatchedEvent};

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
    // Header, a Stat and a little more; data and paths on top.
    let capacity = 128
        + match reply {
            Reply::Data { data, .. } => data.as_ref().map_or(0, Vec::len),
            Reply::Create { path, .. } => path.len(),
            _ => 0,
        };
    let mut writer = JuteWriter::frame_with_capacity(capacity);
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
            writer.buffer_or_null(data.as_deref()).stat(stat);
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
        Reply::Done => match opcode {
            // addWatch answers an ErrorResponse(0) body; sasl a SetSASLResponse with a null
            // token; every other op answers nothing.
            Some(OpCode::AddWatch) => {
                writer.i32(0);
            }
            Some(OpCode::Sasl) => {
                writer.buffer_or_null(None);
            }
            _ => {}
        },
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
                writer.buffer_or_null(data.as_deref()).stat(stat);
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
