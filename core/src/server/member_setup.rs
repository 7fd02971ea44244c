//! Assembles one member of a real ensemble from its zoo.cfg: its id from `myid`, the data
//! directory's identity (so a member never starts on another member's or another ensemble's
//! data), and the TCP peer transport.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha1::{Digest, Sha1};

use crate::replication::{raft_id, TcpTransport, TcpTransportConfig};
use crate::server::zoo_cfg::EnsembleCfg;
use crate::server::ServerConfig;

/// The file ZooKeeper's operators write in dataDir: this member's id, in decimal.
pub const MYID_FILE: &str = "myid";
/// Our own file in dataDir: which member of which ensemble the data belongs to, written at
/// the first start and checked at every later one.
pub const IDENTITY_FILE: &str = "ensemble.identity";

/// The identity `zookeeper-rs import` writes: data no member has claimed yet. The first start
/// claims it, as a member (its identity replaces this) or as a standalone server (this is
/// removed), so an imported directory can be copied to every member of an ensemble.
pub const UNCLAIMED_IDENTITY: &str = "unclaimed: imported from Apache ZooKeeper\n";

/// The shortest secret accepted, in bytes.
pub const SECRET_BYTES_MIN: usize = 16;

/// The secret of an ensemble configured without one (ZooKeeper's zoo.cfg has no such key):
/// the handshake still runs, but proves nothing.
const UNAUTHENTICATED_SECRET: &[u8] = b"zookeeper-rs: no quorum.secretFile configured";

/// Why a member cannot start.
#[derive(Debug)]
pub enum MemberSetupError {
    /// An ensemble member keeps its data on disk: `myid` and the identity live there.
    NoDataDir,
    /// `myid` is missing, unreadable or not a number.
    Myid(String),
    /// `myid` names a member the configuration does not list.
    NotAMember(u8),
    /// The data directory belongs to another member or another ensemble, or holds a
    /// standalone server's data.
    ForeignDataDir(String),
    /// The secret file could not be read.
    Secret(String),
    /// A peer address does not resolve.
    PeerAddress(String),
    /// The peer port could not be opened.
    Transport(String),
}

impl fmt::Display for MemberSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemberSetupError::NoDataDir => {
                write!(
                    f,
                    "an ensemble member needs a dataDir (it holds myid and the data)"
                )
            }
            MemberSetupError::Myid(why) => write!(f, "myid: {why}"),
            MemberSetupError::NotAMember(id) => write!(
                f,
                "myid says this is member {id}, but no server.{id} line lists it"
            ),
            MemberSetupError::ForeignDataDir(why) => {
                write!(f, "refusing the data directory: {why}")
            }
            MemberSetupError::Secret(why) => write!(f, "quorum.secretFile: {why}"),
            MemberSetupError::PeerAddress(why) => write!(f, "peer address: {why}"),
            MemberSetupError::Transport(why) => write!(f, "peer port: {why}"),
        }
    }
}

impl std::error::Error for MemberSetupError {}

/// A member ready to start: its engine settings (id, voters, observers, transport) and the
/// transport to attach the engine to once it runs.
pub struct MemberSetup {
    /// This member's id.
    pub member_id: u8,
    /// The peer transport, listening already.
    pub transport: Arc<TcpTransport>,
}

