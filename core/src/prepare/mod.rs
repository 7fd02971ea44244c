//! Prepare stage: validate a write against the tree plus pending changes; produce a TxnOp or an error.
//!
//! Checks run in ZooKeeper's order (PrepRequestProcessor), because the order decides which error
//! a client sees when several apply. Prepare reads the tree but never changes it: what a prepared
//! but not yet applied Txn will do is recorded in `PendingChanges`, so the next request (or the
//! next op of a multi) is validated against the tree as it will be.

mod pending;

pub use pending::PendingChanges;
use pending::PendingNode;

use std::collections::HashMap;

use crate::op::{CreateRequest, Op, OpResult};
use crate::proto::{Acl, ErrorCode, Id, Perms, CONTAINER_EPHEMERAL_OWNER, TTL_MS_MAX};
use crate::tree::{acl, data_bytes, path, DataTree, SharedAcl};
use crate::txn::TxnOp;

/// Limits a write is checked against.
#[derive(Clone, Debug)]
pub struct WriteLimits {
    /// Largest znode data in bytes.
    pub data_bytes_max: usize,
    /// Most ephemerals one session may own.
    pub ephemerals_per_session_max: usize,
    /// Whether TTL znodes may be created (ZooKeeper's `zookeeper.extendedTypesEnabled`).
    pub ttl_enabled: bool,
    /// Whether a write past a quota's hard limit is refused (ZooKeeper's
    /// `zookeeper.enforceQuota`); limits passed are logged either way.
    pub enforce_quota: bool,
    /// Whether `x509` ACLs are accepted (the x509 auth provider is configured).
    pub x509_enabled: bool,
}

/// Who asks: the session and its authenticated identities, or the server itself.
#[derive(Clone, Copy, Debug)]
pub struct Requester<'a> {
    /// The session id (0 for the server).
    pub session_id: i64,
    /// Identities added by addAuth (and the connection's ip).
    pub identities: &'a [Id],
    /// Whether a client or the server's own reaper asks: what a client may ask is decided
    /// here, once, for every front end.
    pub role: Role,
}

/// Who a write comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A client's session.
    Client,
    /// The server's container and TTL reaper (ZooKeeper's ContainerManager).
    Reaper,
}

impl Requester<'_> {
    /// The server's reaper: no session, no identities.
    pub fn reaper() -> Requester<'static> {
        Requester {
            session_id: 0,
            identities: &[],
            role: Role::Reaper,
        }
    }
}

pub use crate::txn::Refusal;

/// What prepare needs to know of a znode.
#[derive(Clone, Debug)]
struct NodeView {
    version: i32,
    cversion: i32,
    aversion: i32,
    ephemeral_owner: i64,
    child_count: i32,
    acl: SharedAcl,
}

/// Undo records for a multi, so a failed multi leaves the pending changes as they were.
struct Undo {
    nodes: Vec<(String, Option<PendingNode>)>,
    ephemerals_added: HashMap<i64, Vec<(i64, i64)>>,
}

/// One prepare pass over the tree plus pending changes.
pub struct Prepare<'a> {
    tree: &'a DataTree,
    pending: &'a mut PendingChanges,
    limits: &'a WriteLimits,
    /// The zxid the prepared Txn will commit at, which tags its pending changes.
    zxid: i64,
    undo: Option<Undo>,
}

