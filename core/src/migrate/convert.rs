//! ZooKeeper's transactions and sessions in our terms: a logged ZooKeeper transaction becomes
//! the Txn our tree applies, and a session gets the password ZooKeeper gave its client.

use super::zk_log::{ZkTxn, ZkTxnHeader};
use crate::txn::{Txn, TxnOp};

/// ZooKeeper derives a session's password from its id and this fixed secret
/// (`ZooKeeperServer.superSecret`), so a client's password can be recomputed from its id.
const ZOOKEEPER_SUPER_SECRET: i64 = 0xB341_5C00;

/// The 16-byte password Apache ZooKeeper gave the client of `session_id`: the bytes of
/// `java.util.Random(session_id ^ superSecret).nextBytes`, so the client can resume on us.
pub fn zookeeper_password(session_id: i64) -> [u8; 16] {
    let mut random = JavaRandom::new(session_id ^ ZOOKEEPER_SUPER_SECRET);
    let mut password = [0u8; 16];
    for chunk in password.chunks_mut(4) {
        let mut value = random.next_int();
        for byte in chunk {
            *byte = value as u8;
            value >>= 8;
        }
    }
    password
}

/// java.util.Random's 48-bit linear congruential generator, as its documentation specifies.
struct JavaRandom {
    seed: i64,
}

impl JavaRandom {
    const MULTIPLIER: i64 = 0x5_DEEC_E66D;
    const ADDEND: i64 = 0xB;
    const MASK: i64 = (1 << 48) - 1;

    fn new(seed: i64) -> JavaRandom {
        JavaRandom {
            seed: (seed ^ Self::MULTIPLIER) & Self::MASK,
        }
    }

    fn next_int(&mut self) -> i32 {
        self.seed = (self
            .seed
            .wrapping_mul(Self::MULTIPLIER)
            .wrapping_add(Self::ADDEND))
            & Self::MASK;
        (self.seed >> 16) as i32
    }
}

/// The Txn our tree applies for a logged ZooKeeper transaction, or None when it changes
/// nothing in our tree: an error, a failed multi (its operations are errors), a reconfig
/// (each of our members writes /zookeeper/config itself).
pub fn to_txn(header: &ZkTxnHeader, txn: &ZkTxn) -> Option<Txn> {
    let op = to_op(header, txn)?;
    Some(Txn {
        time_ms: header.time_ms,
        op,
    })
}

fn to_op(header: &ZkTxnHeader, txn: &ZkTxn) -> Option<TxnOp> {
    Some(match txn {
        ZkTxn::CreateSession { timeout_ms } => TxnOp::CreateSession {
            session_id: header.session_id,
            timeout_ms: (*timeout_ms).max(0) as u32,
            password: zookeeper_password(header.session_id),
        },
        ZkTxn::CloseSession => TxnOp::CloseSession {
            session_id: header.session_id,
        },
        ZkTxn::Create {
            path,
            data,
            acl,
            ephemeral_owner,
            parent_cversion,
        } => TxnOp::Create {
            path: path.clone(),
            data: data.clone(),
            acl: acl.clone(),
            ephemeral_owner: *ephemeral_owner,
            parent_cversion: *parent_cversion,
        },
        ZkTxn::Delete { path } => TxnOp::Delete { path: path.clone() },
        ZkTxn::SetData {
            path,
            data,
            version,
        } => TxnOp::SetData {
            path: path.clone(),
            data: data.clone(),
            version: *version,
        },
        ZkTxn::SetAcl { path, acl, version } => TxnOp::SetAcl {
            path: path.clone(),
            acl: acl.clone(),
            version: *version,
        },
        ZkTxn::Check { path } => TxnOp::Check { path: path.clone() },
        ZkTxn::Reconfig | ZkTxn::Error => return None,
        ZkTxn::Multi(ops) => {
            if ops.iter().any(|op| matches!(op, ZkTxn::Error)) {
                return None;
            }
            TxnOp::Multi(
                ops.iter()
                    .map(|op| to_op(header, op))
                    .collect::<Option<Vec<_>>>()?,
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_random_matches_the_jdk() {
        // new java.util.Random(42).nextInt() == -1170105035, then 234785527.
        let mut random = JavaRandom::new(42);
        assert_eq!(random.next_int(), -1_170_105_035);
        assert_eq!(random.next_int(), 234_785_527);
    }

    #[test]
    fn a_failed_multi_changes_nothing() {
        let header = ZkTxnHeader {
            session_id: 1,
            zxid: 5,
            time_ms: 0,
        };
        let failed = ZkTxn::Multi(vec![ZkTxn::Error, ZkTxn::Error]);
        assert!(to_txn(&header, &failed).is_none());
    }
}
