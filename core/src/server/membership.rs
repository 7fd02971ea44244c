//! The ensemble's membership as ZooKeeper operators write it: `server.N` lines parsed (the
//! pre-3.5 and the 3.5+ dynamic forms) and printed back as ZooKeeper prints them (`conf`,
//! `/zookeeper/config`).

use std::collections::BTreeMap;
use std::fmt;

/// Whether a member votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberRole {
    /// Votes and may lead.
    Participant,
    /// Replicates and serves clients; does not vote (a raft learner).
    Observer,
}

impl MemberRole {
    /// ZooKeeper's word for the role.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Participant => "participant",
            MemberRole::Observer => "observer",
        }
    }
}

/// One `server.N` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSpec {
    /// N: the member's id (its `myid`).
    pub id: u8,
    /// Where its peers reach it (a host name or an IP address, without brackets).
    pub host: String,
    /// The port members replicate on (ZooKeeper's quorum port, 2888 by custom).
    pub peer_port: u16,
    /// ZooKeeper's leader-election port (3888 by custom): accepted and printed back; raft
    /// elects over the peer port, so nothing listens here.
    pub election_port: u16,
    /// Whether it votes.
    pub role: MemberRole,
    /// The 3.5+ form's client address (`;[host:]port`); None in the old form, where
    /// `clientPort` says it.
    pub client: Option<(Option<String>, u16)>,
}

impl MemberSpec {
    /// `host:peer`, bracketing an IPv6 address, for dialing.
    pub fn peer_address(&self) -> String {
        join_host_port(&self.host, self.peer_port)
    }
}

impl fmt::Display for MemberSpec {
    /// ZooKeeper's `QuorumServer.toString`: `server.N=` is the caller's.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            join_host_port(&self.host, self.peer_port),
            self.election_port,
            self.role.as_str()
        )?;
        if let Some((host, port)) = &self.client {
            match host {
                Some(host) => write!(f, ";{}", join_host_port(host, *port))?,
                None => write!(f, ";{port}")?,
            }
        }
        Ok(())
    }
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The members of an ensemble and the configuration's version (ZooKeeper's `version=`, the
/// zxid of the reconfiguration that made it; 0 for a static configuration).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    /// By id.
    pub members: BTreeMap<u8, MemberSpec>,
    /// The configuration's version.
    pub version: u64,
}

impl Membership {
    /// Adds a `server.N=value` line (`key` is `server.N`), refusing a second line for N.
    pub fn add_line(&mut self, key: &str, value: &str) -> Result<(), String> {
        let spec = parse_member(key, value)?;
        if self.members.contains_key(&spec.id) {
            return Err(format!("{key} appears twice"));
        }
        if let Some(other) = self.members.values().find(|other| {
            other.host == spec.host
                && (other.peer_port == spec.peer_port || other.election_port == spec.peer_port)
        }) {
            return Err(format!(
                "{key} uses the peer address of server.{} ({})",
                other.id,
                spec.peer_address()
            ));
        }
        self.members.insert(spec.id, spec);
        Ok(())
    }

    /// Reads a dynamic configuration file's text (`server.N` lines and `version=`; ZooKeeper's
    /// `zoo.cfg.dynamic`): the only keys it may hold.
    pub fn parse_dynamic(text: &str) -> Result<Membership, String> {
        let mut membership = Membership::default();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(format!("{line:?} is not key=value"));
            };
            let (key, value) = (key.trim(), value.trim());
            if key == "version" {
                membership.version = u64::from_str_radix(value, 16)
                    .map_err(|_| format!("version {value:?} is not a hexadecimal number"))?;
            } else if key.starts_with("server.") {
                membership.add_line(key, value)?;
            } else {
                return Err(format!(
                    "{key} does not belong in a dynamic configuration file"
                ));
            }
        }
        Ok(membership)
    }

    /// Voting members' ids.
    pub fn voters(&self) -> Vec<u8> {
        self.with_role(MemberRole::Participant)
    }

    /// Observers' ids.
    pub fn observers(&self) -> Vec<u8> {
        self.with_role(MemberRole::Observer)
    }

    fn with_role(&self, role: MemberRole) -> Vec<u8> {
        self.members
            .values()
            .filter(|spec| spec.role == role)
            .map(|spec| spec.id)
            .collect()
    }

    /// The text ZooKeeper keeps in `/zookeeper/config` and prints after `membership: ` in
    /// `conf`: one line per member, then `version=` in hexadecimal, with no final newline.
    pub fn config_text(&self) -> String {
        let mut text = String::new();
        for spec in self.members.values() {
            text.push_str(&format!("server.{}={spec}\n", spec.id));
        }
        text.push_str(&format!("version={:x}", self.version));
        text
    }
}

