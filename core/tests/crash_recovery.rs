//! Guards against an acknowledged write lost in a crash, and against a start-up that fails on a
//! crash a real disk can produce (or starts anyway on damage a crash cannot explain).

#[path = "crash_recovery/capture.rs"]
mod capture;
#[path = "crash_recovery/model.rs"]
mod model;
// Damage a crash cannot explain: start-up must refuse it, naming the file.
#[path = "crash_recovery/corruption.rs"]
mod corruption;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use zookeeper_core::storage::{Crash, FakeDisk};
use zookeeper_core::{
    Acl, Client, ConnectOptions, CreateMode, ErrorCode, EventType, ManualClock, Op, Server, Watcher,
};

use capture::CaptureDisk;
use model::{check_image, config, read_state, restart, Expect, Node, State};

/// Default seeds: each restart scans the 4 MiB preallocated log segment, slow in debug builds.
const SEEDS: u64 = 8;
const STEPS_PER_SEED: usize = 12;
const KEYS: u64 = 5;

/// The seeds to run: `CRASH_SEED=n` replays one, `CRASH_SEEDS=n` runs 1..=n (default 8).
fn seeds() -> std::ops::RangeInclusive<u64> {
    let var = |name| {
        std::env::var(name)
            .ok()
            .and_then(|value: String| value.parse().ok())
    };
    match (var("CRASH_SEED"), var("CRASH_SEEDS")) {
        (Some(seed), _) => seed..=seed,
        (None, Some(count)) => 1..=count,
        (None, None) => 1..=SEEDS,
    }
}

/// splitmix64: small, seedable, and the same on every machine, so a failing seed replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// The test's side of a workload: the clients and the acknowledged history the crash hook
/// checks images against.
struct Workload {
    owner: Client,
    ephemerals: Client,
    expect: Arc<Mutex<Expect>>,
}

/// One write and what the model says it does.
enum Outcome {
    /// It succeeds and leaves this tree; these znodes' zxids are read back after the ack.
    Changes(State, Vec<String>),
    /// It fails with this code and changes nothing.
    Fails(ErrorCode),
}

impl Workload {
    /// Runs one write: publishes what it may leave (for a crash while it is in flight), runs
    /// it, checks its answer against the model, then records it as acknowledged.
    fn write(&self, label: &str, outcome: Outcome, run: impl FnOnce() -> Result<(), ErrorCode>) {
        let in_flight = match &outcome {
            Outcome::Changes(state, _) => Some(state.clone()),
            Outcome::Fails(_) => None,
        };
        self.expect.lock().in_flight = in_flight;
        let answer = run();
        let mut expect = self.expect.lock();
        expect.in_flight = None;
        match outcome {
            Outcome::Changes(mut state, touched) => {
                assert_eq!(answer, Ok(()), "{label}");
                let previous_max = expect
                    .current()
                    .values()
                    .map(|node| node.mzxid)
                    .max()
                    .unwrap_or(0);
                for path in touched {
                    let Some(node) = state.get_mut(&path) else {
                        continue;
                    };
                    let (_, stat) = self.owner.get_data(&path, None).unwrap();
                    assert!(
                        stat.mzxid > previous_max,
                        "{label}: {path}'s mzxid {:#x} is not above {previous_max:#x}",
                        stat.mzxid
                    );
                    node.czxid = stat.czxid;
                    node.mzxid = stat.mzxid;
                }
                expect.states.push(state);
            }
            Outcome::Fails(code) => {
                assert_eq!(answer, Err(code), "{label}");
                let unchanged = expect.current().clone();
                expect.states.push(unchanged);
            }
        }
    }

    fn current(&self) -> State {
        self.expect.lock().current().clone()
    }
}

fn fresh(data: Option<&[u8]>) -> Node {
    Node {
        data: data.map(<[u8]>::to_vec),
        version: 0,
        czxid: 0,
        mzxid: 0,
    }
}

fn set(state: &mut State, path: &str, data: Option<&[u8]>) {
    let node = state.get_mut(path).expect("set only what exists");
    node.data = data.map(<[u8]>::to_vec);
    node.version += 1;
    node.mzxid = 0;
}

fn seq_name(state: &State) -> String {
    let made = state
        .keys()
        .filter(|path| path.starts_with("/seq/"))
        .count();
    format!("/seq/q-{made:010}")
}

fn code<T>(result: Result<T, zookeeper_core::Error>) -> Result<(), ErrorCode> {
    result.map(drop).map_err(|error| error.code())
}

