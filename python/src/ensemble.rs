//! The native in-process ensemble: members replicating over an in-memory network, each serving
//! ZooKeeper's client protocol on 127.0.0.1, killed, restarted, partitioned or paused on request.
//!
//! Every call checks its member indexes before touching the ensemble (the core panics on an
//! index past the end) and takes the ensemble's lock with the GIL released. Nothing waits
//! while holding the lock: waiting for a leader, or for a member to serve a new session,
//! polls with the lock taken and dropped on each look, so kill or restart from another
//! thread is never held up behind a wait.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyIndexError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use zookeeper_core::server::StartError;
use zookeeper_core::{Ensemble, EnsembleConfig, ErrorCode, ServerConfig};

use crate::client::{options, wait, NativeCache, NativeClient, NativeWatcher};
use crate::convert;

/// How often waits look at the ensemble again (leader, a member serving).
const POLL_INTERVAL_MS: u64 = 2;

/// Why a call on the ensemble could not run.
enum Refusal {
    Stopped,
    Poisoned,
}

impl From<Refusal> for PyErr {
    fn from(refusal: Refusal) -> PyErr {
        match refusal {
            Refusal::Stopped => PyRuntimeError::new_err("the ensemble is stopped"),
            Refusal::Poisoned => PyRuntimeError::new_err("the ensemble's lock is poisoned"),
        }
    }
}

/// A running in-process ensemble. `stop()` (or dropping it) stops every member.
#[pyclass(frozen, module = "zookeeper._native")]
pub struct NativeEnsemble {
    /// None once stopped.
    running: RwLock<Option<Ensemble>>,
    /// Each member's `127.0.0.1:port`, fixed for the ensemble's life (restarts keep ports).
    addresses: Vec<String>,
}

impl NativeEnsemble {
    fn read(&self) -> Result<RwLockReadGuard<'_, Option<Ensemble>>, Refusal> {
        let guard = self.running.read().map_err(|_| Refusal::Poisoned)?;
        if guard.is_none() {
            return Err(Refusal::Stopped);
        }
        Ok(guard)
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, Option<Ensemble>>, Refusal> {
        let guard = self.running.write().map_err(|_| Refusal::Poisoned)?;
        if guard.is_none() {
            return Err(Refusal::Stopped);
        }
        Ok(guard)
    }

    /// Runs `look` on the running ensemble with the GIL released.
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        look: impl FnOnce(&Ensemble) -> T + Send,
    ) -> PyResult<T> {
        py.detach(|| {
            self.read()
                .map(|guard| look(guard.as_ref().expect("checked running")))
        })
        .map_err(PyErr::from)
    }

    /// Looks at the ensemble every 2 ms until `look` finds something or `deadline` passes
    /// (None when it did), with the GIL released and the lock taken for each look only;
    /// Ctrl-C interrupts the wait.
    fn poll<T: Send>(
        &self,
        py: Python<'_>,
        deadline: Option<Instant>,
        mut look: impl FnMut(&Ensemble) -> Option<T> + Send,
    ) -> PyResult<Option<T>> {
        let found = wait(py, |interval| {
            let slice_end = Instant::now() + interval;
            loop {
                match self.read() {
                    Err(refusal) => return Some(Err(refusal)),
                    Ok(guard) => {
                        if let Some(found) = look(guard.as_ref().expect("checked running")) {
                            return Some(Ok(Some(found)));
                        }
                    }
                }
                let now = Instant::now();
                if deadline.is_some_and(|deadline| now >= deadline) {
                    return Some(Ok(None));
                }
                if now >= slice_end {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(POLL_INTERVAL_MS));
            }
        })?;
        found.map_err(PyErr::from)
    }

    /// `member` if the ensemble has it.
    fn member(&self, member: usize) -> PyResult<usize> {
        if member < self.addresses.len() {
            Ok(member)
        } else {
            Err(PyIndexError::new_err(format!(
                "member {member} is out of range: this ensemble's members are 0 to {}",
                self.addresses.len() - 1
            )))
        }
    }
}

/// The instant `timeout_ms` from now; None for no timeout, or one no clock reaches.
fn deadline(timeout_ms: Option<u64>) -> Option<Instant> {
    timeout_ms.and_then(|timeout_ms| Instant::now().checked_add(Duration::from_millis(timeout_ms)))
}

fn start_error(error: StartError) -> PyErr {
    match error {
        StartError::Config(error) => PyValueError::new_err(error.to_string()),
        other => PyOSError::new_err(other.to_string()),
    }
}

