//! The sequential specifications the simulation's histories are checked against: a register
//! written by compare-and-set on its version (setData with a version), and a queue of
//! sequential znodes (create with a sequence number, delete, list).

use std::collections::BTreeSet;

use crate::sim::linearizability::Model;

/// The register: /register's data and version.
pub struct Register;

/// What a register operation asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterInput {
    /// sync, then getData.
    Read,
    /// setData with `expected_version` (-1: any) to `value`.
    Write {
        /// The version it must find (-1: any).
        expected_version: i32,
        /// The new value.
        value: u64,
    },
}

/// What it answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterOutput {
    /// The value and version read.
    Read {
        /// The value.
        value: u64,
        /// Its version.
        version: i32,
    },
    /// The write took effect; the version it made.
    Written {
        /// The new version.
        version: i32,
    },
    /// BadVersion: the version was another.
    BadVersion,
    /// No answer (ConnectionLoss): it took effect or not.
    Unknown,
}

impl Model for Register {
    /// (value, version).
    type State = (u64, i32);
    type Input = RegisterInput;
    type Output = RegisterOutput;

    fn init(&self) -> (u64, i32) {
        (0, 0)
    }

    fn step(
        &self,
        &(value, version): &(u64, i32),
        input: &RegisterInput,
        output: &RegisterOutput,
    ) -> Option<(u64, i32)> {
        match (*input, *output) {
            (
                RegisterInput::Read,
                RegisterOutput::Read {
                    value: seen,
                    version: seen_version,
                },
            ) => (seen == value && seen_version == version).then_some((value, version)),
            (RegisterInput::Read, RegisterOutput::Unknown) => Some((value, version)),
            (
                RegisterInput::Write {
                    expected_version,
                    value: new,
                },
                output,
            ) => {
                let matches = expected_version == -1 || expected_version == version;
                match output {
                    RegisterOutput::Written { version: made } => {
                        (matches && made == version + 1).then_some((new, version + 1))
                    }
                    RegisterOutput::BadVersion => (!matches).then_some((value, version)),
                    RegisterOutput::Unknown if matches => Some((new, version + 1)),
                    RegisterOutput::Unknown => Some((value, version)),
                    RegisterOutput::Read { .. } => None,
                }
            }
            (RegisterInput::Read, _) => None,
        }
    }
}

/// The queue: /queue's sequential children.
pub struct Queue;

/// What a queue operation asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueInput {
    /// create /queue/item- (sequential).
    Enqueue,
    /// delete /queue/item-<sequence>.
    Remove(u32),
    /// sync, then getChildren.
    List,
}

/// What it answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueOutput {
    /// The sequence number the created znode got.
    Enqueued(u32),
    /// The znode was deleted.
    Removed,
    /// The znode was not there.
    NoNode,
    /// The sequence numbers listed.
    Listed(Vec<u32>),
    /// No answer (ConnectionLoss).
    Unknown,
}

/// (the parent's count of children created, which names the next sequential child, and the
/// children).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QueueState {
    /// Children ever created: ZooKeeper's sequence counter (the stored cversion; clients see
    /// twice that minus the children, see docs/design.md).
    pub cversion: u32,
    /// The children's sequence numbers.
    pub present: BTreeSet<u32>,
}

impl Model for Queue {
    type State = QueueState;
    type Input = QueueInput;
    type Output = QueueOutput;

    fn init(&self) -> QueueState {
        QueueState {
            cversion: 0,
            present: BTreeSet::new(),
        }
    }

    fn step(
        &self,
        state: &QueueState,
        input: &QueueInput,
        output: &QueueOutput,
    ) -> Option<QueueState> {
        let mut next = state.clone();
        match (input, output) {
            (QueueInput::Enqueue, QueueOutput::Enqueued(sequence)) => {
                if *sequence != state.cversion {
                    return None;
                }
                next.cversion += 1;
                next.present.insert(*sequence);
            }
            (QueueInput::Enqueue, QueueOutput::Unknown) => {
                next.present.insert(state.cversion);
                next.cversion += 1;
            }
            (QueueInput::Remove(sequence), QueueOutput::Removed) => {
                if !next.present.remove(sequence) {
                    return None;
                }
            }
            (QueueInput::Remove(sequence), QueueOutput::NoNode) => {
                if state.present.contains(sequence) {
                    return None;
                }
            }
            (QueueInput::Remove(sequence), QueueOutput::Unknown) => {
                next.present.remove(sequence);
            }
            (QueueInput::List, QueueOutput::Listed(listed)) => {
                if !listed.iter().copied().eq(state.present.iter().copied()) {
                    return None;
                }
            }
            (QueueInput::List, QueueOutput::Unknown) => {}
            _ => return None,
        }
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::linearizability::{check, Operation, Verdict};

    fn op<I, O>(call: u64, ret: Option<u64>, input: I, output: O) -> Operation<I, O> {
        Operation {
            call,
            ret,
            input,
            output,
        }
    }

    /// Guards against a register model that accepts two writes succeeding from one version.
    #[test]
    fn two_compare_and_sets_from_one_version_cannot_both_win() {
        let write = |value| RegisterInput::Write {
            expected_version: 0,
            value,
        };
        let history = [
            op(0, Some(3), write(1), RegisterOutput::Written { version: 1 }),
            op(1, Some(4), write(2), RegisterOutput::Written { version: 1 }),
        ];
        assert!(matches!(
            check(&Register, &history),
            Verdict::Violation { .. }
        ));
        let history = [
            op(0, Some(3), write(1), RegisterOutput::Written { version: 1 }),
            op(1, Some(4), write(2), RegisterOutput::BadVersion),
            op(
                5,
                Some(6),
                RegisterInput::Read,
                RegisterOutput::Read {
                    value: 1,
                    version: 1,
                },
            ),
        ];
        assert_eq!(check(&Register, &history), Verdict::Linearizable);
    }

    /// Guards against a queue that issues one sequence number twice or forgets an item.
    #[test]
    fn sequence_numbers_count_the_children_created() {
        let history = [
            op(0, Some(1), QueueInput::Enqueue, QueueOutput::Enqueued(0)),
            op(2, Some(3), QueueInput::Remove(0), QueueOutput::Removed),
            op(4, Some(5), QueueInput::Enqueue, QueueOutput::Enqueued(1)),
            op(6, Some(7), QueueInput::List, QueueOutput::Listed(vec![1])),
        ];
        assert_eq!(check(&Queue, &history), Verdict::Linearizable);
        let twice = [
            op(0, Some(1), QueueInput::Enqueue, QueueOutput::Enqueued(0)),
            op(2, Some(3), QueueInput::Enqueue, QueueOutput::Enqueued(0)),
        ];
        assert!(matches!(check(&Queue, &twice), Verdict::Violation { .. }));
        let forgotten = [
            op(0, Some(1), QueueInput::Enqueue, QueueOutput::Enqueued(0)),
            op(2, Some(3), QueueInput::List, QueueOutput::Listed(vec![])),
        ];
        assert!(matches!(
            check(&Queue, &forgotten),
            Verdict::Violation { .. }
        ));
    }
}
