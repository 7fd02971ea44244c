//! One session through one phase: a writer that keeps up to `pipeline` requests outstanding
//! (sending as soon as there is room, or when the pacer says a request is due) and pings when
//! quiet, and a reader that matches each reply to its request by xid and records it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::Receiver;
use tokio::sync::{Notify, Semaphore};
use zookeeper_core::op::{OpResult, Reply};
use zookeeper_core::proto::wire::{self, Request, RequestFrame, XID_NOTIFICATION, XID_PING};
use zookeeper_core::proto::{ErrorCode, OpCode};

use crate::config::OpKind;
use crate::connection::{next_xid, Connection, FrameBuffer, LostReason};
use crate::recorder::Recorder;

/// Bytes of requests the writer gathers before it writes them out, when more are ready.
const WRITE_BATCH_BYTES_MAX: usize = 64 * 1024;

/// Where a phase's requests come from.
pub trait Source: Send {
    /// Appends the frame of the next request, with `xid`, to `buffer` and says what kind it
    /// is; None once this session has nothing more to send in this phase. `now` is when it is
    /// asked (closed-loop sources stop by it).
    fn next(&mut self, xid: i32, now: Instant, buffer: &mut Vec<u8>) -> Option<OpKind>;
}

/// When requests are sent.
#[derive(Debug)]
pub enum Pacing {
    /// As soon as the pipeline has room, until the source runs dry.
    ClosedLoop,
    /// One request per due time received, timed from it; the pacer closes the channel when the
    /// run's last request is due.
    Tickets(Receiver<Instant>),
}

/// Totals every session adds to as replies arrive, for the progress line.
#[derive(Debug, Default)]
pub struct Counters {
    /// Replies received.
    pub answered: AtomicU64,
    /// Replies with an error code.
    pub errors: AtomicU64,
}

/// A session's connection broke during a phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLost {
    /// Why.
    pub reason: LostReason,
    /// Requests outstanding when it broke.
    pub unanswered: u64,
}

/// A request sent and not yet answered.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    xid: i32,
    kind: OpKind,
    /// When its latency starts: its due time in fixed-rate mode, else when it was written.
    start: Instant,
}

/// What the writer and the reader of one session share.
struct Shared {
    /// Outstanding requests in the order sent; a ZooKeeper server answers a session in that
    /// order, so the match is nearly always at the front.
    in_flight: Mutex<VecDeque<InFlight>>,
    /// Free pipeline slots.
    permits: Semaphore,
    writer_done: AtomicBool,
    writer_finished: Notify,
}

impl Shared {
    fn take(&self, xid: i32) -> Option<InFlight> {
        let mut in_flight = self.in_flight.lock().expect("no panic holds this lock");
        let position = in_flight.iter().position(|request| request.xid == xid)?;
        in_flight.remove(position)
    }

    fn is_idle(&self) -> bool {
        self.writer_done.load(Ordering::Acquire)
            && self
                .in_flight
                .lock()
                .expect("no panic holds this lock")
                .is_empty()
    }
}

/// Runs one phase on `connection`: sends what `source` gives, paced by `pacing`, with at most
/// `pipeline` outstanding, records every answer in `recorder`, and returns once every request
/// sent is answered. Err when the connection broke: requests then unanswered are recorded as
/// such, and the connection must not be used again.
pub async fn run_phase(
    connection: &mut Connection,
    source: &mut dyn Source,
    mut pacing: Pacing,
    pipeline: usize,
    recorder: &mut Recorder,
    counters: &Counters,
) -> Result<(), SessionLost> {
    let shared = Shared {
        in_flight: Mutex::new(VecDeque::with_capacity(pipeline)),
        permits: Semaphore::new(pipeline),
        writer_done: AtomicBool::new(false),
        writer_finished: Notify::new(),
    };
    let (ping_interval, silence_max) = (connection.ping_interval(), connection.silence_max());
    let Connection {
        stream,
        frames,
        last_xid,
        ..
    } = connection;
    let (mut reader, mut writer) = stream.split();
    let writing = Writer {
        writer: &mut writer,
        shared: &shared,
        last_xid,
        buffer: Vec::with_capacity(WRITE_BATCH_BYTES_MAX + 1024),
        pending: Vec::with_capacity(pipeline),
        ping_interval,
    }
    .run(source, &mut pacing);
    let reading = read_replies(
        &mut reader,
        frames,
        &shared,
        recorder,
        counters,
        silence_max,
    );
    match tokio::try_join!(writing, reading) {
        Ok(((), ())) => Ok(()),
        Err(reason) => {
            let in_flight = shared
                .in_flight
                .into_inner()
                .expect("no panic holds this lock");
            for request in &in_flight {
                recorder.record_unanswered(request.kind, request.start);
            }
            Err(SessionLost {
                reason,
                unanswered: in_flight.len() as u64,
            })
        }
    }
}

/// The sending half of a phase.
struct Writer<'a, 'b> {
    writer: &'a mut WriteHalf<'b>,
    shared: &'a Shared,
    last_xid: &'a mut i32,
    /// Frames gathered and not yet written.
    buffer: Vec<u8>,
    /// Their requests: xid, kind and due time (fixed rate).
    pending: Vec<(i32, OpKind, Option<Instant>)>,
    ping_interval: Duration,
}