/// Reads `myid`, checks the data directory's identity, starts the peer transport and fills
/// `server`'s ensemble settings.
pub fn prepare(
    ensemble: &EnsembleCfg,
    server: &mut ServerConfig,
) -> Result<MemberSetup, MemberSetupError> {
    let data_dir = server.data_dir.clone().ok_or(MemberSetupError::NoDataDir)?;
    let member_id = read_myid(&data_dir)?;
    let membership = &ensemble.membership;
    let me = membership
        .members
        .get(&member_id)
        .ok_or(MemberSetupError::NotAMember(member_id))?;
    let secret = match &ensemble.secret_file {
        Some(path) => std::fs::read(path)
            .map_err(|error| MemberSetupError::Secret(format!("{}: {error}", path.display())))?,
        None => {
            // Members that must present a trusted certificate are authenticated by TLS.
            let certified = ensemble.tls.as_ref().is_some_and(|tls| {
                !tls.accept_plain && tls.tls.client_auth == crate::server::net::ClientAuth::Need
            });
            if !certified {
                tracing::warn!(
                    "no quorum.secretFile: any process that can reach the peer port may join, \
                     and data directories of different ensembles cannot be told apart"
                );
            }
            UNAUTHENTICATED_SECRET.to_vec()
        }
    };
    if secret.len() < SECRET_BYTES_MIN {
        return Err(MemberSetupError::Secret(format!(
            "the secret must hold at least {SECRET_BYTES_MIN} bytes"
        )));
    }
    let ensemble_id = ensemble_id(&secret);
    check_identity(&data_dir, member_id, ensemble_id)?;
    let mut peers = std::collections::BTreeMap::new();
    let mut peer_hosts = std::collections::BTreeMap::new();
    for spec in membership
        .members
        .values()
        .filter(|spec| spec.id != member_id)
    {
        peers.insert(raft_id(spec.id), resolve(&spec.peer_address())?);
        peer_hosts.insert(raft_id(spec.id), spec.host.clone());
    }
    let mut listen = resolve(&me.peer_address())?;
    if ensemble.peer_listen_all_ips {
        listen.set_ip(match listen {
            SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
        });
    }
    let transport = TcpTransport::start(TcpTransportConfig {
        tls: ensemble.tls.clone(),
        peer_hosts,
        ..TcpTransportConfig::new(raft_id(member_id), ensemble_id, secret, listen, peers)
    })
    .map_err(|error| MemberSetupError::Transport(format!("{listen}: {error}")))?;
    server.member_id = member_id;
    server.voters = membership.voters();
    server.observers = membership.observers();
    server.transport = Some(transport.clone());
    tracing::info!(
        member_id,
        %listen,
        tls = ensemble.tls.as_ref().map_or("off", |tls| if tls.dial_tls { "on" } else { "accepted" }),
        voters = ?server.voters,
        observers = ?server.observers,
        "starting as a member of an ensemble"
    );
    Ok(MemberSetup {
        member_id,
        transport,
    })
}

/// The ensemble's identity: a digest of its shared secret, so members of different
/// ensembles (different secrets) refuse each other and each other's data directories.
pub fn ensemble_id(secret: &[u8]) -> u64 {
    let digest = Sha1::new()
        .chain_update(b"zookeeper-rs ensemble\0")
        .chain_update(secret)
        .finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("a SHA-1 digest has 20 bytes"))
}

fn read_myid(data_dir: &Path) -> Result<u8, MemberSetupError> {
    let path = data_dir.join(MYID_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|error| MemberSetupError::Myid(format!("{}: {error}", path.display())))?;
    text.trim()
        .parse::<u8>()
        .ok()
        .filter(|id| *id <= 254)
        .ok_or_else(|| {
            MemberSetupError::Myid(format!(
                "{}: {:?} is not a member id from 0 to 254",
                path.display(),
                text.trim()
            ))
        })
}

/// Writes the identity on first start; refuses a directory whose identity names another
/// member or ensemble, or one holding data but no identity (a standalone server's).
fn check_identity(
    data_dir: &Path,
    member_id: u8,
    ensemble_id: u64,
) -> Result<(), MemberSetupError> {
    let path = data_dir.join(IDENTITY_FILE);
    let wanted = identity_text(member_id, ensemble_id);
    match std::fs::read_to_string(&path) {
        Ok(found) if found == wanted => Ok(()),
        Ok(found) if found == UNCLAIMED_IDENTITY => {
            write_identity(&path, &wanted).map_err(|error| {
                MemberSetupError::ForeignDataDir(format!("{}: {error}", path.display()))
            })
        }
        Ok(found) => Err(MemberSetupError::ForeignDataDir(format!(
            "{} says {:?}, but this is member {member_id} of ensemble {ensemble_id:016x} \
             (another member's data, or another ensemble's: a different quorum.secretFile)",
            path.display(),
            found.trim().replace('\n', ", ")
        ))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if let Some(name) = data_file(data_dir) {
                return Err(MemberSetupError::ForeignDataDir(format!(
                    "{} holds {name} but no {IDENTITY_FILE}: data a standalone server wrote",
                    data_dir.display()
                )));
            }
            write_identity(&path, &wanted).map_err(|error| {
                MemberSetupError::ForeignDataDir(format!("{}: {error}", path.display()))
            })
        }
        Err(error) => Err(MemberSetupError::ForeignDataDir(format!(
            "{}: {error}",
            path.display()
        ))),
    }
}

