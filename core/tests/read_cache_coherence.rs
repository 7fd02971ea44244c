//! Guards the read cache's promise under concurrency, by seed: several writer sessions change a
//! small subtree while one caching reader reads data, existence and children, writes itself,
//! and rides out a reconnect and a session expiry. No cached answer may be older than a change
//! the reader was bound to see: one completed before the reader's `sync` (whose reply follows
//! every event of earlier changes), or the reader's own last write.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::proxy::Proxy;
use zookeeper_core::op::Reply;
use zookeeper_core::random::SplitMix64;
use zookeeper_core::{
    Acl, Client, ConnectOptions, CreateMode, Ensemble, ErrorCode, ManualClock, Op, ReadCacheConfig,
    Server,
};

/// Znodes /p/0 .. /p/{PATHS-1}, each possibly with one child /p/i/c.
const PATHS: u64 = 5;
const WRITERS: usize = 3;
const READS: usize = 240;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Data,
    Exists,
    Children,
}

/// What a read showed of a znode: its incarnation (czxid) and how far it had got (mzxid for
/// data and existence, pzxid for children); None when it did not exist.
type Seen = Option<(i64, i64)>;

fn op(kind: Kind, path: &str) -> Op {
    let path = path.to_string();
    match kind {
        Kind::Data => Op::GetData { path, watch: false },
        Kind::Exists => Op::Exists { path, watch: false },
        Kind::Children => Op::GetChildren { path, watch: false },
    }
}

fn seen(kind: Kind, reply: Result<Reply, zookeeper_core::Error>) -> Result<Seen, ErrorCode> {
    match reply {
        Ok(Reply::Data { stat, .. }) | Ok(Reply::Exists(Some(stat))) => {
            Ok(Some((stat.czxid, stat.mzxid)))
        }
        Ok(Reply::Children { children, stat }) => {
            assert_eq!(children.len(), stat.num_children as usize, "{kind:?}");
            Ok(Some((stat.czxid, stat.pzxid)))
        }
        Ok(Reply::Exists(None)) => Ok(None),
        Ok(other) => panic!("{kind:?} answered {other:?}"),
        Err(error) if error.code() == ErrorCode::NoNode => Ok(None),
        Err(error) => Err(error.code()),
    }
}

/// The truth now: a linearizable read by a session without a cache.
fn truth(client: &Client, kind: Kind, path: &str) -> Seen {
    seen(kind, client.read_linearizable(op(kind, path), None)).expect("the truth is readable")
}

fn parent_pzxid(truth_client: &Client) -> i64 {
    truth(truth_client, Kind::Children, "/p").unwrap().1
}

/// Asserts that `answer`, read after `floor` was true, is not older than `floor`.
/// `ceiling` was read after the answer; `parent_before` is /p's pzxid read before `floor`.
fn assert_not_older(what: &str, floor: Seen, answer: Seen, ceiling: Seen, parent_before: i64) {
    let fresh = match (floor, answer) {
        (Some((incarnation, reached)), Some((seen_incarnation, seen_reached))) => {
            seen_incarnation > incarnation
                || (seen_incarnation == incarnation && seen_reached >= reached)
        }
        // Gone since: unless the same incarnation still lives after the answer.
        (Some((incarnation, _)), None) => ceiling.is_none_or(|(after, _)| after != incarnation),
        // Absent then, so what the answer shows was created later.
        (None, Some((seen_incarnation, _))) => seen_incarnation > parent_before,
        (None, None) => true,
    };
    assert!(
        fresh,
        "{what}: cached {answer:?} is older than {floor:?} (then {ceiling:?}, /p pzxid {parent_before})"
    );
}

fn cached() -> ConnectOptions {
    ConnectOptions {
        // Far fewer entries than the 3 kinds of 5 znodes and 5 children, so evictions happen
        // even while writers keep invalidating (at 8 a run once ended with none).
        read_cache: Some(ReadCacheConfig {
            entries_max: 4,
            bytes_max: 1 << 20,
            ..ReadCacheConfig::default()
        }),
        session_timeout_ms: 4_000,
        ..ConnectOptions::default()
    }
}

