//! ZooKeeper's error codes (`KeeperException.Code`), with their wire numbers.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A ZooKeeper result code other than `Ok`. The discriminant is the number on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(i32)]
pub enum ErrorCode {
    /// A server-side failure that is not the client's fault.
    SystemError = -1,
    /// In a failed multi: this op came after the op that failed, so it was not attempted.
    RuntimeInconsistency = -2,
    /// The server's state is inconsistent.
    DataInconsistency = -3,
    /// The connection to the server was lost.
    ConnectionLoss = -4,
    /// A request or reply could not be encoded or decoded.
    MarshallingError = -5,
    /// The operation is not implemented by this server.
    Unimplemented = -6,
    /// The operation timed out.
    OperationTimeout = -7,
    /// Invalid arguments: a bad path, a TTL out of range, a reserved znode.
    BadArguments = -8,
    /// The session id is not known to the server.
    UnknownSession = -12,
    /// A reconfiguration's new ensemble has no quorum.
    NewConfigNoQuorum = -13,
    /// Another reconfiguration is in progress.
    ReconfigInProgress = -14,
    /// The base of the API error range.
    ApiError = -100,
    /// The znode does not exist.
    NoNode = -101,
    /// The session's identities lack the permission the znode's ACL demands.
    NoAuth = -102,
    /// The expected version does not match the znode's.
    BadVersion = -103,
    /// Ephemeral znodes cannot have children.
    NoChildrenForEphemerals = -108,
    /// The znode already exists.
    NodeExists = -110,
    /// The znode has children.
    NotEmpty = -111,
    /// The session has expired or was closed.
    SessionExpired = -112,
    /// An invalid callback was given.
    InvalidCallback = -113,
    /// The ACL is empty or names an unknown scheme or a malformed id.
    InvalidAcl = -114,
    /// Authentication failed.
    AuthFailed = -115,
    /// The session moved to another server.
    SessionMoved = -118,
    /// A write was sent to a read-only server.
    NotReadOnly = -119,
    /// An ephemeral was requested on a local session.
    EphemeralOnLocalSession = -120,
    /// The watch to remove or check does not exist.
    NoWatcher = -121,
    /// The request timed out.
    RequestTimeout = -122,
    /// Reconfiguration is disabled.
    ReconfigDisabled = -123,
    /// The session was closed because SASL authentication is required.
    SessionClosedRequireSaslAuth = -124,
    /// A quota or limit would be exceeded (for example the per-session ephemeral cap).
    QuotaExceeded = -125,
    /// The operation was throttled.
    ThrottledOp = -127,
}

impl ErrorCode {
    /// Every code, for mapping tables at the front ends.
    pub const ALL: [ErrorCode; 30] = [
        Self::SystemError,
        Self::RuntimeInconsistency,
        Self::DataInconsistency,
        Self::ConnectionLoss,
        Self::MarshallingError,
        Self::Unimplemented,
        Self::OperationTimeout,
        Self::BadArguments,
        Self::UnknownSession,
        Self::NewConfigNoQuorum,
        Self::ReconfigInProgress,
        Self::ApiError,
        Self::NoNode,
        Self::NoAuth,
        Self::BadVersion,
        Self::NoChildrenForEphemerals,
        Self::NodeExists,
        Self::NotEmpty,
        Self::SessionExpired,
        Self::InvalidCallback,
        Self::InvalidAcl,
        Self::AuthFailed,
        Self::SessionMoved,
        Self::NotReadOnly,
        Self::EphemeralOnLocalSession,
        Self::NoWatcher,
        Self::RequestTimeout,
        Self::ReconfigDisabled,
        Self::SessionClosedRequireSaslAuth,
        Self::QuotaExceeded,
    ];

    /// The wire number.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The code for a wire number; `None` for 0 (Ok) and for numbers ZooKeeper does not define.
    pub fn from_code(code: i32) -> Option<ErrorCode> {
        if code == Self::ThrottledOp as i32 {
            return Some(Self::ThrottledOp);
        }
        Self::ALL.iter().copied().find(|c| c.code() == code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({})", self, self.code())
    }
}

impl std::error::Error for ErrorCode {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_numbers_round_trip() {
        for code in ErrorCode::ALL
            .iter()
            .copied()
            .chain([ErrorCode::ThrottledOp])
        {
            assert_eq!(ErrorCode::from_code(code.code()), Some(code));
        }
        assert_eq!(ErrorCode::NoNode.code(), -101);
        assert_eq!(ErrorCode::from_code(0), None);
        assert_eq!(ErrorCode::from_code(-126), None);
    }
}
