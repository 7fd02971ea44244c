//! The request statistics the four-letter words report per connection (cons), kept as
//! ZooKeeper's `ServerCnxn` keeps them; server-wide figures live in the engine's metrics.

use std::time::Duration;

use crate::proto::OpCode;

/// One connection's last response and its latencies (`ServerCnxn.updateStatsForResponse`).
#[derive(Debug)]
pub(crate) struct ResponseStats {
    /// ZooKeeper's short name of the last operation ("NA" before any).
    pub(crate) last_op: &'static str,
    /// The last non-negative xid (pings and notifications have negative ones); -1 for none.
    pub(crate) last_cxid: i64,
    pub(crate) last_zxid: i64,
    /// On the engine's monotonic clock, as ZooKeeper's elapsed-time clock.
    pub(crate) last_response_ms: u64,
    pub(crate) last_latency_ms: u64,
    pub(crate) min_latency_ms: u64,
    pub(crate) max_latency_ms: u64,
    pub(crate) total_latency_ms: u64,
    pub(crate) count: u64,
}

impl Default for ResponseStats {
    fn default() -> Self {
        ResponseStats {
            last_op: "NA",
            last_cxid: -1,
            last_zxid: -1,
            last_response_ms: 0,
            last_latency_ms: 0,
            min_latency_ms: u64::MAX,
            max_latency_ms: 0,
            total_latency_ms: 0,
            count: 0,
        }
    }
}

impl ResponseStats {
    pub(crate) fn record(
        &mut self,
        op: &'static str,
        xid: i32,
        zxid: i64,
        now_ms: u64,
        latency_ms: u64,
    ) {
        if xid >= 0 {
            self.last_cxid = xid.into();
        }
        self.last_op = op;
        self.last_zxid = zxid;
        self.last_response_ms = now_ms;
        self.last_latency_ms = latency_ms;
        self.min_latency_ms = self.min_latency_ms.min(latency_ms);
        self.max_latency_ms = self.max_latency_ms.max(latency_ms);
        self.total_latency_ms += latency_ms;
        self.count += 1;
    }

    pub(crate) fn min_latency_ms(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min_latency_ms
        }
    }

    /// Whole milliseconds, as ZooKeeper prints a connection's average.
    pub(crate) fn avg_latency_ms(&self) -> u64 {
        self.total_latency_ms.checked_div(self.count).unwrap_or(0)
    }
}

/// Whole milliseconds, as ZooKeeper measures latency.
pub(crate) fn whole_ms(elapsed: Duration) -> u64 {
    elapsed.as_millis().try_into().unwrap_or(u64::MAX)
}

/// True for the requests ZooKeeper turns into a Txn, whose latency is `updatelatency`; the
/// rest (pings included) count as `readlatency`.
pub(crate) fn is_write(opcode: i32) -> bool {
    matches!(
        OpCode::from_code(opcode),
        Some(
            OpCode::Create
                | OpCode::Create2
                | OpCode::CreateContainer
                | OpCode::CreateTtl
                | OpCode::Delete
                | OpCode::DeleteContainer
                | OpCode::SetData
                | OpCode::SetAcl
                | OpCode::Check
                | OpCode::Multi
                | OpCode::Reconfig
                | OpCode::CreateSession
                | OpCode::CloseSession
        )
    )
}

/// ZooKeeper's `FinalRequestProcessor` name for an opcode, shown by cons as `lop`; `None` for
/// packets ZooKeeper answers before that stage (auth, sasl), which leave the stats alone.
pub(crate) fn op_name(opcode: i32) -> Option<&'static str> {
    let Some(opcode) = OpCode::from_code(opcode) else {
        return Some("NA");
    };
    Some(match opcode {
        OpCode::Ping => "PING",
        OpCode::CreateSession => "SESS",
        OpCode::Multi => "MULT",
        OpCode::MultiRead => "MLTR",
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => "CREA",
        OpCode::Delete | OpCode::DeleteContainer => "DELE",
        OpCode::SetData => "SETD",
        OpCode::Reconfig => "RECO",
        OpCode::SetAcl => "SETA",
        OpCode::CloseSession => "CLOS",
        OpCode::Sync => "SYNC",
        OpCode::Check => "CHEC",
        OpCode::Exists => "EXIS",
        OpCode::GetData => "GETD",
        OpCode::SetWatches => "SETW",
        OpCode::SetWatches2 => "STW2",
        OpCode::AddWatch => "ADDW",
        OpCode::GetAcl => "GETA",
        OpCode::GetChildren | OpCode::GetChildren2 => "GETC",
        OpCode::GetAllChildrenNumber => "GETACN",
        OpCode::CheckWatches => "CHKW",
        OpCode::RemoveWatches => "REMW",
        OpCode::WhoAmI => "HOMI",
        OpCode::GetEphemerals => "GETE",
        OpCode::Auth | OpCode::Sasl => return None,
        OpCode::Notification | OpCode::Error => "NA",
    })
}

#[cfg(test)]
mod tests {
    //! Guards against latency figures that differ from ZooKeeper's in rounding or empty values.

    use super::*;

    #[test]
    fn an_empty_connection_reports_zeros() {
        let stats = ResponseStats::default();
        assert_eq!((stats.min_latency_ms(), stats.avg_latency_ms()), (0, 0));
    }

    #[test]
    fn a_connection_keeps_its_last_real_cxid() {
        let mut stats = ResponseStats::default();
        stats.record("GETD", 7, 0x10, 100, 2);
        stats.record("PING", -2, 0x11, 200, 0);
        assert_eq!(
            (stats.last_op, stats.last_cxid, stats.last_zxid),
            ("PING", 7, 0x11)
        );
        assert_eq!(
            (
                stats.min_latency_ms(),
                stats.avg_latency_ms(),
                stats.max_latency_ms
            ),
            (0, 1, 2)
        );
    }

    #[test]
    fn opcodes_get_zookeepers_short_names() {
        assert_eq!(op_name(OpCode::GetChildren2.code()), Some("GETC"));
        assert_eq!(op_name(OpCode::Ping.code()), Some("PING"));
        assert_eq!(op_name(OpCode::Auth.code()), None);
        assert_eq!(op_name(9999), Some("NA"));
    }
}