impl<'a> Prepare<'a> {
    /// Validates any write a session or the reaper sends: the one place that decides what a
    /// requester may ask. A multi holds only create, delete, setData and check (anything
    /// else fails the whole request with MarshallingError, as a multi ZooKeeper cannot
    /// decode); reconfig is disabled, as on a ZooKeeper without `reconfigEnabled`.
    ///
    /// # Panics
    /// In debug builds, for an op that is not a write (`Op::kind`) or for closeSession, which
    /// ends a session rather than changing the tree (`close_session`).
    pub fn request(&mut self, who: Requester<'_>, op: &Op) -> Result<TxnOp, Refusal> {
        match op {
            Op::Multi(ops) => {
                if !ops.iter().all(Op::is_multi_write) {
                    return Err(Refusal::Code(ErrorCode::MarshallingError));
                }
                self.multi(who, ops).map_err(|results| {
                    // What ZooKeeper fails with other than a KeeperException (a null ACL id's
                    // NullPointerException: MarshallingError) escapes its multi loop, so the
                    // whole request answers MarshallingError, without per-op results.
                    let marshalling = OpResult::Error(Some(ErrorCode::MarshallingError));
                    if results.contains(&marshalling) {
                        Refusal::Code(ErrorCode::MarshallingError)
                    } else {
                        Refusal::Multi(results)
                    }
                })
            }
            Op::Reconfig(_) => Err(Refusal::Code(ErrorCode::ReconfigDisabled)),
            single => {
                debug_assert!(
                    single.kind() == crate::op::OpKind::Write && *single != Op::CloseSession,
                    "not a tree write: {single:?}"
                );
                self.write(who, single).map_err(Refusal::Code)
            }
        }
    }

    /// A prepare pass for the Txn that will commit at `zxid`; `pending` carries over between
    /// requests until their Txns are applied.
    pub fn new(
        tree: &'a DataTree,
        pending: &'a mut PendingChanges,
        limits: &'a WriteLimits,
        zxid: i64,
    ) -> Self {
        Prepare {
            tree,
            pending,
            limits,
            zxid,
            undo: None,
        }
    }

    /// Validates one write op (not Multi) and returns its TxnOp.
    pub fn write(&mut self, who: Requester<'_>, op: &Op) -> Result<TxnOp, ErrorCode> {
        match op {
            Op::Create(request) => self.create(who, request),
            Op::Delete { path, version } => self.delete(who, path, *version),
            Op::SetData {
                path,
                data,
                version,
            } => self.set_data(who, path, data.as_deref(), *version),
            Op::SetAcl { path, acl, version } => self.set_acl(who, path, acl, *version),
            Op::Check { path, version } => self.check(who, path, *version),
            Op::DeleteContainer { path } => self.delete_container(who, path),
            // Anything else inside a multi is a request ZooKeeper cannot even decode.
            _ => Err(ErrorCode::MarshallingError),
        }
    }

    /// Validates a multi. On failure returns ZooKeeper's per-op results: code 0 for the ops
    /// before the failing one, its error, then RuntimeInconsistency; pending changes are rolled back.
    pub fn multi(&mut self, who: Requester<'_>, ops: &[Op]) -> Result<TxnOp, Vec<OpResult>> {
        self.undo = Some(Undo {
            nodes: Vec::new(),
            ephemerals_added: self.pending.ephemerals_added.clone(),
        });
        let mut txns = Vec::with_capacity(ops.len());
        let mut failure = None;
        for (index, op) in ops.iter().enumerate() {
            match self.write(who, op) {
                Ok(txn) => txns.push(txn),
                Err(code) => {
                    failure = Some((index, code));
                    break;
                }
            }
        }
        let undo = self.undo.take().expect("undo log present during a multi");
        let Some((failed_index, code)) = failure else {
            return Ok(TxnOp::Multi(txns));
        };
        for (path, previous) in undo.nodes.into_iter().rev() {
            match previous {
                Some(view) => self.pending.nodes.insert(path, view),
                None => self.pending.nodes.remove(&path),
            };
        }
        self.pending.ephemerals_added = undo.ephemerals_added;
        Err((0..ops.len())
            .map(|index| {
                OpResult::Error(match index.cmp(&failed_index) {
                    std::cmp::Ordering::Less => None,
                    std::cmp::Ordering::Equal => Some(code),
                    std::cmp::Ordering::Greater => Some(ErrorCode::RuntimeInconsistency),
                })
            })
            .collect())
    }

