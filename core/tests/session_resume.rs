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
