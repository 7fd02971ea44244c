//! A connection's outbound side: replies and notifications in one ordered queue bounded in
//! bytes, the session sink that feeds notifications into it, the engine's answers that feed
//! replies into it (neither ever blocks the engine), and the writer task that drains it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, watch, Notify};

use super::transport::ClientWriter;
use super::{ConnectionInfo, NetShared};
use crate::op::Response;
use crate::proto::wire::{self, RequestFrame};
use crate::proto::{ErrorCode, EventType, WatchedEvent};
use crate::server::{Answer, SessionSink};

/// How many times its byte budget a connection may hold in replies before it is cut off:
/// replies are never dropped (the client would lose its place), and the connection reads no
/// further request while over budget, but requests already read can still answer, up to this.
const REPLY_BUDGET_OVERDRAFT: usize = 4;

/// A frame to write; `end`: close the connection once it is out.
pub(super) struct Frame {
    bytes: Vec<u8>,
    end: bool,
}

/// A connection's outbound side: frames in order, the bytes they hold, and the requests whose
/// answers are still owed.
pub(super) struct Outbound {
    frames: mpsc::UnboundedSender<Frame>,
    queued_bytes: AtomicUsize,
    budget_bytes: usize,
    /// Signalled when frames leave the queue or an answer arrives.
    progress: Notify,
    /// Requests handed to the engine and not answered yet.
    in_flight: AtomicUsize,
    /// Set when the connection must end at once (session ended or moved, client too slow).
    closing: watch::Sender<bool>,
    /// Set once a frame that ends the connection is queued: nothing more is read.
    ending: AtomicBool,
    /// Set when the request loop has ended: queued frames still go out, new notifications no
    /// longer come in.
    finished: AtomicBool,
}

impl Outbound {
    /// An outbound side of `budget_bytes` and the receiving end for its writer.
    pub(super) fn new(
        budget_bytes: usize,
    ) -> (
        Arc<Outbound>,
        mpsc::UnboundedReceiver<Frame>,
        watch::Receiver<bool>,
    ) {
        let (frames, queued) = mpsc::unbounded_channel();
        let (closing, closing_seen) = watch::channel(false);
        let outbound = Arc::new(Outbound {
            frames,
            queued_bytes: AtomicUsize::new(0),
            budget_bytes: budget_bytes.max(1),
            progress: Notify::new(),
            in_flight: AtomicUsize::new(0),
            closing,
            ending: AtomicBool::new(false),
            finished: AtomicBool::new(false),
        });
        (outbound, queued, closing_seen)
    }

    pub(super) fn close(&self) {
        self.closing.send_replace(true);
    }

    fn is_closing(&self) -> bool {
        *self.closing.borrow() || self.finished.load(Ordering::Acquire)
    }

    /// True once a frame that ends the connection is queued.
    pub(super) fn is_ending(&self) -> bool {
        self.ending.load(Ordering::Acquire)
    }

    /// The request loop ended: the writer drains what is queued and closes.
    pub(super) fn finish(&self) {
        self.finished.store(true, Ordering::Release);
        self.progress.notify_waiters();
    }

    /// Counts a request handed to the engine.
    pub(super) fn request_sent(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// Requests handed to the engine and not answered yet.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Waits until the queue is within its budget and fewer than `in_flight_max` requests are
    /// unanswered: a client that does not read its replies, or pipelines without bound, stops
    /// being read. Ends early (false) when the connection must close.
    pub(super) async fn room(
        &self,
        in_flight_max: usize,
        closing: &mut watch::Receiver<bool>,
    ) -> bool {
        loop {
            let progress = self.progress.notified();
            if self.queued_bytes.load(Ordering::Acquire) <= self.budget_bytes
                && self.in_flight() < in_flight_max
            {
                return true;
            }
            tokio::select! {
                biased;
                _ = closed(closing) => return false,
                _ = progress => {}
            }
        }
    }

    /// Waits until every request handed to the engine is answered, or `limit` passes.
    pub(super) async fn answered(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let progress = self.progress.notified();
            if self.in_flight() == 0 || self.is_closing_now() {
                return;
            }
            if tokio::time::timeout_at(deadline, progress).await.is_err() {
                return;
            }
        }
    }

    fn is_closing_now(&self) -> bool {
        *self.closing.borrow()
    }

    /// Queues an answer's frame (never refused: a reply is owed).
    fn push_reply(&self, bytes: Vec<u8>, end: bool) {
        let queued = self.queued_bytes.fetch_add(bytes.len(), Ordering::AcqRel) + bytes.len();
        if end {
            self.ending.store(true, Ordering::Release);
        }
        let _ = self.frames.send(Frame { bytes, end });
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.progress.notify_waiters();
        if queued > self.budget_bytes * REPLY_BUDGET_OVERDRAFT {
            tracing::warn!("closing a connection too slow to take its replies");
            self.close();
        }
    }
}

/// The session sink of a TCP connection: notifications go into its queue without blocking.
pub(super) struct ConnectionSink {
    pub(super) outbound: Arc<Outbound>,
    pub(super) info: Arc<ConnectionInfo>,
}

