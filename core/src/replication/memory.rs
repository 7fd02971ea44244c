//! An in-memory transport: members of one process exchange messages through a queue, with
//! the faults a network has, all drawn from a seed: loss, duplication, delay (and so
//! reordering), partitions, and members paused so that messages wait for them. Time comes from
//! a `Clock`: a pump thread delivers on the system clock, a simulation calls `deliver_next` on
//! its own.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::random::SplitMix64;
use crate::replication::{PeerMessage, Transport};
use crate::server::{Clock, Engine};

/// What the network does to messages, per message. Probabilities are in parts per million.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Messages lost.
    pub drop_ppm: u32,
    /// Messages delivered twice (the copy with its own delay).
    pub duplicate_ppm: u32,
    /// Each message waits a delay drawn uniformly from `0..=delay_ms_max`, so later messages
    /// can overtake it.
    pub delay_ms_max: u64,
}

/// One message on its way.
struct Envelope {
    from: u64,
    to: u64,
    message: PeerMessage,
}

/// Counters, for tests and the simulation's report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Messages handed to the network.
    pub sent: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Messages lost (by the fault model or a partition).
    pub dropped: u64,
}

struct NetworkState {
    members: HashMap<u64, Weak<Engine>>,
    /// Directed pairs that cannot talk (a partition).
    cut: HashSet<(u64, u64)>,
    /// Members whose messages wait until they resume.
    paused: HashSet<u64>,
    /// Messages by (due time, order sent).
    queue: BTreeMap<(u64, u64), Envelope>,
    /// Messages for paused members.
    held: Vec<Envelope>,
    faults: Faults,
    random: SplitMix64,
    next_order: u64,
    stats: NetworkStats,
    stopped: bool,
}

/// The in-memory network.
pub struct MemoryNetwork {
    state: Mutex<NetworkState>,
    wake: Condvar,
    clock: Arc<dyn Clock>,
}

impl MemoryNetwork {
    /// A network with no member yet, its faults drawn from `seed`.
    pub fn new(seed: u64, faults: Faults, clock: Arc<dyn Clock>) -> Arc<MemoryNetwork> {
        Arc::new(MemoryNetwork {
            state: Mutex::new(NetworkState {
                members: HashMap::new(),
                cut: HashSet::new(),
                paused: HashSet::new(),
                queue: BTreeMap::new(),
                held: Vec::new(),
                faults,
                random: SplitMix64::new(seed),
                next_order: 0,
                stats: NetworkStats::default(),
                stopped: false,
            }),
            wake: Condvar::new(),
            clock,
        })
    }

    /// Messages for raft id `member` go to `engine` from now on (a restarted member registers
    /// its new engine).
    pub fn register(&self, member: u64, engine: &Arc<Engine>) {
        self.state
            .lock()
            .members
            .insert(member, Arc::downgrade(engine));
    }

    /// Messages for `member` are lost until it registers again (it is down).
    pub fn unregister(&self, member: u64) {
        self.state.lock().members.remove(&member);
    }

    /// Changes the fault model for messages sent from now on.
    pub fn set_faults(&self, faults: Faults) {
        self.state.lock().faults = faults;
    }

    /// Splits the members into groups that cannot reach each other (a member in no group
    /// reaches nobody); messages already on their way across a cut are lost.
    pub fn partition(&self, groups: &[&[u64]]) {
        let mut state = self.state.lock();
        let members: Vec<u64> = groups
            .iter()
            .flat_map(|group| group.iter().copied())
            .collect();
        let mut all: Vec<u64> = state.members.keys().copied().collect();
        all.extend(&members);
        all.sort_unstable();
        all.dedup();
        let group_of = |member: u64| groups.iter().position(|group| group.contains(&member));
        state.cut.clear();
        for &from in &all {
            for &to in &all {
                if from != to && (group_of(from).is_none() || group_of(from) != group_of(to)) {
                    state.cut.insert((from, to));
                }
            }
        }
    }

    /// Cuts every link between a member of `left` and one of `right` (both ways); members in
    /// neither still reach everyone (with one in between, a bridge).
    pub fn cut_between(&self, left: &[u64], right: &[u64]) {
        let mut state = self.state.lock();
        for &a in left {
            for &b in right {
                state.cut.insert((a, b));
                state.cut.insert((b, a));
            }
        }
    }

    /// Cuts the one-way link `from` -> `to` (messages the other way still pass).
    pub fn cut_one_way(&self, from: u64, to: u64) {
        self.state.lock().cut.insert((from, to));
    }

    /// Every member reaches every other again.
    pub fn heal(&self) {
        self.state.lock().cut.clear();
    }