/// Picks one write at random, predicts it from the model, and runs it.
fn random_write(work: &Workload, rng: &mut Rng, step: usize) {
    let open = Acl::open_unsafe();
    let state = work.current();
    let key = format!("/w/k{}", rng.below(KEYS));
    // One write in five carries null data, which must survive the log and snapshots as null.
    let data = format!("s{step}-{}", rng.below(1000)).into_bytes();
    let data = (rng.below(5) != 0).then_some(data);
    let data = data.as_deref();
    let label = format!("step {step}");
    let exists = state.get(&key).cloned();
    match rng.below(7) {
        0 => {
            let outcome = match &exists {
                Some(_) => Outcome::Fails(ErrorCode::NodeExists),
                None => {
                    let mut next = state.clone();
                    next.insert(key.clone(), fresh(data));
                    Outcome::Changes(next, vec![key.clone()])
                }
            };
            work.write(&label, outcome, || {
                code(work.owner.create(&key, data, &open, CreateMode::Persistent))
            });
        }
        1 => {
            // setData with the right version, any version (-1) or a stale one.
            let choice = rng.below(3);
            let (version, outcome) = match &exists {
                None => (-1, Outcome::Fails(ErrorCode::NoNode)),
                Some(node) if choice == 2 => {
                    (node.version + 1, Outcome::Fails(ErrorCode::BadVersion))
                }
                Some(node) => {
                    let mut next = state.clone();
                    set(&mut next, &key, data);
                    let version = if choice == 0 { node.version } else { -1 };
                    (version, Outcome::Changes(next, vec![key.clone()]))
                }
            };
            work.write(&label, outcome, || {
                code(work.owner.set_data(&key, data, version))
            });
        }
        2 => {
            let (version, outcome) = match &exists {
                None => (-1, Outcome::Fails(ErrorCode::NoNode)),
                Some(node) => {
                    let mut next = state.clone();
                    next.remove(&key);
                    let version = if rng.below(2) == 0 { node.version } else { -1 };
                    (version, Outcome::Changes(next, vec![]))
                }
            };
            work.write(&label, outcome, || code(work.owner.delete(&key, version)));
        }
        3 => {
            let path = seq_name(&state);
            let mut next = state.clone();
            next.insert(path.clone(), fresh(data));
            work.write(&label, Outcome::Changes(next, vec![path.clone()]), || {
                let made = work
                    .owner
                    .create("/seq/q-", data, &open, CreateMode::PersistentSequential)
                    .map_err(|error| error.code())?;
                assert_eq!(made, path, "{label}: the sequence number");
                Ok(())
            });
        }
        4 => {
            // An ephemeral of the second session: created, or deleted when it exists.
            let path = format!("/eph/e{}", rng.below(3));
            let mut next = state.clone();
            if next.remove(&path).is_some() {
                work.write(&label, Outcome::Changes(next, vec![]), || {
                    code(work.ephemerals.delete(&path, -1))
                });
            } else {
                next.insert(path.clone(), fresh(data));
                work.write(&label, Outcome::Changes(next, vec![path.clone()]), || {
                    code(
                        work.ephemerals
                            .create(&path, data, &open, CreateMode::Ephemeral),
                    )
                });
            }
        }
        5 => {
            // A multi that succeeds: a create, a setData and a sequential create in one Txn.
            let other = format!("/w/k{}", rng.below(KEYS));
            let mut ops = Vec::new();
            let mut next = state.clone();
            let mut touched = Vec::new();
            if exists.is_none() {
                ops.push(Op::create(&key, data, &open, CreateMode::Persistent));
                next.insert(key.clone(), fresh(data));
                touched.push(key.clone());
            }
            if next.contains_key(&other) {
                ops.push(Op::set_data(&other, b"multi", -1));
                set(&mut next, &other, Some(b"multi"));
                touched.push(other.clone());
            }
            let path = seq_name(&next);
            ops.push(Op::create(
                "/seq/q-",
                data,
                &open,
                CreateMode::PersistentSequential,
            ));
            next.insert(path.clone(), fresh(data));
            touched.push(path);
            work.write(&label, Outcome::Changes(next, touched), || {
                code(work.owner.multi(ops))
            });
        }
        _ => {
            // A multi that fails on its last op: nothing of it may appear, before or after a
            // crash.
            let ops = vec![
                Op::create("/seq/q-", data, &open, CreateMode::PersistentSequential),
                Op::set_data("/w", b"never", -1),
                Op::check("/w", 99),
            ];
            work.write(&label, Outcome::Fails(ErrorCode::BadVersion), || {
                code(work.owner.multi(ops))
            });
        }
    }
}

