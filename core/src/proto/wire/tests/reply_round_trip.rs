//! Guards the client's reply decoder against drifting from the server's encoder: a reply a
//! client reads as something else than was sent, or a damaged reply that panics the client.

use super::*;
use crate::op::ReadResult;
use crate::proto::ClientInfo;

/// A reply frame's header and body, decoded.
fn decode_frame(frame: &[u8]) -> (ReplyHeader, &[u8]) {
    decode_reply_header(payload(frame)).expect("a reply header")
}

/// The frame a reply to `opcode` answers, with the result types a multi's ops decide.
fn reply_frame(xid: i32, opcode: OpCode, multi_opcodes: Vec<i32>) -> RequestFrame {
    RequestFrame {
        xid,
        opcode: opcode.code(),
        multi_opcodes,
        // encode_reply reads only the xid and opcodes.
        request: Request::Ping,
    }
}

fn any_error_code() -> impl Strategy<Value = ErrorCode> {
    let codes: Vec<ErrorCode> = (-200..0).filter_map(ErrorCode::from_code).collect();
    proptest::sample::select(codes)
}

fn any_event() -> impl Strategy<Value = WatchedEvent> {
    let types: Vec<EventType> = (-1..=7).filter_map(EventType::from_code).collect();
    let states: Vec<KeeperState> = (-112..=7).filter_map(KeeperState::from_code).collect();
    (
        proptest::sample::select(types),
        proptest::sample::select(states),
        text(),
        any::<i64>(),
    )
        .prop_map(|(event_type, state, path, zxid)| WatchedEvent {
            event_type,
            state,
            path,
            zxid,
        })
}

/// One multi result with the op type that shaped it, and what the client reads back: a plain
/// create's Stat does not travel.
fn multi_result() -> impl Strategy<Value = (i32, OpResult, OpResult)> {
    let create_opcodes = [
        OpCode::Create,
        OpCode::Create2,
        OpCode::CreateContainer,
        OpCode::CreateTtl,
    ];
    let write_opcodes = [
        OpCode::Create,
        OpCode::Delete,
        OpCode::SetData,
        OpCode::Check,
    ];
    prop_oneof![
        (
            proptest::sample::select(create_opcodes.to_vec()),
            text(),
            any_stat()
        )
            .prop_map(|(opcode, path, stat)| {
                let sent = OpResult::Create {
                    path: path.clone(),
                    stat,
                };
                let stat = if opcode == OpCode::Create {
                    Stat::default()
                } else {
                    stat
                };
                (opcode.code(), sent, OpResult::Create { path, stat })
            }),
        Just((OpCode::Delete.code(), OpResult::Delete, OpResult::Delete)),
        any_stat().prop_map(|stat| (
            OpCode::SetData.code(),
            OpResult::SetData(stat),
            OpResult::SetData(stat)
        )),
        Just((OpCode::Check.code(), OpResult::Check, OpResult::Check)),
        (
            proptest::sample::select(write_opcodes.to_vec()),
            proptest::option::of(any_error_code())
        )
            .prop_map(|(opcode, code)| (
                opcode.code(),
                OpResult::Error(code),
                OpResult::Error(code)
            )),
    ]
}

fn read_result() -> impl Strategy<Value = ReadResult> {
    prop_oneof![
        (proptest::option::of(bytes()), any_stat())
            .prop_map(|(data, stat)| ReadResult::Data { data, stat }),
        strings().prop_map(ReadResult::Children),
        any_error_code().prop_map(ReadResult::Error),
    ]
}

