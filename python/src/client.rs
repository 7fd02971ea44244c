//! The native client and watcher classes: sessions (in process or over TCP) driven by request
//! tuples, with the GIL released while a call waits.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use zookeeper_core::op::Reply;
use zookeeper_core::{Client, ClientTls, ConnectOptions, Error, ReadCacheConfig, Watcher};

use crate::convert;

/// How long a blocking call waits with the GIL released before it looks at signals again.
const SIGNAL_CHECK_INTERVAL_MS: u64 = 50;

/// Runs `call` with the current Python exception printed instead of lost: callbacks run on the
/// dispatcher thread, where nobody could catch it. Does nothing once the interpreter is gone.
pub(crate) fn call_python(
    callable: &Py<PyAny>,
    make_args: impl FnOnce(Python<'_>) -> PyResult<Py<PyAny>>,
) {
    // Counted before the flag is read, so `shutdown` either sees this call or this call sees
    // the flag: no dispatcher thread enters Python once the interpreter finalizes (CPython
    // would end such a thread with pthread_exit, unwinding through Rust frames: an abort).
    CALLBACKS_RUNNING.fetch_add(1, Ordering::SeqCst);
    struct Running;
    impl Drop for Running {
        fn drop(&mut self) {
            CALLBACKS_RUNNING.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let _running = Running;
    if SHUTTING_DOWN.load(Ordering::SeqCst) {
        return;
    }
    let _ = Python::try_attach(|py| {
        let result = make_args(py).and_then(|args| {
            let args = args.bind(py).cast::<pyo3::types::PyTuple>()?.clone();
            callable.bind(py).call1(args)
        });
        if let Err(error) = result {
            error.write_unraisable(py, Some(callable.bind(py)));
        }
    });
}

/// Set at interpreter exit: callbacks are no longer run.
static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);
/// Callbacks between their start and their end.
static CALLBACKS_RUNNING: AtomicUsize = AtomicUsize::new(0);
/// Most time exit waits for running callbacks to return.
const SHUTDOWN_WAIT_MS: u64 = 2_000;

/// Called at interpreter exit (atexit, while Python still runs): no callback starts after
/// this, and the ones running get up to 2 s to return.
#[pyfunction]
pub(crate) fn shutdown(py: Python<'_>) {
    SHUTTING_DOWN.store(true, Ordering::SeqCst);
    py.detach(|| {
        let deadline = std::time::Instant::now() + Duration::from_millis(SHUTDOWN_WAIT_MS);
        while CALLBACKS_RUNNING.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// A Python callable as a watcher: called with `(event_type, state, path)` on the client's
/// dispatcher thread. The same `NativeWatcher` registered twice on a path fires once.
#[pyclass(frozen, module = "zookeeper._native")]
pub struct NativeWatcher {
    pub(crate) watcher: Watcher,
}

#[pymethods]
impl NativeWatcher {
    #[new]
    fn new(callback: Py<PyAny>) -> NativeWatcher {
        let watcher = Watcher::new(move |event| {
            call_python(&callback, |py| {
                let args = (event.event_type.code(), event.state.code(), event.path);
                Ok(args.into_pyobject(py)?.into_any().unbind())
            })
        });
        NativeWatcher { watcher }
    }

    /// How many handles to the watcher exist; 1 means only this object holds it (no watch
    /// waits with it and no event for it is queued).
    #[getter]
    fn handle_count(&self) -> usize {
        self.watcher.handle_count()
    }
}

/// Waits for `pending` with the GIL released, waking every 50 ms to run Python's signal
/// handlers, so Ctrl-C interrupts the call.
pub(crate) fn wait<T: Send>(
    py: Python<'_>,
    mut poll: impl FnMut(Duration) -> Option<T> + Send,
) -> PyResult<T> {
    let interval = Duration::from_millis(SIGNAL_CHECK_INTERVAL_MS);
    loop {
        if let Some(value) = py.detach(|| poll(interval)) {
            return Ok(value);
        }
        py.check_signals()?;
    }
}

/// TLS as the Python package passes it: (ca, certfile, keyfile, verify_certs), checked there.
type TlsArguments = (Option<String>, Option<String>, Option<String>, bool);

/// A session on a ZooKeeper server.
#[pyclass(frozen, module = "zookeeper._native")]
pub struct NativeClient {
    /// Shared with the recipes working through this session.
    client: Arc<Client>,
    default_watcher: Option<Py<NativeWatcher>>,
}

impl NativeClient {
    pub(crate) fn new(client: Client, default_watcher: Option<Py<NativeWatcher>>) -> NativeClient {
        NativeClient {
            client: Arc::new(client),
            default_watcher,
        }
    }

    /// The client, for recipes (see recipes.rs).
    pub(crate) fn shared(&self) -> Arc<Client> {
        self.client.clone()
    }
}

pub(crate) fn options(
    py: Python<'_>,
    timeout_ms: i64,
    watcher: Option<&Py<NativeWatcher>>,
    cache: Option<NativeCache>,
) -> ConnectOptions {
    ConnectOptions {
        session_timeout_ms: timeout_ms,
        watcher: watcher.map(|watcher| watcher.bind(py).get().watcher.clone()),
        read_cache: cache.map(
            |(entries_max, bytes_max, ttl_ms, serve_stale_while_disconnected)| ReadCacheConfig {
                entries_max,
                bytes_max,
                ttl_ms,
                serve_stale_while_disconnected,
            },
        ),
        ..ConnectOptions::default()
    }
}

/// The read cache's settings as `zookeeper.ReadCache` hands them over (checked there):
/// (entries_max, bytes_max, ttl_ms, serve_stale_while_disconnected).
pub(crate) type NativeCache = (usize, usize, Option<u64>, bool);

/// The read cache's counters of one kind of read: (hits, misses).
type KindCounts = (u64, u64);

fn finish(py: Python<'_>, result: Result<Reply, Error>) -> PyResult<Py<PyAny>> {
    match result {
        Ok(reply) => Ok(convert::reply(py, &reply)?.unbind()),
        Err(error) => Err(convert::error(py, &error)),
    }
}

#[pymethods]
impl NativeClient {
    /// Opens a session over TCP (`hosts` is a connect string, optionally with a chroot).
    #[staticmethod]
    #[pyo3(signature = (
        hosts, timeout_ms, watcher=None, read_only=false, cache=None,
        connect_timeout_ms=None, tls=None
    ))]
    // The arguments are the Python method's keyword arguments, one each.
    #[allow(clippy::too_many_arguments)]
    fn connect(
        py: Python<'_>,
        hosts: String,
        timeout_ms: i64,
        watcher: Option<Py<NativeWatcher>>,
        read_only: bool,
        cache: Option<NativeCache>,
        connect_timeout_ms: Option<u64>,
        tls: Option<TlsArguments>,
    ) -> PyResult<NativeClient> {
        let mut options = options(py, timeout_ms, watcher.as_ref(), cache);
        options.read_only = read_only;
        options.connect_timeout_ms = connect_timeout_ms;
        options.tls = tls.map(|(ca, certfile, keyfile, verify_certs)| ClientTls {
            ca_file: ca.map(PathBuf::from),
            cert_file: certfile.map(PathBuf::from),
            key_file: keyfile.map(PathBuf::from),
            skip_verification: !verify_certs,
        });
        // Connecting has no deferred form: a thread connects while this one waits for signals.
        // If the wait is interrupted, the thread's client is dropped, which closes its session.
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("zk-connect".into())
            .spawn(move || drop(sender.send(Client::connect(&hosts, options))))
            .map_err(|error| PyRuntimeError::new_err(format!("cannot start a thread: {error}")))?;
        let result = wait(py, move |timeout| match receiver.recv_timeout(timeout) {
            Ok(result) => Some(result),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Some(Err(Error::from(zookeeper_core::ErrorCode::SystemError)))
            }
        })?;
        match result {
            Ok(client) => Ok(NativeClient::new(client, watcher)),
            Err(error) => Err(convert::error(py, &error)),
        }
    }

    /// Runs a request and waits for its answer with the GIL released.
    #[pyo3(signature = (request, watcher=None))]
    fn submit(
        &self,
        py: Python<'_>,
        request: &Bound<'_, PyAny>,
        watcher: Option<&Bound<'_, NativeWatcher>>,
    ) -> PyResult<Py<PyAny>> {
        let op = convert::op(request)?;
        let watcher = watcher.map(|watcher| watcher.get().watcher.clone());
        let client = &self.client;
        if client.is_in_process() {
            // In process a call never waits on a network, but a write may wait for its fsync.
            let result = py.detach(|| client.submit(op, watcher));
            return finish(py, result);
        }
        let mut pending = py.detach(|| client.submit_deferred(op, watcher));
        let result = wait(py, |timeout| pending.wait_timeout(timeout))?;
        finish(py, result)
    }

    /// Sends a request; `done(result, exception)` runs on the dispatcher thread when it is
    /// answered, in order with watch events.
    #[pyo3(signature = (request, watcher, done))]
    fn submit_async(
        &self,
        py: Python<'_>,
        request: &Bound<'_, PyAny>,
        watcher: Option<&Bound<'_, NativeWatcher>>,
        done: Py<PyAny>,
    ) -> PyResult<()> {
        let op = convert::op(request)?;
        let watcher = watcher.map(|watcher| watcher.get().watcher.clone());
        let completion = Box::new(move |outcome: Result<Reply, Error>| {
            call_python(&done, |py| {
                let (value, error) = convert::outcome(py, &outcome);
                Ok((value, error).into_pyobject(py)?.into_any().unbind())
            })
        });
        let client = &self.client;
        py.detach(|| client.submit_async(op, watcher, completion));
        Ok(())
    }

    /// Closes the session (its ephemerals go, its watchers hear Closed). Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let client = &self.client;
        let result = py.detach(|| client.close());
        result.map_err(|error| convert::error(py, &error))
    }

    /// The session id.
    #[getter]
    fn session_id(&self) -> i64 {
        self.client.session_id()
    }

    /// The session password.
    #[getter]
    fn session_password<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.client.session_password())
    }

    /// The timeout the server granted, in milliseconds.
    #[getter]
    fn session_timeout_ms(&self) -> u32 {
        self.client.session_timeout_ms()
    }

    /// The read cache's counters as (hits, misses, invalidations, evictions, entries, bytes,
    /// expirations, watches_released, data, exists, children), the last three (hits, misses);
    /// None when the cache is off.
    #[allow(clippy::type_complexity)]
    #[getter]
    fn cache_stats(
        &self,
    ) -> Option<(
        u64,
        u64,
        u64,
        u64,
        usize,
        usize,
        u64,
        u64,
        KindCounts,
        KindCounts,
        KindCounts,
    )> {
        self.client.read_cache_stats().map(|stats| {
            (
                stats.hits,
                stats.misses,
                stats.invalidations,
                stats.evictions,
                stats.entries,
                stats.bytes,
                stats.expirations,
                stats.watches_released,
                (stats.data.hits, stats.data.misses),
                (stats.exists.hits, stats.exists.misses),
                (stats.children.hits, stats.children.misses),
            )
        })
    }

    /// 0 connected, 1 auth failed, 2 expired, 3 closed, 4 connecting.
    #[getter]
    fn state(&self) -> u8 {
        self.client.state() as u8
    }

    /// True for a session on a server in this process.
    #[getter]
    fn is_in_process(&self) -> bool {
        self.client.is_in_process()
    }

    /// The default watcher given at connect time.
    #[getter]
    fn default_watcher(&self, py: Python<'_>) -> Option<Py<NativeWatcher>> {
        self.default_watcher
            .as_ref()
            .map(|watcher| watcher.clone_ref(py))
    }

    /// In process only: `False` cuts the client off so its session expires after its timeout
    /// (for tests of expiry); `True` reattaches it.
    fn set_attached(&self, attached: bool) {
        self.client.set_attached(attached);
    }
}
