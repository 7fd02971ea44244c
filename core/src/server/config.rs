//! Server configuration: every limit with its unit, validated once with errors that name the rule.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::proto::DATA_BYTES_MAX_DEFAULT;
use crate::replication::Transport;
use crate::server::clock::{Clock, ManualClock, SystemClock};
use crate::storage::{Disk, LogOptions, RealDisk};

/// Where a member's driver runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverThread {
    /// Its own thread when the member fsyncs or has peers (no front end then waits on the disk
    /// or the network), the caller's thread otherwise (no hand-off).
    Auto,
    /// Always its own thread.
    Own,
    /// Always the thread that submits or delivers (a deterministic simulation drives it).
    Caller,
}

/// How a server runs. Start from `ServerConfig::default()` and change what you need.
#[derive(Clone)]
pub struct ServerConfig {
    /// ZooKeeper's tickTime: the unit of session timeouts and how often expiry is checked.
    pub tick_ms: u32,
    /// Smallest session timeout granted; `None` means 2 x tick (ZooKeeper's minSessionTimeout).
    pub session_timeout_ms_min: Option<u32>,
    /// Largest session timeout granted; `None` means 20 x tick (ZooKeeper's maxSessionTimeout).
    pub session_timeout_ms_max: Option<u32>,
    /// Largest znode data in bytes (ZooKeeper's jute.maxbuffer limit, 1,048,575 by default).
    pub data_bytes_max: usize,
    /// Most ephemerals one session may own; creating more answers QuotaExceeded.
    pub ephemerals_per_session_max: usize,
    /// Most watches one session may hold; setting more answers QuotaExceeded.
    pub watches_per_session_max: usize,
    /// Largest reply a multiRead may build, in bytes; a larger one fails with MarshallingError
    /// (a few bytes of request could otherwise ask for a large znode thousands of times).
    pub reply_bytes_max: usize,
    /// Most live sessions; connecting beyond it fails.
    pub sessions_max: usize,
    /// `DigestAuthenticationProvider.superDigest`: a `super:<base64 sha1>` digest whose holder
    /// passes every ACL check.
    pub super_digest: Option<String>,
    /// The `x509` auth scheme is registered (`authProvider.x509=...X509AuthenticationProvider`):
    /// a TLS client's certificate subject becomes its id, and x509 ACLs are accepted.
    pub x509_auth_enabled: bool,
    /// `X509AuthenticationProvider.superUser`: the certificate subject that passes every ACL.
    pub x509_super_user: Option<String>,
    /// Allow TTL znodes (ZooKeeper's `zookeeper.extendedTypesEnabled`, off there by default;
    /// on here because users ask for TTLs and nothing else depends on the setting).
    pub ttl_enabled: bool,
    /// Refuse writes past a quota's hard limit with QuotaExceeded (ZooKeeper's
    /// `zookeeper.enforceQuota`, off by default as there).
    pub enforce_quota: bool,
    /// How often empty containers and expired TTL znodes are reaped
    /// (ZooKeeper's `znode.container.checkIntervalMs`, 60 s).
    pub container_check_interval_ms: u64,
    /// This member's id (0..=254), the top byte of the session ids it creates.
    pub member_id: u8,
    /// Applied entries an ensemble member keeps in memory for followers a little behind; one
    /// further behind gets a snapshot.
    pub log_entries_max: usize,
    /// What a leader's log may hold in memory, in bytes, for followers that stream entries but
    /// lag (a slow disk, a busy machine): within it they catch up from entries; past it the
    /// log is compacted and they get a snapshot, which makes a follower abandon the requests
    /// its clients have in flight. ZooKeeper's leader queues a connected follower's proposals
    /// without bound.
    pub lagging_follower_log_bytes_max: usize,
    /// The ensemble's voting members by member id; empty: this member alone (standalone).
    pub voters: Vec<u8>,
    /// Members that replicate and serve but do not vote (ZooKeeper's observers).
    pub observers: Vec<u8>,
    /// What "/zookeeper/config" holds on this member: the membership as ZooKeeper writes it
    /// (`Membership::config_text`) and its version; None leaves it empty (standalone).
    pub membership_text: Option<(String, u64)>,
    /// `readonlymode.enabled`: a member without its quorum serves read-only clients.
    pub read_only_enabled: bool,
    /// `reconfigEnabled`: clients holding WRITE on "/zookeeper/config" (the super user, as
    /// ZooKeeper's ACL there is read-only) may change the membership; off, as in ZooKeeper,
    /// reconfig answers ReconfigDisabled.
    pub reconfig_enabled: bool,
    /// How raft messages and forwarded requests reach the other members (None: standalone).
    pub transport: Option<Arc<dyn Transport>>,
    /// The length of a raft tick: heartbeats and election timeouts are counted in them.
    pub raft_tick_ms: u32,
    /// Raft ticks without a leader's word before a follower campaigns (randomized up to twice
    /// as many).
    pub election_ticks: u32,
    /// Raft ticks between a leader's heartbeats.
    pub heartbeat_ticks: u32,
    /// Seeds raft's election timeouts (a simulation replays from it).
    pub raft_seed: u64,
    /// Where the driver runs.
    pub driver_thread: DriverThread,
    /// Where the transaction log and snapshots live; `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    /// The log's segment sizes (smaller preallocation suits disks in memory).
    pub log_options: LogOptions,
    /// fsync the log before answering a write (zoo.cfg's `forceSync`; off only for tests and
    /// benchmarks that choose speed over durability).
    pub force_sync: bool,
    /// Txns between snapshots (zoo.cfg's `snapCount`, 100,000).
    pub snap_count: u64,
    /// Snapshots kept, with the log they need (zoo.cfg's `autopurge.snapRetainCount`, 3).
    pub snapshots_retained: usize,
    /// The file system (a `FakeDisk` in crash tests).
    pub disk: Arc<dyn Disk>,
    /// Where time comes from. A `ManualClock` starts no ticker: the test moves time.
    pub clock: Arc<dyn Clock>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            tick_ms: 2000,
            session_timeout_ms_min: None,
            session_timeout_ms_max: None,
            data_bytes_max: DATA_BYTES_MAX_DEFAULT,
            ephemerals_per_session_max: 100_000,
            watches_per_session_max: 1_000_000,
            reply_bytes_max: 16 * 1024 * 1024,
            sessions_max: 100_000,
            super_digest: None,
            x509_auth_enabled: false,
            x509_super_user: None,
            ttl_enabled: true,
            enforce_quota: false,
            container_check_interval_ms: 60_000,
            member_id: 0,
            log_entries_max: 10_000,
            lagging_follower_log_bytes_max: 256 * 1024 * 1024,
            voters: Vec::new(),
            observers: Vec::new(),
            membership_text: None,
            read_only_enabled: false,
            reconfig_enabled: false,
            transport: None,
            raft_tick_ms: 100,
            election_ticks: 10,
            heartbeat_ticks: 1,
            raft_seed: 0,
            driver_thread: DriverThread::Auto,
            data_dir: None,
            log_options: LogOptions::default(),
            force_sync: true,
            snap_count: 100_000,
            snapshots_retained: 3,
            disk: Arc::new(RealDisk),
            clock: Arc::new(SystemClock::default()),
        }
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("tick_ms", &self.tick_ms)
            .field("session_timeout_ms_min", &self.session_timeout_ms_min())
            .field("session_timeout_ms_max", &self.session_timeout_ms_max())
            .field("data_bytes_max", &self.data_bytes_max)
            .field(
                "ephemerals_per_session_max",
                &self.ephemerals_per_session_max,
            )
            .field("watches_per_session_max", &self.watches_per_session_max)
            .field("sessions_max", &self.sessions_max)
            .field("ttl_enabled", &self.ttl_enabled)
            .field("enforce_quota", &self.enforce_quota)
            .field("x509_auth_enabled", &self.x509_auth_enabled)
            .field(
                "container_check_interval_ms",
                &self.container_check_interval_ms,
            )
            .field("member_id", &self.member_id)
            .field("voters", &self.voters)
            .field("observers", &self.observers)
            .field("raft_tick_ms", &self.raft_tick_ms)
            .field("election_ticks", &self.election_ticks)
            .field("heartbeat_ticks", &self.heartbeat_ticks)
            .field("driver_thread", &self.driver_thread)
            .field("data_dir", &self.data_dir)
            .field("force_sync", &self.force_sync)
            .field("snap_count", &self.snap_count)
            .field("snapshots_retained", &self.snapshots_retained)
            .field("manual_clock", &self.clock.is_manual())
            .finish()
    }
}

