//! zookeeper-bench, the binary: options in, a report on stdout, exit code 0 when measured, 1
//! when the run failed or lost a connection, 2 for arguments it cannot run.

use std::io::IsTerminal;
use std::process::ExitCode;

use zookeeper_bench::args::{self, Command, USAGE};

fn main() -> ExitCode {
    let (mut config, json) = match args::parse(std::env::args().skip(1)) {
        Ok(Command::Run { config, json }) => (config, json),
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