impl SessionSink for ConnectionSink {
    fn deliver(&self, event: WatchedEvent) {
        if self.outbound.is_closing() {
            return;
        }
        // An expired or closed session ends its connection; the client learns it on reconnect,
        // as from ZooKeeper.
        if event.event_type == EventType::None {
            self.outbound.close();
            return;
        }
        let bytes = wire::encode_event(&event);
        let outbound = &self.outbound;
        // A client that does not read its notifications is cut off rather than let its queue
        // grow without bound or make the engine wait.
        if outbound.queued_bytes.load(Ordering::Acquire) + bytes.len() > outbound.budget_bytes {
            tracing::warn!(peer = %self.info.peer, "closing a connection too slow to take its notifications");
            outbound.close();
            return;
        }
        outbound
            .queued_bytes
            .fetch_add(bytes.len(), Ordering::AcqRel);
        self.info.queued.fetch_add(1, Ordering::Relaxed);
        let _ = outbound.frames.send(Frame { bytes, end: false });
    }

    fn detach(&self) {
        self.outbound.close();
    }
}

/// How a request's reply is shaped and what it does to the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reply {
    /// The reply to a request.
    Normal,
    /// An auth or sasl packet's: zxid 0, and a failed auth ends the connection (as ZooKeeper
    /// does).
    Auth,
    /// closeSession's: the connection ends after it.
    Close,
    /// An opcode ZooKeeper does not serve: zxid -1, then the connection ends.
    Unserved,
}

/// The engine's answer to one request of a TCP connection: the reply frame, queued in order.
pub(super) struct TcpAnswer {
    pub(super) frame: RequestFrame,
    pub(super) reply: Reply,
    pub(super) outbound: Arc<Outbound>,
    pub(super) info: Arc<ConnectionInfo>,
    pub(super) shared: Arc<NetShared>,
    pub(super) started: Instant,
}

impl Answer for TcpAnswer {
    fn respond(self: Box<Self>, response: Response) {
        let frame = &self.frame;
        let (bytes, zxid, end) = match self.reply {
            Reply::Normal => (wire::encode_reply(frame, &response), response.zxid, false),
            Reply::Close => (wire::encode_reply(frame, &response), response.zxid, true),
            Reply::Auth => {
                let failed = response.result == Err(ErrorCode::AuthFailed);
                let zeroed = Response {
                    zxid: 0,
                    ..response
                };
                (wire::encode_reply(frame, &zeroed), 0, failed)
            }
            Reply::Unserved => {
                let code = response.result.err().unwrap_or(ErrorCode::Unimplemented);
                (wire::encode_header(frame.xid, -1, code.code()), -1, true)
            }
        };
        if self.reply != Reply::Unserved {
            self.info
                .record_response(&self.shared, frame.opcode, frame.xid, zxid, self.started);
            // ZooKeeper's client response stats count the reply without its length prefix.
            let metrics = self.shared.engine.metrics();
            metrics
                .client_response_sizes
                .record(bytes.len().saturating_sub(4));
        }
        self.info.queued.fetch_add(1, Ordering::Relaxed);
        self.outbound.push_reply(bytes, end);
    }
}

/// Waits until the connection must end at once.
pub(super) async fn closed(closing: &mut watch::Receiver<bool>) {
    let _ = closing.wait_for(|closing| *closing).await;
}

/// Writes queued frames in order, batching flushes. Ends at once when the connection must
/// close; after a frame that ends the connection; after draining once the request loop
/// finished and every answer is out; and when the client takes no bytes for a whole session
/// timeout (it could not be pinging either).
pub(super) async fn write_loop(
    mut writer: BufWriter<ClientWriter>,
    mut queued: mpsc::UnboundedReceiver<Frame>,
    outbound: Arc<Outbound>,
    mut closing_seen: watch::Receiver<bool>,
    stall_limit: Duration,
    info: Arc<ConnectionInfo>,
    shared: Arc<NetShared>,
) {
    loop {
        let finished = outbound.progress.notified();
        let next = match queued.try_recv() {
            Ok(frame) => Some(frame),
            Err(_) if outbound.finished.load(Ordering::Acquire) && outbound.in_flight() == 0 => {
                None
            }
            Err(_) => tokio::select! {
                biased;
                _ = closed(&mut closing_seen) => return,
                next = queued.recv() => next,
                _ = finished => continue,
            },
        };
        if *closing_seen.borrow() {
            return;
        }
        let Some(Frame { bytes, end }) = next else {
            break;
        };
        let sent = tokio::time::timeout(stall_limit, async {
            writer.write_all(&bytes).await?;
            // Batch: flush only when nothing else is ready to go.
            if end || queued.is_empty() {
                writer.flush().await?;
            }
            Ok::<(), std::io::Error>(())
        })
        .await;
        outbound
            .queued_bytes
            .fetch_sub(bytes.len(), Ordering::AcqRel);
        outbound.progress.notify_waiters();
        info.queued.fetch_sub(1, Ordering::Relaxed);
        match sent {
            Ok(Ok(())) => info.count_sent(&shared),
            _ => {
                outbound.close();
                return;
            }
        }
        if end {
            break;
        }
    }
    let _ = tokio::time::timeout(stall_limit, async {
        writer.flush().await?;
        writer.shutdown().await
    })
    .await;
}
