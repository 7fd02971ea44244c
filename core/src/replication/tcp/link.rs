//! One outbound link: this member's messages for one peer wait in a bounded queue that `send`
//! fills without blocking; the link's writer thread dials the peer, authenticates, drains the
//! queue into one write per batch, and dials again with jittered exponential backoff when the
//! connection fails. Messages queued while the peer is away go out once it is back.
//!
//! Each member dials each peer for its own messages and only reads on the connections it
//! accepts, so two members never race to decide which of two connections to keep.

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{select, Receiver, RecvTimeoutError, Sender, TrySendError};
use parking_lot::Mutex;

use super::handshake::{self, Deadline, HandshakeError};
use super::stats::add;
use super::tls::PeerStream;
use super::{codec, Shared};
use crate::random::SplitMix64;
use crate::replication::PeerMessage;

/// A running link to one peer.
pub(super) struct Link {
    /// Where the peer listens.
    pub(super) address: SocketAddr,
    queue: Sender<PeerMessage>,
    /// Never sent on: dropping it wakes the writer wherever it waits.
    stop: Sender<()>,
    connection: Arc<Connection>,
    thread: JoinHandle<()>,
}

/// The writer's current connection, published so that `stop` can shut it down: a writer
/// blocked in a handshake or a write wakes at once.
#[derive(Default)]
struct Connection {
    state: Mutex<ConnectionState>,
}

#[derive(Default)]
struct ConnectionState {
    stopping: bool,
    stream: Option<TcpStream>,
}

impl Link {
    /// Starts the link's writer thread (named after the peer).
    pub(super) fn start(
        shared: &Arc<Shared>,
        peer: u64,
        address: SocketAddr,
    ) -> std::io::Result<Link> {
        let (queue, queued) = crossbeam_channel::bounded(shared.config.messages_queued_max);
        let (stop, stopped) = crossbeam_channel::bounded(0);
        let connection = Arc::new(Connection::default());
        let writer = Writer {
            shared: Arc::clone(shared),
            peer,
            address,
            queued,
            stopped,
            connection: Arc::clone(&connection),
        };
        let thread = std::thread::Builder::new()
            .name(format!("zk-peer-out-{peer}"))
            .spawn(move || writer.run())?;
        Ok(Link {
            address,
            queue,
            stop,
            connection,
            thread,
        })
    }

