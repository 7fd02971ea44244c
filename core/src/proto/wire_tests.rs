//! Guards the client protocol's framing against drifting from zookeeper.jute: a request the
//! server misreads, a reply or handshake a real client cannot parse, or a decoder that does not
//! invert its encoder.

use super::*;
use crate::op::{CreateRequest, ReadOp, SetWatchesRequest};
use crate::proto::{Acl, EventType, Id, KeeperState, Perms, Stat};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

// ---------------------------------------------------------------------------------------------
// Generators: every frame in the form decode_request returns it.

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["/[a-z0-9/._-]{0,24}", ".{0,12}"]
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..48)
}

fn strings() -> impl Strategy<Value = Vec<String>> {
    vec(text(), 0..4)
}

fn acl() -> impl Strategy<Value = Vec<Acl>> {
    vec(
        (any::<i32>(), text(), text())
            .prop_map(|(perms, scheme, id)| Acl::new(Perms(perms), Id::new(scheme, id))),
        0..4,
    )
}

fn any_mode() -> impl Strategy<Value = CreateMode> {
    (0..=6).prop_map(|flag| CreateMode::from_flag(flag).expect("flags 0 to 6 exist"))
}

/// A create and the opcode it is sent under. Create and create2 never carry the container mode
/// and only createTTL carries a TTL (decode_request maps the rest; see the tests below). The
/// codec passes any flag and TTL under createTTL: judging them is prepare's job.
fn create() -> impl Strategy<Value = (OpCode, Op)> {
    (0..4u8, text(), bytes(), acl(), any_mode(), any::<i64>()).prop_map(
        |(kind, path, data, acl, mode, ttl)| {
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
        },
    )
}

fn delete() -> impl Strategy<Value = (OpCode, Op)> {
    (text(), any::<i32>())
        .prop_map(|(path, version)| (OpCode::Delete, Op::Delete { path, version }))
}

