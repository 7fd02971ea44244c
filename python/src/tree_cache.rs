//! The Rust subtree cache (zookeeper_core::client::recipes::TreeCache) as a native class;
//! `zookeeper.recipes.TreeCache` keeps kazoo's TreeCache API over it.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::IntoPyObjectExt;
use zookeeper_core::client::recipes::{RecipeError, TreeCache, TreeEvent, TreeNode, TreeWatchMode};

use crate::client::call_python;
use crate::convert;
use crate::recipes::NativeSessionSlot;

/// A node as Python sees it: (path, data or None, Stat tuple).
fn node<'py>(py: Python<'py>, node: &TreeNode) -> PyResult<Bound<'py, PyAny>> {
    let data = match &node.data {
        Some(data) => PyBytes::new(py, data).into_any(),
        None => py.None().into_bound(py),
    };
    (node.path.as_str(), data, convert::stat(py, &node.stat)?).into_bound_py_any(py)
}

/// A subtree cache; `on_event(kind, node)` runs on the cache's worker thread, `kind` numbered
/// as kazoo's TreeEvent types and `node` a (path, data, stat) tuple or None.
#[pyclass(frozen, module = "zookeeper._native")]
pub struct NativeTreeCache {
    cache: Option<Arc<TreeCache>>,
}

#[pymethods]
impl NativeTreeCache {
    #[new]
    fn new(
        slot: &NativeSessionSlot,
        path: &str,
        per_node_watches: bool,
        on_event: Py<PyAny>,
    ) -> PyResult<NativeTreeCache> {
        let mode = if per_node_watches {
            TreeWatchMode::PerNode
        } else {
            TreeWatchMode::Auto
        };
        let cache = TreeCache::new(slot.slot.clone(), path, mode)
            .map_err(|failure| pyo3::exceptions::PyValueError::new_err(failure.to_string()))?;
        cache.listen(Arc::new(move |event: &TreeEvent| {
            call_python(&on_event, |py| {
                let kind = event.kind as i32;
                let node = match &event.node {
                    Some(tree_node) => node(py, tree_node)?,
                    None => py.None().into_bound(py),
                };
                (kind, node).into_bound_py_any(py).map(Bound::unbind)
            })
        }));
        Ok(NativeTreeCache {
            cache: Some(Arc::new(cache)),
        })
    }

    fn start(&self) -> PyResult<()> {
        self.cache().start().map_err(|failure| match failure {
            RecipeError::InvalidState(why) => pyo3::exceptions::PyRuntimeError::new_err(why),
            other => pyo3::exceptions::PyRuntimeError::new_err(other.to_string()),
        })
    }

    /// Stops mirroring and removes the cache's watches (round trips: the GIL is let go).
    fn close(&self, py: Python<'_>) {
        let cache = self.cache();
        py.detach(|| cache.close());
    }

    /// (path, data, stat) of the mirrored znode, or None.
    fn get_data<'py>(&self, py: Python<'py>, path: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.cache()
            .get_data(path)
            .map(|found| node(py, &found))
            .transpose()
    }

    /// The mirrored children's names, or None when `path` is not mirrored.
    fn get_children(&self, path: &str) -> Option<Vec<String>> {
        self.cache().get_children(path)
    }

    #[getter]
    fn is_initialized(&self) -> bool {
        self.cache().is_initialized()
    }

    #[getter]
    fn uses_per_node_watches(&self) -> bool {
        self.cache().uses_per_node_watches()
    }
}

impl NativeTreeCache {
    fn cache(&self) -> &TreeCache {
        self.cache.as_deref().expect("present until dropped")
    }
}

impl Drop for NativeTreeCache {
    /// Collected with the GIL held: closing removes watches over the network and the worker
    /// may be calling a listener (which needs the GIL), so it runs on a thread of its own.
    fn drop(&mut self) {
        if let Some(cache) = self.cache.take() {
            let _ = std::thread::Builder::new()
                .name("zk-tree-cache-close".into())
                .spawn(move || drop(cache));
        }
    }
}
