//! A whole run: open the sessions, create the prefix and the keys, warm up and measure, clean
//! up and close, and turn what was recorded into a `Report`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use zookeeper_core::op::{CreateRequest, Op, Reply};
use zookeeper_core::proto::wire::{self, Request};
use zookeeper_core::proto::{ErrorCode, OpCode};
use zookeeper_core::random::SplitMix64;
use zookeeper_core::{Acl, CreateMode};

use crate::config::{BenchConfig, ConfigError, Length};
use crate::connection::{ConnectError, Connection, LostReason};
use crate::progress::Progress;
use crate::recorder::Recorder;
use crate::report::{self, describe_lost, error_name, LostConnection, Report};
use crate::schedule::{self, Schedule, BACKLOG_PER_SESSION_MAX};
use crate::session::{self, Counters, Pacing, SessionLost, Source};
use crate::sources::{
    CleanupList, CleanupSource, ClosedLoopStop, RunSource, SetupSource, SharedCursor,
};
use crate::workload::{SessionWorkload, Workload};

/// How long closing a session may take before the run stops waiting for its answer.
const CLOSE_TIMEOUT_MS: u64 = 2_000;

/// Why a run could not produce a report. A server error on a measured request is not one
/// (it is counted), and neither is a connection lost while measuring (it is reported).
#[derive(Debug)]
pub enum RunError {
    /// A setting broke its rule.
    Config(ConfigError),
    /// The client's runtime or a thread of it could not start.
    Runtime(std::io::Error),
    /// A session could not be opened.
    Connect {
        /// Which session.
        session: usize,
        /// Its server.
        host: String,
        /// What went wrong.
        error: ConnectError,
    },
    /// The prefix exists already; the run will not create keys in (and then delete) a tree
    /// it did not make.
    PrefixExists(String),
    /// Creating the prefix or the keys was refused; the message says which and why.
    Setup(String),
    /// A connection broke before measuring began.
    Lost(LostConnection),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Config(error) => write!(f, "{error}"),
            RunError::Runtime(error) => write!(f, "cannot start the client's threads: {error}"),
            RunError::Connect {
                session,
                host,
                error,
            } => write!(f, "session {session} cannot connect to {host}: {error}"),
            RunError::PrefixExists(prefix) => write!(
                f,
                "{prefix} exists already; give another --prefix (or delete it), since the run deletes its prefix afterwards"
            ),
            RunError::Setup(why) => write!(f, "setup failed: {why}"),
            RunError::Lost(lost) => write!(f, "{}", describe_lost(lost)),
        }
    }
}

impl std::error::Error for RunError {}

/// Runs the benchmark `config` describes and reports what it measured.
pub fn run(config: &BenchConfig) -> Result<Report, RunError> {
    config.validate().map_err(RunError::Config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads)
        .thread_name("zookeeper-bench")
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    let counters = Arc::new(Counters::default());
    let progress = match config.progress {
        true => Some(Progress::start(Arc::clone(&counters), "connect").map_err(RunError::Runtime)?),
        false => None,
    };
    let outcome = runtime.block_on(execute(config, &counters, progress.as_ref()));
    if let Some(progress) = progress {
        progress.finish();
    }
    outcome
}

/// One session's place in the run; `connection` is None once it broke.
struct Slot {
    session: usize,
    host: String,
    connection: Option<Connection>,
}

/// What one phase gave back: the sources (with what they know), the merged outcomes and the
/// connections that broke.
struct PhaseOutcome<S> {
    sources: Vec<S>,
    recorder: Recorder,
    lost: Vec<LostConnection>,
}

