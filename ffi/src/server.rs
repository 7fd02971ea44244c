//! The `zk_server` handle: an embedded server started from options or a zoo.cfg (through
//! `ServerSetup`, as the binary and Python start theirs), why a start failed, its address,
//! in-process clients, stopping and freeing.

use std::cell::RefCell;
use std::ffi::c_char;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use parking_lot::RwLock;
use zookeeper_core::server::embedded::{EmbeddedServer, ServerSetup};
use zookeeper_core::server::net::NetConfig;
use zookeeper_core::server::zoo_cfg::ZooCfg;
use zookeeper_core::ServerConfig;

use crate::boundary::{
    boundary, boundary_void, copy_text, from_raw, into_raw, optional_text, reference, required,
    text, write,
};
use crate::client::{connect_options, zk_client, zk_client_options};
use crate::result::zk_result;

/// How an embedded server runs. Fill with `zk_server_options_init`, then change what you need.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct zk_server_options {
    /// The client port: -1 (default) serves in-process clients only, 0 picks a free port.
    pub port: i32,
    /// The address to listen on; NULL is 127.0.0.1.
    pub host: *const c_char,
    /// Where the transaction log and snapshots live; NULL (default) keeps everything in memory.
    pub data_dir: *const c_char,
    /// ZooKeeper's tickTime in ms: the unit of session timeouts. Default 2000.
    pub tick_ms: u32,
}

/// A running embedded server (opaque). Thread-safe: any thread may call any function on it
/// at once, except that `zk_server_free` must be the last call on it.
pub struct zk_server {
    /// None once stopped: later calls answer `ZK_CLOSED_HANDLE`.
    running: RwLock<Option<EmbeddedServer>>,
}

/// Fills `options` with the defaults: in memory, in process only, 2 s ticks.
///
/// # Safety
/// `options` is NULL or points to writable memory for a `zk_server_options`.
#[no_mangle]
pub unsafe extern "C" fn zk_server_options_init(options: *mut zk_server_options) -> zk_result {
    boundary(|| {
        required(options)?;
        let defaults = zk_server_options {
            port: -1,
            host: std::ptr::null(),
            data_dir: std::ptr::null(),
            tick_ms: ServerConfig::default().tick_ms,
        };
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { write(options, defaults) };
        Ok(())
    })
}

thread_local! {
    /// Why this thread's last server start failed; "" after one that did not fail so. A
    /// library must not write to the host's stderr: the caller asks for the reason.
    static START_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Records why a start failed, for `zk_server_start_error`.
pub(crate) fn start_failed(reason: String) -> zk_result {
    START_ERROR.with(|error| *error.borrow_mut() = reason);
    zk_result::ZK_START_FAILED
}

/// Forgets why this thread's last start failed: called as a start begins.
pub(crate) fn clear_start_error() {
    START_ERROR.with(|error| error.borrow_mut().clear());
}

fn start(setup: ServerSetup, server_out: *mut *mut zk_server) -> Result<(), zk_result> {
    let running = setup
        .start()
        .map_err(|error| start_failed(error.to_string()))?;
    let handle = zk_server {
        running: RwLock::new(Some(running)),
    };
    // SAFETY: the callers checked `server_out` non-NULL.
    unsafe { write(server_out, into_raw(handle)) };
    Ok(())
}

/// Starts an embedded server. `options` may be NULL for the defaults. `ZK_START_FAILED` for an
/// invalid setting, an unusable data directory or a port in use (`zk_server_start_error`
/// says which).
///
/// # Safety
/// Pointers are NULL or valid as documented; `server_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_server_start(
    options: *const zk_server_options,
    server_out: *mut *mut zk_server,
) -> zk_result {
    boundary(|| {
        clear_start_error();
        required(server_out)?;
        let mut setup = ServerSetup::default();
        // SAFETY: per the contract above.
        if let Some(options) = unsafe { options.as_ref() } {
            // SAFETY: the strings are the caller's, valid for the call.
            let (host, data_dir) = unsafe {
                (
                    optional_text(options.host)?,
                    optional_text(options.data_dir)?,
                )
            };
            setup.server.tick_ms = options.tick_ms;
            setup.net = match options.port {
                -1 => None,
                port => {
                    let port = u16::try_from(port).map_err(|_| zk_result::ZK_INVALID_ARGUMENT)?;
                    let ip: IpAddr = host
                        .unwrap_or("127.0.0.1")
                        .parse()
                        .map_err(|_| zk_result::ZK_INVALID_ARGUMENT)?;
                    Some(NetConfig {
                        address: SocketAddr::new(ip, port),
                        ..NetConfig::default()
                    })
                }
            };
            setup = setup.with_data_dir(data_dir.map(PathBuf::from));
        }
        start(setup, server_out)
    })
}

