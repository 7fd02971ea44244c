//! Reconfiguration: the leader judges a client's reconfig as ZooKeeper's leader does (enabled,
//! not in progress, the expected version, a well-formed membership of at least two voters, a
//! synced quorum in it, WRITE on "/zookeeper/config") and proposes the new membership, through
//! raft's joint consensus when voters or observers change. Every member applies it in log
//! order: "/zookeeper/config" is rewritten (firing its watches), the transport reaches the new
//! members, and a member that left stops serving.
//!
//! The membership a member runs with is the one in its tree: after a reconfig it is durable in
//! the log and snapshots, and a restart prefers it to zoo.cfg's older one (ZooKeeper rewrites
//! its dynamic configuration file for the same reason).

use std::collections::{BTreeMap, BTreeSet};

use raft::eraftpb::{
    ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState,
};
use raft::StateRole;

use crate::op::ReconfigRequest;
use crate::prepare::Refusal;
use crate::proto::{ErrorCode, Id, Perms};
use crate::replication::{member_of, raft_id};
use crate::server::config::ServerConfig;
use crate::server::driver::Driver;
use crate::server::engine::Engine;
use crate::server::membership::{MemberRole, Membership};
use crate::tree::path::CONFIG_ZNODE;
use crate::tree::{acl, DataTree};
use crate::txn::{Origin, Proposal, Txn, TxnOp};

/// Fewest voters a new membership may have: ZooKeeper's rule with its default
/// `standaloneEnabled=true` (one voter would make the member a standalone server there).
const VOTERS_MIN: usize = 2;

/// The membership a member starts with: its tree's, when a reconfig made it newer than
/// zoo.cfg's (the tree keeps it durable); else the configured one, written into the tree.
pub(super) fn recovered_membership(config: &ServerConfig, tree: &mut DataTree) -> Membership {
    let configured_version = config
        .membership_text
        .as_ref()
        .map_or(0, |(_, version)| *version);
    if let Some(membership) = tree_membership(tree) {
        if membership.version > configured_version {
            tracing::info!(
                version = format_args!("{:x}", membership.version),
                configured_version = format_args!("{configured_version:x}"),
                "the membership a reconfig made is newer than the configured one: using it"
            );
            return membership;
        }
    }
    config.write_membership(tree);
    tree_membership(tree).unwrap_or_default()
}

/// The membership "/zookeeper/config" holds (None when it holds none).
fn tree_membership(tree: &DataTree) -> Option<Membership> {
    let node = tree.get(CONFIG_ZNODE)?;
    let text = std::str::from_utf8(node.data()?).ok()?;
    if text.is_empty() {
        return None;
    }
    match Membership::parse_dynamic(text) {
        Ok(membership) => Some(membership),
        Err(error) => {
            tracing::error!(%error, "/zookeeper/config does not parse; keeping the membership");
            None
        }
    }
}

/// The member lines of `membership` without its version line (the apply adds the zxid).
fn member_lines(membership: &Membership) -> String {
    let text = membership.config_text();
    let end = text.rfind("version=").unwrap_or(text.len());
    text[..end].to_string()
}

/// raft's changes that turn `conf_state` into `target`'s voters and observers.
fn conf_changes(conf_state: &ConfState, target: &Membership) -> Vec<ConfChangeSingle> {
    let voters: BTreeSet<u64> = conf_state.voters.iter().copied().collect();
    let learners: BTreeSet<u64> = conf_state.learners.iter().copied().collect();
    let mut changes = Vec::new();
    let mut change = |change_type, node_id| {
        let mut single = ConfChangeSingle::default();
        single.set_change_type(change_type);
        single.node_id = node_id;
        changes.push(single);
    };
    for spec in target.members.values() {
        let id = raft_id(spec.id);
        match spec.role {
            MemberRole::Participant if !voters.contains(&id) => change(ConfChangeType::AddNode, id),
            MemberRole::Observer if !learners.contains(&id) => {
                change(ConfChangeType::AddLearnerNode, id)
            }
            _ => {}
        }
    }
    for id in voters.union(&learners) {
        if !target.members.contains_key(&member_of(*id)) {
            change(ConfChangeType::RemoveNode, *id);
        }
    }
    changes
}

