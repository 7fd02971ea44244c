//! Async forms of the client's calls, for code running on an executor.
//!
//! Each method is the blocking call's twin. In process the engine answers a call before
//! returning, so the future is ready when first polled. Over TCP these futures still run the
//! blocking call when polled, holding the executor thread for a round trip: awaiting the reply
//! instead (through `Client::submit_async`, which bindings already use) is open work, with the
//! same signatures.

use super::{Client, Result, Watcher};
use crate::op::{IntoData, Op, OpResult, ReadOp, ReadResult};
use crate::proto::{Acl, AddWatchMode, ClientInfo, CreateMode, Stat, WatcherType};

/// A client's async face: `client.as_async().get_data("/a", None).await`.
#[derive(Clone, Copy)]
pub struct AsyncClient<'a> {
    client: &'a Client,
}

impl<'a> AsyncClient<'a> {
    pub(super) fn new(client: &'a Client) -> Self {
        AsyncClient { client }
    }

    /// See `Client::create`.
    pub async fn create(
        &self,
        path: &str,
        data: impl IntoData,
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<String> {
        self.client.create(path, data, acl, mode)
    }

    /// See `Client::create2`.
    pub async fn create2(
        &self,
        path: &str,
        data: impl IntoData,
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<(String, Stat)> {
        self.client.create2(path, data, acl, mode)
    }

    /// See `Client::create_ttl`.
    pub async fn create_ttl(
        &self,
        path: &str,
        data: impl IntoData,
        acl: &[Acl],
        mode: CreateMode,
        ttl_ms: i64,
    ) -> Result<(String, Stat)> {
        self.client.create_ttl(path, data, acl, mode, ttl_ms)
    }

    /// See `Client::create_container`.
    pub async fn create_container(
        &self,
        path: &str,
        data: impl IntoData,
        acl: &[Acl],
    ) -> Result<(String, Stat)> {
        self.client.create_container(path, data, acl)
    }

    /// See `Client::delete`.
    pub async fn delete(&self, path: &str, version: i32) -> Result<()> {
        self.client.delete(path, version)
    }

    /// See `Client::set_data`.
    pub async fn set_data(&self, path: &str, data: impl IntoData, version: i32) -> Result<Stat> {
        self.client.set_data(path, data, version)
    }

    /// See `Client::exists`.
    pub async fn exists(&self, path: &str, watcher: Option<Watcher>) -> Result<Option<Stat>> {
        self.client.exists(path, watcher)
    }

    /// See `Client::get_data`.
    pub async fn get_data(
        &self,
        path: &str,
        watcher: Option<Watcher>,
    ) -> Result<(Option<Vec<u8>>, Stat)> {
        self.client.get_data(path, watcher)
    }

    /// See `Client::get_children`.
    pub async fn get_children(&self, path: &str, watcher: Option<Watcher>) -> Result<Vec<String>> {
        self.client.get_children(path, watcher)
    }

    /// See `Client::get_children2`.
    pub async fn get_children2(
        &self,
        path: &str,
        watcher: Option<Watcher>,
    ) -> Result<(Vec<String>, Stat)> {
        self.client.get_children2(path, watcher)
    }

    /// See `Client::get_acl`.
    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        self.client.get_acl(path)
    }

    /// See `Client::set_acl`.
    pub async fn set_acl(&self, path: &str, acl: &[Acl], version: i32) -> Result<Stat> {
        self.client.set_acl(path, acl, version)
    }

    /// See `Client::get_all_children_number`.
    pub async fn get_all_children_number(&self, path: &str) -> Result<i32> {
        self.client.get_all_children_number(path)
    }

    /// See `Client::get_ephemerals`.
    pub async fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        self.client.get_ephemerals(prefix)
    }

    /// See `Client::sync`.
    pub async fn sync(&self, path: &str) -> Result<String> {
        self.client.sync(path)
    }

    /// See `Client::check`.
    pub async fn check(&self, path: &str, version: i32) -> Result<Stat> {
        self.client.check(path, version)
    }

    /// See `Client::multi`.
    pub async fn multi(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        self.client.multi(ops)
    }

    /// See `Client::multi_read`.
    pub async fn multi_read(&self, reads: Vec<ReadOp>) -> Result<Vec<ReadResult>> {
        self.client.multi_read(reads)
    }

    /// See `Client::whoami`.
    pub async fn whoami(&self) -> Result<Vec<ClientInfo>> {
        self.client.whoami()
    }

    /// See `Client::add_auth`.
    pub async fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        self.client.add_auth(scheme, auth)
    }

    /// See `Client::add_watch`.
    pub async fn add_watch(&self, path: &str, watcher: Watcher, mode: AddWatchMode) -> Result<()> {
        self.client.add_watch(path, watcher, mode)
    }

    /// See `Client::remove_watches`.
    pub async fn remove_watches(&self, path: &str, watcher_type: WatcherType) -> Result<()> {
        self.client.remove_watches(path, watcher_type)
    }

    /// See `Client::close`.
    pub async fn close(&self) -> Result<()> {
        self.client.close()
    }
}
