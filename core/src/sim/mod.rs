//! Deterministic simulation: a whole ensemble (members, network, disks, clocks, clients) on
//! one thread, every choice drawn from one seed, so a failing seed replays exactly. The
//! nemesis kills, partitions, pauses and slows members while clients run a register, a queue
//! and ephemerals; the history is then checked (`checks.rs`).
//!
//! ```
//! use zookeeper_core::sim::{run, SimConfig};
//!
//! let report = run(&SimConfig { seed: 7, duration_ms: 3_000, ..SimConfig::default() });
//! assert!(report.violations.is_empty(), "{report}");
//! ```

pub mod checks;
pub mod client;
pub mod cluster;
pub mod linearizability;
pub mod models;
pub mod nemesis;
pub mod operator;
pub mod record;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use crate::op::{CreateRequest, Op};
use crate::proto::{Acl, CreateMode};
use crate::random::SplitMix64;
use crate::server::Clock;
use crate::sim::checks::History;
use crate::sim::client::{Context, SimClient, EPHEMERALS, QUEUE, REGISTER};
use crate::sim::cluster::{Cluster, RAFT_TICK_MS, SESSION_TICK_MS};
use crate::sim::nemesis::Nemesis;
use crate::sim::operator::{Operator, OPERATOR};
use crate::sim::record::{Record, Recorder};

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Everything is drawn from it.
    pub seed: u64,
    /// Voting members.
    pub members: usize,
    /// Clients running the workload.
    pub clients: usize,
    /// Simulated time with faults, before the ensemble is healed and checked.
    pub duration_ms: u64,
    /// Whether the nemesis acts.
    pub faults: bool,
    /// Whether the operator reconfigures the ensemble meanwhile (with faults on).
    pub reconfigure: bool,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            seed: 1,
            members: 3,
            clients: 4,
            duration_ms: 10_000,
            faults: true,
            reconfigure: true,
        }
    }
}

/// What a run found.
pub struct SimReport {
    /// The seed.
    pub seed: u64,
    /// Members.
    pub members: usize,
    /// Every violated property, described.
    pub violations: Vec<String>,
    /// Operations checked for linearizability (register, queue).
    pub operations: (usize, usize),
    /// Faults the nemesis applied.
    pub faults: usize,
    /// Messages the network carried.
    pub messages: u64,
    /// The final zxid.
    pub zxid: i64,
    /// The faults, for a failing seed's report.
    pub fault_log: Vec<String>,
}

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} ({} members): {} register and {} queue operations, {} faults, {} messages, final zxid {}",
            self.seed,
            self.members,
            self.operations.0,
            self.operations.1,
            self.faults,
            self.messages,
            self.zxid
        )?;
        for violation in &self.violations {
            writeln!(f, "  VIOLATION: {violation}")?;
        }
        if !self.violations.is_empty() {
            for fault in &self.fault_log {
                writeln!(f, "  fault: {fault}")?;
            }
            writeln!(f, "  replay alone with SEED={}", self.seed)?;
        }
        Ok(())
    }
}

struct Sim {
    cluster: Cluster,
    clients: Vec<SimClient>,
    recorder: Arc<Recorder>,
    history: History,
    random: SplitMix64,
    next_raft_tick_ms: u64,
    next_session_tick_ms: u64,
    /// Records for no client (the setup's own session).
    setup_records: Vec<Record>,
    /// Reconfigures the ensemble (when faults are on).
    operator: Option<Operator>,
}

