//! The Rust recipes (zookeeper_core::client::recipes) as native classes: the Python recipes in
//! `zookeeper.recipes` are thin wrappers over these, so the logic exists once. Blocking calls
//! release the GIL; recipe errors leave as the exceptions kazoo names (`LockTimeout`,
//! `CancelledError`) or the ZooKeeper exception of the failed operation.

use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use zookeeper_core::client::recipes::{
    LatchState, LeaderElection, LeaderLatch, Lock, LockKind, RecipeError, Semaphore, SessionSlot,
};

use crate::client::{call_python, NativeClient};
use crate::convert;

static LOCK_TIMEOUT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static CANCELLED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static CONNECTION_CLOSED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A recipe error as the Python exception `zookeeper.recipes` documents for it.
fn error(py: Python<'_>, path: &str, failure: RecipeError) -> PyErr {
    let build = |cell: &'static PyOnceLock<Py<PyAny>>,
                 module: &str,
                 name: &str,
                 message: String| {
        match cell.import(py, module, name) {
            Ok(class) => match class.call1((message,)) {
                Ok(exception) => PyErr::from_value(exception),
                Err(failure) => failure,
            },
            Err(failure) => failure,
        }
    };
    match failure {
        RecipeError::ZooKeeper(error) => convert::error(py, &error),
        RecipeError::Timeout => build(
            &LOCK_TIMEOUT,
            "zookeeper.recipes._support",
            "LockTimeout",
            format!("the wait at {path} timed out"),
        ),
        RecipeError::Cancelled => build(
            &CANCELLED,
            "zookeeper.recipes._support",
            "CancelledError",
            format!("the wait at {path} was cancelled"),
        ),
        RecipeError::NoSession => build(
            &CONNECTION_CLOSED,
            "zookeeper.exceptions",
            "ConnectionClosedError",
            "the client is closed; call start() to reconnect".to_string(),
        ),
        RecipeError::LeaseMismatch { .. } => PyValueError::new_err(format!("{failure} at {path}")),
        RecipeError::InvalidState(what) => PyRuntimeError::new_err(format!("{what} ({path})")),
    }
}

/// Seconds (None: no limit) as a timeout; a negative, infinite or unrepresentably long one
/// (over about 584 billion years) is the caller's mistake.
fn timeout(seconds: Option<f64>) -> PyResult<Option<Duration>> {
    let Some(seconds) = seconds else {
        return Ok(None);
    };
    Duration::try_from_secs_f64(seconds).map(Some).map_err(|_| {
        PyValueError::new_err(format!(
            "timeout must be >= 0 seconds or None, got {seconds}"
        ))
    })
}

/// The session a client's recipes work through; `zookeeper.ZooKeeper` puts each new session
/// in it, so a leader latch follows the client to its next session.
#[pyclass(frozen, module = "zookeeper._native")]
pub struct NativeSessionSlot {
    pub(crate) slot: SessionSlot,
}

#[pymethods]
impl NativeSessionSlot {
    #[new]
    fn new() -> NativeSessionSlot {
        NativeSessionSlot {
            slot: SessionSlot::new(None),
        }
    }

    /// Puts the client of a new session in the slot (None: the client closed).
    fn set(&self, py: Python<'_>, client: Option<PyRef<'_, NativeClient>>) {
        let client = client.map(|client| client.shared());
        let slot = &self.slot;
        // Recipes hear of the change on this thread: none of them may wait on the GIL.
        py.detach(|| slot.set(client));
    }
}

/// A contender for a lock (`kind`: "exclusive", "read" or "write").
#[pyclass(frozen, module = "zookeeper._native")]
pub struct NativeLock {
    lock: Lock,
}