    /// Holds the messages for `member` until `resume` (a paused process reads nothing).
    pub fn pause(&self, member: u64) {
        self.state.lock().paused.insert(member);
    }

    /// Delivers what waited for `member`, from now.
    pub fn resume(&self, member: u64) {
        let mut state = self.state.lock();
        state.paused.remove(&member);
        let now_ms = self.clock.now_ms();
        let held = std::mem::take(&mut state.held);
        for envelope in held {
            if envelope.to == member {
                let order = state.next_order;
                state.next_order += 1;
                state.queue.insert((now_ms, order), envelope);
            } else {
                state.held.push(envelope);
            }
        }
        drop(state);
        self.wake.notify_all();
    }

    /// Loses every message on its way for which `lost` holds (a test's precise fault);
    /// answers how many.
    pub fn drop_in_flight(&self, lost: impl Fn(u64, u64, &PeerMessage) -> bool) -> usize {
        let mut state = self.state.lock();
        let before = state.queue.len();
        state
            .queue
            .retain(|_, envelope| !lost(envelope.from, envelope.to, &envelope.message));
        let dropped = before - state.queue.len();
        state.stats.dropped += dropped as u64;
        dropped
    }

    /// The counters so far.
    pub fn stats(&self) -> NetworkStats {
        self.state.lock().stats
    }

    /// When the next message is due (none waiting: None).
    pub fn next_due_ms(&self) -> Option<u64> {
        self.state
            .lock()
            .queue
            .keys()
            .next()
            .map(|(due_ms, _)| *due_ms)
    }

    /// Delivers the earliest message if it is due; false when none is. The receiving engine
    /// runs it on this thread when its driver runs on the caller's.
    pub fn deliver_next(&self) -> bool {
        let now_ms = self.clock.now_ms();
        let (envelope, engine) = {
            let mut state = self.state.lock();
            loop {
                let Some(entry) = state.queue.first_entry() else {
                    return false;
                };
                if entry.key().0 > now_ms {
                    return false;
                }
                let envelope = entry.remove();
                if state.paused.contains(&envelope.to) {
                    state.held.push(envelope);
                    continue;
                }
                let engine = state.members.get(&envelope.to).and_then(Weak::upgrade);
                match engine {
                    Some(engine) if !state.cut.contains(&(envelope.from, envelope.to)) => {
                        state.stats.delivered += 1;
                        break (envelope, engine);
                    }
                    _ => state.stats.dropped += 1,
                }
            }
        };
        engine.receive(envelope.from, envelope.message);
        true
    }

    /// Delivers every message due now; answers how many.
    pub fn deliver_due(&self) -> usize {
        let mut delivered = 0;
        while self.deliver_next() {
            delivered += 1;
        }
        delivered
    }

    /// Delivers on the system clock until the network is dropped or `stop` is called.
    pub fn start_pump(self: &Arc<Self>) -> std::io::Result<JoinHandle<()>> {
        let network = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("zk-memory-net".into())
            .spawn(move || loop {
                let Some(network) = network.upgrade() else {
                    return;
                };
                network.deliver_due();
                let mut state = network.state.lock();
                if state.stopped {
                    return;
                }
                let wait_ms = match state.queue.keys().next() {
                    Some((due_ms, _)) => due_ms.saturating_sub(network.clock.now_ms()).max(1),
                    None => 50,
                };
                network
                    .wake
                    .wait_for(&mut state, Duration::from_millis(wait_ms));
            })
    }

    /// Ends the pump thread.
    pub fn stop(&self) {
        self.state.lock().stopped = true;
        self.wake.notify_all();
    }
}

impl Transport for MemoryNetwork {
    fn send(&self, from: u64, to: u64, message: PeerMessage) {
        let mut state = self.state.lock();
        state.stats.sent += 1;
        let faults = state.faults;
        if state.cut.contains(&(from, to)) || state.random.chance_ppm(faults.drop_ppm) {
            state.stats.dropped += 1;
            return;
        }
        let copies = if state.random.chance_ppm(faults.duplicate_ppm) {
            2
        } else {
            1
        };
        let now_ms = self.clock.now_ms();
        let mut message = Some(message);
        for copy in 0..copies {
            let delay_ms = state.random.below(faults.delay_ms_max + 1);
            let order = state.next_order;
            state.next_order += 1;
            let message = if copy + 1 == copies {
                message.take().expect("taken by the last copy only")
            } else {
                message.clone().expect("present until the last copy")
            };
            state
                .queue
                .insert((now_ms + delay_ms, order), Envelope { from, to, message });
        }
        drop(state);
        self.wake.notify_one();
    }
}
