//! Per-session request order: a session's requests are answered in the order they came; its
//! reads run after its earlier writes applied and before its later ones apply (ZooKeeper's
//! CommitProcessor), while its writes go to the driver at once, so a session's pipelined
//! writes share fsyncs even when reads sit between them.
//!
//! Each session keeps a queue of the requests it has not been answered. A write waits in it
//! until the driver resolves it (its Txn applied, or prepare refused it); an in-turn request
//! (a read, a watch change, sync, ping) runs when it reaches the front. The queue is advanced
//! by whoever resolves an entry: the submitter, or the driver right after it applies a Txn and
//! before it applies the next one, which is what places a read between two writes.

use std::collections::VecDeque;

use crate::op::{Op, Reply, Response};
use crate::proto::ErrorCode;
use crate::server::read::WatchRegistered;

/// Where a request's response goes: the front end's half of the engine's entry point.
pub trait Answer: Send {
    /// The request left a watch on `path`. Called while the engine holds the tree lock, so a
    /// front end that keeps its own watch tables records its watcher before any event for
    /// the watch can fire. Must not block or call into the engine.
    fn watch_registered(&mut self, _path: &str, _kind: WatchRegistered) {}

    /// The response, in the session's request order. Called by whichever thread finished the
    /// request, possibly with engine locks held: must not block or call into the engine
    /// (queue the response instead).
    fn respond(self: Box<Self>, response: Response);
}

/// Any closure taking the response is an answer (for tests and simple front ends).
impl<F: FnOnce(Response) + Send> Answer for F {
    fn respond(self: Box<Self>, response: Response) {
        (*self)(response)
    }
}

/// One request of a session that has not been answered yet.
struct Entry {
    seq: u64,
    state: State,
    answer: Box<dyn Answer>,
}

enum State {
    /// A write handed to the driver; resolved when its Txn applies or prepare refuses it.
    AtDriver,
    /// The answer is known; it goes out when every earlier request has been answered.
    Answered(Result<Reply, ErrorCode>),
    /// Runs against the tree when it reaches the front.
    InTurn(Op),
}

/// A session's requests not answered yet, oldest first.
#[derive(Default)]
pub(crate) struct Pipeline {
    next_seq: u64,
    entries: VecDeque<Entry>,
}

/// What the front of a pipeline needs done next, for `advance`'s caller.
pub(super) enum Front {
    /// Nothing can go out now (empty, or the oldest request is still at the driver).
    Blocked,
    /// Send this response.
    Respond(Box<dyn Answer>, Result<Reply, ErrorCode>),
    /// Run this in-turn op against the tree, then send its response.
    Run(Box<dyn Answer>, Op),
}

impl Pipeline {
    /// True when every request has been answered: a request now may run at once.
    pub(super) fn is_idle(&self) -> bool {
        self.entries.is_empty()
    }

    /// Queues a write handed to the driver; returns its sequence number.
    pub(super) fn push_write(&mut self, answer: Box<dyn Answer>) -> u64 {
        self.push(State::AtDriver, answer)
    }

    /// Queues an in-turn op.
    pub(super) fn push_in_turn(&mut self, op: Op, answer: Box<dyn Answer>) {
        self.push(State::InTurn(op), answer);
    }

    /// Queues an answer known now (a request refused before it reached the driver).
    pub(super) fn push_answered(
        &mut self,
        result: Result<Reply, ErrorCode>,
        answer: Box<dyn Answer>,
    ) {
        self.push(State::Answered(result), answer);
    }

    fn push(&mut self, state: State, answer: Box<dyn Answer>) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.push_back(Entry { seq, state, answer });
        seq
    }

    /// The driver's outcome for write `seq`.
    ///
    /// # Panics
    /// In debug builds, if `seq` is not a write at the driver: the driver resolves each
    /// write once.
    pub(super) fn resolve(&mut self, seq: u64, result: Result<Reply, ErrorCode>) {
        // Missing when the session's end answered it while the driver still held it.
        if let Some(entry) = self.entries.iter_mut().find(|entry| entry.seq == seq) {
            debug_assert!(matches!(entry.state, State::AtDriver), "resolved twice");
            entry.state = State::Answered(result);
        }
    }

    /// Takes the oldest request if it can go out now. The caller runs or sends it and calls
    /// again until `Blocked`.
    pub(super) fn front(&mut self) -> Front {
        match self.entries.front().map(|entry| &entry.state) {
            None | Some(State::AtDriver) => Front::Blocked,
            Some(State::Answered(_) | State::InTurn(_)) => {
                let entry = self.entries.pop_front().expect("front checked");
                match entry.state {
                    State::Answered(result) => Front::Respond(entry.answer, result),
                    State::InTurn(op) => Front::Run(entry.answer, op),
                    State::AtDriver => unreachable!("checked above"),
                }
            }
        }
    }

    /// True when a request waits for the driver (a write or a sync).
    pub(super) fn has_request_at_driver(&self) -> bool {
        self.entries
            .iter()
            .any(|entry| matches!(entry.state, State::AtDriver))
    }

    /// Every request not answered yet, oldest first, emptying the queue (the session ended
    /// or the member stopped: they are answered with an error).
    pub(super) fn drain(&mut self) -> Vec<Box<dyn Answer>> {
        self.entries.drain(..).map(|entry| entry.answer).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    struct Recorded(Arc<Mutex<Vec<i64>>>, i64);

    impl Answer for Recorded {
        fn respond(self: Box<Self>, response: Response) {
            self.0.lock().unwrap().push(self.1 * 100 + response.zxid);
        }
    }

    fn answer(log: &Arc<Mutex<Vec<i64>>>, id: i64) -> Box<dyn Answer> {
        Box::new(Recorded(log.clone(), id))
    }

    /// Guards against an answer overtaking an older request's: a refused request and a read
    /// behind a write at the driver wait for it.
    #[test]
    fn answers_leave_in_request_order() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut pipeline = Pipeline::default();
        let write = pipeline.push_write(answer(&log, 1));
        pipeline.push_answered(Err(ErrorCode::BadVersion), answer(&log, 2));
        pipeline.push_in_turn(Op::WhoAmI, answer(&log, 3));
        assert!(matches!(pipeline.front(), Front::Blocked));
        pipeline.resolve(write, Ok(Reply::Done));
        let mut order = Vec::new();
        loop {
            match pipeline.front() {
                Front::Blocked => break,
                Front::Respond(answer, _) => {
                    order.push("respond");
                    answer.respond(Response {
                        zxid: 0,
                        result: Ok(Reply::Done),
                    });
                }
                Front::Run(answer, op) => {
                    assert_eq!(op, Op::WhoAmI);
                    order.push("run");
                    answer.respond(Response {
                        zxid: 0,
                        result: Ok(Reply::Done),
                    });
                }
            }
        }
        assert_eq!(order, ["respond", "respond", "run"]);
        assert_eq!(*log.lock().unwrap(), [100, 200, 300]);
        assert!(pipeline.is_idle());
    }
}