/// Parses `server.N=host:peerPort:electionPort[:role][;[clientHost:]clientPort]`.
fn parse_member(key: &str, value: &str) -> Result<MemberSpec, String> {
    let id: u8 = key
        .strip_prefix("server.")
        .and_then(|id| id.parse().ok())
        .filter(|id| *id <= 254)
        .ok_or_else(|| format!("{key}: the member id must be a number from 0 to 254"))?;
    let invalid = |why: &str| format!("{key}={value}: {why}");
    let (address, client) = match value.split_once(';') {
        Some((address, client)) => (address.trim(), Some(client.trim())),
        None => (value.trim(), None),
    };
    if address.contains('|') {
        return Err(invalid(
            "several addresses per member (ZooKeeper 3.6's multi-address form) are not supported",
        ));
    }
    let (host, rest) = split_host(address).ok_or_else(|| invalid("the host is missing"))?;
    let fields: Vec<&str> = rest.split(':').collect();
    if fields.len() < 2 || fields.len() > 3 {
        return Err(invalid(
            "expected host:peerPort:electionPort with an optional :participant or :observer",
        ));
    }
    let port = |text: &str, name: &str| {
        text.trim()
            .parse::<u16>()
            .ok()
            .filter(|port| *port > 0)
            .ok_or_else(|| invalid(&format!("{name} {text:?} is not a port number")))
    };
    let peer_port = port(fields[0], "the peer port")?;
    let election_port = port(fields[1], "the election port")?;
    let role = match fields.get(2).map(|role| role.trim()) {
        None | Some("participant") => MemberRole::Participant,
        Some("observer") => MemberRole::Observer,
        Some(other) => {
            return Err(invalid(&format!(
                "role {other:?} is neither participant nor observer"
            )))
        }
    };
    let client = match client {
        None => None,
        Some(client) => Some(match client.rsplit_once(':') {
            Some((host, client_port)) => (
                Some(host.trim_matches(['[', ']']).to_string()),
                port(client_port, "the client port")?,
            ),
            None => (None, port(client, "the client port")?),
        }),
    };
    Ok(MemberSpec {
        id,
        host,
        peer_port,
        election_port,
        role,
        client,
    })
}

/// Splits `host:rest` or `[v6]:rest`.
fn split_host(address: &str) -> Option<(String, &str)> {
    if let Some(bracketed) = address.strip_prefix('[') {
        let (host, rest) = bracketed.split_once("]:")?;
        return Some((host.to_string(), rest));
    }
    let (host, rest) = address.split_once(':')?;
    (!host.is_empty()).then(|| (host.to_string(), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn membership(lines: &[(&str, &str)]) -> Result<Membership, String> {
        let mut membership = Membership::default();
        for (key, value) in lines {
            membership.add_line(key, value)?;
        }
        Ok(membership)
    }

    #[test]
    fn the_old_form_prints_as_zookeeper_does() {
        let membership = membership(&[
            ("server.1", "127.0.0.1:2288:3388"),
            ("server.2", "127.0.0.1:2289:3389"),
            ("server.3", "127.0.0.1:2290:3390:observer"),
        ])
        .unwrap();
        assert_eq!(membership.voters(), vec![1, 2]);
        assert_eq!(membership.observers(), vec![3]);
        // As Apache ZooKeeper 3.8 holds it in /zookeeper/config for the same lines.
        assert_eq!(
            membership.config_text(),
            "server.1=127.0.0.1:2288:3388:participant\nserver.2=127.0.0.1:2289:3389:participant\n\
             server.3=127.0.0.1:2290:3390:observer\nversion=0"
        );
    }

    #[test]
    fn the_dynamic_form_carries_client_addresses() {
        let membership = Membership::parse_dynamic(
            "server.1=zk1:2888:3888:participant;2181\n\
             server.2=[::1]:2888:3888:participant;0.0.0.0:2182\nversion=100000000\n",
        )
        .unwrap();
        let two = &membership.members[&2];
        assert_eq!(two.host, "::1");
        assert_eq!(two.peer_address(), "[::1]:2888");
        assert_eq!(two.client, Some((Some("0.0.0.0".to_string()), 2182)));
        assert_eq!(membership.members[&1].client, Some((None, 2181)));
        assert_eq!(membership.version, 0x1_0000_0000);
        assert_eq!(
            membership.config_text(),
            "server.1=zk1:2888:3888:participant;2181\n\
             server.2=[::1]:2888:3888:participant;0.0.0.0:2182\nversion=100000000"
        );
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        for (key, value, expected) in [
            ("server.255", "a:1:2", "from 0 to 254"),
            ("server.x", "a:1:2", "from 0 to 254"),
            ("server.1", "a:1", "expected host:peerPort"),
            ("server.1", "a:0:2", "the peer port \"0\""),
            ("server.1", "a:1:2:leader", "role \"leader\""),
            ("server.1", "a:1:2|b:1:2", "multi-address"),
            ("server.1", ":1:2", "the host is missing"),
            ("server.1", "a:1:2;x", "the client port"),
        ] {
            let error = membership(&[(key, value)]).unwrap_err();
            assert!(error.contains(expected), "{key}={value}: {error}");
        }
        let error = membership(&[("server.1", "a:1:2"), ("server.1", "b:1:2")]).unwrap_err();
        assert_eq!(error, "server.1 appears twice");
        let error = membership(&[("server.1", "a:1:2"), ("server.2", "a:1:3")]).unwrap_err();
        assert!(error.contains("peer address of server.1"), "{error}");
        assert!(Membership::parse_dynamic("tickTime=2000\n")
            .unwrap_err()
            .contains("does not belong"));
    }
}
