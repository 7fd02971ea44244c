//! Converts between Python values and zookeeper-core's requests, replies and errors, once, at the
//! boundary.
//!
//! Requests are tuples whose first item names the operation:
//! `("create", path, data, acl, mode, ttl_ms)` (data: bytes or None for null), `("delete", path, version)`,
//! `("set_data", path, data, version)`, `("set_acl", path, acl, version)`,
//! `("check", path, version)`, `("multi", [ops])`, `("get_data" | "exists" | "get_children",
//! path, watch)`, `("get_acl" | "get_all_children_number" | "sync", path)`,
//! `("get_ephemerals", prefix)`, `("multi_read", [(kind, path)])`, `("whoami",)`,
//! `("add_auth", scheme, credential)`, `("add_watch", path, mode)`,
//! `("remove_watches" | "check_watches", path, watcher_type)`. An ACL is a list of
//! `(perms, scheme, id)`. A Stat leaves as an 11-tuple in ZooKeeper's field order.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyList, PyTuple};
use pyo3::IntoPyObjectExt;
use zookeeper_core::{
    Acl, AddWatchMode, CreateMode, CreateRequest, Error, ErrorCode, Id, Op, OpResult, Perms,
    ReadOp, ReadResult, Stat, WatcherType,
};

use zookeeper_core::op::Reply;

fn item<'py>(request: &Bound<'py, PyTuple>, index: usize) -> PyResult<Bound<'py, PyAny>> {
    request.get_item(index).map_err(|_| {
        PyTypeError::new_err(format!(
            "request {request} needs at least {} items",
            index + 1
        ))
    })
}

fn text(request: &Bound<'_, PyTuple>, index: usize) -> PyResult<String> {
    item(request, index)?
        .extract::<String>()
        .map_err(|_| PyTypeError::new_err(format!("item {index} of a request must be a str")))
}

fn int<T: for<'a, 'py> FromPyObject<'a, 'py>>(
    request: &Bound<'_, PyTuple>,
    index: usize,
) -> PyResult<T> {
    item(request, index)?.extract::<T>().map_err(|_| {
        PyTypeError::new_err(format!("item {index} of a request must be an int in range"))
    })
}

fn flag(request: &Bound<'_, PyTuple>, index: usize) -> PyResult<bool> {
    item(request, index)?.is_truthy()
}

fn data(request: &Bound<'_, PyTuple>, index: usize) -> PyResult<Vec<u8>> {
    let value = item(request, index)?;
    let bytes = value
        .cast::<PyBytes>()
        .map_err(|_| PyTypeError::new_err("data must be bytes"))?;
    Ok(bytes.as_bytes().to_vec())
}

/// Znode data: bytes, or None for ZooKeeper's null data.
fn znode_data(request: &Bound<'_, PyTuple>, index: usize) -> PyResult<Option<Vec<u8>>> {
    if item(request, index)?.is_none() {
        return Ok(None);
    }
    data(request, index).map(Some)
}

fn acl(value: &Bound<'_, PyAny>) -> PyResult<Vec<Acl>> {
    let mut entries = Vec::new();
    for entry in value.try_iter()? {
        let (perms, scheme, id): (i32, String, String) = entry?
            .extract()
            .map_err(|_| PyTypeError::new_err("an ACL entry must be (perms, scheme, id)"))?;
        entries.push(Acl::new(Perms(perms), Id::new(scheme, id)));
    }
    Ok(entries)
}

