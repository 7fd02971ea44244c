//! zoo.cfg, ZooKeeper's configuration file format (Java properties: `key=value` lines, `#`
//! comments), turned into server and client-port settings. Unknown keys warn; invalid values
//! fail with a message naming the key.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::server::net::{FourLetterWhitelist, NetConfig};
use crate::server::ServerConfig;

/// Keys a replicated ensemble or durability will use; accepted now and reported as unused.
const LATER_KEYS: [&str; 4] = [
    "initLimit",
    "syncLimit",
    "autopurge.purgeInterval",
    "preAllocSize",
];

/// What the keys of `LATER_KEYS` and `server.N` wait for.
const LATER: &str = "replication";

/// Keys that only concern the JVM server's extras and mean nothing here.
const IGNORED_KEYS: [&str; 6] = [
    "admin.enableServer",
    "admin.serverPort",
    "standaloneEnabled",
    "reconfigEnabled",
    "metricsProvider.className",
    "audit.enable",
];

/// A configuration file, parsed.
#[derive(Clone, Debug)]
pub struct ZooCfg {
    /// Engine settings.
    pub server: ServerConfig,
    /// Client-port settings.
    pub net: NetConfig,
    /// dataDir.
    pub data_dir: Option<PathBuf>,
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
            warnings: Vec::new(),
        }
    }

    /// Parses zoo.cfg text on top of the defaults.
    pub fn parse(text: &str) -> Result<ZooCfg, CfgError> {
        let mut cfg = ZooCfg::new();
        let mut port = cfg.net.address.port();
        let mut address: IpAddr = cfg.net.address.ip();
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
                "clientPort" => port = number(key, value)?,
                "clientPortAddress" => {
                    address = value.parse().map_err(|_| CfgError {
                        key: key.to_string(),
                        message: format!("{value:?} is not an IP address"),
                    })?
                }
                "maxClientCnxns" => cfg.net.connections_per_ip_max = number(key, value)?,
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
                "znode.container.checkIntervalMs" => {
                    cfg.server.container_check_interval_ms = number(key, value)?
                }
                key if key.starts_with("server.") || LATER_KEYS.contains(&key) => cfg
                    .warnings
                    .push(format!("{key} is not used yet: it arrives with {}", LATER)),
                key if IGNORED_KEYS.contains(&key) => {}
                key => cfg.warnings.push(format!("unknown key {key} ignored")),
            }
        }
        cfg.net.address = SocketAddr::new(address, port);
        cfg.server.validate().map_err(|error| CfgError {
            key: "configuration".into(),
            message: error.rule.to_string(),
        })?;
        Ok(cfg)
    }
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
             jute.maxbuffer=4096\nadmin.enableServer=false\nserver.1=a:2888:3888\nfrobnicate=yes\n",
        )
        .unwrap();
        assert_eq!(cfg.server.tick_ms, 1000);
        assert_eq!(cfg.data_dir, Some(PathBuf::from("/var/lib/zookeeper")));
        assert_eq!(cfg.net.address, "0.0.0.0:2182".parse().unwrap());
        assert_eq!(cfg.net.connections_per_ip_max, 10);
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
        assert_eq!(cfg.warnings.len(), 2, "{:?}", cfg.warnings);
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
}
