//! zookeeper-core: ZooKeeper's data model as an embeddable engine.
#![allow(missing_docs)]

pub mod op;
pub mod proto;
pub mod session;
pub mod tree;
pub mod txn;
pub mod watch;
