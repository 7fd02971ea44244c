//! The client's typed calls, one per ZooKeeper operation, each checking its paths as the Java
//! client does before anything is sent.

use super::read_cache::cacheable;
use super::validate::{unexpected, validate, validate_create_path, validate_op};
use super::{Client, Error, Result, Watcher};
use crate::op::{CreateRequest, IntoData, Op, OpResult, ReadOp, ReadResult, Reply};
use crate::proto::{Acl, AddWatchMode, ClientInfo, CreateMode, ErrorCode, Stat};

impl Client {
    /// Creates a znode; returns its path (with the sequence suffix for sequential modes).
    /// `data`: bytes, or `None` for null data (see [`IntoData`]).
    pub fn create(
        &self,
        path: &str,
        data: impl IntoData,
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<String> {
        self.create2(path, data, acl, mode).map(|(path, _)| path)
    }

    /// Creates a znode; returns its path and Stat.
    pub fn create2(
        &self,
        path: &str,
        data: impl IntoData,
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<(String, Stat)> {
        self.create_request(CreateRequest {
            path: path.into(),
            data: data.into_data(),
            acl: acl.into(),
            mode,
            ttl_ms: -1,
        })
    }

    /// Creates a TTL znode (`mode` PersistentWithTtl or PersistentSequentialWithTtl).
    pub fn create_ttl(
        &self,
        path: &str,
        data: impl IntoData,
        acl: &[Acl],
        mode: CreateMode,
        ttl_ms: i64,
    ) -> Result<(String, Stat)> {
        self.create_request(CreateRequest {
            path: path.into(),
            data: data.into_data(),
            acl: acl.into(),
            mode,
            ttl_ms,
        })
    }

    /// Creates a container znode.
    pub fn create_container(
        &self,
        path: &str,
        data: impl IntoData,
        acl: &[Acl],
    ) -> Result<(String, Stat)> {
        self.create2(path, data, acl, CreateMode::Container)
    }

    fn create_request(&self, request: CreateRequest) -> Result<(String, Stat)> {
        validate_create_path(&request.path, request.mode)?;
        let path = request.path.clone();
        match self.call(Op::Create(request), Some(&path), None)? {
            Reply::Create { path, stat } => Ok((path, stat)),
            other => unexpected(other),
        }
    }

    /// Deletes a childless znode; `version` -1 matches any.
    pub fn delete(&self, path: &str, version: i32) -> Result<()> {
        validate(path)?;
        self.call(
            Op::Delete {
                path: path.into(),
                version,
            },
            Some(path),
            None,
        )
        .map(drop)
    }

    /// Replaces a znode's data (bytes, or `None` for null); `version` -1 matches any.
    pub fn set_data(&self, path: &str, data: impl IntoData, version: i32) -> Result<Stat> {
        validate(path)?;
        match self.call(
            Op::SetData {
                path: path.into(),
                data: data.into_data(),
                version,
            },
            Some(path),
            None,
        )? {
            Reply::Stat(stat) => Ok(stat),
            other => unexpected(other),
        }
    }

    /// The znode's Stat, or None when it does not exist. A watcher fires on its creation,
    /// deletion or data change.
    pub fn exists(&self, path: &str, watcher: Option<Watcher>) -> Result<Option<Stat>> {
        validate(path)?;
        let op = Op::Exists {
            path: path.into(),
            watch: watcher.is_some(),
        };
        match self.call(op, Some(path), watcher.as_ref())? {
            Reply::Exists(stat) => Ok(stat),
            other => unexpected(other),
        }
    }

    /// The znode's data (None when it was created or set with null data) and Stat. A watcher
    /// fires on its deletion or data change.
    pub fn get_data(
        &self,
        path: &str,
        watcher: Option<Watcher>,
    ) -> Result<(Option<Vec<u8>>, Stat)> {
        validate(path)?;
        let op = Op::GetData {
            path: path.into(),
            watch: watcher.is_some(),
        };
        match self.call(op, Some(path), watcher.as_ref())? {
            Reply::Data { data, stat } => Ok((data, stat)),
            other => unexpected(other),
        }
    }

    /// The znode's children, sorted. A watcher fires when a child is created or deleted, or the
    /// znode itself is deleted.
    pub fn get_children(&self, path: &str, watcher: Option<Watcher>) -> Result<Vec<String>> {
        self.get_children2(path, watcher)
            .map(|(children, _)| children)
    }

    /// The znode's children, sorted, and its Stat.
    pub fn get_children2(
        &self,
        path: &str,
        watcher: Option<Watcher>,
    ) -> Result<(Vec<String>, Stat)> {
        validate(path)?;
        let op = Op::GetChildren {
            path: path.into(),
            watch: watcher.is_some(),
        };
        match self.call(op, Some(path), watcher.as_ref())? {
            Reply::Children { children, stat } => Ok((children, stat)),
            other => unexpected(other),
        }
    }

    /// The znode's ACL and Stat (digests masked unless the session has ADMIN).
    pub fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        validate(path)?;
        match self.call(Op::GetAcl { path: path.into() }, Some(path), None)? {
            Reply::Acl { acl, stat } => Ok((acl, stat)),
            other => unexpected(other),
        }
    }

    /// Replaces the znode's ACL; `version` -1 matches any ACL version.
    pub fn set_acl(&self, path: &str, acl: &[Acl], version: i32) -> Result<Stat> {
        validate(path)?;
        match self.call(
            Op::SetAcl {
                path: path.into(),
                acl: acl.into(),
                version,
            },
            Some(path),
            None,
        )? {
            Reply::Stat(stat) => Ok(stat),
            other => unexpected(other),
        }
    }

    /// Number of descendants of the znode.
    pub fn get_all_children_number(&self, path: &str) -> Result<i32> {
        validate(path)?;
        match self.call(
            Op::GetAllChildrenNumber { path: path.into() },
            Some(path),
            None,
        )? {
            Reply::Number(number) => Ok(number),
            other => unexpected(other),
        }
    }

    /// The session's ephemerals under `prefix` ("/" for all), sorted.
    pub fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        // The Java client checks the prefix as a path too.
        validate(prefix)?;
        match self.call(
            Op::GetEphemerals {
                prefix: prefix.into(),
            },
            Some(prefix),
            None,
        )? {
            Reply::Paths(paths) => Ok(paths),
            other => unexpected(other),
        }
    }