/// Creates the workload's parents as acknowledged writes of their own.
fn setup(work: &Workload) {
    let open = Acl::open_unsafe();
    for parent in ["/w", "/seq", "/eph"] {
        let mut next = work.current();
        next.insert(parent.into(), fresh(Some(b"")));
        work.write(parent, Outcome::Changes(next, vec![parent.into()]), || {
            code(
                work.owner
                    .create(parent, b"", &open, CreateMode::Persistent),
            )
        });
    }
}

#[test]
fn every_crash_image_keeps_every_acknowledged_write_and_starts() {
    let started = Instant::now();
    let checked = Arc::new(AtomicUsize::new(0));
    let captured = Arc::new(AtomicUsize::new(0));
    let seeds = seeds();
    for seed in seeds.clone() {
        let expect = Arc::new(Mutex::new(Expect::default()));
        let capturing = Arc::new(AtomicBool::new(true));
        let hook: capture::Hook = {
            let expect = expect.clone();
            let capturing = capturing.clone();
            let checked = checked.clone();
            let captured = captured.clone();
            let last_checked = Mutex::new([None; 2]);
            Arc::new(move |operation, disk: &FakeDisk| {
                if !capturing.load(Ordering::Acquire) {
                    return;
                }
                captured.fetch_add(2, Ordering::Relaxed);
                let expect = expect.lock();
                let moment = (expect.acknowledged(), expect.in_flight.is_some());
                let mut last = last_checked.lock();
                for (kind, (crash, image)) in capture::images(disk).into_iter().enumerate() {
                    // By the Disk contract only syncs change what a clean crash keeps, and only
                    // writes and syncs what a torn one keeps: an image equal to one already
                    // checked against the same acknowledged writes is not checked again.
                    let changes = match crash {
                        Crash::Clean => matches!(operation, "sync" | "sync_dir"),
                        Crash::TearLastWrite => {
                            matches!(operation, "write_at" | "set_len" | "sync" | "sync_dir")
                        }
                    };
                    if !changes && last[kind] == Some(moment) {
                        continue;
                    }
                    last[kind] = Some(moment);
                    let number = checked.fetch_add(1, Ordering::Relaxed);
                    let label = format!(
                        "seed {seed}, image {number} ({crash:?} after {operation}, {} acknowledged)",
                        expect.acknowledged()
                    );
                    check_image(&image, &expect, &label);
                }
            })
        };
        let fake = FakeDisk::new();
        let clock = ManualClock::default();
        let server = Server::start(config(
            Arc::new(CaptureDisk::new(fake.clone(), hook)),
            &clock,
        ))
        .unwrap();
        let work = Workload {
            owner: server.connect().unwrap(),
            ephemerals: server.connect().unwrap(),
            expect: expect.clone(),
        };
        setup(&work);
        let mut rng = Rng(seed);
        for step in 0..STEPS_PER_SEED {
            random_write(&work, &mut rng, step);
            if step % 3 == 2 {
                // Snapshots (and purges of old ones) happen here, between writes.
                server.tick();
            }
        }
        // What the clients' and server's drops write is not part of the workload.
        capturing.store(false, Ordering::Release);
        // The live tree, zxids and all, is what the model says.
        assert_eq!(read_state(&work.owner), work.current(), "seed {seed}");
    }
    let checked = checked.load(Ordering::Relaxed);
    let captured = captured.load(Ordering::Relaxed);
    eprintln!(
        "seeds {seeds:?}: {captured} crash images captured, {checked} distinct ones restarted \
         and checked, in {:?}",
        started.elapsed()
    );
    assert!(checked > 100, "only {checked} images checked");
}

/// A server on a plain fake disk with the workload's clients and parents, after `steps`
/// random writes.
fn plain_workload(seed: u64, steps: usize) -> (FakeDisk, Server, Workload) {
    let fake = FakeDisk::new();
    let clock = ManualClock::default();
    let server = Server::start(config(Arc::new(fake.clone()), &clock)).unwrap();
    let work = Workload {
        owner: server.connect().unwrap(),
        ephemerals: server.connect().unwrap(),
        expect: Arc::new(Mutex::new(Expect::default())),
    };
    setup(&work);
    let mut rng = Rng(seed);
    for step in 0..steps {
        random_write(&work, &mut rng, step);
        if step % 3 == 2 {
            server.tick();
        }
    }
    (fake, server, work)
}

