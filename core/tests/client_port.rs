//! Guards against a client port without a global bound: past `connections_max` a connection is
//! closed at once, whatever its address, and a freed slot serves again.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zookeeper_core::proto::wire::{ConnectRequest, ConnectResponse};
use zookeeper_core::server::net::{NetConfig, NetServer};
use zookeeper_core::{Server, ServerConfig};

fn handshake(address: std::net::SocketAddr) -> std::io::Result<(TcpStream, i64)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 10_000,
        session_id: 0,
        password: vec![0; 16],
        read_only: Some(false),
    };
    stream.write_all(&request.encode_frame())?;
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix)?;
    let mut body = vec![0u8; i32::from_be_bytes(prefix) as usize];
    stream.read_exact(&mut body)?;
    let response = ConnectResponse::decode(&body).expect("a handshake answer");
    Ok((stream, response.session_id))
}

#[test]
fn connections_past_the_global_cap_are_closed() {
    let (config, _clock) = ServerConfig::with_manual_clock();
    let server = Server::start(config).unwrap();
    let net_config = NetConfig {
        address: "127.0.0.1:0".parse().unwrap(),
        connections_max: 2,
        connections_per_ip_max: 0,
        ..NetConfig::default()
    };
    let net = NetServer::start(Arc::clone(server.engine()), net_config).unwrap();
    let address = net.local_address();

    let (first, first_session) = handshake(address).unwrap();
    let (_second, second_session) = handshake(address).unwrap();
    assert!(first_session != 0 && second_session != 0 && first_session != second_session);
    assert!(
        handshake(address).is_err(),
        "a third connection must be closed"
    );
    assert_eq!(
        server.engine().session_count(),
        2,
        "the refused connection made no session"
    );

    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match handshake(address) {
            Ok((_third, session)) => {
                assert_ne!(session, 0);
                break;
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(error) => panic!("a freed slot never served again: {error}"),
        }
    }
}