impl Writer<'_, '_> {
    async fn run(mut self, source: &mut dyn Source, pacing: &mut Pacing) -> Result<(), LostReason> {
        let ping = tokio::time::sleep(self.ping_interval);
        tokio::pin!(ping);
        loop {
            let due = match pacing {
                Pacing::ClosedLoop => None,
                Pacing::Tickets(tickets) => match tickets.try_recv() {
                    Ok(due) => Some(due),
                    Err(TryRecvError::Disconnected) => break,
                    Err(TryRecvError::Empty) => {
                        self.flush(&mut ping).await?;
                        let ticket = loop {
                            tokio::select! {
                                ticket = tickets.recv() => break ticket,
                                () = &mut ping => self.ping(&mut ping).await?,
                            }
                        };
                        match ticket {
                            Some(due) => Some(due),
                            None => break,
                        }
                    }
                },
            };
            // A pipeline slot; while waiting for one, what is gathered goes out.
            match self.shared.permits.try_acquire() {
                Ok(permit) => permit.forget(),
                Err(_) => {
                    self.flush(&mut ping).await?;
                    loop {
                        tokio::select! {
                            permit = self.shared.permits.acquire() => {
                                permit.expect("the semaphore is never closed").forget();
                                break;
                            }
                            () = &mut ping => self.ping(&mut ping).await?,
                        }
                    }
                }
            }
            let xid = next_xid(self.last_xid);
            match source.next(xid, Instant::now(), &mut self.buffer) {
                Some(kind) => self.pending.push((xid, kind, due)),
                None => {
                    self.shared.permits.add_permits(1);
                    break;
                }
            }
            if self.buffer.len() >= WRITE_BATCH_BYTES_MAX {
                self.flush(&mut ping).await?;
            }
        }
        self.flush(&mut ping).await?;
        self.shared.writer_done.store(true, Ordering::Release);
        self.shared.writer_finished.notify_one();
        Ok(())
    }

    /// Writes what is gathered. The requests enter the in-flight table first, so no reply can
    /// arrive before its request is known; their latency starts now (or at their due time).
    async fn flush(
        &mut self,
        ping: &mut std::pin::Pin<&mut tokio::time::Sleep>,
    ) -> Result<(), LostReason> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let sent = Instant::now();
        {
            let mut in_flight = self
                .shared
                .in_flight
                .lock()
                .expect("no panic holds this lock");
            in_flight.extend(self.pending.drain(..).map(|(xid, kind, due)| InFlight {
                xid,
                kind,
                start: due.unwrap_or(sent),
            }));
        }
        self.writer.write_all(&self.buffer).await?;
        self.buffer.clear();
        ping.as_mut()
            .reset(tokio::time::Instant::now() + self.ping_interval);
        Ok(())
    }

    /// Sends a ping, so a quiet session stays alive and a dead server is noticed.
    async fn ping(
        &mut self,
        ping: &mut std::pin::Pin<&mut tokio::time::Sleep>,
    ) -> Result<(), LostReason> {
        self.buffer
            .extend_from_slice(&wire::encode_request(&RequestFrame {
                xid: XID_PING,
                opcode: OpCode::Ping.code(),
                multi_opcodes: Vec::new(),
                request: Request::Ping,
            }));
        self.flush(ping).await
    }
}

/// The receiving half of a phase: reads until the writer is done and every request is
/// answered.
async fn read_replies(
    reader: &mut ReadHalf<'_>,
    frames: &mut FrameBuffer,
    shared: &Shared,
    recorder: &mut Recorder,
    counters: &Counters,
    silence_max: Duration,
) -> Result<(), LostReason> {
    let silence = tokio::time::sleep(silence_max);
    tokio::pin!(silence);
    // Replies that arrived in one read are stamped with that read's time.
    let mut arrived = Instant::now();
    loop {
        let (mut answered, mut errors) = (0u64, 0u64);
        while let Some(payload) = frames.next_frame()? {
            let (header, body) = wire::decode_reply_header(payload)
                .map_err(|error| LostReason::Protocol(format!("reply header: {error:?}")))?;
            if header.xid == XID_PING || header.xid == XID_NOTIFICATION {
                continue;
            }
            let request = shared.take(header.xid).ok_or_else(|| {
                LostReason::Protocol(format!(
                    "reply to xid {}, which is not outstanding",
                    header.xid
                ))
            })?;
            let err = outcome(request.kind, header.err, body)?;
            recorder.record(request.kind, request.start, arrived, err);
            answered += 1;
            errors += u64::from(err != 0);
        }
        if answered > 0 {
            shared.permits.add_permits(answered as usize);
            counters.answered.fetch_add(answered, Ordering::Relaxed);
            counters.errors.fetch_add(errors, Ordering::Relaxed);
        }
        if shared.is_idle() {
            return Ok(());
        }
        tokio::select! {
            read = frames.fill(reader) => {
                if read? == 0 {
                    return Err(LostReason::Closed);
                }
                arrived = Instant::now();
                silence.as_mut().reset(tokio::time::Instant::now() + silence_max);
            }
            () = shared.writer_finished.notified() => {}
            () = &mut silence => return Err(LostReason::Silent(silence_max)),
        }
    }
}

/// A reply's error code. A multi that fails is answered 0 with a result per op; its code is
/// the failing op's (the ops after it say RuntimeInconsistency, the ones before say 0).
fn outcome(kind: OpKind, err: i32, body: &[u8]) -> Result<i32, LostReason> {
    if kind != OpKind::Multi || err != 0 {
        return Ok(err);
    }
    let reply = wire::decode_reply(OpCode::Multi.code(), body)
        .map_err(|error| LostReason::Protocol(format!("multi reply: {error:?}")))?;
    let Reply::Multi(results) = reply else {
        return Err(LostReason::Protocol(
            "a multi answered with another reply".into(),
        ));
    };
    Ok(results
        .iter()
        .find_map(|result| match result {
            OpResult::Error(Some(code)) if *code != ErrorCode::RuntimeInconsistency => {
                Some(code.code())
            }
            _ => None,
        })
        .unwrap_or(0))
}