    /// Prepares the end of a session: its ephemerals (applied or pending) are deleted.
    pub fn close_session(&mut self, session_id: i64) -> TxnOp {
        let mut doomed = self.tree.ephemerals(session_id);
        for (path, (_, view)) in &self.pending.nodes {
            match view {
                Some(view) if view.ephemeral_owner == session_id => doomed.push(path.clone()),
                None => doomed.retain(|p| p != path),
                _ => {}
            }
        }
        doomed.sort();
        doomed.dedup();
        for path in doomed {
            if let Some(mut parent) = self.node(path::parent(&path)) {
                parent.child_count -= 1;
                self.record(path::parent(&path).to_string(), Some(parent));
            }
            self.record(path, None);
        }
        self.pending.ephemerals_added.remove(&session_id);
        TxnOp::CloseSession { session_id }
    }

    fn create(&mut self, who: Requester<'_>, request: &CreateRequest) -> Result<TxnOp, ErrorCode> {
        let mode = request.mode;
        if mode.is_ttl() && !self.limits.ttl_enabled {
            return Err(ErrorCode::Unimplemented);
        }
        let ttl_valid = if mode.is_ttl() {
            request.ttl_ms > 0 && request.ttl_ms <= TTL_MS_MAX
        } else {
            request.ttl_ms < 0
        };
        if !ttl_valid {
            return Err(ErrorCode::BadArguments);
        }
        // ZooKeeper validates only the parent part here and the full path after the sequence
        // suffix is added, so "/queue/" with a sequential mode creates "/queue/0000000000".
        let Some(last_slash) = request.path.rfind('/') else {
            return Err(ErrorCode::BadArguments);
        };
        if request.path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = if last_slash == 0 {
            "/"
        } else {
            &request.path[..last_slash]
        };
        let acl = acl::fixup(&request.acl, who.identities, self.limits.x509_enabled)?;
        let parent = self.node(parent_path).ok_or(ErrorCode::NoNode)?;
        if !acl::check(&parent.acl, Perms::CREATE, who.identities) {
            return Err(ErrorCode::NoAuth);
        }
        let path = if mode.is_sequential() {
            format!("{}{:010}", request.path, parent.cversion)
        } else {
            request.path.clone()
        };
        path::validate(&path)?;
        if self.node(&path).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        if is_session_ephemeral(parent.ephemeral_owner) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        if data_bytes(request.data.as_deref()) > self.limits.data_bytes_max {
            return Err(ErrorCode::BadArguments);
        }
        self.check_quota(&path, data_bytes(request.data.as_deref()) as i64, 1)?;
        let ephemeral_owner = if mode.is_container() {
            CONTAINER_EPHEMERAL_OWNER
        } else if mode.is_ttl() {
            crate::tree::ttl_owner(request.ttl_ms)
        } else if mode.is_ephemeral() {
            let owned = self.tree.ephemeral_count(who.session_id) as i64
                + self.pending.ephemerals_added(who.session_id);
            if owned >= self.limits.ephemerals_per_session_max as i64 {
                return Err(ErrorCode::QuotaExceeded);
            }
            self.count_ephemeral(who.session_id, 1);
            who.session_id
        } else {
            0
        };
        let parent_cversion = parent.cversion.wrapping_add(1);
        let parent_path = parent_path.to_string();
        self.record(
            parent_path,
            Some(NodeView {
                cversion: parent_cversion,
                child_count: parent.child_count + 1,
                ..parent
            }),
        );
        let acl: SharedAcl = acl.into();
        self.record(
            path.clone(),
            Some(NodeView {
                version: 0,
                cversion: 0,
                aversion: 0,
                ephemeral_owner,
                child_count: 0,
                acl: acl.clone(),
            }),
        );
        Ok(TxnOp::Create {
            path,
            data: request.data.clone(),
            acl: acl.to_vec(),
            ephemeral_owner,
            parent_cversion,
        })
    }

