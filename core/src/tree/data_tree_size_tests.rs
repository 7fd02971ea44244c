//! Guards against the running data size drifting from what a scan of the tree gives.

use super::tests::{create_op, delete, txn, SESSION_A};
use super::*;

fn scanned(tree: &DataTree) -> u64 {
    tree.nodes
        .iter()
        .map(|node| node_size_bytes(node.path(), node.data()))
        .sum()
}

#[test]
fn the_running_data_size_follows_creates_sets_deletes_and_session_closes() {
    let mut tree = DataTree::new();
    // "/zookeeper", "/zookeeper/quota", "/zookeeper/config"; the root counts nothing.
    assert_eq!(tree.approximate_data_size(), 10 + 16 + 17);
    let op = create_op(&tree, "/app", b"hello", 0);
    tree.apply(1, &txn(1, op));
    assert_eq!(tree.approximate_data_size(), 43 + 4 + 5);
    let set = TxnOp::SetData {
        path: "/app".into(),
        data: Some(b"hi".to_vec()),
        version: 1,
    };
    tree.apply(2, &txn(2, set));
    assert_eq!(tree.approximate_data_size(), 43 + 4 + 2);
    let session = TxnOp::CreateSession {
        session_id: SESSION_A,
        timeout_ms: 10_000,
        password: [0; 16],
    };
    tree.apply(3, &txn(3, session));
    let op = create_op(&tree, "/app/e", b"xyz", SESSION_A);
    tree.apply(4, &txn(4, op));
    assert_eq!(tree.approximate_data_size(), scanned(&tree));
    let close = TxnOp::CloseSession {
        session_id: SESSION_A,
    };
    tree.apply(5, &txn(5, close));
    delete(&mut tree, 6, "/app");
    assert_eq!(tree.approximate_data_size(), 43);
    assert_eq!(tree.approximate_data_size(), scanned(&tree));
}
