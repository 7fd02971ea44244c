//! Client-side checks made before a request is sent, as ZooKeeper's Java client makes them.

use super::{Error, Result};
use crate::op::{Op, ReadOp, Reply};
use crate::proto::{CreateMode, ErrorCode};
use crate::tree::path;

pub(super) fn unexpected<T>(reply: Reply) -> Result<T> {
    debug_assert!(false, "unexpected reply {reply:?}");
    Err(Error::new(ErrorCode::MarshallingError, None))
}

/// Client-side path check, as ZooKeeper's Java client does before sending.
pub(super) fn validate(path: &str) -> Result<()> {
    path::validate(path).map_err(|code| Error::new(code, Some(path)))
}

/// A sequential create may end in '/': the suffix completes the name.
pub(super) fn validate_create_path(path: &str, mode: CreateMode) -> Result<()> {
    if mode.is_sequential() {
        validate(&format!("{path}1")).map_err(|_| Error::new(ErrorCode::BadArguments, Some(path)))
    } else {
        validate(path)
    }
}

pub(super) fn validate_op(op: &Op) -> Result<()> {
    match op {
        Op::Create(request) => validate_create_path(&request.path, request.mode),
        Op::Delete { path, .. } | Op::SetData { path, .. } | Op::Check { path, .. } => {
            validate(path)
        }
        _ => Ok(()),
    }
}

/// Checks every path an op carries, as the typed calls do.
pub(super) fn validate_request(op: &Op) -> Result<()> {
    match op {
        Op::Multi(ops) => ops.iter().try_for_each(validate_op),
        Op::MultiRead(reads) => reads.iter().try_for_each(|read| {
            let (ReadOp::GetData { path, .. } | ReadOp::GetChildren { path, .. }) = read;
            validate(path)
        }),
        Op::Create(_) | Op::Delete { .. } | Op::SetData { .. } | Op::Check { .. } => {
            validate_op(op)
        }
        // Pings are the client's own business (their replies carry the ping xid, which no
        // caller could match), and a refusal is the server's name for what it cannot read.
        Op::Ping | Op::Refused(_) => Err(Error::new(ErrorCode::BadArguments, None)),
        other => other.path().map_or(Ok(()), validate),
    }
}
