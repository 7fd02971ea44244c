//! The server binary's memory allocator, chosen at build time by a cargo feature.
//!
//! Only the binary chooses: the library that Python and C programs link leaves the allocator
//! to the program that hosts it. Why the default is what it is: docs/benchmarks.md,
//! "Allocators" (memory per znode, memory given back after large znodes are deleted, and
//! throughput, measured with each).

#[cfg(all(feature = "allocator-mimalloc", feature = "allocator-jemalloc"))]
compile_error!("choose one allocator feature, not both");

#[cfg(feature = "allocator-mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "allocator-jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The allocator this binary was built with, for the start-up log line.
pub const NAME: &str = if cfg!(feature = "allocator-mimalloc") {
    "mimalloc"
} else if cfg!(feature = "allocator-jemalloc") {
    "jemalloc"
} else {
    "system"
};

/// Settles the allocator's run-time options; call once at start.
///
/// jemalloc returns freed memory to the system only as it decays (10 s) and, by default, only
/// while the program allocates: a server that went quiet after deleting large znodes kept
/// them resident. Its background thread purges on time alone.
pub fn configure() {
    #[cfg(feature = "allocator-jemalloc")]
    if let Err(error) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!(%error, "jemalloc's background purging is off: freed memory returns later");
    }
}
