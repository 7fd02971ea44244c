//! The four-letter words about the server and its process rather than its clients: mntr, conf
//! and envi, with the operating-system facts they report and Java's ways of printing values.

use std::fmt::{self, Write as _};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::four_letter::full_version;
use super::NetShared;
use crate::server::membership::MemberRole;
use crate::server::metrics::{Detail, Metric, MetricValue, Number, SummaryValue};
use crate::server::{Engine, ServerRole};

/// A value mntr reports: text or a number.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum MonitorValue {
    Text(String),
    Number(Number),
}

impl MonitorValue {
    fn whole(value: impl TryInto<i64>) -> MonitorValue {
        MonitorValue::Number(Number::Whole(value.try_into().unwrap_or(i64::MAX)))
    }
}

impl fmt::Display for MonitorValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MonitorValue::Text(text) => f.write_str(text),
            MonitorValue::Number(Number::Whole(value)) => write!(f, "{value}"),
            MonitorValue::Number(Number::Double(value)) => f.write_str(&java_double(*value)),
        }
    }
}

/// mntr: ZooKeeper 3.8's `zk_<key>\t<value>` lines.
pub(super) fn monitor(shared: &NetShared) -> String {
    let mut text = String::new();
    for (key, value) in monitor_values(&shared.engine) {
        let _ = writeln!(text, "zk_{key}\t{value}");
    }
    text
}

/// What mntr (and the AdminServer's monitor) report, from one metrics snapshot, in the order
/// ZooKeeper 3.8 prints them: its gauges, its counters, then its summaries as its default
/// metrics provider names them (`avg_fsynctime`, `cnt_fsynctime`, `p99_readlatency`, ...),
/// then ours (group-commit batch size, apply queue depth). Metrics of parts it lacks (TLS,
/// processor queues) are left out rather than reported as zeros nobody measured.
pub(crate) fn monitor_values(engine: &Engine) -> Vec<(String, MonitorValue)> {
    let snapshot = engine.metrics_snapshot();
    let metric = |name: &str| {
        let number = snapshot.number(name);
        debug_assert!(number.is_some(), "{name} is not in the registry");
        MonitorValue::Number(number.unwrap_or(Number::Whole(0)))
    };
    let role = snapshot.role.unwrap_or(ServerRole::Standalone);
    let leading = role == ServerRole::Leader;
    let quorum = snapshot.get("quorum_size").is_some();
    // ZooKeeper's order (3.8.0, seen on a leader, a follower and a standalone server); the
    // quorum lines appear only where ZooKeeper prints them.
    let mut lines: Vec<(&str, MonitorValue)> = vec![
        ("version", MonitorValue::Text(full_version())),
        ("server_state", MonitorValue::Text(role.as_str().into())),
    ];
    if let Some(peer_state) = peer_state(role) {
        lines.push(("peer_state", MonitorValue::Text(peer_state.into())));
    }
    lines.extend([
        ("ephemerals_count", metric("ephemerals_count")),
        ("num_alive_connections", metric("num_alive_connections")),
        ("avg_latency", metric("avg_latency")),
    ]);
    if leading {
        lines.push(("min_proposal_size", metric("min_proposal_size")));
    }
    lines.extend([
        ("outstanding_requests", metric("outstanding_requests")),
        ("znode_count", metric("znode_count")),
        ("global_sessions", metric("global_sessions")),
        (
            "last_client_response_size",
            metric("last_client_response_size"),
        ),
        ("packets_sent", metric("packets_sent")),
        ("packets_received", metric("packets_received")),
    ]);
    if leading {
        lines.push(("max_proposal_size", metric("max_proposal_size")));
    }
    lines.push((
        "max_client_response_size",
        metric("max_client_response_size"),
    ));
    if leading {
        lines.push(("synced_followers", metric("synced_followers")));
    }
    lines.push(("watch_count", metric("watch_count")));
    if leading {
        lines.push((
            "synced_non_voting_followers",
            metric("synced_non_voting_followers"),
        ));
        lines.push(("synced_observers", metric("synced_observers")));
    }
    lines.push(("min_latency", metric("min_latency")));
    if snapshot.get("max_file_descriptor_count").is_some() {
        lines.push((
            "max_file_descriptor_count",
            metric("max_file_descriptor_count"),
        ));
    }
    lines.push(("approximate_data_size", metric("approximate_data_size")));
    if snapshot.get("open_file_descriptor_count").is_some() {
        lines.push((
            "open_file_descriptor_count",
            metric("open_file_descriptor_count"),
        ));
    }
    if leading {
        lines.extend([
            ("last_proposal_size", metric("last_proposal_size")),
            ("pending_syncs", metric("pending_syncs")),
            ("leader_uptime", metric("leader_uptime")),
        ]);
    }
    lines.extend([
        ("local_sessions", metric("local_sessions")),
        ("uptime", metric("uptime")),
        ("max_latency", metric("max_latency")),
    ]);
    if leading {
        lines.push(("learners", metric("learners")));
    }
    lines.push((
        "min_client_response_size",
        metric("min_client_response_size"),
    ));
    if quorum {
        lines.push(("quorum_size", metric("quorum_size")));
        if leading {
            lines.push(("proposal_count", metric("proposal_count")));
        }
    }
    let mut values: Vec<(String, MonitorValue)> = lines
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect();
    let already: Vec<String> = values.iter().map(|(key, _)| key.clone()).collect();
    for Metric { name, value } in &snapshot.metrics {
        match value {
            MetricValue::Summary(summary) => summary_values(&mut values, name, summary),
            _ if already.iter().any(|key| key == name) => {}
            MetricValue::Gauge(number) => {
                values.push((name.to_string(), MonitorValue::Number(*number)))
            }
            MetricValue::Counter(count) => {
                values.push((name.to_string(), MonitorValue::whole(*count)))
            }
        }
    }
    values
}