/// Runs one simulation and checks its history.
pub fn run(config: &SimConfig) -> SimReport {
    let mut random = SplitMix64::new(config.seed);
    let cluster = Cluster::new(config.members, random.next_u64());
    let mut sim = Sim {
        cluster,
        clients: Vec::new(),
        recorder: Arc::default(),
        history: History::default(),
        random,
        next_raft_tick_ms: RAFT_TICK_MS,
        next_session_tick_ms: SESSION_TICK_MS,
        setup_records: Vec::new(),
        operator: None,
    };
    let mut zxid = 0;
    if let Err(problem) = sim.setup() {
        sim.history.violation(problem);
    } else {
        let start_ms = sim.now_ms();
        sim.clients = (0..config.clients)
            .map(|id| SimClient::new(id, start_ms + id as u64))
            .collect();
        let mut nemesis = Nemesis::new(start_ms + 500);
        if config.faults && config.reconfigure {
            sim.operator = Some(Operator::new(config.members, start_ms + 700));
        }
        let end_ms = start_ms + config.duration_ms;
        while sim.now_ms() < end_ms {
            sim.step(config.faults.then_some(&mut nemesis));
        }
        let gone = nemesis.undo_all(&mut sim.cluster);
        for client in &mut sim.clients {
            if client.member().is_some_and(|member| gone.contains(&member)) {
                client.lose_link();
            }
        }
        sim.restore_membership();
        zxid = sim.settle_and_check();
        let mut fault_log: Vec<String> = nemesis
            .applied
            .iter()
            .map(|(at, fault)| format!("{at} ms: {fault:?}"))
            .collect();
        if let Some(operator) = &sim.operator {
            fault_log.extend(
                operator
                    .log
                    .iter()
                    .map(|line| format!("reconfig at {line}")),
            );
        }
        return sim.report(config, nemesis.applied.len(), zxid, fault_log);
    }
    sim.report(config, 0, zxid, Vec::new())
}

impl Sim {
    fn now_ms(&self) -> u64 {
        self.cluster.time.now_ms()
    }

    fn report(
        self,
        config: &SimConfig,
        faults: usize,
        zxid: i64,
        fault_log: Vec<String>,
    ) -> SimReport {
        let mut violations = self.cluster.start_failures.clone();
        violations.extend_from_slice(self.history.violations());
        SimReport {
            seed: config.seed,
            members: config.members,
            violations,
            operations: self.history.operation_counts(),
            faults,
            messages: self.cluster.network.stats().sent,
            zxid,
            fault_log,
        }
    }

    /// Runs until a leader serves, then creates the znodes the workload uses.
    fn setup(&mut self) -> Result<(), String> {
        let leader = self.run_until(30_000, |sim| sim.cluster.leader())?;
        let engine = self.cluster.live(leader).expect("leading").clone();
        let epoch = u64::MAX;
        engine.open_session_then(
            10_000,
            self.recorder.sink(usize::MAX, epoch),
            None,
            self.recorder.opened(usize::MAX, epoch),
        );
        let session = self.run_until(10_000, |sim| {
            sim.process();
            sim.setup_records.drain(..).find_map(|record| match record {
                Record::Opened {
                    result: Ok(session),
                    ..
                } => Some(session),
                _ => None,
            })
        })?;
        for (path, data) in [
            (REGISTER, b"0".to_vec()),
            (QUEUE, Vec::new()),
            (EPHEMERALS, Vec::new()),
        ] {
            let op = Op::Create(CreateRequest {
                path: path.into(),
                data: Some(data),
                acl: Acl::open_unsafe(),
                mode: CreateMode::Persistent,
                ttl_ms: -1,
            });
            engine.submit(&session, op, self.recorder.answer(usize::MAX, epoch, 0));
        }
        self.run_until(10_000, |_| {
            engine
                .with_tree(|tree| tree.stat(EPHEMERALS).is_some())
                .then_some(())
        })?;
        engine.submit(
            &session,
            Op::CloseSession,
            self.recorder.answer(usize::MAX, epoch, 1),
        );
        self.step(None);
        self.process();
        self.setup_records.clear();
        Ok(())
    }

    /// Steps time until `done` answers (at most `limit_ms`).
    pub(crate) fn run_until<T>(
        &mut self,
        limit_ms: u64,
        mut done: impl FnMut(&mut Sim) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = self.now_ms() + limit_ms;
        loop {
            if let Some(value) = done(self) {
                return Ok(value);
            }
            if self.now_ms() >= deadline {
                let members: Vec<String> = (0..self.cluster.members.len())
                    .map(|member| match self.cluster.live(member) {
                        None => "down".to_string(),
                        Some(engine) => format!(
                            "zxid {} serving {} failed {}: {}",
                            engine.last_zxid(),
                            engine.is_serving(),
                            engine.has_failed(),
                            engine.describe_replication()
                        ),
                    })
                    .collect();
                return Err(format!(
                    "nothing happened for {limit_ms} ms of simulated time (members: {members:?})"
                ));
            }
            self.step(None);
        }
    }

