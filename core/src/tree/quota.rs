//! Quotas as ZooKeeper 3.7+ keeps them in the tree: a client (zkCli.sh's setquota) writes
//! `/zookeeper/quota/<path>/zookeeper_limits`, and apply keeps `.../zookeeper_stats` at the
//! znode count and data bytes under `<path>`; prepare checks a write against them
//! (`DataTree::quota_check`). Formats and rules are those of ZooKeeper's `StatsTrack`,
//! `DataTree.updateQuotaStat` and `ZooKeeperServer.checkQuota`.

use std::collections::BTreeMap;

use super::data_tree::{data_bytes, node_size_bytes, DataTree};
use super::path;

/// Where quotas live.
pub const QUOTA_ROOT: &str = "/zookeeper/quota";
/// The znode holding a quota's limits.
pub const LIMITS_NODE: &str = "zookeeper_limits";
/// The znode holding a quota's usage.
pub const STATS_NODE: &str = "zookeeper_stats";

/// A `StatsTrack`: `count=..,bytes=..` and, after a second `=`, `;key=value` pairs such as
/// `countHardLimit` and `byteHardLimit`. A missing key reads as -1 (no limit).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsTrack {
    values: BTreeMap<String, i64>,
}

impl StatsTrack {
    /// Parses a limits or stats znode's data as ZooKeeper does: pairs split on `,` and `;`,
    /// key and value on `=`, an empty value meaning -1. Pairs that do not parse are skipped
    /// (ZooKeeper would throw).
    pub fn parse(data: &[u8]) -> StatsTrack {
        let text = String::from_utf8_lossy(data);
        let mut values = BTreeMap::new();
        for pair in text.split([',', ';']).filter(|pair| !pair.is_empty()) {
            let mut parts = pair.split('=');
            let (Some(key), value) = (parts.next(), parts.next().unwrap_or("")) else {
                continue;
            };
            let value = if value.is_empty() {
                Some(-1)
            } else {
                value.parse().ok()
            };
            if let Some(value) = value {
                values.insert(key.to_string(), value);
            }
        }
        StatsTrack { values }
    }

    fn get(&self, key: &str) -> i64 {
        self.values.get(key).copied().unwrap_or(-1)
    }

    /// The soft count limit, or the count used.
    pub fn count(&self) -> i64 {
        self.get("count")
    }

    /// The soft byte limit, or the bytes used.
    pub fn bytes(&self) -> i64 {
        self.get("bytes")
    }

    /// The hard count limit.
    pub fn count_hard_limit(&self) -> i64 {
        self.get("countHardLimit")
    }

    /// The hard byte limit.
    pub fn byte_hard_limit(&self) -> i64 {
        self.get("byteHardLimit")
    }

    fn set(&mut self, key: &str, value: i64) {
        self.values.insert(key.to_string(), value);
    }

    /// The text ZooKeeper writes: count and bytes first, the other keys sorted after a `=`.
    pub fn to_text(&self) -> String {
        let mut text = format!("count={},bytes={}", self.count(), self.bytes());
        let others: Vec<_> = self
            .values
            .iter()
            .filter(|(key, _)| *key != "count" && *key != "bytes")
            .collect();
        if !others.is_empty() {
            text.push('=');
            for (key, value) in others {
                text.push_str(&format!(";{key}={value}"));
            }
        }
        text
    }
}

/// A write that would pass a quota's limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaExceeded {
    /// The path the quota is set on.
    pub quota_path: String,
    /// ZooKeeper's log line: "Quota exceeded: /a [current count=3, hardCountLimit=2]".
    pub message: String,
    /// True for a hard limit (refused when quotas are enforced); false for a soft one (logged).
    pub hard: bool,
}

/// The real path a znode under the quota root stands for ("/zookeeper/quota/a/b" -> "/a/b").
fn real_path(quota_parent: &str) -> Option<&str> {
    quota_parent
        .strip_prefix(QUOTA_ROOT)
        .filter(|rest| rest.starts_with('/'))
}

fn stats_path(quota_path: &str) -> String {
    format!("{QUOTA_ROOT}{quota_path}/{STATS_NODE}")
}

fn limits_path(quota_path: &str) -> String {
    format!("{QUOTA_ROOT}{quota_path}/{LIMITS_NODE}")
}

impl DataTree {
    /// The deepest path at or above `path` with a quota (none for "/"), ZooKeeper's
    /// `getMaxPrefixWithQuota`.
    pub fn quota_prefix(&self, path: &str) -> Option<&str> {
        if self.quota_paths.is_empty() {
            return None;
        }
        let mut candidate = path;
        while candidate != "/" {
            if let Some(found) = self.quota_paths.get(candidate) {
                return Some(found);
            }
            candidate = path::parent(candidate);
        }
        None
    }

