//! The nemesis: faults drawn from the seed, each undone after a while. Kills (clean crashes
//! and torn writes) and restarts, partitions (halves, a bridge, one member alone), pauses,
//! message loss, delay and duplication, wall-clock jumps, fsync failures.

use crate::random::SplitMix64;
use crate::replication::memory::Faults;
use crate::sim::cluster::Cluster;
use crate::storage::Crash;

/// Something to undo at a time.
#[derive(Clone, Debug)]
enum Undo {
    Restart(usize),
    Heal,
    Resume(usize),
    CalmNetwork,
}

/// A fault that was applied, for the report.
#[derive(Clone, Debug)]
pub enum Fault {
    /// A member crashed.
    Kill(usize, Crash),
    /// The members were split into groups.
    Partition(Vec<Vec<usize>>),
    /// Two groups were cut from each other; the members in neither reach both.
    Bridge(Vec<usize>, Vec<usize>),
    /// A member was paused.
    Pause(usize),
    /// The network began losing, delaying and duplicating messages.
    Network(Faults),
    /// A member's wall clock stepped.
    ClockJump(usize, i64),
    /// A member's next fsync fails (it stops, and is restarted later).
    FailSync(usize),
}

/// The schedule of faults.
pub struct Nemesis {
    /// When the next fault comes.
    pub next_ms: u64,
    undo: Vec<(u64, Undo)>,
    /// Every fault applied, with its time.
    pub applied: Vec<(u64, Fault)>,
}

impl Nemesis {
    /// A nemesis whose first fault comes at `start_ms`.
    pub fn new(start_ms: u64) -> Nemesis {
        Nemesis {
            next_ms: start_ms,
            undo: Vec::new(),
            applied: Vec::new(),
        }
    }

    /// When something is due next.
    pub fn next_due_ms(&self) -> u64 {
        self.undo
            .iter()
            .map(|(at, _)| *at)
            .fold(self.next_ms, u64::min)
    }

    /// Undoes what is due and, when due, applies a new fault. Answers the members that went
    /// away (their clients must move).
    pub fn act(
        &mut self,
        cluster: &mut Cluster,
        random: &mut SplitMix64,
        now_ms: u64,
    ) -> Vec<usize> {
        let mut gone = Vec::new();
        let (due, later): (Vec<_>, Vec<_>) = self.undo.drain(..).partition(|(at, _)| *at <= now_ms);
        self.undo = later;
        for (_, undo) in due {
            if let Undo::Restart(member) = undo {
                gone.push(member); // a restarted member knows none of its old connections
            }
            undo_one(cluster, undo);
        }
        if now_ms < self.next_ms {
            return gone;
        }
        self.next_ms = now_ms + 200 + random.below(1_500);
        let size = cluster.members.len();
        let member = random.below(size as u64) as usize;
        let until = now_ms + 200 + random.below(3_000);
        let fault = match random.below(100) {
            0..=19 => {
                let crash = if random.below(3) == 0 {
                    Crash::TearLastWrite
                } else {
                    Crash::Clean
                };
                cluster.kill(member, crash);
                gone.push(member);
                self.undo.push((until, Undo::Restart(member)));
                Fault::Kill(member, crash)
            }
            20..=44 => {
                let members = shuffled(size, random);
                self.undo.push((until, Undo::Heal));
                let half = size / 2;
                match random.below(3) {
                    0 => {
                        let groups = vec![members[..half].to_vec(), members[half..].to_vec()];
                        cluster.partition(&groups);
                        Fault::Partition(groups)
                    }
                    1 => {
                        let groups = vec![members[..1].to_vec(), members[1..].to_vec()];
                        cluster.partition(&groups);
                        Fault::Partition(groups)
                    }
                    _ => {
                        let (left, right) = (&members[..half], &members[half + 1..]);
                        cluster.bridge(left, right);
                        Fault::Bridge(left.to_vec(), right.to_vec())
                    }
                }
            }
            45..=54 => {
                cluster.pause(member);
                gone.push(member);
                self.undo.push((until, Undo::Resume(member)));
                Fault::Pause(member)
            }
            55..=74 => {
                let faults = Faults {
                    drop_ppm: random.below(150_000) as u32,
                    duplicate_ppm: random.below(50_000) as u32,
                    delay_ms_max: random.below(80),
                };
                cluster.network.set_faults(faults);
                self.undo.push((until, Undo::CalmNetwork));
                Fault::Network(faults)
            }
            75..=89 => {
                let delta = random.below(7_200_000) as i64 - 3_600_000;
                cluster.jump_clock(member, delta);
                Fault::ClockJump(member, delta)
            }
            _ => {
                cluster.fail_next_sync(member);
                // A member whose disk failed stops; an operator restarts it.
                self.undo.push((until, Undo::Restart(member)));
                Fault::FailSync(member)
            }
        };
        if crate::sim::tracing_enabled() {
            eprintln!("t={now_ms} nemesis: {fault:?}");
        }
        self.applied.push((now_ms, fault));
        gone
    }

    /// Undoes every fault (restarts, heals, resumes, calms the network); answers the members
    /// that restarted.
    pub fn undo_all(&mut self, cluster: &mut Cluster) -> Vec<usize> {
        let mut gone = Vec::new();
        for (_, undo) in std::mem::take(&mut self.undo) {
            if let Undo::Restart(member) = undo {
                gone.push(member);
            }
            undo_one(cluster, undo);
        }
        cluster.heal();
        cluster.network.set_faults(Faults::default());
        for member in 0..cluster.members.len() {
            cluster.resume(member);
            if cluster.members[member].engine.is_none() && cluster.start(member).is_ok() {
                gone.push(member);
            }
        }
        gone
    }
}

fn undo_one(cluster: &mut Cluster, undo: Undo) {
    match undo {
        Undo::Restart(member) => {
            // A member whose fsync failed is down for good until restarted.
            cluster.kill(member, Crash::Clean);
            if let Err(error) = cluster.start(member) {
                tracing::error!(%error, "a simulated member did not restart");
            }
        }
        Undo::Heal => cluster.heal(),
        Undo::Resume(member) => cluster.resume(member),
        Undo::CalmNetwork => cluster.network.set_faults(Faults::default()),
    }
}

/// The members in an order drawn from the seed (Fisher-Yates).
fn shuffled(size: usize, random: &mut SplitMix64) -> Vec<usize> {
    let mut members: Vec<usize> = (0..size).collect();
    for index in (1..size).rev() {
        let other = random.below(index as u64 + 1) as usize;
        members.swap(index, other);
    }
    members
}