/// A summary as ZooKeeper's default provider dumps its `AvgMinMaxCounter` (and, for
/// ADVANCED ones, `AvgMinMaxPercentileCounter`).
fn summary_values(values: &mut Vec<(String, MonitorValue)>, name: &str, summary: &SummaryValue) {
    values.extend([
        (
            format!("avg_{name}"),
            MonitorValue::Number(Number::Double(summary.avg)),
        ),
        (format!("min_{name}"), MonitorValue::whole(summary.min)),
        (format!("max_{name}"), MonitorValue::whole(summary.max)),
        (format!("cnt_{name}"), MonitorValue::whole(summary.count)),
        (format!("sum_{name}"), MonitorValue::whole(summary.sum)),
    ]);
    if summary.detail == Detail::Advanced {
        for (label, quantile) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)] {
            let value = summary
                .quantiles
                .iter()
                .find(|(q, _)| *q == quantile)
                .and_then(|(_, value)| *value)
                .unwrap_or(0.0);
            values.push((
                format!("{label}_{name}"),
                MonitorValue::whole(value.round() as i64),
            ));
        }
    }
}

/// mntr's zk_peer_state: the role and ZooKeeper's phase (a member serving is past sync).
fn peer_state(role: ServerRole) -> Option<&'static str> {
    match role {
        ServerRole::Standalone | ServerRole::ReadOnly => None,
        ServerRole::Leader => Some("leading - broadcast"),
        ServerRole::Follower => Some("following - broadcast"),
        ServerRole::Observer => Some("observing - broadcast"),
    }
}

/// conf: `ZooKeeperServer.dumpConf`, and `QuorumPeer`'s lines for an ensemble member.
pub(super) fn configuration(shared: &NetShared) -> String {
    let config = shared.engine.config();
    let mut text = format!(
        "clientPort={}\nsecureClientPort=-1\n",
        shared.local_address.port()
    );
    // ZooKeeper keeps snapshots and the log in the same directory unless told otherwise.
    if let Some((dir, size)) = data_dir(shared) {
        let dir = dir.display();
        let _ = write!(
            text,
            "dataDir={dir}\ndataDirSize={size}\ndataLogDir={dir}\ndataLogSize={size}\n"
        );
    }
    let _ = write!(
        text,
        "tickTime={}\nmaxClientCnxns={}\nminSessionTimeout={}\nmaxSessionTimeout={}\n\
         clientPortListenBacklog=-1\nserverId={}\n",
        config.tick_ms,
        shared.config.connections_per_ip_max,
        config.session_timeout_ms_min(),
        config.session_timeout_ms_max(),
        config.member_id
    );
    if let Some(ensemble) = &shared.config.ensemble {
        // The membership the member runs with: zoo.cfg's, or a reconfig's newer one.
        let membership = shared.engine.membership();
        let me = membership.members.get(&config.member_id);
        let (election_port, peer_port, peer_type) = me.map_or((0, 0, 0), |me| {
            let peer_type = match me.role {
                MemberRole::Participant => 0,
                MemberRole::Observer => 1,
            };
            (me.election_port, me.peer_port, peer_type)
        });
        // electionAlg=3 is ZooKeeper's only election; raft elects here, and the line stays
        // for the tools that read it.
        let _ = write!(
            text,
            "initLimit={}\nsyncLimit={}\nelectionAlg=3\nelectionPort={election_port}\n\
             quorumPort={peer_port}\npeerType={peer_type}\nmembership: \n{}",
            ensemble.init_limit_ticks,
            ensemble.sync_limit_ticks,
            membership.config_text()
        );
    }
    text
}

