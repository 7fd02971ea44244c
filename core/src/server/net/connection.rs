//! One client connection: the handshake, then requests answered in order, with watch
//! notifications interleaved exactly where they happened.
//!
//! Replies and notifications share one ordered queue to a writer task. The engine pushes a
//! change's notifications while applying it, before the change's own reply and before any later
//! read's reply is pushed, so a client sees the event before it can see the change.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Notify};

use super::{four_letter, ConnectionInfo, NetShared};
use crate::op::{Op, Response};
use crate::proto::wire::{
    self, ConnectRequest, ConnectResponse, Request, PROTOCOL_VERSION, XID_PING,
};
use crate::proto::{ErrorCode, EventType, WatchedEvent};
use crate::server::{LocalSession, SessionSink};

/// Why a connection ends, for the log (the fields are read through Debug).
#[derive(Debug)]
#[allow(dead_code)]
enum Closed {
    ClientLeft,
    Io(std::io::Error),
    BadFrame(i32),
    Undecodable,
    Stopped,
    Dropped,
}

/// The session sink of a TCP connection: notifications go into its queue without blocking.
struct ConnectionSink {
    queue: mpsc::Sender<Vec<u8>>,
    info: Arc<ConnectionInfo>,
    close: Arc<Notify>,
    closed: AtomicBool,
}

impl ConnectionSink {
    fn shut(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.close.notify_one();
        }
    }
}

impl SessionSink for ConnectionSink {
    fn deliver(&self, event: WatchedEvent) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        // An expired or closed session ends its connection; the client learns it on reconnect,
        // as from ZooKeeper.
        if event.event_type == EventType::None {
            self.shut();
            return;
        }
        match self.queue.try_send(wire::encode_event(&event)) {
            Ok(()) => {
                self.info.queued.fetch_add(1, Ordering::Relaxed);
            }
            // A client that does not read its notifications is cut off rather than let its queue
            // grow without bound or make the engine wait.
            Err(_) => {
                tracing::warn!(peer = %self.info.peer, "closing a connection too slow to take its notifications");
                self.shut();
            }
        }
    }

    fn replaced(&self) {
        self.shut();
    }
}

async fn read_frame(
    reader: &mut BufReader<OwnedReadHalf>,
    frame_bytes_max: usize,
) -> Result<Vec<u8>, Closed> {
    let mut prefix = [0u8; 4];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(Closed::ClientLeft)
        }
        Err(error) => return Err(Closed::Io(error)),
    }
    read_payload(reader, i32::from_be_bytes(prefix), frame_bytes_max).await
}

/// Reads a payload of `length` bytes, refusing a negative or oversize length before allocating.
async fn read_payload(
    reader: &mut BufReader<OwnedReadHalf>,
    length: i32,
    frame_bytes_max: usize,
) -> Result<Vec<u8>, Closed> {
    if length < 0 || length as usize > frame_bytes_max {
        return Err(Closed::BadFrame(length));
    }
    let mut payload = vec![0u8; length as usize];
    reader
        .read_exact(&mut payload)
        .await
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::UnexpectedEof => Closed::ClientLeft,
            _ => Closed::Io(error),
        })?;
    Ok(payload)
}

/// Serves one connection until it closes.
pub(super) async fn serve(
    stream: TcpStream,
    info: Arc<ConnectionInfo>,
    shared: &Arc<NetShared>,
    mut stopped: watch::Receiver<bool>,
) {
    let peer = info.peer;
    let (read_half, mut write_half) = stream.into_split();
    let mut reader = BufReader::new(read_half);
    let handshake = Duration::from_millis(shared.config.handshake_timeout_ms);

    let mut prefix = [0u8; 4];
    match tokio::time::timeout(handshake, reader.read_exact(&mut prefix)).await {
        Ok(Ok(_)) => {}
        _ => return,
    }
    info.count_received(shared);
    if let Some(word) = four_letter::known(prefix) {
        let answer = four_letter::answer(word, shared);
        let _ = write_half.write_all(answer.as_bytes()).await;
        let _ = write_half.shutdown().await;
        return;
    }
    let payload = match tokio::time::timeout(
        handshake,
        read_payload(
            &mut reader,
            i32::from_be_bytes(prefix),
            shared.config.frame_bytes_max,
        ),
    )
    .await
    {
        Ok(Ok(payload)) => payload,
        _ => return,
    };
    let Ok(connect) = ConnectRequest::decode(&payload) else {
        tracing::debug!(%peer, "closing: the handshake does not decode");
        return;
    };
    let engine = &shared.engine;
    if connect.last_zxid_seen > engine.last_zxid() {
        tracing::warn!(
            %peer,
            "refusing a client that has seen zxid 0x{:x}; our last zxid is 0x{:x}",
            connect.last_zxid_seen,
            engine.last_zxid()
        );
        return;
    }

    let (queue, outbound) = mpsc::channel(shared.config.connection_queue_frames_max.max(1));
    let close = Arc::new(Notify::new());
    let sink = Arc::new(ConnectionSink {
        queue: queue.clone(),
        info: info.clone(),
        close: close.clone(),
        closed: AtomicBool::new(false),
    });
    let ip = peer.ip().to_string();
    let handshake_started = Instant::now();
    let opened = if connect.session_id == 0 {
        engine.open_session(connect.timeout_ms as i64, sink.clone(), Some(&ip))
    } else {
        engine.resume_session(
            connect.session_id,
            &connect.password,
            sink.clone(),
            Some(&ip),
        )
    };
    let session = match opened {
        Ok(session) => session,
        Err(code) => {
            tracing::info!(%peer, session_id = format_args!("0x{:x}", connect.session_id), %code, "session refused");
            let _ = write_half
                .write_all(&ConnectResponse::expired(connect.read_only).encode_frame())
                .await;
            let _ = write_half.shutdown().await;
            return;
        }
    };
    // A TCP session lives on its client's packets, not on the connection being open.
    session.set_attached(false);
    info.session_id
        .store(session.id() as u64, Ordering::Relaxed);
    let create_session = crate::proto::OpCode::CreateSession.code();
    info.record_response(
        shared,
        create_session,
        0,
        engine.last_zxid(),
        handshake_started,
    );
    let response = ConnectResponse {
        protocol_version: PROTOCOL_VERSION,
        timeout_ms: session.timeout_ms() as i32,
        session_id: session.id(),
        password: session.password().to_vec(),
        read_only: connect.read_only.map(|_| false),
    };
    // Written before the writer task starts, so it precedes any notification already queued.
    if write_half
        .write_all(&response.encode_frame())
        .await
        .is_err()
    {
        return;
    }
    info.count_sent(shared);

    let writer_done = Arc::new(Notify::new());
    let writer = tokio::spawn(write_loop(
        BufWriter::new(write_half),
        outbound,
        info.clone(),
        shared.clone(),
        writer_done.clone(),
    ));
    let closed = request_loop(
        &mut reader,
        &session,
        &queue,
        &info,
        shared,
        &close,
        &mut stopped,
    )
    .await;
    match &closed {
        Closed::ClientLeft | Closed::Stopped => {
            tracing::debug!(%peer, ?closed, "connection closed")
        }
        other => tracing::info!(%peer, ?other, "connection closed"),
    }
    sink.shut();
    drop(queue);
    writer_done.notify_one();
    let _ = writer.await;
}

