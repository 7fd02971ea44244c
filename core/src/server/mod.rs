//! An in-process server: the engine plus the driver that owns time (a ticker thread on the
//! system clock, or nothing on a manual clock, where the test moves time).

mod apply;
mod client_sessions;
mod clock;
mod compaction;
mod config;
mod driver;
pub mod embedded;
mod engine;
mod forward;
mod inbox;
mod leader;
mod leader_watch;
pub mod member_setup;
pub mod membership;
pub mod metrics;
pub mod net;
mod pipeline;
mod read;
mod read_only;
mod reconfig;
mod recovery;
mod report;
mod session_layer;
pub mod zoo_cfg;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, DriverThread, ServerConfig};
pub use engine::Engine;
pub use pipeline::Answer;
pub use read::WatchRegistered;
pub use recovery::{recover_tree, StartError};
pub use report::ServerRole;
pub use session_layer::{LocalSession, SessionSink};

use crate::client::{Client, ConnectOptions};

/// A running server. Dropping it stops it (`Engine::shutdown`): sessions are not closed, so
/// a durable server's clients resume them after a restart, as ZooKeeper's do.
pub struct Server {
    engine: Arc<Engine>,
    ticker: Option<(Sender<()>, JoinHandle<()>)>,
    driver: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server: recovers its data directory (if it has one) and starts time. Fails on
    /// an invalid configuration, a data directory that cannot be used, or threads that cannot
    /// be started.
    pub fn start(config: ServerConfig) -> Result<Server, StartError> {
        config.validate()?;
        let manual = config.clock.is_manual();
        let tick = Duration::from_millis(config.tick_ms as u64);
        // A single member needs no raft time: it leads alone, with nobody to hear from.
        let raft_tick = config
            .is_ensemble()
            .then(|| Duration::from_millis(config.raft_tick_ms as u64));
        let engine = Arc::new(Engine::open(config)?);
        let driver = engine.start_driver()?;
        let ticker = if manual {
            None
        } else {
            let (stop, stopped) = crossbeam_channel::bounded(1);
            let ticking = engine.clone();
            let spawned = std::thread::Builder::new()
                .name("zk-ticker".into())
                .spawn(move || tick_loop(&ticking, &stopped, tick, raft_tick));
            match spawned {
                Ok(handle) => Some((stop, handle)),
                Err(error) => {
                    engine.shutdown(driver);
                    return Err(error.into());
                }
            }
        };
        Ok(Server {
            engine,
            ticker,
            driver,
        })
    }

    /// Opens a session with default options (30 s timeout, no default watcher).
    pub fn connect(&self) -> crate::client::Result<Client> {
        self.connect_with(ConnectOptions::default())
    }

    /// Opens a session.
    pub fn connect_with(&self, options: ConnectOptions) -> crate::client::Result<Client> {
        Client::in_process(self.engine.clone(), options)
    }

    /// Runs one tick now: session expiry and, when due, container and TTL reaping. With a
    /// `ManualClock`, call it after advancing the clock.
    pub fn tick(&self) {
        self.engine.tick();
    }

    /// The engine, for front ends (TCP server, bindings) and introspection.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.ticker.take() {
            let _ = stop.send(());
            let _ = handle.join();
        }
        self.engine.shutdown(self.driver.take());
    }
}

/// Moves time for the engine: a session tick every `tick`, a raft tick every `raft_tick`
/// (ensembles only); neither while the member is paused. Never waits on the engine, so a
/// member that cannot commit (no quorum) still gets its raft ticks.
fn tick_loop(engine: &Engine, stopped: &Receiver<()>, tick: Duration, raft_tick: Option<Duration>) {
    let start = Instant::now();
    let mut next_tick = start + tick;
    let mut next_raft_tick = raft_tick.map(|raft_tick| start + raft_tick);
    loop {
        let deadline = next_raft_tick.map_or(next_tick, |next| next.min(next_tick));
        match stopped.recv_deadline(deadline) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let now = Instant::now();
        let paused = engine.is_paused();
        if let (Some(next), Some(raft_tick)) = (&mut next_raft_tick, raft_tick) {
            if now >= *next {
                *next = (*next + raft_tick).max(now);
                if !paused {
                    engine.raft_tick();
                }
            }
        }
        if now >= next_tick {
            next_tick = (next_tick + tick).max(now);
            if !paused {
                engine.tick_then(Box::new(|| {}));
            }
        }
    }
}
