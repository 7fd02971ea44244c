//! Guards against the registry's two indexes drifting apart, or its trigger logic drifting from
//! a direct transcription of `WatchManager.triggerWatch`, under random sequences of operations.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::table::{parent, Modes, ALL_MODES, PERSISTENT, RECURSIVE, STANDARD};
use super::*;

/// A table as ZooKeeper holds it, without any of the registry's indexing.
type ModelTable = BTreeMap<String, BTreeMap<i64, Modes>>;

/// `WatchManager.triggerWatch`, transcribed: the path itself fires everything and loses
/// STANDARD; ancestors fire RECURSIVE holders.
fn model_trigger(table: &mut ModelTable, path: &str) -> BTreeSet<i64> {
    let mut notified = BTreeSet::new();
    if let Some(sessions) = table.get_mut(path) {
        notified.extend(sessions.keys());
        sessions.values_mut().for_each(|modes| *modes &= !STANDARD);
        sessions.retain(|_, modes| *modes != 0);
        if sessions.is_empty() {
            table.remove(path);
        }
    }
    let mut ancestor = parent(path);
    while let Some(current) = ancestor {
        if let Some(sessions) = table.get(current) {
            notified.extend(
                sessions
                    .iter()
                    .filter(|(_, m)| *m & RECURSIVE != 0)
                    .map(|(s, _)| *s),
            );
        }
        ancestor = parent(current);
    }
    notified
}

fn model_remove(table: &mut ModelTable, session: i64, path: &str, mask: Modes) -> bool {
    let Some(modes) = table
        .get_mut(path)
        .and_then(|sessions| sessions.get_mut(&session))
    else {
        return false;
    };
    let removed = *modes & mask != 0;
    *modes &= !mask;
    table
        .values_mut()
        .for_each(|sessions| sessions.retain(|_, modes| *modes != 0));
    table.retain(|_, sessions| !sessions.is_empty());
    removed
}

#[derive(Clone, Debug)]
enum Op {
    Add(i64, &'static str, WatchKind),
    Fire(&'static str, ChangeKind),
    Remove(i64, &'static str, WatcherType),
    RemoveSession(i64),
}

const PATHS: [&str; 6] = ["/", "/a", "/a/b", "/a/b/c", "/ab", "/z"];

fn op() -> impl Strategy<Value = Op> {
    let session = 1..5i64;
    let path = proptest::sample::select(&PATHS[..]);
    let kind = proptest::sample::select(vec![
        WatchKind::Data,
        WatchKind::Child,
        WatchKind::Persistent,
        WatchKind::PersistentRecursive,
    ]);
    let change = proptest::sample::select(vec![
        ChangeKind::Created,
        ChangeKind::Deleted,
        ChangeKind::DataChanged,
        ChangeKind::ChildrenChanged,
    ]);
    let watcher_type = proptest::sample::select(vec![
        WatcherType::Children,
        WatcherType::Data,
        WatcherType::Any,
        WatcherType::Persistent,
        WatcherType::PersistentRecursive,
    ]);
    prop_oneof![
        3 => (session.clone(), path.clone(), kind).prop_map(|(s, p, k)| Op::Add(s, p, k)),
        3 => (path.clone(), change).prop_map(|(p, c)| Op::Fire(p, c)),
        1 => (session.clone(), path, watcher_type).prop_map(|(s, p, w)| Op::Remove(s, p, w)),
        1 => session.prop_map(Op::RemoveSession),
    ]
}

proptest! {
    #[test]
    fn registry_matches_transcribed_watch_manager(ops in proptest::collection::vec(op(), 1..60)) {
        let mut registry = WatchRegistry::new(usize::MAX);
        let mut data = ModelTable::new();
        let mut child = ModelTable::new();
        for op in ops {
            match op {
                Op::Add(session, path, kind) => {
                    registry.add(session, path, kind).unwrap();
                    let (data_mode, child_mode) = kind.modes();
                    if data_mode != 0 {
                        *data.entry(path.into()).or_default().entry(session).or_default() |= data_mode;
                    }
                    if child_mode != 0 {
                        *child.entry(path.into()).or_default().entry(session).or_default() |= child_mode;
                    }
                }
                Op::Fire(path, kind) => {
                    let mut out = Vec::new();
                    registry.fire(&Change::open(path, kind), 1, &mut out);
                    let expected: Vec<i64> = match kind {
                        ChangeKind::Created | ChangeKind::DataChanged => {
                            model_trigger(&mut data, path).into_iter().collect()
                        }
                        ChangeKind::ChildrenChanged => model_trigger(&mut child, path).into_iter().collect(),
                        ChangeKind::Deleted => {
                            let first = model_trigger(&mut data, path);
                            let second = model_trigger(&mut child, path);
                            let mut all: Vec<i64> = first.iter().copied().collect();
                            all.extend(second.difference(&first));
                            all
                        }
                    };
                    let actual: Vec<i64> = out.iter().map(|(session, _)| *session).collect();
                    prop_assert_eq!(actual, expected);
                }
                Op::Remove(session, path, watcher_type) => {
                    let (data_mask, child_mask) = match watcher_type {
                        WatcherType::Children => (0, STANDARD),
                        WatcherType::Data => (STANDARD, 0),
                        WatcherType::Persistent => (PERSISTENT, PERSISTENT),
                        WatcherType::PersistentRecursive => (RECURSIVE, 0),
                        WatcherType::Any => (ALL_MODES, ALL_MODES),
                    };
                    let expected = model_remove(&mut child, session, path, child_mask)
                        | model_remove(&mut data, session, path, data_mask);
                    prop_assert_eq!(registry.remove(session, path, watcher_type), expected);
                }
                Op::RemoveSession(session) => {
                    registry.remove_session(session);
                    for table in [&mut data, &mut child] {
                        table.values_mut().for_each(|sessions| { sessions.remove(&session); });
                        table.retain(|_, sessions| !sessions.is_empty());
                    }
                }
            }
            registry.check_invariants();
            let count = |table: &ModelTable| table.values().map(BTreeMap::len).sum::<usize>();
            prop_assert_eq!(registry.watch_count(), count(&data) + count(&child));
            for path in PATHS {
                for session in 1..5 {
                    let data_modes = data.get(path).and_then(|s| s.get(&session)).copied().unwrap_or(0);
                    let child_modes = child.get(path).and_then(|s| s.get(&session)).copied().unwrap_or(0);
                    prop_assert_eq!(registry.data.modes(session, path), data_modes);
                    prop_assert_eq!(registry.child.modes(session, path), child_modes);
                }
            }
        }
    }
}
