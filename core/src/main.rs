//! zookeeper-rs: serves the ZooKeeper client protocol on 127.0.0.1:2181 (or as configured).
//!
//! `zookeeper-rs [--port N] [--data-dir DIR] [--config zoo.cfg]`

use std::process::ExitCode;

fn main() -> ExitCode {
    zookeeper_core::server::cli::main(std::env::args().skip(1).collect())
}
