//! How events reach a member's driver: the inbox, who drives (the driver's own thread, or
//! whichever caller finds it free), and pausing, which holds every event as a stopped
//! process would.

use std::sync::atomic::Ordering;

use super::driver::Event;
use super::engine::Engine;
use crate::proto::ErrorCode;

/// Requests waiting for the driver.
#[derive(Default)]
pub(super) struct Inbox {
    pub(super) events: Vec<Event>,
    /// Set while the member is paused (as if its process were stopped): events wait, and so
    /// do the front ends' calls.
    pub(super) paused: bool,
}

impl Engine {
    /// Hands the driver an event. Once the member stopped, the event is answered here.
    pub(super) fn send(&self, event: Event) {
        let mut inbox = self.inbox.lock();
        if self.is_stopped() {
            drop(inbox);
            event.refuse(self, ErrorCode::ConnectionLoss);
            return;
        }
        inbox.events.push(event);
    }

    /// Marks the member stopped and answers whatever the inbox still holds: `send` checks
    /// the mark under the same lock, so no event is left behind for a driver that is gone.
    pub(super) fn stop_taking_events(&self) {
        let left = {
            let mut inbox = self.inbox.lock();
            self.stopped.store(true, Ordering::Release);
            std::mem::take(&mut inbox.events)
        };
        for event in left {
            event.refuse(self, ErrorCode::ConnectionLoss);
        }
    }

    /// Gets the driver going: wakes its thread, or drives on this thread unless another
    /// thread already does (that one then picks up what was just queued).
    pub(super) fn kick(&self) {
        if self.threaded {
            self.wake.notify_one();
            return;
        }
        loop {
            let Some(mut driver) = self.driver.try_lock() else {
                return;
            };
            loop {
                let events = {
                    let mut inbox = self.inbox.lock();
                    if inbox.paused {
                        break;
                    }
                    std::mem::take(&mut inbox.events)
                };
                if events.is_empty() {
                    break;
                }
                driver.round(self, events);
            }
            drop(driver);
            // Checked after letting go: an event queued while this thread drove, by a thread
            // that found the driver busy, is never left behind.
            let inbox = self.inbox.lock();
            if inbox.events.is_empty() || inbox.paused {
                return;
            }
        }
    }

    /// Pauses (true) or resumes (false) the member as if its process were stopped and
    /// continued: its driver takes no event meanwhile (time, peers' messages and requests
    /// wait in the inbox) and its clients' calls wait.
    pub fn set_paused(&self, paused: bool) {
        self.inbox.lock().paused = paused;
        if !paused {
            self.resumed.notify_all();
            self.kick();
            self.wake.notify_one();
        }
    }

    /// True while paused.
    pub fn is_paused(&self) -> bool {
        self.inbox.lock().paused
    }

    /// Waits while the member is paused (a stopped process answers nobody).
    pub(super) fn wait_while_paused(&self) {
        let mut inbox = self.inbox.lock();
        while inbox.paused && !self.is_stopped() {
            self.resumed.wait(&mut inbox);
        }
    }

    /// The driver's thread: takes what the inbox holds, one round at a time (a round's
    /// writes share one fsync), until the member stops.
    pub(super) fn driver_loop(&self) {
        loop {
            let events = {
                let mut inbox = self.inbox.lock();
                while inbox.events.is_empty() || inbox.paused {
                    self.wake.wait(&mut inbox);
                }
                std::mem::take(&mut inbox.events)
            };
            let mut driver = self.driver.lock();
            driver.round(self, events);
            if self.is_stopped() {
                return;
            }
        }
    }
}
