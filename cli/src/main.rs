//! zookeeper-rs, the server binary: flags and zoo.cfg in, a server serving ZooKeeper's client
//! protocol until SIGINT or SIGTERM out.
//!
//! `zookeeper-rs [--port N] [--data-dir DIR] [--config zoo.cfg]`, or
//! `zookeeper-rs import|export --from DIR --to DIR` to move data from and to Apache ZooKeeper
//! (migrate.rs).
//!
//! Only the command line lives here (arguments, the logging subscriber, signals); the server is
//! assembled by `zookeeper_core::server::embedded::ServerSetup`, as Python and C assemble theirs.

mod allocator;
mod migrate;

use std::path::PathBuf;
use std::process::ExitCode;

use zookeeper_core::server::embedded::ServerSetup;
use zookeeper_core::server::zoo_cfg::ZooCfg;
use zookeeper_core::server::Engine;

const USAGE: &str = "usage: zookeeper-rs [--port PORT] [--data-dir DIR] [--config zoo.cfg]\n       \
zookeeper-rs import --from ZK_DATA_DIR --to DATA_DIR [--from-logs DIR] [--stop-at-last-valid]\n       \
zookeeper-rs export --from DATA_DIR --to ZK_DATA_DIR";

/// Where the log and snapshots go when neither a flag nor zoo.cfg names a directory.
const DATA_DIR_DEFAULT: &str = "zk-data";

/// How often the binary looks whether the engine's storage failed.
const STORAGE_CHECK_INTERVAL_MS: u64 = 100;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    allocator::configure();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("import") => migrate::run_import(args[1..].to_vec()),
        Some("export") => migrate::run_export(args[1..].to_vec()),
        _ => run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("zookeeper-rs: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What the command line asked for.
struct Arguments {
    port: Option<u16>,
    data_dir: Option<PathBuf>,
    config: Option<PathBuf>,
}

/// Parses the flags; `Ok(None)` after printing the usage for `--help`.
fn parse_arguments(args: Vec<String>) -> Result<Option<Arguments>, String> {
    let mut parsed = Arguments {
        port: None,
        data_dir: None,
        config: None,
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--port" => {
                parsed.port = Some(
                    value("--port")?
                        .parse::<u16>()
                        .map_err(|_| format!("--port must be a port number\n{USAGE}"))?,
                )
            }
            "--data-dir" => parsed.data_dir = Some(PathBuf::from(value("--data-dir")?)),
            "--config" => parsed.config = Some(PathBuf::from(value("--config")?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(Some(parsed))
}

fn run(args: Vec<String>) -> Result<(), String> {
    let Some(arguments) = parse_arguments(args)? else {
        return Ok(());
    };
    let mut cfg = match &arguments.config {
        Some(path) => ZooCfg::read(path)?,
        None => ZooCfg::new(),
    };
    for warning in &cfg.warnings {
        tracing::warn!("{warning}");
    }
    if let Some(port) = arguments.port {
        cfg.net.address.set_port(port);
    }
    // The binary keeps data durably by default; only an embedding program runs in memory.
    let data_dir = arguments
        .data_dir
        .or(cfg.data_dir.take())
        .unwrap_or_else(|| PathBuf::from(DATA_DIR_DEFAULT));
    tracing::info!(
        data_dir = %data_dir.display(),
        force_sync = cfg.server.force_sync,
        allocator = allocator::NAME,
        "opening the data directory"
    );
    let running = ServerSetup::from_zoo_cfg(cfg)
        .with_data_dir(Some(data_dir))
        .start()
        .map_err(|error| error.to_string())?;
    let stop = wait_for_stop(running.server().engine());
    if let Some(address) = running.address() {
        tracing::info!(%address, "shutting down");
    }
    drop(running);
    match stop {
        Stop::Signal => Ok(()),
        // Sessions are not closed: that would need writes the log can no longer take.
        Stop::StorageFailed => Err(
            "the transaction log failed (see the error above); stopped to keep what was acknowledged"
                .into(),
        ),
    }
}

/// Why the server stops.
enum Stop {
    Signal,
    /// The log could not promise durability anymore (a failed fsync, a full disk).
    StorageFailed,
}

/// Blocks until SIGINT or SIGTERM, or until the engine stops accepting writes because its
/// storage failed (fail-stop: the process exits rather than serve on without durability).
fn wait_for_stop(engine: &Engine) -> Stop {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a signal runtime");
    runtime.block_on(async {
        let failed = async {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(STORAGE_CHECK_INTERVAL_MS))
                    .await;
                if engine.has_failed() {
                    return;
                }
            }
        };
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => Stop::Signal,
                _ = terminate.recv() => Stop::Signal,
                _ = failed => Stop::StorageFailed,
            }
        }
        #[cfg(not(unix))]
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => Stop::Signal,
                _ = failed => Stop::StorageFailed,
            }
        }
    })
}