/// The membership a reconfig asks for, from `current` (ZooKeeper's two forms).
fn target_membership(
    current: &Membership,
    request: &ReconfigRequest,
) -> Result<Membership, String> {
    if let Some(new_members) = &request.new_members {
        // Commas or newlines between members, as ZooKeeper takes them.
        let mut target = Membership::default();
        for line in new_members.split([',', '\n']).map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| format!("{line:?} is not server.N=..."))?;
            if key.trim() == "version" {
                continue;
            }
            target.add_line(key.trim(), value.trim())?;
        }
        return Ok(target);
    }
    let mut target = current.clone();
    for leaving in request
        .leaving_servers
        .iter()
        .flat_map(|text| text.split(','))
    {
        let leaving = leaving.trim();
        if leaving.is_empty() {
            continue;
        }
        let id: u8 = leaving
            .parse()
            .map_err(|_| format!("leaving server {leaving:?} is not a member id"))?;
        target.members.remove(&id);
    }
    for joining in request
        .joining_servers
        .iter()
        .flat_map(|text| text.split(','))
    {
        let joining = joining.trim();
        if joining.is_empty() {
            continue;
        }
        let (key, value) = joining
            .split_once('=')
            .ok_or_else(|| "Wrong format of server string".to_string())?;
        let mut one = Membership::default();
        one.add_line(key.trim(), value.trim())?;
        let spec = one.members.into_values().next().expect("one line added");
        if spec.client.is_none() {
            return Err(
                "Wrong format of server string - each server should have 3 ports specified".into(),
            );
        }
        // A joiner replaces its own line (a new address or role); it must not take another
        // member's address.
        target.members.remove(&spec.id);
        target.add_line(key.trim(), value.trim())?;
    }
    Ok(target)
}

impl Driver {
    /// A client's reconfig on the leader: judged, then proposed; whoever waits for `origin`
    /// hears the new "/zookeeper/config" once it applied, or the refusal.
    pub(super) fn lead_reconfig(
        &mut self,
        engine: &Engine,
        origin: Origin,
        identities: &[Id],
        request: &ReconfigRequest,
    ) -> Result<(), Refusal> {
        let target = self
            .judge_reconfig(engine, identities, request)
            .map_err(Refusal::Code)?;
        let replica = self
            .replica
            .as_ref()
            .ok_or(Refusal::Code(ErrorCode::ConnectionLoss))?;
        let changes = conf_changes(&replica.conf_state(), &target);
        let op = TxnOp::Reconfig {
            members: member_lines(&target),
        };
        tracing::info!(
            voters = ?target.voters(),
            observers = ?target.observers(),
            raft_changes = changes.len(),
            "reconfig proposed"
        );
        if changes.is_empty() {
            // Addresses only: no one's vote changes, so an ordinary entry carries it.
            self.propose(engine, Some(origin), op);
        } else {
            self.propose_membership(engine, origin, op, changes);
        }
        self.reconfig_index = self
            .replica
            .as_ref()
            .map_or(0, |replica| replica.last_index());
        Ok(())
    }

    /// ZooKeeper's checks, in its order; the membership to propose.
    fn judge_reconfig(
        &self,
        engine: &Engine,
        identities: &[Id],
        request: &ReconfigRequest,
    ) -> Result<Membership, ErrorCode> {
        if !engine.config.reconfig_enabled {
            return Err(ErrorCode::ReconfigDisabled);
        }
        let current = engine.membership();
        let replica = self.replica.as_ref().ok_or(ErrorCode::ConnectionLoss)?;
        if current.members.is_empty() || !engine.config.is_ensemble() {
            // A standalone server (or an in-process ensemble, whose members have no
            // addresses): ZooKeeper's standalone answer.
            return Err(ErrorCode::Unimplemented);
        }
        if self.reconfig_in_progress() {
            return Err(ErrorCode::ReconfigInProgress);
        }
        if request.config_version != -1 && request.config_version as u64 != current.version {
            return Err(ErrorCode::BadVersion);
        }
        let target = target_membership(&current, request).map_err(|why| {
            tracing::warn!(%why, "reconfig refused");
            ErrorCode::BadArguments
        })?;
        if target.voters().len() < VOTERS_MIN {
            tracing::warn!("reconfig refused: the new membership must include at least 2 voters");
            return Err(ErrorCode::BadArguments);
        }
        let status = replica.status();
        let synced: BTreeSet<u64> = status
            .learners
            .iter()
            .filter(|learner| learner.synced && self.heard_lately(learner.id))
            .map(|learner| learner.id)
            .chain([self.me])
            .collect();
        let voters = target.voters();
        let synced_voters = voters
            .iter()
            .filter(|id| synced.contains(&raft_id(**id)))
            .count();
        if synced_voters <= voters.len() / 2 {
            tracing::warn!(
                ?voters,
                synced_voters,
                "reconfig refused: there must be a connected and synced quorum in the new \
                 membership"
            );
            return Err(ErrorCode::NewConfigNoQuorum);
        }
        let tree = engine.tree.read();
        let writable = tree
            .get(CONFIG_ZNODE)
            .is_some_and(|node| acl::check(node.acl(), Perms::WRITE, identities));
        if !writable {
            return Err(ErrorCode::NoAuth);
        }
        Ok(target)
    }