#[pymethods]
impl NativeLock {
    #[new]
    #[pyo3(signature = (slot, path, identifier, kind, extra_lock_patterns=Vec::new()))]
    fn new(
        slot: &NativeSessionSlot,
        path: &str,
        identifier: &str,
        kind: &str,
        extra_lock_patterns: Vec<String>,
    ) -> PyResult<NativeLock> {
        let kind = match kind {
            "exclusive" => LockKind::Exclusive,
            "read" => LockKind::Read,
            "write" => LockKind::Write,
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown lock kind {other:?}"
                )))
            }
        };
        let extra: Vec<&str> = extra_lock_patterns.iter().map(String::as_str).collect();
        let lock =
            Lock::new(slot.slot.clone(), path, identifier, kind).with_extra_exclusions(&extra);
        Ok(NativeLock { lock })
    }

    #[pyo3(signature = (blocking=true, timeout_s=None, ephemeral=true))]
    fn acquire(
        &self,
        py: Python<'_>,
        blocking: bool,
        timeout_s: Option<f64>,
        ephemeral: bool,
    ) -> PyResult<bool> {
        let timeout = timeout(timeout_s)?;
        let lock = &self.lock;
        py.detach(|| lock.acquire(blocking, timeout, ephemeral))
            .map_err(|failure| error(py, lock.path(), failure))
    }

    fn release(&self, py: Python<'_>) -> PyResult<bool> {
        let lock = &self.lock;
        py.detach(|| lock.release())
            .map_err(|failure| error(py, lock.path(), failure))
    }

    fn cancel(&self) {
        self.lock.cancel();
    }

    fn contenders(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let lock = &self.lock;
        py.detach(|| lock.contenders())
            .map_err(|failure| error(py, lock.path(), failure))
    }

    #[getter]
    fn node(&self) -> Option<String> {
        self.lock.node()
    }

    #[getter]
    fn is_acquired(&self) -> bool {
        self.lock.is_acquired()
    }

    #[getter]
    fn cancelled(&self) -> bool {
        self.lock.is_cancelled()
    }

    #[getter]
    fn path(&self) -> String {
        self.lock.path().to_string()
    }

    #[getter]
    fn prefix(&self) -> String {
        self.lock.prefix().to_string()
    }

    #[getter]
    fn create_path(&self) -> String {
        self.lock.create_path()
    }
}

/// A lease holder of a semaphore.
#[pyclass(frozen, module = "zookeeper._native")]
pub struct NativeSemaphore {
    semaphore: Semaphore,
}

#[pymethods]
impl NativeSemaphore {
    #[new]
    fn new(
        slot: &NativeSessionSlot,
        path: &str,
        identifier: &str,
        max_leases: u32,
    ) -> PyResult<NativeSemaphore> {
        if max_leases == 0 {
            return Err(PyValueError::new_err("max_leases must be >= 1"));
        }
        Ok(NativeSemaphore {
            semaphore: Semaphore::new(slot.slot.clone(), path, identifier, max_leases),
        })
    }

    #[pyo3(signature = (blocking=true, timeout_s=None))]
    fn acquire(&self, py: Python<'_>, blocking: bool, timeout_s: Option<f64>) -> PyResult<bool> {
        let timeout = timeout(timeout_s)?;
        let semaphore = &self.semaphore;
        py.detach(|| semaphore.acquire(blocking, timeout))
            .map_err(|failure| error(py, semaphore.path(), failure))
    }

    fn release(&self, py: Python<'_>) -> PyResult<bool> {
        let semaphore = &self.semaphore;
        py.detach(|| semaphore.release())
            .map_err(|failure| error(py, semaphore.path(), failure))
    }

    fn cancel(&self) {
        self.semaphore.cancel();
    }

    fn lease_holders(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let semaphore = &self.semaphore;
        py.detach(|| semaphore.lease_holders())
            .map_err(|failure| error(py, semaphore.path(), failure))
    }

    #[getter]
    fn is_acquired(&self) -> bool {
        self.semaphore.is_acquired()
    }

    #[getter]
    fn cancelled(&self) -> bool {
        self.semaphore.is_cancelled()
    }

    #[getter]
    fn path(&self) -> String {
        self.semaphore.path().to_string()
    }

    #[getter]
    fn create_path(&self) -> String {
        self.semaphore.create_path().to_string()
    }

    #[getter]
    fn lock_path(&self) -> String {
        self.semaphore.lock_path().to_string()
    }
}

/// A contender in an election that runs a function while leader.
#[pyclass(frozen, module = "zookeeper._native")]
pub struct NativeLeaderElection {
    election: LeaderElection,
}

