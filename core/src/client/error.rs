//! The native client's error: a ZooKeeper code, the path it concerns, and a failed multi's results.

use std::fmt;

use crate::op::OpResult;
use crate::proto::ErrorCode;

/// An operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    path: Option<String>,
    multi_results: Option<Vec<OpResult>>,
    detail: Option<String>,
}

impl Error {
    pub(crate) fn new(code: ErrorCode, path: Option<&str>) -> Error {
        Error {
            code,
            path: path.map(str::to_string),
            multi_results: None,
            detail: None,
        }
    }

    /// The same error, with what the code alone does not say (why no server could be reached).
    pub(crate) fn with_detail(mut self, detail: String) -> Error {
        self.detail = Some(detail);
        self
    }

    pub(crate) fn multi(code: ErrorCode, results: Vec<OpResult>) -> Error {
        Error {
            code,
            path: None,
            multi_results: Some(results),
            detail: None,
        }
    }

    /// ZooKeeper's code for the failure.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The path the failed operation concerned, when it had one.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// What the code alone does not say, such as why a connection failed ("TLS handshake with
    /// 127.0.0.1:2281 failed: invalid peer certificate: UnknownIssuer").
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// For a failed multi: every op's result (see `OpResult::Error`).
    pub fn multi_results(&self) -> Option<&[OpResult]> {
        self.multi_results.as_deref()
    }
}

impl From<ErrorCode> for Error {
    fn from(code: ErrorCode) -> Error {
        Error::new(code, None)
    }
}

impl PartialEq<ErrorCode> for Error {
    fn eq(&self, code: &ErrorCode) -> bool {
        self.code == *code
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{} for {path}", self.code)?,
            None => write!(f, "{}", self.code)?,
        }
        match &self.detail {
            Some(detail) => write!(f, ": {detail}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.code)
    }
}

/// The native client's result type.
pub type Result<T> = std::result::Result<T, Error>;