fn random_path(random: &mut SplitMix64) -> String {
    let znode = format!("/p/{}", random.below(PATHS));
    if random.chance_ppm(300_000) {
        format!("{znode}/c")
    } else {
        znode
    }
}

/// One random change; failures (NoNode, NodeExists, NotEmpty) are part of the game.
fn write(client: &Client, random: &mut SplitMix64) -> Result<(), zookeeper_core::Error> {
    let path = random_path(random);
    let data = random.next_u64().to_be_bytes();
    match random.below(3) {
        0 => client
            .create(
                &path,
                &data[..],
                &Acl::open_unsafe(),
                CreateMode::Persistent,
            )
            .map(drop),
        1 => client.set_data(&path, &data[..], -1).map(drop),
        _ => client.delete(&path, -1),
    }
}

/// Writers changing /p until stopped.
struct Writers {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Writers {
    fn start(clients: Vec<Client>, seed: u64) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = clients
            .into_iter()
            .enumerate()
            .map(|(index, client)| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut random = SplitMix64::new(seed ^ (index as u64 + 1) << 32);
                    while !stop.load(Ordering::Relaxed) {
                        let _ = write(&client, &mut random);
                        std::thread::sleep(Duration::from_micros(300));
                    }
                })
            })
            .collect();
        Writers { stop, threads }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().unwrap();
        }
    }
}

/// A disruption the run goes through a third and two thirds of the way in.
trait Disrupt {
    /// The reader's connection breaks and comes back (its session lives on).
    fn reconnect(&self, reader: &Client);
    /// The reader's session expires; returns a new caching reader.
    fn expire(&self, reader: Client) -> Client;
}

/// Reads with the caching `reader`, checked against `truth_client`; disruptions from `disrupt`.
fn run(seed: u64, mut reader: Client, truth_client: &Client, disrupt: &dyn Disrupt) {
    let mut random = SplitMix64::new(seed);
    let (mut checked, mut own) = (0, 0);
    // Hits and evictions over every reader of the run (the expiry replaces it).
    let (mut hits, mut evictions) = (0, 0);
    for round in 0..READS {
        if round == READS / 3 {
            disrupt.reconnect(&reader);
        }
        if round == 2 * READS / 3 {
            let stats = reader.read_cache_stats().unwrap();
            (hits, evictions) = (hits + stats.hits, evictions + stats.evictions);
            reader = disrupt.expire(reader);
        }
        let outcome = if random.chance_ppm(250_000) {
            own += 1;
            own_write(&reader, truth_client, &mut random)
        } else {
            checked += 1;
            others_writes(&reader, truth_client, &mut random)
        };
        match outcome {
            Ok(()) => {}
            // The reader is between connections: the cache serves nothing then, so there is
            // nothing to check.
            Err(ErrorCode::ConnectionLoss) => std::thread::sleep(Duration::from_millis(5)),
            Err(code) => panic!("round {round}: the reader failed with {code:?}"),
        }
    }
    let stats = reader.read_cache_stats().unwrap();
    (hits, evictions) = (hits + stats.hits, evictions + stats.evictions);
    assert!(
        checked > 100 && own > 20,
        "{checked} checked, {own} own writes"
    );
    // Not a check of coherence but of the run's reach: it must have exercised both.
    assert!(
        hits > 0 && evictions > 0,
        "the cache served {hits} and evicted {evictions} (last reader: {stats:?})"
    );
}

/// A change by another session, completed before the reader's sync, shows in its cached read.
fn others_writes(
    reader: &Client,
    truth_client: &Client,
    random: &mut SplitMix64,
) -> Result<(), ErrorCode> {
    let (kind, path) = match random.below(3) {
        0 => (Kind::Data, random_path(random)),
        1 => (Kind::Exists, random_path(random)),
        _ if random.chance_ppm(300_000) => (Kind::Children, "/p".to_string()),
        _ => (Kind::Children, format!("/p/{}", random.below(PATHS))),
    };
    let parent_before = parent_pzxid(truth_client);
    let floor = truth(truth_client, kind, &path);
    reader.sync("/").map_err(|error| error.code())?;
    // Twice: the second is the cache's answer when the first filled it.
    for _ in 0..2 {
        let answer = seen(kind, reader.submit(op(kind, &path), None))?;
        let ceiling = truth(truth_client, kind, &path);
        assert_not_older(
            &format!("{kind:?} {path}"),
            floor,
            answer,
            ceiling,
            parent_before,
        );
    }
    Ok(())
}

