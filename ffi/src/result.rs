//! `zk_result`, the one result type of every exported function: ZooKeeper's own error numbers,
//! plus codes only the C ABI needs, outside ZooKeeper's range; and the one place errors of the
//! Rust API are mapped to it.

use std::ffi::c_char;

use zookeeper_core::client::recipes::RecipeError;
use zookeeper_core::{Error, ErrorCode};

/// What a call did. `ZK_OK` (0) is success; ZooKeeper's errors keep ZooKeeper's numbers
/// (`ZK_NONODE` is -101, as `ZNONODE` in ZooKeeper's own C client); codes from -1000 down
/// come from this library's C boundary and never from a server.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum zk_result {
    /// Success.
    ZK_OK = 0,
    /// A server-side failure that is not the client's fault.
    ZK_SYSTEMERROR = -1,
    /// In a failed multi: this op came after the failing one and was not attempted.
    ZK_RUNTIMEINCONSISTENCY = -2,
    /// The server's state is inconsistent.
    ZK_DATAINCONSISTENCY = -3,
    /// The connection to the server was lost; the call may or may not have happened.
    ZK_CONNECTIONLOSS = -4,
    /// A request or reply could not be encoded or decoded.
    ZK_MARSHALLINGERROR = -5,
    /// The server does not implement the operation.
    ZK_UNIMPLEMENTED = -6,
    /// The operation timed out.
    ZK_OPERATIONTIMEOUT = -7,
    /// An argument is invalid (a malformed path, an oversize value).
    ZK_BADARGUMENTS = -8,
    /// The session is unknown to the server.
    ZK_UNKNOWNSESSION = -12,
    /// A reconfiguration has no quorum.
    ZK_NEWCONFIGNOQUORUM = -13,
    /// A reconfiguration is in progress.
    ZK_RECONFIGINPROGRESS = -14,
    /// A generic API error.
    ZK_APIERROR = -100,
    /// The znode does not exist.
    ZK_NONODE = -101,
    /// The session lacks the permission.
    ZK_NOAUTH = -102,
    /// The expected version does not match.
    ZK_BADVERSION = -103,
    /// Ephemeral znodes cannot have children.
    ZK_NOCHILDRENFOREPHEMERALS = -108,
    /// The znode already exists.
    ZK_NODEEXISTS = -110,
    /// The znode has children.
    ZK_NOTEMPTY = -111,
    /// The session expired or was closed.
    ZK_SESSIONEXPIRED = -112,
    /// An invalid callback.
    ZK_INVALIDCALLBACK = -113,
    /// The ACL is invalid.
    ZK_INVALIDACL = -114,
    /// Authentication failed; the session serves nothing more.
    ZK_AUTHFAILED = -115,
    /// The session moved to another server.
    ZK_SESSIONMOVED = -118,
    /// A write on a read-only server.
    ZK_NOTREADONLY = -119,
    /// An ephemeral on a local session.
    ZK_EPHEMERALONLOCALSESSION = -120,
    /// No such watch.
    ZK_NOWATCHER = -121,
    /// The request timed out.
    ZK_REQUESTTIMEOUT = -122,
    /// Reconfiguration is disabled.
    ZK_RECONFIGDISABLED = -123,
    /// The session was closed because SASL authentication is required.
    ZK_SESSIONCLOSEDREQUIRESASLAUTH = -124,
    /// A quota or limit would be exceeded.
    ZK_QUOTAEXCEEDED = -125,
    /// The operation was throttled.
    ZK_THROTTLEDOP = -127,
    /// A pointer argument that must not be NULL was NULL.
    ZK_NULL_ARGUMENT = -1001,
    /// A string argument is not valid UTF-8.
    ZK_INVALID_UTF8 = -1002,
    /// The library failed inside (a bug); the call did not complete. Nothing was unwound
    /// into the caller.
    ZK_PANIC = -1003,
    /// The caller's buffer is too small; nothing was written.
    ZK_BUFFER_TOO_SMALL = -1004,
    /// The handle was closed or stopped before this call.
    ZK_CLOSED_HANDLE = -1005,
    /// A numeric argument is out of its range (an unknown mode, a negative count).
    ZK_INVALID_ARGUMENT = -1006,
    /// A recipe's wait (lock, lease) ran past its timeout.
    ZK_TIMED_OUT = -1007,
    /// A recipe's wait was cancelled.
    ZK_CANCELLED = -1008,
    /// A semaphore's znode stores another lease count than the caller asked for.
    ZK_LEASE_MISMATCH = -1009,
    /// The call does not fit the handle's state (starting a leader latch twice, cache
    /// statistics without a cache).
    ZK_INVALID_STATE = -1010,
    /// A server could not start (configuration, data directory, port in use).
    ZK_START_FAILED = -1011,
    /// The server serves in-process clients only: it has no address.
    ZK_NOT_LISTENING = -1012,
    /// A limit of this library was reached (distinct watcher callback and userdata pairs
    /// one client watches with at once); nothing was sent.
    ZK_LIMIT_EXCEEDED = -1013,
}

