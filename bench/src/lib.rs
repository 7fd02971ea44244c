//! zookeeper-bench: a benchmark client for any server speaking ZooKeeper's client protocol
//! (zookeeper-rs or Apache ZooKeeper), driving it over TCP with its own small pipelined driver.
//!
//! A run opens `sessions` sessions, creates a prefix znode and `keys` keys under it, sends the
//! mix of requests for a warmup and then for the measured time (or number of requests), and
//! deletes what it created. Each session keeps up to `pipeline` requests outstanding; in
//! fixed-rate mode requests are sent when a schedule says and timed from then, so a server
//! that stalls is charged for every request it held up. The report gives, per operation and in
//! total, answered requests per second, errors by ZooKeeper code, and latency percentiles from
//! an HDR histogram.
//!
//! From Rust, against a server started in the same process:
//!
//! ```
//! use std::time::Duration;
//! use zookeeper_bench::{BenchConfig, Length, Mix, OpKind};
//! use zookeeper_core::server::embedded::ServerSetup;
//! use zookeeper_core::server::net::NetConfig;
//!
//! let server = ServerSetup {
//!     net: Some(NetConfig { address: "127.0.0.1:0".parse().unwrap(), ..NetConfig::default() }),
//!     ..ServerSetup::default()
//! }
//! .start()
//! .unwrap();
//!
//! let config = BenchConfig {
//!     hosts: vec![server.address().unwrap().to_string()],
//!     sessions: 2,
//!     pipeline: 8,
//!     mix: Mix::new(&[(OpKind::Get, 9), (OpKind::Set, 1)]),
//!     keys: 50,
//!     length: Length::Ops(1_000),
//!     warmup: Duration::ZERO,
//!     ..BenchConfig::default()
//! };
//! let report = zookeeper_bench::run(&config).unwrap();
//! assert_eq!(report.total.completed, 1_000);
//! assert!(report.total.errors.is_empty() && report.lost_connections.is_empty());
//! assert_eq!(report.cleanup, "done");
//! println!("{}", report.to_text()); // or report.to_json()
//! ```
//!
//! The binary takes the same settings as options (`zookeeper-bench --help`, module `args`).
//!
//! Two scenarios measure what a request mix cannot (module `scenario`): `fanout` (many
//! sessions watching the same znodes; the time from a setData to the last notification) and
//! `ephemerals` (many sessions with an ephemeral each: connect and create rates, and how long
//! the server takes to expire them once they go silent).

pub mod args;
pub mod config;
pub mod connection;
pub mod ephemerals;
pub mod fanout;
pub mod held;
pub mod progress;
pub mod recorder;
pub mod report;
pub mod run;
pub mod scenario;
pub mod schedule;
pub mod session;
pub mod sources;
pub mod workload;
pub mod zipf;

pub use config::{BenchConfig, ConfigError, Distribution, Length, Mix, OpKind};
pub use report::{LostConnection, OperationReport, Report};
pub use run::{run, RunError};
