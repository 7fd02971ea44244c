//! Guards `ConnectOptions::resume`: a client that comes back with a session's id and password
//! must get that session (its ephemerals still its own), and a wrong password or a closed
//! session must answer SessionExpired rather than open a fresh session silently.

mod common;

use std::sync::Arc;

use zookeeper_core::server::embedded::ServerSetup;
use zookeeper_core::server::net::NetConfig;
use zookeeper_core::{
    Acl, Client, ConnectOptions, CreateMode, ErrorCode, ServerConfig, SessionCredentials,
};

fn resume(credentials: SessionCredentials) -> ConnectOptions {
    ConnectOptions {
        resume: Some(credentials),
        ..ConnectOptions::default()
    }
}

fn credentials(client: &Client) -> SessionCredentials {
    SessionCredentials {
        session_id: client.session_id(),
        password: client.session_password(),
    }
}

#[test]
fn an_in_process_client_resumes_its_session_with_id_and_password() {
    let (server, _clock) = common::server();
    let first = server.connect().unwrap();
    first
        .create("/mine", b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
        .unwrap();
    let resumed = server.connect_with(resume(credentials(&first))).unwrap();
    assert_eq!(resumed.session_id(), first.session_id());
    assert_eq!(
        resumed.get_ephemerals("/").unwrap(),
        vec!["/mine".to_string()]
    );

    let mut wrong = credentials(&first);
    wrong.password[0] ^= 1;
    let refused = server.connect_with(resume(wrong)).unwrap_err();
    assert_eq!(refused.code(), ErrorCode::SessionExpired);

    resumed.close().unwrap();
    let after_close = server
        .connect_with(resume(credentials(&first)))
        .unwrap_err();
    assert_eq!(after_close.code(), ErrorCode::SessionExpired);
}

#[test]
fn a_tcp_client_resumes_its_session_with_id_and_password() {
    let running = ServerSetup {
        server: ServerConfig::default(),
        net: Some(NetConfig {
            address: "127.0.0.1:0".parse().unwrap(),
            ..NetConfig::default()
        }),
        ensemble: None,
    }
    .start()
    .unwrap();
    let address = running.address().unwrap().to_string();
    // The first client reaches the server through a relay the test cuts, as a client that
    // crashed or lost its network: otherwise it would take its session back on reconnecting.
    let relay = common::proxy::Proxy::start(running.address().unwrap());
    let first =
        Arc::new(Client::connect(&relay.address.to_string(), ConnectOptions::default()).unwrap());
    first
        .create("/mine", b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
        .unwrap();
    relay.cut(true);
    let resumed = Client::connect(&address, resume(credentials(&first))).unwrap();
    assert_eq!(resumed.session_id(), first.session_id());
    assert_eq!(resumed.session_password(), first.session_password());
    assert_eq!(
        resumed.get_ephemerals("/").unwrap(),
        vec!["/mine".to_string()]
    );

    let mut wrong = credentials(&first);
    wrong.password[15] ^= 1;
    let refused = Client::connect(&address, resume(wrong)).unwrap_err();
    assert_eq!(refused.code(), ErrorCode::SessionExpired);
}

#[test]
fn a_new_connection_for_a_session_starts_without_the_old_connections_watches() {
    // A ZooKeeper server drops a connection's watches with it; the client sends setWatches for
    // those it knows. A watch the old connection left (perhaps by a read whose answer never
    // arrived) must not fire on the new one unasked.
    let (server, _clock) = common::server();
    let writer = server.connect().unwrap();
    writer
        .create(
            "/watched",
            b"v0",
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .unwrap();
    let recorder = common::Recorder::new();
    let first = server.connect().unwrap();
    first
        .get_data("/watched", Some(recorder.watcher("first")))
        .unwrap();
    let resumed = server
        .connect_with(ConnectOptions {
            watcher: Some(recorder.watcher("resumed")),
            ..resume(credentials(&first))
        })
        .unwrap();
    assert_eq!(resumed.session_id(), first.session_id());
    // As wchc shows it: the session holds no watch until the new connection sets one.
    let session = first.session_id();
    assert_eq!(server.engine().watches_by_session().get(&session), None);
    writer.set_data("/watched", b"v1", -1).unwrap();
    writer.sync("/watched").unwrap();
    let about_watched: Vec<_> = recorder
        .events
        .try_iter()
        .chain(recorder.events.recv_timeout(common::QUIET_WAIT))
        .filter(|(_, event)| event.path == "/watched")
        .collect();
    assert_eq!(about_watched, Vec::new());
    // The watch the new connection leaves is its own.
    resumed
        .get_data("/watched", Some(recorder.watcher("again")))
        .unwrap();
    assert_eq!(
        server.engine().watches_by_session()[&session],
        ["/watched".to_string()].into()
    );
    writer.set_data("/watched", b"v2", -1).unwrap();
    let (name, event) = loop {
        let (name, event) = recorder.next();
        if event.path == "/watched" {
            break (name, event);
        }
    };
    assert_eq!(
        (name.as_str(), event.event_type),
        ("again", zookeeper_core::EventType::NodeDataChanged)
    );
}