    /// Queues `message` without blocking; false when the queue is full (the message is
    /// dropped: raft and the forward streams send again).
    pub(super) fn offer(&self, message: PeerMessage) -> bool {
        match self.queue.try_send(message) {
            Ok(()) => true,
            // Disconnected only if the writer died, which a panic elsewhere reports.
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    /// Tells the writer to stop and closes its connection; answers its thread, to join once
    /// every link was told (so links stop together, not one after another).
    pub(super) fn stop(self) -> JoinHandle<()> {
        {
            let mut state = self.connection.state.lock();
            state.stopping = true;
            if let Some(stream) = state.stream.take() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        drop(self.stop);
        drop(self.queue);
        self.thread
    }
}

/// How a connected writer ended.
enum Ended {
    /// The link was stopped.
    Stopped,
    /// The connection failed.
    Failed(std::io::Error),
}

/// The writer thread's state.
struct Writer {
    shared: Arc<Shared>,
    peer: u64,
    address: SocketAddr,
    queued: Receiver<PeerMessage>,
    stopped: Receiver<()>,
    connection: Arc<Connection>,
}

impl Writer {
    fn run(self) {
        let config = &self.shared.config;
        let mut backoff = Backoff::new(
            config.reconnect_backoff_ms_min,
            config.reconnect_backoff_ms_max,
            random_seed(self.peer),
        );
        // Repeated failures to reach a peer that is down are logged once, not every dial.
        let mut failures = 0u64;
        loop {
            match self.connect() {
                Ok(Some(mut stream)) => {
                    backoff.reset();
                    failures = 0;
                    add(&self.shared.stats.connects, 1);
                    tracing::info!(peer = self.peer, address = %self.address, tls = stream.is_tls(), "connected to peer");
                    let ended = self.write_until_failure(&mut stream);
                    let stopping = {
                        let mut state = self.connection.state.lock();
                        state.stream = None;
                        state.stopping
                    };
                    match ended {
                        // A write cut short by `stop` shutting the connection is no loss.
                        Ended::Stopped => return,
                        Ended::Failed(_) if stopping => return,
                        Ended::Failed(error) => tracing::warn!(
                            peer = self.peer,
                            address = %self.address,
                            %error,
                            "connection to peer lost; dialing again"
                        ),
                    }
                }
                Ok(None) => return,
                Err(error) => {
                    self.connection.state.lock().stream = None;
                    failures += 1;
                    if error.is_refusal() {
                        add(&self.shared.stats.refused_handshakes, 1);
                        tracing::warn!(
                            peer = self.peer,
                            address = %self.address,
                            reason = %error,
                            "refused the member answering at a peer's address"
                        );
                    } else if failures == 1 {
                        tracing::warn!(
                            peer = self.peer,
                            address = %self.address,
                            %error,
                            "cannot reach peer; dialing again with backoff"
                        );
                    } else {
                        tracing::debug!(peer = self.peer, address = %self.address, %error, failures, "cannot reach peer");
                    }
                }
            }
            match self.stopped.recv_timeout(backoff.next_delay()) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Dials and authenticates (over TLS when `sslQuorum` says so); `Ok(None)` when the link
    /// stopped meanwhile.
    fn connect(&self) -> Result<Option<PeerStream>, HandshakeError> {
        let config = &self.shared.config;
        let socket = TcpStream::connect_timeout(
            &self.address,
            Duration::from_millis(config.connect_timeout_ms),
        )?;
        socket.set_nodelay(true)?;
        {
            let mut state = self.connection.state.lock();
            if state.stopping {
                return Ok(None);
            }
            state.stream = Some(socket.try_clone()?);
        }
        let deadline = Deadline::new(Duration::from_millis(config.handshake_timeout_ms));
        let mut stream = match self.shared.tls.as_ref().filter(|tls| tls.dials_tls()) {
            Some(tls) => {
                let host = self.shared.peer_host(self.peer);
                let host = host.unwrap_or_else(|| self.address.ip().to_string());
                tls.dial(socket, &host, &deadline)?
            }
            None => PeerStream::Plain(socket),
        };
        handshake::dial(&mut stream, self.shared.identity(), self.peer, &deadline)?;
        // The peer never writes after the handshake: nothing is read from here on.
        stream.socket().set_read_timeout(None)?;
        stream
            .socket()
            .set_write_timeout(Some(Duration::from_millis(config.write_timeout_ms)))?;
        Ok(Some(stream))
    }

    /// Writes queued messages in batches until the link stops or the connection fails.
    fn write_until_failure(&self, stream: &mut PeerStream) -> Ended {
        let config = &self.shared.config;
        let mut batch = Vec::new();
        loop {
            let first = select! {
                recv(self.queued) -> message => match message {
                    Ok(message) => message,
                    Err(_) => return Ended::Stopped,
                },
                recv(self.stopped) -> _ => return Ended::Stopped,
            };
            batch.clear();
            let mut count = 0;
            let mut next = Some(first);
            while let Some(message) = next {
                let pushed = codec::push_message(
                    &mut batch,
                    config.frame_bytes_max,
                    config.message_bytes_max,
                    &message,
                );
                match pushed {
                    Ok(()) => count += 1,
                    Err(error) => {
                        add(&self.shared.stats.dropped_oversize, 1);
                        tracing::warn!(peer = self.peer, %error, "message to peer dropped: longer than message_bytes_max");
                    }
                }
                next = if batch.len() < config.batch_bytes_max {
                    self.queued.try_recv().ok()
                } else {
                    None
                };
            }
            if count == 0 {
                continue;
            }
            if let Err(error) = stream.write_all(&batch) {
                add(&self.shared.stats.dropped_connection_lost, count);
                return Ended::Failed(error);
            }
            add(&self.shared.stats.sent, count);
            // A snapshot's buffer is not kept for the heartbeats that follow it.
            if batch.capacity() > 2 * config.batch_bytes_max {
                batch = Vec::new();
            }
        }
    }
}

/// Waits between dials: a step that doubles from the minimum to the maximum, each wait drawn
/// from the upper half of the current step ("equal jitter"), so members that lost a peer
/// together do not dial it in lockstep.
struct Backoff {
    min_ms: u64,
    max_ms: u64,
    step_ms: u64,
    random: SplitMix64,
}

impl Backoff {
    fn new(min_ms: u64, max_ms: u64, seed: u64) -> Backoff {
        Backoff {
            min_ms,
            max_ms,
            step_ms: min_ms,
            random: SplitMix64::new(seed),
        }
    }

    fn next_delay(&mut self) -> Duration {
        let step_ms = self.step_ms;
        self.step_ms = step_ms.saturating_mul(2).min(self.max_ms);
        let jitter_ms = self.random.below(step_ms / 2 + 1);
        Duration::from_millis(step_ms - jitter_ms)
    }

    fn reset(&mut self) {
        self.step_ms = self.min_ms;
    }
}

/// Seeds a link's jitter: from the system's random source, so restarted members do not
/// repeat each other's waits (the peer id when it fails: jitter needs no secrecy).
fn random_seed(peer: u64) -> u64 {
    let mut seed = peer.to_be_bytes();
    let _ = getrandom::getrandom(&mut seed);
    u64::from_be_bytes(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_maximum_and_resets() {
        let mut backoff = Backoff::new(50, 1_000, 7);
        let mut steps = Vec::new();
        for _ in 0..8 {
            steps.push(backoff.next_delay().as_millis() as u64);
        }
        // Each wait lies in the upper half of its step: 50, 100, 200, 400, 800, 1000...
        let expected_steps = [50u64, 100, 200, 400, 800, 1_000, 1_000, 1_000];
        for (delay, step) in steps.iter().zip(expected_steps) {
            assert!(
                step / 2 <= *delay && *delay <= step,
                "{delay} for a step of {step}: {steps:?}"
            );
        }
        backoff.reset();
        let delay = backoff.next_delay();
        assert!(Duration::from_millis(25) <= delay && delay <= Duration::from_millis(50));
    }

    #[test]
    fn backoff_draws_differ_between_seeds() {
        let draws = |seed| {
            let mut backoff = Backoff::new(1_000, 1_000, seed);
            (0..16).map(|_| backoff.next_delay()).collect::<Vec<_>>()
        };
        assert_ne!(draws(1), draws(2));
    }
}
