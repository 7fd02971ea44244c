//! Guards against scenario options that are read wrongly or silently ignored: a fan-out or
//! ephemerals run must take its own options and refuse the request mix's.

use std::time::Duration;

use super::*;

fn scenario(args: &[&str]) -> Result<ScenarioConfig, ArgError> {
    match parse(args.iter().map(|arg| arg.to_string()))? {
        Command::Scenario { config, .. } => Ok(*config),
        other => panic!("not a scenario: {other:?}"),
    }
}

#[test]
fn scenarios_take_their_options_and_refuse_the_mix() {
    let fanout = scenario(&[
        "--scenario",
        "watch-fanout",
        "--sessions",
        "1000",
        "--watches",
        "500",
        "--rounds",
        "7",
        "--hosts",
        "a:1,b:2",
        "--session-timeout",
        "4s",
        "--keep",
    ])
    .unwrap();
    assert_eq!(
        fanout.kind,
        Kind::WatchFanout {
            watches: 500,
            rounds: 7
        }
    );
    assert_eq!((fanout.sessions, fanout.hosts.len()), (1000, 2));
    assert_eq!(fanout.session_timeout, Duration::from_secs(4));
    assert!(!fanout.cleanup);
    let defaults = scenario(&["--scenario", "watch-fanout"]).unwrap();
    assert_eq!(
        defaults.kind,
        Kind::WatchFanout {
            watches: WATCHES_DEFAULT,
            rounds: ROUNDS_DEFAULT
        }
    );
    let ephemerals = scenario(&["--scenario", "ephemerals", "--sessions", "10_000"]).unwrap();
    assert_eq!(
        (ephemerals.kind, ephemerals.sessions),
        (Kind::Ephemerals, 10_000)
    );
    assert!(matches!(
        parse(["--scenario".to_string(), "run".to_string()]),
        Ok(Command::Run { .. })
    ));
    let cases: &[(&[&str], &str)] = &[
        (
            &["--scenario", "fanout"],
            "--scenario must be run, watch-fanout or ephemerals",
        ),
        (
            &["--scenario", "ephemerals", "--mix", "get=1"],
            "--mix applies to --scenario run only",
        ),
        (
            &["--scenario", "watch-fanout", "--duration", "5s"],
            "--duration applies to --scenario run only",
        ),
        (
            &["--watches", "5"],
            "--watches applies to --scenario watch-fanout only",
        ),
        (
            &["--scenario", "ephemerals", "--rounds", "5"],
            "--rounds applies to --scenario watch-fanout only",
        ),
        (
            &[
                "--scenario",
                "watch-fanout",
                "--watches",
                "3",
                "--rounds",
                "4",
            ],
            "--rounds must be between 1 and --watches",
        ),
    ];
    for (args, expected) in cases {
        let message = parse(args.iter().map(|arg| arg.to_string())).unwrap_err().0;
        assert!(
            message.contains(expected),
            "{args:?}: {message:?} lacks {expected:?}"
        );
    }
}