impl From<ErrorCode> for zk_result {
    fn from(code: ErrorCode) -> zk_result {
        use zk_result::*;
        match code {
            ErrorCode::SystemError => ZK_SYSTEMERROR,
            ErrorCode::RuntimeInconsistency => ZK_RUNTIMEINCONSISTENCY,
            ErrorCode::DataInconsistency => ZK_DATAINCONSISTENCY,
            ErrorCode::ConnectionLoss => ZK_CONNECTIONLOSS,
            ErrorCode::MarshallingError => ZK_MARSHALLINGERROR,
            ErrorCode::Unimplemented => ZK_UNIMPLEMENTED,
            ErrorCode::OperationTimeout => ZK_OPERATIONTIMEOUT,
            ErrorCode::BadArguments => ZK_BADARGUMENTS,
            ErrorCode::UnknownSession => ZK_UNKNOWNSESSION,
            ErrorCode::NewConfigNoQuorum => ZK_NEWCONFIGNOQUORUM,
            ErrorCode::ReconfigInProgress => ZK_RECONFIGINPROGRESS,
            ErrorCode::ApiError => ZK_APIERROR,
            ErrorCode::NoNode => ZK_NONODE,
            ErrorCode::NoAuth => ZK_NOAUTH,
            ErrorCode::BadVersion => ZK_BADVERSION,
            ErrorCode::NoChildrenForEphemerals => ZK_NOCHILDRENFOREPHEMERALS,
            ErrorCode::NodeExists => ZK_NODEEXISTS,
            ErrorCode::NotEmpty => ZK_NOTEMPTY,
            ErrorCode::SessionExpired => ZK_SESSIONEXPIRED,
            ErrorCode::InvalidCallback => ZK_INVALIDCALLBACK,
            ErrorCode::InvalidAcl => ZK_INVALIDACL,
            ErrorCode::AuthFailed => ZK_AUTHFAILED,
            ErrorCode::SessionMoved => ZK_SESSIONMOVED,
            ErrorCode::NotReadOnly => ZK_NOTREADONLY,
            ErrorCode::EphemeralOnLocalSession => ZK_EPHEMERALONLOCALSESSION,
            ErrorCode::NoWatcher => ZK_NOWATCHER,
            ErrorCode::RequestTimeout => ZK_REQUESTTIMEOUT,
            ErrorCode::ReconfigDisabled => ZK_RECONFIGDISABLED,
            ErrorCode::SessionClosedRequireSaslAuth => ZK_SESSIONCLOSEDREQUIRESASLAUTH,
            ErrorCode::QuotaExceeded => ZK_QUOTAEXCEEDED,
            ErrorCode::ThrottledOp => ZK_THROTTLEDOP,
        }
    }
}

impl From<&Error> for zk_result {
    fn from(error: &Error) -> zk_result {
        error.code().into()
    }
}

impl From<RecipeError> for zk_result {
    fn from(error: RecipeError) -> zk_result {
        match error {
            RecipeError::ZooKeeper(error) => (&error).into(),
            RecipeError::Timeout => zk_result::ZK_TIMED_OUT,
            RecipeError::Cancelled => zk_result::ZK_CANCELLED,
            RecipeError::NoSession => zk_result::ZK_CLOSED_HANDLE,
            RecipeError::LeaseMismatch { .. } => zk_result::ZK_LEASE_MISMATCH,
            RecipeError::InvalidState(_) => zk_result::ZK_INVALID_STATE,
        }
    }
}

/// What `zk_result_message` says about a code that is not a `zk_result` value.
const UNKNOWN: &str = "unknown result code\0";