/// Parses a request tuple into an `Op`.
pub(crate) fn op(request: &Bound<'_, PyAny>) -> PyResult<Op> {
    let request = request
        .cast::<PyTuple>()
        .map_err(|_| PyTypeError::new_err("a request must be a tuple"))?;
    let name = text(request, 0)?;
    let path = || text(request, 1);
    Ok(match name.as_str() {
        "create" => {
            let flag_value: i32 = int(request, 4)?;
            let mode = CreateMode::from_flag(flag_value).ok_or_else(|| {
                PyValueError::new_err(format!("unknown create mode {flag_value}"))
            })?;
            Op::Create(CreateRequest {
                path: path()?,
                data: znode_data(request, 2)?,
                acl: acl(&item(request, 3)?)?,
                mode,
                ttl_ms: int(request, 5)?,
            })
        }
        "delete" => Op::Delete {
            path: path()?,
            version: int(request, 2)?,
        },
        "set_data" => Op::SetData {
            path: path()?,
            data: znode_data(request, 2)?,
            version: int(request, 3)?,
        },
        "set_acl" => Op::SetAcl {
            path: path()?,
            acl: acl(&item(request, 2)?)?,
            version: int(request, 3)?,
        },
        "check" => Op::Check {
            path: path()?,
            version: int(request, 2)?,
        },
        "multi" => {
            let mut ops = Vec::new();
            for inner in item(request, 1)?.try_iter()? {
                let inner = op(&inner?)?;
                if !inner.is_multi_write() {
                    return Err(PyValueError::new_err(
                        "a transaction holds only create, delete, set_data and check",
                    ));
                }
                ops.push(inner);
            }
            Op::Multi(ops)
        }
        "get_data" => Op::GetData {
            path: path()?,
            watch: flag(request, 2)?,
        },
        "exists" => Op::Exists {
            path: path()?,
            watch: flag(request, 2)?,
        },
        "get_children" => Op::GetChildren {
            path: path()?,
            watch: flag(request, 2)?,
        },
        "get_acl" => Op::GetAcl { path: path()? },
        "get_all_children_number" => Op::GetAllChildrenNumber { path: path()? },
        "sync" => Op::Sync { path: path()? },
        "get_ephemerals" => Op::GetEphemerals { prefix: path()? },
        "multi_read" => {
            let mut reads = Vec::new();
            for read in item(request, 1)?.try_iter()? {
                let (kind, path): (String, String) = read?
                    .extract()
                    .map_err(|_| PyTypeError::new_err("a read must be (kind, path)"))?;
                reads.push(match kind.as_str() {
                    "get_data" => ReadOp::GetData { path },
                    "get_children" => ReadOp::GetChildren { path },
                    other => {
                        return Err(PyValueError::new_err(format!(
                            "unknown read {other:?} (get_data or get_children)"
                        )))
                    }
                });
            }
            Op::MultiRead(reads)
        }
        "whoami" => Op::WhoAmI,
        "add_auth" => Op::AddAuth {
            scheme: text(request, 1)?,
            auth: data(request, 2)?,
        },
        "add_watch" => {
            let code: i32 = int(request, 2)?;
            Op::AddWatch {
                path: path()?,
                mode: AddWatchMode::from_code(code)
                    .ok_or_else(|| PyValueError::new_err(format!("unknown watch mode {code}")))?,
            }
        }
        "remove_watches" | "check_watches" => {
            let code: i32 = int(request, 2)?;
            let watcher_type = WatcherType::from_code(code)
                .ok_or_else(|| PyValueError::new_err(format!("unknown watcher type {code}")))?;
            if name == "remove_watches" {
                Op::RemoveWatches {
                    path: path()?,
                    watcher_type,
                }
            } else {
                Op::CheckWatches {
                    path: path()?,
                    watcher_type,
                }
            }
        }
        other => return Err(PyValueError::new_err(format!("unknown request {other:?}"))),
    })
}

/// A Stat as an 11-tuple in ZooKeeper's field order.
pub(crate) fn stat<'py>(py: Python<'py>, stat: &Stat) -> PyResult<Bound<'py, PyAny>> {
    (
        stat.czxid,
        stat.mzxid,
        stat.ctime,
        stat.mtime,
        stat.version,
        stat.cversion,
        stat.aversion,
        stat.ephemeral_owner,
        stat.data_length,
        stat.num_children,
        stat.pzxid,
    )
        .into_bound_py_any(py)
}

/// Znode data as Python sees it: bytes, or None for null data.
fn bytes<'py>(py: Python<'py>, data: &Option<Vec<u8>>) -> Bound<'py, PyAny> {
    match data {
        Some(data) => PyBytes::new(py, data).into_any(),
        None => py.None().into_bound(py),
    }
}

fn op_result<'py>(py: Python<'py>, result: &OpResult) -> PyResult<Bound<'py, PyAny>> {
    match result {
        OpResult::Create { path, stat: s } => ("create", path, stat(py, s)?).into_bound_py_any(py),
        OpResult::Delete => ("delete",).into_bound_py_any(py),
        OpResult::SetData(s) => ("set_data", stat(py, s)?).into_bound_py_any(py),
        OpResult::Check => ("check",).into_bound_py_any(py),
        OpResult::Error(code) => {
            ("error", code.map_or(0, |code| code as i32)).into_bound_py_any(py)
        }
    }
}

