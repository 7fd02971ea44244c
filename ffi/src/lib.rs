//! libzookeeper_rs: the C ABI of zookeeper-rs, declared in `include/zookeeper_rs.h`
//! (generated from this crate by cbindgen; `tests/header.rs` fails when it drifts).
//!
//! Conventions, after rustls-ffi: every function returns a `zk_result` (ZooKeeper's error
//! numbers, plus codes from -1000 down for the C boundary itself) and runs inside a panic
//! boundary, so no call unwinds into C or aborts the process; pointers are checked for NULL
//! and strings for UTF-8; out-parameters are written only on success; handles are opaque,
//! created by `_new`/`_start`/`_connect` and released by a NULL-safe `_free`; memory the
//! library returns belongs to the caller and has its own `_free`; callbacks take
//! `void *userdata` first and run on the client's dispatcher thread (or a recipe's worker),
//! never under a lock the client needs, so they may call back into the client.
#![allow(
    unsafe_code,
    reason = "a C ABI takes raw pointers; each unsafe block states why it is sound"
)]
#![allow(
    non_camel_case_types,
    reason = "C names: zk_client, zk_result, as the header spells them"
)]

mod answer;
mod boundary;
mod client;
mod ensemble;
mod ops;
mod owned;
mod recipes;
mod result;
mod server;
mod tree_cache;
mod types;
mod watchers;

pub use answer::{zk_completion_fn, zk_reply};
pub use client::{
    zk_client, zk_client_options, zk_read_cache_stats, zk_session_state, zk_watch_event,
    zk_watcher_fn,
};
pub use ensemble::{zk_ensemble, zk_ensemble_options, ZK_ENSEMBLE_MEMBERS_MAX};
pub use ops::{zk_add_watch_mode, zk_watcher_type};
pub use owned::{
    zk_acl_list, zk_bytes, zk_identity, zk_identity_list, zk_multi_results, zk_op_result,
    zk_read_result, zk_read_results, zk_strings,
};
pub use recipes::{
    zk_leader_election, zk_leader_fn, zk_leader_latch, zk_leader_listener_fn, zk_lock,
    zk_lock_kind, zk_semaphore,
};
pub use result::{zk_result, zk_result_message};
pub use server::{zk_server, zk_server_options};
pub use types::{zk_acl, zk_create_mode, zk_op, zk_op_kind, zk_perm, zk_read_op, zk_stat};

/// The handles the header calls thread-safe are `Send + Sync`: a field that is not (a raw
/// pointer, an `Rc`, a `RefCell`) fails the build instead of racing in a C program.
const _: fn() = || {
    fn thread_safe<T: Send + Sync>() {}
    thread_safe::<zk_server>();
    thread_safe::<zk_ensemble>();
    thread_safe::<zk_client>();
    thread_safe::<zk_lock>();
    thread_safe::<zk_semaphore>();
    thread_safe::<zk_leader_election>();
    thread_safe::<zk_leader_latch>();
};
