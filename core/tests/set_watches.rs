//! Guards against a reconnecting client missing changes: setWatches must fire, at once, every
//! event the client missed since its last zxid and re-register the rest (DataTree.setWatches).

use std::sync::Arc;

use parking_lot::Mutex;
use zookeeper_core::op::{Op, Reply, SetWatchesRequest};
use zookeeper_core::server::{LocalSession, SessionSink, WatchRegistered};
use zookeeper_core::{Acl, CreateMode, EventType, KeeperState, Server, ServerConfig, WatchedEvent};

#[derive(Default)]
struct Recorder(Mutex<Vec<WatchedEvent>>);

impl SessionSink for Recorder {
    fn deliver(&self, event: WatchedEvent) {
        self.0.lock().push(event);
    }
}

fn events(recorder: &Recorder) -> Vec<(EventType, String)> {
    recorder
        .0
        .lock()
        .drain(..)
        .map(|event| (event.event_type, event.path))
        .collect()
}

fn submit(server: &Server, session: &LocalSession, op: Op) -> Vec<(String, WatchRegistered)> {
    let mut registered = Vec::new();
    let response = server
        .engine()
        .call_now(session, op, &mut |path: &str, kind| {
            registered.push((path.to_string(), kind))
        })
        .expect("setWatches runs at once on an idle session");
    assert_eq!(response.result, Ok(Reply::Done));
    registered
}

#[test]
fn set_watches_fires_what_was_missed_and_registers_the_rest() {
    let (config, _clock) = ServerConfig::with_manual_clock();
    let server = Server::start(config).unwrap();
    let writer = server.connect().unwrap();
    let acl = Acl::open_unsafe();
    for path in [
        "/same",
        "/changed",
        "/deleted",
        "/parent",
        "/parent/old",
        "/quiet-parent",
    ] {
        writer
            .create(path, b"", &acl, CreateMode::Persistent)
            .unwrap();
    }
    let seen_zxid = server.engine().last_zxid();
    writer.set_data("/changed", b"new", -1).unwrap();
    writer.delete("/deleted", -1).unwrap();
    writer
        .create("/parent/new", b"", &acl, CreateMode::Persistent)
        .unwrap();
    writer
        .create("/appeared", b"", &acl, CreateMode::Persistent)
        .unwrap();

    let recorder = Arc::new(Recorder::default());
    let session = server
        .engine()
        .open_session(30_000, recorder.clone(), Some("127.0.0.1"))
        .unwrap();
    let request = SetWatchesRequest {
        relative_zxid: seen_zxid,
        data: vec!["/same".into(), "/changed".into(), "/deleted".into()],
        exist: vec!["/appeared".into(), "/still-missing".into()],
        child: vec!["/parent".into(), "/quiet-parent".into()],
        persistent: vec!["/p".into()],
        persistent_recursive: vec!["/r".into()],
    };
    let registered = submit(&server, &session, Op::SetWatches(request));
    assert_eq!(
        events(&recorder),
        vec![
            (EventType::NodeDataChanged, "/changed".to_string()),
            (EventType::NodeDeleted, "/deleted".to_string()),
            (EventType::NodeCreated, "/appeared".to_string()),
            (EventType::NodeChildrenChanged, "/parent".to_string()),
        ]
    );
    assert_eq!(
        registered,
        vec![
            ("/same".to_string(), WatchRegistered::Data),
            ("/still-missing".to_string(), WatchRegistered::Exist),
            ("/quiet-parent".to_string(), WatchRegistered::Child),
            ("/p".to_string(), WatchRegistered::Persistent),
            ("/r".to_string(), WatchRegistered::PersistentRecursive),
        ]
    );
    let missed: Vec<_> = recorder
        .0
        .lock()
        .iter()
        .map(|e| (e.state, e.zxid))
        .collect();
    assert!(missed
        .iter()
        .all(|(state, zxid)| *state == KeeperState::SyncConnected && *zxid == -1));

    // The re-registered watches fire on later changes, once.
    writer.set_data("/same", b"x", -1).unwrap();
    writer
        .create("/still-missing", b"", &acl, CreateMode::Persistent)
        .unwrap();
    writer
        .create("/quiet-parent/c", b"", &acl, CreateMode::Persistent)
        .unwrap();
    writer
        .create("/r", b"", &acl, CreateMode::Persistent)
        .unwrap();
    writer
        .create("/r/deep", b"", &acl, CreateMode::Persistent)
        .unwrap();
    writer.set_data("/same", b"y", -1).unwrap();
    assert_eq!(
        events(&recorder),
        vec![
            (EventType::NodeDataChanged, "/same".to_string()),
            (EventType::NodeCreated, "/still-missing".to_string()),
            (EventType::NodeChildrenChanged, "/quiet-parent".to_string()),
            (EventType::NodeCreated, "/r".to_string()),
            (EventType::NodeCreated, "/r/deep".to_string()),
        ]
    );
}