/// A standalone server must not start on an ensemble member's data either.
pub fn check_standalone(data_dir: &Path) -> Result<(), MemberSetupError> {
    let path = data_dir.join(IDENTITY_FILE);
    match std::fs::read_to_string(&path) {
        // Claimed as a standalone server's: a member must not take it afterwards.
        Ok(found) if found == UNCLAIMED_IDENTITY => std::fs::remove_file(&path)
            .and_then(|()| std::fs::File::open(data_dir)?.sync_all())
            .map_err(|error| {
                MemberSetupError::ForeignDataDir(format!("{}: {error}", path.display()))
            }),
        Ok(found) => Err(MemberSetupError::ForeignDataDir(format!(
            "{} says {:?}: this data belongs to an ensemble member; start it with its \
             server.N lines",
            path.display(),
            found.trim().replace('\n', ", ")
        ))),
        Err(_) => Ok(()),
    }
}

fn identity_text(member_id: u8, ensemble_id: u64) -> String {
    format!("member={member_id}\nensemble={ensemble_id:016x}\n")
}

fn write_identity(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let staged: PathBuf = path.with_extension("staged");
    std::fs::write(&staged, text)?;
    std::fs::File::open(&staged)?.sync_all()?;
    std::fs::rename(&staged, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The first log or snapshot file in `data_dir`, if any.
fn data_file(data_dir: &Path) -> Option<String> {
    let entries = std::fs::read_dir(data_dir).ok()?;
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("log.") || name.starts_with("snapshot."))
}

fn resolve(address: &str) -> Result<SocketAddr, MemberSetupError> {
    address
        .to_socket_addrs()
        .map_err(|error| MemberSetupError::PeerAddress(format!("{address}: {error}")))?
        .next()
        .ok_or_else(|| MemberSetupError::PeerAddress(format!("{address} resolves to nothing")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "zk-member-setup-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_identity_is_written_once_and_then_enforced() {
        let dir = temp_dir("identity");
        check_identity(&dir, 2, 7).unwrap();
        check_identity(&dir, 2, 7).unwrap();
        let other_member = check_identity(&dir, 3, 7).unwrap_err().to_string();
        assert!(other_member.contains("this is member 3"), "{other_member}");
        let other_ensemble = check_identity(&dir, 2, 8).unwrap_err().to_string();
        assert!(
            other_ensemble.contains("another ensemble"),
            "{other_ensemble}"
        );
        assert!(check_standalone(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_standalone_data_dir_is_refused() {
        let dir = temp_dir("standalone");
        std::fs::write(dir.join("log.0000000000000001"), b"").unwrap();
        let error = check_identity(&dir, 1, 7).unwrap_err().to_string();
        assert!(error.contains("a standalone server wrote"), "{error}");
        assert!(!dir.join(IDENTITY_FILE).exists());
        check_standalone(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn imported_data_is_claimed_by_its_first_start() {
        let dir = temp_dir("imported");
        std::fs::write(dir.join("snapshot.0000000000000009"), b"").unwrap();
        std::fs::write(dir.join(IDENTITY_FILE), UNCLAIMED_IDENTITY).unwrap();
        check_identity(&dir, 2, 7).unwrap();
        assert!(check_identity(&dir, 3, 7).is_err());

        std::fs::write(dir.join(IDENTITY_FILE), UNCLAIMED_IDENTITY).unwrap();
        check_standalone(&dir).unwrap();
        assert!(!dir.join(IDENTITY_FILE).exists());
        assert!(check_identity(&dir, 2, 7).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn myid_must_name_a_member_number() {
        let dir = temp_dir("myid");
        assert!(read_myid(&dir).is_err());
        // ZooKeeper takes any number; ids here are 0 to 254 (255 marks TTL owners).
        for bad in ["255", "-1", "two", ""] {
            std::fs::write(dir.join(MYID_FILE), bad).unwrap();
            assert!(read_myid(&dir).is_err(), "{bad:?}");
        }
        std::fs::write(dir.join(MYID_FILE), "3\n").unwrap();
        assert_eq!(read_myid(&dir).unwrap(), 3);
        std::fs::write(dir.join(MYID_FILE), "0").unwrap();
        assert_eq!(read_myid(&dir).unwrap(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn different_secrets_make_different_ensembles() {
        assert_eq!(ensemble_id(b"s"), ensemble_id(b"s"));
        assert_ne!(ensemble_id(b"s"), ensemble_id(b"t"));
    }
}
