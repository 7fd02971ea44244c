//! Guards against a benchmark that miscounts: requests sent but not counted (or counted twice),
//! keys missing after the setup, znodes left behind by the cleanup, server errors that stop a
//! run, and lost connections that go unreported. Each test runs the tool for about a second
//! against a zookeeper-core server in this process, serving TCP on a free port.

use std::process::Command;
use std::time::Duration;

use zookeeper_bench::{BenchConfig, Length, Mix, OpKind, Report, RunError};
use zookeeper_core::server::embedded::{EmbeddedServer, ServerSetup};
use zookeeper_core::server::net::NetConfig;
use zookeeper_core::{Acl, CreateMode};

fn start_server() -> EmbeddedServer {
    ServerSetup {
        net: Some(NetConfig {
            address: "127.0.0.1:0".parse().unwrap(),
            ..NetConfig::default()
        }),
        ..ServerSetup::default()
    }
    .start()
    .expect("an in-memory server starts")
}

fn config(server: &EmbeddedServer, prefix: &str) -> BenchConfig {
    BenchConfig {
        hosts: vec![server.address().unwrap().to_string()],
        sessions: 4,
        pipeline: 8,
        keys: 200,
        value_bytes: 64,
        warmup: Duration::ZERO,
        prefix: Some(prefix.into()),
        seed: Some(11),
        threads: 2,
        ..BenchConfig::default()
    }
}

fn every_kind() -> Mix {
    Mix::new(&[
        (OpKind::Create, 30),
        (OpKind::Set, 20),
        (OpKind::Get, 30),
        (OpKind::Exists, 5),
        (OpKind::Children, 5),
        (OpKind::Multi, 5),
        (OpKind::Delete, 5),
    ])
}

fn op<'a>(report: &'a Report, name: &str) -> &'a zookeeper_bench::OperationReport {
    report
        .operations
        .iter()
        .find(|op| op.operation == name)
        .unwrap_or_else(|| panic!("no {name} in {report:?}"))
}

fn errors(report: &Report, name: &str, code: &str) -> u64 {
    op(report, name).errors.get(code).copied().unwrap_or(0)
}

#[test]
fn every_request_is_counted_once_and_the_keys_exist_afterwards() {
    let server = start_server();
    let report = zookeeper_bench::run(&BenchConfig {
        mix: every_kind(),
        length: Length::Ops(3_000),
        cleanup: false,
        ..config(&server, "/kept")
    })
    .unwrap();

    assert_eq!(report.total.completed, 3_000);
    let per_op: u64 = report.operations.iter().map(|op| op.completed).sum();
    assert_eq!(per_op, 3_000, "{report:?}");
    assert_eq!(report.operations.len(), 7, "every kind was sent");
    assert!(report.lost_connections.is_empty() && report.total.unanswered == 0);
    // The only error a healthy run can meet: a delete before its session created anything.
    let no_node = errors(&report, "delete", "NoNode");
    assert_eq!(
        report.total.errors.values().sum::<u64>(),
        no_node,
        "{report:?}"
    );
    assert!(report.elapsed_s > 0.0 && report.total.ops_per_second > 0.0);
    assert!(report.total.latency_us.p50 > 0.0);
    assert!(report.total.latency_us.p50 <= report.total.latency_us.p99);
    assert!(report.total.latency_us.p99 <= report.total.latency_us.max);

    let client = server.server().connect().unwrap();
    for index in 0..200 {
        let path = format!("/kept/k{index}");
        let stat = client.exists(&path, None).unwrap();
        assert_eq!(stat.map(|stat| stat.data_length), Some(64), "{path}");
    }
    // Every create made a znode, every delete that found one removed it.
    let created = op(&report, "create").completed;
    let deleted = op(&report, "delete").completed - no_node;
    let children = client.get_children("/kept", None).unwrap().len() as u64;
    assert_eq!(children, 200 + created - deleted);
}

#[test]
fn a_timed_run_lasts_its_duration_and_cleans_up() {
    let server = start_server();
    let report = zookeeper_bench::run(&BenchConfig {
        mix: every_kind(),
        length: Length::Duration(Duration::from_secs(1)),
        warmup: Duration::from_millis(200),
        ..config(&server, "/timed")
    })
    .unwrap();
    assert!(
        (1.0..1.5).contains(&report.elapsed_s),
        "measured {} s",
        report.elapsed_s
    );
    assert!(report.total.completed > 100, "{report:?}");
    assert_eq!(report.cleanup, "done");
    let client = server.server().connect().unwrap();
    assert_eq!(
        client.exists("/timed", None).unwrap(),
        None,
        "nothing is left"
    );
}