/// The reader's own successful write shows in its next reads, without a sync: the znode's and,
/// for a create or delete, the parent's.
fn own_write(
    reader: &Client,
    truth_client: &Client,
    random: &mut SplitMix64,
) -> Result<(), ErrorCode> {
    let path = random_path(random);
    let parent = path.rsplit_once('/').unwrap().0.to_string();
    // Warm the cache with what the write will change; without the parent's children at
    // times, as then no child watch's event tells the reader of its own create or delete.
    let mut warm = vec![
        (Kind::Data, &path),
        (Kind::Exists, &path),
        (Kind::Data, &parent),
        (Kind::Exists, &parent),
    ];
    if random.chance_ppm(500_000) {
        warm.push((Kind::Children, &parent));
    }
    for (kind, at) in warm {
        seen(kind, reader.submit(op(kind, at), None))?;
    }
    let parent_before = truth(truth_client, Kind::Children, &parent).map_or(0, |seen| seen.1);
    let data = random.next_u64().to_be_bytes();
    let written: Seen = match random.below(3) {
        0 => match reader.create2(
            &path,
            &data[..],
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        ) {
            Ok((_, stat)) => Some((stat.czxid, stat.mzxid)),
            Err(error) => return ignore(error),
        },
        1 => match reader.set_data(&path, &data[..], -1) {
            Ok(stat) => Some((stat.czxid, stat.mzxid)),
            Err(error) => return ignore(error),
        },
        _ => match reader.delete(&path, -1) {
            Ok(()) => None,
            Err(error) => return ignore(error),
        },
    };
    for kind in [Kind::Data, Kind::Exists] {
        let answer = seen(kind, reader.submit(op(kind, &path), None))?;
        let ceiling = truth(truth_client, kind, &path);
        assert_not_older(
            &format!("own write, then {kind:?} {path}"),
            written,
            answer,
            ceiling,
            parent_before,
        );
    }
    // A create or delete moved the parent's pzxid past what it was before the write, and
    // every answer about the parent carries its Stat.
    if written.is_none_or(|(incarnation, reached)| incarnation == reached) {
        for kind in [Kind::Data, Kind::Exists, Kind::Children] {
            let stat = match reader.submit(op(kind, &parent), None) {
                Ok(Reply::Data { stat, .. })
                | Ok(Reply::Exists(Some(stat)))
                | Ok(Reply::Children { stat, .. }) => stat,
                // The parent went since (another writer): nothing cached to compare.
                Ok(Reply::Exists(None)) => continue,
                Err(error) if error.code() == ErrorCode::NoNode => continue,
                Err(error) => return Err(error.code()),
                Ok(other) => panic!("{kind:?} answered {other:?}"),
            };
            assert!(
                stat.pzxid > parent_before,
                "own write on {path}: {kind:?} {parent} answered pzxid {}, not past {parent_before}",
                stat.pzxid
            );
        }
    }
    Ok(())
}

fn ignore(error: zookeeper_core::Error) -> Result<(), ErrorCode> {
    match error.code() {
        ErrorCode::NoNode | ErrorCode::NodeExists | ErrorCode::NotEmpty => Ok(()),
        code => Err(code),
    }
}

fn prepare(client: &Client) {
    client
        .create("/p", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .unwrap();
}

/// A single server in this process: the session expires while detached.
struct InProcess<'a> {
    server: &'a Server,
    clock: &'a ManualClock,
}

impl Disrupt for InProcess<'_> {
    fn reconnect(&self, _reader: &Client) {
        // A single in-process server never drops its clients: the ensemble run covers it.
    }

    fn expire(&self, reader: Client) -> Client {
        reader.set_attached(false);
        self.clock.advance(60_000);
        self.server.tick();
        common::wait_for("the reader's session to expire", || {
            reader.state().is_terminal()
        });
        self.server.connect_with(cached()).unwrap()
    }
}

