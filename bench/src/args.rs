//! The command line: options in, a validated `BenchConfig` (or the help text) out, every
//! mistake answered with a message that names the option.

use std::fmt;
use std::time::Duration;

use crate::config::{BenchConfig, Distribution, Length, Mix, OpKind, ZIPF_EXPONENT_DEFAULT};
use crate::scenario::{Kind, ScenarioConfig};

/// Watched znodes per session in `--scenario watch-fanout` when `--watches` is not given.
pub const WATCHES_DEFAULT: usize = 1_000;
/// Fan-out rounds when `--rounds` is not given.
pub const ROUNDS_DEFAULT: usize = 20;
/// The options only `--scenario run` (the request mix) reads.
const RUN_ONLY_OPTIONS: [&str; 9] = [
    "--pipeline",
    "--mix",
    "--keys",
    "--distribution",
    "--duration",
    "--ops",
    "--warmup",
    "--rate",
    "--seed",
];

/// The help text.
pub const USAGE: &str = "\
usage: zookeeper-bench [options]

Drives any server speaking ZooKeeper's client protocol and reports throughput, errors by code
and latency percentiles (HDR histogram), per operation and in total.

  --hosts H:P[,H:P...]   servers; session i uses the (i mod n)th  [127.0.0.1:2181]
  --sessions N           sessions, one TCP connection each                    [1]
  --pipeline D           requests outstanding per session                     [1]
  --mix OP=W[,OP=W...]   relative weights of create, set, get, exists, children, multi
                         (check + setData), delete (of the session's own creates)
                                                 [create=30,set=20,get=40,exists=5,children=5]
  --value-bytes B        bytes per written value                            [100]
  --keys K               keys created before measuring: PREFIX/k0..k<K-1>  [1000]
  --distribution D       uniform | zipf[:S] (k0 hottest, S defaults to 0.99) [uniform]
  --duration T           measure for T (10s, 500ms, 2m)                     [10s]
  --ops N                or measure N requests over all sessions
  --warmup T             load before measuring, not counted                  [2s]
  --rate R               fixed rate: R requests/s over all sessions, each timed from
                         when it was due (no coordinated omission)  [closed loop]
  --prefix PATH          where to create everything; must not exist  [/bench-<random>]
  --keep                 leave the prefix and its znodes afterwards (default: delete)
  --seed S               seed of the op and key choices                [from the clock]
  --session-timeout T    asked of the server                                [30s]
  --threads N            client worker threads                 [available cores, <= 16]
  --json                 print the report as JSON
  -h, --help             this text

  --scenario S           run | watch-fanout | ephemerals                       [run]
      run: the mix above. watch-fanout: --sessions sessions each leave a data watch on
      the same --watches znodes [1000]; each of --rounds rounds [20] another session sets
      one of them, timed to the last session's notification. ephemerals: --sessions
      sessions open (32 handshakes at a time) and create one ephemeral each, then drop
      their sockets without closeSession; timed until the server has deleted them all
      (use a short --session-timeout, like 4s). Both take --hosts, --sessions,
      --session-timeout, --value-bytes, --prefix, --keep, --threads and --json.

A progress line goes to stderr while it runs, when stderr is a terminal.
Exit codes: 0 measured, 1 the run failed or lost a connection, 2 bad arguments.";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Run a benchmark and print its report (as JSON when `json`).
    Run {
        /// The run, validated.
        config: Box<BenchConfig>,
        /// Print JSON instead of the table.
        json: bool,
    },
    /// Run a scenario other than the request mix.
    Scenario {
        /// The run, validated.
        config: Box<ScenarioConfig>,
        /// Print JSON instead of lines.
        json: bool,
    },
    /// Print the help text.
    Help,
}