    /// True while a membership change is proposed and not applied, or raft is between the old
    /// and the new membership (joint consensus).
    fn reconfig_in_progress(&self) -> bool {
        self.reconfig_index > self.applied
            || self.replica.as_ref().is_some_and(|replica| {
                replica.has_pending_conf() || !replica.conf_state().voters_outgoing.is_empty()
            })
    }

    /// Proposes raft's membership change carrying the reconfig Txn: both apply together.
    fn propose_membership(
        &mut self,
        engine: &Engine,
        origin: Origin,
        op: TxnOp,
        changes: Vec<ConfChangeSingle>,
    ) {
        let proposal = Proposal {
            origin: Some(origin),
            txn: Txn {
                time_ms: engine.clock.wall_ms(),
                op,
            },
        };
        let mut change = ConfChangeV2::default();
        // Joint consensus, left by the leader as soon as it applied.
        change.set_transition(ConfChangeTransition::Implicit);
        change.set_changes(changes.into());
        change.context = proposal.encode().into();
        let Some(replica) = &mut self.replica else {
            return;
        };
        if replica.propose_conf_change(change).is_err() {
            self.fail_origin(engine, Some(origin), ErrorCode::ConnectionLoss);
        }
    }

    /// A leader that finds raft between two memberships with nothing pending (the leader that
    /// entered it lost its term before leaving) proposes the way out, as raft's own leader
    /// does after entering.
    pub(super) fn leave_joint_if_stuck(&mut self) {
        let Some(replica) = &mut self.replica else {
            return;
        };
        if self.role.state != StateRole::Leader
            || !self.lead.ready
            || replica.has_pending_conf()
            || replica.conf_state().voters_outgoing.is_empty()
        {
            return;
        }
        tracing::info!("leaving a joint membership a former leader entered");
        let _ = replica.propose_conf_change(ConfChangeV2::default());
    }