    fn delete(&mut self, who: Requester<'_>, path: &str, version: i32) -> Result<TxnOp, ErrorCode> {
        let parent_path = deletable_parent(path)?;
        let parent = self.node(parent_path).ok_or(ErrorCode::NoNode)?;
        if !acl::check(&parent.acl, Perms::DELETE, who.identities) {
            return Err(ErrorCode::NoAuth);
        }
        let node = self.node(path).ok_or(ErrorCode::NoNode)?;
        next_version(node.version, version)?;
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        Ok(self.record_delete(path, parent_path, parent, &node))
    }

    /// deleteContainer. ZooKeeper checks no ACL here, so its clients can delete any childless
    /// znode that is not an ephemeral (3.9; 3.8.0 cannot decode a client's request and answers
    /// BadArguments for every znode). A client may delete an empty container, as in 3.9, and
    /// is answered BadArguments for anything else; the reaper also deletes TTL znodes.
    fn delete_container(&mut self, who: Requester<'_>, path: &str) -> Result<TxnOp, ErrorCode> {
        let parent_path = deletable_parent(path)?;
        let node = self.node(path).ok_or(ErrorCode::NoNode)?;
        if who.role == Role::Client && node.ephemeral_owner != CONTAINER_EPHEMERAL_OWNER {
            return Err(ErrorCode::BadArguments);
        }
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        // ZooKeeper answers BadVersion when asked to reap a session's ephemeral.
        if is_session_ephemeral(node.ephemeral_owner) {
            return Err(ErrorCode::BadVersion);
        }
        let parent = self.node(parent_path).ok_or(ErrorCode::NoNode)?;
        Ok(self.record_delete(path, parent_path, parent, &node))
    }

    fn record_delete(
        &mut self,
        path: &str,
        parent_path: &str,
        parent: NodeView,
        node: &NodeView,
    ) -> TxnOp {
        if is_session_ephemeral(node.ephemeral_owner) {
            self.count_ephemeral(node.ephemeral_owner, -1);
        }
        self.record(
            parent_path.to_string(),
            Some(NodeView {
                child_count: parent.child_count - 1,
                ..parent
            }),
        );
        self.record(path.to_string(), None);
        TxnOp::Delete {
            path: path.to_string(),
        }
    }

    fn set_data(
        &mut self,
        who: Requester<'_>,
        path: &str,
        data: Option<&[u8]>,
        version: i32,
    ) -> Result<TxnOp, ErrorCode> {
        path::validate(path)?;
        let node = self.node(path).ok_or(ErrorCode::NoNode)?;
        if !acl::check(&node.acl, Perms::WRITE, who.identities) {
            return Err(ErrorCode::NoAuth);
        }
        if data_bytes(data) > self.limits.data_bytes_max {
            return Err(ErrorCode::BadArguments);
        }
        // ZooKeeper checks the quota before the version. The data replaced is the applied
        // tree's, as the quota's usage is: both lag writes prepared and not yet applied.
        let replaced_bytes = self
            .tree
            .get(path)
            .map_or(0, |node| data_bytes(node.data()));
        self.check_quota(path, data_bytes(data) as i64 - replaced_bytes as i64, 0)?;
        let version = next_version(node.version, version)?;
        self.record(path.to_string(), Some(NodeView { version, ..node }));
        Ok(TxnOp::SetData {
            path: path.to_string(),
            data: data.map(<[u8]>::to_vec),
            version,
        })
    }

