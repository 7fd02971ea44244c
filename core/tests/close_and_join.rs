//! Guards `Client::close_and_join`, which the C ABI's free relies on: a callback that runs
//! after it returned, a queued completion that never runs, a callback running on another
//! thread that it does not wait for, and a close from a callback that deadlocks or skips the
//! callbacks queued behind it. In process and over TCP.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zookeeper_core::op::Op;
use zookeeper_core::{Client, ClientState, ConnectOptions, ErrorCode, Server, Watcher};

fn clients(server: &Server, address: &str) -> Vec<Client> {
    vec![
        server.connect().unwrap(),
        Client::connect(address, ConnectOptions::default()).unwrap(),
    ]
}

#[test]
fn every_queued_callback_ran_and_none_runs_after() {
    let (server, _clock) = common::server();
    let net = common::serve_tcp(&server);
    for client in clients(&server, &net.local_address().to_string()) {
        let ran = Arc::new(AtomicUsize::new(0));
        let returned = Arc::new(AtomicBool::new(false));
        let late = Arc::new(AtomicUsize::new(0));
        for _ in 0..50 {
            let (ran, returned, late) = (ran.clone(), returned.clone(), late.clone());
            let op = Op::GetData {
                path: "/".into(),
                watch: false,
            };
            client.submit_async(
                op,
                None,
                Box::new(move |_| {
                    // Slow enough that most are still queued when the close starts.
                    std::thread::sleep(Duration::from_millis(1));
                    if returned.load(Ordering::SeqCst) {
                        late.fetch_add(1, Ordering::SeqCst);
                    }
                    ran.fetch_add(1, Ordering::SeqCst);
                }),
            );
        }
        client.close_and_join().unwrap();
        returned.store(true, Ordering::SeqCst);
        assert_eq!(ran.load(Ordering::SeqCst), 50);
        assert_eq!(client.state(), ClientState::Closed);
        // A completion answered after the stop is dropped, never run.
        let after = ran.clone();
        client.submit_async(
            Op::Sync { path: "/".into() },
            None,
            Box::new(move |_| {
                after.fetch_add(1, Ordering::SeqCst);
            }),
        );
        std::thread::sleep(common::QUIET_WAIT);
        assert_eq!(ran.load(Ordering::SeqCst), 50);
        assert_eq!(late.load(Ordering::SeqCst), 0);
    }
}

#[test]
fn a_close_from_a_callback_runs_the_queued_ones_first() {
    let (server, _clock) = common::server();
    let net = common::serve_tcp(&server);
    for client in clients(&server, &net.local_address().to_string()) {
        let client = Arc::new(client);
        let heard: Arc<Mutex<Vec<String>>> = Arc::default();
        let closer = {
            let (client, heard) = (client.clone(), heard.clone());
            Watcher::new(move |event| {
                heard
                    .lock()
                    .unwrap()
                    .push(format!("closer {:?}", event.event_type));
                if client.state() != ClientState::Closed {
                    assert!(client.is_dispatcher_thread());
                    client.close_and_join().unwrap();
                    heard.lock().unwrap().push("closed".into());
                }
            })
        };
        let other = {
            let heard = heard.clone();
            Watcher::new(move |event| {
                heard
                    .lock()
                    .unwrap()
                    .push(format!("other {:?}", event.event_type));
            })
        };
        common::create(&client, "/doomed");
        client.exists("/doomed", Some(closer)).unwrap();
        client.exists("/doomed", Some(other)).unwrap();
        assert!(!client.is_dispatcher_thread());
        client.delete("/doomed", -1).unwrap();
        let deadline = std::time::Instant::now() + common::EVENT_WAIT;
        while !heard.lock().unwrap().contains(&"closed".to_string()) {
            assert!(
                std::time::Instant::now() < deadline,
                "the close never returned"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(common::QUIET_WAIT);
        assert_eq!(
            *heard.lock().unwrap(),
            ["closer NodeDeleted", "other NodeDeleted", "closed"],
            "the other watcher heard the deletion inside the close, and nothing came after"
        );
        assert_eq!(
            client.exists("/", None).unwrap_err().code(),
            ErrorCode::SessionExpired
        );
    }
}

#[test]
fn it_waits_for_the_callback_running_on_the_dispatcher() {
    let (server, _clock) = common::server();
    let client = server.connect().unwrap();
    let (entered, finished) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let watcher = {
        let (entered, finished) = (entered.clone(), finished.clone());
        Watcher::new(move |_| {
            entered.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(200));
            finished.store(true, Ordering::SeqCst);
        })
    };
    client.exists("/slow", Some(watcher)).unwrap();
    common::create(&client, "/slow");
    while !entered.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    client.close_and_join().unwrap();
    assert!(finished.load(Ordering::SeqCst));
}