/// A reply the engine gives to a request sent under the opcode, the multi's op types, and what
/// the client reads back.
fn any_reply() -> impl Strategy<Value = (OpCode, Vec<i32>, Reply, Reply)> {
    let same = |opcode: OpCode, reply: Reply| (opcode, Vec::new(), reply.clone(), reply);
    let done_opcodes = [
        OpCode::Delete,
        OpCode::DeleteContainer,
        OpCode::Auth,
        OpCode::CloseSession,
        OpCode::SetWatches,
        OpCode::SetWatches2,
        OpCode::RemoveWatches,
        OpCode::CheckWatches,
        OpCode::AddWatch,
    ];
    let create_opcodes = [
        OpCode::Create,
        OpCode::Create2,
        OpCode::CreateContainer,
        OpCode::CreateTtl,
    ];
    let stat_opcodes = [OpCode::SetData, OpCode::SetAcl, OpCode::Check];
    prop_oneof![
        (
            proptest::sample::select(create_opcodes.to_vec()),
            text(),
            any_stat()
        )
            .prop_map(|(opcode, path, stat)| {
                let sent = Reply::Create {
                    path: path.clone(),
                    stat,
                };
                let stat = if opcode == OpCode::Create {
                    Stat::default()
                } else {
                    stat
                };
                (opcode, Vec::new(), sent, Reply::Create { path, stat })
            }),
        proptest::sample::select(done_opcodes.to_vec())
            .prop_map(move |opcode| same(opcode, Reply::Done)),
        (proptest::sample::select(stat_opcodes.to_vec()), any_stat())
            .prop_map(move |(opcode, stat)| same(opcode, Reply::Stat(stat))),
        any_stat().prop_map(move |stat| same(OpCode::Exists, Reply::Exists(Some(stat)))),
        (proptest::option::of(bytes()), any_stat())
            .prop_map(move |(data, stat)| same(OpCode::GetData, Reply::Data { data, stat })),
        (any::<bool>(), strings(), any_stat()).prop_map(|(plain, children, stat)| {
            let sent = Reply::Children {
                children: children.clone(),
                stat,
            };
            if plain {
                let read = Reply::Children {
                    children,
                    stat: Stat::default(),
                };
                (OpCode::GetChildren, Vec::new(), sent, read)
            } else {
                (OpCode::GetChildren2, Vec::new(), sent.clone(), sent)
            }
        }),
        (acl(), any_stat())
            .prop_map(move |(acl, stat)| same(OpCode::GetAcl, Reply::Acl { acl, stat })),
        any::<i32>()
            .prop_map(move |number| same(OpCode::GetAllChildrenNumber, Reply::Number(number))),
        strings().prop_map(move |paths| same(OpCode::GetEphemerals, Reply::Paths(paths))),
        text().prop_map(move |path| same(OpCode::Sync, Reply::Sync(path))),
        vec(multi_result(), 0..5).prop_map(|results| {
            let opcodes = results.iter().map(|(opcode, _, _)| *opcode).collect();
            let sent = results.iter().map(|(_, sent, _)| sent.clone()).collect();
            let read = results.into_iter().map(|(_, _, read)| read).collect();
            (
                OpCode::Multi,
                opcodes,
                Reply::Multi(sent),
                Reply::Multi(read),
            )
        }),
        vec(read_result(), 0..5)
            .prop_map(move |results| same(OpCode::MultiRead, Reply::MultiRead(results))),
        vec((text(), text()), 0..3).prop_map(move |infos| {
            let infos = infos
                .into_iter()
                .map(|(auth_scheme, user)| ClientInfo { auth_scheme, user })
                .collect();
            same(OpCode::WhoAmI, Reply::WhoAmI(infos))
        }),
    ]
}

/// Every opcode number, served or not, and a few ZooKeeper does not define.
fn any_opcode() -> impl Strategy<Value = i32> {
    prop_oneof![-12..=23i32, 99..=108i32, any::<i32>()]
}

