//! The read cache's benchmark (issue 14): Zipf-distributed reads (getData, exists,
//! getChildren) over many znodes while another client writes a fixed share of all operations,
//! first through a client without a cache, then through one with it, both over TCP; reads per
//! second and the hit rate of each kind of read.
//!
//! ```text
//! cargo run --release -p zookeeper-bench --example read_cache -- --hosts 127.0.0.1:2181
//! ```
//!
//! Not a timed test: a measurement to run on a quiet machine, figures in docs/benchmarks.md.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zookeeper_bench::zipf::ZipfSampler;
use zookeeper_core::op::Op;
use zookeeper_core::random::SplitMix64;
use zookeeper_core::{
    Acl, Client, ConnectOptions, CreateMode, CreateRequest, ReadCacheConfig, ReadCacheStats,
};

struct Settings {
    hosts: String,
    znodes: u64,
    exponent: f64,
    seconds: u64,
    warmup_seconds: u64,
    threads: usize,
    /// Writes as a share of all operations, in percent.
    write_percent: u64,
    cache_entries: usize,
}

const USAGE: &str = "usage: read_cache [--hosts H:P] [--znodes N] [--exponent S] [--seconds N] \
[--warmup-seconds N] [--threads N] [--write-percent P] [--cache-entries N]";

