//! Four-letter words on the client port (ruok, srvr, stat, ...): a connection whose first four
//! bytes spell a known word gets a text answer and is closed, as in ZooKeeper.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use super::NetShared;

/// The words this server knows.
const KNOWN: [&str; 12] = [
    "ruok", "srvr", "stat", "mntr", "conf", "cons", "envi", "wchs", "wchc", "wchp", "dump", "isro",
];

/// The version clients see: the ZooKeeper protocol level served, then this implementation.
pub(crate) const VERSION: &str = concat!("3.9.0-zookeeper-rs-", env!("CARGO_PKG_VERSION"));

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

/// The word the first four bytes of a connection spell, if it is one this server knows.
pub(super) fn known(prefix: [u8; 4]) -> Option<&'static str> {
    KNOWN.iter().copied().find(|word| word.as_bytes() == prefix)
}

/// The text answer to `word`.
pub(super) fn answer(word: &str, shared: &NetShared) -> String {
    if !shared.config.four_letter_words.allows(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    let engine = &shared.engine;
    match word {
        "ruok" => "imok".to_string(),
        "isro" => "rw".to_string(),
        "srvr" => server_summary(shared, false),
        "stat" => server_summary(shared, true),
        "wchs" => {
            let by_session = engine.watches_by_session();
            let paths: usize = engine.watches_by_path().len();
            format!(
                "{} connections watching {paths} paths\nTotal watches:{}\n",
                by_session.len(),
                engine.watch_count()
            )
        }
        _ => format!("{word} is not available on this server yet\n"),
    }
}

fn server_summary(shared: &NetShared, with_clients: bool) -> String {
    let engine = &shared.engine;
    let connections = shared.connections.lock();
    let mut text = format!("Zookeeper version: {VERSION}, built on unknown\n");
    if with_clients {
        text.push_str("Clients:\n");
        for info in connections.live.values() {
            text.push_str(&format!(
                " /{}[1](queued={},recved={},sent={})\n",
                info.peer,
                info.queued.load(Ordering::Relaxed),
                info.received.load(Ordering::Relaxed),
                info.sent.load(Ordering::Relaxed)
            ));
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "Latency min/avg/max: 0/0.0/0\nReceived: {}\nSent: {}\nConnections: {}\nOutstanding: 0\nZxid: 0x{:x}\nMode: standalone\nNode count: {}\n",
        shared.stats.received.load(Ordering::Relaxed),
        shared.stats.sent.load(Ordering::Relaxed),
        connections.live.len(),
        engine.last_zxid(),
        engine.znode_count()
    ));
    text
}
