//! Guards the recipes written once for Rust, C and Python: a lock or semaphore that lets too
//! many holders in, a waiter that hangs after its holder's session ended, a cancel that does
//! not stop a wait, a failed attempt that leaves its znode behind, and a latch with two
//! leaders or none after an expiry.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zookeeper_core::client::recipes::{
    LatchState, LeaderElection, LeaderLatch, Lock, LockKind, RecipeError, Semaphore, SessionSlot,
};
use zookeeper_core::{ConnectOptions, Server};

const WAIT: Duration = Duration::from_secs(10);

fn slot(server: &Server) -> SessionSlot {
    SessionSlot::fixed(Arc::new(server.connect().unwrap()))
}

#[test]
fn a_lock_admits_one_holder_at_a_time_across_threads() {
    let (server, _clock) = common::server();
    let inside = Arc::new(AtomicUsize::new(0));
    let entries = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for index in 0..4 {
            let lock = Lock::new(
                slot(&server),
                "/l",
                &format!("t{index}"),
                LockKind::Exclusive,
            );
            let (inside, entries) = (inside.clone(), entries.clone());
            scope.spawn(move || {
                for _ in 0..5 {
                    assert!(lock.acquire(true, Some(WAIT), true).unwrap());
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    std::thread::sleep(Duration::from_millis(1));
                    inside.fetch_sub(1, Ordering::SeqCst);
                    entries.fetch_add(1, Ordering::SeqCst);
                    assert!(lock.release().unwrap());
                }
            });
        }
    });
    assert_eq!(entries.load(Ordering::SeqCst), 20);
}

#[test]
fn a_lock_times_out_cleans_up_and_passes_on() {
    let (server, _clock) = common::server();
    let holder = Lock::new(slot(&server), "/l/", "holder", LockKind::Exclusive);
    let waiter = Lock::new(slot(&server), "/l", "waiter", LockKind::Exclusive);
    assert_eq!(holder.path(), "/l");
    assert!(holder.acquire(true, Some(WAIT), true).unwrap());
    assert!(holder.is_acquired());
    assert!(!waiter.acquire(false, None, true).unwrap());
    let started = Instant::now();
    assert_eq!(
        waiter.acquire(true, Some(Duration::from_millis(200)), true),
        Err(RecipeError::Timeout)
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        holder.contenders().unwrap(),
        ["holder"],
        "no node left behind"
    );
    assert_eq!(waiter.node(), None);

    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| waiter.acquire(true, Some(WAIT), true));
        common::wait_for("the waiter in line", || {
            holder.contenders().unwrap() == ["holder", "waiter"]
        });
        assert!(holder.release().unwrap());
        assert!(!holder.release().unwrap(), "released twice");
        assert_eq!(waiting.join().unwrap(), Ok(true));
    });
    assert_eq!(waiter.contenders().unwrap(), ["waiter"]);
    assert!(waiter.release().unwrap());
    assert!(waiter.contenders().unwrap().is_empty());
}

#[test]
fn cancel_stops_a_waiting_acquire_and_the_node_goes() {
    let (server, _clock) = common::server();
    let holder = Lock::new(slot(&server), "/l", "holder", LockKind::Exclusive);
    let waiter = Lock::new(slot(&server), "/l", "waiter", LockKind::Exclusive);
    assert!(holder.acquire(true, None, true).unwrap());
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| waiter.acquire(true, Some(WAIT), true));
        common::wait_for("the waiter in line", || {
            holder.contenders().unwrap().len() == 2
        });
        waiter.cancel();
        assert_eq!(waiting.join().unwrap(), Err(RecipeError::Cancelled));
    });
    assert!(!waiter.is_cancelled(), "a reported cancel is reset");
    assert_eq!(holder.contenders().unwrap(), ["holder"]);
}

#[test]
fn a_closed_holders_lock_passes_to_the_waiter() {
    let (server, _clock) = common::server();
    let holder_client = Arc::new(server.connect().unwrap());
    let holder = Lock::new(
        SessionSlot::fixed(holder_client.clone()),
        "/l",
        "h",
        LockKind::Exclusive,
    );
    let waiter = Lock::new(slot(&server), "/l", "w", LockKind::Exclusive);
    assert!(holder.acquire(true, None, true).unwrap());
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| waiter.acquire(true, Some(WAIT), true));
        common::wait_for("the waiter in line", || {
            waiter.contenders().unwrap().len() == 2
        });
        holder_client.close().unwrap();
        assert_eq!(waiting.join().unwrap(), Ok(true));
    });
    // The lock went with the session: it is neither held nor anything to release.
    assert!(!holder.is_acquired());
    assert_eq!(holder.release(), Ok(false));
}

