//! What decode_request maps on purpose: inputs outside the canonical form.

use super::*;

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
fn null_strings_and_vectors_read_as_empty_and_null_data_stays_null() {
    let null = int(-1);
    let payload = raw(&[int(1), int(5), null.clone(), null.clone(), int(2)]);
    assert_eq!(
        decode_request(&payload).unwrap().request,
        Request::Op(Op::SetData {
            path: String::new(),
            data: None,
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
    // An unknown watch mode or watcher type fails as ZooKeeper 3.9 fails it, while
    // processing: MarshallingError.
    assert_eq!(
        refused(raw(&[int(1), int(106), buffer(b"/w"), int(2)])),
        Request::Refuse(ErrorCode::MarshallingError)
    );
    assert_eq!(
        refused(raw(&[int(1), int(18), buffer(b"/w"), int(6)])),
        Request::Refuse(ErrorCode::MarshallingError)
    );
    assert_eq!(
        refused(raw(&[int(1), int(17), buffer(b"/w"), int(9)])),
        Request::Refuse(ErrorCode::MarshallingError)
    );
    assert_eq!(
        refused(raw(&[int(1), int(10)])),
        Request::Refuse(ErrorCode::Unimplemented)
    );
    // sasl and reconfig reach the engine, which answers them (null token; ReconfigDisabled).
    assert_eq!(
        refused(raw(&[int(1), int(102), buffer(b"token")])),
        Request::Op(Op::Sasl)
    );
    assert_eq!(
        refused(raw(&[
            int(1),
            int(16),
            int(-1),
            buffer(b"2"),
            int(-1),
            long(-1)
        ])),
        Request::Op(Op::Reconfig(crate::op::ReconfigRequest {
            joining_servers: None,
            leaving_servers: Some("2".into()),
            new_members: None,
            config_version: -1,
        }))
    );
    assert_eq!(
        refused(raw(&[int(1), int(16)])),
        Request::Refuse(ErrorCode::MarshallingError)
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
