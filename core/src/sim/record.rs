//! What the simulation records: every answer, session grant, watch event and change of a
//! client's link, stamped with one logical clock in the order they happened. Everything runs
//! on one thread, so that order is exact: an event recorded before an answer was delivered
//! before it.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::op::Response;
use crate::proto::{ErrorCode, WatchedEvent};
use crate::server::{Answer, LocalSession, SessionSink};

/// A change of a client's link to its member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkChange {
    /// The member lost its leader; the session lives on.
    Disconnected,
    /// The member serves again.
    Reconnected,
    /// The session moved away or ended without an event.
    Detached,
    /// The member stopped.
    Stopped,
}

/// One thing that happened to a client.
pub enum Record {
    /// A request was answered.
    Answered {
        /// The client.
        client: usize,
        /// Its connection (a new one at each connect).
        epoch: u64,
        /// The request.
        request: u64,
        /// The answer.
        response: Response,
    },
    /// A session open or resume was answered.
    Opened {
        /// The client.
        client: usize,
        /// The connection it was asked on.
        epoch: u64,
        /// The session, or why not.
        result: Result<Arc<LocalSession>, ErrorCode>,
    },
    /// A watch event or session state reached the client.
    Event {
        /// The client.
        client: usize,
        /// The connection it came through.
        epoch: u64,
        /// The event.
        event: WatchedEvent,
    },
    /// The client's link changed.
    Link {
        /// The client.
        client: usize,
        /// The connection.
        epoch: u64,
        /// What happened.
        change: LinkChange,
    },
}

#[derive(Default)]
struct RecorderState {
    now: u64,
    records: Vec<(u64, Record)>,
}

/// The one log every answer and event goes to.
#[derive(Default)]
pub struct Recorder {
    state: Mutex<RecorderState>,
}

impl Recorder {
    /// The next logical time (each call moves it).
    pub fn tick(&self) -> u64 {
        let mut state = self.state.lock();
        state.now += 1;
        state.now
    }

    fn push(&self, record: Record) {
        let mut state = self.state.lock();
        state.now += 1;
        let now = state.now;
        state.records.push((now, record));
    }

    /// Everything recorded since the last call, oldest first, with its time.
    pub fn drain(&self) -> Vec<(u64, Record)> {
        std::mem::take(&mut self.state.lock().records)
    }

    /// Where request `request` of `client`'s connection `epoch` is answered.
    pub fn answer(self: &Arc<Self>, client: usize, epoch: u64, request: u64) -> Box<dyn Answer> {
        let recorder = Arc::clone(self);
        Box::new(move |response: Response| {
            recorder.push(Record::Answered {
                client,
                epoch,
                request,
                response,
            })
        })
    }

    /// Where a session open or resume of `client`'s connection `epoch` is answered.
    pub fn opened(
        self: &Arc<Self>,
        client: usize,
        epoch: u64,
    ) -> Box<dyn FnOnce(Result<Arc<LocalSession>, ErrorCode>) + Send> {
        let recorder = Arc::clone(self);
        Box::new(move |result| {
            recorder.push(Record::Opened {
                client,
                epoch,
                result,
            })
        })
    }

    /// The session sink of `client`'s connection `epoch`.
    pub fn sink(self: &Arc<Self>, client: usize, epoch: u64) -> Arc<dyn SessionSink> {
        Arc::new(Sink {
            recorder: Arc::clone(self),
            client,
            epoch,
        })
    }
}

struct Sink {
    recorder: Arc<Recorder>,
    client: usize,
    epoch: u64,
}

impl Sink {
    fn link(&self, change: LinkChange) {
        self.recorder.push(Record::Link {
            client: self.client,
            epoch: self.epoch,
            change,
        });
    }
}

impl SessionSink for Sink {
    fn deliver(&self, event: WatchedEvent) {
        self.recorder.push(Record::Event {
            client: self.client,
            epoch: self.epoch,
            event,
        });
    }

    fn detach(&self) {
        self.link(LinkChange::Detached);
    }

    fn disconnected(&self) {
        self.link(LinkChange::Disconnected);
    }

    fn reconnected(&self) {
        self.link(LinkChange::Reconnected);
    }

    fn member_stopped(&self, _session_lives_on: bool) {
        self.link(LinkChange::Stopped);
    }
}