    /// Checks a write that adds `count_diff` znodes and `bytes_diff` data bytes under `path`
    /// against the deepest quota above it, as ZooKeeper's `checkQuota` does: the applied tree's
    /// stats plus the difference, over a hard limit if one is set, else the soft one.
    pub fn quota_check(
        &self,
        path: &str,
        bytes_diff: i64,
        count_diff: i64,
    ) -> Result<(), QuotaExceeded> {
        let Some(prefix) = self.quota_prefix(path) else {
            return Ok(());
        };
        let Some(limits) = self.get(&limits_path(prefix)) else {
            return Ok(());
        };
        let limits = StatsTrack::parse(limits.data().unwrap_or_default());
        let check_count =
            count_diff != 0 && (limits.count() > -1 || limits.count_hard_limit() > -1);
        let check_bytes = bytes_diff != 0 && (limits.bytes() > -1 || limits.byte_hard_limit() > -1);
        if !check_count && !check_bytes {
            return Ok(());
        }
        let Some(stats) = self.get(&stats_path(prefix)) else {
            return Ok(());
        };
        let stats = StatsTrack::parse(stats.data().unwrap_or_default());
        let over = |what: &str, used: i64, soft: i64, hard: i64| {
            let (limit, hard, kind) = if hard > -1 {
                (hard, true, "hard")
            } else {
                (soft, false, "soft")
            };
            let capital = if what == "count" { "Count" } else { "Byte" };
            (used > limit).then(|| QuotaExceeded {
                quota_path: prefix.to_string(),
                message: format!(
                    "Quota exceeded: {prefix} [current {what}={used}, {kind}{capital}Limit={limit}]"
                ),
                hard,
            })
        };
        let mut soft = None;
        if check_count {
            let used = stats.count() + count_diff;
            match over("count", used, limits.count(), limits.count_hard_limit()) {
                Some(exceeded) if exceeded.hard => return Err(exceeded),
                found => soft = soft.or(found),
            }
        }
        if check_bytes {
            let used = stats.bytes() + bytes_diff;
            match over("bytes", used, limits.bytes(), limits.byte_hard_limit()) {
                Some(exceeded) if exceeded.hard => return Err(exceeded),
                found => soft = soft.or(found),
            }
        }
        soft.map_or(Ok(()), Err)
    }

    /// Keeps quotas after `path` was created with `data` (ZooKeeper's `createNode`): a limits
    /// znode starts a quota, a stats znode is filled with its subtree's usage, and the deepest
    /// quota above `path` counts it.
    pub(super) fn quota_after_create(&mut self, path: &str, data: Option<&[u8]>) {
        let parent = path::parent(path);
        if let Some(real) = real_path(parent) {
            match &path[parent.len() + 1..] {
                LIMITS_NODE => {
                    self.quota_paths.insert(real.into());
                }
                STATS_NODE => {
                    let (count, bytes) = self.subtree_usage(real);
                    let mut stats = StatsTrack::default();
                    stats.set("count", count);
                    stats.set("bytes", bytes);
                    self.replace_stats(path, &stats);
                }
                _ => {}
            }
        }
        if let Some(prefix) = self.quota_prefix(path).map(str::to_owned) {
            self.add_usage(&prefix, data_bytes(data) as i64, 1);
        }
    }

    /// Keeps quotas after `path`, which held `data`, was deleted.
    pub(super) fn quota_after_delete(&mut self, path: &str, data: Option<&[u8]>) {
        let parent = path::parent(path);
        if parent.starts_with("/zookeeper") && path[parent.len() + 1..] == *LIMITS_NODE {
            if let Some(real) = real_path(parent) {
                self.quota_paths.remove(real);
            }
        }
        if let Some(prefix) = self.quota_prefix(path).map(str::to_owned) {
            self.add_usage(&prefix, -(data_bytes(data) as i64), -1);
        }
    }

    /// Keeps quotas after `path`'s data changed size by `bytes_diff`.
    pub(super) fn quota_after_set_data(&mut self, path: &str, bytes_diff: i64) {
        if let Some(prefix) = self.quota_prefix(path).map(str::to_owned) {
            self.add_usage(&prefix, bytes_diff, 0);
        }
    }

    /// Rebuilds the set of quota paths from the limits znodes (after a snapshot is read).
    pub(super) fn rebuild_quota_paths(&mut self) {
        let suffix = format!("/{LIMITS_NODE}");
        let found: Vec<Box<str>> = self
            .nodes
            .iter()
            .filter_map(|node| real_path(node.path().strip_suffix(&suffix)?).map(Box::from))
            .collect();
        self.quota_paths = found.into_iter().collect();
    }

    /// ZooKeeper's `updateQuotaStat`: the stats znode's figures move by the difference; its
    /// Stat does not change (ZooKeeper rewrites the data in place, outside any Txn's own op).
    fn add_usage(&mut self, quota_path: &str, bytes_diff: i64, count_diff: i64) {
        let path = stats_path(quota_path);
        let Some(node) = self.get(&path) else {
            return;
        };
        let mut stats = StatsTrack::parse(node.data().unwrap_or_default());
        stats.set("count", stats.count() + count_diff);
        stats.set("bytes", stats.bytes() + bytes_diff);
        self.replace_stats(&path, &stats);
    }

    fn replace_stats(&mut self, path: &str, stats: &StatsTrack) {
        let text = stats.to_text();
        let Some(node) = self.nodes.get_mut(path) else {
            return;
        };
        let before = node_size_bytes(path, node.data());
        node.set_data(Some(text.as_bytes()));
        self.data_size_bytes = self.data_size_bytes - before + node_size_bytes(path, node.data());
    }

    /// Znodes and data bytes in the subtree at `path`, itself included (ZooKeeper's
    /// `getCounts`); zeros when it does not exist.
    fn subtree_usage(&self, path: &str) -> (i64, i64) {
        let Some(root) = self.nodes.get(path) else {
            return (0, 0);
        };
        let mut stack = vec![root];
        let (mut count, mut bytes) = (0i64, 0i64);
        while let Some(node) = stack.pop() {
            count += 1;
            bytes += data_bytes(node.data()) as i64;
            stack.extend(self.nodes.children(node));
        }
        (count, bytes)
    }
}

#[cfg(test)]
#[path = "quota_tests.rs"]
mod tests;
