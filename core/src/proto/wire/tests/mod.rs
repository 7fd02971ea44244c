//! Guards the client protocol's framing against drifting from zookeeper.jute: a request the
//! server misreads, a reply or handshake a real client cannot parse, or a decoder that does not
//! invert its encoder.

use super::request::java_multi_op_type;
use super::*;
use crate::op::{CreateRequest, ReadOp, ReconfigRequest, SetWatchesRequest};
use crate::op::{OpResult, Reply, Response};
pub(super) use crate::proto::jute::tests::any_stat;
use crate::proto::{
    Acl, AddWatchMode, CreateMode, EventType, Id, KeeperState, Perms, Stat, WatchedEvent,
    WatcherType,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

// ---------------------------------------------------------------------------------------------
// Generators: every frame in the form decode_request returns it.

pub(super) fn text() -> impl Strategy<Value = String> {
    prop_oneof!["/[a-z0-9/._-]{0,24}", ".{0,12}"]
}

pub(super) fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..48)
}

pub(super) fn strings() -> impl Strategy<Value = Vec<String>> {
    vec(text(), 0..4)
}

pub(super) fn acl() -> impl Strategy<Value = Vec<Acl>> {
    vec(
        (any::<i32>(), text(), text())
            .prop_map(|(perms, scheme, id)| Acl::new(Perms(perms), Id::new(scheme, id))),
        0..4,
    )
}

pub(super) fn any_mode() -> impl Strategy<Value = CreateMode> {
    (0..=6).prop_map(|flag| CreateMode::from_flag(flag).expect("flags 0 to 6 exist"))
}

/// A create and the opcode it is sent under. Create and create2 never carry the container mode
/// and only createTTL carries a TTL (decode_request maps the rest; see the tests below). The
/// codec passes any flag and TTL under createTTL: judging them is prepare's job.
pub(super) fn create() -> impl Strategy<Value = (OpCode, Op)> {
    (
        0..4u8,
        text(),
        proptest::option::of(bytes()),
        acl(),
        any_mode(),
        any::<i64>(),
    )
        .prop_map(|(kind, path, data, acl, mode, ttl)| {
            let (opcode, mode, ttl_ms) = match kind {
                0 | 1 => {
                    let opcode = if kind == 0 {
                        OpCode::Create
                    } else {
                        OpCode::Create2
                    };
                    let mode = if mode.is_container() {
                        CreateMode::Persistent
                    } else {
                        mode
                    };
                    (opcode, mode, -1)
                }
                2 => (OpCode::CreateContainer, CreateMode::Container, -1),
                _ => (OpCode::CreateTtl, mode, ttl),
            };
            let create = CreateRequest {
                path,
                data,
                acl,
                mode,
                ttl_ms,
            };
            (opcode, Op::Create(create))
        })
}

pub(super) fn delete() -> impl Strategy<Value = (OpCode, Op)> {
    (text(), any::<i32>())
        .prop_map(|(path, version)| (OpCode::Delete, Op::Delete { path, version }))
}

pub(super) fn set_data() -> impl Strategy<Value = (OpCode, Op)> {
    (text(), proptest::option::of(bytes()), any::<i32>()).prop_map(|(path, data, version)| {
        (
            OpCode::SetData,
            Op::SetData {
                path,
                data,
                version,
            },
        )
    })
}

/// An op a multi may hold, with its MultiHeader type. Check travels only inside a multi:
/// alone it is not served.
pub(super) fn multi_write() -> impl Strategy<Value = (OpCode, Op)> {
    prop_oneof![
        create(),
        delete(),
        set_data(),
        (text(), any::<i32>())
            .prop_map(|(path, version)| (OpCode::Check, Op::Check { path, version })),
    ]
}

pub(super) fn read_op() -> impl Strategy<Value = ReadOp> {
    (text(), any::<bool>()).prop_map(|(path, data)| {
        if data {
            ReadOp::GetData { path }
        } else {
            ReadOp::GetChildren { path }
        }
    })
}

pub(super) fn watcher_type() -> impl Strategy<Value = WatcherType> {
    (1..=5).prop_map(|code| WatcherType::from_code(code).expect("types 1 to 5 exist"))
}

