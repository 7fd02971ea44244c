//! The deterministic simulation's seeds: whole ensembles (3 and 5 members) under the nemesis,
//! every history checked. `SEED=n` replays one seed alone; `SIM_SEEDS=n` runs seeds 1..=n
//! (default 1,000); `SIM_MS` sets the simulated time with faults per seed; `SIM_FAULTS=0` runs without
//! the nemesis; `SIM_RECONFIG=0` without the operator's reconfigs.

use zookeeper_core::sim::{run, SimConfig};

fn env(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
}

#[test]
fn every_seed_keeps_zookeepers_guarantees() {
    let seeds: Vec<u64> = match (env("SEED"), env("SIM_SEEDS")) {
        (Some(seed), _) => vec![seed],
        (None, Some(count)) => (1..=count).collect(),
        (None, None) => (1..=1_000).collect(),
    };
    let duration_ms = env("SIM_MS").unwrap_or(8_000);
    let mut failures = Vec::new();
    let mut operations = (0, 0);
    for &seed in &seeds {
        let config = SimConfig {
            seed,
            // Odd seeds run 3 members, even ones 5.
            members: if seed % 2 == 1 { 3 } else { 5 },
            duration_ms,
            faults: env("SIM_FAULTS") != Some(0),
            reconfigure: env("SIM_RECONFIG") != Some(0),
            ..SimConfig::default()
        };
        let report = match std::panic::catch_unwind(|| run(&config)) {
            Ok(report) => report,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
                    .unwrap_or_default();
                eprintln!("seed {seed}: PANIC {message}; replay alone with SEED={seed}");
                failures.push(seed);
                continue;
            }
        };
        operations.0 += report.operations.0;
        operations.1 += report.operations.1;
        if !report.violations.is_empty() {
            eprintln!("{report}");
            failures.push(seed);
        }
    }
    eprintln!(
        "{} seeds, {} register and {} queue operations checked",
        seeds.len(),
        operations.0,
        operations.1
    );
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
}