#[test]
fn readers_share_and_a_waiting_writer_holds_later_readers_back() {
    let (server, _clock) = common::server();
    let reader_a = Lock::new(slot(&server), "/rw", "ra", LockKind::Read);
    let reader_b = Lock::new(slot(&server), "/rw", "rb", LockKind::Read);
    let writer = Lock::new(slot(&server), "/rw", "w", LockKind::Write);
    assert!(reader_a.acquire(true, Some(WAIT), true).unwrap());
    assert!(
        reader_b.acquire(true, Some(WAIT), true).unwrap(),
        "readers share"
    );
    assert!(!writer.acquire(false, None, true).unwrap());
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| writer.acquire(true, Some(WAIT), true));
        common::wait_for("the writer in line", || {
            writer.contenders().unwrap().len() == 3
        });
        let late = Lock::new(slot(&server), "/rw", "late", LockKind::Read);
        assert!(
            !late.acquire(false, None, true).unwrap(),
            "behind the writer"
        );
        assert!(reader_a.release().unwrap());
        assert!(reader_b.release().unwrap());
        assert_eq!(waiting.join().unwrap(), Ok(true));
    });
    assert_eq!(writer.contenders().unwrap(), ["w"]);
    let reader = Lock::new(slot(&server), "/rw", "r", LockKind::Read);
    assert!(!reader.acquire(false, None, true).unwrap());
    assert!(writer.release().unwrap());
    assert!(reader.acquire(false, None, true).unwrap());
}

#[test]
fn a_semaphore_limits_holders_and_checks_its_lease_count() {
    let (server, _clock) = common::server();
    let first = Semaphore::new(slot(&server), "/pool/db", "first", 2);
    let second = Semaphore::new(slot(&server), "/pool/db", "second", 2);
    let third = Semaphore::new(slot(&server), "/pool/db", "third", 2);
    assert_eq!(first.lock_path(), "/pool/db-__lock__");
    assert!(first.acquire(true, Some(WAIT),).unwrap());
    assert!(second.acquire(true, Some(WAIT)).unwrap());
    assert!(!third.acquire(false, None).unwrap());
    assert_eq!(
        third.acquire(true, Some(Duration::from_millis(100))),
        Err(RecipeError::Timeout)
    );
    let mut holders = first.lease_holders().unwrap();
    holders.sort();
    assert_eq!(holders, ["first", "second"]);
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| third.acquire(true, Some(WAIT)));
        std::thread::sleep(Duration::from_millis(50));
        assert!(first.release().unwrap());
        assert_eq!(waiting.join().unwrap(), Ok(true));
    });
    assert!(!first.release().unwrap());
    let mismatched = Semaphore::new(slot(&server), "/pool/db", "x", 3);
    assert_eq!(
        mismatched.acquire(true, Some(WAIT)),
        Err(RecipeError::LeaseMismatch {
            stored: 2,
            expected: 3
        })
    );
}

#[test]
fn an_election_runs_one_leader_at_a_time_and_cancel_skips_the_function() {
    let (server, _clock) = common::server();
    let leading = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        for index in 0..3 {
            let election = LeaderElection::new(slot(&server), "/e", &format!("c{index}"));
            let (leading, ran) = (leading.clone(), ran.clone());
            scope.spawn(move || {
                let value = election.run(|| {
                    assert_eq!(leading.fetch_add(1, Ordering::SeqCst), 0, "two leaders");
                    std::thread::sleep(Duration::from_millis(5));
                    leading.fetch_sub(1, Ordering::SeqCst);
                    ran.lock().unwrap().push(index);
                    index * 10
                });
                assert_eq!(value, Ok(Some(index * 10)));
            });
        }
    });
    ran.lock().unwrap().sort();
    assert_eq!(*ran.lock().unwrap(), [0, 1, 2]);

    let leader = LeaderElection::new(slot(&server), "/e2", "leader");
    let follower = LeaderElection::new(slot(&server), "/e2", "follower");
    std::thread::scope(|scope| {
        let (started, stop) = (
            crossbeam_channel::bounded::<()>(1),
            crossbeam_channel::bounded::<()>(1),
        );
        let leader = &leader;
        let leader_thread = scope.spawn(move || {
            leader.run(|| {
                started.0.send(()).unwrap();
                stop.1.recv().unwrap();
            })
        });
        started.1.recv_timeout(WAIT).unwrap();
        let following = scope.spawn(|| follower.run(|| panic!("the follower must not lead")));
        common::wait_for("two contenders", || {
            follower.contenders().unwrap() == ["leader", "follower"]
        });
        follower.cancel();
        assert_eq!(following.join().unwrap(), Ok(None));
        stop.0.send(()).unwrap();
        assert_eq!(leader_thread.join().unwrap(), Ok(Some(())));
    });
    assert!(leader.contenders().unwrap().is_empty());
}

