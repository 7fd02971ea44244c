//! ZooKeeper's connect string (`host:port,host:port/chroot`) and the chroot's path rewriting:
//! paths gain the chroot on the way out and lose it on the way back, as the Java client does.

use crate::op::{CreateRequest, Op, OpResult, ReadOp, Reply, SetWatchesRequest};
use crate::proto::{ErrorCode, WatchedEvent};
use crate::tree::path;

/// The port a host without one is reached on.
pub(crate) const DEFAULT_PORT: u16 = 2181;
/// Most hosts one connect string may list.
pub(crate) const HOSTS_MAX: usize = 256;

/// A parsed connect string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConnectString {
    /// `(host, port)` in the order given.
    pub(crate) hosts: Vec<(String, u16)>,
    /// The chroot, None for "/".
    pub(crate) chroot: Option<String>,
}

impl ConnectString {
    /// Parses `host[:port][,host[:port]...][/chroot]`; IPv6 hosts go in brackets.
    /// BadArguments for an empty list, a bad port or an invalid chroot.
    pub(crate) fn parse(text: &str) -> Result<ConnectString, ErrorCode> {
        let (hosts_text, chroot) = match text.find('/') {
            Some(index) => (&text[..index], Some(&text[index..])),
            None => (text, None),
        };
        let chroot = match chroot {
            None | Some("/") => None,
            Some(chroot) => {
                path::validate(chroot).map_err(|_| ErrorCode::BadArguments)?;
                Some(chroot.to_string())
            }
        };
        let mut hosts = Vec::new();
        for entry in hosts_text.split(',').map(str::trim) {
            if entry.is_empty() {
                continue;
            }
            hosts.push(parse_host(entry)?);
        }
        if hosts.is_empty() || hosts.len() > HOSTS_MAX {
            return Err(ErrorCode::BadArguments);
        }
        Ok(ConnectString { hosts, chroot })
    }
}

fn parse_host(entry: &str) -> Result<(String, u16), ErrorCode> {
    let parse_port = |port: &str| port.parse::<u16>().map_err(|_| ErrorCode::BadArguments);
    if let Some(rest) = entry.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(ErrorCode::BadArguments)?;
        let port = match after.strip_prefix(':') {
            Some(port) => parse_port(port)?,
            None if after.is_empty() => DEFAULT_PORT,
            None => return Err(ErrorCode::BadArguments),
        };
        return Ok((host.to_string(), port));
    }
    match entry.rsplit_once(':') {
        // More than one colon without brackets: a bare IPv6 address, or nothing.
        Some((host, _)) if host.contains(':') => match entry.parse::<std::net::Ipv6Addr>() {
            Ok(_) => Ok((entry.to_string(), DEFAULT_PORT)),
            Err(_) => Err(ErrorCode::BadArguments),
        },
        Some((host, port)) if !host.is_empty() => Ok((host.to_string(), parse_port(port)?)),
        Some(_) => Err(ErrorCode::BadArguments),
        None => Ok((entry.to_string(), DEFAULT_PORT)),
    }
}

/// Rewrites paths between the client's view and the server's.
#[derive(Clone, Debug, Default)]
pub(crate) struct Chroot(Option<String>);

impl Chroot {
    pub(crate) fn new(chroot: Option<String>) -> Chroot {
        Chroot(chroot)
    }

    /// A client path as the server sees it.
    pub(crate) fn to_server(&self, client_path: &str) -> String {
        match &self.0 {
            None => client_path.to_string(),
            Some(root) if client_path == "/" => root.clone(),
            Some(root) => format!("{root}{client_path}"),
        }
    }

    /// A server path as the client sees it; a path outside the chroot is left as it is.
    pub(crate) fn to_client(&self, server_path: String) -> String {
        let Some(root) = &self.0 else {
            return server_path;
        };
        match server_path.strip_prefix(root.as_str()) {
            Some("") => "/".to_string(),
            Some(rest) if rest.starts_with('/') => rest.to_string(),
            _ => server_path,
        }
    }

