//! One client connection: the handshake, then every request handed to the engine's one entry
//! point, which answers them in order, with watch notifications interleaved exactly where they
//! happened.
//!
//! Replies and notifications share one ordered queue to a writer task. The engine pushes a
//! change's notifications while applying it, before the change's own reply and before any later
//! read's reply is pushed, so a client sees the event before it can see the change. The
//! connection decides nothing about requests beyond framing: which run when is the engine's.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{oneshot, watch};

use super::outbound::{closed, write_loop, ConnectionSink, Outbound, Reply, TcpAnswer};
use super::transport::{ClientReader, ClientStream};
use super::{four_letter, ConnectionInfo, NetShared, Release};
use crate::op::Op;
use crate::proto::wire::{self, ConnectRequest, ConnectResponse, Request, PROTOCOL_VERSION};
use crate::proto::ErrorCode;
use crate::server::LocalSession;

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
    reader: &mut BufReader<ClientReader>,
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
    reader: &mut BufReader<ClientReader>,
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
    stream: ClientStream,
    info: Arc<ConnectionInfo>,
    shared: &Arc<NetShared>,
    mut stopped: watch::Receiver<bool>,
    slot: Release<'_>,
) {
    let peer = info.peer;
    let ClientStream {
        reader,
        writer: mut write_half,
        identities,
    } = stream;
    let mut reader = BufReader::new(reader);
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
    // A stopping port grants no session: its client would only be cut off again at once.
    if *stopped.borrow() {
        return;
    }
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

    let budget_bytes = shared.config.connection_queue_bytes_max;
    let (outbound, queued_frames, closing_seen) = Outbound::new(budget_bytes);
    let sink = Arc::new(ConnectionSink {
        outbound: outbound.clone(),
        info: info.clone(),
    });
    let ip = peer.ip().to_string();
    let handshake_started = Instant::now();
    let opened = if engine.is_read_only() {
        // A member without its quorum serves read-only clients only; the others close and
        // look for a member that serves writes.
        if connect.read_only != Some(true) {
            tracing::debug!(%peer, "refusing a read-write client while read-only");
            return;
        }
        engine.open_read_only_session(
            connect.session_id,
            &connect.password,
            connect.timeout_ms as i64,
            sink.clone(),
            Some(&ip),
        )
    } else {
        let (opened, open) = oneshot::channel();
        let done = Box::new(move |result| drop(opened.send(result)));
        if connect.session_id == 0 {
            engine.open_session_then(connect.timeout_ms as i64, sink.clone(), Some(&ip), done);
        } else {
            engine.resume_session_then(
                connect.session_id,
                &connect.password,
                sink.clone(),
                Some(&ip),
                done,
            );
        }
        open.await.unwrap_or(Err(ErrorCode::ConnectionLoss))
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
        // Anything else (too many sessions, a failed log, a stopping member) just closes:
        // the client retries.
        Err(code) => {
            tracing::warn!(%peer, %code, "session refused");
            return;
        }
    };
    // A TCP session lives on its client's packets, not on the connection being open.
    session.set_attached(false);
    // Before any request is read: the certificate's identities are this connection's.
    session.add_certificate_identities(identities);
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
        read_only: connect.read_only.map(|_| session.is_read_only()),
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

    let writer = tokio::spawn(write_loop(
        BufWriter::new(write_half),
        queued_frames,
        outbound.clone(),
        closing_seen.clone(),
        session_timeout,
        info.clone(),
        shared.clone(),
    ));
    let closed = request_loop(
        &mut reader,
        &session,
        &outbound,
        closing_seen,
        &info,
        shared,
        &mut stopped,
    )
    .await;
    match &closed {
        Closed::ClientLeft | Closed::Stopped => {
            tracing::debug!(%peer, ?closed, "connection closed")
        }
        other => tracing::info!(%peer, ?other, "connection closed"),
    }
    // The answers owed for requests already read still go out, in order, within a session
    // timeout; notifications for the session no longer reach this connection.
    outbound.answered(session_timeout).await;
    outbound.finish();
    let writer_abort = writer.abort_handle();
    if tokio::time::timeout(session_timeout + Duration::from_secs(1), writer)
        .await
        .is_err()
    {
        writer_abort.abort();
    }
}