    /// One step: delivers what is due, ticks, lets clients and the nemesis act, then moves
    /// time to when something is due next.
    fn step(&mut self, nemesis: Option<&mut Nemesis>) {
        let now_ms = self.now_ms();
        while self.cluster.network.deliver_next() {
            self.process();
        }
        if now_ms >= self.next_raft_tick_ms {
            self.next_raft_tick_ms += RAFT_TICK_MS;
            self.cluster.raft_tick();
            self.process();
        }
        if now_ms >= self.next_session_tick_ms {
            self.next_session_tick_ms += SESSION_TICK_MS;
            self.cluster.session_tick();
            self.process();
        }
        if let Some(operator) = &mut self.operator {
            operator.act(&self.cluster, &self.recorder, &mut self.random, now_ms);
            self.process();
        }
        for index in 0..self.clients.len() {
            let mut context = Context {
                cluster: &self.cluster,
                recorder: &self.recorder,
                history: &mut self.history,
                random: &mut self.random,
                now_ms,
            };
            self.clients[index].act(&mut context);
            self.process();
        }
        let mut next_ms = self.next_raft_tick_ms.min(self.next_session_tick_ms);
        if let Some(nemesis) = nemesis {
            if now_ms >= nemesis.next_due_ms() {
                let gone = nemesis.act(&mut self.cluster, &mut self.random, now_ms);
                for client in &mut self.clients {
                    if client.member().is_some_and(|member| gone.contains(&member)) {
                        client.lose_link();
                    }
                }
                self.process();
            }
            next_ms = next_ms.min(nemesis.next_due_ms());
        }
        for client in &self.clients {
            if !client.finished {
                next_ms = next_ms.min(client.next_action_ms);
            }
        }
        if let Some(operator) = &self.operator {
            next_ms = next_ms.min(operator.next_ms.max(now_ms + 1));
        }
        if let Some(due_ms) = self.cluster.network.next_due_ms() {
            next_ms = next_ms.min(due_ms);
        }
        self.cluster.advance(next_ms.saturating_sub(now_ms).max(1));
    }

    /// Hands every record to its client, until none is left (handling one may make more).
    fn process(&mut self) {
        loop {
            let records = self.recorder.drain();
            if records.is_empty() {
                return;
            }
            for (at, record) in records {
                let client = match &record {
                    Record::Answered { client, .. }
                    | Record::Opened { client, .. }
                    | Record::Event { client, .. }
                    | Record::Link { client, .. } => *client,
                };
                if tracing_enabled() {
                    eprintln!(
                        "{at} t={} {}",
                        self.cluster.time.now_ms(),
                        describe(&record)
                    );
                }
                if client == OPERATOR {
                    if let Some(operator) = &mut self.operator {
                        let now_ms = self.cluster.time.now_ms();
                        operator.on_record(
                            &self.cluster,
                            &self.recorder,
                            record,
                            &mut self.random,
                            now_ms,
                        );
                    }
                    continue;
                }
                let Some(target) = self.clients.get_mut(client) else {
                    self.setup_records.push(record);
                    continue;
                };
                let mut context = Context {
                    cluster: &self.cluster,
                    recorder: &self.recorder,
                    history: &mut self.history,
                    random: &mut self.random,
                    now_ms: self.cluster.time.now_ms(),
                };
                target.on_record(&mut context, at, record);
            }
        }
    }

    /// With every fault undone: lets the ensemble settle, checks that the members agree and
    /// what they hold, lets every session expire, checks again, then checks the histories.
    /// Answers the final zxid.
    fn settle_and_check(&mut self) -> i64 {
        // Clients keep working a while on a healthy ensemble, then stop.
        let settle_until = self.now_ms() + 5_000;
        while self.now_ms() < settle_until {
            self.step(None);
        }
        for client in &mut self.clients {
            client.finish(true);
        }
        let quiet_until = self.now_ms() + 2_000;
        while self.now_ms() < quiet_until {
            self.step(None);
        }
        let Some(zxid) = self.converge() else {
            return 0;
        };
        let (alive, present) = self.final_state();
        self.history.check_final_state(&alive, &present);
        let connected: BTreeSet<i64> = self
            .clients
            .iter()
            .filter_map(SimClient::connected_session)
            .collect();
        let register_mzxid = self
            .cluster
            .leader()
            .and_then(|leader| self.cluster.live(leader))
            .and_then(|engine| engine.with_tree(|tree| tree.stat(REGISTER)))
            .map_or(0, |stat| stat.mzxid);
        self.history.check_watches_fired(&connected, register_mzxid);
        // Every client lets go: every session must expire, and its ephemerals with it.
        for client in &mut self.clients {
            client.finish(false);
        }
        let expiry_until = self.now_ms() + 10_000;
        while self.now_ms() < expiry_until {
            self.step(None);
        }
        let zxid = self.converge().unwrap_or(zxid);
        let (alive, present) = self.final_state();
        if !alive.is_empty() || !present.is_empty() {
            self.history.violation(format!(
                "sessions {alive:x?} and ephemerals {present:?} outlived every client"
            ));
        }
        self.history.check_linearizable();
        zxid
    }

