//! A session held open by a task of its own, for the scenarios that keep many sessions alive
//! between steps: it runs batches of requests pipelined, pings while idle, hands every
//! notification on with the time it arrived, and ends by closing the session or by going
//! silent (the socket dropped without closeSession, so the server must expire the session).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use zookeeper_core::op::Op;
use zookeeper_core::proto::wire::{self, Request, RequestFrame, XID_NOTIFICATION, XID_PING};
use zookeeper_core::proto::OpCode;

use crate::connection::{Connection, LostReason};

/// Commands queued for a held session before the caller waits.
const COMMANDS_QUEUED_MAX: usize = 4;
/// How long closing a session may take before the task is stopped regardless.
const CLOSE_TIMEOUT_MS: u64 = 5_000;

/// A watch that fired, as one session saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The session's number in its scenario.
    pub session: usize,
    /// The znode the event is about.
    pub path: String,
    /// ZooKeeper's event type code (3 = NodeDataChanged, 2 = NodeDeleted).
    pub event_type: i32,
    /// When the read that brought it completed.
    pub arrived: Instant,
}

/// One request's answer: its error code (0 = ok) and the reply body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// ZooKeeper's error code.
    pub err: i32,
    /// The reply's body, after the header.
    pub body: Vec<u8>,
}

type Answers = oneshot::Sender<Result<Vec<Answer>, LostReason>>;

struct Batch {
    requests: Vec<(OpCode, Op)>,
    answers: Answers,
}

/// The handle of a held session; dropping it ends the task (the socket closes, the session is
/// left to expire).
#[derive(Debug)]
pub struct HeldSession {
    /// The session's number in its scenario.
    pub session: usize,
    /// The session id the server gave.
    pub session_id: i64,
    /// The session timeout the server agreed to.
    pub timeout: Duration,
    commands: mpsc::Sender<Batch>,
    task: JoinHandle<Result<(), LostReason>>,
}

impl HeldSession {
    /// Hands `connection` to a task of its own; notifications go to `notifications` when
    /// given (and are dropped otherwise).
    pub fn spawn(
        session: usize,
        connection: Connection,
        notifications: Option<mpsc::UnboundedSender<Notification>>,
    ) -> HeldSession {
        let (commands, receiver) = mpsc::channel(COMMANDS_QUEUED_MAX);
        let (session_id, timeout) = (connection.session_id, connection.timeout);
        let task = tokio::spawn(hold(session, connection, receiver, notifications));
        HeldSession {
            session,
            session_id,
            timeout,
            commands,
            task,
        }
    }

    /// Sends `requests` pipelined and returns their answers in order. Err when the connection
    /// broke (before or while they ran); the session is then of no further use.
    pub async fn batch(&self, requests: Vec<(OpCode, Op)>) -> Result<Vec<Answer>, LostReason> {
        let (answers, answered) = oneshot::channel();
        let gone = || LostReason::Io("the session's task has ended".into());
        self.commands
            .send(Batch { requests, answers })
            .await
            .map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }

    /// One request; its answer.
    pub async fn call(&self, opcode: OpCode, op: Op) -> Result<Answer, LostReason> {
        let mut answers = self.batch(vec![(opcode, op)]).await?;
        Ok(answers.pop().expect("one answer per request"))
    }

    /// Closes the session (the server deletes its ephemerals and watches at once) and ends the
    /// task. A server that does not answer within `CLOSE_TIMEOUT_MS` is left to expire it.
    pub async fn close(self) {
        let timeout = Duration::from_millis(CLOSE_TIMEOUT_MS);
        let close = self.call(OpCode::CloseSession, Op::CloseSession);
        let _: Result<Result<Answer, LostReason>, _> = tokio::time::timeout(timeout, close).await;
        self.abandon().await;
    }

    /// Goes silent: the socket is dropped without closeSession, so the server keeps the session
    /// (and its ephemerals) until it expires. Returns once the socket is closed.
    pub async fn abandon(self) {
        self.task.abort();
        // Cancelled, or ended by itself; either way the socket is closed now.
        let _ = self.task.await;
    }
}

