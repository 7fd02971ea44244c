//! What a znode costs in memory: the resident set's growth per znode, and what is left after
//! taking away the znode's own path and data bytes (issue #13 asks for at most 150 bytes).
//!
//! `cargo run --release --example znode_memory -- [ZNODES] [tree | DATA_DIR]`
//!
//! Creates ZNODES znodes (default 1,000,000) of 100 bytes under 1,000 parents, with paths of
//! about 60 bytes, through an in-process server: in memory, or durable in DATA_DIR (forceSync
//! off, so the disk does not set the pace). With `tree`, into a bare `DataTree` instead, to
//! tell the tree's share from the server's. Reads the resident set from /proc/self/statm.

use std::time::Instant;

use zookeeper_core::tree::DataTree;
use zookeeper_core::txn::{Txn, TxnOp};
use zookeeper_core::{Acl, CreateMode, Server, ServerConfig};

const VALUE_BYTES: usize = 100;
const CHILDREN_PER_PARENT: usize = 1000;

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .expect("rss field")
        .parse()
        .expect("pages");
    pages * 4096
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let znodes: usize = args
        .first()
        .map_or(1_000_000, |n| n.parse().expect("ZNODES"));
    let bare_tree = args.get(1).is_some_and(|arg| arg == "tree");
    let data_dir = args
        .get(1)
        .filter(|_| !bare_tree)
        .map(std::path::PathBuf::from);
    if let Some(dir) = &data_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    let config = ServerConfig {
        data_dir: data_dir.clone(),
        force_sync: false,
        ..ServerConfig::default()
    };
    let server = Server::start(config).expect("start");
    let zk = server.connect().expect("connect");
    let mut tree = DataTree::new();
    let mut zxid = 0;
    let acl = Acl::open_unsafe();
    let mut create = |path: &str, data: &[u8]| {
        if bare_tree {
            zxid += 1;
            let op = TxnOp::Create {
                path: path.to_owned(),
                data: Some(data.to_vec()),
                acl: acl.clone(),
                ephemeral_owner: 0,
                parent_cversion: -1,
            };
            tree.apply(zxid, &Txn { time_ms: 0, op })
                .result
                .expect("create");
        } else {
            zk.create(path, data, &acl, CreateMode::Persistent)
                .expect("create");
        }
    };
    let value = [7u8; VALUE_BYTES];
    let before = resident_bytes();
    let started = Instant::now();
    let mut own_bytes: u64 = 0;
    let parents = znodes.div_ceil(CHILDREN_PER_PARENT);
    let mut created = 0;
    for parent in 0..parents {
        let parent_path = format!("/footprint-{parent:05}");
        create(&parent_path, b"");
        own_bytes += parent_path.len() as u64;
        created += 1;
        for child in 0..CHILDREN_PER_PARENT.min(znodes - parent * CHILDREN_PER_PARENT) {
            // 60 bytes: "/footprint-00000/" (17) + "znode-0000-" (11) + 32 of padding.
            let path = format!("{parent_path}/znode-{child:04}-{:032}", child);
            create(&path, &value);
            own_bytes += (path.len() + VALUE_BYTES) as u64;
            created += 1;
        }
    }
    server.tick();
    let elapsed = started.elapsed().as_secs_f64();
    let growth = resident_bytes().saturating_sub(before);
    println!(
        "{created} znodes ({} data dir) in {elapsed:.1} s: RSS +{:.1} MB, {:.0} B per znode, \
         {:.0} B per znode beyond its path and data ({:.0} B of those)",
        match (bare_tree, &data_dir) {
            (true, _) => "a bare tree, no server, no",
            (false, Some(_)) => "durable",
            (false, None) => "no",
        },
        growth as f64 / 1e6,
        growth as f64 / created as f64,
        (growth as f64 - own_bytes as f64) / created as f64,
        own_bytes as f64 / created as f64,
    );
    if let Some(dir) = &data_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}