#[test]
fn a_latch_hands_over_on_close_and_notifies_only_when_asked() {
    let (server, _clock) = common::server();
    let heard: Vec<Arc<Mutex<Vec<bool>>>> = (0..3).map(|_| Arc::default()).collect();
    let latches: Vec<LeaderLatch> = (0..3)
        .map(|index| {
            let latch = LeaderLatch::new(slot(&server), "/latch", &format!("p{index}"));
            let heard = heard[index].clone();
            latch.add_listener(Arc::new(move |leader| heard.lock().unwrap().push(leader)));
            latch
        })
        .collect();
    assert_eq!(latches[0].state(), LatchState::Latent);
    assert!(
        !latches[0].await_leadership(Some(Duration::ZERO)).unwrap(),
        "not started"
    );
    latches[0].start().unwrap();
    assert!(latches[0].await_leadership(Some(WAIT)).unwrap());
    latches[1].start().unwrap();
    common::wait_for("p1 joined", || {
        latches[0].participants().unwrap().len() == 2
    });
    latches[2].start().unwrap();
    common::wait_for("p2 joined", || {
        latches[0].participants().unwrap().len() == 3
    });
    assert_eq!(latches[2].participants().unwrap(), ["p0", "p1", "p2"]);
    assert_eq!(latches[2].leader().unwrap().as_deref(), Some("p0"));
    assert!(!latches[1]
        .await_leadership(Some(Duration::from_millis(100)))
        .unwrap());
    assert_eq!(
        latches[0].start(),
        Err(RecipeError::InvalidState(
            "a leader latch starts once: it is started or closed"
        ))
    );

    latches[0].close(false);
    assert_eq!(latches[0].state(), LatchState::Closed);
    assert!(latches[1].await_leadership(Some(WAIT)).unwrap());
    assert!(!latches[0].has_leadership());
    assert_eq!(
        *heard[0].lock().unwrap(),
        [true],
        "close is silent by default"
    );
    common::wait_for("p1's listener", || *heard[1].lock().unwrap() == [true]);
    assert!(heard[2].lock().unwrap().is_empty());
    assert_eq!(latches[2].participants().unwrap(), ["p1", "p2"]);

    latches[1].close(true);
    assert_eq!(*heard[1].lock().unwrap(), [true, false]);
    assert!(latches[2].await_leadership(Some(WAIT)).unwrap());
    latches[2].close(false);
    assert!(latches[2].participants().unwrap().is_empty());
}

#[test]
fn no_listener_runs_once_a_latch_is_dropped_even_from_its_own_listener() {
    let (server, _clock) = common::server();
    let latch = Arc::new(Mutex::new(Some(LeaderLatch::new(
        slot(&server),
        "/latch",
        "p",
    ))));
    let dropped = Arc::new(AtomicUsize::new(0));
    let late_calls = Arc::new(AtomicUsize::new(0));
    let (owner, on_drop) = (latch.clone(), dropped.clone());
    let first = Arc::new(move |_| {
        drop(owner.lock().unwrap().take());
        on_drop.fetch_add(1, Ordering::SeqCst);
    });
    let late = late_calls.clone();
    let second = Arc::new(move |_| {
        late.fetch_add(1, Ordering::SeqCst);
    });
    {
        let guard = latch.lock().unwrap();
        let latch = guard.as_ref().unwrap();
        latch.add_listener(first);
        latch.add_listener(second);
        latch.start().unwrap();
    }
    common::wait_for("the first listener dropped the latch", || {
        dropped.load(Ordering::SeqCst) == 1
    });
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(late_calls.load(Ordering::SeqCst), 0);
}

#[test]
fn an_expired_leader_steps_down_and_rejoins_with_a_new_session() {
    let (server, clock) = common::server();
    let options = || ConnectOptions {
        session_timeout_ms: 4_000,
        ..ConnectOptions::default()
    };
    let old_client = Arc::new(server.connect_with(options()).unwrap());
    let old_slot = SessionSlot::fixed(old_client.clone());
    let heard = Arc::new(Mutex::new(Vec::new()));
    let old = LeaderLatch::new(old_slot.clone(), "/latch", "old");
    let listener_heard = heard.clone();
    old.add_listener(Arc::new(move |leader| {
        listener_heard.lock().unwrap().push(leader)
    }));
    old.start().unwrap();
    assert!(old.await_leadership(Some(WAIT)).unwrap());
    let new = LeaderLatch::new(slot(&server), "/latch", "new");
    new.start().unwrap();
    common::wait_for("the follower joined", || {
        new.participants().unwrap() == ["old", "new"]
    });

    old_client.set_attached(false);
    clock.advance(6_000);
    server.tick();
    assert!(new.await_leadership(Some(WAIT)).unwrap());
    common::wait_for("the old leader to hear it", || {
        *heard.lock().unwrap() == [true, false]
    });
    assert!(!old.has_leadership());

    // A new session in the slot: the latch joins again, behind the new leader.
    old_slot.set(Some(Arc::new(server.connect_with(options()).unwrap())));
    common::wait_for("the rejoin", || {
        new.participants().unwrap() == ["new", "old"]
    });
    assert!(new.has_leadership() && !old.has_leadership());
    old.close(false);
    new.close(false);
}

#[test]
fn a_slot_without_a_session_answers_no_session() {
    let lock = Lock::new(SessionSlot::new(None), "/l", "x", LockKind::Exclusive);
    assert_eq!(lock.acquire(true, None, true), Err(RecipeError::NoSession));
    assert_eq!(lock.contenders(), Err(RecipeError::NoSession));
}