/// The task: reads replies and notifications, writes batches and pings, until the handle is
/// dropped or the connection breaks. A batch is written in pieces between reads, so a large
/// one cannot stall against a server waiting for its replies to be read.
async fn hold(
    session: usize,
    connection: Connection,
    mut commands: mpsc::Receiver<Batch>,
    notifications: Option<mpsc::UnboundedSender<Notification>>,
) -> Result<(), LostReason> {
    let (ping_interval, silence_max) = (connection.ping_interval(), connection.silence_max());
    let Connection {
        mut stream,
        mut frames,
        mut last_xid,
        ..
    } = connection;
    let (mut reader, mut writer) = stream.split();
    let mut outgoing: Vec<u8> = Vec::new();
    let mut written = 0usize;
    let mut outstanding: VecDeque<i32> = VecDeque::new();
    let mut answers: Vec<Answer> = Vec::new();
    let mut waiting: Option<Answers> = None;
    let mut last_heard = tokio::time::Instant::now();
    let mut last_written = tokio::time::Instant::now();
    let mut arrived = Instant::now();
    let outcome = loop {
        // Everything buffered first: replies complete the batch, notifications go on.
        let handled: Result<(), LostReason> = (|| {
            while let Some(payload) = frames.next_frame()? {
                let (header, body) = wire::decode_reply_header(payload)
                    .map_err(|error| LostReason::Protocol(format!("reply header: {error:?}")))?;
                if header.xid == XID_PING {
                    continue;
                }
                if header.xid == XID_NOTIFICATION {
                    let event = wire::decode_event(body)
                        .map_err(|error| LostReason::Protocol(format!("event: {error:?}")))?;
                    if let Some(notifications) = &notifications {
                        // A scenario that stopped listening does not care.
                        let _ = notifications.send(Notification {
                            session,
                            path: event.path,
                            event_type: event.event_type.code(),
                            arrived,
                        });
                    }
                    continue;
                }
                // A ZooKeeper server answers a session's requests in the order sent.
                if outstanding.pop_front() != Some(header.xid) {
                    return Err(LostReason::Protocol(format!(
                        "reply to xid {}, which is not the next outstanding",
                        header.xid
                    )));
                }
                answers.push(Answer {
                    err: header.err,
                    body: body.to_vec(),
                });
                if outstanding.is_empty() {
                    if let Some(waiting) = waiting.take() {
                        let _ = waiting.send(Ok(std::mem::take(&mut answers)));
                    }
                }
            }
            Ok(())
        })();
        if let Err(reason) = handled {
            break Err(reason);
        }
        if written == outgoing.len() {
            (written, outgoing) = (0, Vec::new());
        }
        tokio::select! {
            read = frames.fill(&mut reader) => match read {
                Ok(0) => break Err(LostReason::Closed),
                Ok(_) => {
                    arrived = Instant::now();
                    last_heard = tokio::time::Instant::now();
                }
                Err(error) => break Err(error.into()),
            },
            wrote = writer.write(&outgoing[written..]), if written < outgoing.len() => match wrote {
                Ok(0) => break Err(LostReason::Closed),
                Ok(count) => {
                    written += count;
                    last_written = tokio::time::Instant::now();
                }
                Err(error) => break Err(error.into()),
            },
            command = commands.recv(), if waiting.is_none() => {
                let Some(Batch { requests, answers: reply }) = command else {
                    break Ok(());
                };
                if requests.is_empty() {
                    let _ = reply.send(Ok(Vec::new()));
                    continue;
                }
                for (opcode, op) in requests {
                    let xid = crate::connection::next_xid(&mut last_xid);
                    outstanding.push_back(xid);
                    outgoing.extend_from_slice(&wire::encode_request(&RequestFrame {
                        xid,
                        opcode: opcode.code(),
                        multi_opcodes: Vec::new(),
                        request: Request::Op(op),
                    }));
                }
                waiting = Some(reply);
            },
            () = tokio::time::sleep_until(last_written + ping_interval) => {
                outgoing.extend_from_slice(&wire::encode_request(&RequestFrame {
                    xid: XID_PING,
                    opcode: OpCode::Ping.code(),
                    multi_opcodes: Vec::new(),
                    request: Request::Ping,
                }));
                // Not yet written, but due: the next ping is one interval after this one.
                last_written = tokio::time::Instant::now();
            },
            () = tokio::time::sleep_until(last_heard + silence_max) => {
                break Err(LostReason::Silent(silence_max));
            },
        }
    };
    if let (Err(reason), Some(waiting)) = (&outcome, waiting) {
        let _ = waiting.send(Err(reason.clone()));
    }
    outcome
}
