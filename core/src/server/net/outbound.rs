//! A connection's outbound side: replies and notifications in one ordered queue bounded in
//! bytes, the session sink that feeds notifications into it without blocking the engine, and
//! the writer task that drains it to the socket.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, watch, Semaphore};

use super::{ConnectionInfo, NetShared};
use crate::proto::wire;
use crate::proto::{EventType, WatchedEvent};
use crate::server::SessionSink;

/// A connection's outbound side: frames in order, and a budget of bytes they may hold.
pub(super) struct Outbound {
    pub(super) frames: mpsc::UnboundedSender<(Vec<u8>, u32)>,
    pub(super) budget: Semaphore,
    pub(super) budget_bytes: usize,
    /// Set when the connection must end at once (session ended or moved, client too slow).
    pub(super) closing: watch::Sender<bool>,
    /// Set when the request loop has ended: queued frames still go out, new notifications no
    /// longer come in.
    pub(super) finished: AtomicBool,
}

impl Outbound {
    /// The share of the budget a frame takes (a frame larger than the budget takes all of it).
    pub(super) fn cost(&self, frame: &[u8]) -> u32 {
        frame.len().min(self.budget_bytes).max(1) as u32
    }

    pub(super) fn close(&self) {
        self.closing.send_replace(true);
    }

    fn is_closing(&self) -> bool {
        *self.closing.borrow() || self.finished.load(Ordering::Acquire)
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
        let frame = wire::encode_event(&event);
        let cost = self.outbound.cost(&frame);
        match self.outbound.budget.try_acquire_many(cost) {
            Ok(permit) => {
                permit.forget();
                self.info.queued.fetch_add(1, Ordering::Relaxed);
                let _ = self.outbound.frames.send((frame, cost));
            }
            // A client that does not read its notifications is cut off rather than let its queue
            // grow without bound or make the engine wait.
            Err(_) => {
                tracing::warn!(peer = %self.info.peer, "closing a connection too slow to take its notifications");
                self.outbound.close();
            }
        }
    }

    fn detach(&self) {
        self.outbound.close();
    }
}

/// Waits until the connection must end at once.
pub(super) async fn closing(closing: &mut watch::Receiver<bool>) {
    let _ = closing.wait_for(|closing| *closing).await;
}

/// Writes queued frames in order, batching flushes. Ends at once when the connection must
/// close, after draining when the request loop finished, and when the client takes no bytes for
/// a whole session timeout (it could not be pinging either).
#[allow(clippy::too_many_arguments)]
pub(super) async fn write_loop(
    mut writer: BufWriter<OwnedWriteHalf>,
    mut queued: mpsc::UnboundedReceiver<(Vec<u8>, u32)>,
    outbound: Arc<Outbound>,
    mut closing_seen: watch::Receiver<bool>,
    mut finishing: watch::Receiver<bool>,
    stall_limit: Duration,
    info: Arc<ConnectionInfo>,
    shared: Arc<NetShared>,
) {
    let mut draining = false;
    loop {
        let next = if draining {
            queued.try_recv().ok()
        } else {
            tokio::select! {
                biased;
                _ = closing(&mut closing_seen) => return,
                next = queued.recv() => next,
                _ = finishing.wait_for(|finished| *finished) => {
                    draining = true;
                    continue;
                }
            }
        };
        let Some((frame, cost)) = next else { break };
        let sent = tokio::time::timeout(stall_limit, async {
            writer.write_all(&frame).await?;
            // Batch: flush only when nothing else is ready to go.
            if queued.is_empty() {
                writer.flush().await?;
            }
            Ok::<(), std::io::Error>(())
        })
        .await;
        outbound.budget.add_permits(cost as usize);
        info.queued.fetch_sub(1, Ordering::Relaxed);
        match sent {
            Ok(Ok(())) => info.count_sent(&shared),
            _ => {
                outbound.close();
                return;
            }
        }
    }
    let _ = tokio::time::timeout(stall_limit, async {
        writer.flush().await?;
        writer.shutdown().await
    })
    .await;
}
