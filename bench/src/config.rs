//! What a benchmark run is asked to do, and the limit every setting must stay within, checked
//! once by `BenchConfig::validate` with errors that name the broken rule.

use std::fmt;
use std::time::Duration;

/// Most sessions one run opens.
pub const SESSIONS_MAX: usize = 10_000;
/// Most requests one session keeps outstanding.
pub const PIPELINE_MAX: usize = 10_000;
/// Largest value written by create, setData and multi. ZooKeeper refuses frames over
/// 1,048,575 bytes (jute.maxbuffer), and a frame carries the path and headers too.
pub const VALUE_BYTES_MAX: usize = 1_000_000;
/// Most keys the setup creates.
pub const KEYS_MAX: u64 = 10_000_000;
/// Highest fixed rate, in requests per second over all sessions.
pub const RATE_PER_SECOND_MAX: f64 = 10_000_000.0;
/// Longest measured run, and longest warmup.
pub const RUN_SECONDS_MAX: u64 = 86_400;
/// Most tokio worker threads.
pub const THREADS_MAX: usize = 256;
/// The session timeout a run may ask for (servers clamp it further, to 2..20 ticks).
pub const SESSION_TIMEOUT_MS_MIN: u64 = 1_000;
/// See `SESSION_TIMEOUT_MS_MIN`.
pub const SESSION_TIMEOUT_MS_MAX: u64 = 600_000;
/// Largest Zipf exponent: past it nearly every request hits the first key.
pub const ZIPF_EXPONENT_MAX: f64 = 10.0;
/// Longest prefix path.
pub const PREFIX_BYTES_MAX: usize = 200;

/// One kind of request a run can send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// create of a new znode under the prefix (`<prefix>/c<session>-<n>`), holding a value.
    Create,
    /// setData of a key, version -1.
    Set,
    /// getData of a key, no watch.
    Get,
    /// exists of a key, no watch.
    Exists,
    /// getChildren of a key (keys are leaves: the answer is an empty list), no watch.
    Children,
    /// multi of a check (version -1) on one key and a setData of another.
    Multi,
    /// delete of the oldest znode this session created (version -1); with none left, of a
    /// path that does not exist (answered NoNode).
    Delete,
}

impl OpKind {
    /// Every kind, in report order.
    pub const ALL: [OpKind; 7] = [
        OpKind::Create,
        OpKind::Set,
        OpKind::Get,
        OpKind::Exists,
        OpKind::Children,
        OpKind::Multi,
        OpKind::Delete,
    ];

    /// The name `--mix` and the report use.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Create => "create",
            OpKind::Set => "set",
            OpKind::Get => "get",
            OpKind::Exists => "exists",
            OpKind::Children => "children",
            OpKind::Multi => "multi",
            OpKind::Delete => "delete",
        }
    }

    /// The kind a `--mix` name means.
    pub fn from_name(name: &str) -> Option<OpKind> {
        OpKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// Its place in `ALL`, for per-kind tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How often each kind of request is sent: relative integer weights (they need not sum to 100).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mix {
    weights: [u32; OpKind::ALL.len()],
}

impl Mix {
    /// A mix of the given weights; kinds not named get 0. A kind named twice gets the sum.
    pub fn new(weights: &[(OpKind, u32)]) -> Mix {
        let mut mix = Mix {
            weights: [0; OpKind::ALL.len()],
        };
        for &(kind, weight) in weights {
            mix.weights[kind.index()] = mix.weights[kind.index()].saturating_add(weight);
        }
        mix
    }

    /// The weight of one kind.
    pub fn weight(&self, kind: OpKind) -> u32 {
        self.weights[kind.index()]
    }

    /// The sum of the weights (0 for a mix that sends nothing, which `validate` refuses).
    pub fn total(&self) -> u64 {
        self.weights.iter().map(|&weight| u64::from(weight)).sum()
    }

    /// The kind whose share of the weights holds `point`, a number in `0..total()`: kinds
    /// take consecutive ranges of the weights' line in `OpKind::ALL` order, so a uniform
    /// `point` picks each kind with probability weight / total.
    ///
    /// # Panics
    ///
    /// When `point >= total()`: the caller's bug.
    pub fn kind_at(&self, point: u64) -> OpKind {
        let mut end = 0u64;
        for kind in OpKind::ALL {
            end += u64::from(self.weight(kind));
            if point < end {
                return kind;
            }
        }
        panic!("mix point {point} is past the total weight {end}");
    }
}

