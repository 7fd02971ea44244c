//! A linearizability checker (Wing & Gong's search with Lowe's memoization, as porcupine and
//! knossos do it): is there a total order of the operations, consistent with their real-time
//! order, in which a sequential model gives every answer the history recorded? Operations
//! whose outcome is unknown (the client heard ConnectionLoss) may take effect at any point
//! after they began, or never.

use std::collections::HashSet;
use std::hash::Hash;

/// A sequential specification.
pub trait Model {
    /// The object's state; hashed to prune searches that reach a state twice.
    type State: Clone + Eq + Hash;
    /// What an operation asks.
    type Input;
    /// What it answered.
    type Output;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after `input` answered `output` in `state`, or None when that answer is
    /// impossible there. An unknown outcome must be accepted either way (taking effect or
    /// not).
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: &Self::Output,
    ) -> Option<Self::State>;
}

/// One operation of a history: asked at `call`, answered at `ret` (None: never answered, its
/// outcome unknown). Times are any totally ordered ticks; a call at the same tick as another
/// operation's return comes after it.
#[derive(Clone, Debug)]
pub struct Operation<I, O> {
    /// When it was asked.
    pub call: u64,
    /// When it was answered (None: unknown).
    pub ret: Option<u64>,
    /// What was asked.
    pub input: I,
    /// What was answered.
    pub output: O,
}

/// The bound on search steps before the checker gives up (answering Unknown).
pub const SEARCH_STEPS_MAX: u64 = 20_000_000;

/// What the checker found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A linearization exists.
    Linearizable,
    /// None exists. `longest` is the most operations any attempted order could explain, and
    /// `stuck` the operations that could not come next there.
    Violation {
        /// Operations in the longest order explained.
        longest: Vec<usize>,
    },
    /// The search took longer than `SEARCH_STEPS_MAX`.
    GaveUp,
}

#[derive(Clone, Copy)]
struct Event {
    operation: usize,
    is_call: bool,
    /// Neighbours in the doubly linked list of events still to linearize.
    previous: usize,
    next: usize,
    /// The matching call/return event.
    partner: usize,
}

const NONE: usize = usize::MAX;

/// Checks `history` against `model`.
pub fn check<M: Model>(model: &M, history: &[Operation<M::Input, M::Output>]) -> Verdict {
    let count = history.len();
    if count == 0 {
        return Verdict::Linearizable;
    }
    // Events sorted by time; returns before calls at the same time; unknown returns last.
    let mut order: Vec<(u64, u8, usize, bool)> = Vec::with_capacity(2 * count + 1);
    for (index, operation) in history.iter().enumerate() {
        order.push((operation.call, 1, index, true));
        order.push((operation.ret.unwrap_or(u64::MAX), 0, index, false));
    }
    order.sort_unstable();
    // Event 0 is a sentinel head.
    let mut events = vec![Event {
        operation: NONE,
        is_call: false,
        previous: NONE,
        next: 1,
        partner: NONE,
    }];
    let mut call_of = vec![NONE; count];
    let mut return_of = vec![NONE; count];
    for (position, &(_, _, operation, is_call)) in order.iter().enumerate() {
        let id = position + 1;
        events.push(Event {
            operation,
            is_call,
            previous: id - 1,
            next: if position + 1 < order.len() {
                id + 1
            } else {
                NONE
            },
            partner: NONE,
        });
        if is_call {
            call_of[operation] = id;
        } else {
            return_of[operation] = id;
        }
    }
    for operation in 0..count {
        events[call_of[operation]].partner = return_of[operation];
        events[return_of[operation]].partner = call_of[operation];
    }

    let words = count.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, M::State)> = HashSet::new();
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut state = model.init();
    let mut longest: Vec<usize> = Vec::new();
    let mut entry = events[0].next;
    let mut steps = 0u64;
    while events[0].next != NONE {
        steps += 1;
        if steps > SEARCH_STEPS_MAX {
            return Verdict::GaveUp;
        }
        let event = events[entry];
        if event.is_call {
            let operation = &history[event.operation];
            if let Some(next_state) = model.step(&state, &operation.input, &operation.output) {
                let mut next_linearized = linearized.clone();
                next_linearized[event.operation / 64] |= 1 << (event.operation % 64);
                if cache.insert((next_linearized.clone(), next_state.clone())) {
                    stack.push((entry, state));
                    state = next_state;
                    linearized = next_linearized;
                    lift(&mut events, entry);
                    if stack.len() > longest.len() {
                        longest = stack.iter().map(|(id, _)| events[*id].operation).collect();
                    }
                    entry = events[0].next;
                    continue;
                }
            }
            entry = event.next;
        } else {
            // A return reached before its call was linearized: undo the newest choice.
            let Some((call, previous_state)) = stack.pop() else {
                return Verdict::Violation { longest };
            };
            state = previous_state;
            let operation = events[call].operation;
            linearized[operation / 64] &= !(1 << (operation % 64));
            unlift(&mut events, call);
            entry = events[call].next;
        }
    }
    Verdict::Linearizable
}