#[test]
fn a_fixed_rate_run_sends_what_the_schedule_says() {
    let server = start_server();
    let report = zookeeper_bench::run(&BenchConfig {
        mix: Mix::new(&[(OpKind::Get, 9), (OpKind::Set, 1)]),
        rate_per_second: Some(2_000.0),
        length: Length::Duration(Duration::from_secs(1)),
        ..config(&server, "/paced")
    })
    .unwrap();
    // Tickets are due at 0, 0.5 ms, ... 999.5 ms: exactly 2,000 in the second.
    assert_eq!(report.total.completed, 2_000, "{report:?}");
    assert_eq!(report.tickets_dropped, 0);
    assert!(
        (0.99..1.3).contains(&report.elapsed_s),
        "{} s",
        report.elapsed_s
    );
    assert!((1_500.0..2_100.0).contains(&report.total.ops_per_second));
}

#[test]
fn server_errors_are_counted_and_the_run_goes_on() {
    let server = start_server();
    let report = zookeeper_bench::run(&BenchConfig {
        // Nothing of a session's own to delete: every delete answers NoNode.
        mix: Mix::new(&[(OpKind::Delete, 1)]),
        length: Length::Ops(400),
        ..config(&server, "/errors")
    })
    .unwrap();
    assert_eq!(report.total.completed, 400);
    assert_eq!(errors(&report, "delete", "NoNode"), 400);
    assert_eq!(report.cleanup, "done");
}

#[test]
fn an_existing_prefix_is_refused_and_left_alone() {
    let server = start_server();
    let client = server.server().connect().unwrap();
    let open = Acl::open_unsafe();
    client
        .create("/mine", b"", &open, CreateMode::Persistent)
        .unwrap();
    client
        .create("/mine/data", b"x", &open, CreateMode::Persistent)
        .unwrap();
    let error = zookeeper_bench::run(&BenchConfig {
        length: Length::Ops(10),
        ..config(&server, "/mine")
    })
    .unwrap_err();
    assert!(matches!(error, RunError::PrefixExists(ref prefix) if prefix == "/mine"));
    assert!(client.exists("/mine/data", None).unwrap().is_some());
}

#[test]
fn a_lost_connection_is_reported_with_what_was_measured() {
    let server = start_server();
    let config = BenchConfig {
        mix: Mix::new(&[(OpKind::Get, 1)]),
        length: Length::Duration(Duration::from_secs(5)),
        session_timeout: Duration::from_secs(3),
        ..config(&server, "/lost")
    };
    let running = std::thread::spawn(move || zookeeper_bench::run(&config));
    std::thread::sleep(Duration::from_millis(700));
    drop(server);
    let report = running
        .join()
        .unwrap()
        .expect("a lost connection still gives a report");
    assert_eq!(report.lost_connections.len(), 4, "{report:?}");
    for lost in &report.lost_connections {
        assert_eq!(lost.phase, "run");
        assert!(lost.after_s < 4.0, "noticed after {} s", lost.after_s);
    }
    assert!(report.total.completed > 0);
    assert!(
        report.cleanup.starts_with("incomplete"),
        "{}",
        report.cleanup
    );
}

#[test]
fn the_binary_prints_json_and_refuses_bad_arguments_with_exit_code_2() {
    let binary = env!("CARGO_BIN_EXE_zookeeper-bench");
    let refused = Command::new(binary)
        .args(["--sessions", "0"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("--sessions must be between 1 and 10000 (got 0)"),
        "{message}"
    );

    let server = start_server();
    let host = server.address().unwrap().to_string();
    let ran = Command::new(binary)
        .args(["--hosts", &host, "--ops", "300", "--warmup", "0", "--json"])
        .args(["--sessions", "2", "--pipeline", "4", "--keys", "20"])
        .output()
        .unwrap();
    assert_eq!(ran.status.code(), Some(0), "{ran:?}");
    let report: serde_json::Value = serde_json::from_slice(&ran.stdout).unwrap();
    assert_eq!(report["total"]["completed"], 300);
    assert_eq!(report["cleanup"], "done");
    assert!(
        ran.stderr.is_empty(),
        "no progress line when stderr is a pipe"
    );
}
