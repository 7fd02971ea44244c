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
//! assert_eq!((data.as_slice(), stat.version), (&b"v1"[..], 0));
//!
//! zk.set_data("/config", b"v2", stat.version).unwrap();
//! let event = events.recv().unwrap();
//! assert_eq!(event.event_type, zookeeper_core::EventType::NodeDataChanged);
//! ```
//!
//! Every request runs through one pipeline (session layer, prepare, replicate, persist, apply,
//! respond); see `docs/design.md`. Time comes from a `Clock`: with a `ManualClock` a test decides
//! when sessions expire and TTL znodes are reaped.

pub mod client;
pub mod op;
pub mod prepare;
pub mod proto;
pub mod replication;
pub mod server;
pub mod session;
pub mod storage;
pub mod tree;
pub mod txn;
pub mod watch;

pub use client::{AsyncClient, Client, ClientState, ConnectOptions, Error, WatchStream, Watcher};
pub use op::{CreateRequest, Op, OpResult, ReadOp, ReadResult};
pub use proto::{
    Acl, AddWatchMode, ClientInfo, CreateMode, ErrorCode, EventType, Id, KeeperState, Perms, Stat,
    WatchedEvent, WatcherType,
};
pub use server::{ManualClock, Server, ServerConfig};
