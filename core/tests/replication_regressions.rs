//! Named regressions for what the deterministic simulation found, each replayed on a
//! simulated ensemble (one thread, simulated time) so it fails the same way every run.

use std::sync::Arc;

use parking_lot::Mutex;
use raft::eraftpb::MessageType;
use zookeeper_core::op::{Op, Reply, Response};
use zookeeper_core::replication::raft_id;
use zookeeper_core::replication::PeerMessage;
use zookeeper_core::server::{Clock, Engine, LocalSession, SessionSink};
use zookeeper_core::sim::cluster::{Cluster, RAFT_TICK_MS, SESSION_TICK_MS};
use zookeeper_core::storage::Crash;
use zookeeper_core::{ErrorCode, WatchedEvent};

struct Quiet;

impl SessionSink for Quiet {
    fn deliver(&self, _event: WatchedEvent) {}
}

/// Moves simulated time by `ms`, delivering messages and ticking as the simulation does.
fn run(cluster: &Cluster, ms: u64) {
    for _ in 0..ms {
        cluster.advance(1);
        cluster.network.deliver_due();
        let now = cluster.time.now_ms();
        if now % RAFT_TICK_MS == 0 {
            cluster.raft_tick();
        }
        if now % SESSION_TICK_MS == 0 {
            cluster.session_tick();
        }
        cluster.network.deliver_due();
    }
}

/// Moves time a millisecond at a time and delivers one message at a time, asking `done`
/// before each delivery; stops when it answers true (or after 5 s of simulated time).
fn message_by_message(cluster: &Cluster, mut done: impl FnMut(&Cluster) -> bool) {
    for _ in 0..5_000 {
        cluster.advance(1);
        if cluster.time.now_ms() % RAFT_TICK_MS == 0 {
            cluster.raft_tick();
        }
        loop {
            if done(cluster) {
                return;
            }
            if !cluster.network.deliver_next() {
                break;
            }
        }
    }
}

fn leader(cluster: &Cluster) -> usize {
    for _ in 0..200 {
        if let Some(leader) = cluster.leader() {
            return leader;
        }
        run(cluster, 50);
    }
    panic!("no leader");
}

fn engine(cluster: &Cluster, member: usize) -> Arc<Engine> {
    cluster.live(member).expect("running").clone()
}

/// Opens a session on `member`, running time until it is granted (asking again while the
/// member has no leader, as a client would).
fn open(cluster: &Cluster, member: usize) -> Arc<LocalSession> {
    for _ in 0..20 {
        let granted = Arc::new(Mutex::new(None));
        let slot = granted.clone();
        engine(cluster, member).open_session_then(
            4_000,
            Arc::new(Quiet),
            None,
            Box::new(move |result| *slot.lock() = Some(result)),
        );
        for _ in 0..100 {
            let result = granted.lock().take();
            match result {
                Some(Ok(session)) => return session,
                Some(Err(ErrorCode::ConnectionLoss)) => break,
                Some(Err(code)) => panic!("no session: {code:?}"),
                None => run(cluster, 10),
            }
        }
        run(cluster, 100);
    }
    panic!("no session granted");
}

/// Submits `op`; the answer lands in the returned slot.
fn submit(
    cluster: &Cluster,
    member: usize,
    session: &Arc<LocalSession>,
    op: Op,
) -> Arc<Mutex<Option<Response>>> {
    let slot = Arc::new(Mutex::new(None));
    let answer = slot.clone();
    engine(cluster, member).submit(
        session,
        op,
        Box::new(move |response: Response| *answer.lock() = Some(response)),
    );
    slot
}

fn wait(cluster: &Cluster, slot: &Arc<Mutex<Option<Response>>>) -> Response {
    for _ in 0..1_000 {
        if let Some(response) = slot.lock().take() {
            return response;
        }
        run(cluster, 10);
    }
    panic!("no answer");
}

fn write(cluster: &Cluster, member: usize, session: &Arc<LocalSession>, path: &str) {
    let op = Op::Create(zookeeper_core::CreateRequest {
        path: path.into(),
        data: Some(b"x".to_vec()),
        acl: zookeeper_core::Acl::open_unsafe(),
        mode: zookeeper_core::CreateMode::Persistent,
        ttl_ms: -1,
    });
    let response = wait(cluster, &submit(cluster, member, session, op));
    assert!(response.result.is_ok(), "{path}: {response:?}");
}

/// Seed 63 of the first simulation runs: a follower lost its leader while a session's sync
/// and the read behind it were in flight; the sync answered ConnectionLoss but the read ran
/// on the stale tree and answered data older than a write that had completed before it.
#[test]
fn a_read_behind_an_abandoned_sync_is_not_answered_with_stale_data() {
    let cluster = Cluster::new(3, 63);
    let leader = leader(&cluster);
    let follower = (leader + 1) % 3;
    let session = open(&cluster, follower);
    cluster.partition(&[vec![follower], vec![leader, (leader + 2) % 3]]);
    let synced = submit(&cluster, follower, &session, Op::Sync { path: "/".into() });
    let read = submit(
        &cluster,
        follower,
        &session,
        Op::GetData {
            path: "/zookeeper".into(),
            watch: false,
        },
    );
    assert_eq!(
        wait(&cluster, &synced).result,
        Err(ErrorCode::ConnectionLoss)
    );
    assert_eq!(wait(&cluster, &read).result, Err(ErrorCode::ConnectionLoss));
}

