//! A session over ZooKeeper's TCP protocol: handshake, requests matched to replies, pings,
//! moving to another server when a connection breaks.

use std::sync::Arc;

use super::dispatcher::Shared;
use super::{Completion, ConnectOptions, Error, Result, Watcher};
use crate::op::Op;
use crate::proto::ErrorCode;

/// Where a reply goes.
pub(crate) enum Done {
    /// Straight to a waiting caller, from the connection's reader.
    Direct(Completion),
    /// Through the dispatcher, in order with watch events.
    Dispatched(Completion),
}

pub(crate) struct Connection {}

impl Connection {
    pub(crate) fn open(
        _connect_string: &str,
        _options: &ConnectOptions,
        _shared: Arc<Shared>,
    ) -> Result<Connection> {
        Err(Error::new(ErrorCode::ConnectionLoss, None))
    }
    pub(crate) fn session_id(&self) -> i64 {
        0
    }
    pub(crate) fn password(&self) -> [u8; 16] {
        [0; 16]
    }
    pub(crate) fn timeout_ms(&self) -> u32 {
        0
    }
    pub(crate) fn send(&self, _op: Op, _watcher: Option<Watcher>, _done: Done) {}
    pub(crate) fn close(&self) -> Result<()> {
        Ok(())
    }
}
