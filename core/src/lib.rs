//! zookeeper-core: ZooKeeper's data model as an embeddable engine, with a native in-process client.
//!
//! Start a server in your process and talk to it; no JVM, no sockets:
//!
//! ```
//! use zookeeper_core::{Acl, CreateMode, Server, ServerConfig, Watcher};
//!
//! let server = Server::start(ServerConfig::default()).unwrap();
//! let zk = server.connect().unwrap();
//!
//! zk.create("/config", b"v1", &Acl::open_unsafe(), CreateMode::Persistent).unwrap();
//! let (watcher, events) = Watcher::channel();
//! let (data, stat) = zk.get_data("/config", Some(watcher)).unwrap();
//! assert_eq!((data.as_deref(), stat.version), (Some(&b"v1"[..]), 0));
//!
//! zk.set_data("/config", b"v2", stat.version).unwrap();
//! let event = events.recv().unwrap();
//! assert_eq!(event.event_type, zookeeper_core::EventType::NodeDataChanged);
//! ```
//!
//! Writes that must happen together go in one `multi`; it fails as a whole, and the error
//! says which op failed and why:
//!
//! ```
//! # use zookeeper_core::{Acl, CreateMode, ErrorCode, Op, OpResult, Server, ServerConfig};
//! # let server = Server::start(ServerConfig::default()).unwrap();
//! # let zk = server.connect().unwrap();
//! let open = Acl::open_unsafe();
//! let error = zk
//!     .multi(vec![
//!         Op::create("/jobs", b"", &open, CreateMode::Persistent),
//!         Op::delete("/missing", -1),
//!     ])
//!     .unwrap_err();
//! assert_eq!(error.code(), ErrorCode::NoNode);
//! assert_eq!(
//!     error.multi_results().unwrap(),
//!     &[OpResult::Error(None), OpResult::Error(Some(ErrorCode::NoNode))]
//! );
//! assert_eq!(zk.exists("/jobs", None).unwrap(), None, "nothing was applied");
//! ```
//!
//! Time is injected. With a `ManualClock` a test decides when a session expires; its ephemerals
//! go with it, and every watcher hears of it:
//!
//! ```
//! # use zookeeper_core::{Acl, ConnectOptions, CreateMode, Server, ServerConfig, ErrorCode};
//! let (config, clock) = ServerConfig::with_manual_clock();
//! let server = Server::start(config).unwrap();
//! let worker = server
//!     .connect_with(ConnectOptions { session_timeout_ms: 4_000, ..ConnectOptions::default() })
//!     .unwrap();
//! worker.create("/leader", b"worker-1", &Acl::open_unsafe(), CreateMode::Ephemeral).unwrap();
//!
//! worker.set_attached(false); // as if its network cable were cut
//! clock.advance(6_000); // past the timeout, rounded up to the next 2 s tick
//! server.tick();
//!
//! let observer = server.connect().unwrap();
//! assert_eq!(observer.exists("/leader", None).unwrap(), None);
//! assert_eq!(worker.get_data("/leader", None).unwrap_err().code(), ErrorCode::SessionExpired);
//! ```
//!
//! Every request runs through one pipeline (session layer, prepare, replicate, persist, apply,
//! respond); see `docs/design.md`. Time comes from a `Clock`: with a `ManualClock` a test decides
//! when sessions expire and TTL znodes are reaped.

pub mod client;
pub mod ensemble;
pub mod migrate;
pub mod op;
pub mod prepare;
pub mod proto;
pub mod random;
pub mod replication;
mod serde_bytes;
pub mod server;
pub mod session;
pub mod sim;
pub mod storage;
pub mod tree;
pub mod txn;
pub mod watch;

pub use client::{
    AsyncClient, Client, ClientState, ClientTls, ConnectOptions, Error, ReadCacheConfig,
    ReadCacheStats, SessionCredentials, WatchStream, Watcher,
};
pub use ensemble::{Ensemble, EnsembleConfig};
pub use op::{CreateRequest, IntoData, Op, OpResult, ReadOp, ReadResult};
pub use proto::{
    Acl, AddWatchMode, ClientInfo, CreateMode, ErrorCode, EventType, Id, KeeperState, Perms, Stat,
    WatchedEvent, WatcherType,
};
pub use server::{ManualClock, Server, ServerConfig};
