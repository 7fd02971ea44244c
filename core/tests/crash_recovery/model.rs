//! What a client was told: the znodes every acknowledged write left behind, and the checks a
//! server recovered from a crash image must pass against them.

use std::collections::BTreeMap;
use std::sync::Arc;

use zookeeper_core::storage::{Crash, Disk, FakeDisk};
use zookeeper_core::{Acl, Client, CreateMode, ManualClock, Server, ServerConfig};

/// Wall time of a restarted machine: later than the crashed one's, so new session ids differ
/// from the recovered ones as they would after a real restart.
const RESTART_WALL_MS: i64 = 1_767_225_600_000 + 3_600_000;

/// One znode as acknowledged. A zxid of 0 means not known yet: the write that set it is in
/// flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub data: Option<Vec<u8>>,
    pub version: i32,
    pub czxid: i64,
    pub mzxid: i64,
}

/// Every znode outside /zookeeper, by path.
pub type State = BTreeMap<String, Node>;

/// The acknowledged history: `states[n]` is the tree after `n` acknowledged writes, so
/// `acknowledged()` is the number of writes a client was told succeeded (or failed for good).
#[derive(Debug)]
pub struct Expect {
    pub states: Vec<State>,
    /// The tree the write in flight would leave, if it changes anything: a crash may or may not
    /// keep it.
    pub in_flight: Option<State>,
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            states: vec![State::new()],
            in_flight: None,
        }
    }
}

impl Expect {
    pub fn acknowledged(&self) -> usize {
        self.states.len() - 1
    }

    pub fn current(&self) -> &State {
        self.states.last().expect("the empty tree is always there")
    }
}

/// A data directory on `disk` with snapshots every 5 Txns, keeping 2.
pub fn config(disk: Arc<dyn Disk>, clock: &ManualClock) -> ServerConfig {
    ServerConfig {
        data_dir: Some("/data".into()),
        disk,
        snap_count: 5,
        snapshots_retained: 2,
        clock: Arc::new(clock.clone()),
        ..ServerConfig::default()
    }
}

/// A server restarted on `image`, as the machine would after power came back.
pub fn restart(image: &FakeDisk) -> (Result<Server, String>, ManualClock) {
    let clock = ManualClock::new(RESTART_WALL_MS);
    let started =
        Server::start(config(Arc::new(image.clone()), &clock)).map_err(|error| error.to_string());
    (started, clock)
}

/// Every znode but /zookeeper's, with data, version and zxids.
pub fn read_state(client: &Client) -> State {
    let mut state = State::new();
    let mut stack = vec!["/".to_string()];
    while let Some(parent) = stack.pop() {
        for child in client.get_children(&parent, None).unwrap() {
            let path = if parent == "/" {
                format!("/{child}")
            } else {
                format!("{parent}/{child}")
            };
            if path == "/zookeeper" {
                continue;
            }
            let (data, stat) = client.get_data(&path, None).unwrap();
            state.insert(
                path.clone(),
                Node {
                    data,
                    version: stat.version,
                    czxid: stat.czxid,
                    mzxid: stat.mzxid,
                },
            );
            stack.push(path);
        }
    }
    state
}

/// Why `found` is not `expected`, if it is not: same znodes, data and versions; known zxids
/// equal; a znode the in-flight write touched has a zxid above every acknowledged one.
pub fn mismatch(found: &State, expected: &State) -> Option<String> {
    let found_paths: Vec<_> = found.keys().collect();
    let expected_paths: Vec<_> = expected.keys().collect();
    if found_paths != expected_paths {
        return Some(format!(
            "znodes {found_paths:?}, expected {expected_paths:?}"
        ));
    }
    let known_max = expected
        .values()
        .map(|node| node.mzxid.max(node.czxid))
        .max()
        .unwrap_or(0);
    for (path, node) in expected {
        let got = &found[path];
        if got.data != node.data || got.version != node.version {
            return Some(format!("{path}: {got:?}, expected {node:?}"));
        }
        for (what, got, want) in [
            ("czxid", got.czxid, node.czxid),
            ("mzxid", got.mzxid, node.mzxid),
        ] {
            if want != 0 && got != want {
                return Some(format!("{path}: {what} {got:#x}, expected {want:#x}"));
            }
            if want == 0 && got <= known_max {
                return Some(format!(
                    "{path}: {what} {got:#x} of the in-flight write is not above {known_max:#x}"
                ));
            }
        }
    }
    None
}

/// Restarts on `image` and checks it: start-up succeeds, the tree is what the acknowledged
/// writes left (or that plus the in-flight write), and the store takes one more write that
/// survives another crash.
pub fn check_image(image: &FakeDisk, expect: &Expect, label: &str) {
    let (started, _clock) = restart(image);
    let server = started.unwrap_or_else(|error| panic!("{label}: start-up failed: {error}"));
    let client = server.connect().unwrap();
    let found = read_state(&client);
    let acknowledged = expect.current();
    let kept_in_flight = match mismatch(&found, acknowledged) {
        None => false,
        Some(why) => match &expect.in_flight {
            Some(in_flight) if mismatch(&found, in_flight).is_none() => true,
            _ => panic!(
                "{label}: after {} acknowledged writes: {why}",
                expect.acknowledged()
            ),
        },
    };

    // The recovered store must take new writes, and keep them through the next crash.
    let (_, stat) = client
        .create2(
            "/appended",
            b"after",
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .unwrap_or_else(|error| panic!("{label}: a write after recovery failed: {error}"));
    let mut with_appended = found.clone();
    with_appended.insert(
        "/appended".into(),
        Node {
            data: Some(b"after".to_vec()),
            version: 0,
            czxid: stat.czxid,
            mzxid: stat.mzxid,
        },
    );
    let second = image.crash(Crash::Clean);
    drop(client);
    drop(server);
    let (started, _clock) = restart(&second);
    let server = started.unwrap_or_else(|error| panic!("{label}: second start-up failed: {error}"));
    let client = server.connect().unwrap();
    let again = read_state(&client);
    if let Some(why) = mismatch(&again, &with_appended) {
        panic!(
            "{label} (in-flight kept: {kept_in_flight}): after a write and a second crash: {why}"
        );
    }
}