impl Default for Mix {
    /// create=30,set=20,get=40,exists=5,children=5.
    fn default() -> Mix {
        Mix::new(&[
            (OpKind::Create, 30),
            (OpKind::Set, 20),
            (OpKind::Get, 40),
            (OpKind::Exists, 5),
            (OpKind::Children, 5),
        ])
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = OpKind::ALL
            .into_iter()
            .filter(|&kind| self.weight(kind) > 0)
            .map(|kind| format!("{}={}", kind.name(), self.weight(kind)))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// How keys are picked for get, set, exists, children and multi.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distribution {
    /// Every key equally often.
    Uniform,
    /// Key of rank k (k = 1 is `<prefix>/k0`) with probability proportional to 1 / k^exponent.
    Zipf {
        /// The exponent s, in (0, `ZIPF_EXPONENT_MAX`].
        exponent: f64,
    },
}

/// The Zipf exponent `--distribution zipf` uses when none is given (YCSB's).
pub const ZIPF_EXPONENT_DEFAULT: f64 = 0.99;

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Distribution::Uniform => f.write_str("uniform"),
            Distribution::Zipf { exponent } => write!(f, "zipf:{exponent}"),
        }
    }
}

/// How long the measured part of a run lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Length {
    /// Requests are started until this much time has passed since the warmup ended.
    Duration(Duration),
    /// This many requests are started after the warmup, over all sessions.
    Ops(u64),
}

/// Everything a run needs. Build it directly (library use) or with `args::parse` (the binary);
/// `run` validates it first.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchConfig {
    /// Servers as `host:port`; session i connects to `hosts[i % hosts.len()]`.
    pub hosts: Vec<String>,
    /// Sessions (one TCP connection each).
    pub sessions: usize,
    /// Requests each session keeps outstanding.
    pub pipeline: usize,
    /// What requests are sent.
    pub mix: Mix,
    /// Bytes of every value written (setup's keys, create, set, multi's setData).
    pub value_bytes: usize,
    /// Keys the setup creates before measuring: `<prefix>/k0` .. `<prefix>/k<keys-1>`.
    pub keys: u64,
    /// How keys are picked.
    pub distribution: Distribution,
    /// How long the measured part lasts.
    pub length: Length,
    /// Load before measuring, not counted.
    pub warmup: Duration,
    /// Fixed-rate mode: requests per second over all sessions, each timed from the moment the
    /// schedule says it should have been sent. None: each session sends as soon as its
    /// pipeline has room (closed loop).
    pub rate_per_second: Option<f64>,
    /// The znode under which everything is created; None: `/bench-<random>`.
    pub prefix: Option<String>,
    /// Delete the prefix and everything under it at the end.
    pub cleanup: bool,
    /// Seed of every random choice (ops and keys); None: chosen from the clock and reported.
    pub seed: Option<u64>,
    /// Session timeout asked of the server.
    pub session_timeout: Duration,
    /// Worker threads of the client's runtime.
    pub threads: usize,
    /// Print a progress line on stderr once a second.
    pub progress: bool,
}

impl Default for BenchConfig {
    fn default() -> BenchConfig {
        BenchConfig {
            hosts: vec!["127.0.0.1:2181".into()],
            sessions: 1,
            pipeline: 1,
            mix: Mix::default(),
            value_bytes: 100,
            keys: 1_000,
            distribution: Distribution::Uniform,
            length: Length::Duration(Duration::from_secs(10)),
            warmup: Duration::from_secs(2),
            rate_per_second: None,
            prefix: None,
            cleanup: true,
            seed: None,
            session_timeout: Duration::from_secs(30),
            threads: std::thread::available_parallelism()
                .map_or(2, |threads| threads.get())
                .min(16),
            progress: false,
        }
    }
}

/// A setting outside its rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The option it comes from, as the command line names it (`--sessions`).
    pub setting: &'static str,
    /// The rule it breaks.
    pub rule: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.setting, self.rule)
    }
}

impl std::error::Error for ConfigError {}

fn check(
    ok: bool,
    setting: &'static str,
    rule: impl FnOnce() -> String,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError {
            setting,
            rule: rule(),
        })
    }
}

