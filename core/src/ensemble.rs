//! An in-process ensemble for test suites: several members replicating over the in-memory
//! network, each with a disk in memory that outlives its restarts. Connect a client to a
//! chosen member; kill, restart, partition, heal or pause members, and watch the others carry
//! on as a ZooKeeper ensemble would.
//!
//! ```
//! use std::time::Duration;
//! use zookeeper_core::{Acl, CreateMode, Ensemble};
//!
//! let mut ensemble = Ensemble::start(3).unwrap();
//! let leader = ensemble.wait_for_leader(Duration::from_secs(10)).unwrap();
//! let follower = (leader + 1) % 3;
//! let zk = ensemble.connect(follower).unwrap();
//! zk.create("/config", b"v1", &Acl::open_unsafe(), CreateMode::Persistent).unwrap();
//!
//! ensemble.kill(leader); // the other two elect a new leader and keep the data
//! ensemble.wait_for_leader(Duration::from_secs(10)).unwrap();
//! let other = ensemble.connect(3 - leader - follower).unwrap();
//! assert_eq!(other.get_data("/config", None).unwrap().0.as_deref(), Some(&b"v1"[..]));
//! ```
//!
//! With `client_ports`, every member also serves ZooKeeper's client protocol on 127.0.0.1,
//! on a port it keeps across restarts, so any ZooKeeper client (kazoo, Curator, the Apache C
//! client, ours over TCP) connects with `connect_string()` and fails over between members as
//! it would in production.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::client::{Client, ConnectOptions, Error as ClientError};
use crate::proto::ErrorCode;
use crate::replication::memory::{Faults, MemoryNetwork};
use crate::replication::raft_id;
use crate::server::net::{NetConfig, NetServer};
use crate::server::{Clock, ConfigError, Server, ServerConfig, StartError, SystemClock};
use crate::storage::{Crash, FakeDisk, LogOptions};

/// Most members an in-process ensemble runs. Each member runs a few threads (its driver, its
/// ticker, and with client ports a small runtime), and ensembles of more than seven voters
/// are rare in production; 15 leaves room without letting a typo start hundreds of threads.
pub const MEMBERS_MAX: usize = 15;

/// How an ensemble runs.
#[derive(Clone, Debug)]
pub struct EnsembleConfig {
    /// Voting members (member ids 0..members), 1 to `MEMBERS_MAX`.
    pub members: usize,
    /// Settings every member starts from (member id, voters, transport, data directory and
    /// disk are set per member).
    pub server: ServerConfig,
    /// What the network does to messages.
    pub faults: Faults,
    /// Seeds the network's faults and raft's election timeouts.
    pub seed: u64,
    /// Serve ZooKeeper's client protocol on 127.0.0.1 (a port per member, kept across
    /// restarts; see `Ensemble::connect_string`).
    pub client_ports: bool,
}

impl Default for EnsembleConfig {
    fn default() -> EnsembleConfig {
        EnsembleConfig {
            members: 3,
            server: ServerConfig {
                // Elections within ~100-200 ms, so a test sees fail-over quickly.
                raft_tick_ms: 10,
                election_ticks: 10,
                heartbeat_ticks: 2,
                tick_ms: 200,
                log_options: LogOptions {
                    segment_bytes_max: 4 << 20,
                    preallocate_bytes: 64 << 10,
                },
                ..ServerConfig::default()
            },
            faults: Faults::default(),
            seed: 1,
            client_ports: false,
        }
    }
}

/// One member: its disk, and its server (with its client port) while it runs.
struct Member {
    config: ServerConfig,
    disk: FakeDisk,
    /// Declared before `server`: connections close before the engine stops.
    net: Option<NetServer>,
    server: Option<Server>,
    /// The client port's address once first bound (None without client ports).
    client_address: Option<SocketAddr>,
}

/// A running ensemble. Dropping it stops every member.
///
/// Members are indexed 0..`len()`. Methods that take a member panic for an index past the
/// end, as slice indexing does (a bug in the caller; the Python and C bindings check first).
pub struct Ensemble {
    network: Arc<MemoryNetwork>,
    pump: Option<JoinHandle<()>>,
    members: Vec<Member>,
}

impl Ensemble {
    /// Starts `members` voting members with default settings.
    pub fn start(members: usize) -> Result<Ensemble, StartError> {
        Ensemble::start_with(EnsembleConfig {
            members,
            ..EnsembleConfig::default()
        })
    }