#[pymethods]
impl NativeEnsemble {
    /// Starts `members` members (1 to 15), each serving TCP on a free port of 127.0.0.1.
    #[new]
    #[pyo3(signature = (
        members, tick_ms=2000, session_timeout_ms_min=None, session_timeout_ms_max=None,
        super_digest=None,
    ))]
    fn new(
        py: Python<'_>,
        members: usize,
        tick_ms: u32,
        session_timeout_ms_min: Option<u32>,
        session_timeout_ms_max: Option<u32>,
        super_digest: Option<String>,
    ) -> PyResult<NativeEnsemble> {
        let defaults = EnsembleConfig::default();
        // The core's defaults keep raft's fast timing (elections within ~100-200 ms); only
        // the session settings a ZooServer takes are the caller's.
        let config = EnsembleConfig {
            members,
            server: ServerConfig {
                tick_ms,
                session_timeout_ms_min,
                session_timeout_ms_max,
                super_digest,
                ..defaults.server
            },
            client_ports: true,
            ..defaults
        };
        let ensemble = py
            .detach(move || Ensemble::start_with(config))
            .map_err(start_error)?;
        let addresses = ensemble
            .client_addresses()
            .iter()
            .map(ToString::to_string)
            .collect();
        Ok(NativeEnsemble {
            running: RwLock::new(Some(ensemble)),
            addresses,
        })
    }

    /// How many members the ensemble has, running or not.
    #[getter]
    fn size(&self) -> usize {
        self.addresses.len()
    }

    /// Every member's client address, as a ZooKeeper connect string.
    #[getter]
    fn connect_string(&self) -> String {
        self.addresses.join(",")
    }

    /// True until `stop()`.
    #[getter]
    fn running(&self) -> bool {
        self.running
            .read()
            .map(|running| running.is_some())
            .unwrap_or(false)
    }

    /// `127.0.0.1:port` where `member` serves TCP clients (the same port across restarts).
    fn client_address(&self, member: usize) -> PyResult<String> {
        Ok(self.addresses[self.member(member)?].clone())
    }

    /// Crashes `member` (its TCP and in-process clients are disconnected); nothing for a
    /// member that is down.
    fn kill(&self, py: Python<'_>, member: usize) -> PyResult<()> {
        let member = self.member(member)?;
        py.detach(|| {
            self.write()
                .map(|mut guard| guard.as_mut().expect("checked running").kill(member))
        })
        .map_err(PyErr::from)
    }

    /// Starts `member` again on its disk and port (a running member is killed first).
    fn restart(&self, py: Python<'_>, member: usize) -> PyResult<()> {
        let member = self.member(member)?;
        py.detach(|| {
            self.write()
                .map(|mut guard| guard.as_mut().expect("checked running").restart(member))
        })?
        .map_err(start_error)
    }

    /// Splits the members into groups that reach only each other; a member in no group
    /// reaches nobody. A member named twice, or out of range, changes nothing and raises.
    fn partition(&self, py: Python<'_>, groups: Vec<Vec<usize>>) -> PyResult<()> {
        let mut seen = vec![false; self.addresses.len()];
        for &member in groups.iter().flatten() {
            let member = self.member(member)?;
            if std::mem::replace(&mut seen[member], true) {
                return Err(PyValueError::new_err(format!(
                    "member {member} is named twice: a member is in at most one group"
                )));
            }
        }
        let groups: Vec<&[usize]> = groups.iter().map(Vec::as_slice).collect();
        self.with(py, |ensemble| ensemble.partition(&groups))
    }

    /// Cuts `member` off from every other member.
    fn isolate(&self, py: Python<'_>, member: usize) -> PyResult<()> {
        let member = self.member(member)?;
        self.with(py, |ensemble| ensemble.isolate(member))
    }

    /// Every member reaches every other again.
    fn heal(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, Ensemble::heal)
    }

    /// Stops `member` as SIGSTOP would; nothing for a member that is down.
    fn pause(&self, py: Python<'_>, member: usize) -> PyResult<()> {
        let member = self.member(member)?;
        self.with(py, |ensemble| ensemble.pause(member))
    }

    /// Continues a paused member.
    fn resume(&self, py: Python<'_>, member: usize) -> PyResult<()> {
        let member = self.member(member)?;
        self.with(py, |ensemble| ensemble.resume(member))
    }

    /// The member that leads and serves now, if one does.
    fn leader(&self, py: Python<'_>) -> PyResult<Option<usize>> {
        self.with(py, Ensemble::leader)
    }

    /// Waits up to `timeout_ms` (None: without end) for a member to lead and serve; None
    /// when none did in time. Ctrl-C interrupts the wait.
    #[pyo3(signature = (timeout_ms=None))]
    fn wait_for_leader(&self, py: Python<'_>, timeout_ms: Option<u64>) -> PyResult<Option<usize>> {
        self.poll(py, deadline(timeout_ms), Ensemble::leader)
    }

    /// Opens an in-process session on `member`, waiting up to the session timeout for the
    /// member to serve (a member without quorum or paused does not). ConnectionLossError for
    /// a member that is down or did not serve in time.
    #[pyo3(signature = (member, timeout_ms, watcher=None, cache=None))]
    fn connect(
        &self,
        py: Python<'_>,
        member: usize,
        timeout_ms: i64,
        watcher: Option<Py<NativeWatcher>>,
        cache: Option<NativeCache>,
    ) -> PyResult<NativeClient> {
        let member = self.member(member)?;
        let options = options(py, timeout_ms, watcher.as_ref(), cache);
        let timeout_ms = Some(timeout_ms.max(0) as u64);
        let connected = self.poll(py, deadline(timeout_ms), |ensemble| {
            ensemble.try_connect(member, options.clone())
        })?;
        match connected {
            Some(Ok(client)) => Ok(NativeClient::new(client, watcher)),
            Some(Err(error)) => Err(convert::error(py, &error)),
            None => Err(convert::error_code(py, ErrorCode::ConnectionLoss)),
        }
    }

    /// Stops every member; later calls raise RuntimeError. Idempotent.
    fn stop(&self, py: Python<'_>) {
        py.detach(|| {
            let ensemble = self
                .running
                .write()
                .ok()
                .and_then(|mut running| running.take());
            drop(ensemble);
        });
    }
}