/// A reply as Python values (see the module doc for the shapes).
pub(crate) fn reply<'py>(py: Python<'py>, reply: &Reply) -> PyResult<Bound<'py, PyAny>> {
    match reply {
        Reply::Create { path, stat: s } => (path, stat(py, s)?).into_bound_py_any(py),
        Reply::Stat(s) => stat(py, s),
        Reply::Exists(None) | Reply::Done => Ok(py.None().into_bound(py)),
        Reply::Exists(Some(s)) => stat(py, s),
        Reply::Data { data, stat: s } => (bytes(py, data), stat(py, s)?).into_bound_py_any(py),
        Reply::Children { children, stat: s } => {
            (PyList::new(py, children)?, stat(py, s)?).into_bound_py_any(py)
        }
        Reply::Acl { acl, stat: s } => {
            let entries = acl.iter().map(|entry| {
                (
                    entry.perms.0,
                    entry.id.scheme.as_str(),
                    entry.id.id.as_str(),
                )
            });
            (PyList::new(py, entries)?, stat(py, s)?).into_bound_py_any(py)
        }
        Reply::Number(number) => number.into_bound_py_any(py),
        Reply::Paths(paths) => PyList::new(py, paths).map(Bound::into_any),
        Reply::Sync(path) => path.into_bound_py_any(py),
        Reply::Multi(results) => multi_results(py, results),
        Reply::MultiRead(results) => {
            let list = PyList::empty(py);
            for result in results {
                list.append(match result {
                    ReadResult::Data { data, stat: s } => {
                        ("data", bytes(py, data), stat(py, s)?).into_bound_py_any(py)?
                    }
                    ReadResult::Children(children) => {
                        ("children", PyList::new(py, children)?).into_bound_py_any(py)?
                    }
                    ReadResult::Error(code) => ("error", *code as i32).into_bound_py_any(py)?,
                })?;
            }
            Ok(list.into_any())
        }
        Reply::WhoAmI(infos) => {
            let infos = infos
                .iter()
                .map(|info| (info.auth_scheme.as_str(), info.user.as_str()));
            PyList::new(py, infos).map(Bound::into_any)
        }
    }
}

fn multi_results<'py>(py: Python<'py>, results: &[OpResult]) -> PyResult<Bound<'py, PyAny>> {
    let list = PyList::empty(py);
    for result in results {
        list.append(op_result(py, result)?)?;
    }
    Ok(list.into_any())
}

static FROM_NATIVE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The Python exception for a client error, built by `zookeeper.exceptions._from_native`.
pub(crate) fn error(py: Python<'_>, error: &Error) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let factory = FROM_NATIVE.import(py, "zookeeper.exceptions", "_from_native")?;
        let results = match error.multi_results() {
            Some(results) => multi_results(py, results)?,
            None => py.None().into_bound(py),
        };
        let exception =
            factory.call1((error.code() as i32, error.path(), results, error.detail()))?;
        Ok(PyErr::from_value(exception))
    };
    build().unwrap_or_else(|failure| failure)
}

/// The Python exception for a ZooKeeper code the bindings answer themselves (no server said
/// it: a member that did not serve in time is ConnectionLoss, as for a client).
pub(crate) fn error_code(py: Python<'_>, code: ErrorCode) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let factory = FROM_NATIVE.import(py, "zookeeper.exceptions", "_from_native")?;
        let exception = factory.call1((code as i32, py.None(), py.None()))?;
        Ok(PyErr::from_value(exception))
    };
    build().unwrap_or_else(|failure| failure)
}

/// A reply or error as `(result, None)` or `(None, exception)`, for completions.
pub(crate) fn outcome<'py>(
    py: Python<'py>,
    outcome: &Result<Reply, Error>,
) -> (Bound<'py, PyAny>, Bound<'py, PyAny>) {
    let none = || py.None().into_bound(py);
    match outcome {
        Ok(value) => match reply(py, value) {
            Ok(value) => (value, none()),
            Err(failure) => (none(), failure.into_value(py).into_bound(py).into_any()),
        },
        Err(failure) => (
            none(),
            error(py, failure).into_value(py).into_bound(py).into_any(),
        ),
    }
}
