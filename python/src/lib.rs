//! The native module `zookeeper._native`: a thin layer over zookeeper-core's client, server and
//! in-process ensemble that the pure-Python package `zookeeper` builds its API on.
//!
//! Requests arrive as tuples (`("get_data", path, watch)`, see `convert.rs`), answers leave as
//! tuples, lists and bytes; errors leave as the exceptions `zookeeper.exceptions` defines, built
//! by its `_from_native(code, path, results)`. Every blocking call releases the GIL and wakes
//! every 50 ms to let Python handle signals (Ctrl-C). Watch callbacks and completions run on the
//! client's dispatcher thread, which takes the GIL only for the call itself.

mod client;
mod convert;
mod ensemble;
mod recipes;
mod server;
mod tree_cache;

use pyo3::prelude::*;

/// The module's contents.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<client::NativeClient>()?;
    module.add_class::<client::NativeWatcher>()?;
    module.add_class::<server::NativeServer>()?;
    module.add_class::<ensemble::NativeEnsemble>()?;
    module.add_class::<recipes::NativeSessionSlot>()?;
    module.add_class::<recipes::NativeLock>()?;
    module.add_class::<recipes::NativeSemaphore>()?;
    module.add_class::<recipes::NativeLeaderElection>()?;
    module.add_class::<recipes::NativeLeaderLatch>()?;
    module.add_class::<tree_cache::NativeTreeCache>()?;
    module.add_function(wrap_pyfunction!(client::shutdown, module)?)?;
    module.add(
        "ENSEMBLE_MEMBERS_MAX",
        zookeeper_core::ensemble::MEMBERS_MAX,
    )?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