fn parse() -> Result<Settings, String> {
    let mut settings = Settings {
        hosts: "127.0.0.1:2181".into(),
        znodes: 10_000,
        exponent: 1.0,
        seconds: 10,
        warmup_seconds: 2,
        threads: 4,
        write_percent: 1,
        cache_entries: 30_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(name) = args.next() {
        let value = args
            .next()
            .ok_or(format!("{name} needs a value\n{USAGE}"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{name}: {value:?}"))
        };
        match name.as_str() {
            "--hosts" => settings.hosts = value.clone(),
            "--znodes" => settings.znodes = number()?.max(1),
            "--exponent" => {
                settings.exponent = value
                    .parse()
                    .ok()
                    .filter(|exponent: &f64| *exponent > 0.0)
                    .ok_or(format!("--exponent: {value:?}"))?
            }
            "--seconds" => settings.seconds = number()?.max(1),
            "--warmup-seconds" => settings.warmup_seconds = number()?,
            "--threads" => settings.threads = number()?.clamp(1, 64) as usize,
            "--write-percent" => settings.write_percent = number()?.min(50),
            "--cache-entries" => settings.cache_entries = number()?.max(1) as usize,
            _ => return Err(format!("unknown option {name}\n{USAGE}")),
        }
    }
    Ok(settings)
}

/// 60% getData, 20% exists, 20% getChildren.
fn read_op(random: &mut SplitMix64, path: String) -> Op {
    match random.below(10) {
        0..=5 => Op::GetData { path, watch: false },
        6 | 7 => Op::Exists { path, watch: false },
        _ => Op::GetChildren { path, watch: false },
    }
}

struct Measured {
    reads: u64,
    writes: u64,
    elapsed: Duration,
    stats: Option<(ReadCacheStats, ReadCacheStats)>,
}

fn znode(prefix: &str, rank: u64) -> String {
    format!("{prefix}/n{}", rank - 1)
}

/// Writes sent and not yet answered, at most.
const WRITES_IN_FLIGHT_MAX: usize = 64;

/// Readers on `reader` and a writer on `writer` for warm-up plus `seconds`. `with_child`: the
/// znodes whose child `c` exists (only the writer makes or removes them).
fn measure(
    settings: &Settings,
    prefix: &str,
    reader: Arc<Client>,
    writer: &Client,
    with_child: &mut HashSet<String>,
) -> Measured {
    let sampler = ZipfSampler::new(settings.znodes, settings.exponent);
    let reads = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..settings.threads)
        .map(|index| {
            let (reader, reads, stop, sampler) =
                (reader.clone(), reads.clone(), stop.clone(), sampler.clone());
            let prefix = prefix.to_string();
            std::thread::spawn(move || {
                let mut random = SplitMix64::new(0x5eed + index as u64);
                while !stop.load(Ordering::Relaxed) {
                    let path = znode(&prefix, sampler.sample(&mut random));
                    let op = read_op(&mut random, path);
                    reader.submit(op, None).expect("a read");
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut random = SplitMix64::new(0x3717e);
    let mut writes = 0u64;
    let mut in_flight = VecDeque::new();
    let mut window = None;
    let start = Instant::now();
    let warmup = Duration::from_secs(settings.warmup_seconds);
    let end = warmup + Duration::from_secs(settings.seconds);
    loop {
        let now = start.elapsed();
        if window.is_none() && now >= warmup {
            window = Some((
                Instant::now(),
                reads.load(Ordering::Relaxed),
                writes,
                reader.read_cache_stats(),
            ));
        }
        if now >= end {
            break;
        }
        // Writes are `write_percent` of all operations: one per so many reads.
        let due = reads.load(Ordering::Relaxed) * settings.write_percent
            / (100 - settings.write_percent).max(1);
        if writes >= due {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        let path = znode(prefix, sampler.sample(&mut random));
        let value = random.next_u64().to_be_bytes().to_vec();
        // Mostly data changes; a fifth add or remove a child, which children reads see.
        let op = if random.below(5) == 0 {
            let child = format!("{path}/c");
            if with_child.remove(&child) {
                Op::Delete {
                    path: child,
                    version: -1,
                }
            } else {
                with_child.insert(child.clone());
                Op::Create(CreateRequest {
                    path: child,
                    data: Some(value),
                    acl: Acl::open_unsafe(),
                    mode: CreateMode::Persistent,
                    ttl_ms: -1,
                })
            }
        } else {
            Op::SetData {
                path,
                data: Some(value),
                version: -1,
            }
        };
        // Pipelined, so one writer keeps up with the share of writes however fast reads go.
        in_flight.push_back(writer.submit_deferred(op, None));
        if in_flight.len() > WRITES_IN_FLIGHT_MAX {
            in_flight.pop_front().unwrap().wait().expect("a write");
        }
        writes += 1;
    }
    for write in in_flight {
        write.wait().expect("a write");
    }
    let (started, reads_before, writes_before, stats_before) = window.expect("a window");
    let elapsed = started.elapsed();
    let reads_done = reads.load(Ordering::Relaxed) - reads_before;
    let stats_after = reader.read_cache_stats();
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    Measured {
        reads: reads_done,
        writes: writes - writes_before,
        elapsed,
        stats: stats_before.zip(stats_after),
    }
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn hit_rate(before: (u64, u64), after: (u64, u64)) -> String {
    let (hits, misses) = (after.0 - before.0, after.1 - before.1);
    if hits + misses == 0 {
        return "-".into();
    }
    format!("{:.1}%", 100.0 * hits as f64 / (hits + misses) as f64)
}

fn row(mode: &str, measured: &Measured) -> String {
    let hits = match measured.stats {
        Some((before, after)) => [
            hit_rate((before.hits, before.misses), (after.hits, after.misses)),
            hit_rate(
                (before.data.hits, before.data.misses),
                (after.data.hits, after.data.misses),
            ),
            hit_rate(
                (before.exists.hits, before.exists.misses),
                (after.exists.hits, after.exists.misses),
            ),
            hit_rate(
                (before.children.hits, before.children.misses),
                (after.children.hits, after.children.misses),
            ),
        ]
        .join(" | "),
        None => "- | - | - | -".into(),
    };
    format!(
        "| {mode} | {:.0} | {:.0} | {hits} |",
        rate(measured.reads, measured.elapsed),
        rate(measured.writes, measured.elapsed),
    )
}

fn main() {
    let settings = match parse() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(2);
        }
    };
    let connect = |cache: Option<ReadCacheConfig>| {
        Client::connect(
            &settings.hosts,
            ConnectOptions {
                read_cache: cache,
                ..ConnectOptions::default()
            },
        )
        .expect("a session")
    };
    let writer = connect(None);
    let prefix = format!(
        "/bench-read-cache-{:x}",
        SplitMix64::new(std::process::id() as u64).next_u64()
    );
    writer
        .create(&prefix, b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .expect("the prefix");
    let value = [7u8; 100];
    let pending: Vec<_> = (1..=settings.znodes)
        .map(|rank| {
            writer.submit_deferred(
                Op::Create(CreateRequest {
                    path: znode(&prefix, rank),
                    data: Some(value.to_vec()),
                    acl: Acl::open_unsafe(),
                    mode: CreateMode::Persistent,
                    ttl_ms: -1,
                }),
                None,
            )
        })
        .collect();
    for reply in pending {
        reply.wait().expect("a znode");
    }
    println!(
        "{} znodes of 100 bytes, Zipf exponent {}, {} reader threads on one session, {}% writes \
         from another session, {} s measured after {} s warm-up, cache of {} entries",
        settings.znodes,
        settings.exponent,
        settings.threads,
        settings.write_percent,
        settings.seconds,
        settings.warmup_seconds,
        settings.cache_entries
    );
    println!("| client | reads/s | writes/s | hit rate | getData | exists | getChildren |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut with_child = HashSet::new();
    let uncached = measure(
        &settings,
        &prefix,
        Arc::new(connect(None)),
        &writer,
        &mut with_child,
    );
    println!("{}", row("uncached", &uncached));
    let cache = ReadCacheConfig {
        entries_max: settings.cache_entries,
        ..ReadCacheConfig::default()
    };
    let cached = measure(
        &settings,
        &prefix,
        Arc::new(connect(Some(cache))),
        &writer,
        &mut with_child,
    );
    println!("{}", row("cached", &cached));
    println!(
        "cached / uncached reads per second: {:.1}x",
        rate(cached.reads, cached.elapsed) / rate(uncached.reads, uncached.elapsed)
    );
    // Children first: the znodes' own deletes need them gone.
    for child in &with_child {
        let _ = writer.delete(child, -1);
    }
    let deletes: Vec<_> = (1..=settings.znodes)
        .map(|rank| {
            let path = znode(&prefix, rank);
            writer.submit_deferred(Op::Delete { path, version: -1 }, None)
        })
        .collect();
    for delete in deletes {
        let _ = delete.wait();
    }
    let _ = writer.delete(&prefix, -1);
}
