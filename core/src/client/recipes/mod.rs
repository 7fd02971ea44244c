//! Coordination recipes written once, for Rust, C (the `zk_lock_*`, `zk_leader_latch_*`
//! functions) and Python (`zookeeper.recipes`): locks, a semaphore, leader election and
//! Curator's leader latch, and a subtree cache (kazoo's TreeCache). They keep kazoo's and Curator's znode layouts, so processes using
//! those libraries take part in the same locks and elections.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use zookeeper_core::client::recipes::{Lock, LockKind, SessionSlot};
//! use zookeeper_core::{Server, ServerConfig};
//!
//! let server = Server::start(ServerConfig::default()).unwrap();
//! let first = SessionSlot::fixed(Arc::new(server.connect().unwrap()));
//! let second = SessionSlot::fixed(Arc::new(server.connect().unwrap()));
//! let holder = Lock::new(first, "/locks/report", "worker-1", LockKind::Exclusive);
//! let waiter = Lock::new(second, "/locks/report", "worker-2", LockKind::Exclusive);
//!
//! assert!(holder.acquire(true, Some(Duration::from_secs(5)), true).unwrap());
//! assert!(!waiter.acquire(false, None, true).unwrap(), "one holder at a time");
//! assert_eq!(waiter.contenders().unwrap(), ["worker-1"]);
//! holder.release().unwrap();
//! assert!(waiter.acquire(false, None, true).unwrap());
//! ```
//!
//! Every call that waits takes a timeout; connection loss is retried until that timeout (and
//! for at most `RETRY_TOTAL_MS_MAX`), session expiry is not. A blocking call made inside a
//! callback of the recipe's own client answers `InvalidState` instead of waiting for an event
//! that would queue behind it. A recipe works through a `SessionSlot`: one
//! client for good, or (for bindings whose clients open new sessions) whichever is current.

mod election;
mod latch;
mod listeners;
mod lock;
mod protected;
mod semaphore;
mod support;
mod tree_cache;

pub use election::LeaderElection;
pub use latch::{LatchListener, LatchState, LeaderLatch};
pub use lock::{Lock, LockKind};
pub use semaphore::Semaphore;
pub use support::{split_sequence, RecipeError, RecipeResult, SessionSlot};
pub use tree_cache::{TreeCache, TreeEvent, TreeEventKind, TreeListener, TreeNode, TreeWatchMode};