fn set_data() -> impl Strategy<Value = (OpCode, Op)> {
    (text(), bytes(), any::<i32>()).prop_map(|(path, data, version)| {
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
fn multi_write() -> impl Strategy<Value = (OpCode, Op)> {
    prop_oneof![
        create(),
        delete(),
        set_data(),
        (text(), any::<i32>())
            .prop_map(|(path, version)| (OpCode::Check, Op::Check { path, version })),
    ]
}

fn read_op() -> impl Strategy<Value = ReadOp> {
    (text(), any::<bool>(), any::<bool>()).prop_map(|(path, watch, data)| {
        if data {
            ReadOp::GetData { path, watch }
        } else {
            ReadOp::GetChildren { path, watch }
        }
    })
}

fn watcher_type() -> impl Strategy<Value = WatcherType> {
    (1..=5).prop_map(|code| WatcherType::from_code(code).expect("types 1 to 5 exist"))
}

/// An op that travels alone, with its opcode.
fn single_op() -> impl Strategy<Value = (OpCode, Op)> {
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
    ]
}

fn set_watches() -> impl Strategy<Value = (OpCode, Op)> {
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
const OPCODES_WITH_BODIES: [OpCode; 24] = [
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
fn refused() -> impl Strategy<Value = (i32, Request)> {
    let unimplemented = prop_oneof![
        any::<i32>().prop_filter("not an opcode", |code| OpCode::from_code(*code).is_none()),
        prop::sample::select(vec![
            OpCode::Sasl.code(),
            OpCode::Notification.code(),
            OpCode::CreateSession.code(),
            OpCode::Error.code(),
            OpCode::Check.code(),
        ]),
    ];
    let bad_arguments = prop::sample::select(vec![
        OpCode::Create,
        OpCode::Create2,
        OpCode::CreateContainer,
        OpCode::CreateTtl,
        OpCode::AddWatch,
        OpCode::RemoveWatches,
        OpCode::CheckWatches,
    ]);
    prop_oneof![
        unimplemented.prop_map(|opcode| (opcode, Request::Refuse(ErrorCode::Unimplemented))),
        Just((
            OpCode::Reconfig.code(),
            Request::Refuse(ErrorCode::ReconfigDisabled)
        )),
        bad_arguments.prop_map(|opcode| (opcode.code(), Request::Refuse(ErrorCode::BadArguments))),
        prop::sample::select(OPCODES_WITH_BODIES.to_vec())
            .prop_map(|opcode| (opcode.code(), Request::Refuse(ErrorCode::MarshallingError))),
    ]
}

fn any_frame() -> impl Strategy<Value = RequestFrame> {
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

fn any_stat() -> impl Strategy<Value = Stat> {
    (any::<[i64; 6]>(), any::<[i32; 5]>()).prop_map(|(longs, ints)| Stat {
        czxid: longs[0],
        mzxid: longs[1],
        ctime: longs[2],
        mtime: longs[3],
        version: ints[0],
        cversion: ints[1],
        aversion: ints[2],
        ephemeral_owner: longs[4],
        data_length: ints[3],
        num_children: ints[4],
        pzxid: longs[5],
    })
}

/// The payload after the length prefix, checking the prefix on the way.
fn payload(frame: &[u8]) -> &[u8] {
    let length = i32::from_be_bytes(frame[..4].try_into().expect("a length prefix"));
    assert_eq!(
        length as usize,
        frame.len() - 4,
        "the prefix is the payload length"
    );
    &frame[4..]
}

/// Decodes what decoded once, re-encoded: it must come back unchanged.
fn assert_stable(frame: &RequestFrame) -> Result<(), TestCaseError> {
    let encoded = encode_request(frame);
    let again = decode_request(payload(&encoded));
    prop_assert_eq!(again.as_ref(), Ok(frame));
    Ok(())
}

proptest! {
    #[test]
    fn request_frames_round_trip(frame in any_frame()) {
        let encoded = encode_request(&frame);
        prop_assert_eq!(decode_request(payload(&encoded)), Ok(frame));
    }

    /// What the fuzz target checks, from frames cut short or with bytes overwritten: whatever
    /// decodes re-encodes to itself.
    #[test]
    fn damaged_frames_decode_stably(
        frame in any_frame(),
        cut in any::<Index>(),
        overwrites in vec((any::<Index>(), any::<u8>()), 0..4),
    ) {
        let mut bytes = encode_request(&frame)[4..].to_vec();
        for (at, byte) in overwrites {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        if let Ok(decoded) = decode_request(&bytes) {
            assert_stable(&decoded)?;
        }
    }

    #[test]
    fn arbitrary_bytes_decode_stably(bytes in vec(any::<u8>(), 0..96)) {
        if let Ok(decoded) = decode_request(&bytes) {
            assert_stable(&decoded)?;
        }
    }

    #[test]
    fn connect_request_round_trips(
        protocol_version in any::<i32>(),
        last_zxid_seen in any::<i64>(),
        timeout_ms in any::<i32>(),
        session_id in any::<i64>(),
        password in vec(any::<u8>(), 0..20),
        read_only in proptest::option::of(any::<bool>()),
    ) {
        let request = ConnectRequest {
            protocol_version,
            last_zxid_seen,
            timeout_ms,
            session_id,
            password,
            read_only,
        };
        let frame = request.encode_frame();
        // int, long, int, long, buffer, then the readOnly byte only when present.
        let expected_len =
            4 + 4 + 8 + 4 + 8 + 4 + request.password.len() + usize::from(read_only.is_some());
        prop_assert_eq!(frame.len(), expected_len);
        prop_assert_eq!(ConnectRequest::decode(payload(&frame)), Ok(request));
    }

    #[test]
    fn connect_response_round_trips(
        protocol_version in any::<i32>(),
        timeout_ms in any::<i32>(),
        session_id in any::<i64>(),
        password in vec(any::<u8>(), 0..20),
        read_only in proptest::option::of(any::<bool>()),
    ) {
        let response = ConnectResponse {
            protocol_version,
            timeout_ms,
            session_id,
            password,
            read_only,
        };
        let frame = response.encode_frame();
        let expected_len =
            4 + 4 + 4 + 8 + 4 + response.password.len() + usize::from(read_only.is_some());
        prop_assert_eq!(frame.len(), expected_len);
        prop_assert_eq!(ConnectResponse::decode(payload(&frame)), Ok(response));
    }

    #[test]
    fn get_data_replies_carry_buffer_then_stat(data in bytes(), stat in any_stat()) {
        let frame = request(3, OpCode::GetData, Op::GetData { path: "/a".into(), watch: false });
        let reply = encode_reply(&frame, &Response { zxid: 9, result: Ok(Reply::Data { data: data.clone(), stat }) });
        let mut reader = JuteReader::new(payload(&reply));
        prop_assert_eq!((reader.i32().unwrap(), reader.i64().unwrap(), reader.i32().unwrap()), (3, 9, 0));
        prop_assert_eq!(reader.buffer().unwrap(), data);
        prop_assert_eq!(reader.stat().unwrap(), stat);
        prop_assert!(reader.finish().is_ok());
    }
}

// ---------------------------------------------------------------------------------------------
// Exact bytes, written out from zookeeper.jute rather than through JuteWriter.

fn int(value: i32) -> Vec<u8> {
    value.to_be_bytes().to_vec()
}

fn long(value: i64) -> Vec<u8> {
    value.to_be_bytes().to_vec()
}

/// A ustring or buffer: int length, then the bytes.
fn buffer(value: &[u8]) -> Vec<u8> {
    [int(value.len() as i32), value.to_vec()].concat()
}

/// Prefixes the payload with its length, as every frame is.
fn framed(parts: &[Vec<u8>]) -> Vec<u8> {
    let payload = parts.concat();
    [int(payload.len() as i32), payload].concat()
}

fn sample_stat() -> Stat {
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
fn sample_stat_bytes() -> Vec<u8> {
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

fn request(xid: i32, opcode: OpCode, op: Op) -> RequestFrame {
    RequestFrame {
        xid,
        opcode: opcode.code(),
        multi_opcodes: Vec::new(),
        request: Request::Op(op),
    }
}

#[test]
fn create_ttl_request_bytes() {
    let frame = request(
        5,
        OpCode::CreateTtl,
        Op::Create(CreateRequest {
            path: "/t".into(),
            data: b"xy".to_vec(),
            acl: Acl::open_unsafe(),
            mode: CreateMode::PersistentWithTtl,
            ttl_ms: 60_000,
        }),
    );
    // RequestHeader(xid, type), CreateTTLRequest(path, data, acl, flags, ttl).
    let expected = framed(&[
        int(5),
        int(21),
        buffer(b"/t"),
        buffer(b"xy"),
        int(1),
        int(31),
        buffer(b"world"),
        buffer(b"anyone"),
        int(5),
        long(60_000),
    ]);
    assert_eq!(encode_request(&frame), expected);
}

#[test]
fn multi_request_bytes_follow_multi_operation_record() {
    let frame = RequestFrame {
        xid: 8,
        opcode: OpCode::Multi.code(),
        multi_opcodes: vec![OpCode::Create.code(), OpCode::Check.code()],
        request: Request::Op(Op::Multi(vec![
            Op::create("/m", b"", &[], CreateMode::Ephemeral),
            Op::check("/m", 3),
        ])),
    };
    // Each op: MultiHeader(type, done=false, err=-1) then its record; then
    // MultiHeader(-1, true, -1). The Java client writes err -1 in every header.
    let expected = framed(&[
        int(8),
        int(14),
        int(1),
        vec![0],
        int(-1),
        buffer(b"/m"),
        buffer(b""),
        int(0),
        int(1),
        int(13),
        vec![0],
        int(-1),
        buffer(b"/m"),
        int(3),
        int(-1),
        vec![1],
        int(-1),
    ]);
    assert_eq!(encode_request(&frame), expected);
    // Without multi_opcodes each op goes under the type the Java client gives it.
    let derived = RequestFrame {
        multi_opcodes: Vec::new(),
        ..frame
    };
    assert_eq!(encode_request(&derived), expected);
}

#[test]
fn headers_alone_and_auth_bytes() {
    let ping = RequestFrame {
        xid: XID_PING,
        opcode: OpCode::Ping.code(),
        multi_opcodes: Vec::new(),
        request: Request::Ping,
    };
    assert_eq!(encode_request(&ping), framed(&[int(-2), int(11)]));
    let close = request(4, OpCode::CloseSession, Op::CloseSession);
    assert_eq!(encode_request(&close), framed(&[int(4), int(-11)]));
    let who = request(6, OpCode::WhoAmI, Op::WhoAmI);
    assert_eq!(encode_request(&who), framed(&[int(6), int(107)]));
    // AuthPacket(type 0, scheme, auth).
    let auth = request(
        XID_AUTH,
        OpCode::Auth,
        Op::AddAuth {
            scheme: "digest".into(),
            auth: b"u:p".to_vec(),
        },
    );
    assert_eq!(
        encode_request(&auth),
        framed(&[int(-4), int(100), int(0), buffer(b"digest"), buffer(b"u:p")])
    );
}

#[test]
fn set_watches_bytes_by_version() {
    let watches = SetWatchesRequest {
        relative_zxid: 0x22,
        data: vec!["/d".into()],
        exist: Vec::new(),
        child: vec!["/c".into()],
        persistent: Vec::new(),
        persistent_recursive: vec!["/r".into()],
    };
    let two = request(
        XID_SET_WATCHES,
        OpCode::SetWatches2,
        Op::SetWatches(watches.clone()),
    );
    assert_eq!(
        encode_request(&two),
        framed(&[
            int(-8),
            int(105),
            long(0x22),
            int(1),
            buffer(b"/d"),
            int(0),
            int(1),
            buffer(b"/c"),
            int(0),
            int(1),
            buffer(b"/r"),
        ])
    );
    let one = request(
        XID_SET_WATCHES,
        OpCode::SetWatches,
        Op::SetWatches(SetWatchesRequest {
            persistent_recursive: Vec::new(),
            ..watches
        }),
    );
    assert_eq!(
        encode_request(&one),
        framed(&[
            int(-8),
            int(101),
            long(0x22),
            int(1),
            buffer(b"/d"),
            int(0),
            int(1),
            buffer(b"/c"),
        ])
    );
}

#[test]
fn get_data_reply_bytes() {
    let frame = request(
        7,
        OpCode::GetData,
        Op::GetData {
            path: "/a".into(),
            watch: true,
        },
    );
    let response = Response {
        zxid: 0x10,
        result: Ok(Reply::Data {
            data: b"hi".to_vec(),
            stat: sample_stat(),
        }),
    };
    // ReplyHeader(xid, zxid, err), GetDataResponse(data, stat).
    let expected = framed(&[
        int(7),
        long(0x10),
        int(0),
        buffer(b"hi"),
        sample_stat_bytes(),
    ]);
    assert_eq!(expected.len(), 4 + 16 + 6 + 68);
    assert_eq!(encode_reply(&frame, &response), expected);
}

#[test]
fn failed_multi_reply_bytes() {
    let frame = RequestFrame {
        xid: 12,
        opcode: OpCode::Multi.code(),
        multi_opcodes: vec![
            OpCode::Create.code(),
            OpCode::SetData.code(),
            OpCode::Delete.code(),
        ],
        request: Request::Op(Op::Multi(vec![
            Op::create("/x", b"", &Acl::open_unsafe(), CreateMode::Persistent),
            Op::set_data("/missing", b"v", -1),
            Op::delete("/x", -1),
        ])),
    };
    let response = Response {
        zxid: 0x33,
        result: Ok(Reply::Multi(vec![
            OpResult::Error(None),
            OpResult::Error(Some(ErrorCode::NoNode)),
            OpResult::Error(Some(ErrorCode::RuntimeInconsistency)),
        ])),
    };
    // MultiResponse: per result MultiHeader(type -1 = error, done=false, err) then
    // ErrorResponse(err); then MultiHeader(-1, true, -1).
    let expected = framed(&[
        int(12),
        long(0x33),
        int(0),
        int(-1),
        vec![0],
        int(0),
        int(0),
        int(-1),
        vec![0],
        int(-101),
        int(-101),
        int(-1),
        vec![0],
        int(-2),
        int(-2),
        int(-1),
        vec![1],
        int(-1),
    ]);
    assert_eq!(encode_reply(&frame, &response), expected);
}

#[test]
fn successful_multi_reply_bytes_type_each_result() {
    let frame = RequestFrame {
        xid: 13,
        opcode: OpCode::Multi.code(),
        multi_opcodes: vec![OpCode::Create.code(), OpCode::CreateContainer.code()],
        request: Request::Op(Op::Multi(vec![
            Op::create("/p", b"", &Acl::open_unsafe(), CreateMode::Persistent),
            Op::create("/c", b"", &Acl::open_unsafe(), CreateMode::Container),
        ])),
    };
    let response = Response {
        zxid: 0x34,
        result: Ok(Reply::Multi(vec![
            OpResult::Create {
                path: "/p".into(),
                stat: sample_stat(),
            },
            OpResult::Create {
                path: "/c".into(),
                stat: sample_stat(),
            },
        ])),
    };
    // A plain create answers CreateResponse(path); createContainer is typed create2 and
    // answers Create2Response(path, stat).
    let expected = framed(&[
        int(13),
        long(0x34),
        int(0),
        int(1),
        vec![0],
        int(0),
        buffer(b"/p"),
        int(15),
        vec![0],
        int(0),
        buffer(b"/c"),
        sample_stat_bytes(),
        int(-1),
        vec![1],
        int(-1),
    ]);
    assert_eq!(encode_reply(&frame, &response), expected);
}

#[test]
fn watch_notification_bytes() {
    let event = WatchedEvent::node(EventType::NodeDataChanged, "/w", 0x44);
    // ReplyHeader(xid -1, zxid, err 0), WatcherEvent(type, state, path).
    let expected = framed(&[int(-1), long(0x44), int(0), int(3), int(3), buffer(b"/w")]);
    assert_eq!(encode_event(&event), expected);
    let expired = WatchedEvent::state(KeeperState::Expired);
    let expected = framed(&[int(-1), long(-1), int(0), int(-1), int(-112), buffer(b"")]);
    assert_eq!(encode_event(&expired), expected);
}

#[test]
fn error_and_no_node_replies_are_headers_alone() {
    let frame = request(
        21,
        OpCode::Exists,
        Op::Exists {
            path: "/e".into(),
            watch: true,
        },
    );
    let missing = Response {
        zxid: 5,
        result: Ok(Reply::Exists(None)),
    };
    assert_eq!(
        encode_reply(&frame, &missing),
        framed(&[int(21), long(5), int(-101)])
    );
    let denied = Response {
        zxid: 5,
        result: Err(ErrorCode::NoAuth),
    };
    assert_eq!(
        encode_reply(&frame, &denied),
        framed(&[int(21), long(5), int(-102)])
    );
}

#[test]
fn handshake_bytes() {
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0x55,
        timeout_ms: 30_000,
        session_id: 0x66,
        password: vec![7; 16],
        read_only: Some(false),
    };
    let expected = framed(&[
        int(0),
        long(0x55),
        int(30_000),
        long(0x66),
        buffer(&[7; 16]),
        vec![0],
    ]);
    assert_eq!(request.encode_frame(), expected);
    // A client older than 3.4 sends no readOnly byte and must get none back.
    let old = ConnectRequest {
        read_only: None,
        ..request
    };
    let expected_old = framed(&[
        int(0),
        long(0x55),
        int(30_000),
        long(0x66),
        buffer(&[7; 16]),
    ]);
    assert_eq!(old.encode_frame(), expected_old);
    assert_eq!(ConnectRequest::decode(&expected_old[4..]), Ok(old));
    let expired = ConnectResponse::expired(None);
    assert_eq!(
        expired.encode_frame(),
        framed(&[int(0), int(0), long(0), buffer(&[0; 16])])
    );
    assert_eq!(
        ConnectResponse::expired(Some(true)).encode_frame(),
        framed(&[int(0), int(0), long(0), buffer(&[0; 16]), vec![0]])
    );
}

// ---------------------------------------------------------------------------------------------
// What decode_request maps on purpose: inputs outside the canonical form.

/// A request payload (no length prefix) from its parts.
fn raw(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn create_body(flags: i32) -> Vec<u8> {
    raw(&[buffer(b"/n"), buffer(b""), int(0), int(flags)])
}

#[test]
fn plain_creates_never_make_containers_and_create_container_always_does() {
    for opcode in [OpCode::Create, OpCode::Create2] {
        let payload = raw(&[int(1), int(opcode.code()), create_body(4)]);
        let frame = decode_request(&payload).unwrap();
        let Request::Op(Op::Create(create)) = frame.request else {
            panic!("a create: {frame:?}");
        };
        assert_eq!(create.mode, CreateMode::Persistent, "{opcode:?}");
    }
    for flags in [0, 1, 3, 6] {
        let payload = raw(&[int(1), int(19), create_body(flags)]);
        let Request::Op(Op::Create(create)) = decode_request(&payload).unwrap().request else {
            panic!("a create");
        };
        assert_eq!(create.mode, CreateMode::Container, "flags {flags}");
        assert_eq!(create.ttl_ms, -1);
    }
    // Inside a multi, the same mapping by each op's MultiHeader type.
    let payload = raw(&[
        int(1),
        int(14),
        int(1),
        vec![0],
        int(-1),
        create_body(4),
        int(19),
        vec![0],
        int(-1),
        create_body(0),
        int(-1),
        vec![1],
        int(-1),
    ]);
    let frame = decode_request(&payload).unwrap();
    let Request::Op(Op::Multi(ops)) = &frame.request else {
        panic!("a multi: {frame:?}");
    };
    let modes: Vec<_> = ops
        .iter()
        .map(|op| match op {
            Op::Create(create) => create.mode,
            other => panic!("a create: {other:?}"),
        })
        .collect();
    assert_eq!(modes, [CreateMode::Persistent, CreateMode::Container]);
    assert_eq!(frame.multi_opcodes, [1, 19]);
}

#[test]
fn null_strings_buffers_and_vectors_read_as_empty() {
    let null = int(-1);
    let payload = raw(&[int(1), int(5), null.clone(), null.clone(), int(2)]);
    assert_eq!(
        decode_request(&payload).unwrap().request,
        Request::Op(Op::SetData {
            path: String::new(),
            data: Vec::new(),
            version: 2,
        })
    );
    let payload = raw(&[
        int(-8),
        int(105),
        long(1),
        null.clone(),
        null.clone(),
        null.clone(),
        null.clone(),
        null.clone(),
    ]);
    assert_eq!(
        decode_request(&payload).unwrap().request,
        Request::Op(Op::SetWatches(SetWatchesRequest {
            relative_zxid: 1,
            ..SetWatchesRequest::default()
        }))
    );
    let payload = raw(&[int(1), int(1), null.clone(), null.clone(), null, int(0)]);
    let Request::Op(Op::Create(create)) = decode_request(&payload).unwrap().request else {
        panic!("a create");
    };
    assert_eq!((create.path.as_str(), create.acl.len()), ("", 0));
}

#[test]
fn loose_fields_read_as_java_reads_them() {
    // Any non-zero boolean byte is true; the AuthPacket's type is ignored; invalid UTF-8 turns
    // into U+FFFD (which path validation then refuses).
    let payload = raw(&[int(1), int(4), buffer(b"/b"), vec![7]]);
    assert_eq!(
        decode_request(&payload).unwrap().request,
        Request::Op(Op::GetData {
            path: "/b".into(),
            watch: true
        })
    );
    let payload = raw(&[
        int(-4),
        int(100),
        int(99),
        buffer(b"digest"),
        buffer(b"a:b"),
    ]);
    assert_eq!(
        decode_request(&payload).unwrap().request,
        Request::Op(Op::AddAuth {
            scheme: "digest".into(),
            auth: b"a:b".to_vec()
        })
    );
    let payload = raw(&[int(1), int(6), buffer(&[b'/', 0xff])]);
    assert_eq!(
        decode_request(&payload).unwrap().request,
        Request::Op(Op::GetAcl {
            path: "/\u{fffd}".into()
        })
    );
    // A ping's body, if any, is not read.
    let payload = raw(&[int(-2), int(11), int(12345)]);
    assert_eq!(decode_request(&payload).unwrap().request, Request::Ping);
}

#[test]
fn refusals_and_what_they_encode_as() {
    let refused = |payload: Vec<u8>| decode_request(&payload).unwrap().request;
    assert_eq!(
        refused(raw(&[int(1), int(1), create_body(7)])),
        Request::Refuse(ErrorCode::BadArguments)
    );
    // A bad flag inside a multi makes the whole record undecodable, as in ZooKeeper.
    assert_eq!(
        refused(raw(&[
            int(1),
            int(14),
            int(1),
            vec![0],
            int(-1),
            create_body(7)
        ])),
        Request::Refuse(ErrorCode::MarshallingError)
    );
    assert_eq!(
        refused(raw(&[int(1), int(106), buffer(b"/w"), int(2)])),
        Request::Refuse(ErrorCode::BadArguments)
    );
    assert_eq!(
        refused(raw(&[int(1), int(18), buffer(b"/w"), int(6)])),
        Request::Refuse(ErrorCode::BadArguments)
    );
    assert_eq!(
        refused(raw(&[int(1), int(10)])),
        Request::Refuse(ErrorCode::Unimplemented)
    );
    assert_eq!(
        refused(raw(&[int(1), int(102), buffer(b"token")])),
        Request::Refuse(ErrorCode::Unimplemented)
    );
    assert_eq!(
        refused(raw(&[int(1), int(16)])),
        Request::Refuse(ErrorCode::ReconfigDisabled)
    );
    assert_eq!(
        refused(raw(&[int(1), int(2), buffer(b"/truncated")])),
        Request::Refuse(ErrorCode::MarshallingError)
    );
    // A header too short to read closes the connection instead.
    assert_eq!(
        decode_request(&[0, 0, 0, 1, 0, 0]),
        Err(DecodeError::Truncated)
    );
    // Refusals encode as frames refused the same way.
    let bad_flags = RequestFrame {
        xid: 1,
        opcode: OpCode::CreateTtl.code(),
        multi_opcodes: Vec::new(),
        request: Request::Refuse(ErrorCode::BadArguments),
    };
    assert_eq!(
        encode_request(&bad_flags),
        framed(&[
            int(1),
            int(21),
            buffer(b""),
            buffer(b""),
            int(0),
            int(-1),
            long(-1)
        ])
    );
}

#[test]
fn multi_kinds_do_not_mix() {
    let get_data = raw(&[int(4), vec![0], int(-1), buffer(b"/r"), vec![0]]);
    let delete = raw(&[int(2), vec![0], int(-1), buffer(b"/w"), int(-1)]);
    let done = raw(&[int(-1), vec![1], int(-1)]);
    for (opcode, ops) in [
        (14, get_data.clone()),
        (22, delete.clone()),
        (14, raw(&[delete.clone(), get_data.clone()])),
        (22, raw(&[get_data, delete])),
    ] {
        let frame = decode_request(&raw(&[int(1), int(opcode), ops, done.clone()])).unwrap();
        assert_eq!(frame.request, Request::Refuse(ErrorCode::MarshallingError));
        // A refused request has no results for its ops' types to shape.
        assert_eq!(frame.multi_opcodes, Vec::<i32>::new());
    }
    // Empty ones decode as what their opcode names.
    let frame = decode_request(&raw(&[int(1), int(22), done])).unwrap();
    assert_eq!(frame.request, Request::Op(Op::MultiRead(Vec::new())));
}

/// The request_decoder fuzz target's first finding: a multiRead whose second read is cut short
/// was refused, yet kept the first read's type in `multi_opcodes`, so re-encoding (a header
/// alone) decoded to a different frame.
#[test]
fn multi_refused_part_way_keeps_no_op_types() {
    let found = [
        0, 0, 0, 27, 0, 0, 0, 22, 0, 0, 0, 4, 0, 255, 255, 255, 255, 0, 0, 0, 2, 47, 97, 0, 0, 0,
        0, 8, 0, 255, 255, 255, 255, 0, 0, 0, 97, 0, 0, 0, 0, 8, 0, 255, 255, 255, 255, 255,
    ];
    let frame = decode_request(&found).unwrap();
    assert_eq!(
        frame,
        RequestFrame {
            xid: 27,
            opcode: OpCode::MultiRead.code(),
            multi_opcodes: Vec::new(),
            request: Request::Refuse(ErrorCode::MarshallingError),
        }
    );
    assert_eq!(decode_request(payload(&encode_request(&frame))), Ok(frame));
}

// ---------------------------------------------------------------------------------------------
// The fuzz seed corpus.

/// One canonical frame of every kind decode_request knows.
fn sample_frames() -> Vec<(String, RequestFrame)> {
    let acl = vec![Acl::new(Perms::ALL, Id::new("digest", "u:hash"))];
    let create = |mode, ttl_ms| {
        Op::Create(CreateRequest {
            path: "/app/node".into(),
            data: b"data".to_vec(),
            acl: acl.clone(),
            mode,
            ttl_ms,
        })
    };
    let watches = SetWatchesRequest {
        relative_zxid: 0x1_0000_0005,
        data: vec!["/d".into()],
        exist: vec!["/e".into()],
        child: vec!["/c".into()],
        persistent: vec!["/p".into()],
        persistent_recursive: vec!["/r".into()],
    };
    let ops = vec![
        (OpCode::Create, create(CreateMode::EphemeralSequential, -1)),
        (OpCode::Create2, create(CreateMode::Persistent, -1)),
        (OpCode::CreateContainer, create(CreateMode::Container, -1)),
        (
            OpCode::CreateTtl,
            create(CreateMode::PersistentWithTtl, 5000),
        ),
        (OpCode::Delete, Op::delete("/a", 3)),
        (
            OpCode::Exists,
            Op::Exists {
                path: "/a".into(),
                watch: true,
            },
        ),
        (
            OpCode::GetData,
            Op::GetData {
                path: "/a".into(),
                watch: true,
            },
        ),
        (OpCode::SetData, Op::set_data("/a", b"new", -1)),
        (OpCode::GetAcl, Op::GetAcl { path: "/a".into() }),
        (
            OpCode::SetAcl,
            Op::SetAcl {
                path: "/a".into(),
                acl: acl.clone(),
                version: 0,
            },
        ),
        (
            OpCode::GetChildren,
            Op::GetChildren {
                path: "/".into(),
                watch: false,
            },
        ),
        (
            OpCode::GetChildren2,
            Op::GetChildren {
                path: "/".into(),
                watch: true,
            },
        ),
        (OpCode::Sync, Op::Sync { path: "/".into() }),
        (
            OpCode::GetAllChildrenNumber,
            Op::GetAllChildrenNumber { path: "/".into() },
        ),
        (
            OpCode::GetEphemerals,
            Op::GetEphemerals {
                prefix: "/app".into(),
            },
        ),
        (
            OpCode::AddWatch,
            Op::AddWatch {
                path: "/a".into(),
                mode: AddWatchMode::PersistentRecursive,
            },
        ),
        (
            OpCode::RemoveWatches,
            Op::RemoveWatches {
                path: "/a".into(),
                watcher_type: WatcherType::Any,
            },
        ),
        (
            OpCode::CheckWatches,
            Op::CheckWatches {
                path: "/a".into(),
                watcher_type: WatcherType::Data,
            },
        ),
        (OpCode::SetWatches2, Op::SetWatches(watches.clone())),
        (
            OpCode::SetWatches,
            Op::SetWatches(SetWatchesRequest {
                persistent: Vec::new(),
                persistent_recursive: Vec::new(),
                ..watches
            }),
        ),
        (
            OpCode::Auth,
            Op::AddAuth {
                scheme: "digest".into(),
                auth: b"user:password".to_vec(),
            },
        ),
        (OpCode::WhoAmI, Op::WhoAmI),
        (OpCode::CloseSession, Op::CloseSession),
        (
            OpCode::DeleteContainer,
            Op::DeleteContainer {
                path: "/container".into(),
            },
        ),
        (
            OpCode::Multi,
            Op::Multi(vec![
                create(CreateMode::Persistent, -1),
                create(CreateMode::PersistentSequentialWithTtl, 1000),
                Op::set_data("/a", b"v", 2),
                Op::check("/a", 3),
                Op::delete("/a", -1),
            ]),
        ),
        (
            OpCode::MultiRead,
            Op::MultiRead(vec![
                ReadOp::GetData {
                    path: "/a".into(),
                    watch: false,
                },
                ReadOp::GetChildren {
                    path: "/".into(),
                    watch: true,
                },
            ]),
        ),
    ];
    let mut frames: Vec<_> = ops
        .into_iter()
        .enumerate()
        .map(|(xid, (opcode, op))| {
            let multi_opcodes = match &op {
                Op::Multi(ops) => ops.iter().map(java_multi_op_type).collect(),
                Op::MultiRead(reads) => reads
                    .iter()
                    .map(|read| match read {
                        ReadOp::GetData { .. } => OpCode::GetData.code(),
                        ReadOp::GetChildren { .. } => OpCode::GetChildren.code(),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let frame = RequestFrame {
                xid: xid as i32 + 1,
                opcode: opcode.code(),
                multi_opcodes,
                request: Request::Op(op),
            };
            (format!("{opcode:?}"), frame)
        })
        .collect();
    frames.push((
        "Ping".into(),
        RequestFrame {
            xid: XID_PING,
            opcode: OpCode::Ping.code(),
            multi_opcodes: Vec::new(),
            request: Request::Ping,
        },
    ));
    frames
}

#[test]
fn sample_frames_round_trip() {
    for (name, frame) in sample_frames() {
        let encoded = encode_request(&frame);
        assert_eq!(decode_request(payload(&encoded)), Ok(frame), "{name}");
    }
}

/// Writes fuzz/corpus/{request_decoder,handshake}: payloads without the length prefix, as the
/// fuzz targets take them. Run with
/// `cargo test -p zookeeper-core --lib write_fuzz_seed_corpus -- --ignored`.
#[test]
#[ignore = "writes the fuzz seed corpus into the source tree"]
fn write_fuzz_seed_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let write = |target: &str, name: &str, frame: &[u8]| {
        let directory = root.join(target);
        std::fs::create_dir_all(&directory).expect("corpus directory");
        std::fs::write(directory.join(format!("seed-{name}")), &frame[4..]).expect("seed file");
    };
    for (name, frame) in sample_frames() {
        write("request_decoder", &name, &encode_request(&frame));
    }
    let connect = ConnectRequest {
        protocol_version: PROTOCOL_VERSION,
        last_zxid_seen: 0x1_0000_0007,
        timeout_ms: 30_000,
        session_id: 0x0123_4567_89ab_cdef,
        password: (0..16).collect(),
        read_only: Some(true),
    };
    write("handshake", "connect-request", &connect.encode_frame());
    let old = ConnectRequest {
        read_only: None,
        ..connect
    };
    write("handshake", "connect-request-pre-3.4", &old.encode_frame());
    let accepted = ConnectResponse {
        protocol_version: PROTOCOL_VERSION,
        timeout_ms: 30_000,
        session_id: 0x0123_4567_89ab_cdef,
        password: (0..16).collect(),
        read_only: Some(false),
    };
    write("handshake", "connect-response", &accepted.encode_frame());
    write(
        "handshake",
        "connect-response-expired",
        &ConnectResponse::expired(None).encode_frame(),
    );
}