    /// Waits until this member has applied every change committed before the call.
    pub fn sync(&self, path: &str) -> Result<String> {
        validate(path)?;
        match self.call(Op::Sync { path: path.into() }, Some(path), None)? {
            Reply::Sync(path) => Ok(path),
            other => unexpected(other),
        }
    }

    /// A read that sees every write committed before the call began, wherever the client is
    /// connected (ZooKeeper's reads may lag on a follower; its clients cannot ask for more):
    /// a sync and the read are sent together, and the read counts only if the sync, answered
    /// through the leader's commit index (raft's ReadIndex), succeeded. `op` is a read
    /// (getData, exists, getChildren, getACL, getAllChildrenNumber); a watch it
    /// leaves fires as a plain read's would.
    pub fn read_linearizable(&self, op: Op, watcher: Option<Watcher>) -> Result<Reply> {
        let path = match &op {
            Op::GetData { path, .. }
            | Op::Exists { path, .. }
            | Op::GetChildren { path, .. }
            | Op::GetAcl { path }
            | Op::GetAllChildrenNumber { path } => path.clone(),
            other => {
                return Err(Error::new(
                    ErrorCode::BadArguments,
                    other.path().map(str::to_string).as_deref(),
                ))
            }
        };
        validate(&path)?;
        let synced = self.submit_deferred(Op::Sync { path }, None);
        if self.shared.cache.is_some() && watcher.is_none() && cacheable(&op).is_some() {
            // The read cache may answer at once, with what the events seen so far allow: the
            // read waits for the sync's reply, which follows the events of every change the
            // sync covers.
            synced.wait()?;
            return self.submit(op, None);
        }
        let read = self.submit_deferred(op, watcher);
        match synced.wait() {
            Ok(_) => read.wait(),
            Err(error) => {
                // The read behind a failed sync was answered ConnectionLoss too, or saw a tree
                // that may be stale: either way it does not count.
                drop(read.wait());
                Err(error)
            }
        }
    }

    /// `get_data` as a linearizable read (see [`Client::read_linearizable`]).
    pub fn get_data_linearizable(
        &self,
        path: &str,
        watcher: Option<Watcher>,
    ) -> Result<(Option<Vec<u8>>, Stat)> {
        let op = Op::GetData {
            path: path.into(),
            watch: watcher.is_some(),
        };
        match self.read_linearizable(op, watcher)? {
            Reply::Data { data, stat } => Ok((data, stat)),
            other => unexpected(other),
        }
    }

    /// Fails with BadVersion unless the znode's data version is `version` (-1: any); returns its Stat.
    pub fn check(&self, path: &str, version: i32) -> Result<Stat> {
        validate(path)?;
        match self.call(
            Op::Check {
                path: path.into(),
                version,
            },
            Some(path),
            None,
        )? {
            Reply::Stat(stat) => Ok(stat),
            other => unexpected(other),
        }
    }

    /// Applies create, delete, setData and check ops atomically. On failure the error carries
    /// the first failing op's code and every op's result (`Error::multi_results`).
    pub fn multi(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        for op in &ops {
            validate_op(op)?;
        }
        match self.submit(Op::Multi(ops), None)? {
            Reply::Multi(results) => Ok(results),
            other => unexpected(other),
        }
    }

    /// Reads several znodes; each read succeeds or fails on its own.
    pub fn multi_read(&self, reads: Vec<ReadOp>) -> Result<Vec<ReadResult>> {
        for read in &reads {
            let (ReadOp::GetData { path, .. } | ReadOp::GetChildren { path, .. }) = read;
            validate(path)?;
        }
        match self.call(Op::MultiRead(reads), None, None)? {
            Reply::MultiRead(results) => Ok(results),
            other => unexpected(other),
        }
    }

    /// The session's authenticated identities.
    pub fn whoami(&self) -> Result<Vec<ClientInfo>> {
        match self.call(Op::WhoAmI, None, None)? {
            Reply::WhoAmI(infos) => Ok(infos),
            other => unexpected(other),
        }
    }

    /// Leaves a persistent (or persistent recursive) watch; it stays until removed.
    pub fn add_watch(&self, path: &str, watcher: Watcher, mode: AddWatchMode) -> Result<()> {
        validate(path)?;
        self.call(
            Op::AddWatch {
                path: path.into(),
                mode,
            },
            Some(path),
            Some(&watcher),
        )
        .map(drop)
    }
}