async fn execute(
    config: &BenchConfig,
    counters: &Arc<Counters>,
    progress: Option<&Progress>,
) -> Result<Report, RunError> {
    let show = |phase| progress.inspect(|progress| progress.phase(phase));
    // 53 bits, so JSON readers that hold numbers as doubles keep the seed exact.
    let seed = config.seed.unwrap_or_else(|| entropy().next_u64() >> 11);
    let prefix = config
        .prefix
        .clone()
        .unwrap_or_else(|| format!("/bench-{:08x}", entropy().next_u64() as u32));
    let workload = Arc::new(Workload::new(config, prefix.clone()));
    let mut slots = open_sessions(config).await?;

    show("setup");
    let setup_start = Instant::now();
    if let Err(error) = setup(config, &workload, &mut slots, counters).await {
        // Best effort: take away what was made, then say why the run stopped.
        if !matches!(error, RunError::PrefixExists(_)) {
            cleanup(config, &workload, &mut slots, vec![], counters).await;
        }
        close_sessions(&mut slots).await;
        return Err(error);
    }
    let setup_s = setup_start.elapsed().as_secs_f64();

    show("run");
    let (measured, sources, tickets_dropped) =
        measure(config, &workload, seed, &mut slots, counters).await?;
    let mut lost_connections = measured.lost;
    let elapsed_s = measured.recorder.last_completion().map_or(0.0, |last| {
        (last - measured.recorder.record_from()).as_secs_f64()
    });

    show("cleanup");
    let cleanup_outcome = if config.cleanup {
        let created = sources
            .iter()
            .flat_map(|source| {
                let session = source.workload.session();
                source
                    .workload
                    .created()
                    .map(move |sequence| (session, sequence))
            })
            .collect();
        let (outcome, lost) = cleanup(config, &workload, &mut slots, created, counters).await;
        lost_connections.extend(lost);
        outcome
    } else {
        "skipped (--keep)".to_string()
    };
    close_sessions(&mut slots).await;

    let (operations, total) = report::operations(&measured.recorder, elapsed_s);
    Ok(Report {
        hosts: config.hosts.clone(),
        sessions: config.sessions,
        pipeline: config.pipeline,
        rate_per_second: config.rate_per_second,
        mix: config.mix.to_string(),
        value_bytes: config.value_bytes,
        keys: config.keys,
        distribution: config.distribution.to_string(),
        seed,
        prefix,
        warmup_s: config.warmup.as_secs_f64(),
        elapsed_s,
        operations,
        total,
        tickets_dropped,
        lost_connections,
        setup_s,
        cleanup: cleanup_outcome,
    })
}

/// A generator seeded from the clock and the process id: for the prefix and an unset seed,
/// which must differ between runs (two runs sharing a prefix would delete each other's keys).
fn entropy() -> SplitMix64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64);
    SplitMix64::new(nanos ^ (u64::from(std::process::id()) << 32))
}

/// Opens every session at once; session i goes to host i mod hosts.
async fn open_sessions(config: &BenchConfig) -> Result<Vec<Slot>, RunError> {
    let opening: Vec<_> = (0..config.sessions)
        .map(|session| {
            let host = config.hosts[session % config.hosts.len()].clone();
            let timeout = config.session_timeout;
            tokio::spawn(async move {
                let connection = Connection::open(&host, timeout).await;
                (session, host, connection)
            })
        })
        .collect();
    let mut slots = Vec::with_capacity(config.sessions);
    let mut first_error = None;
    for task in opening {
        let (session, host, connection) = joined(task.await);
        match connection {
            Ok(connection) => slots.push(Slot {
                session,
                host,
                connection: Some(connection),
            }),
            Err(error) => {
                first_error.get_or_insert(RunError::Connect {
                    session,
                    host,
                    error,
                });
            }
        }
    }
    match first_error {
        None => Ok(slots),
        Some(error) => {
            close_sessions(&mut slots).await;
            Err(error)
        }
    }
}

