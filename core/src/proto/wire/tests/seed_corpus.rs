//! The fuzz seed corpus, written by an ignored test.

use super::*;

/// One canonical frame of every kind decode_request knows.
fn sample_frames() -> Vec<(String, RequestFrame)> {
    let acl = vec![Acl::new(Perms::ALL, Id::new("digest", "u:hash"))];
    let create = |mode, ttl_ms| {
        Op::Create(CreateRequest {
            path: "/app/node".into(),
            data: Some(b"data".to_vec()),
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
                ReadOp::GetData { path: "/a".into() },
                ReadOp::GetChildren { path: "/".into() },
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
