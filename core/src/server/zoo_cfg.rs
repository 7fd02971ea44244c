//! zoo.cfg, ZooKeeper's configuration file format (Java properties: `key=value` lines, `#`
//! comments), turned into server, client-port and ensemble settings. Unknown keys warn;
//! invalid values fail with a message naming the key.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::replication::PeerTlsConfig;
use crate::server::membership::Membership;
use crate::server::net::{FourLetterWhitelist, HttpCfg, NetConfig};
use crate::server::ServerConfig;

mod tls;

/// Keys accepted and reported as unused, with what they wait for.
const LATER_KEYS: [(&str, &str); 2] = [
    ("autopurge.purgeInterval", "timed purging"),
    ("preAllocSize", "a configurable preallocation"),
];

/// Keys that only concern the JVM server's extras, or ZooKeeper's own election and
/// transport, and mean nothing here (raft elects over the peer port).
const IGNORED_KEYS: [&str; 4] = [
    "audit.enable",
    "electionAlg",
    "cnxTimeout",
    "quorum.cnxn.threads.size",
];

/// Raft ticks per ZooKeeper tick: heartbeats go out every tickTime / 40 (50 ms at the usual
/// 2000), so a follower hears its leader many times within any election timeout.
const RAFT_TICKS_PER_TICK: u32 = 40;

/// The ensemble part of zoo.cfg: who the members are and how long they wait for each other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnsembleCfg {
    /// The `server.N` lines (from zoo.cfg or its `dynamicConfigFile`).
    pub membership: Membership,
    /// initLimit, in ticks (printed by `conf`).
    pub init_limit_ticks: u32,
    /// syncLimit, in ticks: a follower that hears nothing from its leader for about
    /// syncLimit x tickTime / 20 campaigns (see `apply_timing`).
    pub sync_limit_ticks: u32,
    /// quorumListenOnAllIPs: the peer port listens on every address, not only its own line's.
    pub peer_listen_all_ips: bool,
    /// `quorum.secretFile` (ours): a file whose bytes every member shares; peers prove they
    /// hold them before anything they send is taken.
    pub secret_file: Option<PathBuf>,
    /// TLS between members (`sslQuorum`, `portUnification`, `ssl.quorum.*`).
    pub tls: Option<PeerTlsConfig>,
    /// dynamicConfigFile, when the membership came from one.
    pub dynamic_config_file: Option<PathBuf>,
    /// standaloneEnabled: a single `server.N` line runs standalone.
    pub standalone_enabled: bool,
}

impl Default for EnsembleCfg {
    fn default() -> Self {
        EnsembleCfg {
            membership: Membership::default(),
            init_limit_ticks: 10,
            sync_limit_ticks: 5,
            peer_listen_all_ips: false,
            secret_file: None,
            tls: None,
            dynamic_config_file: None,
            standalone_enabled: true,
        }
    }
}

/// A configuration file, parsed.
#[derive(Clone, Debug)]
pub struct ZooCfg {
    /// Engine settings.
    pub server: ServerConfig,
    /// Client-port settings.
    pub net: NetConfig,
    /// dataDir.
    pub data_dir: Option<PathBuf>,
    /// The ensemble this member belongs to; None runs standalone (no `server.N` lines, or one
    /// with `standaloneEnabled`, as ZooKeeper does).
    pub ensemble: Option<EnsembleCfg>,
    /// Lines worth a warning (unknown keys, keys for later features).
    pub warnings: Vec<String>,
}

/// A value that breaks its key's rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CfgError {
    /// The key.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for CfgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.key, self.message)
    }
}

impl std::error::Error for CfgError {}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, CfgError> {
    value.trim().parse().map_err(|_| CfgError {
        key: key.to_string(),
        message: format!("{value:?} is not a valid number"),
    })
}

impl ZooCfg {
    /// Defaults: the same as a zoo.cfg with nothing in it.
    pub fn new() -> ZooCfg {
        ZooCfg {
            server: ServerConfig::default(),
            net: NetConfig::default(),
            data_dir: None,
            ensemble: None,
            warnings: Vec::new(),
        }
    }