proptest! {
    #[test]
    fn replies_round_trip(
        xid in any::<i32>(),
        zxid in any::<i64>(),
        (opcode, multi_opcodes, sent, read) in any_reply(),
    ) {
        let frame = reply_frame(xid, opcode, multi_opcodes);
        let encoded = encode_reply(&frame, &Response { zxid, result: Ok(sent) });
        let (header, body) = decode_frame(&encoded);
        prop_assert_eq!(header, ReplyHeader { xid, zxid, err: 0 });
        prop_assert_eq!(decode_reply(opcode.code(), body), Ok(read));
    }

    /// A reply cut short never decodes: every jute record here has a fixed shape or a count or
    /// end marker up front, so no proper prefix of one is a whole record.
    #[test]
    fn cut_replies_do_not_decode(
        (opcode, multi_opcodes, sent, _) in any_reply(),
        cut in any::<Index>(),
    ) {
        let frame = reply_frame(1, opcode, multi_opcodes);
        let encoded = encode_reply(&frame, &Response { zxid: 2, result: Ok(sent) });
        let (_, body) = decode_frame(&encoded);
        let mut longer = body.to_vec();
        longer.push(0);
        prop_assert!(decode_reply(opcode.code(), &longer).is_err(), "trailing bytes are refused");
        prop_assume!(!body.is_empty());
        let cut_body = &body[..cut.index(body.len())];
        prop_assert!(decode_reply(opcode.code(), cut_body).is_err());
    }

    #[test]
    fn damaged_replies_do_not_panic(
        (opcode, multi_opcodes, sent, _) in any_reply(),
        overwrites in vec((any::<Index>(), any::<u8>()), 1..4),
    ) {
        let frame = reply_frame(1, opcode, multi_opcodes);
        let mut encoded = encode_reply(&frame, &Response { zxid: 2, result: Ok(sent) });
        let body = &mut encoded[4 + 16..];
        if !body.is_empty() {
            for (at, byte) in overwrites {
                let at = at.index(body.len());
                body[at] = byte;
            }
        }
        let _ = decode_reply(opcode.code(), body);
    }

    #[test]
    fn arbitrary_bytes_do_not_panic(opcode in any_opcode(), body in vec(any::<u8>(), 0..96)) {
        let _ = decode_reply(opcode, &body);
        let _ = decode_event(&body);
        if let Ok((_, rest)) = decode_reply_header(&body) {
            prop_assert_eq!(rest, &body[16..]);
        } else {
            prop_assert!(body.len() < 16);
        }
    }

    #[test]
    fn events_round_trip(event in any_event()) {
        let encoded = encode_event(&event);
        let (header, body) = decode_frame(&encoded);
        prop_assert!(header.is_notification());
        prop_assert_eq!(header, ReplyHeader { xid: XID_NOTIFICATION, zxid: event.zxid, err: 0 });
        let mut decoded = decode_event(body).unwrap();
        prop_assert_eq!(decoded.zxid, -1, "WatcherEvent has no zxid");
        decoded.zxid = header.zxid;
        prop_assert_eq!(decoded, event);
    }

    #[test]
    fn errors_are_headers_alone(xid in any::<i32>(), zxid in any::<i64>(), code in any_error_code()) {
        let frame = reply_frame(xid, OpCode::GetData, Vec::new());
        let encoded = encode_reply(&frame, &Response { zxid, result: Err(code) });
        let (header, body) = decode_frame(&encoded);
        prop_assert_eq!(header, ReplyHeader { xid, zxid, err: code.code() });
        prop_assert!(body.is_empty());
    }
}

#[test]
fn exists_on_a_missing_znode_is_err_no_node_without_a_body() {
    let frame = reply_frame(5, OpCode::Exists, Vec::new());
    let encoded = encode_reply(
        &frame,
        &Response {
            zxid: 7,
            result: Ok(Reply::Exists(None)),
        },
    );
    let (header, body) = decode_frame(&encoded);
    let no_node = ErrorCode::NoNode.code();
    assert_eq!(
        header,
        ReplyHeader {
            xid: 5,
            zxid: 7,
            err: no_node
        }
    );
    assert!(body.is_empty());
    // The caller maps that header to Exists(None); an empty success body is not a reply.
    assert_eq!(
        decode_reply(OpCode::Exists.code(), body),
        Err(DecodeError::Truncated)
    );
}