/// Takes an operation's call and return out of the list.
fn lift(events: &mut [Event], call: usize) {
    for id in [call, events[call].partner] {
        let Event { previous, next, .. } = events[id];
        events[previous].next = next;
        if next != NONE {
            events[next].previous = previous;
        }
    }
}

/// Puts them back (in the reverse order they were taken out).
fn unlift(events: &mut [Event], call: usize) {
    for id in [events[call].partner, call] {
        let Event { previous, next, .. } = events[id];
        events[previous].next = id;
        if next != NONE {
            events[next].previous = id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain read/write register.
    struct Register;

    #[derive(Clone, Copy, Debug)]
    enum Op {
        Read,
        Write(u8),
    }

    impl Model for Register {
        type State = u8;
        type Input = Op;
        type Output = Option<u8>;

        fn init(&self) -> u8 {
            0
        }

        fn step(&self, state: &u8, input: &Op, output: &Option<u8>) -> Option<u8> {
            match (input, output) {
                (Op::Read, Some(value)) => (value == state).then_some(*state),
                (Op::Read, None) => Some(*state),
                (Op::Write(value), _) => Some(*value),
            }
        }
    }

    fn op(call: u64, ret: Option<u64>, input: Op, output: Option<u8>) -> Operation<Op, Option<u8>> {
        Operation {
            call,
            ret,
            input,
            output,
        }
    }

    #[test]
    fn overlapping_operations_may_take_effect_in_either_order() {
        let history = [
            op(0, Some(10), Op::Write(1), None),
            op(1, Some(5), Op::Read, Some(1)),
            op(2, Some(6), Op::Read, Some(0)),
        ];
        assert_eq!(check(&Register, &history), Verdict::Linearizable);
    }

    /// Guards against a checker that lets a read see a write made after the read returned.
    #[test]
    fn a_read_cannot_see_a_later_write() {
        let history = [
            op(0, Some(1), Op::Read, Some(1)),
            op(2, Some(3), Op::Write(1), None),
        ];
        assert!(matches!(
            check(&Register, &history),
            Verdict::Violation { .. }
        ));
    }

    /// Guards against a checker that forgets a completed write (a lost acknowledged write).
    #[test]
    fn a_completed_write_is_seen_by_later_reads() {
        let history = [
            op(0, Some(1), Op::Write(2), None),
            op(2, Some(3), Op::Write(3), None),
            op(4, Some(5), Op::Read, Some(2)),
        ];
        assert!(matches!(
            check(&Register, &history),
            Verdict::Violation { .. }
        ));
    }

    #[test]
    fn an_unknown_write_may_or_may_not_happen() {
        let happened = [
            op(0, None, Op::Write(7), None),
            op(5, Some(6), Op::Read, Some(7)),
        ];
        assert_eq!(check(&Register, &happened), Verdict::Linearizable);
        let never = [
            op(0, None, Op::Write(7), None),
            op(5, Some(6), Op::Read, Some(0)),
            op(7, Some(8), Op::Read, Some(0)),
        ];
        assert_eq!(check(&Register, &never), Verdict::Linearizable);
        // Once seen, it cannot be unseen.
        let flicker = [
            op(0, None, Op::Write(7), None),
            op(5, Some(6), Op::Read, Some(7)),
            op(7, Some(8), Op::Read, Some(0)),
        ];
        assert!(matches!(
            check(&Register, &flicker),
            Verdict::Violation { .. }
        ));
    }
}
