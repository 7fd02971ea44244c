//! Guards against a graceful restart ending sessions: the server binary stopped with SIGTERM
//! or SIGINT and started again on the same data directory lets the Rust client resume its
//! session (same id), with its ephemeral and the watch it set before the restart; and an
//! embedded server stopped and started again does the same for a TCP client. Only expiry or
//! a client's close ends a session (tests/python/test_restart.py runs kazoo and the Python
//! package the same way, against Apache ZooKeeper too).

// The behavioural suites' helpers, shared rather than copied: this test lives with the binary it
// starts (`CARGO_BIN_EXE_zookeeper-rs` exists only in the binary's crate).
#[path = "../../core/tests/common/mod.rs"]
mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zookeeper_core::server::net::{NetConfig, NetServer};
use zookeeper_core::{
    Acl, Client, ClientState, ConnectOptions, CreateMode, ErrorCode, EventType, KeeperState,
    Server, ServerConfig, Watcher,
};

use common::{next, EVENT_WAIT};

const SERVE_WAIT: Duration = Duration::from_secs(20);

/// A session sink that drops what it is given.
struct Quiet;

impl zookeeper_core::server::SessionSink for Quiet {
    fn deliver(&self, _event: zookeeper_core::WatchedEvent) {}
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zkrs-restart-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The server binary on a fixed port and data directory.
struct Binary {
    port: u16,
    data_dir: PathBuf,
    child: Option<Child>,
}

impl Binary {
    fn start(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_zookeeper-rs"))
            .args(["--port", &self.port.to_string(), "--data-dir"])
            .arg(&self.data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + SERVE_WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "the binary is not serving");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (by name) and waits for a clean exit.
    fn stop(&mut self, signal: &str) {
        let mut child = self.child.take().unwrap();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "{signal}: the server exited with {status}"
        );
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// The sequence the issue asks for, around `restart`: an ephemeral and a data watch before,
/// the same session, the ephemeral and the watch firing after.
fn survives(address: &str, restart: impl FnOnce()) {
    let options = ConnectOptions {
        session_timeout_ms: 20_000,
        ..ConnectOptions::default()
    };
    let client = Client::connect(address, options.clone()).unwrap();
    let session_id = client.session_id();
    let open = Acl::open_unsafe();
    client
        .create("/eph", b"mine", &open, CreateMode::Ephemeral)
        .unwrap();
    client
        .create("/watched", b"before", &open, CreateMode::Persistent)
        .unwrap();
    let (watcher, events) = Watcher::channel();
    client.get_data("/watched", Some(watcher)).unwrap();

    restart();

    // Calls made while the client finds the server again wait for the resumed session.
    let stat = client
        .exists("/eph", None)
        .unwrap()
        .expect("the ephemeral survived");
    assert_eq!(client.session_id(), session_id);
    assert_eq!(client.state(), ClientState::Connected);
    assert_eq!(stat.ephemeral_owner, session_id);
    let writer = Client::connect(address, options).unwrap();
    writer.set_data("/watched", b"after", -1).unwrap();
    // A watcher hears the connection come and go (as ZooKeeper's clients tell every
    // watcher), then the change.
    let mut states = Vec::new();
    let event = loop {
        let event = next(&events);
        if event.event_type != EventType::None {
            break event;
        }
        states.push(event.state);
    };
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeDataChanged, "/watched")
    );
    assert_eq!(
        states,
        [KeeperState::Disconnected, KeeperState::SyncConnected]
    );
}

#[test]
fn sigterm_and_sigint_restarts_keep_sessions_ephemerals_and_watches() {
    for signal in ["TERM", "INT"] {
        let mut binary = Binary {
            port: free_port(),
            data_dir: scratch(signal),
            child: None,
        };
        binary.start();
        let address = format!("127.0.0.1:{}", binary.port);
        survives(&address, || {
            binary.stop(signal);
            binary.start();
        });
    }
}

fn durable(dir: &Path) -> ServerConfig {
    ServerConfig {
        tick_ms: 500,
        data_dir: Some(dir.to_path_buf()),
        ..ServerConfig::default()
    }
}

fn serve(server: &Server, port: u16) -> NetServer {
    NetServer::start(
        Arc::clone(server.engine()),
        NetConfig {
            address: format!("127.0.0.1:{port}").parse().unwrap(),
            ..NetConfig::default()
        },
    )
    .unwrap()
}

#[test]
fn an_embedded_durable_server_stopped_and_started_keeps_sessions() {
    let dir = scratch("embedded");
    let port = free_port();
    let mut running = Some({
        let server = Server::start(durable(&dir)).unwrap();
        let net = serve(&server, port);
        (net, server)
    });
    survives(&format!("127.0.0.1:{port}"), || {
        // Connections first, then the engine: nothing is closed, only stopped.
        drop(running.take());
        let server = Server::start(durable(&dir)).unwrap();
        let net = serve(&server, port);
        running = Some((net, server));
    });
    drop(running);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A durable server's in-process clients cannot follow it to a restart: they hear
/// Disconnected and their calls answer ConnectionLoss, while the session itself lives on in
/// the data directory (a TCP client can resume it by id and password).
#[test]
fn in_process_clients_of_a_stopped_durable_server_are_disconnected() {
    let dir = scratch("in-process");
    let server = Server::start(durable(&dir)).unwrap();
    let (watcher, events) = Watcher::channel();
    let client = server
        .connect_with(ConnectOptions {
            watcher: Some(watcher),
            session_timeout_ms: 20_000,
            ..ConnectOptions::default()
        })
        .unwrap();
    assert_eq!(next(&events).state, KeeperState::SyncConnected);
    client
        .create("/eph", b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
        .unwrap();
    let (session_id, password) = (client.session_id(), client.session_password());
    drop(server);
    let event = events.recv_timeout(EVENT_WAIT).unwrap();
    assert_eq!(
        (event.event_type, event.state),
        (EventType::None, KeeperState::Disconnected)
    );
    assert_eq!(
        client.exists("/eph", None).unwrap_err().code(),
        ErrorCode::ConnectionLoss
    );

    let server = Server::start(durable(&dir)).unwrap();
    let resumed = server
        .engine()
        .resume_session(session_id, &password, Arc::new(Quiet), None)
        .expect("the session lives on after the stop");
    assert_eq!(resumed.id(), session_id);
    let observer = server.connect().unwrap();
    let stat = observer.exists("/eph", None).unwrap().unwrap();
    assert_eq!(stat.ephemeral_owner, session_id);
    drop(client);
    drop(observer);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
