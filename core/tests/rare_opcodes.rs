//! Guards against what a client may ask differing between front ends: a client's
//! deleteContainer deleted any childless znode, ACL or not, because the guard sat in one entry
//! point and the TCP path went around it. Every request now goes through `Engine::submit` and
//! the policy is prepare's, so each case here runs in process and over TCP and must answer the
//! same. Also: reconfig without reconfigEnabled, sasl, a standalone check (as ZooKeeper 3.9
//! answers it), sync on a missing path, and multiRead, which leaves no watch (ZooKeeper drops
//! the watch flags its reads carry).

mod common;

use std::time::Duration;

use zookeeper_core::op::{ReconfigRequest, Reply};
use zookeeper_core::{
    Acl, Client, ConnectOptions, CreateMode, ErrorCode, Id, Op, Perms, ReadOp, Server, Watcher,
};

use common::{open, serve_tcp};

/// Runs `check` with a client in process, then with one over TCP, each on a fresh server.
fn both(check: impl Fn(&Client, &Client)) {
    let (server, _clock) = common::server();
    check(&server.connect().unwrap(), &server.connect().unwrap());

    let (server, _clock) = common::server();
    let net = serve_tcp(&server);
    let tcp = |server: &Server| {
        let _ = server;
        Client::connect(&net.local_address().to_string(), ConnectOptions::default()).unwrap()
    };
    check(&tcp(&server), &tcp(&server));
}

/// An incremental reconfig that removes member 2.
fn leave_member_2() -> Op {
    Op::Reconfig(ReconfigRequest {
        joining_servers: None,
        leaving_servers: Some("2".into()),
        new_members: None,
        config_version: -1,
    })
}

fn code(result: zookeeper_core::client::Result<Reply>) -> Result<Reply, ErrorCode> {
    result.map_err(|error| error.code())
}

#[test]
fn a_clients_delete_container_deletes_only_empty_containers() {
    both(|client, owner| {
        let digest = zookeeper_core::tree::acl::digest("bob:pw");
        let protected = [Acl::new(Perms::ALL, Id::new("digest", digest))];
        owner
            .create("/protected", b"", &protected, CreateMode::Persistent)
            .unwrap();
        owner
            .create("/plain", b"", &open(), CreateMode::Persistent)
            .unwrap();
        owner
            .create("/eph", b"", &open(), CreateMode::Ephemeral)
            .unwrap();
        owner
            .create_ttl("/ttl", b"", &open(), CreateMode::PersistentWithTtl, 600_000)
            .unwrap();
        owner.create_container("/empty", b"", &protected).unwrap();
        owner.create_container("/full", b"", &open()).unwrap();
        owner
            .create("/full/child", b"", &open(), CreateMode::Persistent)
            .unwrap();
        let delete_container = |path: &str| {
            code(client.submit(
                Op::DeleteContainer {
                    path: path.to_string(),
                },
                None,
            ))
        };
        for kept in ["/protected", "/plain", "/eph", "/ttl"] {
            assert_eq!(
                delete_container(kept),
                Err(ErrorCode::BadArguments),
                "{kept}"
            );
            // Listed rather than read: /protected may not be read (exists needs READ).
            let children = owner.get_children("/", None).unwrap();
            assert!(children.contains(&kept[1..].to_string()), "{kept}");
        }
        assert_eq!(delete_container("/missing"), Err(ErrorCode::NoNode));
        assert_eq!(delete_container("/full"), Err(ErrorCode::NotEmpty));
        // As ZooKeeper 3.9: no ACL is checked for an empty container.
        assert_eq!(delete_container("/empty"), Ok(Reply::Done));
        assert_eq!(owner.exists("/empty", None).unwrap(), None);
    });
}

#[test]
fn reconfig_on_a_standalone_server_with_reconfig_enabled_is_unimplemented() {
    // ZooKeeper's standalone server has no leader to reconfigure: its PrepRequestProcessor
    // answers Unimplemented once reconfigEnabled lets the request past the first check.
    let (config, _clock) = zookeeper_core::ServerConfig::with_manual_clock();
    let server = Server::start(zookeeper_core::ServerConfig {
        reconfig_enabled: true,
        ..config
    })
    .unwrap();
    let client = server.connect().unwrap();
    assert_eq!(
        code(client.submit(leave_member_2(), None)),
        Err(ErrorCode::Unimplemented)
    );
    assert_eq!(
        client.get_data("/zookeeper/config", None).unwrap().0,
        Some(Vec::new()),
        "nothing changed"
    );
}

#[test]
fn reconfig_sasl_check_and_sync_answer_as_zookeeper() {
    both(|client, _| {
        assert_eq!(
            code(client.submit(leave_member_2(), None)),
            Err(ErrorCode::ReconfigDisabled)
        );
        assert_eq!(code(client.submit(Op::Sasl, None)), Ok(Reply::Done));
        assert_eq!(
            client.sync("/missing").unwrap(),
            "/missing",
            "sync echoes any path"
        );
        let stat = client
            .create2("/c", b"v", &open(), CreateMode::Persistent)
            .unwrap()
            .1;
        assert_eq!(client.check("/c", 0).unwrap(), stat);
        assert_eq!(
            client.check("/c", 3).unwrap_err().code(),
            ErrorCode::BadVersion
        );
        assert_eq!(
            client.check("/missing", -1).unwrap_err().code(),
            ErrorCode::NoNode
        );
    });
}

#[test]
fn a_multi_read_leaves_no_watch() {
    both(|client, writer| {
        writer
            .create("/m", b"", &open(), CreateMode::Persistent)
            .unwrap();
        let (watcher, events) = Watcher::channel();
        client
            .multi_read(vec![
                ReadOp::GetData { path: "/m".into() },
                ReadOp::GetChildren { path: "/m".into() },
            ])
            .unwrap();
        // A watch left by the multiRead would fire with these writes.
        client
            .exists("/other", Some(watcher))
            .expect("a watch the test does expect");
        writer.set_data("/m", b"x", -1).unwrap();
        writer
            .create("/m/child", b"", &open(), CreateMode::Persistent)
            .unwrap();
        writer
            .create("/other", b"", &open(), CreateMode::Persistent)
            .unwrap();
        let event = events.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(event.path, "/other", "the only watch is the exists");
        assert!(events.recv_timeout(Duration::from_millis(100)).is_err());
    });
}