    /// Starts an ensemble as `config` says. `StartError::Config` for a member count outside
    /// 1..=`MEMBERS_MAX` or settings a server refuses.
    pub fn start_with(config: EnsembleConfig) -> Result<Ensemble, StartError> {
        if !(1..=MEMBERS_MAX).contains(&config.members) {
            return Err(StartError::Config(ConfigError {
                rule: "an ensemble has 1 to 15 members",
            }));
        }
        let clock: Arc<dyn Clock> = if config.server.clock.is_manual() {
            Arc::clone(&config.server.clock)
        } else {
            Arc::new(SystemClock::default())
        };
        let network = MemoryNetwork::new(config.seed, config.faults, Arc::clone(&clock));
        let voters: Vec<u8> = (0..config.members).map(|member| member as u8).collect();
        let members = voters
            .iter()
            .map(|&member_id| {
                let disk = FakeDisk::new();
                let template = ServerConfig {
                    raft_seed: config.seed,
                    clock: Arc::clone(&clock),
                    ..config.server.clone()
                };
                Member {
                    config: member_config(&template, member_id, &voters, &network, &disk),
                    disk,
                    net: None,
                    server: None,
                    client_address: config
                        .client_ports
                        .then(|| SocketAddr::from(([127, 0, 0, 1], 0))),
                }
            })
            .collect();
        let mut ensemble = Ensemble {
            pump: if clock.is_manual() {
                None
            } else {
                Some(network.start_pump()?)
            },
            network,
            members,
        };
        for member in 0..config.members {
            ensemble.restart(member)?;
        }
        Ok(ensemble)
    }

    /// How many members the ensemble has (running or not).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True for an ensemble of no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The member's server while it runs.
    pub fn server(&self, member: usize) -> Option<&Server> {
        self.members[member].server.as_ref()
    }

    /// Where `member` serves TCP clients (None without client ports).
    pub fn client_address(&self, member: usize) -> Option<SocketAddr> {
        self.members[member]
            .client_address
            .filter(|address| address.port() != 0)
    }

    /// Every member's client address, by member (empty without client ports).
    pub fn client_addresses(&self) -> Vec<SocketAddr> {
        (0..self.len())
            .filter_map(|member| self.client_address(member))
            .collect()
    }

