//! Reads: a session's reads served from the local tree, with ACL checks and the watches they
//! leave registered while the tree lock is held (so no change can slip between read and watch).

use parking_lot::Mutex;

use crate::op::{Op, ReadOp, ReadResult, Reply, SetWatchesRequest};
use crate::proto::{ErrorCode, EventType, Id, Perms, WatchedEvent};
use crate::server::session_layer::LocalSession;
use crate::tree::{acl, data_bytes, DataTree};
use crate::watch::{WatchKind, WatchRegistry};

/// Which client-side watch table a watch the server just registered belongs to, told to the
/// front end while the tree lock is held so it can record its watcher before any event fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchRegistered {
    /// getData, or exists on an existing znode.
    Data,
    /// exists on a missing znode.
    Exist,
    /// getChildren.
    Child,
    /// addWatch PERSISTENT.
    Persistent,
    /// addWatch PERSISTENT_RECURSIVE.
    PersistentRecursive,
}

/// Registers a watch for `session` unless it has closed meanwhile. The closed check runs under
/// the registry lock because closing marks the session closed before it drops the session's
/// watches under that lock: a watch added later would never be removed.
pub(super) fn register(
    watches: &Mutex<WatchRegistry>,
    session: &LocalSession,
    path: &str,
    kind: WatchKind,
    registered: WatchRegistered,
    on_watch: &mut dyn FnMut(&str, WatchRegistered),
) -> Result<(), ErrorCode> {
    {
        let mut watches = watches.lock();
        if session.is_closed() {
            return Err(ErrorCode::SessionExpired);
        }
        watches.add(session.id(), path, kind)?;
    }
    on_watch(path, registered);
    Ok(())
}

/// Serves one read op (getData, getChildren, exists, getACL, getAllChildrenNumber,
/// getEphemerals, multiRead) against `tree`.
///
/// # Panics
/// If `op` is not a read: the engine routes only reads here.
pub(super) fn serve(
    tree: &DataTree,
    watches: &Mutex<WatchRegistry>,
    session: &LocalSession,
    op: Op,
    reply_bytes_max: usize,
    on_watch: &mut dyn FnMut(&str, WatchRegistered),
) -> Result<Reply, ErrorCode> {
    let identities = session.identities();
    let reader = Reader {
        tree,
        watches,
        session,
        identities: &identities,
    };
    match op {
        Op::GetData { path, watch } => reader.get_data(&path, watch, on_watch),
        Op::GetChildren { path, watch } => reader.get_children(&path, watch, on_watch),
        Op::Exists { path, watch } => reader.exists(&path, watch, on_watch),
        Op::GetAcl { path } => reader.get_acl(&path),
        Op::GetAllChildrenNumber { path } => reader.all_children_number(&path),
        Op::GetEphemerals { prefix } => Ok(reader.ephemerals(&prefix)),
        Op::MultiRead(reads) => {
            // A few bytes of request can ask for the same large znode thousands of times: the
            // reply is bounded, and a read that would pass the bound fails the whole request.
            let mut reply_bytes = 0usize;
            let mut results = Vec::with_capacity(reads.len());
            for read in reads {
                let result = match read {
                    ReadOp::GetData { path } => reader.get_data(&path, false, on_watch),
                    ReadOp::GetChildren { path } => reader.get_children(&path, false, on_watch),
                };
                let result = match result {
                    Ok(Reply::Data { data, stat }) => ReadResult::Data { data, stat },
                    Ok(Reply::Children { children, .. }) => ReadResult::Children(children),
                    Ok(other) => unreachable!("a read answered {other:?}"),
                    Err(code) => ReadResult::Error(code),
                };
                reply_bytes += read_result_bytes(&result);
                if reply_bytes > reply_bytes_max {
                    return Err(ErrorCode::MarshallingError);
                }
                results.push(result);
            }
            Ok(Reply::MultiRead(results))
        }
        other => unreachable!("not a read: {other:?}"),
    }
}

/// What a read's result adds to a reply, roughly as encoded: its header, data and Stat or names.
fn read_result_bytes(result: &ReadResult) -> usize {
    const HEADER_AND_STAT_BYTES: usize = 9 + 68;
    match result {
        ReadResult::Data { data, .. } => HEADER_AND_STAT_BYTES + data_bytes(data.as_deref()),
        ReadResult::Children(children) => {
            13 + children.iter().map(|name| 4 + name.len()).sum::<usize>()
        }
        ReadResult::Error(_) => 13,
    }
}