/// A command line that cannot be run; the message names the option and what it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError(pub String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgError {}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, ArgError> {
    let mut config = BenchConfig::default();
    let mut json = false;
    let mut seen: Vec<String> = Vec::new();
    let mut duration = None;
    let mut ops = None;
    let mut scenario = None;
    let (mut watches, mut rounds) = (None, None);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        if seen.contains(&name) {
            return Err(ArgError(format!("{name} is given twice")));
        }
        seen.push(name.clone());
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--json" | "--keep" => {
                if inline.is_some() {
                    return Err(ArgError(format!("{name} takes no value")));
                }
                if name == "--json" {
                    json = true;
                } else {
                    config.cleanup = false;
                }
                continue;
            }
            _ => {}
        }
        let value = match inline {
            Some(value) => value,
            None => args
                .next()
                .ok_or_else(|| ArgError(format!("{name} needs a value")))?,
        };
        let value = value.as_str();
        match name.as_str() {
            "--hosts" => config.hosts = parse_hosts(value)?,
            "--sessions" => config.sessions = parse_count(&name, value)? as usize,
            "--pipeline" => config.pipeline = parse_count(&name, value)? as usize,
            "--mix" => config.mix = parse_mix(value)?,
            "--value-bytes" => config.value_bytes = parse_count(&name, value)? as usize,
            "--keys" => config.keys = parse_count(&name, value)?,
            "--distribution" => config.distribution = parse_distribution(value)?,
            "--duration" => duration = Some(parse_duration(&name, value)?),
            "--ops" => ops = Some(parse_count(&name, value)?),
            "--warmup" => config.warmup = parse_duration(&name, value)?,
            "--rate" => {
                config.rate_per_second = Some(
                    value
                        .parse::<f64>()
                        .ok()
                        .filter(|rate| rate.is_finite())
                        .ok_or_else(|| {
                            ArgError(format!(
                                "--rate must be requests per second, like 5000 (got {value:?})"
                            ))
                        })?,
                )
            }
            "--prefix" => config.prefix = Some(value.to_string()),
            "--seed" => config.seed = Some(parse_count(&name, value)?),
            "--session-timeout" => config.session_timeout = parse_duration(&name, value)?,
            "--threads" => config.threads = parse_count(&name, value)? as usize,
            "--scenario" => scenario = Some(value.to_string()),
            "--watches" => watches = Some(parse_count(&name, value)? as usize),
            "--rounds" => rounds = Some(parse_count(&name, value)? as usize),
            _ => return Err(ArgError(format!("unknown option {name}; see --help"))),
        }
    }
    config.length = match (duration, ops) {
        (Some(_), Some(_)) => {
            return Err(ArgError("give --duration or --ops, not both".into()));
        }
        (Some(duration), None) => Length::Duration(duration),
        (None, Some(ops)) => Length::Ops(ops),
        (None, None) => config.length,
    };
    config
        .validate()
        .map_err(|error| ArgError(error.to_string()))?;
    let kind = match scenario.as_deref() {
        None | Some("run") => None,
        Some("watch-fanout") => Some(Kind::WatchFanout {
            watches: watches.unwrap_or(WATCHES_DEFAULT),
            rounds: rounds.unwrap_or(ROUNDS_DEFAULT),
        }),
        Some("ephemerals") => Some(Kind::Ephemerals),
        Some(other) => {
            return Err(ArgError(format!(
                "--scenario must be run, watch-fanout or ephemerals (got {other:?})"
            )))
        }
    };
    let fanout_only = ["--watches", "--rounds"];
    let misplaced = |options: &[&str]| {
        seen.iter()
            .find(|name| options.contains(&name.as_str()))
            .cloned()
    };
    if let Some(name) =
        misplaced(&fanout_only).filter(|_| !matches!(kind, Some(Kind::WatchFanout { .. })))
    {
        return Err(ArgError(format!(
            "{name} applies to --scenario watch-fanout only"
        )));
    }
    if let Some(kind) = kind {
        if let Some(name) = misplaced(&RUN_ONLY_OPTIONS) {
            return Err(ArgError(format!("{name} applies to --scenario run only")));
        }
        let scenario = ScenarioConfig {
            kind,
            hosts: config.hosts,
            sessions: config.sessions,
            session_timeout: config.session_timeout,
            value_bytes: config.value_bytes,
            prefix: config.prefix,
            cleanup: config.cleanup,
            threads: config.threads,
        };
        scenario.validate().map_err(ArgError)?;
        return Ok(Command::Scenario {
            config: Box::new(scenario),
            json,
        });
    }
    Ok(Command::Run {
        config: Box::new(config),
        json,
    })
}

/// A connect string: `host:port` entries separated by commas; a missing port is 2181. A
/// chroot suffix is refused: `--prefix` is how to place the run.
pub fn parse_hosts(value: &str) -> Result<Vec<String>, ArgError> {
    if let Some(slash) = value.find('/') {
        return Err(ArgError(format!(
            "--hosts: a chroot ({}) is not supported; use --prefix",
            &value[slash..]
        )));
    }
    value
        .split(',')
        .map(str::trim)
        .map(|host| {
            if host.is_empty() {
                return Err(ArgError(format!(
                    "--hosts has an empty entry (got {value:?})"
                )));
            }
            // "[::1]" and "name" lack a port; "[::1]:2181" and "name:2181" have one.
            let has_port = match host.rfind(']') {
                Some(bracket) => host[bracket..].contains(':'),
                None => host.contains(':'),
            };
            Ok(if has_port {
                host.to_string()
            } else {
                format!("{host}:2181")
            })
        })
        .collect()
}

