//! The subtree cache for C: a mirror of every znode under a root with kazoo's TreeCache
//! events, over a client's session (zookeeper_core::client::recipes::TreeCache).

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use zookeeper_core::client::recipes::{TreeCache, TreeEvent, TreeWatchMode};

use crate::boundary::{
    boundary, boundary_void, from_raw, into_raw, reference, required, text, write, UserData,
};
use crate::client::zk_client;
use crate::owned::{c_string, hand_over, owned_bytes, owned_strings, zk_bytes, zk_strings};
use crate::recipes::slot;
use crate::result::zk_result;
use crate::types::zk_stat;

/// A subtree cache (opaque). Thread-safe; `zk_tree_cache_free` must be the last call.
pub struct zk_tree_cache {
    cache: TreeCache,
}

/// A tree cache event as a listener sees it; valid only during the call.
#[repr(C)]
#[derive(Debug)]
pub struct zk_tree_event {
    /// kazoo's TreeEvent type: 0 node added, 1 node updated, 2 node removed (descendants
    /// first), 3 connection suspended, 4 connection reconnected, 5 connection lost (session
    /// expired), 6 initialized.
    pub kind: i32,
    /// The znode's path for node events; NULL otherwise.
    pub path: *const c_char,
    /// Its data (what it was, for a removal); NULL for null data and for other events.
    pub data: *const zk_bytes,
    /// Its Stat when read; NULL for other events.
    pub stat: *const zk_stat,
}

/// Hears a tree cache's events on its worker thread, one at a time, in order. It may call the
/// cache's functions, `zk_tree_cache_close` included.
pub type zk_tree_listener_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, event: *const zk_tree_event)>;

/// A cache of the subtree under `path` (which need not exist yet) through `client`'s session;
/// `per_node_watches` watches every znode as kazoo does, instead of one persistent-recursive
/// watch (used anyway against servers older than 3.6). `listener` (NULL for none) hears the
/// events. Nothing is read before `zk_tree_cache_start`.
///
/// # Safety
/// Pointers are NULL or valid for the call; `cache_out` is writable.
#[no_mangle]
pub unsafe extern "C" fn zk_tree_cache_new(
    client: *const zk_client,
    path: *const c_char,
    per_node_watches: bool,
    listener: zk_tree_listener_fn,
    listener_userdata: *mut c_void,
    cache_out: *mut *mut zk_tree_cache,
) -> zk_result {
    boundary(|| {
        required(cache_out)?;
        // SAFETY: per the contract above.
        let (handle, path) = unsafe { (reference(client)?, text(path)?) };
        let mode = if per_node_watches {
            TreeWatchMode::PerNode
        } else {
            TreeWatchMode::Auto
        };
        let cache = TreeCache::new(slot(handle)?, path, mode)?;
        if let Some(listener) = listener {
            let userdata = UserData(listener_userdata);
            cache.listen(Arc::new(move |event: &TreeEvent| {
                let node = event.node.as_ref();
                let path = node.map(|node| c_string(&node.path));
                let data = node.and_then(|node| node.data.clone()).map(owned_bytes);
                let stat = node.map(|node| zk_stat::from(node.stat));
                let c_event = zk_tree_event {
                    kind: event.kind as i32,
                    path: path.as_ref().map_or(std::ptr::null(), |path| path.as_ptr()),
                    data: data
                        .as_ref()
                        .map_or(std::ptr::null(), |data| &data.view as *const zk_bytes),
                    stat: stat
                        .as_ref()
                        .map_or(std::ptr::null(), |stat| stat as *const zk_stat),
                };
                // SAFETY: the caller's listener, run on the cache's worker thread with an
                // event valid for the call, as documented.
                unsafe { listener(userdata.get(), &c_event) };
            }));
        }
        // SAFETY: checked non-NULL.
        unsafe { write(cache_out, into_raw(zk_tree_cache { cache })) };
        Ok(())
    })
}

/// Starts mirroring in the background (the listener hears 6, initialized, once loaded);
/// `ZK_INVALID_STATE` when started before.
///
/// # Safety
/// `cache` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn zk_tree_cache_start(cache: *const zk_tree_cache) -> zk_result {
    boundary(|| {
        // SAFETY: per the contract above.
        Ok(unsafe { reference(cache) }?.cache.start()?)
    })
}

/// Stops mirroring and removes the cache's watches from the server. Once it returns the
/// listener is not called again (a call in progress is waited for, unless this is called
/// from it). Closing twice does nothing.
///
/// # Safety
/// `cache` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn zk_tree_cache_close(cache: *const zk_tree_cache) -> zk_result {
    boundary(|| {
        // SAFETY: per the contract above.
        unsafe { reference(cache) }?.cache.close();
        Ok(())
    })
}

/// The mirrored znode at `path`: its data (`*data_out` NULL for null data; free with
/// `zk_bytes_free`) and Stat; `ZK_NONODE` when it is not mirrored. Either out-parameter may
/// be NULL.
///
/// # Safety
/// `cache` is NULL or a live handle; `path` NULL or a string; outputs NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn zk_tree_cache_get_data(
    cache: *const zk_tree_cache,
    path: *const c_char,
    data_out: *mut *mut zk_bytes,
    stat_out: *mut zk_stat,
) -> zk_result {
    boundary(|| {
        // SAFETY: per the contract above.
        let (handle, path) = unsafe { (reference(cache)?, text(path)?) };
        let node = handle.cache.get_data(path).ok_or(zk_result::ZK_NONODE)?;
        // SAFETY: NULL or writable per the contract above.
        unsafe {
            hand_over(data_out, node.data.map(owned_bytes));
            if !stat_out.is_null() {
                write(stat_out, zk_stat::from(node.stat));
            }
        }
        Ok(())
    })
}

/// The names of the mirrored children of `path`, sorted (free with `zk_strings_free`);
/// `ZK_NONODE` when `path` is not mirrored.
///
/// # Safety
/// `cache` is NULL or a live handle; `path` NULL or a string; `children_out` writable.
#[no_mangle]
pub unsafe extern "C" fn zk_tree_cache_get_children(
    cache: *const zk_tree_cache,
    path: *const c_char,
    children_out: *mut *mut zk_strings,
) -> zk_result {
    boundary(|| {
        required(children_out)?;
        // SAFETY: per the contract above.
        let (handle, path) = unsafe { (reference(cache)?, text(path)?) };
        let children = handle
            .cache
            .get_children(path)
            .ok_or(zk_result::ZK_NONODE)?;
        // SAFETY: checked non-NULL.
        unsafe { write(children_out, owned_strings(&children).into_view()) };
        Ok(())
    })
}

/// Closes and frees the cache. NULL is ignored.
///
/// # Safety
/// `cache` is NULL or a handle from this library, not used after this call.
#[no_mangle]
pub unsafe extern "C" fn zk_tree_cache_free(cache: *mut zk_tree_cache) {
    // SAFETY: per the contract above.
    boundary_void(|| drop(unsafe { from_raw(cache) }));
}