    /// Every member's client address, as a ZooKeeper connect string
    /// ("127.0.0.1:p1,127.0.0.1:p2,..."); empty without client ports.
    pub fn connect_string(&self) -> String {
        self.client_addresses()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The network, to change its faults or look at its counters.
    pub fn network(&self) -> &MemoryNetwork {
        &self.network
    }

    /// The member that leads and serves, if one does. A paused member does neither, whatever
    /// its flags (frozen with its process) say. Just after a partition the cut-off leader
    /// may still be named until it notices it lost its quorum (an election timeout).
    pub fn leader(&self) -> Option<usize> {
        self.members.iter().position(|member| {
            member.server.as_ref().is_some_and(|server| {
                let engine = server.engine();
                engine.is_leader() && engine.is_serving() && !engine.is_paused()
            })
        })
    }

    /// Waits until a member leads and serves.
    pub fn wait_for_leader(&self, timeout: Duration) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(leader) = self.leader() {
                return Some(leader);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Opens a session on `member` with default options.
    pub fn connect(&self, member: usize) -> crate::client::Result<Client> {
        self.connect_with(member, ConnectOptions::default())
    }

    /// Opens (or resumes) a session on `member`, waiting up to the connect timeout (the
    /// session timeout by default) for the member to serve, as a ZooKeeper client keeps
    /// trying while its server has no quorum. ConnectionLoss for a member that is down, or
    /// that did not serve in time (a paused one does not).
    pub fn connect_with(
        &self,
        member: usize,
        options: ConnectOptions,
    ) -> crate::client::Result<Client> {
        let timeout_ms = options
            .connect_timeout_ms
            .unwrap_or(options.session_timeout_ms.max(0) as u64);
        // A deadline no clock reaches is no deadline.
        let deadline = Instant::now().checked_add(Duration::from_millis(timeout_ms));
        loop {
            if let Some(done) = self.try_connect(member, options.clone()) {
                return done;
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Err(ClientError::new(ErrorCode::ConnectionLoss, None));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// One attempt to open (or resume) a session on `member`, without waiting: None while
    /// the member runs but does not serve (no quorum, or paused: asking a paused member
    /// would wait until it resumes), ConnectionLoss for a member that is down. Bindings
    /// that share an ensemble between threads wait with this, holding their lock only for
    /// the attempt.
    pub fn try_connect(
        &self,
        member: usize,
        options: ConnectOptions,
    ) -> Option<crate::client::Result<Client>> {
        let Some(server) = self.server(member) else {
            return Some(Err(ClientError::new(ErrorCode::ConnectionLoss, None)));
        };
        if server.engine().is_paused() || !server.engine().is_serving() {
            return None;
        }
        match server.connect_with(options) {
            Err(error) if error.code() == ErrorCode::ConnectionLoss => None,
            done => Some(done),
        }
    }

    /// Crashes `member`: its process is gone, and its disk keeps only what it made durable.
    /// Its clients are disconnected. Does nothing to a member that is down.
    pub fn kill(&mut self, member: usize) {
        let slot = &mut self.members[member];
        let Some(server) = slot.server.take() else {
            return;
        };
        self.network.unregister(raft_id(member as u8));
        // A stopped process that is killed comes back running: what the network held for it
        // is lost with the process, and its restart hears its peers.
        self.network.resume(raft_id(member as u8));
        // The disk image is taken before the server stops, so nothing the stop writes counts.
        let image = slot.disk.crash(Crash::Clean);
        slot.net = None;
        drop(server);
        slot.disk = image;
        slot.config.disk = Arc::new(slot.disk.clone());
    }

    /// Starts `member` again on its disk (a member that runs is killed first).
    pub fn restart(&mut self, member: usize) -> Result<(), StartError> {
        self.kill(member);
        let slot = &mut self.members[member];
        let server = Server::start(slot.config.clone())?;
        self.network
            .register(raft_id(member as u8), server.engine());
        if let Some(address) = slot.client_address {
            let net = NetServer::start(
                Arc::clone(server.engine()),
                NetConfig {
                    address,
                    ..NetConfig::default()
                },
            )
            .map_err(StartError::Listen)?;
            slot.client_address = Some(net.local_address());
            slot.net = Some(net);
        }
        slot.server = Some(server);
        Ok(())
    }

    /// Splits the members into groups that cannot reach each other (a member in no group
    /// reaches nobody).
    pub fn partition(&self, groups: &[&[usize]]) {
        let groups: Vec<Vec<u64>> = groups
            .iter()
            .map(|group| group.iter().map(|&member| raft_id(member as u8)).collect())
            .collect();
        let groups: Vec<&[u64]> = groups.iter().map(Vec::as_slice).collect();
        self.network.partition(&groups);
    }

    /// Cuts `member` off from every other member.
    pub fn isolate(&self, member: usize) {
        let others: Vec<usize> = (0..self.len()).filter(|other| *other != member).collect();
        self.partition(&[&[member], &others]);
    }

    /// Every member reaches every other again.
    pub fn heal(&self) {
        self.network.heal();
    }

    /// Pauses `member` as if its process were stopped: it takes no message, tick or request
    /// until `resume`.
    pub fn pause(&self, member: usize) {
        if let Some(server) = self.server(member) {
            self.network.pause(raft_id(member as u8));
            server.engine().set_paused(true);
        }
    }

    /// Continues a paused member.
    pub fn resume(&self, member: usize) {
        if let Some(server) = self.server(member) {
            server.engine().set_paused(false);
            self.network.resume(raft_id(member as u8));
        }
    }
}

/// Member `member_id` of the in-memory ensemble `voters`, from `template`: its network, and a
/// data directory on its own disk in memory.
pub(crate) fn member_config(
    template: &ServerConfig,
    member_id: u8,
    voters: &[u8],
    network: &Arc<MemoryNetwork>,
    disk: &FakeDisk,
) -> ServerConfig {
    ServerConfig {
        member_id,
        voters: voters.to_vec(),
        transport: Some(network.clone()),
        data_dir: Some(PathBuf::from(format!("/zookeeper/member-{member_id}"))),
        disk: Arc::new(disk.clone()),
        ..template.clone()
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for member in &mut self.members {
            if let Some(server) = &member.server {
                server.engine().set_paused(false);
            }
            member.net = None;
            member.server = None;
        }
        self.network.stop();
        if let Some(pump) = self.pump.take() {
            let _ = pump.join();
        }
    }
}
