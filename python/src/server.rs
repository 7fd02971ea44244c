//! The native embedded server: an engine in this process, optionally serving ZooKeeper's client
//! protocol on a TCP port, handing out in-process clients.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use zookeeper_core::server::embedded::{EmbeddedServer, ServerSetup};
use zookeeper_core::server::net::NetConfig;
use zookeeper_core::ServerConfig;

use crate::client::{options, NativeCache, NativeClient, NativeWatcher};
use crate::convert;

/// A running server. `stop()` (or dropping it) stops serving; sessions are not closed.
#[pyclass(frozen, module = "zookeeper._native")]
pub struct NativeServer {
    running: std::sync::Mutex<Option<EmbeddedServer>>,
    address: Option<String>,
}

#[pymethods]
impl NativeServer {
    /// Starts a server. `port` None: in process only; 0: a free port the system picks.
    #[new]
    #[pyo3(signature = (
        tick_ms=2000, data_dir=None, port=None, host="127.0.0.1".to_string(),
        session_timeout_ms_min=None, session_timeout_ms_max=None, force_sync=true,
        super_digest=None, connections_per_ip_max=60,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        tick_ms: u32,
        data_dir: Option<PathBuf>,
        port: Option<u16>,
        host: String,
        session_timeout_ms_min: Option<u32>,
        session_timeout_ms_max: Option<u32>,
        force_sync: bool,
        super_digest: Option<String>,
        connections_per_ip_max: usize,
    ) -> PyResult<NativeServer> {
        let config = ServerConfig {
            tick_ms,
            session_timeout_ms_min,
            session_timeout_ms_max,
            force_sync,
            super_digest,
            ..ServerConfig::default()
        };
        config
            .validate()
            .map_err(|error| PyValueError::new_err(error.to_string()))?;
        let listen = match port {
            Some(port) => {
                let ip: IpAddr = host.parse().map_err(|_| {
                    PyValueError::new_err(format!("host {host:?} is not an IP address"))
                })?;
                Some(SocketAddr::new(ip, port))
            }
            None => None,
        };
        let setup = ServerSetup {
            server: config,
            net: listen.map(|address| NetConfig {
                address,
                connections_per_ip_max,
                ..NetConfig::default()
            }),
            ensemble: None,
        }
        .with_data_dir(data_dir);
        // Recovery reads the whole data directory: the GIL is released meanwhile.
        let running = py
            .detach(move || setup.start())
            .map_err(|error| PyOSError::new_err(error.to_string()))?;
        let address = running.address().map(|address| address.to_string());
        Ok(NativeServer {
            running: std::sync::Mutex::new(Some(running)),
            address,
        })
    }

    /// `host:port` of the client port, None when the server does not listen on TCP.
    #[getter]
    fn address(&self) -> Option<String> {
        self.address.clone()
    }

    /// True until `stop()`.
    #[getter]
    fn running(&self) -> bool {
        self.running
            .lock()
            .map(|running| running.is_some())
            .unwrap_or(false)
    }

    /// Opens an in-process session.
    #[pyo3(signature = (timeout_ms, watcher=None, ip="127.0.0.1".to_string(), cache=None))]
    fn connect(
        &self,
        py: Python<'_>,
        timeout_ms: i64,
        watcher: Option<Py<NativeWatcher>>,
        ip: String,
        cache: Option<NativeCache>,
    ) -> PyResult<NativeClient> {
        let mut options = options(py, timeout_ms, watcher.as_ref(), cache);
        options.ip = ip;
        let running = self
            .running
            .lock()
            .map_err(|_| PyRuntimeError::new_err("the server's lock is poisoned"))?;
        let Some(running) = running.as_ref() else {
            return Err(PyRuntimeError::new_err("the server is stopped"));
        };
        let client = running
            .server()
            .connect_with(options)
            .map_err(|error| convert::error(py, &error))?;
        Ok(NativeClient::new(client, watcher))
    }

    /// Stops listening and serving; sessions are not closed (see ZooServer.stop). Idempotent.
    fn stop(&self, py: Python<'_>) {
        let running = self
            .running
            .lock()
            .ok()
            .and_then(|mut running| running.take());
        if let Some(running) = running {
            py.detach(move || drop(running));
        }
    }
}