/// A whole number, `_` allowed between digits (`10_000`).
pub fn parse_count(name: &str, value: &str) -> Result<u64, ArgError> {
    value
        .replace('_', "")
        .parse::<u64>()
        .map_err(|_| ArgError(format!("{name} must be a whole number (got {value:?})")))
}

/// `create=30,get=70`: operation names with integer weights.
pub fn parse_mix(value: &str) -> Result<Mix, ArgError> {
    let names: Vec<&str> = OpKind::ALL.iter().map(|kind| kind.name()).collect();
    let mut weights = Vec::new();
    for part in value.split(',') {
        let (name, weight) = part.trim().split_once('=').ok_or_else(|| {
            ArgError(format!(
                "--mix entries are OP=WEIGHT (got {part:?} in {value:?})"
            ))
        })?;
        let kind = OpKind::from_name(name.trim()).ok_or_else(|| {
            ArgError(format!(
                "--mix: unknown operation {name:?}; known: {}",
                names.join(", ")
            ))
        })?;
        if weights.iter().any(|&(seen, _)| seen == kind) {
            return Err(ArgError(format!("--mix names {name} twice")));
        }
        let weight = weight.trim().parse::<u32>().map_err(|_| {
            ArgError(format!(
                "--mix: the weight of {name} must be a whole number (got {weight:?})"
            ))
        })?;
        weights.push((kind, weight));
    }
    Ok(Mix::new(&weights))
}

/// `uniform`, `zipf` or `zipf:S`.
pub fn parse_distribution(value: &str) -> Result<Distribution, ArgError> {
    match value.split_once(':') {
        None if value == "uniform" => Ok(Distribution::Uniform),
        None if value == "zipf" => Ok(Distribution::Zipf {
            exponent: ZIPF_EXPONENT_DEFAULT,
        }),
        Some(("zipf", exponent)) => exponent
            .parse::<f64>()
            .map(|exponent| Distribution::Zipf { exponent })
            .map_err(|_| {
                ArgError(format!(
                    "--distribution zipf:S needs a number S (got {exponent:?})"
                ))
            }),
        _ => Err(ArgError(format!(
            "--distribution must be uniform, zipf or zipf:S (got {value:?})"
        ))),
    }
}

