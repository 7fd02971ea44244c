//! A load generator for any server speaking ZooKeeper's client protocol (ours or Apache's):
//! several connections, each keeping a fixed number of requests in flight, for a fixed time.
//!
//! `cargo run --release --example wire_load -- HOST:PORT get|set|create|exists|mix CONNECTIONS DEPTH SECONDS`
//!
//! `mix` is 70% getData and 30% setData of one znode, interleaved in each connection's
//! pipeline (of every ten requests, seven reads then three writes). `VALUE_BYTES` (environment,
//! default 100) sets the size of written values.
//!
//! Prints one line: operation, connections, depth, completed requests and requests per second.

use std::io::{BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zookeeper_core::op::{CreateRequest, Op};
use zookeeper_core::proto::wire::{self, ConnectRequest, ConnectResponse, Request, RequestFrame};
use zookeeper_core::proto::OpCode;
use zookeeper_core::{Acl, CreateMode};

/// The size of written values: `VALUE_BYTES` from the environment, 100 by default.
fn value_bytes() -> usize {
    static VALUE_BYTES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *VALUE_BYTES.get_or_init(|| {
        std::env::var("VALUE_BYTES")
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(100)
    })
}

fn read_frame(reader: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut prefix = [0u8; 4];
    reader.read_exact(&mut prefix)?;
    let mut body = vec![0u8; i32::from_be_bytes(prefix).max(0) as usize];
    reader.read_exact(&mut body)?;
    Ok(body)
}

fn connect(address: &str) -> (BufReader<TcpStream>, BufWriter<TcpStream>) {
    let stream = TcpStream::connect(address).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut writer = BufWriter::new(stream.try_clone().expect("clone"));
    let mut reader = BufReader::new(stream);
    let handshake = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 30_000,
        session_id: 0,
        password: vec![0; 16],
        read_only: Some(false),
    };
    writer
        .write_all(&handshake.encode_frame())
        .expect("handshake");
    writer.flush().expect("flush");
    let answer = ConnectResponse::decode(&read_frame(&mut reader).expect("handshake answer"))
        .expect("decode");
    assert!(answer.session_id != 0, "the server refused the session");
    (reader, writer)
}

fn request(kind: &str, xid: i32, connection: usize) -> Vec<u8> {
    let path = "/wire-load".to_string();
    let kind = match kind {
        // 7 reads, then 3 writes, in every 10 requests.
        "mix" if xid % 10 < 7 => "get",
        "mix" => "set",
        other => other,
    };
    let (opcode, op) = match kind {
        "get" => (OpCode::GetData, Op::GetData { path, watch: false }),
        "exists" => (OpCode::Exists, Op::Exists { path, watch: false }),
        "set" => (
            OpCode::SetData,
            Op::SetData {
                path,
                data: Some(vec![b's'; value_bytes()]),
                version: -1,
            },
        ),
        "create" => (
            OpCode::Create,
            Op::Create(CreateRequest {
                path: format!("/wire-load/c{connection}-{xid}"),
                data: Some(vec![b'c'; value_bytes()]),
                acl: Acl::open_unsafe(),
                mode: CreateMode::Persistent,
                ttl_ms: -1,
            }),
        ),
        other => panic!("unknown operation {other}: get, set, create, exists or mix"),
    };
    wire::encode_request(&RequestFrame {
        xid,
        opcode: opcode.code(),
        multi_opcodes: vec![],
        request: Request::Op(op),
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [address, kind, connections, depth, seconds] = args.as_slice() else {
        eprintln!("usage: wire_load HOST:PORT get|set|create|exists|mix CONNECTIONS DEPTH SECONDS");
        std::process::exit(2);
    };
    let connections: usize = connections.parse().expect("CONNECTIONS");
    let depth: i32 = depth.parse().expect("DEPTH");
    let duration = Duration::from_secs_f64(seconds.parse().expect("SECONDS"));

    // The znode every request works on (its parent, for creates).
    let (mut reader, mut writer) = connect(address);
    let setup = Op::Create(CreateRequest {
        path: "/wire-load".into(),
        data: Some(vec![b'v'; value_bytes()]),
        acl: Acl::open_unsafe(),
        mode: CreateMode::Persistent,
        ttl_ms: -1,
    });
    let frame = RequestFrame {
        xid: 1,
        opcode: OpCode::Create.code(),
        multi_opcodes: vec![],
        request: Request::Op(setup),
    };
    writer
        .write_all(&wire::encode_request(&frame))
        .expect("setup");
    writer.flush().expect("flush");
    read_frame(&mut reader).expect("setup answer"); // NodeExists is fine

    let completed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|connection| {
            let (address, kind) = (address.clone(), kind.clone());
            let (completed, stop) = (completed.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut reader, mut writer) = connect(&address);
                let mut xid = 0;
                for _ in 0..depth {
                    xid += 1;
                    writer
                        .write_all(&request(&kind, xid, connection))
                        .expect("send");
                }
                writer.flush().expect("flush");
                let mut in_flight = depth;
                while in_flight > 0 {
                    let reply = read_frame(&mut reader).expect("reply");
                    let err = i32::from_be_bytes(reply[12..16].try_into().expect("header"));
                    assert!(err == 0, "request failed with {err}");
                    completed.fetch_add(1, Ordering::Relaxed);
                    in_flight -= 1;
                    if !stop.load(Ordering::Relaxed) {
                        xid += 1;
                        writer
                            .write_all(&request(&kind, xid, connection))
                            .expect("send");
                        writer.flush().expect("flush");
                        in_flight += 1;
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("worker");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let done = completed.load(Ordering::Relaxed);
    println!(
        "{kind} connections={connections} depth={depth} requests={done} per_second={:.0}",
        done as f64 / elapsed
    );
}