/// Seed 24: a client that opened its session on the leader moved to a follower that had not
/// applied the session's creation yet, and was told its live session had expired.
#[test]
fn a_follower_catches_up_before_it_judges_a_resumed_session() {
    let cluster = Cluster::new(3, 24);
    let leader = leader(&cluster);
    let lagging = (leader + 1) % 3;
    cluster.partition(&[vec![lagging], vec![leader, (leader + 2) % 3]]);
    let session = open(&cluster, leader);
    assert!(engine(&cluster, lagging).with_tree(|tree| tree.session(session.id()).is_none()));
    cluster.heal();
    let resumed = Arc::new(Mutex::new(None));
    let slot = resumed.clone();
    engine(&cluster, lagging).resume_session_then(
        session.id(),
        &session.password(),
        Arc::new(Quiet),
        None,
        Box::new(move |result| *slot.lock() = Some(result.map(|session| session.id()))),
    );
    for _ in 0..500 {
        if resumed.lock().is_some() {
            break;
        }
        run(&cluster, 10);
    }
    assert_eq!(resumed.lock().take(), Some(Ok(session.id())));
}

/// Seed 561: a follower installed a snapshot newer than every entry in its log and crashed
/// before appending more; on restart its log started over at index 1 and the next entry
/// from the leader hit "entries must follow on".
#[test]
fn a_member_restarts_on_a_snapshot_newer_than_its_log() {
    let mut cluster = Cluster::new(3, 561);
    let leader = leader(&cluster);
    let lagging = (leader + 1) % 3;
    let session = open(&cluster, leader);
    cluster.partition(&[vec![lagging], vec![leader, (leader + 2) % 3]]);
    // More entries than the leader keeps in memory: the lagging member needs a snapshot.
    for index in 0..100 {
        write(&cluster, leader, &session, &format!("/n{index}"));
    }
    let before = engine(&cluster, lagging).last_zxid();
    cluster.heal();
    // Message by message, so the member crashes right after the snapshot, before any entry.
    message_by_message(&cluster, |cluster| {
        engine(cluster, lagging).last_zxid() > before
    });
    assert!(
        engine(&cluster, lagging).last_zxid() > before + 50,
        "a snapshot installed"
    );
    cluster.kill(lagging, Crash::Clean);
    cluster.start(lagging).expect("restarts on its snapshot");
    // A new term: the restarted member writes its hard state before any entry.
    cluster.kill(leader, Crash::Clean);
    let new_leader = self::leader(&cluster);
    let session = open(&cluster, new_leader);
    write(&cluster, new_leader, &session, "/after");
    cluster.start(leader).unwrap();
    run(&cluster, 2_000);
    let target = engine(&cluster, new_leader).last_zxid();
    for member in 0..3 {
        assert_eq!(
            engine(&cluster, member).last_zxid(),
            target,
            "member {member}"
        );
    }
}

/// Seed 4: the leader sent a snapshot to a lagging follower, the network lost it, and the
/// leader waited for it forever (raft-rs needs to hear that a snapshot went out).
#[test]
fn a_lost_snapshot_is_sent_again() {
    let cluster = Cluster::new(3, 4);
    let leader = leader(&cluster);
    let lagging = (leader + 1) % 3;
    let session = open(&cluster, leader);
    cluster.partition(&[vec![lagging], vec![leader, (leader + 2) % 3]]);
    for index in 0..100 {
        write(&cluster, leader, &session, &format!("/n{index}"));
    }
    // Heal, and lose the snapshot the leader sends.
    cluster.heal();
    let (from, to) = (raft_id(leader as u8), raft_id(lagging as u8));
    let mut lost = 0;
    message_by_message(&cluster, |cluster| {
        lost += cluster.network.drop_in_flight(|sender, receiver, message| {
            (sender, receiver) == (from, to)
                && matches!(message, PeerMessage::Raft(raft) if raft.get_msg_type() == MessageType::MsgSnapshot)
        });
        lost > 0
    });
    assert_eq!(lost, 1, "the leader sent one snapshot");
    run(&cluster, 3_000);
    let target = engine(&cluster, leader).last_zxid();
    assert_eq!(engine(&cluster, lagging).last_zxid(), target);
}

/// Seed 5: a member restarted with its wall clock set back issued a session id it had issued
/// before. Ids now come from the CreateSession entry's log index.
#[test]
fn session_ids_are_never_reused_across_restarts_and_clock_jumps() {
    let mut cluster = Cluster::new(3, 5);
    let leader = leader(&cluster);
    let follower = (leader + 1) % 3;
    let first = open(&cluster, follower);
    assert_eq!(
        first.id() as u64 >> 56,
        follower as u64,
        "the member's id in the top byte"
    );
    let closed = submit(&cluster, follower, &first, Op::CloseSession);
    assert_eq!(wait(&cluster, &closed).result, Ok(Reply::Done));
    cluster.jump_clock(follower, -3_600_000);
    cluster.kill(follower, Crash::Clean);
    cluster.start(follower).unwrap();
    run(&cluster, 1_000);
    let second = open(&cluster, follower);
    assert_ne!(second.id(), first.id());
    assert!(second.id() > first.id());
}
