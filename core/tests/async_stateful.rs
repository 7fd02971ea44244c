//! Guards the async forms of the calls that keep client-side state (addAuth, removeWatches,
//! checkWatches): a caller blocked for the server's round trip (they went through the
//! blocking call), a completion that runs before the bookkeeping it reports (the AuthFailed
//! state, the watch tables, the WatchRemoved events), and a removal made while a call setting
//! a watch is on its way.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use parking_lot::Mutex;
use zookeeper_core::op::Op;
use zookeeper_core::{Client, ClientState, ConnectOptions, ErrorCode, WatcherType};

/// What completions and watchers saw, in order.
type Heard = Arc<Mutex<Vec<String>>>;

fn record(heard: &Heard, line: String) {
    heard.lock().push(line);
}

fn submit(client: &Client, heard: &Heard, name: &'static str, op: Op) -> Duration {
    let heard = heard.clone();
    let started = Instant::now();
    client.submit_async(
        op,
        None,
        Box::new(move |reply| {
            let outcome = match reply {
                Ok(_) => "ok".to_string(),
                Err(error) => format!("{:?}", error.code()),
            };
            record(&heard, format!("{name} {outcome}"));
        }),
    );
    started.elapsed()
}

#[test]
fn they_return_before_the_server_answers_and_complete_after_the_bookkeeping() {
    let (server, _clock) = common::server();
    let net = common::serve_tcp(&server);
    let proxy = Proxy::start(net.local_address());
    let client = Client::connect(&proxy.address.to_string(), ConnectOptions::default()).unwrap();
    let heard: Heard = Arc::default();
    common::create(&client, "/w");
    let watching = heard.clone();
    let watcher = zookeeper_core::Watcher::new(move |event| {
        record(
            &watching,
            format!("event {:?} {}", event.event_type, event.path),
        );
    });
    client.get_data("/w", Some(watcher)).unwrap();

    proxy.hold_replies(true);
    let took = [
        submit(
            &client,
            &heard,
            "auth",
            Op::AddAuth {
                scheme: "digest".into(),
                auth: b"user:password".to_vec(),
            },
        ),
        submit(
            &client,
            &heard,
            "remove",
            Op::RemoveWatches {
                path: "/w".into(),
                watcher_type: WatcherType::Data,
            },
        ),
    ];
    assert!(
        took.iter().all(|took| *took < Duration::from_millis(200)),
        "the caller waited for the server: {took:?}"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(heard.lock().is_empty(), "nothing answered while held");
    proxy.hold_replies(false);
    common::wait_for("both completions", || heard.lock().len() == 3);
    assert_eq!(
        *heard.lock(),
        ["auth ok", "event DataWatchRemoved /w", "remove ok"],
        "the removed watcher hears of it before the completion"
    );
    // The server holds the identity and no watch any more.
    assert_eq!(client.whoami().unwrap().len(), 2);
    assert_eq!(
        client
            .check_watches("/w", WatcherType::Data)
            .unwrap_err()
            .code(),
        ErrorCode::NoWatcher
    );
}

#[test]
fn an_auth_failure_is_the_clients_state_before_its_completion_runs() {
    let (server, _clock) = common::server();
    let client = Arc::new(server.connect().unwrap());
    let states: Arc<Mutex<Vec<ClientState>>> = Arc::default();
    let (seen, observed) = (states.clone(), client.clone());
    client.submit_async(
        Op::AddAuth {
            scheme: "kerberos".into(),
            auth: b"x".to_vec(),
        },
        None,
        Box::new(move |reply| {
            assert_eq!(reply.unwrap_err().code(), ErrorCode::AuthFailed);
            seen.lock().push(observed.state());
        }),
    );
    common::wait_for("the completion", || !states.lock().is_empty());
    assert_eq!(*states.lock(), [ClientState::AuthFailed]);
}

#[test]
fn a_removal_behind_a_call_setting_a_watch_keeps_the_order_of_calls() {
    let (server, _clock) = common::server();
    let net = common::serve_tcp(&server);
    let proxy = Proxy::start(net.local_address());
    let client = Client::connect(&proxy.address.to_string(), ConnectOptions::default()).unwrap();
    common::create(&client, "/w");
    let heard: Heard = Arc::default();
    proxy.hold_replies(true);
    // A getData setting a watch is on its way when the removal is made.
    let watching = heard.clone();
    let watcher = zookeeper_core::Watcher::new(move |event| {
        record(&watching, format!("event {:?}", event.event_type));
    });
    let reading = heard.clone();
    client.submit_async(
        Op::GetData {
            path: "/w".into(),
            watch: true,
        },
        Some(watcher),
        Box::new(move |reply| record(&reading, format!("get {}", reply.is_ok()))),
    );
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            proxy.hold_replies(false);
        });
        // The removal waits for the getData's answer (its watcher must be in the tables to
        // be removed with the server's watch), never for its own.
        let took = submit(
            &client,
            &heard,
            "remove",
            Op::RemoveWatches {
                path: "/w".into(),
                watcher_type: WatcherType::Any,
            },
        );
        assert!(
            took >= Duration::from_millis(200),
            "it did not wait: {took:?}"
        );
        // Made after the removal, the deletion reaches the server after it: the removed
        // watcher does not hear it.
        submit(&client, &heard, "delete", Op::delete("/w", -1));
    });
    common::wait_for("the deletion", || heard.lock().len() == 4);
    std::thread::sleep(common::QUIET_WAIT);
    assert_eq!(
        *heard.lock(),
        [
            "get true",
            "event DataWatchRemoved",
            "remove ok",
            "delete ok"
        ]
    );
}