/// envi: ZooKeeper's `Environment.list` with the facts a Rust process has (no java.* lines).
/// kazoo's `server_version()` reads the digits at the start of `zookeeper.version`.
pub(super) fn environment() -> String {
    let mut text = String::from("Environment:\n");
    for (key, value) in environment_entries() {
        let _ = writeln!(text, "{key}={value}");
    }
    text
}

/// envi's facts, in its order (the AdminServer's environment reports them too).
pub(super) fn environment_entries() -> Vec<(&'static str, String)> {
    let current_dir = std::env::current_dir().map(|dir| dir.display().to_string());
    vec![
        ("zookeeper.version", full_version()),
        ("host.name", host_name()),
        ("os.name", os_name().to_string()),
        ("os.arch", os_arch().to_string()),
        ("os.version", read_trimmed("/proc/sys/kernel/osrelease")),
        ("user.name", user_name()),
        (
            "user.home",
            std::env::var("HOME").unwrap_or_else(|_| NA.into()),
        ),
        ("user.dir", current_dir.unwrap_or_else(|_| NA.into())),
    ]
}

/// What ZooKeeper's Environment prints for a value it cannot find.
const NA: &str = "<NA>";

/// Milliseconds since the Unix epoch.
pub(super) fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// A double as Java's `Double.toString` prints the values ZooKeeper reports ("0.0", "1.3077").
pub(super) fn java_double(value: f64) -> String {
    format!("{value:?}")
}

/// A wall-clock time as Java's `Date.toString` prints it in UTC: "Sun Nov 22 01:05:33 UTC 2026".
pub(super) fn java_date(unix_ms: i64) -> String {
    const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let seconds = unix_ms.div_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days: the proleptic Gregorian date of a day number.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {day:02} {:02}:{:02}:{:02} UTC {year}",
        WEEKDAYS[(days + 4).rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// Java's os.name for this platform.
fn os_name() -> &'static str {
    match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Mac OS X",
        "windows" => "Windows",
        "freebsd" => "FreeBSD",
        other => other,
    }
}

/// Java's os.arch for this platform.
fn os_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        other => other,
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map_or_else(|_| NA.into(), |text| text.trim().to_string())
}

fn host_name() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| read_trimmed("/proc/sys/kernel/hostname"))
}

/// The user the process runs as: from the environment, else its uid looked up in /etc/passwd.
fn user_name() -> String {
    if let Some(name) = ["USER", "LOGNAME"]
        .iter()
        .find_map(|key| std::env::var(key).ok())
    {
        return name;
    }
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("Uid:"))?;
            line.split_whitespace().nth(1).map(str::to_owned)
        });
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    uid.and_then(|uid| {
        passwd.lines().find_map(|entry| {
            let fields: Vec<&str> = entry.split(':').collect();
            (fields.get(2) == Some(&uid.as_str())).then(|| fields[0].to_string())
        })
    })
    .unwrap_or_else(|| NA.into())
}

/// The data directory, absolute, and the bytes of the files directly in it.
pub(super) fn data_dir(shared: &NetShared) -> Option<(std::path::PathBuf, u64)> {
    let dir = shared.config.data_dir.as_ref()?;
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
    let size = directory_bytes(&dir);
    Some((dir, size))
}

/// Bytes in the files directly inside `dir`, as ZooKeeper's `getDataDirSize`; 0 if unreadable.
fn directory_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .filter(|metadata| metadata.is_file())
        .map(|metadata| metadata.len())
        .sum()
}

#[cfg(test)]
mod tests {
    //! Guards against values printed differently from the way ZooKeeper's Java prints them.

    use super::*;

    #[test]
    fn dates_print_as_java_prints_them_in_utc() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        // Observed from ZooKeeper 3.8's dump on a UTC machine.
        assert_eq!(java_date(1_795_309_533_000), "Sun Nov 22 01:05:33 UTC 2026");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
        assert_eq!(java_date(-1_000), "Wed Dec 31 23:59:59 UTC 1969");
    }

    #[test]
    fn doubles_print_as_java_prints_them() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(2.0), "2.0");
        assert_eq!(java_double(1.3077), "1.3077");
    }

    #[test]
    fn the_environment_names_a_version_kazoo_can_parse() {
        let text = environment();
        assert!(text.starts_with("Environment:\nzookeeper.version="));
        let version = text.lines().nth(1).unwrap()["zookeeper.version=".len()..].to_string();
        let digits: String = version
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        assert_eq!(digits.split('.').count(), 3, "{version}");
        assert!(digits.split('.').all(|part| part.parse::<u32>().is_ok()));
        for key in [
            "host.name=",
            "os.name=",
            "os.arch=",
            "user.name=",
            "user.dir=",
        ] {
            assert!(text.lines().any(|line| line.starts_with(key)), "{key}");
        }
    }
}
