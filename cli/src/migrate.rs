//! The `import` and `export` subcommands: Apache ZooKeeper's data directory to ours and back,
//! with a progress bar on a terminal and a summary at the end.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use zookeeper_core::migrate::{self, ImportOptions, Progress};

pub const IMPORT_USAGE: &str = "usage: zookeeper-rs import --from ZK_DATA_DIR --to DATA_DIR \
[--from-logs ZK_DATA_LOG_DIR] [--stop-at-last-valid]";
pub const EXPORT_USAGE: &str = "usage: zookeeper-rs export --from DATA_DIR --to ZK_DATA_DIR";

/// Characters in the progress bar.
const BAR_WIDTH: u64 = 40;
/// How often the bar is redrawn at most.
const REDRAW_INTERVAL: Duration = Duration::from_millis(100);

/// `import ...`: converts and prints the summary.
pub fn run_import(args: Vec<String>) -> Result<(), String> {
    let mut from = None;
    let mut to = None;
    let mut options = ImportOptions::default();
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .map(PathBuf::from)
                .ok_or(format!("{name} needs a value\n{IMPORT_USAGE}"))
        };
        match flag.as_str() {
            "--from" => from = Some(value("--from")?),
            "--to" => to = Some(value("--to")?),
            "--from-logs" => options.log_dir = Some(value("--from-logs")?),
            "--stop-at-last-valid" => options.stop_at_last_valid = true,
            "-h" | "--help" => {
                println!("{IMPORT_USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}\n{IMPORT_USAGE}")),
        }
    }
    let (Some(from), Some(to)) = (from, to) else {
        return Err(format!("--from and --to are both needed\n{IMPORT_USAGE}"));
    };
    let started = Instant::now();
    let mut bar = ProgressBar::new("import");
    let summary = migrate::import(&from, &to, &options, &mut |progress| bar.draw(progress));
    bar.finish();
    let summary = summary.map_err(|error| error.to_string())?;
    for warning in &summary.warnings {
        eprintln!("warning: {warning}");
    }
    let source = summary
        .snapshot
        .as_ref()
        .map_or("logs only".to_owned(), |path| path.display().to_string());
    println!(
        "imported {} into {} in {:.1} s: {summary} (snapshot: {source})",
        from.display(),
        to.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `export ...`: converts and prints the summary.
pub fn run_export(args: Vec<String>) -> Result<(), String> {
    let mut from = None;
    let mut to = None;
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .map(PathBuf::from)
                .ok_or(format!("{name} needs a value\n{EXPORT_USAGE}"))
        };
        match flag.as_str() {
            "--from" => from = Some(value("--from")?),
            "--to" => to = Some(value("--to")?),
            "-h" | "--help" => {
                println!("{EXPORT_USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}\n{EXPORT_USAGE}")),
        }
    }
    let (Some(from), Some(to)) = (from, to) else {
        return Err(format!("--from and --to are both needed\n{EXPORT_USAGE}"));
    };
    let started = Instant::now();
    let mut bar = ProgressBar::new("export");
    let summary = migrate::export(&from, &to, &mut |progress| bar.draw(progress));
    bar.finish();
    let summary = summary.map_err(|error| error.to_string())?;
    let written = summary
        .snapshot
        .as_ref()
        .map_or(String::new(), |path| path.display().to_string());
    println!(
        "exported {} into {} in {:.1} s: {summary} (wrote {written})",
        from.display(),
        to.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A one-line bar on stderr, drawn only when stderr is a terminal (logs stay clean).
struct ProgressBar {
    label: &'static str,
    enabled: bool,
    drawn: Option<Instant>,
}

impl ProgressBar {
    fn new(label: &'static str) -> ProgressBar {
        ProgressBar {
            label,
            enabled: std::io::stderr().is_terminal(),
            drawn: None,
        }
    }

    fn draw(&mut self, progress: Progress) {
        if !self.enabled || self.drawn.is_some_and(|at| at.elapsed() < REDRAW_INTERVAL) {
            return;
        }
        self.drawn = Some(Instant::now());
        let total = progress.total_bytes.max(1);
        let done = progress.done_bytes.min(total);
        let filled = done * BAR_WIDTH / total;
        let mut stderr = std::io::stderr().lock();
        let _ = write!(
            stderr,
            "\r{} [{}{}] {:3}% {:.1}/{:.1} MB",
            self.label,
            "#".repeat(filled as usize),
            " ".repeat((BAR_WIDTH - filled) as usize),
            done * 100 / total,
            done as f64 / 1e6,
            total as f64 / 1e6
        );
        let _ = stderr.flush();
    }

    fn finish(&mut self) {
        if self.enabled && self.drawn.is_some() {
            eprintln!();
        }
    }
}
