//! In-process client throughput: one thread, persistence off (the in-memory log), ManualClock.
//! Run: `cargo bench -p zookeeper-core --bench in_process`. Figures go to docs/benchmarks.md.

#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use zookeeper_core::{Acl, CreateMode, Server, ServerConfig};

fn server() -> Server {
    let (config, _clock) = ServerConfig::with_manual_clock();
    Server::start(config).expect("valid config")
}

fn reads(c: &mut Criterion) {
    let server = server();
    let zk = server.connect().unwrap();
    let acl = Acl::open_unsafe();
    zk.create("/bench", &[7u8; 64], &acl, CreateMode::Persistent)
        .unwrap();
    for child in 0..10 {
        zk.create(
            &format!("/bench/c{child}"),
            b"",
            &acl,
            CreateMode::Persistent,
        )
        .unwrap();
    }
    let mut group = c.benchmark_group("read");
    group.throughput(Throughput::Elements(1));
    group.bench_function("get_data_64B", |b| {
        b.iter(|| zk.get_data("/bench", None).unwrap())
    });
    group.bench_function("exists", |b| b.iter(|| zk.exists("/bench", None).unwrap()));
    group.bench_function("get_children_10", |b| {
        b.iter(|| zk.get_children("/bench", None).unwrap())
    });
    group.finish();
}

fn writes(c: &mut Criterion) {
    let server = server();
    let zk = server.connect().unwrap();
    let acl = Acl::open_unsafe();
    zk.create("/bench", &[0u8; 64], &acl, CreateMode::Persistent)
        .unwrap();
    let mut group = c.benchmark_group("write");
    group.throughput(Throughput::Elements(1));
    let data = [1u8; 64];
    group.bench_function("set_data_64B", |b| {
        b.iter(|| zk.set_data("/bench", &data, -1).unwrap())
    });
    let mut next = 0u64;
    group.bench_function("create_64B", |b| {
        b.iter_batched(
            || {
                next += 1;
                format!("/bench/n{next}")
            },
            |path| {
                zk.create(&path, &data, &acl, CreateMode::Persistent)
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, reads, writes);
criterion_main!(benches);