/// A task's result; a task's panic is the run's (it is a bug).
fn joined<T>(result: Result<T, tokio::task::JoinError>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

/// Creates the prefix (refusing one that exists), then the keys over every session.
async fn setup(
    config: &BenchConfig,
    workload: &Arc<Workload>,
    slots: &mut Vec<Slot>,
    counters: &Arc<Counters>,
) -> Result<(), RunError> {
    let create = Op::Create(CreateRequest {
        path: workload.prefix.clone(),
        data: Some(Vec::new()),
        acl: Acl::open_unsafe(),
        mode: CreateMode::Persistent,
        ttl_ms: -1,
    });
    let err = call(&mut slots[0], OpCode::Create, create, "setup")
        .await?
        .0;
    match ErrorCode::from_code(err) {
        _ if err == 0 => {}
        Some(ErrorCode::NodeExists) => return Err(RunError::PrefixExists(workload.prefix.clone())),
        _ => {
            return Err(RunError::Setup(format!(
                "creating {}: {}",
                workload.prefix,
                error_name(err)
            )))
        }
    }
    let keys = Arc::new(SharedCursor::new(config.keys));
    let sources = slots
        .iter()
        .map(|_| SetupSource {
            workload: Arc::clone(workload),
            keys: Arc::clone(&keys),
        })
        .collect();
    let pacings = closed_loop(slots);
    let outcome = run_all(
        slots,
        sources,
        pacings,
        config.pipeline,
        Instant::now(),
        counters,
        "setup",
    )
    .await;
    if let Some(lost) = outcome.lost.into_iter().next() {
        return Err(RunError::Lost(lost));
    }
    match outcome.recorder.total() {
        Some(total) if !total.errors.is_empty() => {
            let errors: Vec<String> = total
                .errors
                .iter()
                .map(|(&code, count)| format!("{} x {count}", error_name(code)))
                .collect();
            Err(RunError::Setup(format!(
                "creating keys: {}",
                errors.join(", ")
            )))
        }
        _ => Ok(()),
    }
}

/// The warmup and the measured run; gives back the outcomes, each session's source (which
/// knows the znodes its creates left) and the fixed-rate requests dropped.
async fn measure(
    config: &BenchConfig,
    workload: &Arc<Workload>,
    seed: u64,
    slots: &mut Vec<Slot>,
    counters: &Arc<Counters>,
) -> Result<(PhaseOutcome<RunSource>, Vec<RunSource>, u64), RunError> {
    let start = Instant::now();
    let measure_from = start + config.warmup;
    let dropped = Arc::new(AtomicU64::new(0));
    let (stop, pacings, pacer) = match config.rate_per_second {
        None => {
            let stop = match config.length {
                Length::Duration(duration) => ClosedLoopStop::Until(measure_from + duration),
                Length::Ops(ops) => ClosedLoopStop::Budget {
                    measure_from,
                    budget: Arc::new(SharedCursor::new(ops)),
                },
            };
            (stop, closed_loop(slots), None)
        }
        Some(rate) => {
            let schedule = Schedule::new(rate);
            let (senders, receivers): (Vec<_>, Vec<_>) = slots
                .iter()
                .map(|_| tokio::sync::mpsc::channel(BACKLOG_PER_SESSION_MAX))
                .unzip();
            let limit = schedule.ticket_limit(config.warmup, config.length);
            let pacer =
                schedule::spawn_pacer(schedule, start, limit, senders, Arc::clone(&dropped))
                    .map_err(RunError::Runtime)?;
            let pacings = receivers.into_iter().map(Pacing::Tickets).collect();
            (ClosedLoopStop::Pacer, pacings, Some(pacer))
        }
    };
    let sources = slots
        .iter()
        .map(|slot| RunSource {
            workload: SessionWorkload::new(Arc::clone(workload), slot.session, seed),
            stop: stop.clone(),
        })
        .collect();
    let mut outcome = run_all(
        slots,
        sources,
        pacings,
        config.pipeline,
        measure_from,
        counters,
        "run",
    )
    .await;
    if let Some(pacer) = pacer {
        // The pacer ends once its last ticket is out or every session is gone: both happened.
        joined(tokio::task::spawn_blocking(move || pacer.join()).await)
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    }
    let sources = std::mem::take(&mut outcome.sources);
    Ok((outcome, sources, dropped.load(Ordering::Relaxed)))
}

/// Deletes the keys, what creates left (`created`: session and sequence) and anything else
/// found under the prefix, then the prefix. Says how it went, and which connections broke.
async fn cleanup(
    config: &BenchConfig,
    workload: &Arc<Workload>,
    slots: &mut Vec<Slot>,
    created: Vec<(usize, u64)>,
    counters: &Arc<Counters>,
) -> (String, Vec<LostConnection>) {
    let prefix = workload.prefix.clone();
    let list = Arc::new(CleanupList {
        prefix: prefix.clone(),
        keys: config.keys,
        created,
        extra: Vec::new(),
    });
    let mut lost = delete_all(config, slots, list, counters).await;
    // Whatever is still there (nothing, unless a create's znode was missed): list and delete.
    let outcome = match list_children(slots, &prefix).await {
        Err(error) => format!("incomplete: {error}"),
        Ok(children) => {
            let extra = children
                .into_iter()
                .map(|child| format!("{prefix}/{child}"))
                .collect();
            let list = Arc::new(CleanupList {
                prefix: prefix.clone(),
                keys: 0,
                created: Vec::new(),
                extra,
            });
            if !list.is_empty() {
                lost.extend(delete_all(config, slots, list, counters).await);
            }
            match live_slot(slots) {
                None => "incomplete: no session left".to_string(),
                Some(slot) => {
                    let delete = Op::Delete {
                        path: prefix.clone(),
                        version: -1,
                    };
                    match call(slot, OpCode::Delete, delete, "cleanup").await {
                        Ok((0, _)) => "done".to_string(),
                        Ok((err, _)) => {
                            format!("incomplete: deleting {prefix}: {}", error_name(err))
                        }
                        Err(error) => format!("incomplete: {error}"),
                    }
                }
            }
        }
    };
    (outcome, lost)
}

/// Deletes every path of `list` over the live sessions; NoNode is fine (a create that was
/// refused, a key the setup never reached).
async fn delete_all(
    config: &BenchConfig,
    slots: &mut Vec<Slot>,
    list: Arc<CleanupList>,
    counters: &Arc<Counters>,
) -> Vec<LostConnection> {
    let cursor = Arc::new(SharedCursor::new(list.len()));
    let sources = slots
        .iter()
        .map(|_| CleanupSource {
            list: Arc::clone(&list),
            cursor: Arc::clone(&cursor),
        })
        .collect();
    let pacings = closed_loop(slots);
    run_all(
        slots,
        sources,
        pacings,
        config.pipeline,
        Instant::now(),
        counters,
        "cleanup",
    )
    .await
    .lost
}

/// The names of the prefix's children, asked by the first live session.
async fn list_children(slots: &mut [Slot], prefix: &str) -> Result<Vec<String>, String> {
    let slot = live_slot(slots).ok_or("no session left")?;
    let list = Op::GetChildren {
        path: prefix.to_string(),
        watch: false,
    };
    let (err, body) = call(slot, OpCode::GetChildren, list, "cleanup")
        .await
        .map_err(|error| error.to_string())?;
    match err {
        0 => match wire::decode_reply(OpCode::GetChildren.code(), &body) {
            Ok(Reply::Children { children, .. }) => Ok(children),
            _ => Err(format!("listing {prefix}: the reply did not decode")),
        },
        err => Err(format!("listing {prefix}: {}", error_name(err))),
    }
}

fn live_slot(slots: &mut [Slot]) -> Option<&mut Slot> {
    slots.iter_mut().find(|slot| slot.connection.is_some())
}

/// One request on one session, waited for; a broken connection is taken out of the run.
async fn call(
    slot: &mut Slot,
    opcode: OpCode,
    op: Op,
    phase: &str,
) -> Result<(i32, Vec<u8>), RunError> {
    let Some(connection) = slot.connection.as_mut() else {
        unreachable!("calls go to live sessions only")
    };
    let started = Instant::now();
    match connection.call(opcode, Request::Op(op)).await {
        Ok((header, body)) => Ok((header.err, body)),
        Err(reason) => {
            slot.connection = None;
            Err(RunError::Lost(LostConnection {
                session: slot.session,
                host: slot.host.clone(),
                phase: phase.into(),
                after_s: started.elapsed().as_secs_f64(),
                reason: reason.to_string(),
                unanswered: 1,
            }))
        }
    }
}

/// Closes every live session, so the server frees it at once instead of at its timeout.
async fn close_sessions(slots: &mut [Slot]) {
    let timeout = Duration::from_millis(CLOSE_TIMEOUT_MS);
    for slot in slots.iter_mut() {
        if let Some(mut connection) = slot.connection.take() {
            let close = connection.call(OpCode::CloseSession, Request::Op(Op::CloseSession));
            // A server that does not answer is left to expire the session.
            let _: Result<Result<_, LostReason>, _> = tokio::time::timeout(timeout, close).await;
        }
    }
}

fn closed_loop(slots: &[Slot]) -> Vec<Pacing> {
    slots.iter().map(|_| Pacing::ClosedLoop).collect()
}

/// Runs one phase on every live session at once, each with its source and pacing, counting
/// requests started from `record_from`.
async fn run_all<S: Source + 'static>(
    slots: &mut Vec<Slot>,
    sources: Vec<S>,
    pacings: Vec<Pacing>,
    pipeline: usize,
    record_from: Instant,
    counters: &Arc<Counters>,
    phase: &'static str,
) -> PhaseOutcome<S> {
    let start = Instant::now();
    let tasks: Vec<_> = std::mem::take(slots)
        .into_iter()
        .zip(sources)
        .zip(pacings)
        .map(|((mut slot, mut source), pacing)| {
            let counters = Arc::clone(counters);
            tokio::spawn(async move {
                let mut recorder = Recorder::new(record_from);
                let outcome = match slot.connection.as_mut() {
                    Some(connection) => {
                        session::run_phase(
                            connection,
                            &mut source,
                            pacing,
                            pipeline,
                            &mut recorder,
                            &counters,
                        )
                        .await
                    }
                    None => Ok(()),
                };
                (slot, source, recorder, outcome, start.elapsed())
            })
        })
        .collect();
    let mut outcome = PhaseOutcome {
        sources: Vec::with_capacity(tasks.len()),
        recorder: Recorder::new(record_from),
        lost: Vec::new(),
    };
    for task in tasks {
        let (mut slot, source, recorder, result, after) = joined(task.await);
        outcome.recorder.merge(&recorder);
        if let Err(SessionLost { reason, unanswered }) = result {
            outcome.lost.push(LostConnection {
                session: slot.session,
                host: slot.host.clone(),
                phase: phase.into(),
                after_s: after.as_secs_f64(),
                reason: reason.to_string(),
                unanswered,
            });
            slot.connection = None;
        }
        slots.push(slot);
        outcome.sources.push(source);
    }
    outcome
}