impl BenchConfig {
    /// Checks every setting against its limit; the first broken rule is the error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(!self.hosts.is_empty(), "--hosts", || {
            "must name at least one server".into()
        })?;
        for host in &self.hosts {
            check(
                host.rsplit_once(':')
                    .is_some_and(|(name, port)| !name.is_empty() && port.parse::<u16>().is_ok()),
                "--hosts",
                || format!("must be host:port entries (got {host:?})"),
            )?;
        }
        check(
            (1..=SESSIONS_MAX).contains(&self.sessions),
            "--sessions",
            || {
                format!(
                    "must be between 1 and {SESSIONS_MAX} (got {})",
                    self.sessions
                )
            },
        )?;
        check(
            (1..=PIPELINE_MAX).contains(&self.pipeline),
            "--pipeline",
            || {
                format!(
                    "must be between 1 and {PIPELINE_MAX} (got {})",
                    self.pipeline
                )
            },
        )?;
        check(self.mix.total() > 0, "--mix", || {
            "must give some operation a weight above 0".into()
        })?;
        check(self.value_bytes <= VALUE_BYTES_MAX, "--value-bytes", || {
            format!(
                "must be at most {VALUE_BYTES_MAX} (got {})",
                self.value_bytes
            )
        })?;
        check((1..=KEYS_MAX).contains(&self.keys), "--keys", || {
            format!("must be between 1 and {KEYS_MAX} (got {})", self.keys)
        })?;
        if let Distribution::Zipf { exponent } = self.distribution {
            check(
                exponent > 0.0 && exponent <= ZIPF_EXPONENT_MAX,
                "--distribution",
                || {
                    format!("zipf exponent must be above 0 and at most {ZIPF_EXPONENT_MAX} (got {exponent})")
                },
            )?;
        }
        match self.length {
            Length::Duration(duration) => check(
                !duration.is_zero() && duration.as_secs() < RUN_SECONDS_MAX,
                "--duration",
                || format!("must be above 0 and under {RUN_SECONDS_MAX} s (got {duration:?})"),
            )?,
            Length::Ops(ops) => check(ops > 0, "--ops", || "must be above 0".into())?,
        }
        check(self.warmup.as_secs() < RUN_SECONDS_MAX, "--warmup", || {
            format!("must be under {RUN_SECONDS_MAX} s (got {:?})", self.warmup)
        })?;
        if let Some(rate) = self.rate_per_second {
            check(rate > 0.0 && rate <= RATE_PER_SECOND_MAX, "--rate", || {
                format!("must be above 0 and at most {RATE_PER_SECOND_MAX} requests/s (got {rate})")
            })?;
        }
        if let Some(prefix) = &self.prefix {
            check_prefix(prefix)?;
        }
        let timeout_ms = self.session_timeout.as_millis();
        check(
            (u128::from(SESSION_TIMEOUT_MS_MIN)..=u128::from(SESSION_TIMEOUT_MS_MAX))
                .contains(&timeout_ms),
            "--session-timeout",
            || {
                format!("must be between {SESSION_TIMEOUT_MS_MIN} ms and {SESSION_TIMEOUT_MS_MAX} ms (got {timeout_ms} ms)")
            },
        )?;
        check(
            (1..=THREADS_MAX).contains(&self.threads),
            "--threads",
            || format!("must be between 1 and {THREADS_MAX} (got {})", self.threads),
        )?;
        Ok(())
    }
}

/// A prefix is a ZooKeeper path this tool may create and later delete with everything under it:
/// absolute, not the root, not under /zookeeper, no empty, "." or ".." component, no trailing
/// slash, printable ASCII only (so it is valid on every server without further rules).
fn check_prefix(prefix: &str) -> Result<(), ConfigError> {
    let rule = |why: &str| ConfigError {
        setting: "--prefix",
        rule: format!("{why} (got {prefix:?})"),
    };
    if prefix.len() > PREFIX_BYTES_MAX {
        return Err(rule(&format!("must be at most {PREFIX_BYTES_MAX} bytes")));
    }
    let Some(rest) = prefix.strip_prefix('/') else {
        return Err(rule("must start with /"));
    };
    if rest.is_empty() {
        return Err(rule("must not be the root"));
    }
    if !prefix.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(rule("must be printable ASCII without spaces"));
    }
    if rest
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(rule(
            "must not have empty, \".\" or \"..\" components or a trailing /",
        ));
    }
    if rest == "zookeeper" || rest.starts_with("zookeeper/") {
        return Err(rule("must not be under /zookeeper, which the server keeps"));
    }
    Ok(())
}
