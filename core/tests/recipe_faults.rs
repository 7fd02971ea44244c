//! Guards the recipes where the network or the session fails them: a create whose reply was
//! lost made twice (the lock then waits on its own orphan), connection-loss retries that run
//! past the caller's timeout, a semaphore cancel that does not reach a contender waiting on
//! the inner lock, a blocking call inside the client's own callback that can only time out,
//! and a lock lost with its session that stays "held" forever.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use zookeeper_core::client::recipes::{
    LeaderElection, LeaderLatch, Lock, LockKind, RecipeError, Semaphore, SessionSlot,
};
use zookeeper_core::proto::OpCode;
use zookeeper_core::{Client, ConnectOptions, ErrorCode, Server, ServerConfig, Watcher};

const WAIT: Duration = Duration::from_secs(10);

fn slot(server: &Server) -> SessionSlot {
    SessionSlot::fixed(Arc::new(server.connect().unwrap()))
}

/// A client over TCP through `proxy`, with a session that outlives the cuts.
fn through(proxy: &Proxy) -> Arc<Client> {
    let options = ConnectOptions {
        session_timeout_ms: 20_000,
        ..ConnectOptions::default()
    };
    Arc::new(Client::connect(&proxy.address.to_string(), options).unwrap())
}

#[test]
fn a_create_whose_reply_was_lost_is_found_not_made_twice() {
    let (server, _clock) = common::server();
    let net = common::serve_tcp(&server);
    let proxy = Proxy::start(net.local_address());
    let observer = server.connect().unwrap();
    let lock = Lock::new(
        SessionSlot::fixed(through(&proxy)),
        "/l",
        "x",
        LockKind::Exclusive,
    );
    assert!(lock.contenders().unwrap().is_empty()); // makes /l
                                                    // The create is applied but its reply lost; so is the first lookup's.
    proxy.lose_replies_to(&[OpCode::Create2.code(), OpCode::GetChildren2.code()]);
    assert_eq!(lock.acquire(true, Some(WAIT), true), Ok(true));
    assert_eq!(observer.get_children("/l", None).unwrap().len(), 1);
    assert_eq!(lock.release(), Ok(true));
    assert!(observer.get_children("/l", None).unwrap().is_empty());

    // A non-blocking attempt does not wait for a lookup: it gives up at once and deletes the
    // znode the lost reply made.
    proxy.lose_replies_to(&[OpCode::Create2.code()]);
    let outcome = lock.acquire(false, None, true);
    assert_eq!(
        outcome.unwrap_err().zookeeper_code(),
        Some(ErrorCode::ConnectionLoss)
    );
    assert!(observer.get_children("/l", None).unwrap().is_empty());
}

fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zk-recipe-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn connection_loss_is_retried_within_the_callers_timeout_only() {
    let dir = data_dir("deadline");
    let server = Server::start(ServerConfig {
        data_dir: Some(dir.clone()),
        ..ServerConfig::default()
    })
    .unwrap();
    let lock = Lock::new(slot(&server), "/l", "x", LockKind::Exclusive);
    // A durable server's in-process clients lose their connection for good when it stops.
    drop(server);
    let started = Instant::now();
    let outcome = lock.acquire(true, Some(Duration::from_millis(100)), true);
    let took = started.elapsed();
    assert_eq!(
        outcome.unwrap_err().zookeeper_code(),
        Some(ErrorCode::ConnectionLoss)
    );
    assert!(took < Duration::from_millis(600), "took {took:?}");
    let started = Instant::now();
    let outcome = lock.acquire(false, None, true);
    assert_eq!(
        outcome.unwrap_err().zookeeper_code(),
        Some(ErrorCode::ConnectionLoss)
    );
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "one attempt"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_semaphore_cancel_reaches_a_contender_waiting_for_the_inner_lock() {
    let (server, _clock) = common::server();
    let holder = Semaphore::new(slot(&server), "/pool", "a", 1);
    let waiter = Semaphore::new(slot(&server), "/pool", "b", 1);
    let cancelled = Semaphore::new(slot(&server), "/pool", "c", 1);
    assert_eq!(holder.acquire(true, Some(WAIT)), Ok(true));
    std::thread::scope(|scope| {
        // b holds the inner lock while it waits for a lease; c waits for the inner lock.
        let waiting = scope.spawn(|| waiter.acquire(true, Some(WAIT)));
        let observer = Lock::new(slot(&server), "/pool-__lock__", "o", LockKind::Exclusive);
        common::wait_for("b under the inner lock", || {
            observer.contenders().unwrap() == ["b"]
        });
        let started = Instant::now();
        let cancelling = scope.spawn(|| cancelled.acquire(true, Some(WAIT)));
        common::wait_for("c in line for the inner lock", || {
            observer.contenders().unwrap() == ["b", "c"]
        });
        cancelled.cancel();
        assert_eq!(cancelling.join().unwrap(), Err(RecipeError::Cancelled));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(!cancelled.is_cancelled(), "a reported cancel is reset");
        assert_eq!(holder.release(), Ok(true));
        assert_eq!(waiting.join().unwrap(), Ok(true));
    });
    // A cancel with nothing waiting stops the next acquire, as a lock's does.
    assert_eq!(waiter.release(), Ok(true));
    cancelled.cancel();
    assert_eq!(
        cancelled.acquire(true, Some(WAIT)),
        Err(RecipeError::Cancelled)
    );
    assert_eq!(cancelled.acquire(true, Some(WAIT)), Ok(true));
    assert_eq!(cancelled.lease_holders().unwrap(), ["c"]);
    // Acquiring a lease held already answers at once and never gives it back.
    cancelled.cancel();
    assert_eq!(cancelled.acquire(true, Some(WAIT)), Ok(true));
    assert_eq!(cancelled.lease_holders().unwrap(), ["c"]);
}

#[test]
fn a_blocking_call_inside_the_clients_own_callback_is_refused() {
    let (server, _clock) = common::server();
    let client = Arc::new(server.connect().unwrap());
    let holder = Lock::new(slot(&server), "/l", "holder", LockKind::Exclusive);
    assert_eq!(holder.acquire(true, Some(WAIT), true), Ok(true));
    let lock = Arc::new(Lock::new(
        SessionSlot::fixed(client.clone()),
        "/l",
        "x",
        LockKind::Exclusive,
    ));
    let semaphore = Arc::new(Semaphore::new(
        SessionSlot::fixed(client.clone()),
        "/s",
        "x",
        1,
    ));
    let latch = Arc::new(LeaderLatch::new(
        SessionSlot::fixed(client.clone()),
        "/latch",
        "x",
    ));
    let answers: Arc<Mutex<Vec<String>>> = Arc::default();
    let watcher = {
        let (lock, semaphore, latch, answers) = (
            lock.clone(),
            semaphore.clone(),
            latch.clone(),
            answers.clone(),
        );
        Watcher::new(move |_| {
            let started = Instant::now();
            let mut answers = answers.lock().unwrap();
            answers.push(format!("{:?}", lock.acquire(true, Some(WAIT), true)));
            answers.push(format!("{:?}", lock.acquire(false, None, true)));
            answers.push(format!("{:?}", semaphore.acquire(true, None)));
            answers.push(format!("{:?}", latch.await_leadership(None)));
            answers.push(format!(
                "{:?}",
                latch.await_leadership(Some(Duration::ZERO))
            ));
            answers.push(format!("{}", started.elapsed() < Duration::from_secs(1)));
        })
    };
    client.exists("/go", Some(watcher)).unwrap();
    common::create(&client, "/go");
    common::wait_for("the callback", || answers.lock().unwrap().len() == 6);
    let refused = "Err(InvalidState(\"a blocking recipe call cannot wait inside a callback of its own client\"))";
    assert_eq!(
        *answers.lock().unwrap(),
        [refused, "Ok(false)", refused, refused, "Ok(false)", "true"]
    );
    // Outside a callback the same calls wait as usual.
    assert_eq!(holder.release(), Ok(true));
    assert_eq!(lock.acquire(true, Some(WAIT), true), Ok(true));
}

#[test]
fn a_lock_lost_with_its_session_is_neither_held_nor_stuck() {
    let (server, clock) = common::server();
    let options = || ConnectOptions {
        session_timeout_ms: 4_000,
        ..ConnectOptions::default()
    };
    let first = Arc::new(server.connect_with(options()).unwrap());
    let session_slot = SessionSlot::fixed(first.clone());
    let lock = Lock::new(session_slot.clone(), "/l", "x", LockKind::Exclusive);
    let election = LeaderElection::new(session_slot.clone(), "/e", "x");
    assert_eq!(lock.acquire(true, Some(WAIT), true), Ok(true));
    let (running, finish) = crossbeam_channel::bounded::<()>(0);
    std::thread::scope(|scope| {
        let leading = scope.spawn(|| election.run(|| finish.recv().unwrap()));
        common::wait_for("the leader", || {
            election.contenders().is_ok_and(|c| c == ["x"])
        });
        first.set_attached(false);
        clock.advance(6_000);
        server.tick();
        assert!(!lock.is_acquired(), "the znode went with the session");
        running.send(()).unwrap();
        // Leadership ended with the session: giving it up is not an error.
        assert_eq!(leading.join().unwrap(), Ok(Some(())));
    });
    assert_eq!(lock.release(), Ok(false));

    // The slot's next session contends afresh, without waiting on the old state.
    session_slot.set(Some(Arc::new(server.connect_with(options()).unwrap())));
    assert_eq!(lock.acquire(false, None, true), Ok(true));
    assert!(lock.is_acquired());
    let started = Instant::now();
    assert_eq!(
        election.run(|| 7),
        Ok(Some(7)),
        "elected again after the expiry"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(lock.release(), Ok(true));
}

#[test]
fn a_second_acquire_waiting_on_the_same_contender_times_out() {
    let (server, _clock) = common::server();
    let holder = Lock::new(slot(&server), "/l", "holder", LockKind::Exclusive);
    let lock = Lock::new(slot(&server), "/l", "x", LockKind::Exclusive);
    assert_eq!(holder.acquire(true, Some(WAIT), true), Ok(true));
    std::thread::scope(|scope| {
        let first = scope.spawn(|| lock.acquire(true, Some(Duration::from_secs(1)), true));
        common::wait_for("the first acquire in line", || {
            holder.contenders().unwrap().len() == 2
        });
        // The second waits for the first to finish with the contender, then reports the
        // timeout rather than "not acquired".
        let outcome = lock.acquire(true, Some(Duration::from_millis(100)), true);
        assert_eq!(outcome, Err(RecipeError::Timeout));
        assert_eq!(first.join().unwrap(), Err(RecipeError::Timeout));
    });
}