    /// Reads a zoo.cfg file and the `dynamicConfigFile` it names (relative to the current
    /// directory, as ZooKeeper resolves it).
    pub fn read(path: &Path) -> Result<ZooCfg, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let mut cfg =
            ZooCfg::parse(&text).map_err(|error| format!("{}: {error}", path.display()))?;
        let dynamic = cfg
            .ensemble
            .as_ref()
            .and_then(|ensemble| ensemble.dynamic_config_file.clone());
        if let Some(dynamic) = dynamic {
            let text = std::fs::read_to_string(&dynamic)
                .map_err(|error| format!("cannot read {}: {error}", dynamic.display()))?;
            let membership = Membership::parse_dynamic(&text)
                .map_err(|error| format!("{}: {error}", dynamic.display()))?;
            let ensemble = cfg.ensemble.as_mut().expect("checked above");
            ensemble.membership = membership;
            cfg.settle_ensemble()
                .map_err(|error| format!("{}: {error}", path.display()))?;
        }
        Ok(cfg)
    }

    /// Parses zoo.cfg text on top of the defaults.
    pub fn parse(text: &str) -> Result<ZooCfg, CfgError> {
        let mut cfg = ZooCfg::new();
        let mut port = cfg.net.address.port();
        let mut address: IpAddr = cfg.net.address.ip();
        let mut ensemble = EnsembleCfg::default();
        let mut http = HttpCfg::default();
        let mut tls = tls::TlsKeys::default();
        let mut client_port_given = false;
        let member_line = |ensemble: &mut EnsembleCfg, key: &str, value: &str| {
            ensemble
                .membership
                .add_line(key, value)
                .map_err(|message| CfgError {
                    key: key.to_string(),
                    message,
                })
        };
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((key, value)) = line.split_once(['=', ':']) else {
                cfg.warnings
                    .push(format!("ignoring a line that is not key=value: {line}"));
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            // zoo.cfg keys ZooKeeper reads as zookeeper.* system properties.
            let key = key.strip_prefix("zookeeper.").unwrap_or(key);
            match key {
                "tickTime" => cfg.server.tick_ms = number(key, value)?,
                "dataDir" => cfg.data_dir = Some(PathBuf::from(value)),
                // One directory holds log and snapshots here; a separate log dir is not used.
                "dataLogDir" => cfg
                    .warnings
                    .push("dataLogDir is not used: the log lives in dataDir".to_string()),
                "forceSync" => cfg.server.force_sync = boolean(key, value)?,
                "snapCount" => cfg.server.snap_count = number(key, value)?,
                "autopurge.snapRetainCount" => cfg.server.snapshots_retained = number(key, value)?,
                "clientPort" => {
                    port = number(key, value)?;
                    client_port_given = true;
                }
                "clientPortAddress" => {
                    address = value.parse().map_err(|_| CfgError {
                        key: key.to_string(),
                        message: format!("{value:?} is not an IP address"),
                    })?
                }
                "maxClientCnxns" => cfg.net.connections_per_ip_max = number(key, value)?,
                "maxConnections" => cfg.net.connections_max = number(key, value)?,
                "minSessionTimeout" => {
                    cfg.server.session_timeout_ms_min = Some(number(key, value)?)
                }
                "maxSessionTimeout" => {
                    cfg.server.session_timeout_ms_max = Some(number(key, value)?)
                }
                "4lw.commands.whitelist" => {
                    cfg.net.four_letter_words = FourLetterWhitelist::parse(value)
                }
                "jute.maxbuffer" => {
                    let bytes: usize = number(key, value)?;
                    cfg.net.frame_bytes_max = bytes;
                    cfg.server.data_bytes_max = bytes;
                    cfg.server.reply_bytes_max = cfg.server.reply_bytes_max.max(bytes);
                }
                "DigestAuthenticationProvider.superDigest" => {
                    cfg.server.super_digest = Some(value.to_string())
                }
                "extendedTypesEnabled" => cfg.server.ttl_enabled = boolean(key, value)?,
                "enforceQuota" => cfg.server.enforce_quota = boolean(key, value)?,
                "znode.container.checkIntervalMs" => {
                    cfg.server.container_check_interval_ms = number(key, value)?
                }
                key if key.starts_with("server.") => member_line(&mut ensemble, key, value)?,
                "initLimit" => ensemble.init_limit_ticks = positive(key, value)?,
                "syncLimit" => ensemble.sync_limit_ticks = positive(key, value)?,
                "quorumListenOnAllIPs" => ensemble.peer_listen_all_ips = boolean(key, value)?,
                "quorum.secretFile" => ensemble.secret_file = Some(PathBuf::from(value)),
                "dynamicConfigFile" => ensemble.dynamic_config_file = Some(PathBuf::from(value)),
                "standaloneEnabled" => ensemble.standalone_enabled = boolean(key, value)?,
                "readonlymode.enabled" => cfg.server.read_only_enabled = boolean(key, value)?,
                "reconfigEnabled" => cfg.server.reconfig_enabled = boolean(key, value)?,
                // ZooKeeper 3.8 serves read-only clients only with local sessions; ours always
                // does in read-only mode (its read-only sessions are local by nature).
                "localSessionsEnabled" | "localSessionsUpgradingEnabled" => {}
                // The role is the member's own server.N line's (ZooKeeper checks they agree).
                "peerType" => match value {
                    "participant" | "observer" => {}
                    _ => {
                        return Err(CfgError {
                            key: key.to_string(),
                            message: format!("{value:?} is neither participant nor observer"),
                        })
                    }
                },
                key if tls.take(key, value, &mut cfg.warnings)? => {}
                key if LATER_KEYS.iter().any(|(later, _)| *later == key) => {
                    let why = LATER_KEYS.iter().find(|(later, _)| *later == key);
                    cfg.warnings.push(format!(
                        "{key} is not used yet: it waits for {}",
                        why.map(|(_, why)| *why).unwrap_or_default()
                    ))
                }
                key if key.starts_with("metricsProvider.") || key.starts_with("admin.") => {
                    let taken = http.set(key, value).map_err(|message| CfgError {
                        key: key.to_string(),
                        message,
                    })?;
                    if !taken {
                        cfg.warnings.push(format!("unknown key {key} ignored"));
                    }
                }
                key if IGNORED_KEYS.contains(&key) => {}
                key => cfg.warnings.push(format!("unknown key {key} ignored")),
            }
        }
        cfg.net.address = SocketAddr::new(address, port);
        http.finish(&mut cfg.net.http)
            .map_err(|(key, message)| CfgError { key, message })?;
        ensemble.tls = tls.settle(&mut cfg, address, client_port_given)?;
        if ensemble.dynamic_config_file.is_some() && !ensemble.membership.members.is_empty() {
            return Err(CfgError {
                key: "dynamicConfigFile".into(),
                message:
                    "server.N lines belong in the dynamic configuration file when one is named"
                        .into(),
            });
        }
        let named_dynamic = ensemble.dynamic_config_file.is_some();
        cfg.ensemble = Some(ensemble);
        if !named_dynamic {
            cfg.settle_ensemble()?;
        }
        cfg.server.validate().map_err(|error| CfgError {
            key: "configuration".into(),
            message: error.rule.to_string(),
        })?;
        Ok(cfg)
    }

    /// Decides standalone or ensemble once the membership is known, as ZooKeeper does: no
    /// `server.N` line, or a single one with `standaloneEnabled`, runs standalone; otherwise
    /// raft's timing follows tickTime and syncLimit.
    fn settle_ensemble(&mut self) -> Result<(), CfgError> {
        let Some(ensemble) = &self.ensemble else {
            return Ok(());
        };
        let members = ensemble.membership.members.len();
        if members == 0 || (members == 1 && ensemble.standalone_enabled) {
            self.ensemble = None;
            return Ok(());
        }
        if ensemble.membership.voters().is_empty() {
            return Err(CfgError {
                key: "server.N".into(),
                message: "an ensemble needs at least one participant".into(),
            });
        }
        let sync_limit_ticks = ensemble.sync_limit_ticks;
        apply_timing(&mut self.server, sync_limit_ticks);
        Ok(())
    }
}