    /// Waits until every member applied the same zxid and holds the same tree; answers it.
    fn converge(&mut self) -> Option<i64> {
        let result = self.run_until(30_000, |sim| {
            let leader = sim.cluster.leader()?;
            let target = sim.cluster.live(leader)?.last_zxid();
            let members = sim.cluster.members.len();
            (0..members)
                .all(|member| {
                    sim.cluster
                        .live(member)
                        .is_some_and(|engine| engine.last_zxid() == target)
                })
                .then_some(target)
        });
        let zxid = match result {
            Ok(zxid) => zxid,
            Err(problem) => {
                self.history
                    .violation(format!("the healed ensemble did not converge: {problem}"));
                return None;
            }
        };
        let listings: Vec<Vec<String>> = (0..self.cluster.members.len())
            .filter_map(|member| self.cluster.live(member))
            .map(|engine| engine.with_tree(listing))
            .collect();
        if listings.windows(2).any(|pair| pair[0] != pair[1]) {
            self.history.violation(format!(
                "members at zxid {zxid} hold different trees: {listings:?}"
            ));
        }
        Some(zxid)
    }

    /// The sessions the leader holds, and the ephemerals with their owners.
    fn final_state(&self) -> (BTreeSet<i64>, BTreeMap<String, i64>) {
        let Some(engine) = self
            .cluster
            .leader()
            .and_then(|leader| self.cluster.live(leader))
        else {
            return (BTreeSet::new(), BTreeMap::new());
        };
        engine.with_tree(|tree| {
            let alive = tree.sessions().map(|(id, _)| id).collect();
            let present = tree
                .children(EPHEMERALS)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|child| {
                    let path = format!("{EPHEMERALS}/{child}");
                    let owner = tree.stat(&path)?.ephemeral_owner;
                    Some((path, owner))
                })
                .collect();
            (alive, present)
        })
    }
}

/// Every znode with its data and Stat, and every session, in path order: what members must
/// agree on.
fn listing(tree: &crate::tree::DataTree) -> Vec<String> {
    let mut lines = Vec::new();
    let mut paths = vec!["/".to_string()];
    while let Some(path) = paths.pop() {
        let Some(node) = tree.get(&path) else {
            continue;
        };
        let mut stat = tree.stat(&path);
        // The configured membership is written by each member at start, outside the log,
        // with its own clock (as each ZooKeeper member does); a reconfig's is replicated.
        if let Some(stat) = stat
            .as_mut()
            .filter(|stat| path == crate::tree::path::CONFIG_ZNODE && stat.mzxid == 0)
        {
            stat.mtime = 0;
        }
        lines.push(format!("{path} {:?} {stat:?}", node.data()));
        for child in tree.children(&path).unwrap_or_default() {
            paths.push(if path == "/" {
                format!("/{child}")
            } else {
                format!("{path}/{child}")
            });
        }
    }
    lines.sort();
    let mut sessions: Vec<i64> = tree.sessions().map(|(id, _)| id).collect();
    sessions.sort_unstable();
    lines.push(format!("sessions {sessions:x?}"));
    lines
}

/// True when `SIM_TRACE` is set: every record and request is printed.
pub(crate) fn tracing_enabled() -> bool {
    std::env::var_os("SIM_TRACE").is_some()
}

fn describe(record: &Record) -> String {
    match record {
        Record::Answered {
            client,
            epoch,
            request,
            response,
        } => format!("client {client}/{epoch} request {request} answered {response:?}"),
        Record::Opened {
            client,
            epoch,
            result,
        } => format!(
            "client {client}/{epoch} opened {:?}",
            result
                .as_ref()
                .map(|session| format!("0x{:x}", session.id()))
        ),
        Record::Event {
            client,
            epoch,
            event,
        } => format!("client {client}/{epoch} event {event:?}"),
        Record::Link {
            client,
            epoch,
            change,
        } => format!("client {client}/{epoch} link {change:?}"),
    }
}