impl ServerConfig {
    /// The default configuration on a `ManualClock`: time moves only through `Server::advance_time`.
    pub fn with_manual_clock() -> (ServerConfig, ManualClock) {
        let clock = ManualClock::default();
        (
            ServerConfig {
                clock: Arc::new(clock.clone()),
                ..ServerConfig::default()
            },
            clock,
        )
    }

    /// The voting members (this member alone when none are configured).
    pub fn voters(&self) -> Vec<u8> {
        if self.voters.is_empty() && self.observers.is_empty() {
            vec![self.member_id]
        } else {
            self.voters.clone()
        }
    }

    /// True when the member has peers to replicate with.
    pub fn is_ensemble(&self) -> bool {
        self.voters().len() + self.observers.len() > 1
    }

    /// The effective minimum session timeout.
    pub fn session_timeout_ms_min(&self) -> u32 {
        self.session_timeout_ms_min
            .unwrap_or(self.tick_ms.saturating_mul(2))
    }

    /// The effective maximum session timeout.
    pub fn session_timeout_ms_max(&self) -> u32 {
        self.session_timeout_ms_max
            .unwrap_or(self.tick_ms.saturating_mul(20))
    }

    /// Checks every rule; the error names the one broken.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let rule = |ok: bool, rule: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError { rule })
            }
        };
        rule(self.tick_ms > 0, "tick_ms must be greater than 0")?;
        rule(
            self.session_timeout_ms_min() <= self.session_timeout_ms_max(),
            "session_timeout_ms_min must not exceed session_timeout_ms_max",
        )?;
        rule(
            self.session_timeout_ms_min() > 0,
            "session_timeout_ms_min must be greater than 0",
        )?;
        rule(
            self.data_bytes_max > 0,
            "data_bytes_max must be greater than 0",
        )?;
        rule(
            self.data_bytes_max <= i32::MAX as usize,
            "data_bytes_max must fit a Stat's 32-bit dataLength",
        )?;
        rule(self.sessions_max > 0, "sessions_max must be greater than 0")?;
        rule(self.snap_count > 0, "snap_count must be greater than 0")?;
        rule(
            self.snapshots_retained >= 1,
            "snapshots_retained must be at least 1",
        )?;
        rule(
            self.reply_bytes_max >= self.data_bytes_max
                && self.reply_bytes_max <= i32::MAX as usize,
            "reply_bytes_max must hold one znode's data and fit a 32-bit frame length",
        )?;
        rule(self.member_id <= 254, "member_id must be at most 254")?;
        rule(self.raft_tick_ms > 0, "raft_tick_ms must be greater than 0")?;
        rule(
            self.heartbeat_ticks > 0 && self.election_ticks > self.heartbeat_ticks,
            "election_ticks must be greater than heartbeat_ticks, which must be greater than 0",
        )?;
        let voters = self.voters();
        rule(!voters.is_empty(), "an ensemble needs at least one voter")?;
        rule(
            voters.contains(&self.member_id) || self.observers.contains(&self.member_id),
            "member_id must be one of the voters or observers",
        )?;
        rule(
            !voters.iter().any(|voter| self.observers.contains(voter)),
            "a member cannot both vote and observe",
        )?;
        rule(
            !self.is_ensemble() || self.transport.is_some(),
            "an ensemble needs a transport",
        )?;
        rule(
            self.container_check_interval_ms > 0,
            "container_check_interval_ms must be greater than 0",
        )?;
        if let Some(digest) = &self.super_digest {
            rule(
                digest.split(':').count() == 2 && digest.split(':').all(|part| !part.is_empty()),
                "super_digest must look like user:base64digest",
            )?;
        }
        Ok(())
    }
}

