//! The progress line on stderr: once a second, the phase, the time spent in it, the replies of
//! the last second and the errors so far, redrawn in place.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::report::thousands;
use crate::session::Counters;

const PROGRESS_INTERVAL_MS: u64 = 1_000;

/// A running progress line; `finish` erases it.
pub struct Progress {
    phase: Arc<Mutex<(&'static str, Instant)>>,
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Progress {
    /// Starts drawing, in phase `phase`, from the totals in `counters`.
    pub fn start(counters: Arc<Counters>, phase: &'static str) -> std::io::Result<Progress> {
        let phase = Arc::new(Mutex::new((phase, Instant::now())));
        let (stop, stopped) = mpsc::channel::<()>();
        let shown = Arc::clone(&phase);
        let thread = std::thread::Builder::new()
            .name("zookeeper-bench-progress".into())
            .spawn(move || {
                let mut last = (counters.answered.load(Ordering::Relaxed), Instant::now());
                while let Err(RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Duration::from_millis(PROGRESS_INTERVAL_MS))
                {
                    let (name, since) = *shown.lock().expect("no panic holds this lock");
                    let now = Instant::now();
                    let answered = counters.answered.load(Ordering::Relaxed);
                    let per_second = (answered - last.0) as f64 / (now - last.1).as_secs_f64();
                    last = (answered, now);
                    let errors = counters.errors.load(Ordering::Relaxed);
                    let _ = write!(
                        std::io::stderr(),
                        "\r\x1b[2K{name} {:.0} s: {} replies/s, {} errors",
                        (now - since).as_secs_f64(),
                        thousands(per_second.round() as u64),
                        thousands(errors)
                    );
                }
                let _ = write!(std::io::stderr(), "\r\x1b[2K");
            })?;
        Ok(Progress {
            phase,
            stop,
            thread,
        })
    }

    /// Shows `phase` from now on.
    pub fn phase(&self, phase: &'static str) {
        *self.phase.lock().expect("no panic holds this lock") = (phase, Instant::now());
    }

    /// Erases the line and stops.
    pub fn finish(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}