#[test]
fn a_failed_fsync_stops_writes_and_keeps_every_acknowledged_one() {
    for seed in 1..=3 {
        let (fake, server, work) = plain_workload(seed, 10);
        fake.fail_sync_after(1);
        let mut next = work.current();
        next.insert("/w/failing".into(), fresh(Some(b"maybe")));
        // A write that answered an error may or may not have reached the disk.
        work.expect.lock().in_flight = Some(next);
        let open = Acl::open_unsafe();
        let answer = work
            .owner
            .create("/w/failing", b"maybe", &open, CreateMode::Persistent);
        // Its outcome is unknown (the entry may be durable, and would apply after a restart):
        // ConnectionLoss, as for any write whose member stopped before answering.
        assert_eq!(
            answer.unwrap_err().code(),
            ErrorCode::ConnectionLoss,
            "seed {seed}"
        );
        // Fail-stop: no later write is accepted, not even one that needs no new file.
        assert_eq!(
            code(work.owner.set_data("/w", b"later", -1)),
            Err(ErrorCode::SystemError)
        );
        assert_eq!(
            code(
                work.owner
                    .create("/w/later", b"", &open, CreateMode::Persistent)
            ),
            Err(ErrorCode::SystemError)
        );
        server.tick();
        for (crash, image) in capture::images(&fake) {
            check_image(
                &image,
                &work.expect.lock(),
                &format!("seed {seed}, {crash:?} after a failed fsync"),
            );
        }
    }
}

/// A full disk is a storage failure like a failed fsync: the write that meets it answers
/// ConnectionLoss (its outcome is unknown), the member takes no more writes (SystemError), and
/// nothing acknowledged is lost.
#[test]
fn a_full_disk_stops_writes_and_keeps_every_acknowledged_one() {
    for seed in 1..=2 {
        let (fake, _server, work) = plain_workload(seed, 10);
        // No room past what the files already take: appends fit in the preallocated segment
        // until it must grow.
        let used = fake.used_bytes();
        fake.set_space(used);
        let open = Acl::open_unsafe();
        let big = vec![7u8; 1_000_000];
        let mut refused = None;
        for index in 0..16 {
            let path = format!("/w/big{index}");
            let mut next = work.current();
            next.insert(path.clone(), fresh(Some(&big)));
            work.expect.lock().in_flight = Some(next.clone());
            match work
                .owner
                .create(&path, &big, &open, CreateMode::Persistent)
            {
                Ok(_) => {
                    let (_, stat) = work.owner.get_data(&path, None).unwrap();
                    let node = next.get_mut(&path).expect("just inserted");
                    node.czxid = stat.czxid;
                    node.mzxid = stat.mzxid;
                    let mut expect = work.expect.lock();
                    expect.in_flight = None;
                    expect.states.push(next);
                }
                // The refused write may or may not have reached the disk: it stays in flight.
                Err(error) => {
                    refused = Some(error.code());
                    break;
                }
            }
        }
        assert_eq!(
            refused,
            Some(ErrorCode::ConnectionLoss),
            "seed {seed}: the disk never filled"
        );
        assert_eq!(
            code(work.owner.set_data("/w", b"later", -1)),
            Err(ErrorCode::SystemError)
        );
        // Reads go on.
        assert!(work.owner.exists("/w", None).unwrap().is_some());
        for (crash, image) in capture::images(&fake) {
            check_image(
                &image,
                &work.expect.lock(),
                &format!("seed {seed}, {crash:?} on a full disk"),
            );
        }
    }
}

#[test]
fn an_abandoned_sessions_ephemeral_survives_a_restart_until_its_timeout() {
    let fake = FakeDisk::new();
    let clock = ManualClock::default();
    let server = Server::start(config(Arc::new(fake.clone()), &clock)).unwrap();
    let owner = server
        .connect_with(ConnectOptions {
            session_timeout_ms: 10_000,
            ..ConnectOptions::default()
        })
        .unwrap();
    owner
        .create("/lock", b"held", &Acl::open_unsafe(), CreateMode::Ephemeral)
        .unwrap();
    server.tick();
    // Power fails now: the owner never reconnects.
    let image = fake.crash(Crash::Clean);

    let (started, clock) = restart(&image);
    let restarted = started.unwrap();
    let observer = restarted.connect().unwrap();
    let (watcher, events) = Watcher::channel();
    let stat = observer.exists("/lock", Some(watcher)).unwrap();
    assert_eq!(
        stat.map(|stat| stat.ephemeral_owner),
        Some(owner.session_id()),
        "the ephemeral and its owner survive the restart"
    );
    // Recovered sessions get a whole timeout from start-up to come back.
    clock.advance(5_000);
    restarted.tick();
    assert!(observer.exists("/lock", None).unwrap().is_some());
    clock.advance(5_000 + 2 * 2_000);
    restarted.tick();
    let event = events
        .recv_timeout(Duration::from_secs(5))
        .expect("NodeDeleted once the session expires");
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeDeleted, "/lock")
    );
    assert!(observer.exists("/lock", None).unwrap().is_none());
    drop(owner);
}