    fn set_acl(
        &mut self,
        who: Requester<'_>,
        path: &str,
        new_acl: &[Acl],
        version: i32,
    ) -> Result<TxnOp, ErrorCode> {
        path::validate(path)?;
        let new_acl = acl::fixup(new_acl, who.identities, self.limits.x509_enabled)?;
        let node = self.node(path).ok_or(ErrorCode::NoNode)?;
        if !acl::check(&node.acl, Perms::ADMIN, who.identities) {
            return Err(ErrorCode::NoAuth);
        }
        let aversion = next_version(node.aversion, version)?;
        let shared: SharedAcl = new_acl.clone().into();
        self.record(
            path.to_string(),
            Some(NodeView {
                aversion,
                acl: shared,
                ..node
            }),
        );
        Ok(TxnOp::SetAcl {
            path: path.to_string(),
            acl: new_acl,
            version: aversion,
        })
    }

    fn check(&mut self, who: Requester<'_>, path: &str, version: i32) -> Result<TxnOp, ErrorCode> {
        path::validate(path)?;
        let node = self.node(path).ok_or(ErrorCode::NoNode)?;
        if !acl::check(&node.acl, Perms::READ, who.identities) {
            return Err(ErrorCode::NoAuth);
        }
        next_version(node.version, version)?;
        Ok(TxnOp::Check {
            path: path.to_string(),
        })
    }

    /// The znode as it will be once pending changes apply.
    /// ZooKeeper's `checkQuota`: a write past a limit of the deepest quota above `path` is
    /// logged, and refused with QuotaExceeded when the limit is hard and quotas are enforced.
    fn check_quota(&self, path: &str, bytes_diff: i64, count_diff: i64) -> Result<(), ErrorCode> {
        let Err(exceeded) = self.tree.quota_check(path, bytes_diff, count_diff) else {
            return Ok(());
        };
        tracing::warn!("{}", exceeded.message);
        if exceeded.hard && self.limits.enforce_quota {
            return Err(ErrorCode::QuotaExceeded);
        }
        Ok(())
    }

    fn node(&self, path: &str) -> Option<NodeView> {
        if let Some((_, pending)) = self.pending.nodes.get(path) {
            return pending.clone();
        }
        let znode = self.tree.get(path)?;
        let stat = znode.stat();
        Some(NodeView {
            version: stat.version,
            // The stored create count, not the client-visible cversion: sequence suffixes and
            // the create Txn's parent_cversion come from it, as in ZooKeeper.
            cversion: znode.child_creates(),
            aversion: stat.aversion,
            ephemeral_owner: znode.ephemeral_owner(),
            child_count: stat.num_children,
            acl: znode.shared_acl(),
        })
    }

    fn record(&mut self, path: String, view: Option<NodeView>) {
        if let Some(undo) = &mut self.undo {
            let previous = self.pending.nodes.get(&path).cloned();
            undo.nodes.push((path.clone(), previous));
        }
        self.pending.recorded.push_back((self.zxid, path.clone()));
        self.pending.nodes.insert(path, (self.zxid, view));
    }

    fn count_ephemeral(&mut self, session_id: i64, delta: i64) {
        self.pending
            .ephemerals_added
            .entry(session_id)
            .or_default()
            .push((self.zxid, delta));
    }
}

/// True when `owner` names a session (not 0, not a container, not a TTL).
fn is_session_ephemeral(owner: i64) -> bool {
    owner != 0 && owner != CONTAINER_EPHEMERAL_OWNER && crate::tree::owner_ttl_ms(owner).is_none()
}

/// The parent of a znode that may be deleted; the reserved znodes may not.
fn deletable_parent(path: &str) -> Result<&str, ErrorCode> {
    let Some(last_slash) = path.rfind('/') else {
        return Err(ErrorCode::BadArguments);
    };
    if path.contains('\0') || path::is_reserved(path) {
        return Err(ErrorCode::BadArguments);
    }
    Ok(if last_slash == 0 {
        "/"
    } else {
        &path[..last_slash]
    })
}

/// ZooKeeper's checkAndIncVersion: -1 matches any version; the next version skips -1, which
/// would otherwise read as "any version" (ZOOKEEPER-4743).
fn next_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    let next = current.wrapping_add(1);
    Ok(if next == -1 { 0 } else { next })
}

#[cfg(test)]
mod tests;