    /// After a membership change applied (or a snapshot brought one): the member runs with the
    /// tree's membership, its transport reaches every member raft still counts, and a member
    /// no longer among them stops serving (a leader first hands its role on).
    pub(super) fn membership_changed(&mut self, engine: &Engine) {
        let Some(replica) = &mut self.replica else {
            return;
        };
        let conf_state = replica.conf_state();
        let counted: BTreeSet<u64> = conf_state
            .voters
            .iter()
            .chain(&conf_state.voters_outgoing)
            .chain(&conf_state.learners)
            .chain(&conf_state.learners_next)
            .copied()
            .collect();
        // Without `server.N` lines (an ensemble assembled in code) the transport keeps the
        // peers it was given.
        let membership = tree_membership(&engine.tree.read());
        let addresses_known = membership.is_some();
        if let Some(membership) = membership {
            for spec in membership.members.values() {
                self.peer_addresses
                    .insert(raft_id(spec.id), spec.peer_address());
            }
            tracing::info!(
                version = format_args!("{:x}", membership.version),
                voters = ?membership.voters(),
                observers = ?membership.observers(),
                "membership changed"
            );
            *engine.membership.write() = membership;
        }
        self.peer_addresses.retain(|id, _| counted.contains(id));
        if let Some(transport) = self.transport.as_ref().filter(|_| addresses_known) {
            let peers: BTreeMap<u64, String> = self
                .peer_addresses
                .iter()
                .filter(|(id, _)| **id != self.me)
                .map(|(id, address)| (*id, address.clone()))
                .collect();
            transport.set_members(&peers);
        }
        let removed = !counted.contains(&self.me);
        if removed && !self.removed {
            tracing::warn!("this member left the ensemble's membership: it stops serving");
            engine.set_serving(false);
        } else if !removed && self.removed && self.role.leader != 0 {
            tracing::info!("this member is in the ensemble's membership again: it serves");
            engine.set_serving(true);
        }
        self.removed = removed;
        if replica.is_leader() && !conf_state.voters.contains(&self.me) {
            // Removed (or made an observer) while leading: the most caught-up voter takes
            // over at once rather than after an election timeout.
            let status = replica.status();
            if let Some(next) = status
                .learners
                .iter()
                .filter(|learner| learner.voter && learner.synced)
                .min_by_key(|learner| learner.behind_entries)
            {
                replica.transfer_leader(next.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> Membership {
        Membership::parse_dynamic(
            "server.1=10.0.0.1:2888:3888:participant;2181\n\
             server.2=10.0.0.2:2888:3888:participant;2181\n\
             server.3=10.0.0.3:2888:3888:participant;2181\n\
             server.4=10.0.0.4:2888:3888:observer;2181\nversion=7",
        )
        .unwrap()
    }

    fn request(joining: Option<&str>, leaving: Option<&str>, new: Option<&str>) -> ReconfigRequest {
        ReconfigRequest {
            joining_servers: joining.map(str::to_string),
            leaving_servers: leaving.map(str::to_string),
            new_members: new.map(str::to_string),
            config_version: -1,
        }
    }

    fn conf_state(voters: &[u64], learners: &[u64]) -> ConfState {
        ConfState {
            voters: voters.to_vec(),
            learners: learners.to_vec(),
            ..ConfState::default()
        }
    }

    fn changes(changes: &[ConfChangeSingle]) -> Vec<(ConfChangeType, u8)> {
        changes
            .iter()
            .map(|change| (change.get_change_type(), member_of(change.node_id)))
            .collect()
    }

    #[test]
    fn incremental_reconfig_removes_adds_and_replaces_lines() {
        let target = target_membership(
            &current(),
            &request(
                Some("server.5=10.0.0.5:2888:3888;2181, server.3=10.0.0.3:2888:3888:observer;2181"),
                Some("1,9"),
                None,
            ),
        )
        .unwrap();
        assert_eq!(target.voters(), vec![2, 5]);
        assert_eq!(target.observers(), vec![3, 4]);
        assert_eq!(
            member_lines(&target),
            "server.2=10.0.0.2:2888:3888:participant;2181\n\
             server.3=10.0.0.3:2888:3888:observer;2181\n\
             server.4=10.0.0.4:2888:3888:observer;2181\n\
             server.5=10.0.0.5:2888:3888:participant;2181\n"
        );
        // raft ids are member ids + 1.
        assert_eq!(
            changes(&conf_changes(&conf_state(&[2, 3, 4], &[5]), &target)),
            vec![
                (ConfChangeType::AddLearnerNode, 3),
                (ConfChangeType::AddNode, 5),
                (ConfChangeType::RemoveNode, 1),
            ]
        );
    }

    #[test]
    fn a_whole_new_membership_takes_commas_or_newlines() {
        let target = target_membership(
            &current(),
            &request(
                None,
                None,
                Some("server.1=a:1:2;3,server.2=b:1:2:participant;3\nserver.3=c:1:2:observer;3\nversion=9"),
            ),
        )
        .unwrap();
        assert_eq!((target.voters(), target.observers()), (vec![1, 2], vec![3]));
        assert!(conf_changes(&conf_state(&[2, 3], &[4]), &target).is_empty());
    }

    #[test]
    fn malformed_requests_say_why() {
        for (joining, leaving, new, expected) in [
            (Some("server.5=10.0.0.5:2888:3888"), None, None, "3 ports"),
            (Some("server.5"), None, None, "Wrong format"),
            (
                Some("server.5=10.0.0.1:2888:3888;2181"),
                None,
                None,
                "peer address of server.1",
            ),
            (None, Some("x"), None, "not a member id"),
            (
                None,
                None,
                Some("server.1=a:1:2;3,nonsense"),
                "not server.N",
            ),
            (None, None, Some("server.300=a:1:2;3"), "from 0 to 254"),
        ] {
            let error = target_membership(&current(), &request(joining, leaving, new)).unwrap_err();
            assert!(
                error.contains(expected),
                "{joining:?} {leaving:?} {new:?}: {error}"
            );
        }
    }

    #[test]
    fn a_restart_prefers_the_newer_of_the_tree_and_zoo_cfg() {
        let configured = current();
        let config = ServerConfig {
            membership_text: Some((configured.config_text(), configured.version)),
            ..ServerConfig::default()
        };
        let mut tree = DataTree::new();
        assert_eq!(recovered_membership(&config, &mut tree), configured);
        // A reconfig at zxid 0x20 left server.2 and server.3.
        let reconfig = Txn {
            time_ms: 5,
            op: TxnOp::Reconfig {
                members: "server.2=10.0.0.2:2888:3888:participant;2181\n\
                          server.3=10.0.0.3:2888:3888:participant;2181\n"
                    .into(),
            },
        };
        tree.apply(0x20, &reconfig);
        let reconfigured = recovered_membership(&config, &mut tree);
        assert_eq!(
            (reconfigured.voters(), reconfigured.version),
            (vec![2, 3], 0x20)
        );
        let stat = tree.stat(CONFIG_ZNODE).unwrap();
        assert_eq!((stat.mzxid, stat.version, stat.mtime), (0x20, -1, 5));
        assert!(
            std::str::from_utf8(tree.get(CONFIG_ZNODE).unwrap().data().unwrap())
                .unwrap()
                .ends_with("\nversion=20")
        );
    }
}
