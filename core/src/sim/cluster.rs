//! The simulated ensemble: members on the in-memory network, each with its own disk in
//! memory and its own clock, all driven on the simulation's one thread. The nemesis acts
//! through it: kill (a clean crash or a torn write), restart, partition, pause, clock jumps,
//! fsync failures.

use std::sync::Arc;

use crate::ensemble::member_config;
use crate::replication::memory::{Faults, MemoryNetwork};
use crate::replication::raft_id;
use crate::server::{DriverThread, Engine, ManualClock, ServerConfig};
use crate::storage::{Crash, FakeDisk, LogOptions};

/// The raft tick of simulated members.
pub const RAFT_TICK_MS: u64 = 50;
/// The session tick of simulated members.
pub const SESSION_TICK_MS: u64 = 500;

/// One simulated member.
pub struct SimMember {
    /// Its clock: moves with the simulation, its wall time may jump.
    pub clock: ManualClock,
    /// Its disk: what survives a crash is what it made durable.
    pub disk: FakeDisk,
    /// The engine while it runs.
    pub engine: Option<Arc<Engine>>,
    /// Its configuration (the disk is replaced at each restart).
    config: ServerConfig,
    /// Times it started, to seed each run apart.
    starts: u64,
    /// Set while paused.
    pub paused: bool,
}

/// The simulated ensemble.
pub struct Cluster {
    /// The simulation's time.
    pub time: ManualClock,
    /// The network between members.
    pub network: Arc<MemoryNetwork>,
    /// The members, by member id.
    pub members: Vec<SimMember>,
    seed: u64,
    /// Why members could not restart (each one a finding).
    pub start_failures: Vec<String>,
}

impl Cluster {
    /// `size` members on a network whose faults come from `seed`, every member started.
    pub fn new(size: usize, seed: u64) -> Cluster {
        let time = ManualClock::default();
        let network = MemoryNetwork::new(seed, Faults::default(), Arc::new(time.clone()));
        let voters: Vec<u8> = (0..size as u8).collect();
        let members = voters
            .iter()
            .map(|&member_id| {
                let clock = ManualClock::default();
                let disk = FakeDisk::new();
                let template = ServerConfig {
                    clock: Arc::new(clock.clone()),
                    driver_thread: DriverThread::Caller,
                    raft_tick_ms: RAFT_TICK_MS as u32,
                    election_ticks: 10,
                    heartbeat_ticks: 2,
                    tick_ms: SESSION_TICK_MS as u32,
                    session_timeout_ms_min: Some(2_000),
                    session_timeout_ms_max: Some(6_000),
                    container_check_interval_ms: 1_000,
                    // Small, so snapshots, log purges and snapshot transfers happen often.
                    snap_count: 60,
                    log_entries_max: 40,
                    lagging_follower_log_bytes_max: 8 << 10,
                    snapshots_retained: 2,
                    log_options: LogOptions {
                        segment_bytes_max: 16 << 10,
                        preallocate_bytes: 4 << 10,
                    },
                    // The operator reconfigures the ensemble as the super user.
                    reconfig_enabled: true,
                    super_digest: Some(crate::tree::acl::digest(
                        std::str::from_utf8(crate::sim::operator::SUPER_AUTH)
                            .expect("the operator's password is text"),
                    )),
                    membership_text: Some((
                        crate::sim::operator::full_membership(size).config_text(),
                        0,
                    )),
                    ..ServerConfig::default()
                };
                SimMember {
                    config: member_config(&template, member_id, &voters, &network, &disk),
                    clock,
                    disk,
                    engine: None,
                    starts: 0,
                    paused: false,
                }
            })
            .collect();
        let mut cluster = Cluster {
            time,
            network,
            members,
            seed,
            start_failures: Vec::new(),
        };
        for member in 0..size {
            cluster
                .start(member)
                .expect("a member on an empty disk starts");
        }
        cluster
    }

    /// Moves every clock forward.
    pub fn advance(&self, ms: u64) {
        self.time.advance(ms);
        for member in &self.members {
            member.clock.advance(ms);
        }
    }

