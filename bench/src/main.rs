//! zookeeper-bench, the binary: options in, a report on stdout, exit code 0 when measured, 1
//! when the run failed or lost a connection, 2 for arguments it cannot run.

use std::io::IsTerminal;
use std::process::ExitCode;

use zookeeper_bench::args::{self, Command, USAGE};
use zookeeper_bench::scenario::{Kind, ScenarioConfig};
use zookeeper_bench::{ephemerals, fanout};

fn main() -> ExitCode {
    let (mut config, json) = match args::parse(std::env::args().skip(1)) {
        Ok(Command::Run { config, json }) => (config, json),
        Ok(Command::Scenario { config, json }) => return run_scenario(&config, json),
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("zookeeper-bench: {error}");
            return ExitCode::from(2);
        }
    };
    // A progress line is for a person watching; in a pipe or a log it would be noise.
    config.progress = std::io::stderr().is_terminal();
    match zookeeper_bench::run(&config) {
        Ok(report) => {
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            if report.lost_connections.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "zookeeper-bench: {} connection(s) lost; the figures cover what was answered",
                    report.lost_connections.len()
                );
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("zookeeper-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A scenario other than the request mix: its report, or why it stopped (exit code 1).
fn run_scenario(config: &ScenarioConfig, json: bool) -> ExitCode {
    let report = match config.kind {
        Kind::WatchFanout { .. } => fanout::run(config).map(|report| match json {
            true => report.to_json() + "\n",
            false => report.to_text(),
        }),
        Kind::Ephemerals => ephemerals::run(config).map(|report| match json {
            true => report.to_json() + "\n",
            false => report.to_text(),
        }),
    };
    match report {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("zookeeper-bench: {error}");
            ExitCode::FAILURE
        }
    }
}
