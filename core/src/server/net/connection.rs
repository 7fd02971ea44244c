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
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

use super::outbound::{closing, write_loop, ConnectionSink, Outbound};
use super::{four_letter, ConnectionInfo, NetShared, Release};
use crate::op::{Op, Response};
use crate::proto::wire::{
    self, ConnectRequest, ConnectResponse, Request, RequestFrame, PROTOCOL_VERSION, XID_PING,
};
use crate::proto::ErrorCode;
use crate::server::{LocalSession, Proposal};

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
    SessionEnded,
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
    slot: Release<'_>,
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
        // Some words walk the whole tree or watch registry: not on a runtime thread.
        let asking = shared.clone();
        let Ok(answer) =
            tokio::task::spawn_blocking(move || four_letter::answer(word, &asking)).await
        else {
            return;
        };
        let _ = tokio::time::timeout(handshake, async {
            write_half.write_all(answer.as_bytes()).await?;
            // The slot goes before the client sees the end of the answer, so a client that
            // asks again at once is not counted twice (`stat` lists connections).
            drop(slot);
            write_half.shutdown().await
        })
        .await;
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

    let (frames, queued_frames) = mpsc::unbounded_channel();
    let budget_bytes = shared
        .config
        .connection_queue_bytes_max
        .clamp(1, u32::MAX as usize);
    let (closing, closing_seen) = watch::channel(false);
    let outbound = Arc::new(Outbound {
        frames,
        budget: Semaphore::new(budget_bytes),
        budget_bytes,
        closing,
        finished: AtomicBool::new(false),
    });
    let sink = Arc::new(ConnectionSink {
        outbound: outbound.clone(),
        info: info.clone(),
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
        // The client reports this answer as an expired session.
        Err(ErrorCode::SessionExpired) => {
            tracing::info!(%peer, session_id = format_args!("0x{:x}", connect.session_id), "session expired");
            let _ = tokio::time::timeout(handshake, async {
                write_half
                    .write_all(&ConnectResponse::expired(connect.read_only).encode_frame())
                    .await?;
                write_half.shutdown().await
            })
            .await;
            return;
        }
        // Anything else (too many sessions, a failed log) just closes: the client retries.
        Err(code) => {
            tracing::warn!(%peer, %code, "session refused");
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
    let session_timeout = Duration::from_millis(session.timeout_ms() as u64);
    match tokio::time::timeout(
        session_timeout,
        write_half.write_all(&response.encode_frame()),
    )
    .await
    {
        Ok(Ok(())) => {}
        _ => {
            outbound.close();
            return;
        }
    }
    info.count_sent(shared);

    let (finish, finishing) = watch::channel(false);
    let writer = tokio::spawn(write_loop(
        BufWriter::new(write_half),
        queued_frames,
        outbound.clone(),
        closing_seen.clone(),
        finishing,
        session_timeout,
        info.clone(),
        shared.clone(),
    ));
    // Requests are read and writes proposed here; answers are made in order by `answer_loop`,
    // so a connection's pipelined writes share one fsync instead of waiting for one each.
    let (items, queued_items) = mpsc::channel(PIPELINE_DEPTH_MAX);
    let answerer = tokio::spawn(answer_loop(
        queued_items,
        session.clone(),
        outbound.clone(),
        closing_seen.clone(),
        info.clone(),
        shared.clone(),
    ));
    let closed = request_loop(
        &mut reader,
        &session,
        &items,
        closing_seen,
        &info,
        shared,
        &mut stopped,
    )
    .await;
    // The answers owed for requests already read still go out, in order.
    drop(items);
    let _ = answerer.await;
    match &closed {
        Closed::ClientLeft | Closed::Stopped => {
            tracing::debug!(%peer, ?closed, "connection closed")
        }
        other => tracing::info!(%peer, ?other, "connection closed"),
    }
    // Queued replies (a closeSession's, an auth failure's) still go out, within a session
    // timeout; notifications for the session no longer reach this connection.
    outbound.finished.store(true, Ordering::Release);
    finish.send_replace(true);
    let writer_abort = writer.abort_handle();
    if tokio::time::timeout(session_timeout + Duration::from_secs(1), writer)
        .await
        .is_err()
    {
        writer_abort.abort();
    }
}

/// Requests a connection may have read ahead of their answers.
const PIPELINE_DEPTH_MAX: usize = 1024;

/// A request read, in the form the answering stage needs.
enum Item {
    /// Answer known at once (a refusal); `end`: close after sending it.
    Ready { reply: Vec<u8>, end: bool },
    /// A ping: answered in order, as ZooKeeper does.
    Ping,
    /// A write proposed to the engine; its answer waits for the commit.
    Proposed {
        frame: RequestFrame,
        proposal: Proposal,
    },
    /// A write answered before it became a Txn.
    Answered {
        frame: RequestFrame,
        response: Response,
    },
    /// Anything else (reads, auth, watches, closeSession): run when its turn comes, so it sees
    /// every earlier write of the session applied. `done` hears whether the connection goes on.
    Run {
        frame: RequestFrame,
        op: Op,
        done: Option<oneshot::Sender<bool>>,
        /// Told once it ran: a later write of the session is proposed only then.
        ran: oneshot::Sender<()>,
    },
}

async fn request_loop(
    reader: &mut BufReader<OwnedReadHalf>,
    session: &Arc<LocalSession>,
    items: &mpsc::Sender<Item>,
    mut closing_seen: watch::Receiver<bool>,
    info: &ConnectionInfo,
    shared: &NetShared,
    stopped: &mut watch::Receiver<bool>,
) -> Closed {
    let engine = &shared.engine;
    // The newest read (or other in-turn request) not yet run. A write proposed before it ran
    // could apply first, and the read would see a write its session sent after it: ZooKeeper
    // answers a session's requests as if run one by one, so the write waits.
    let mut unrun: Option<oneshot::Receiver<()>> = None;
    loop {
        // A closed session answers nothing more on this connection, pings included.
        if session.is_closed() {
            return Closed::SessionEnded;
        }
        // Biased: once the connection must close, no further request is read.
        let payload = tokio::select! {
            biased;
            _ = closing(&mut closing_seen) => return Closed::Dropped,
            _ = stopped.changed() => return Closed::Stopped,
            payload = read_frame(reader, shared.config.frame_bytes_max) => match payload {
                Ok(payload) => payload,
                Err(closed) => return closed,
            },
        };
        info.count_received(shared);
        let Ok(mut frame) = wire::decode_request(&payload) else {
            return Closed::Undecodable;
        };
        let request = std::mem::replace(&mut frame.request, Request::Ping);
        let mut waiting = None;
        let (item, end) = match request {
            Request::Ping => (Item::Ping, false),
            // ZooKeeper answers an opcode it does not serve with zxid -1, then hangs up.
            Request::Refuse(code) if !wire::is_served(frame.opcode) => {
                let reply = wire::encode_header(frame.xid, -1, code.code());
                (Item::Ready { reply, end: true }, true)
            }
            Request::Refuse(code) => {
                engine.touch(session);
                let reply = wire::encode_header(frame.xid, engine.last_zxid(), code.code());
                (Item::Ready { reply, end: false }, false)
            }
            Request::Op(op) if op.is_write() && !matches!(op, Op::CloseSession) => {
                if let Some(ran) = unrun.take() {
                    // The answering stage ended (the connection is closing): the write is not
                    // proposed on a connection nobody answers.
                    tokio::select! {
                        biased;
                        _ = closing(&mut closing_seen) => return Closed::Dropped,
                        _ = stopped.changed() => return Closed::Stopped,
                        ran = ran => if ran.is_err() {
                            return Closed::Dropped;
                        },
                    }
                }
                match engine.propose_write(session, op) {
                    Ok(proposal) => (Item::Proposed { frame, proposal }, false),
                    Err(response) => (Item::Answered { frame, response }, false),
                }
            }
            Request::Op(op) => {
                // closeSession ends the connection; an auth packet may (when it fails), so
                // nothing more is read until it is answered.
                let closing = matches!(op, Op::CloseSession);
                let done = if matches!(op, Op::AddAuth { .. }) {
                    let (told, hear) = oneshot::channel();
                    waiting = Some(hear);
                    Some(told)
                } else {
                    None
                };
                let (ran, hear_ran) = oneshot::channel();
                unrun = Some(hear_ran);
                (
                    Item::Run {
                        frame,
                        op,
                        done,
                        ran,
                    },
                    closing,
                )
            }
        };
        if items.send(item).await.is_err() {
            return Closed::Dropped;
        }
        if end {
            return Closed::ClientLeft;
        }
        if let Some(hear) = waiting {
            if !hear.await.unwrap_or(false) {
                return Closed::ClientLeft;
            }
        }
    }
}

/// Answers a connection's requests in the order they were read: waits for each proposed
/// write's commit (the first to wait fsyncs for all), runs the other requests in turn, and
/// queues each answer. Ends when the request loop is done, or when the connection must close.
async fn answer_loop(
    mut items: mpsc::Receiver<Item>,
    session: Arc<LocalSession>,
    outbound: Arc<Outbound>,
    mut closing_seen: watch::Receiver<bool>,
    info: Arc<ConnectionInfo>,
    shared: Arc<NetShared>,
) {
    let engine = &shared.engine;
    while let Some(item) = items.recv().await {
        let started = Instant::now();
        let (reply, opcode, xid, end) = match item {
            Item::Ready { reply, end } => (reply, None, 0, end),
            Item::Ping => {
                engine.touch(&session);
                let reply = wire::encode_header(XID_PING, engine.last_zxid(), 0);
                (
                    reply,
                    Some(crate::proto::OpCode::Ping.code()),
                    XID_PING,
                    false,
                )
            }
            Item::Proposed { frame, proposal } => {
                // The commit may wait for an fsync: let the runtime move other connections.
                let response = tokio::task::block_in_place(|| engine.finish(proposal));
                (
                    wire::encode_reply(&frame, &response),
                    Some(frame.opcode),
                    frame.xid,
                    false,
                )
            }
            Item::Answered { frame, response } => (
                wire::encode_reply(&frame, &response),
                Some(frame.opcode),
                frame.xid,
                false,
            ),
            Item::Run {
                frame,
                op,
                done,
                ran,
            } => {
                // ZooKeeper closes the connection after a closeSession and after a failed auth,
                // and answers auth packets with zxid 0.
                let closing = matches!(op, Op::CloseSession);
                let authenticating = matches!(op, Op::AddAuth { .. });
                let mut response: Response = if op.is_write() {
                    tokio::task::block_in_place(|| engine.submit(&session, op, &mut |_, _| {}))
                } else {
                    engine.submit(&session, op, &mut |_, _| {})
                };
                let _ = ran.send(());
                let auth_failed = authenticating && response.result == Err(ErrorCode::AuthFailed);
                if authenticating {
                    response.zxid = 0;
                }
                if let Some(done) = done {
                    let _ = done.send(!auth_failed);
                }
                let reply = wire::encode_reply(&frame, &response);
                (reply, Some(frame.opcode), frame.xid, closing || auth_failed)
            }
        };
        if let Some(opcode) = opcode {
            info.record_response(&shared, opcode, xid, engine.last_zxid(), started);
        }
        // Wait for room in the queue: a client that does not read its replies stops being read.
        let cost = outbound.cost(&reply);
        tokio::select! {
            biased;
            _ = closing(&mut closing_seen) => return,
            permit = outbound.budget.acquire_many(cost) => match permit {
                Ok(permit) => permit.forget(),
                Err(_) => return,
            },
        }
        info.queued.fetch_add(1, Ordering::Relaxed);
        if outbound.frames.send((reply, cost)).is_err() || end {
            return;
        }
    }
}