/// Waits until the client port stops. A receiver cloned after the stop was sent has seen it
/// already, so this looks at the value rather than waiting for a change.
async fn stopping(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stopped| *stopped).await;
}

/// Requests a connection may have read ahead of their answers.
const PIPELINE_DEPTH_MAX: usize = 1024;

/// Reads requests and hands each to the engine's entry point, which answers them in order
/// through the connection's outbound queue. Ends when the client leaves or sends what ends the
/// connection, or when the connection must close.
async fn request_loop(
    reader: &mut BufReader<ClientReader>,
    session: &Arc<LocalSession>,
    outbound: &Arc<Outbound>,
    mut closing_seen: watch::Receiver<bool>,
    info: &Arc<ConnectionInfo>,
    shared: &Arc<NetShared>,
    stopped: &mut watch::Receiver<bool>,
) -> Closed {
    let engine = &shared.engine;
    // One future for the whole loop, polled beside each wait: creating the watch futures
    // afresh for every request registered and dropped two waiters per request, a fifth of
    // the CPU of a pipelined read.
    let mut closing = closing_seen.clone();
    let must_end = async {
        tokio::select! {
            biased;
            _ = stopping(stopped) => Closed::Stopped,
            _ = closed(&mut closing) => Closed::Dropped,
        }
    };
    tokio::pin!(must_end);
    loop {
        // A closed session answers nothing more on this connection, pings included.
        if session.is_closed() {
            return Closed::SessionEnded;
        }
        if outbound.is_ending() {
            return Closed::ClientLeft;
        }
        // A client that does not take its replies, or has too many unanswered, is read no
        // further until it catches up.
        let room = tokio::select! {
            biased;
            end = &mut must_end => return end,
            room = outbound.room(PIPELINE_DEPTH_MAX, &mut closing_seen) => room,
        };
        if !room {
            return Closed::Dropped;
        }
        // Biased: once the connection must close, no further request is read.
        let payload = tokio::select! {
            biased;
            end = &mut must_end => return end,
            payload = read_frame(reader, shared.config.frame_bytes_max) => match payload {
                Ok(payload) => payload,
                Err(closed) => return closed,
            },
        };
        info.count_received(shared);
        let Ok(mut frame) = wire::decode_request(&payload) else {
            return Closed::Undecodable;
        };
        let (op, reply) = match std::mem::replace(&mut frame.request, Request::Ping) {
            Request::Ping => (Op::Ping, Reply::Normal),
            // ZooKeeper answers an opcode it does not serve with zxid -1, then hangs up.
            Request::Refuse(code) if !wire::is_served(frame.opcode) => {
                (Op::Refused(code), Reply::Unserved)
            }
            Request::Refuse(code) => (Op::Refused(code), Reply::Normal),
            Request::Op(op) => {
                let reply = match op {
                    Op::CloseSession => Reply::Close,
                    // ZooKeeper answers auth and sasl packets with zxid 0, so a client's last
                    // zxid seen (and the setWatches it sends later) does not move on them.
                    Op::AddAuth { .. } | Op::Sasl => Reply::Auth,
                    _ => Reply::Normal,
                };
                (op, reply)
            }
        };
        outbound.request_sent();
        let answer = TcpAnswer {
            frame,
            reply,
            outbound: outbound.clone(),
            info: info.clone(),
            shared: shared.clone(),
            started: Instant::now(),
        };
        engine.submit(session, op, Box::new(answer));
        // closeSession and an unserved opcode end the connection; nothing more is read.
        if matches!(reply, Reply::Close | Reply::Unserved) {
            return Closed::ClientLeft;
        }
    }
}
