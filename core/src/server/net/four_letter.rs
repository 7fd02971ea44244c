//! Four-letter words on the client port (ruok, srvr, stat, ...): a connection whose first four
//! bytes spell a known word gets a text answer and is closed, as in ZooKeeper.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::four_letter_system::{self, java_date, java_double};
use super::{ConnectionInfo, NetShared};
use crate::server::ServerRole;

/// The words this server knows.
const KNOWN: [&str; 12] = [
    "ruok", "srvr", "stat", "mntr", "conf", "cons", "envi", "wchs", "wchc", "wchp", "dump", "isro",
];

/// The version clients see: the ZooKeeper protocol level served, then this implementation.
pub(crate) const VERSION: &str = concat!("3.9.0-zookeeper-rs-", env!("CARGO_PKG_VERSION"));

/// The version as ZooKeeper's `Version.getFullVersion` reports it (srvr, stat, mntr, envi).
pub(super) fn full_version() -> String {
    format!("{VERSION}, built on unknown")
}

/// Which words answer (4lw.commands.whitelist). `srvr` always does: ZooKeeper's own scripts
/// depend on it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FourLetterWhitelist {
    all: bool,
    words: BTreeSet<String>,
}

impl FourLetterWhitelist {
    /// Every word.
    pub fn all() -> Self {
        FourLetterWhitelist {
            all: true,
            words: BTreeSet::new(),
        }
    }

    /// Parses zoo.cfg's comma-separated list; `*` means all.
    pub fn parse(list: &str) -> Self {
        let words: BTreeSet<String> = list
            .split(',')
            .map(|word| word.trim().to_string())
            .filter(|word| !word.is_empty())
            .collect();
        FourLetterWhitelist {
            all: words.contains("*"),
            words,
        }
    }

    /// True when `word` answers.
    pub fn allows(&self, word: &str) -> bool {
        self.all || word == "srvr" || self.words.contains(word)
    }
}

/// What ZooKeeper answers most words while it serves no one.
pub(super) const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

/// The word the first four bytes of a connection spell, if it is one this server knows.
pub(super) fn known(prefix: [u8; 4]) -> Option<&'static str> {
    KNOWN.iter().copied().find(|word| word.as_bytes() == prefix)
}