/// An op that travels alone, with its opcode.
pub(super) fn single_op() -> impl Strategy<Value = (OpCode, Op)> {
    let path_watch = || (text(), any::<bool>());
    prop_oneof![
        create(),
        delete(),
        set_data(),
        path_watch().prop_map(|(path, watch)| (OpCode::Exists, Op::Exists { path, watch })),
        path_watch().prop_map(|(path, watch)| (OpCode::GetData, Op::GetData { path, watch })),
        (path_watch(), any::<bool>()).prop_map(|((path, watch), two)| (
            if two {
                OpCode::GetChildren2
            } else {
                OpCode::GetChildren
            },
            Op::GetChildren { path, watch }
        )),
        (text(), acl(), any::<i32>())
            .prop_map(|(path, acl, version)| (OpCode::SetAcl, Op::SetAcl { path, acl, version })),
        text().prop_map(|path| (OpCode::GetAcl, Op::GetAcl { path })),
        text().prop_map(|path| (OpCode::Sync, Op::Sync { path })),
        text().prop_map(|path| (
            OpCode::GetAllChildrenNumber,
            Op::GetAllChildrenNumber { path }
        )),
        text().prop_map(|prefix| (OpCode::GetEphemerals, Op::GetEphemerals { prefix })),
        text().prop_map(|path| (OpCode::DeleteContainer, Op::DeleteContainer { path })),
        (text(), any::<bool>()).prop_map(|(path, recursive)| (
            OpCode::AddWatch,
            Op::AddWatch {
                path,
                mode: if recursive {
                    AddWatchMode::PersistentRecursive
                } else {
                    AddWatchMode::Persistent
                },
            }
        )),
        (text(), watcher_type(), any::<bool>()).prop_map(|(path, watcher_type, remove)| {
            if remove {
                (
                    OpCode::RemoveWatches,
                    Op::RemoveWatches { path, watcher_type },
                )
            } else {
                (
                    OpCode::CheckWatches,
                    Op::CheckWatches { path, watcher_type },
                )
            }
        }),
        (text(), bytes()).prop_map(|(scheme, auth)| (OpCode::Auth, Op::AddAuth { scheme, auth })),
        Just((OpCode::WhoAmI, Op::WhoAmI)),
        Just((OpCode::CloseSession, Op::CloseSession)),
        Just((OpCode::Sasl, Op::Sasl)),
        (text(), any::<i32>())
            .prop_map(|(path, version)| (OpCode::Check, Op::Check { path, version })),
        (
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(text()),
            any::<i64>()
        )
            .prop_map(|(joining, leaving, members, config_version)| (
                OpCode::Reconfig,
                Op::Reconfig(ReconfigRequest {
                    joining_servers: joining,
                    leaving_servers: leaving,
                    new_members: members,
                    config_version,
                })
            )),
    ]
}

pub(super) fn set_watches() -> impl Strategy<Value = (OpCode, Op)> {
    (
        any::<bool>(),
        any::<i64>(),
        [strings(), strings(), strings(), strings(), strings()],
    )
        .prop_map(
            |(two, relative_zxid, [data, exist, child, persistent, recursive])| {
                let mut request = SetWatchesRequest {
                    relative_zxid,
                    data,
                    exist,
                    child,
                    persistent,
                    persistent_recursive: recursive,
                };
                if !two {
                    // setWatches has no persistent lists.
                    request.persistent.clear();
                    request.persistent_recursive.clear();
                }
                let opcode = if two {
                    OpCode::SetWatches2
                } else {
                    OpCode::SetWatches
                };
                (opcode, Op::SetWatches(request))
            },
        )
}

/// Opcodes served alone whose requests carry a record, so that a header alone is a truncated
/// request.
const OPCODES_WITH_BODIES: [OpCode; 27] = [
    OpCode::Check,
    OpCode::Reconfig,
    OpCode::Sasl,
    OpCode::Create,
    OpCode::Delete,
    OpCode::Exists,
    OpCode::GetData,
    OpCode::SetData,
    OpCode::GetAcl,
    OpCode::SetAcl,
    OpCode::GetChildren,
    OpCode::Sync,
    OpCode::GetChildren2,
    OpCode::Multi,
    OpCode::Create2,
    OpCode::CheckWatches,
    OpCode::RemoveWatches,
    OpCode::CreateContainer,
    OpCode::DeleteContainer,
    OpCode::CreateTtl,
    OpCode::MultiRead,
    OpCode::Auth,
    OpCode::SetWatches,
    OpCode::GetEphemerals,
    OpCode::GetAllChildrenNumber,
    OpCode::SetWatches2,
    OpCode::AddWatch,
];

/// A request the server refuses, with the code decode_request gives it.
pub(super) fn refused() -> impl Strategy<Value = (i32, Request)> {
    let unimplemented = prop_oneof![
        any::<i32>().prop_filter("not an opcode", |code| OpCode::from_code(*code).is_none()),
        prop::sample::select(vec![
            OpCode::Notification.code(),
            OpCode::CreateSession.code(),
            OpCode::Error.code(),
        ]),
    ];
    let bad_arguments = prop::sample::select(vec![
        OpCode::Create,
        OpCode::Create2,
        OpCode::CreateContainer,
        OpCode::CreateTtl,
    ]);
    prop_oneof![
        unimplemented.prop_map(|opcode| (opcode, Request::Refuse(ErrorCode::Unimplemented))),
        bad_arguments.prop_map(|opcode| (opcode.code(), Request::Refuse(ErrorCode::BadArguments))),
        prop::sample::select(OPCODES_WITH_BODIES.to_vec())
            .prop_map(|opcode| (opcode.code(), Request::Refuse(ErrorCode::MarshallingError))),
    ]
}