impl ServerConfig {
    /// Writes `membership_text` into `tree`'s "/zookeeper/config" (at start, and after a
    /// snapshot replaced the tree: the znode is each member's own, not replicated).
    pub(crate) fn write_membership(&self, tree: &mut crate::tree::DataTree) {
        if let Some((text, version)) = &self.membership_text {
            tree.set_membership(text.as_bytes(), *version as i64, self.clock.wall_ms());
        }
    }
}

/// A configuration that breaks a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The rule, in words.
    pub rule: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid server configuration: {}", self.rule)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_follow_tick() {
        let config = ServerConfig::default();
        config.validate().unwrap();
        assert_eq!(
            (
                config.session_timeout_ms_min(),
                config.session_timeout_ms_max()
            ),
            (4000, 40000)
        );
    }

    #[test]
    fn errors_name_the_rule() {
        let config = ServerConfig {
            tick_ms: 0,
            ..ServerConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err().rule,
            "tick_ms must be greater than 0"
        );
        let config = ServerConfig {
            session_timeout_ms_min: Some(50_000),
            ..ServerConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err().rule,
            "session_timeout_ms_min must not exceed session_timeout_ms_max"
        );
        let config = ServerConfig {
            super_digest: Some("nocolon".into()),
            ..ServerConfig::default()
        };
        assert!(config.validate().is_err());
    }
}