/// setWatches after a reconnect: fire what the session missed since `relative_zxid`,
/// re-register the rest (ZooKeeper's DataTree.setWatches).
pub(super) fn set_watches(
    tree: &DataTree,
    watches: &Mutex<WatchRegistry>,
    session: &LocalSession,
    request: &SetWatchesRequest,
    on_watch: &mut dyn FnMut(&str, WatchRegistered),
) -> Result<Reply, ErrorCode> {
    let relative = request.relative_zxid;
    let mut missed = Vec::new();
    let mut result = Ok(());
    // Each watch is registered on its own, so the registry lock is never held while the front
    // end records its watcher (front ends take their own lock there).
    let mut add = |path: &str,
                   kind: WatchKind,
                   registered: WatchRegistered,
                   result: &mut Result<(), ErrorCode>| {
        if let Err(code) = register(watches, session, path, kind, registered, on_watch) {
            *result = Err(code);
        }
    };
    for path in &request.data {
        match tree.stat(path) {
            None => missed.push((EventType::NodeDeleted, path)),
            Some(stat) if stat.mzxid > relative => missed.push((EventType::NodeDataChanged, path)),
            Some(_) => add(path, WatchKind::Data, WatchRegistered::Data, &mut result),
        }
    }
    for path in &request.exist {
        match tree.stat(path) {
            Some(_) => missed.push((EventType::NodeCreated, path)),
            None => add(path, WatchKind::Data, WatchRegistered::Exist, &mut result),
        }
    }
    for path in &request.child {
        match tree.stat(path) {
            None => missed.push((EventType::NodeDeleted, path)),
            Some(stat) if stat.pzxid > relative => {
                missed.push((EventType::NodeChildrenChanged, path))
            }
            Some(_) => add(path, WatchKind::Child, WatchRegistered::Child, &mut result),
        }
    }
    for path in &request.persistent {
        add(
            path,
            WatchKind::Persistent,
            WatchRegistered::Persistent,
            &mut result,
        );
    }
    for path in &request.persistent_recursive {
        add(
            path,
            WatchKind::PersistentRecursive,
            WatchRegistered::PersistentRecursive,
            &mut result,
        );
    }
    for (event_type, path) in missed {
        session.deliver(WatchedEvent::node(event_type, path.clone(), -1));
    }
    result.map(|()| Reply::Done)
}

/// Reads against one tree view on behalf of one session.
struct Reader<'a> {
    tree: &'a DataTree,
    watches: &'a Mutex<WatchRegistry>,
    session: &'a LocalSession,
    identities: &'a [Id],
}

impl Reader<'_> {
    fn readable(&self, path: &str) -> Result<&crate::tree::Znode, ErrorCode> {
        let znode = self.tree.get(path).ok_or(ErrorCode::NoNode)?;
        if !acl::check(znode.acl(), Perms::READ, self.identities) {
            return Err(ErrorCode::NoAuth);
        }
        Ok(znode)
    }

    fn watch(
        &self,
        path: &str,
        kind: WatchKind,
        registered: WatchRegistered,
        on_watch: &mut dyn FnMut(&str, WatchRegistered),
    ) -> Result<(), ErrorCode> {
        register(self.watches, self.session, path, kind, registered, on_watch)
    }

    fn get_data(
        &self,
        path: &str,
        watch: bool,
        on_watch: &mut dyn FnMut(&str, WatchRegistered),
    ) -> Result<Reply, ErrorCode> {
        let znode = self.readable(path)?;
        if watch {
            self.watch(path, WatchKind::Data, WatchRegistered::Data, on_watch)?;
        }
        Ok(Reply::Data {
            data: znode.data().map(<[u8]>::to_vec),
            stat: znode.stat(),
        })
    }

    fn get_children(
        &self,
        path: &str,
        watch: bool,
        on_watch: &mut dyn FnMut(&str, WatchRegistered),
    ) -> Result<Reply, ErrorCode> {
        let znode = self.readable(path)?;
        if watch {
            self.watch(path, WatchKind::Child, WatchRegistered::Child, on_watch)?;
        }
        Ok(Reply::Children {
            children: self.tree.child_names(znode),
            stat: znode.stat(),
        })
    }

    /// exists needs READ only on an existing znode, and leaves its watch even when the znode
    /// is missing (that is how a client waits for a create).
    fn exists(
        &self,
        path: &str,
        watch: bool,
        on_watch: &mut dyn FnMut(&str, WatchRegistered),
    ) -> Result<Reply, ErrorCode> {
        let stat = match self.tree.get(path) {
            Some(znode) if !acl::check(znode.acl(), Perms::READ, self.identities) => {
                return Err(ErrorCode::NoAuth)
            }
            Some(znode) => Some(znode.stat()),
            None => None,
        };
        if watch {
            let registered = if stat.is_some() {
                WatchRegistered::Data
            } else {
                WatchRegistered::Exist
            };
            self.watch(path, WatchKind::Data, registered, on_watch)?;
        }
        Ok(Reply::Exists(stat))
    }

    /// getACL needs READ or ADMIN; without ADMIN, digest hashes are masked.
    fn get_acl(&self, path: &str) -> Result<Reply, ErrorCode> {
        let znode = self.tree.get(path).ok_or(ErrorCode::NoNode)?;
        if !acl::check(znode.acl(), Perms::READ | Perms::ADMIN, self.identities) {
            return Err(ErrorCode::NoAuth);
        }
        let acl = if acl::check(znode.acl(), Perms::ADMIN, self.identities) {
            znode.acl().to_vec()
        } else {
            acl::mask_digests(znode.acl())
        };
        Ok(Reply::Acl {
            acl,
            stat: znode.stat(),
        })
    }

    fn all_children_number(&self, path: &str) -> Result<Reply, ErrorCode> {
        self.readable(path)?;
        Ok(Reply::Number(
            self.tree.all_children_number(path).unwrap_or(0),
        ))
    }

    /// ZooKeeper treats an empty prefix or "/" as "all", and otherwise a plain string prefix.
    fn ephemerals(&self, prefix: &str) -> Reply {
        let mut paths = self.tree.ephemerals(self.session.id());
        let prefix = prefix.trim();
        if !prefix.is_empty() && prefix != "/" {
            paths.retain(|path| path.starts_with(prefix));
        }
        Reply::Paths(paths)
    }
}