/// Starts an embedded server from a zoo.cfg file (ZooKeeper's format: tickTime, dataDir,
/// clientPort, ...), serving its client port. `ZK_START_FAILED` when the file cannot be read
/// or a value is invalid (`zk_server_start_error` says which).
///
/// # Safety
/// Pointers are NULL or valid as documented; `server_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_server_start_from_config(
    zoo_cfg_path: *const c_char,
    server_out: *mut *mut zk_server,
) -> zk_result {
    boundary(|| {
        clear_start_error();
        required(server_out)?;
        // SAFETY: per the contract above.
        let path = unsafe { text(zoo_cfg_path) }?;
        let cfg = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {path}: {error}"))
            .and_then(|text| ZooCfg::parse(&text).map_err(|error| format!("{path}: {error}")))
            .map_err(start_failed)?;
        start(ServerSetup::from_zoo_cfg(cfg), server_out)
    })
}

/// Writes the client port's address (`host:port`, NUL-terminated) into `buffer`.
/// `ZK_NOT_LISTENING` for a server without a client port; `ZK_BUFFER_TOO_SMALL` (nothing
/// written) when `buffer_len` cannot hold it and its NUL (64 bytes always can).
///
/// # Safety
/// `server` is NULL or a live handle; `buffer` has `buffer_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn zk_server_address(
    server: *const zk_server,
    buffer: *mut c_char,
    buffer_len: usize,
) -> zk_result {
    boundary(|| {
        required(buffer)?;
        // SAFETY: per the contract above.
        let handle = unsafe { reference(server) }?;
        let running = handle.running.read();
        let running = running.as_ref().ok_or(zk_result::ZK_CLOSED_HANDLE)?;
        let address = running
            .address()
            .ok_or(zk_result::ZK_NOT_LISTENING)?
            .to_string();
        // SAFETY: checked non-NULL; `buffer_len` writable bytes per the contract.
        unsafe { copy_text(&address, buffer, buffer_len) }
    })
}

/// Copies why the calling thread's last `zk_server_start`, `zk_server_start_from_config`,
/// `zk_ensemble_start` or `zk_ensemble_restart` answered `ZK_START_FAILED` (for example
/// "invalid server configuration: tick_ms must be greater than 0"), NUL-terminated, into
/// `buffer`; "" when that call did not fail so.
/// `ZK_BUFFER_TOO_SMALL` (nothing written) when `buffer_len` cannot hold it; 512 bytes hold
/// any reason but a very long path's.
///
/// # Safety
/// `buffer` is NULL or has `buffer_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn zk_server_start_error(
    buffer: *mut c_char,
    buffer_len: usize,
) -> zk_result {
    boundary(|| {
        required(buffer)?;
        // SAFETY: checked non-NULL; `buffer_len` writable bytes per the contract.
        START_ERROR.with(|error| unsafe { copy_text(&error.borrow(), buffer, buffer_len) })
    })
}

/// Opens an in-process session on the server (no TCP). `options` may be NULL.
///
/// # Safety
/// Pointers are NULL or valid as documented; `client_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_server_connect(
    server: *const zk_server,
    options: *const zk_client_options,
    client_out: *mut *mut zk_client,
) -> zk_result {
    boundary(|| {
        required(client_out)?;
        // SAFETY: per the contract above.
        let (handle, options) = unsafe { (reference(server)?, connect_options(options)?) };
        let running = handle.running.read();
        let running = running.as_ref().ok_or(zk_result::ZK_CLOSED_HANDLE)?;
        let client = running
            .server()
            .connect_with(options)
            .map_err(|error| zk_result::from(&error))?;
        // SAFETY: checked non-NULL.
        unsafe { write(client_out, into_raw(zk_client::new(client))) };
        Ok(())
    })
}

/// Stops the server: its client port closes; later calls on the handle answer
/// `ZK_CLOSED_HANDLE`. Stopping twice answers it too.
///
/// # Safety
/// `server` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn zk_server_stop(server: *const zk_server) -> zk_result {
    boundary(|| {
        // SAFETY: per the contract above.
        let handle = unsafe { reference(server) }?;
        let running = handle
            .running
            .write()
            .take()
            .ok_or(zk_result::ZK_CLOSED_HANDLE)?;
        drop(running);
        Ok(())
    })
}

/// Stops (if running) and frees the server. NULL is ignored.
///
/// # Safety
/// `server` is NULL or a handle from this library, not used after this call.
#[no_mangle]
pub unsafe extern "C" fn zk_server_free(server: *mut zk_server) {
    // SAFETY: per the contract above.
    boundary_void(|| drop(unsafe { from_raw(server) }));
}