    /// The op with its paths as the server sees them.
    pub(crate) fn op_to_server(&self, op: Op) -> Op {
        if self.0.is_none() {
            return op;
        }
        let to = |path: String| self.to_server(&path);
        match op {
            Op::Create(request) => Op::Create(CreateRequest {
                path: to(request.path),
                ..request
            }),
            Op::Delete { path, version } => Op::Delete {
                path: to(path),
                version,
            },
            Op::SetData {
                path,
                data,
                version,
            } => Op::SetData {
                path: to(path),
                data,
                version,
            },
            Op::SetAcl { path, acl, version } => Op::SetAcl {
                path: to(path),
                acl,
                version,
            },
            Op::Check { path, version } => Op::Check {
                path: to(path),
                version,
            },
            Op::Multi(ops) => Op::Multi(ops.into_iter().map(|op| self.op_to_server(op)).collect()),
            Op::GetData { path, watch } => Op::GetData {
                path: to(path),
                watch,
            },
            Op::Exists { path, watch } => Op::Exists {
                path: to(path),
                watch,
            },
            Op::GetChildren { path, watch } => Op::GetChildren {
                path: to(path),
                watch,
            },
            Op::GetAcl { path } => Op::GetAcl { path: to(path) },
            Op::GetAllChildrenNumber { path } => Op::GetAllChildrenNumber { path: to(path) },
            Op::GetEphemerals { prefix } => Op::GetEphemerals { prefix: to(prefix) },
            Op::Sync { path } => Op::Sync { path: to(path) },
            Op::MultiRead(reads) => Op::MultiRead(
                reads
                    .into_iter()
                    .map(|read| match read {
                        ReadOp::GetData { path } => ReadOp::GetData { path: to(path) },
                        ReadOp::GetChildren { path } => ReadOp::GetChildren { path: to(path) },
                    })
                    .collect(),
            ),
            Op::AddWatch { path, mode } => Op::AddWatch {
                path: to(path),
                mode,
            },
            Op::RemoveWatches { path, watcher_type } => Op::RemoveWatches {
                path: to(path),
                watcher_type,
            },
            Op::CheckWatches { path, watcher_type } => Op::CheckWatches {
                path: to(path),
                watcher_type,
            },
            Op::SetWatches(request) => {
                let all = |paths: Vec<String>| paths.into_iter().map(to).collect();
                Op::SetWatches(SetWatchesRequest {
                    relative_zxid: request.relative_zxid,
                    data: all(request.data),
                    exist: all(request.exist),
                    child: all(request.child),
                    persistent: all(request.persistent),
                    persistent_recursive: all(request.persistent_recursive),
                })
            }
            Op::DeleteContainer { path } => Op::DeleteContainer { path: to(path) },
            other @ (Op::WhoAmI
            | Op::AddAuth { .. }
            | Op::Reconfig(_)
            | Op::CloseSession
            | Op::Ping
            | Op::Sasl
            | Op::Refused(_)) => other,
        }
    }

    /// The reply with its paths as the client sees them.
    pub(crate) fn reply_to_client(&self, reply: Reply) -> Reply {
        if self.0.is_none() {
            return reply;
        }
        match reply {
            Reply::Create { path, stat } => Reply::Create {
                path: self.to_client(path),
                stat,
            },
            Reply::Sync(path) => Reply::Sync(self.to_client(path)),
            Reply::Paths(paths) => {
                Reply::Paths(paths.into_iter().map(|p| self.to_client(p)).collect())
            }
            Reply::Multi(results) => Reply::Multi(
                results
                    .into_iter()
                    .map(|result| match result {
                        OpResult::Create { path, stat } => OpResult::Create {
                            path: self.to_client(path),
                            stat,
                        },
                        other => other,
                    })
                    .collect(),
            ),
            other => other,
        }
    }

    /// The event with its path as the client sees it.
    pub(crate) fn event_to_client(&self, mut event: WatchedEvent) -> WatchedEvent {
        if self.0.is_some() && !event.path.is_empty() {
            event.path = self.to_client(std::mem::take(&mut event.path));
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_strings_parse_as_the_java_client_reads_them() {
        let parsed = ConnectString::parse("a:1, b ,[::1]:3,[fe80::1]/app/x").unwrap();
        assert_eq!(
            parsed.hosts,
            vec![
                ("a".to_string(), 1),
                ("b".to_string(), DEFAULT_PORT),
                ("::1".to_string(), 3),
                ("fe80::1".to_string(), DEFAULT_PORT)
            ]
        );
        assert_eq!(parsed.chroot.as_deref(), Some("/app/x"));
        assert_eq!(ConnectString::parse("h/").unwrap().chroot, None);
        assert_eq!(
            ConnectString::parse("::1").unwrap().hosts,
            vec![("::1".to_string(), DEFAULT_PORT)]
        );
        for bad in [
            "", ",", "/app", "h:x", "h:70000", "h/app/", ":1", "[::1", "::::", "a:b:c",
        ] {
            assert_eq!(
                ConnectString::parse(bad),
                Err(ErrorCode::BadArguments),
                "{bad}"
            );
        }
    }

    #[test]
    fn chroot_maps_paths_both_ways_and_leaves_outsiders_alone() {
        let chroot = Chroot::new(Some("/app".into()));
        assert_eq!(chroot.to_server("/"), "/app");
        assert_eq!(chroot.to_server("/a/b"), "/app/a/b");
        assert_eq!(chroot.to_client("/app".into()), "/");
        assert_eq!(chroot.to_client("/app/a".into()), "/a");
        assert_eq!(chroot.to_client("/apple".into()), "/apple");
        assert_eq!(Chroot::default().to_server("/a"), "/a");
    }
}