    /// The member's engine if it runs and is not paused.
    pub fn live(&self, member: usize) -> Option<&Arc<Engine>> {
        let member = &self.members[member];
        member.engine.as_ref().filter(|_| !member.paused)
    }

    /// Starts a member that is down on what its disk kept. A member that cannot start (its
    /// disk refused) stays down; that is a finding, reported by the caller's checks.
    pub fn start(&mut self, member: usize) -> Result<(), String> {
        let seed = self.seed;
        let slot = &mut self.members[member];
        if slot.engine.is_some() {
            return Ok(());
        }
        slot.starts += 1;
        let config = ServerConfig {
            raft_seed: seed ^ (slot.starts << 32) ^ member as u64,
            disk: Arc::new(slot.disk.clone()),
            ..slot.config.clone()
        };
        let engine = match Engine::open(config) {
            Ok(engine) => engine,
            Err(error) => {
                let failure = format!("member {member} cannot restart: {error}");
                self.start_failures.push(failure.clone());
                return Err(failure);
            }
        };
        let engine = Arc::new(engine);
        self.network.register(raft_id(member as u8), &engine);
        slot.engine = Some(engine);
        slot.paused = false;
        Ok(())
    }

    /// Crashes a member: its process is gone, its disk keeps what was durable (and with
    /// `TearLastWrite`, half of the last write). Its sessions' clients hear nothing more.
    pub fn kill(&mut self, member: usize, crash: Crash) {
        let slot = &mut self.members[member];
        if slot.engine.take().is_none() {
            return;
        }
        self.network.unregister(raft_id(member as u8));
        self.network.resume(raft_id(member as u8));
        slot.paused = false;
        slot.disk = slot.disk.crash(crash);
    }

    /// Pauses a member (its process stopped): messages for it wait, it gets no time.
    pub fn pause(&mut self, member: usize) {
        if self.members[member].engine.is_some() {
            self.members[member].paused = true;
            self.network.pause(raft_id(member as u8));
        }
    }

    /// Continues a paused member.
    pub fn resume(&mut self, member: usize) {
        self.members[member].paused = false;
        self.network.resume(raft_id(member as u8));
    }

    /// Steps a member's wall clock (an NTP step).
    pub fn jump_clock(&self, member: usize, delta_ms: i64) {
        self.members[member].clock.jump_wall(delta_ms);
    }

    /// Makes a running member's next fsync fail, and every one after it until it restarts
    /// (a member that is down is left alone: its disk is replaced when it crashed).
    pub fn fail_next_sync(&self, member: usize) {
        if self.members[member].engine.is_some() {
            self.members[member].disk.fail_sync_after(1);
        }
    }

    /// Cuts the members into groups (member ids) that cannot reach each other.
    pub fn partition(&self, groups: &[Vec<usize>]) {
        let groups: Vec<Vec<u64>> = groups
            .iter()
            .map(|group| group.iter().map(|&member| raft_id(member as u8)).collect())
            .collect();
        let groups: Vec<&[u64]> = groups.iter().map(Vec::as_slice).collect();
        self.network.partition(&groups);
    }

    /// Cuts `left` from `right`; members in neither reach both (a bridge).
    pub fn bridge(&self, left: &[usize], right: &[usize]) {
        let ids = |group: &[usize]| -> Vec<u64> {
            group.iter().map(|&member| raft_id(member as u8)).collect()
        };
        self.network.heal();
        self.network.cut_between(&ids(left), &ids(right));
    }

    /// Every member reaches every other again.
    pub fn heal(&self) {
        self.network.heal();
    }

    /// The member that leads and serves, if any.
    pub fn leader(&self) -> Option<usize> {
        (0..self.members.len()).find(|&member| {
            self.live(member)
                .is_some_and(|engine| engine.is_leader() && engine.is_serving())
        })
    }

    /// A raft tick for every running member.
    pub fn raft_tick(&self) {
        for member in 0..self.members.len() {
            if let Some(engine) = self.live(member) {
                engine.raft_tick();
            }
        }
    }

    /// A session tick for every running member.
    pub fn session_tick(&self) {
        for member in 0..self.members.len() {
            if let Some(engine) = self.live(member) {
                engine.tick_then(Box::new(|| {}));
            }
        }
    }
}