fn message(result: i32) -> &'static str {
    use zk_result::*;
    let known = [
        (ZK_OK, "ok\0"),
        (ZK_SYSTEMERROR, "system error\0"),
        (ZK_RUNTIMEINCONSISTENCY, "runtime inconsistency\0"),
        (ZK_DATAINCONSISTENCY, "data inconsistency\0"),
        (ZK_CONNECTIONLOSS, "connection loss\0"),
        (ZK_MARSHALLINGERROR, "marshalling error\0"),
        (ZK_UNIMPLEMENTED, "unimplemented\0"),
        (ZK_OPERATIONTIMEOUT, "operation timeout\0"),
        (ZK_BADARGUMENTS, "bad arguments\0"),
        (ZK_UNKNOWNSESSION, "unknown session\0"),
        (ZK_NEWCONFIGNOQUORUM, "new config has no quorum\0"),
        (ZK_RECONFIGINPROGRESS, "reconfig in progress\0"),
        (ZK_APIERROR, "api error\0"),
        (ZK_NONODE, "no node\0"),
        (ZK_NOAUTH, "not authenticated\0"),
        (ZK_BADVERSION, "bad version\0"),
        (ZK_NOCHILDRENFOREPHEMERALS, "no children for ephemerals\0"),
        (ZK_NODEEXISTS, "node exists\0"),
        (ZK_NOTEMPTY, "not empty\0"),
        (ZK_SESSIONEXPIRED, "session expired\0"),
        (ZK_INVALIDCALLBACK, "invalid callback\0"),
        (ZK_INVALIDACL, "invalid acl\0"),
        (ZK_AUTHFAILED, "authentication failed\0"),
        (ZK_SESSIONMOVED, "session moved\0"),
        (
            ZK_NOTREADONLY,
            "state-changing request is passed to read-only server\0",
        ),
        (ZK_EPHEMERALONLOCALSESSION, "ephemeral on local session\0"),
        (ZK_NOWATCHER, "no watcher\0"),
        (ZK_REQUESTTIMEOUT, "request timeout\0"),
        (ZK_RECONFIGDISABLED, "reconfig disabled\0"),
        (
            ZK_SESSIONCLOSEDREQUIRESASLAUTH,
            "session closed: SASL authentication required\0",
        ),
        (ZK_QUOTAEXCEEDED, "quota exceeded\0"),
        (ZK_THROTTLEDOP, "operation throttled\0"),
        (ZK_NULL_ARGUMENT, "a required pointer argument is NULL\0"),
        (ZK_INVALID_UTF8, "a string argument is not valid UTF-8\0"),
        (ZK_PANIC, "internal failure (panic) inside zookeeper-rs\0"),
        (ZK_BUFFER_TOO_SMALL, "the buffer is too small\0"),
        (ZK_CLOSED_HANDLE, "the handle is closed\0"),
        (ZK_INVALID_ARGUMENT, "an argument is out of range\0"),
        (ZK_TIMED_OUT, "the wait timed out\0"),
        (ZK_CANCELLED, "the wait was cancelled\0"),
        (ZK_LEASE_MISMATCH, "the semaphore has another lease count\0"),
        (
            ZK_INVALID_STATE,
            "the call does not fit the handle's state\0",
        ),
        (ZK_START_FAILED, "the server could not start\0"),
        (ZK_NOT_LISTENING, "the server has no client port\0"),
        (ZK_LIMIT_EXCEEDED, "a limit of the library was reached\0"),
    ];
    known
        .iter()
        .find(|(code, _)| *code as i32 == result)
        .map_or(UNKNOWN, |(_, text)| text)
}

/// A static, NUL-terminated English description of `result` (any integer: unknown codes get
/// "unknown result code"). Never NULL; never freed.
///
/// Thread safety: callable from any thread.
#[no_mangle]
pub extern "C" fn zk_result_message(result: i32) -> *const c_char {
    message(result).as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zookeeper_codes_keep_their_numbers() {
        for code in ErrorCode::ALL
            .iter()
            .copied()
            .chain([ErrorCode::ThrottledOp])
        {
            assert_eq!(zk_result::from(code) as i32, code.code(), "{code:?}");
        }
    }

    #[test]
    fn every_code_has_its_own_message() {
        assert_eq!(message(0), "ok\0");
        assert_eq!(message(-101), "no node\0");
        assert_eq!(message(12345), UNKNOWN);
        assert_eq!(
            message(-1003),
            "internal failure (panic) inside zookeeper-rs\0"
        );
    }
}