#[test]
fn a_failed_multi_is_err_zero_with_error_results() {
    let results = vec![
        OpResult::Error(None),
        OpResult::Error(Some(ErrorCode::NodeExists)),
        OpResult::Error(Some(ErrorCode::RuntimeInconsistency)),
    ];
    let opcodes = vec![
        OpCode::Delete.code(),
        OpCode::Create.code(),
        OpCode::Check.code(),
    ];
    let frame = reply_frame(9, OpCode::Multi, opcodes);
    let encoded = encode_reply(
        &frame,
        &Response {
            zxid: 3,
            result: Ok(Reply::Multi(results.clone())),
        },
    );
    let (header, body) = decode_frame(&encoded);
    assert_eq!(header.err, 0);
    assert_eq!(
        decode_reply(OpCode::Multi.code(), body),
        Ok(Reply::Multi(results))
    );
}

#[test]
fn pings_and_auth_replies_are_headers_alone() {
    let ping = encode_header(XID_PING, 4, 0);
    let (header, body) = decode_frame(&ping);
    assert_eq!(
        header,
        ReplyHeader {
            xid: XID_PING,
            zxid: 4,
            err: 0
        }
    );
    assert_eq!(decode_reply(OpCode::Ping.code(), body), Ok(Reply::Done));
    let frame = reply_frame(XID_AUTH, OpCode::Auth, Vec::new());
    let auth = encode_reply(
        &frame,
        &Response {
            zxid: 0,
            result: Ok(Reply::Done),
        },
    );
    let (header, body) = decode_frame(&auth);
    assert_eq!(
        header,
        ReplyHeader {
            xid: XID_AUTH,
            zxid: 0,
            err: 0
        }
    );
    assert_eq!(decode_reply(OpCode::Auth.code(), body), Ok(Reply::Done));
}

#[test]
fn bad_codes_and_opcodes_are_refused() {
    let short = [0u8; 15];
    assert_eq!(decode_reply_header(&short), Err(DecodeError::Truncated));
    for opcode in [
        OpCode::Reconfig,
        OpCode::Sasl,
        OpCode::Notification,
        OpCode::Error,
    ] {
        assert!(decode_reply(opcode.code(), &[]).is_err(), "{opcode:?}");
    }
    // A sasl reply carries the server's token: null (no mechanism) is all this client takes.
    assert_eq!(decode_reply(OpCode::Sasl.code(), &int(-1)), Ok(Reply::Done));
    assert!(decode_reply(OpCode::Sasl.code(), &buffer(b"challenge")).is_err());
    assert!(decode_reply(10, &[]).is_err(), "10 is no opcode");
    // A multi result typed getData, an error result with an unknown code, a multiRead error
    // without a code.
    let done = [int(-1), vec![1], int(-1)].concat();
    let get_data_in_multi = [
        int(OpCode::GetData.code()),
        vec![0],
        int(0),
        buffer(b""),
        sample_stat_bytes(),
        done.clone(),
    ]
    .concat();
    assert!(decode_reply(OpCode::Multi.code(), &get_data_in_multi).is_err());
    let unknown_code = [int(-1), vec![0], int(-999), int(-999), done.clone()].concat();
    assert_eq!(
        decode_reply(OpCode::Multi.code(), &unknown_code),
        Err(DecodeError::BadValue("multi result error code"))
    );
    let read_error_ok = [int(-1), vec![0], int(0), int(0), done].concat();
    assert!(decode_reply(OpCode::MultiRead.code(), &read_error_ok).is_err());
    assert!(decode_reply(OpCode::AddWatch.code(), &int(1)).is_err());
    let bad_event = [int(99), int(3), buffer(b"/a")].concat();
    assert_eq!(
        decode_event(&bad_event),
        Err(DecodeError::BadValue("event type"))
    );
}
