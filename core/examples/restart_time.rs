//! How long a member takes to start on a data directory holding many znodes: recovery reads
//! the newest snapshot and replays the log after it.
//!
//! `cargo run --release --example restart_time -- ZNODES DIR`
//!
//! Writes ZNODES znodes of 100 bytes (forceSync off, to build the directory quickly), once with
//! every Txn in the log and once with a snapshot covering them, and times each restart.

use std::path::{Path, PathBuf};
use std::time::Instant;

use zookeeper_core::{Acl, CreateMode, Server, ServerConfig};

fn fill(dir: &Path, znodes: usize, snap_count: u64) {
    let config = ServerConfig {
        data_dir: Some(dir.to_path_buf()),
        force_sync: false,
        snap_count,
        ..ServerConfig::default()
    };
    let server = Server::start(config).expect("start");
    let zk = server.connect().expect("connect");
    let acl = Acl::open_unsafe();
    let value = [7u8; 100];
    for parent in 0..(znodes / 1000).max(1) {
        let parent_path = format!("/p{parent}");
        zk.create(&parent_path, b"", &acl, CreateMode::Persistent)
            .expect("parent");
        for child in 0..1000.min(znodes) {
            zk.create(
                &format!("{parent_path}/c{child}"),
                &value,
                &acl,
                CreateMode::Persistent,
            )
            .expect("child");
        }
    }
    // A snapshot is taken at a tick once snap_count Txns have applied.
    server.tick();
}

fn restart(dir: &Path) -> (f64, usize) {
    let config = ServerConfig {
        data_dir: Some(dir.to_path_buf()),
        ..ServerConfig::default()
    };
    let started = Instant::now();
    let server = Server::start(config).expect("restart");
    let elapsed = started.elapsed().as_secs_f64();
    (elapsed, server.engine().znode_count())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [znodes, dir] = args.as_slice() else {
        eprintln!("usage: restart_time ZNODES DIR");
        std::process::exit(2);
    };
    let znodes: usize = znodes.parse().expect("ZNODES");
    for (layout, snap_count) in [("log only", u64::MAX / 2), ("snapshot", 1)] {
        let dir = PathBuf::from(dir).join(layout.replace(' ', "-"));
        let _ = std::fs::remove_dir_all(&dir);
        fill(&dir, znodes, snap_count);
        let (seconds, count) = restart(&dir);
        println!("{layout}: restart with {count} znodes took {seconds:.2} s");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