async fn request_loop(
    reader: &mut BufReader<OwnedReadHalf>,
    session: &Arc<LocalSession>,
    queue: &mpsc::Sender<Vec<u8>>,
    info: &ConnectionInfo,
    shared: &NetShared,
    close: &Notify,
    stopped: &mut watch::Receiver<bool>,
) -> Closed {
    let engine = &shared.engine;
    loop {
        let payload = tokio::select! {
            payload = read_frame(reader, shared.config.frame_bytes_max) => match payload {
                Ok(payload) => payload,
                Err(closed) => return closed,
            },
            _ = close.notified() => return Closed::Dropped,
            _ = stopped.changed() => return Closed::Stopped,
        };
        info.count_received(shared);
        let Ok(mut frame) = wire::decode_request(&payload) else {
            return Closed::Undecodable;
        };
        // The op moves into the engine; the rest of the frame shapes the reply.
        let request = std::mem::replace(&mut frame.request, Request::Ping);
        let started = Instant::now();
        let (reply, end) = match request {
            Request::Ping => {
                engine.touch(session);
                (wire::encode_header(XID_PING, engine.last_zxid(), 0), false)
            }
            // ZooKeeper answers an opcode it does not serve with zxid -1, then hangs up.
            Request::Refuse(code) if !wire::is_served(frame.opcode) => {
                (wire::encode_header(frame.xid, -1, code.code()), true)
            }
            Request::Refuse(code) => {
                engine.touch(session);
                (
                    wire::encode_header(frame.xid, engine.last_zxid(), code.code()),
                    false,
                )
            }
            Request::Op(op) => {
                // ZooKeeper closes the connection after a closeSession and after a failed auth.
                let closing = matches!(op, Op::CloseSession);
                let authenticating = matches!(op, Op::AddAuth { .. });
                let response: Response = engine.submit(session, op, &mut |_, _| {});
                let auth_failed = authenticating && response.result == Err(ErrorCode::AuthFailed);
                (
                    wire::encode_reply(&frame, &response),
                    closing || auth_failed,
                )
            }
        };
        info.record_response(shared, frame.opcode, frame.xid, engine.last_zxid(), started);
        if queue.send(reply).await.is_err() {
            return Closed::Dropped;
        }
        info.queued.fetch_add(1, Ordering::Relaxed);
        if end {
            return Closed::ClientLeft;
        }
    }
}

async fn write_loop(
    mut writer: BufWriter<OwnedWriteHalf>,
    mut outbound: mpsc::Receiver<Vec<u8>>,
    info: Arc<ConnectionInfo>,
    shared: Arc<NetShared>,
    done: Arc<Notify>,
) {
    loop {
        let frame = tokio::select! {
            frame = outbound.recv() => frame,
            _ = done.notified() => {
                // The request loop ended: send what is queued, then close.
                while let Ok(frame) = outbound.try_recv() {
                    if writer.write_all(&frame).await.is_err() {
                        break;
                    }
                }
                break;
            }
        };
        let Some(frame) = frame else { break };
        info.queued.fetch_sub(1, Ordering::Relaxed);
        if writer.write_all(&frame).await.is_err() {
            return;
        }
        info.count_sent(&shared);
        // Batch: flush only when nothing else is ready to go.
        if outbound.is_empty() && writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.flush().await;
    let _ = writer.shutdown().await;
}