/// A duration with a unit: `500ms`, `10s`, `1.5s`, `2m`, `1h`; `0` alone is zero.
pub fn parse_duration(name: &str, value: &str) -> Result<Duration, ArgError> {
    if value == "0" {
        return Ok(Duration::ZERO);
    }
    let bad = || {
        ArgError(format!(
            "{name} must be a duration like 500ms, 10s, 2m or 1h (got {value:?})"
        ))
    };
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(bad)?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let seconds_per_unit = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3_600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(number * seconds_per_unit).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<(BenchConfig, bool), ArgError> {
        match parse(args.iter().map(|arg| arg.to_string()))? {
            Command::Run { config, json } => Ok((*config, json)),
            Command::Help | Command::Scenario { .. } => panic!("not a run of the mix"),
        }
    }

    fn error(args: &[&str]) -> String {
        run(args).unwrap_err().0
    }

    #[test]
    fn no_options_give_the_defaults() {
        let (config, json) = run(&[]).unwrap();
        assert_eq!(config, BenchConfig::default());
        assert!(!json);
        assert_eq!(
            config.mix.to_string(),
            "create=30,set=20,get=40,exists=5,children=5"
        );
        assert_eq!(config.length, Length::Duration(Duration::from_secs(10)));
    }

    #[test]
    fn every_option_is_read() {
        let (config, json) = run(&[
            "--hosts",
            "a:1,b,[::1]",
            "--sessions",
            "32",
            "--pipeline=64",
            "--mix",
            "get=70, set=30,multi=1",
            "--value-bytes",
            "1024",
            "--keys",
            "10_000",
            "--distribution",
            "zipf:1.2",
            "--ops",
            "5000",
            "--warmup",
            "500ms",
            "--rate",
            "2500.5",
            "--prefix",
            "/b/x",
            "--keep",
            "--seed",
            "7",
            "--session-timeout",
            "1m",
            "--threads",
            "3",
            "--json",
        ])
        .unwrap();
        assert!(json);
        assert_eq!(config.hosts, ["a:1", "b:2181", "[::1]:2181"]);
        assert_eq!((config.sessions, config.pipeline), (32, 64));
        assert_eq!(
            config.mix,
            Mix::new(&[(OpKind::Get, 70), (OpKind::Set, 30), (OpKind::Multi, 1)])
        );
        assert_eq!((config.value_bytes, config.keys), (1024, 10_000));
        assert_eq!(config.distribution, Distribution::Zipf { exponent: 1.2 });
        assert_eq!(config.length, Length::Ops(5_000));
        assert_eq!(config.warmup, Duration::from_millis(500));
        assert_eq!(config.rate_per_second, Some(2500.5));
        assert_eq!(config.prefix.as_deref(), Some("/b/x"));
        assert!(!config.cleanup);
        assert_eq!(config.seed, Some(7));
        assert_eq!(config.session_timeout, Duration::from_secs(60));
        assert_eq!(config.threads, 3);
    }

    #[test]
    fn help_wins() {
        assert_eq!(
            parse(["--sessions".into(), "2".into(), "-h".into()]),
            Ok(Command::Help)
        );
    }

    #[test]
    fn durations_and_distributions_parse() {
        let duration = |value| parse_duration("--duration", value);
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1_500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3_600)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        for bad in ["10", "s", "10 s", "-1s", "1.2.3s", "5d", ""] {
            assert!(duration(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(parse_distribution("uniform"), Ok(Distribution::Uniform));
        assert_eq!(
            parse_distribution("zipf"),
            Ok(Distribution::Zipf { exponent: 0.99 })
        );
        assert!(parse_distribution("zipf:x").is_err());
        assert!(parse_distribution("normal").is_err());
    }

    #[test]
    fn mistakes_are_named() {
        let cases: &[(&[&str], &str)] = &[
            (&["--sesions", "2"], "unknown option --sesions"),
            (&["--sessions"], "--sessions needs a value"),
            (&["--sessions", "two"], "--sessions must be a whole number"),
            (
                &["--sessions", "0"],
                "--sessions must be between 1 and 10000 (got 0)",
            ),
            (
                &["--pipeline", "10001"],
                "--pipeline must be between 1 and 10000",
            ),
            (
                &["--sessions", "1", "--sessions", "2"],
                "--sessions is given twice",
            ),
            (&["--mix", "get=1,put=2"], "unknown operation \"put\""),
            (&["--mix", "get"], "--mix entries are OP=WEIGHT"),
            (
                &["--mix", "get=0"],
                "--mix must give some operation a weight above 0",
            ),
            (&["--mix", "get=1,get=2"], "--mix names get twice"),
            (
                &["--mix", "get=-1"],
                "the weight of get must be a whole number",
            ),
            (&["--duration", "10"], "--duration must be a duration like"),
            (&["--duration", "0"], "--duration must be above 0"),
            (
                &["--duration", "1s", "--ops", "5"],
                "give --duration or --ops, not both",
            ),
            (&["--ops", "0"], "--ops must be above 0"),
            (&["--keys", "0"], "--keys must be between 1 and"),
            (
                &["--value-bytes", "2000000"],
                "--value-bytes must be at most 1000000",
            ),
            (
                &["--distribution", "zipf:0"],
                "zipf exponent must be above 0",
            ),
            (&["--rate", "fast"], "--rate must be requests per second"),
            (&["--rate", "0"], "--rate must be above 0"),
            (
                &["--hosts", "a:1/chroot"],
                "a chroot (/chroot) is not supported",
            ),
            (&["--hosts", "a:1,,b:2"], "--hosts has an empty entry"),
            (&["--hosts", "a:port"], "--hosts must be host:port entries"),
            (&["--prefix", "bench"], "--prefix must start with /"),
            (&["--prefix", "/"], "--prefix must not be the root"),
            (&["--prefix", "/a//b"], "--prefix must not have empty"),
            (
                &["--prefix", "/zookeeper/x"],
                "--prefix must not be under /zookeeper",
            ),
            (
                &["--session-timeout", "100ms"],
                "--session-timeout must be between 1000 ms",
            ),
            (&["--threads", "0"], "--threads must be between 1 and 256"),
            (&["--json=yes"], "--json takes no value"),
        ];
        for (args, expected) in cases {
            let message = error(args);
            assert!(
                message.contains(expected),
                "{args:?}: {message:?} lacks {expected:?}"
            );
        }
    }
}

#[cfg(test)]
#[path = "args_scenario_tests.rs"]
mod scenario_tests;