pub(super) fn any_frame() -> impl Strategy<Value = RequestFrame> {
    let body = prop_oneof![
        4 => single_op().prop_map(|(opcode, op)| (opcode.code(), Vec::new(), Request::Op(op))),
        1 => set_watches().prop_map(|(opcode, op)| (opcode.code(), Vec::new(), Request::Op(op))),
        1 => vec(multi_write(), 0..6).prop_map(|ops| {
            let (opcodes, ops): (Vec<_>, Vec<_>) = ops
                .into_iter()
                .map(|(opcode, op)| (opcode.code(), op))
                .unzip();
            (OpCode::Multi.code(), opcodes, Request::Op(Op::Multi(ops)))
        }),
        1 => vec(read_op(), 0..6).prop_map(|reads| {
            let opcodes = reads
                .iter()
                .map(|read| match read {
                    ReadOp::GetData { .. } => OpCode::GetData.code(),
                    ReadOp::GetChildren { .. } => OpCode::GetChildren.code(),
                })
                .collect();
            (OpCode::MultiRead.code(), opcodes, Request::Op(Op::MultiRead(reads)))
        }),
        1 => Just((OpCode::Ping.code(), Vec::new(), Request::Ping)),
        1 => refused().prop_map(|(opcode, request)| (opcode, Vec::new(), request)),
    ];
    (any::<i32>(), body).prop_map(|(xid, (opcode, multi_opcodes, request))| RequestFrame {
        xid,
        opcode,
        multi_opcodes,
        request,
    })
}

/// The payload after the length prefix, checking the prefix on the way.
pub(super) fn payload(frame: &[u8]) -> &[u8] {
    let length = i32::from_be_bytes(frame[..4].try_into().expect("a length prefix"));
    assert_eq!(
        length as usize,
        frame.len() - 4,
        "the prefix is the payload length"
    );
    &frame[4..]
}

/// Decodes what decoded once, re-encoded: it must come back unchanged.
pub(super) fn assert_stable(frame: &RequestFrame) -> Result<(), TestCaseError> {
    let encoded = encode_request(frame);
    let again = decode_request(payload(&encoded));
    prop_assert_eq!(again.as_ref(), Ok(frame));
    Ok(())
}

// Bytes written out by hand, for tests that must not trust JuteWriter.

pub(super) fn int(value: i32) -> Vec<u8> {
    value.to_be_bytes().to_vec()
}

pub(super) fn long(value: i64) -> Vec<u8> {
    value.to_be_bytes().to_vec()
}

/// A ustring or buffer: int length, then the bytes.
pub(super) fn buffer(value: &[u8]) -> Vec<u8> {
    [int(value.len() as i32), value.to_vec()].concat()
}

/// Prefixes the payload with its length, as every frame is.
pub(super) fn framed(parts: &[Vec<u8>]) -> Vec<u8> {
    let payload = parts.concat();
    [int(payload.len() as i32), payload].concat()
}

pub(super) fn sample_stat() -> Stat {
    Stat {
        czxid: 0x0102,
        mzxid: 0x0304,
        ctime: 0x0506,
        mtime: 0x0708,
        version: 9,
        cversion: 10,
        aversion: 11,
        ephemeral_owner: 0x0c0d,
        data_length: 2,
        num_children: 14,
        pzxid: 0x0f10,
    }
}

/// Stat: czxid mzxid ctime mtime (longs), version cversion aversion (ints), ephemeralOwner
/// (long), dataLength numChildren (ints), pzxid (long): 68 bytes.
pub(super) fn sample_stat_bytes() -> Vec<u8> {
    [
        long(0x0102),
        long(0x0304),
        long(0x0506),
        long(0x0708),
        int(9),
        int(10),
        int(11),
        long(0x0c0d),
        int(2),
        int(14),
        long(0x0f10),
    ]
    .concat()
}

pub(super) fn request(xid: i32, opcode: OpCode, op: Op) -> RequestFrame {
    RequestFrame {
        xid,
        opcode: opcode.code(),
        multi_opcodes: Vec::new(),
        request: Request::Op(op),
    }
}

mod exact_bytes;
mod mappings;
mod reply_round_trip;
mod round_trip;
mod seed_corpus;
