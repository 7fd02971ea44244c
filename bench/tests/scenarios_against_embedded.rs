//! Guards against scenario figures that miscount: a fan-out round that ends before every
//! session saw its notification (or never ends), ephemerals that are not all created, an
//! expiry time taken before the server deleted them, and znodes left behind by the cleanup.
//! Each test runs a small scenario against a zookeeper-core server in this process, with a
//! 500 ms tick so sessions may time out after 1 s.

use std::time::Duration;

use zookeeper_bench::scenario::{Kind, ScenarioConfig};
use zookeeper_bench::{ephemerals, fanout};
use zookeeper_core::server::embedded::{EmbeddedServer, ServerSetup};
use zookeeper_core::server::zoo_cfg::ZooCfg;

fn start_server() -> EmbeddedServer {
    let cfg = ZooCfg::parse("tickTime=500\nclientPort=0\nmaxClientCnxns=0\n").unwrap();
    ServerSetup::from_zoo_cfg(cfg)
        .start()
        .expect("an in-memory server starts")
}

fn config(server: &EmbeddedServer, kind: Kind, sessions: usize) -> ScenarioConfig {
    ScenarioConfig {
        kind,
        hosts: vec![server.address().unwrap().to_string()],
        sessions,
        session_timeout: Duration::from_secs(1),
        value_bytes: 10,
        prefix: None,
        cleanup: true,
        threads: 2,
    }
}

fn root_children(server: &EmbeddedServer) -> Vec<String> {
    let client = server.server().connect().unwrap();
    client.get_children("/", None).unwrap()
}

#[test]
fn every_round_of_a_fanout_hears_from_every_session() {
    let server = start_server();
    let kind = Kind::WatchFanout {
        watches: 30,
        rounds: 5,
    };
    let report = fanout::run(&config(&server, kind, 40)).unwrap();
    assert_eq!((report.sessions, report.watches), (40, 30));
    assert_eq!(report.last_notification_ms.len(), 5);
    assert_eq!(report.median_notification_ms.len(), 5);
    assert_eq!(
        (report.notifications_missing, report.notifications_stray),
        (0, 0)
    );
    for (last, median) in report
        .last_notification_ms
        .iter()
        .zip(&report.median_notification_ms)
    {
        assert!(median <= last && *last < 30_000.0, "{median} {last}");
    }
    assert!(report.last_p50_ms <= report.last_p99_ms);
    assert_eq!(report.cleanup, "done");
    assert_eq!(root_children(&server), ["zookeeper"]);
}

#[test]
fn ephemerals_are_counted_gone_only_once_the_server_expired_them() {
    let server = start_server();
    let report = ephemerals::run(&config(&server, Kind::Ephemerals, 50)).unwrap();
    assert_eq!((report.sessions, report.session_timeout_ms), (50, 1_000));
    assert!(report.connects_per_second > 0.0 && report.creates_per_second > 0.0);
    let all_gone = report.all_expired_s.expect("every session expired");
    // Nothing can go before the session timeout has passed since the last ping.
    assert!(all_gone >= 0.5, "gone after {all_gone} s");
    assert!(report.first_expiry_s.unwrap() <= all_gone);
    assert_eq!((report.left, report.sessions_lost), (0, 0));
    assert_eq!(report.cleanup, "done");
    assert_eq!(root_children(&server), ["zookeeper"]);
}