#[pymethods]
impl NativeLeaderElection {
    #[new]
    fn new(slot: &NativeSessionSlot, path: &str, identifier: &str) -> NativeLeaderElection {
        NativeLeaderElection {
            election: LeaderElection::new(slot.slot.clone(), path, identifier),
        }
    }

    /// Blocks until elected, then calls `func()` (with the GIL) and gives up leadership when
    /// it returns or raises; its exception propagates. Returns at once after `cancel`.
    fn run(&self, py: Python<'_>, func: Py<PyAny>) -> PyResult<()> {
        let election = &self.election;
        let outcome =
            py.detach(|| election.run(|| Python::attach(|py| func.bind(py).call0().map(drop))));
        match outcome {
            Ok(Some(result)) => result,
            Ok(None) => Ok(()),
            Err(failure) => Err(error(py, election.lock().path(), failure)),
        }
    }

    fn cancel(&self) {
        self.election.cancel();
    }

    fn contenders(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let election = &self.election;
        py.detach(|| election.contenders())
            .map_err(|failure| error(py, election.lock().path(), failure))
    }
}

/// A leader latch participant; `on_change(leader)` runs on the latch's worker thread.
#[pyclass(frozen, module = "zookeeper._native")]
pub struct NativeLeaderLatch {
    latch: Option<Arc<LeaderLatch>>,
}

#[pymethods]
impl NativeLeaderLatch {
    #[new]
    fn new(
        slot: &NativeSessionSlot,
        path: &str,
        identifier: &str,
        on_change: Py<PyAny>,
    ) -> NativeLeaderLatch {
        let latch = LeaderLatch::new(slot.slot.clone(), path, identifier);
        latch.add_listener(Arc::new(move |leader| {
            call_python(&on_change, |py| {
                Ok((leader,).into_pyobject(py)?.into_any().unbind())
            })
        }));
        NativeLeaderLatch {
            latch: Some(Arc::new(latch)),
        }
    }

    fn start(&self, py: Python<'_>) -> PyResult<()> {
        let latch = self.latch();
        latch
            .start()
            .map_err(|failure| error(py, latch.path(), failure))
    }

    #[pyo3(signature = (notify_leader=false))]
    fn close(&self, py: Python<'_>, notify_leader: bool) {
        let latch = self.latch();
        // The worker may be calling a listener, which needs the GIL to finish.
        py.detach(|| latch.close(notify_leader));
    }

    fn has_leadership(&self) -> bool {
        self.latch().has_leadership()
    }

    #[pyo3(signature = (timeout_s=None))]
    fn await_leadership(&self, py: Python<'_>, timeout_s: Option<f64>) -> PyResult<bool> {
        let timeout = timeout(timeout_s)?;
        let latch = self.latch();
        py.detach(|| latch.await_leadership(timeout))
            .map_err(|failure| error(py, latch.path(), failure))
    }

    fn participants(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let latch = self.latch();
        py.detach(|| latch.participants())
            .map_err(|failure| error(py, latch.path(), failure))
    }

    /// "LATENT", "STARTED" or "CLOSED".
    #[getter]
    fn state(&self) -> &'static str {
        match self.latch().state() {
            LatchState::Latent => "LATENT",
            LatchState::Started => "STARTED",
            LatchState::Closed => "CLOSED",
        }
    }

    #[getter]
    fn our_path(&self) -> Option<String> {
        self.latch().our_path()
    }
}

impl NativeLeaderLatch {
    fn latch(&self) -> &LeaderLatch {
        self.latch.as_deref().expect("present until dropped")
    }
}

impl Drop for NativeLeaderLatch {
    /// Collected with the GIL held: dropping the latch, which waits for a listener call in
    /// progress (and one needs the GIL), runs on a thread of its own once it ever started.
    fn drop(&mut self) {
        if let Some(latch) = self.latch.take() {
            if latch.state() != LatchState::Latent {
                let _ = std::thread::Builder::new()
                    .name("zk-latch-close".into())
                    .spawn(move || drop(latch));
            }
        }
    }
}
