//! Exact bytes, written out from zookeeper.jute rather than through JuteWriter.

use super::*;

#[test]
fn create_ttl_request_bytes() {
    let frame = request(
        5,
        OpCode::CreateTtl,
        Op::Create(CreateRequest {
            path: "/t".into(),
            data: Some(b"xy".to_vec()),
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
            data: Some(b"hi".to_vec()),
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
