//! The server binary's command line: flags and zoo.cfg in, a running server until SIGINT or
//! SIGTERM out.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::server::net::NetServer;
use crate::server::zoo_cfg::ZooCfg;
use crate::server::{Engine, Server};

const USAGE: &str = "usage: zookeeper-rs [--port PORT] [--data-dir DIR] [--config zoo.cfg]";

/// Runs the server binary with its arguments (without the program name).
pub fn main(args: Vec<String>) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("zookeeper-rs: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let mut port = None;
    let mut data_dir = None;
    let mut config = None;
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--port" => {
                port = Some(
                    value("--port")?
                        .parse::<u16>()
                        .map_err(|_| format!("--port must be a port number\n{USAGE}"))?,
                )
            }
            "--data-dir" => data_dir = Some(PathBuf::from(value("--data-dir")?)),
            "--config" => config = Some(PathBuf::from(value("--config")?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let mut cfg = match &config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
            ZooCfg::parse(&text).map_err(|error| format!("{}: {error}", path.display()))?
        }
        None => ZooCfg::new(),
    };
    for warning in &cfg.warnings {
        tracing::warn!("{warning}");
    }
    if let Some(port) = port {
        cfg.net.address.set_port(port);
    }
    let data_dir = data_dir
        .or(cfg.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("zk-data"));
    tracing::info!(
        data_dir = %data_dir.display(),
        force_sync = cfg.server.force_sync,
        "opening the data directory"
    );
    cfg.server.data_dir = Some(data_dir.clone());
    cfg.net.data_dir = Some(data_dir.clone());
    let server = Server::start(cfg.server.clone()).map_err(|error| error.to_string())?;
    let net = NetServer::start(Arc::clone(server.engine()), cfg.net.clone())
        .map_err(|error| format!("cannot listen on {}: {error}", cfg.net.address))?;
    let stop = wait_for_stop(server.engine());
    tracing::info!(address = %net.local_address(), "shutting down");
    drop(net);
    match stop {
        Stop::Signal => {
            drop(server);
            Ok(())
        }
        // Sessions are not closed: that would need writes the log can no longer take.
        Stop::StorageFailed => {
            drop(server);
            Err("the transaction log failed (see the error above); stopped to keep what was acknowledged".into())
        }
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
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
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