#[test]
fn in_process_cached_reads_are_never_older_than_what_the_reader_was_told() {
    for seed in [1, 2, 3] {
        let (server, clock) = common::server();
        let truth_client = server.connect().unwrap();
        prepare(&truth_client);
        let writers = Writers::start(
            (0..WRITERS).map(|_| server.connect().unwrap()).collect(),
            seed,
        );
        let reader = server.connect_with(cached()).unwrap();
        let disrupt = InProcess {
            server: &server,
            clock: &clock,
        };
        run(seed, reader, &truth_client, &disrupt);
        writers.stop();
    }
}

/// A server over TCP through a relay that can cut the reader's connection.
struct OverTcp<'a> {
    server: &'a Server,
    clock: &'a ManualClock,
    proxy: Proxy,
}

impl Disrupt for OverTcp<'_> {
    fn reconnect(&self, reader: &Client) {
        self.proxy.cut(false);
        common::wait_for("the reader to reconnect", || {
            reader.exists("/p", None).is_ok()
        });
    }

    fn expire(&self, reader: Client) -> Client {
        self.proxy.cut(true);
        self.clock.advance(60_000);
        self.server.tick();
        self.proxy.heal();
        common::wait_for("the reader to hear of its expiry", || {
            reader.state().is_terminal()
        });
        Client::connect(&self.proxy.address.to_string(), cached()).unwrap()
    }
}

#[test]
fn over_tcp_cached_reads_are_never_older_than_what_the_reader_was_told() {
    for seed in [11, 12] {
        let (server, clock) = common::server();
        let net = common::serve_tcp(&server);
        let address = net.local_address().to_string();
        let truth_client = server.connect().unwrap();
        prepare(&truth_client);
        let writers = Writers::start(
            (0..WRITERS)
                .map(|_| Client::connect(&address, ConnectOptions::default()).unwrap())
                .collect(),
            seed,
        );
        let proxy = Proxy::start(net.local_address());
        let reader = Client::connect(&proxy.address.to_string(), cached()).unwrap();
        let disrupt = OverTcp {
            server: &server,
            clock: &clock,
            proxy,
        };
        run(seed, reader, &truth_client, &disrupt);
        writers.stop();
    }
}

/// An in-process ensemble: the reader's member is cut off and heals (the session lives on, its
/// client disconnected meanwhile). Expiry is the other runs' part: here the second disruption
/// only starts the reader over with a new session.
struct InEnsemble<'a> {
    ensemble: &'a Ensemble,
    member: usize,
}

impl Disrupt for InEnsemble<'_> {
    fn reconnect(&self, reader: &Client) {
        self.ensemble.isolate(self.member);
        common::wait_for("the reader to be disconnected", || {
            reader.exists("/p", None).is_err()
        });
        self.ensemble.heal();
        common::wait_for("the reader to serve again", || {
            reader.exists("/p", None).is_ok()
        });
    }

    fn expire(&self, reader: Client) -> Client {
        drop(reader);
        self.ensemble
            .connect_with(self.member, cached())
            .expect("a new reader")
    }
}

#[test]
fn in_an_ensemble_cached_reads_survive_a_member_cut_off_and_back() {
    let seed = 21;
    let ensemble = Ensemble::start(3).unwrap();
    let leader = ensemble.wait_for_leader(Duration::from_secs(10)).unwrap();
    let member = (leader + 1) % 3;
    let truth_client = ensemble.connect(leader).unwrap();
    prepare(&truth_client);
    let writers = Writers::start(
        (0..WRITERS)
            .map(|index| ensemble.connect((leader + 2 + index) % 3).unwrap())
            .collect(),
        seed,
    );
    let reader = ensemble.connect_with(member, cached()).unwrap();
    let disrupt = InEnsemble {
        ensemble: &ensemble,
        member,
    };
    run(seed, reader, &truth_client, &disrupt);
    writers.stop();
}