/// The text answer to `word`, in ZooKeeper 3.8's layout.
pub(super) fn answer(word: &str, shared: &NetShared) -> String {
    if !shared.config.four_letter_words.allows(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    // A member out of its quorum answers as ZooKeeper's does when its ZooKeeperServer is
    // not running: only ruok, isro and envi still speak.
    let role = shared.engine.role();
    let serving = role.is_some();
    match word {
        "ruok" => "imok".to_string(),
        "isro" => match role {
            Some(ServerRole::ReadOnly) => "ro",
            Some(_) => "rw",
            None => "null",
        }
        .to_string(),
        "srvr" | "stat" | "mntr" | "conf" | "cons" | "wchs" | "wchc" | "wchp" | "dump"
            if !serving =>
        {
            NOT_SERVING.to_string()
        }
        "srvr" => server_summary(shared, false),
        "stat" => server_summary(shared, true),
        "cons" => connections_report(shared),
        "mntr" => four_letter_system::monitor(shared),
        "conf" => four_letter_system::configuration(shared),
        "envi" => four_letter_system::environment(),
        "wchs" => watch_summary(shared),
        "wchc" => watches_by_session(shared),
        "wchp" => watches_by_path(shared),
        "dump" => sessions_dump(shared),
        _ => format!("{word} is not available on this server yet\n"),
    }
}

/// The live connections in the order they were accepted, taken without holding the table's
/// lock while the report is written.
pub(super) fn live_connections(shared: &NetShared) -> Vec<Arc<ConnectionInfo>> {
    let connections = shared.connections.lock();
    let mut live: Vec<(u64, Arc<ConnectionInfo>)> = connections
        .live
        .iter()
        .map(|(id, info)| (*id, info.clone()))
        .collect();
    drop(connections);
    live.sort_unstable_by_key(|(id, _)| *id);
    live.into_iter().map(|(_, info)| info).collect()
}

/// srvr, and stat with its Clients section (`StatCommand` and `ServerStats.toString`).
fn server_summary(shared: &NetShared, with_clients: bool) -> String {
    let engine = &shared.engine;
    let live = live_connections(shared);
    let mut text = format!("Zookeeper version: {}\n", full_version());
    if engine.role() == Some(ServerRole::ReadOnly) {
        text.push_str("READ-ONLY mode; serving only read-only clients\n");
    }
    if with_clients {
        text.push_str("Clients:\n");
        for info in &live {
            connection_line(&mut text, info, shared, true);
        }
        text.push('\n');
    }
    let metrics = engine.metrics();
    let latency = &metrics.request_latency;
    let role = engine.role().unwrap_or(ServerRole::Standalone);
    let _ = write!(
        text,
        "Latency min/avg/max: {}/{}/{}\nReceived: {}\nSent: {}\nConnections: {}\n\
         Outstanding: 0\nZxid: 0x{:x}\nMode: {}\nNode count: {}\n",
        latency.min(),
        java_double(latency.avg()),
        latency.max(),
        metrics.packets_received.load(Ordering::Relaxed),
        metrics.packets_sent.load(Ordering::Relaxed),
        live.len(),
        engine.last_zxid(),
        role.as_str(),
        engine.reported_node_count()
    );
    if role == ServerRole::Leader {
        let (last, min, max, _) = engine.proposal_sizes();
        let _ = writeln!(text, "Proposal sizes last/min/max: {last}/{min}/{max}");
    }
    text
}

/// cons: one full line per connection, then a blank line.
fn connections_report(shared: &NetShared) -> String {
    let mut text = String::new();
    for info in live_connections(shared) {
        connection_line(&mut text, &info, shared, false);
    }
    text.push('\n');
    text
}

/// One connection as `ServerCnxn.dumpConnectionInfo` prints it, with its newline. The
/// bracketed interest set is 1 (reading) once a session is established, 0 before.
fn connection_line(text: &mut String, info: &ConnectionInfo, shared: &NetShared, brief: bool) {
    let session_id = info.session_id.load(Ordering::Relaxed) as i64;
    let _ = write!(
        text,
        " {}[{}](queued={},recved={},sent={}",
        java_socket_address(info.peer),
        u8::from(session_id != 0),
        info.queued.load(Ordering::Relaxed),
        info.received.load(Ordering::Relaxed),
        info.sent.load(Ordering::Relaxed)
    );
    if !brief && session_id != 0 {
        let timeout_ms = shared.engine.session_timeout_ms(session_id).unwrap_or(0);
        let responses = info.responses.lock();
        let _ = write!(
            text,
            ",sid=0x{session_id:x},lop={},est={},to={timeout_ms}",
            responses.last_op, info.established_ms
        );
        if responses.last_cxid >= 0 {
            let _ = write!(text, ",lcxid=0x{:x}", responses.last_cxid);
        }
        let _ = write!(
            text,
            ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
            responses.last_zxid,
            responses.last_response_ms,
            responses.last_latency_ms,
            responses.min_latency_ms(),
            responses.avg_latency_ms(),
            responses.max_latency_ms
        );
    }
    text.push_str(")\n");
}

/// A socket address as Java's `InetSocketAddress.toString` prints a resolved-by-IP one.
fn java_socket_address(address: SocketAddr) -> String {
    match address {
        SocketAddr::V4(v4) => format!("/{}:{}", v4.ip(), v4.port()),
        SocketAddr::V6(v6) => {
            let segments: Vec<String> = v6
                .ip()
                .segments()
                .iter()
                .map(|segment| format!("{segment:x}"))
                .collect();
            format!("/{}:{}", segments.join(":"), v6.port())
        }
    }
}

/// wchs: `WatchManager.toString` of the data-watch table, then a newline.
fn watch_summary(shared: &NetShared) -> String {
    let by_session = shared.engine.watches_by_session();
    let paths = shared.engine.watches_by_path().len();
    let total: usize = by_session.values().map(BTreeSet::len).sum();
    format!(
        "{} connections watching {paths} paths\nTotal watches:{total}\n",
        by_session.len()
    )
}

/// wchc: each session, then its watched paths tab-indented; a blank line ends it.
fn watches_by_session(shared: &NetShared) -> String {
    let mut text = String::new();
    for (session_id, paths) in shared.engine.watches_by_session() {
        let _ = writeln!(text, "0x{session_id:x}");
        for path in paths {
            let _ = writeln!(text, "\t{path}");
        }
    }
    text.push('\n');
    text
}

/// wchp: each watched path, then its sessions tab-indented; a blank line ends it.
fn watches_by_path(shared: &NetShared) -> String {
    let mut text = String::new();
    for (path, sessions) in shared.engine.watches_by_path() {
        let _ = writeln!(text, "{path}");
        for session_id in sessions {
            let _ = writeln!(text, "\t0x{session_id:x}");
        }
    }
    text.push('\n');
    text
}

/// dump: the session tracker's expiry sets and the ephemerals by session. The connection
/// section is empty, as from ZooKeeper's Netty connection factory, because connections here
/// have no expiry of their own.
fn sessions_dump(shared: &NetShared) -> String {
    let engine = &shared.engine;
    let buckets = engine.sessions_by_expiry();
    let session_count: usize = buckets.values().map(BTreeSet::len).sum();
    let mut text = format!(
        "SessionTracker dump:\nSession Sets ({})/({session_count}):\n",
        buckets.len()
    );
    for (expiry_ms, sessions) in buckets {
        let _ = writeln!(
            text,
            "{} expire at {}:",
            sessions.len(),
            java_date(expiry_ms)
        );
        for session_id in sessions {
            let _ = writeln!(text, "\t0x{session_id:x}");
        }
    }
    let ephemerals = engine.ephemerals_by_session();
    let _ = writeln!(
        text,
        "ephemeral nodes dump:\nSessions with Ephemerals ({}):",
        ephemerals.len()
    );
    for (session_id, paths) in ephemerals {
        let _ = writeln!(text, "0x{session_id:x}:");
        for path in paths {
            let _ = writeln!(text, "\t{path}");
        }
    }
    text.push_str("Connections dump:\n");
    text
}

#[cfg(test)]
mod tests {
    //! Guards against whitelist parsing and address printing that differ from ZooKeeper's.

    use super::*;

    #[test]
    fn the_whitelist_parses_zoo_cfg_lists() {
        let list = FourLetterWhitelist::parse(" ruok, stat ,,");
        assert!(list.allows("ruok") && list.allows("stat"));
        assert!(list.allows("srvr"), "srvr always answers");
        assert!(!list.allows("dump"));
        assert!(FourLetterWhitelist::parse("*").allows("dump"));
        assert!(!FourLetterWhitelist::default().allows("ruok"));
    }

    #[test]
    fn only_known_words_are_recognised() {
        assert_eq!(known(*b"mntr"), Some("mntr"));
        assert_eq!(known(*b"\0\0\0\x2c"), None);
    }

    #[test]
    fn addresses_print_as_java_prints_them() {
        let v4: SocketAddr = "127.0.0.1:37690".parse().unwrap();
        assert_eq!(java_socket_address(v4), "/127.0.0.1:37690");
        let v6: SocketAddr = "[::1]:2181".parse().unwrap();
        assert_eq!(java_socket_address(v6), "/0:0:0:0:0:0:0:1:2181");
    }
}