/// Maps ZooKeeper's timing onto raft's: heartbeats every tickTime / 40, and an election
/// timeout of syncLimit x tickTime / 20 (500 ms at tickTime 2000 and syncLimit 5; raft
/// randomises it up to twice that). ZooKeeper's followers give up on a silent leader after
/// syncLimit x tickTime; raft's check-quorum and pre-vote make a shorter wait safe.
fn apply_timing(server: &mut ServerConfig, sync_limit_ticks: u32) {
    server.raft_tick_ms = (server.tick_ms / RAFT_TICKS_PER_TICK).max(1);
    server.heartbeat_ticks = 1;
    server.election_ticks = (2 * sync_limit_ticks).max(2);
}

fn positive(key: &str, value: &str) -> Result<u32, CfgError> {
    let ticks: u32 = number(key, value)?;
    if ticks == 0 {
        return Err(CfgError {
            key: key.to_string(),
            message: "must be greater than 0".into(),
        });
    }
    Ok(ticks)
}

impl Default for ZooCfg {
    fn default() -> Self {
        ZooCfg::new()
    }
}

fn boolean(key: &str, value: &str) -> Result<bool, CfgError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(CfgError {
            key: key.to_string(),
            message: format!("{value:?} is not true or false"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operators_zoo_cfg_works() {
        let cfg = ZooCfg::parse(
            "# a comment\ntickTime=1000\ndataDir=/var/lib/zookeeper\nclientPort=2182\nclientPortAddress=0.0.0.0\n\
             maxClientCnxns=10\nminSessionTimeout=3000\nmaxSessionTimeout=9000\n4lw.commands.whitelist=ruok, stat\n\
             jute.maxbuffer=4096\nadmin.enableServer=false\nserver.1=a:2888:3888\nfrobnicate=yes\n\
             maxConnections=20000\n",
        )
        .unwrap();
        assert_eq!(cfg.server.tick_ms, 1000);
        assert_eq!(cfg.data_dir, Some(PathBuf::from("/var/lib/zookeeper")));
        assert_eq!(cfg.net.address, "0.0.0.0:2182".parse().unwrap());
        assert_eq!(cfg.net.connections_per_ip_max, 10);
        assert_eq!(cfg.net.connections_max, 20_000);
        assert_eq!(
            (
                cfg.server.session_timeout_ms_min(),
                cfg.server.session_timeout_ms_max()
            ),
            (3000, 9000)
        );
        assert!(
            cfg.net.four_letter_words.allows("stat") && !cfg.net.four_letter_words.allows("dump")
        );
        assert_eq!(
            (cfg.net.frame_bytes_max, cfg.server.data_bytes_max),
            (4096, 4096)
        );
        // A single server line runs standalone, as ZooKeeper's standaloneEnabled default says.
        assert_eq!(cfg.ensemble, None);
        assert_eq!(cfg.warnings.len(), 1, "{:?}", cfg.warnings);
    }

    #[test]
    fn invalid_values_name_their_key() {
        let error = ZooCfg::parse("tickTime=fast\n").unwrap_err();
        assert_eq!(error.key, "tickTime");
        assert_eq!(
            ZooCfg::parse("clientPortAddress=nowhere\n")
                .unwrap_err()
                .key,
            "clientPortAddress"
        );
        assert_eq!(
            ZooCfg::parse("tickTime=0\n").unwrap_err().message,
            "tick_ms must be greater than 0"
        );
    }

    const ENSEMBLE: &str = "tickTime=2000\ninitLimit=10\nsyncLimit=5\n\
        server.1=10.0.0.1:2888:3888\nserver.2=10.0.0.2:2888:3888\n\
        server.3=10.0.0.3:2888:3888:observer\n";

    #[test]
    fn server_lines_make_an_ensemble_with_raft_timing_from_tick_and_sync_limit() {
        let cfg = ZooCfg::parse(ENSEMBLE).unwrap();
        let ensemble = cfg.ensemble.expect("three server lines");
        assert_eq!(ensemble.membership.voters(), vec![1, 2]);
        assert_eq!(ensemble.membership.observers(), vec![3]);
        assert_eq!(
            (ensemble.init_limit_ticks, ensemble.sync_limit_ticks),
            (10, 5)
        );
        // Heartbeats every 50 ms; an election timeout of 10 of them (500 ms).
        assert_eq!(
            (
                cfg.server.raft_tick_ms,
                cfg.server.heartbeat_ticks,
                cfg.server.election_ticks
            ),
            (50, 1, 10)
        );
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    }

    #[test]
    fn one_server_line_runs_standalone_unless_told_otherwise() {
        let one = "server.1=127.0.0.1:2888:3888\n";
        assert_eq!(ZooCfg::parse(one).unwrap().ensemble, None);
        let forced = ZooCfg::parse(&format!("{one}standaloneEnabled=false\n")).unwrap();
        assert_eq!(forced.ensemble.unwrap().membership.voters(), vec![1]);
    }

    #[test]
    fn ensemble_mistakes_name_their_key() {
        for (text, key) in [
            ("server.1=a:1:2\nserver.1=b:1:2\n", "server.1"),
            ("server.1=a:1:2\nserver.2=a:1:3\n", "server.2"),
            ("syncLimit=0\n", "syncLimit"),
            ("peerType=leader\n", "peerType"),
            (
                "server.1=a:1:2:observer\nserver.2=b:1:2:observer\n",
                "server.N",
            ),
            (
                "dynamicConfigFile=/tmp/zoo.cfg.dynamic\nserver.1=a:1:2\n",
                "dynamicConfigFile",
            ),
        ] {
            assert_eq!(ZooCfg::parse(text).unwrap_err().key, key, "{text}");
        }
    }

    #[test]
    fn the_membership_comes_from_the_dynamic_file_when_one_is_named() {
        let dir = std::env::temp_dir().join(format!("zk-dynamic-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dynamic = dir.join("zoo.cfg.dynamic");
        std::fs::write(
            &dynamic,
            "server.1=127.0.0.1:2888:3888:participant;2181\n\
             server.2=127.0.0.1:2889:3889:participant;2182\nversion=100000000\n",
        )
        .unwrap();
        let main = dir.join("zoo.cfg");
        std::fs::write(
            &main,
            format!("tickTime=1000\ndynamicConfigFile={}\n", dynamic.display()),
        )
        .unwrap();
        let cfg = ZooCfg::read(&main).unwrap();
        let ensemble = cfg.ensemble.unwrap();
        assert_eq!(ensemble.membership.version, 0x1_0000_0000);
        assert_eq!(ensemble.membership.voters(), vec![1, 2]);
        assert_eq!(cfg.server.raft_tick_ms, 25);
        std::fs::write(&dynamic, "tickTime=5\n").unwrap();
        assert!(ZooCfg::read(&main).unwrap_err().contains("does not belong"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
