//! zookeeper-bench: a benchmark client for any server speaking ZooKeeper's client protocol.
//!
//! So far the pure parts: what a run is asked to do, the command line, which requests are
//! sent, when (fixed-rate schedule), and how outcomes are recorded and reported.

pub mod args;
pub mod config;
pub mod recorder;
pub mod report;
pub mod schedule;
pub mod workload;
pub mod zipf;

pub use config::{BenchConfig, ConfigError, Distribution, Length, Mix, OpKind};
pub use report::{LostConnection, OperationReport, Report};
