//! Guards against a session's close racing its own in-flight requests (an ephemeral or a watch
//! outliving its session), against multi smuggling ops ZooKeeper cannot put in a multi, and
//! against session id 0 (which ephemeralOwner reads as "persistent").

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use zookeeper_core::server::SessionSink;
use zookeeper_core::*;

/// A session sink that blocks inside `deliver` (so its caller keeps the writer lock) until
/// released: it lets a test line requests up behind a commit.
struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
    entered: AtomicBool,
}

impl SessionSink for Gate {
    fn deliver(&self, _event: WatchedEvent) {
        self.entered.store(true, Ordering::SeqCst);
        let mut closed = self.closed.lock();
        while *closed {
            self.opened.wait(&mut closed);
        }
    }
}

#[test]
fn an_ephemeral_created_while_its_session_closes_is_refused() {
    let (config, _clock) = ServerConfig::with_manual_clock();
    let server = Server::start(config).unwrap();
    let engine = server.engine().clone();
    let admin = Arc::new(server.connect().unwrap());
    let victim = Arc::new(server.connect().unwrap());
    admin
        .create("/t", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .unwrap();
    let gate = Arc::new(Gate {
        closed: Mutex::new(true),
        opened: Condvar::new(),
        entered: AtomicBool::new(false),
    });
    let watcher = engine.open_session(30_000, gate.clone(), None).unwrap();
    let watch = Op::GetData {
        path: "/t".into(),
        watch: true,
    };
    assert!(submit(&engine, &watcher, watch).result.is_ok());

    // A write whose watch delivery blocks while it holds the writer lock.
    let writer = admin.clone();
    let blocked = std::thread::spawn(move || writer.set_data("/t", b"x", -1).unwrap());
    while !gate.entered.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    // Behind it: the victim's close, then the victim's ephemeral create.
    let closing = victim.clone();
    let close = std::thread::spawn(move || closing.close());
    std::thread::sleep(Duration::from_millis(50));
    let creating = victim.clone();
    let create = std::thread::spawn(move || {
        creating.create("/lock", b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
    });
    std::thread::sleep(Duration::from_millis(50));
    *gate.closed.lock() = false;
    gate.opened.notify_all();

    blocked.join().unwrap();
    close.join().unwrap().unwrap();
    let created = create.join().unwrap();
    assert_eq!(created.unwrap_err().code(), ErrorCode::SessionExpired);
    assert_eq!(
        admin.exists("/lock", None).unwrap(),
        None,
        "no ephemeral outlives its session"
    );
}

#[test]
fn watches_added_while_a_session_closes_do_not_outlive_it() {
    let (config, _clock) = ServerConfig::with_manual_clock();
    let server = Server::start(config).unwrap();
    for round in 0..50 {
        let victim = Arc::new(server.connect().unwrap());
        let start = Arc::new(Barrier::new(3));
        let adders: Vec<_> = (0..2)
            .map(|thread| {
                let (victim, start) = (victim.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    for index in 0..200 {
                        let path = format!("/w{round}-{thread}-{index}");
                        if victim
                            .add_watch(&path, Watcher::new(|_| {}), AddWatchMode::Persistent)
                            .is_err()
                        {
                            break;
                        }
                    }
                })
            })
            .collect();
        start.wait();
        victim.close().unwrap();
        for adder in adders {
            adder.join().unwrap();
        }
        assert_eq!(
            server.engine().watch_count(),
            0,
            "round {round}: a closed session kept watches"
        );
    }
}

#[test]
fn a_multi_holds_only_create_delete_set_data_and_check() {
    let (config, _clock) = ServerConfig::with_manual_clock();
    let server = Server::start(config).unwrap();
    let owner = server.connect().unwrap();
    owner.add_auth("digest", b"alice:pw").unwrap();
    let mine = [Acl::new(Perms::ALL, Id::auth())];
    owner
        .create("/locked", b"", &mine, CreateMode::Persistent)
        .unwrap();
    owner
        .create("/locked/precious", b"data", &mine, CreateMode::Persistent)
        .unwrap();
    let stranger = server.connect().unwrap();

    // Another session, straight on the engine, to try what the client API cannot send.
    let session = server
        .engine()
        .open_session(30_000, Arc::new(Gate::open()), None)
        .unwrap();
    let zxid = server.engine().last_zxid();
    let smuggled = [
        Op::DeleteContainer {
            path: "/locked/precious".into(),
        },
        Op::SetAcl {
            path: "/locked".into(),
            acl: Acl::open_unsafe(),
            version: -1,
        },
        Op::GetData {
            path: "/locked".into(),
            watch: false,
        },
        Op::Multi(vec![]),
    ];
    for op in smuggled {
        let error = stranger.multi(vec![op.clone()]).unwrap_err();
        assert_eq!(
            (error.code(), error.multi_results()),
            (ErrorCode::MarshallingError, None),
            "{op:?}"
        );
    }
    // A client's deleteContainer deletes only empty containers.
    let direct = submit(
        server.engine(),
        &session,
        Op::DeleteContainer {
            path: "/locked/precious".into(),
        },
    );
    assert_eq!(direct.result, Err(ErrorCode::BadArguments));
    assert!(owner.exists("/locked/precious", None).unwrap().is_some());
    assert_eq!(server.engine().last_zxid(), zxid, "nothing was committed");
}

/// Runs `op` through the engine's entry point and waits for its answer.
fn submit(
    engine: &server::Engine,
    session: &Arc<server::LocalSession>,
    op: Op,
) -> zookeeper_core::op::Response {
    let (sender, receiver) = crossbeam_channel::bounded(1);
    engine.submit(
        session,
        op,
        Box::new(move |response| drop(sender.send(response))),
    );
    receiver.recv().unwrap()
}

impl Gate {
    fn open() -> Gate {
        Gate {
            closed: Mutex::new(false),
            opened: Condvar::new(),
            entered: AtomicBool::new(false),
        }
    }
}

#[test]
fn no_session_gets_id_zero() {
    // A clock at the epoch would make the time bits of the first session id zero.
    let clock = ManualClock::new(0);
    let server = Server::start(ServerConfig {
        clock: Arc::new(clock),
        ..ServerConfig::default()
    })
    .unwrap();
    let zk = server.connect().unwrap();
    assert_ne!(zk.session_id(), 0);
    let (_, stat) = zk
        .create2("/e", b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
        .unwrap();
    assert_eq!(stat.ephemeral_owner, zk.session_id());
    zk.close().unwrap();
    assert_eq!(server.connect().unwrap().exists("/e", None).unwrap(), None);
}
