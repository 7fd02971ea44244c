//! Every znode of a tree, found by path and by parent: a slab of znodes with a hash index over
//! their paths, and each parent holding its children's slots.
//!
//! Why not a `HashMap<path, Znode>` with child names in a set per parent, as before: at a
//! million znodes the map's buckets (key and znode inline, at most 7/8 full and often half
//! empty after a doubling) cost about 270 bytes per znode, and every child name was stored a
//! second time in its parent's set. Here a znode lives in a fixed-size chunk of the slab (no
//! doubling, a freed slot is reused), the index holds 4-byte slots, and a child's name is read
//! from the end of its own path. Children are unordered, so a create or delete touches its
//! parent in O(1) whatever the order of names; readers that need names in order sort them
//! (`sorted_children`).

use std::fmt;

use hashbrown::HashTable;

use super::path;
use super::znode::Znode;
use super::znode_slab::{Slot, ZnodeSlab};
use crate::proto::ErrorCode;

/// The slab and the index of a tree's znodes.
pub(super) struct ZnodeTable {
    /// The znodes by slot.
    slab: ZnodeSlab,
    /// Freed slots, reused before the slab grows.
    free: Vec<Slot>,
    /// Slots by the hash of their znode's path.
    index: HashTable<Slot>,
    /// Keyed per table, so clients cannot choose paths that collide.
    hasher: ahash::RandomState,
    len: usize,
}

impl Default for ZnodeTable {
    fn default() -> ZnodeTable {
        ZnodeTable {
            slab: ZnodeSlab::default(),
            free: Vec::new(),
            index: HashTable::new(),
            hasher: ahash::RandomState::new(),
            len: 0,
        }
    }
}

impl ZnodeTable {
    /// The number of znodes.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Room for `additional` more znodes in the index (the slab grows a chunk at a time).
    pub(super) fn reserve(&mut self, additional: usize) {
        let (slab, hasher) = (&self.slab, &self.hasher);
        self.index.reserve(additional, |slot| {
            hasher.hash_one(slab.at(*slot).path_as_bytes())
        });
    }

    /// The znode in `slot`, which must be in use.
    pub(super) fn at(&self, slot: Slot) -> &Znode {
        self.slab.at(slot)
    }

    fn at_mut(&mut self, slot: Slot) -> &mut Znode {
        self.slab.at_mut(slot)
    }

    /// The slot of the znode at `path`.
    fn find(&self, path: &str) -> Option<Slot> {
        let hash = self.hasher.hash_one(path.as_bytes());
        let slab = &self.slab;
        self.index
            .find(hash, |slot| {
                slab.at(*slot).path_as_bytes() == path.as_bytes()
            })
            .copied()
    }

    /// The znode at `path`.
    pub(super) fn get(&self, path: &str) -> Option<&Znode> {
        self.find(path).map(|slot| self.at(slot))
    }

    /// The znode at `path`, to change its data or Stat (never its path or children: those
    /// belong to the table).
    pub(super) fn get_mut(&mut self, path: &str) -> Option<&mut Znode> {
        self.find(path).map(|slot| self.at_mut(slot))
    }

    /// True when a znode is at `path`.
    pub(super) fn contains(&self, path: &str) -> bool {
        self.find(path).is_some()
    }

    /// Adds `znode` and links it under its parent (the root has none).
    ///
    /// # Errors
    /// `NodeExists` when its path is taken, `NoNode` when its parent is missing; the table is
    /// then unchanged.
    pub(super) fn insert(&mut self, mut znode: Znode) -> Result<(), ErrorCode> {
        let path = znode.path();
        if self.contains(path) {
            return Err(ErrorCode::NodeExists);
        }
        let parent = if path == "/" {
            None
        } else {
            Some(self.find(path::parent(path)).ok_or(ErrorCode::NoNode)?)
        };
        if let Some(parent) = parent {
            znode.slot_in_parent = self.at(parent).num_children() as u32;
        }
        let hash = self.hasher.hash_one(znode.path_as_bytes());
        let slot = self.store(znode);
        let (slab, hasher) = (&self.slab, &self.hasher);
        self.index.insert_unique(hash, slot, |slot| {
            hasher.hash_one(slab.at(*slot).path_as_bytes())
        });
        if let Some(parent) = parent {
            push_child(self.at_mut(parent), slot);
        }
        self.len += 1;
        Ok(())
    }

    /// Puts `znode` in a free slot, growing the slab when none is free.
    fn store(&mut self, znode: Znode) -> Slot {
        match self.free.pop() {
            Some(slot) => {
                self.slab.put(slot, znode);
                slot
            }
            None => self.slab.push(znode),
        }
    }

    /// Removes the childless znode at `path` and unlinks it from its parent.
    ///
    /// # Errors
    /// `NoNode` when there is none, `NotEmpty` when it has children; the table is then
    /// unchanged.
    pub(super) fn remove(&mut self, path: &str) -> Result<Znode, ErrorCode> {
        let slot = self.find(path).ok_or(ErrorCode::NoNode)?;
        if self.at(slot).num_children() > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        if path != "/" {
            let parent = self.find(path::parent(path)).ok_or(ErrorCode::NoNode)?;
            let position = self.at(slot).slot_in_parent;
            if let Some(moved) = unlink_child(self.at_mut(parent), position) {
                self.at_mut(moved).slot_in_parent = position;
            }
        }
        let hash = self.hasher.hash_one(path.as_bytes());
        self.index
            .find_entry(hash, |candidate| *candidate == slot)
            .expect("an indexed slot")
            .remove();
        let znode = self.slab.take(slot);
        self.free.push(slot);
        self.len -= 1;
        Ok(znode)
    }

    /// The children of `znode`, in no particular order.
    pub(super) fn children<'a>(&'a self, znode: &'a Znode) -> impl Iterator<Item = &'a Znode> {
        self.slab.children(znode)
    }

    /// The children of `znode`, sorted by name (see `ZnodeSlab::sorted_children`).
    pub(super) fn sorted_children<'a>(&'a self, znode: &'a Znode) -> Vec<&'a Znode> {
        self.slab.sorted_children(znode)
    }

    /// Calls `visit` on every znode reachable from the root, in pre-order (a parent before its
    /// subtree) with children by name: the order snapshots are written in.
    pub(super) fn visit_in_preorder(&self, visit: &mut dyn FnMut(&Znode)) {
        if let Some(root) = self.find("/") {
            self.slab.visit_in_preorder(root, visit);
        }
    }

    /// The znodes as they are now, unchanged by later writes, and the root's slot: what a
    /// snapshot encodes on another thread (see `ZnodeSlab`).
    pub(super) fn frozen(&self) -> (ZnodeSlab, Option<Slot>) {
        (self.slab.clone(), self.find("/"))
    }

    /// Every znode, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Znode> {
        self.slab.iter()
    }

    /// Every znode, to change data or Stat fields (not paths or children).
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Znode> {
        self.slab.iter_mut()
    }
}

/// Appends `child` to the parent's children.
fn push_child(parent: &mut Znode, child: Slot) {
    parent.children.get_or_insert_with(Box::default).push(child);
}

/// Removes the child at `position` by moving the last child into its place; returns the
/// moved child's slot (its `slot_in_parent` must become `position`). Halves the capacity
/// once a quarter full, and frees it when empty, so a parent emptied by deletes gives its
/// memory back.
fn unlink_child(parent: &mut Znode, position: u32) -> Option<Slot> {
    let children = parent.children.as_mut().expect("the parent has this child");
    let position = position as usize;
    children.swap_remove(position);
    let moved = children.get(position).copied();
    if children.is_empty() {
        parent.children = None;
    } else if children.capacity() > 4 && children.len() <= children.capacity() / 4 {
        children.shrink_to(children.len() * 2);
    }
    moved
}

/// Equal tables hold the same paths with equal znodes and the same child names under each:
/// slots and the order of children do not count.
impl PartialEq for ZnodeTable {
    fn eq(&self, other: &ZnodeTable) -> bool {
        self.len == other.len
            && self.iter().all(|znode| {
                other.get(znode.path()).is_some_and(|theirs| {
                    theirs == znode && child_names(self, znode) == child_names(other, theirs)
                })
            })
    }
}

impl Eq for ZnodeTable {}

fn child_names<'a>(table: &'a ZnodeTable, znode: &'a Znode) -> Vec<&'a str> {
    let children = table.sorted_children(znode);
    children.iter().map(|child| child.name()).collect()
}

impl fmt::Debug for ZnodeTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|znode| (znode.path(), znode)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Acl;

    fn znode(path: &str) -> Znode {
        Znode::new(path, Some(b"d"), Acl::open_unsafe().into(), 0, 1, 1)
    }

    fn names(table: &ZnodeTable, path: &str) -> Vec<String> {
        let parent = table.get(path).expect("parent");
        table
            .sorted_children(parent)
            .iter()
            .map(|c| c.name().to_owned())
            .collect()
    }

    #[test]
    fn children_link_and_unlink_in_any_order() {
        let mut table = ZnodeTable::default();
        table.insert(znode("/")).unwrap();
        for name in ["c", "a", "e", "b", "d"] {
            table.insert(znode(&format!("/{name}"))).unwrap();
        }
        assert_eq!(names(&table, "/"), ["a", "b", "c", "d", "e"]);
        // Removing from the middle moves the last child into the hole.
        table.remove("/a").unwrap();
        table.remove("/e").unwrap();
        assert_eq!(names(&table, "/"), ["b", "c", "d"]);
        // Every child still knows where it sits, so the next removals unlink the right one.
        for path in ["/d", "/b", "/c"] {
            table.remove(path).unwrap();
        }
        assert_eq!(names(&table, "/"), Vec::<String>::new());
        assert_eq!(table.len(), 1);
        assert!(table.get("/").unwrap().children.is_none());
    }

    #[test]
    fn children_sort_by_name_when_long_names_share_their_first_16_bytes() {
        let mut table = ZnodeTable::default();
        table.insert(znode("/")).unwrap();
        table.insert(znode("/p")).unwrap();
        let names = [
            "lock-0000000010",
            "lock-00000000100",
            "lock-0000000009",
            "lock-000000000",
            "a",
            "lock-0000000010-x",
            "b",
            "lock-00000000099",
            "lock-0000000010-a",
        ];
        for name in names {
            table.insert(znode(&format!("/p/{name}"))).unwrap();
        }
        let mut expected: Vec<&str> = names.to_vec();
        expected.sort_unstable();
        assert_eq!(
            super::child_names(&table, table.get("/p").unwrap()),
            expected
        );
    }

    #[test]
    fn refusals_change_nothing() {
        let mut table = ZnodeTable::default();
        table.insert(znode("/")).unwrap();
        table.insert(znode("/a")).unwrap();
        table.insert(znode("/a/b")).unwrap();
        assert_eq!(table.insert(znode("/a")), Err(ErrorCode::NodeExists));
        assert_eq!(table.insert(znode("/x/y")), Err(ErrorCode::NoNode));
        assert_eq!(table.remove("/a").map(|_| ()), Err(ErrorCode::NotEmpty));
        assert_eq!(table.remove("/nope").map(|_| ()), Err(ErrorCode::NoNode));
        assert_eq!(table.len(), 3);
        assert_eq!(names(&table, "/a"), ["b"]);
    }

    #[test]
    fn freed_slots_are_reused_and_a_big_parent_shrinks_when_emptied() {
        let mut table = ZnodeTable::default();
        table.insert(znode("/")).unwrap();
        for child in 0..1000 {
            table.insert(znode(&format!("/c{child}"))).unwrap();
        }
        let capacity = |table: &ZnodeTable| {
            table
                .get("/")
                .unwrap()
                .children
                .as_ref()
                .unwrap()
                .capacity()
        };
        assert_eq!(capacity(&table), 1024);
        for child in 0..990 {
            table.remove(&format!("/c{child}")).unwrap();
        }
        assert!(capacity(&table) <= 40, "{}", capacity(&table));
        for child in 0..990 {
            table.insert(znode(&format!("/d{child}"))).unwrap();
        }
        // 1 + 1000 slots were ever used at once; the slab did not grow past one chunk.
        assert_eq!(table.slab.shape(), (1, 1001));
        assert_eq!(names(&table, "/").len(), 1000);
    }

    /// One step of the model test: a znode at `parent`'s child `name` is inserted or removed.
    #[derive(Clone, Debug)]
    enum Step {
        Insert { parent: usize, name: u8 },
        Remove { victim: usize },
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            3 => (0..64usize, 0..6u8).prop_map(|(parent, name)| Step::Insert { parent, name }),
            2 => (0..64usize).prop_map(|victim| Step::Remove { victim }),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Against a sorted map of paths as the model: after any sequence of inserts and
        /// removes (refused ones included), the table holds the same paths, each parent the
        /// same sorted children, every child knows its place in its parent, and the index
        /// finds every znode.
        #[test]
        fn the_table_matches_a_sorted_map_of_paths(steps in proptest::collection::vec(step(), 1..200)) {
            let mut table = ZnodeTable::default();
            let mut model = std::collections::BTreeSet::from(["/".to_string()]);
            table.insert(znode("/")).unwrap();
            for step in steps {
                let existing: Vec<String> = model.iter().cloned().collect();
                match step {
                    Step::Insert { parent, name } => {
                        let parent = &existing[parent % existing.len()];
                        let path = path::join(parent, &format!("n{name}"));
                        let expected = if model.contains(&path) {
                            Err(ErrorCode::NodeExists)
                        } else {
                            Ok(())
                        };
                        proptest::prop_assert_eq!(table.insert(znode(&path)), expected);
                        model.insert(path);
                    }
                    Step::Remove { victim } => {
                        let path = &existing[victim % existing.len()];
                        let has_children = model.iter().any(|other| {
                            other != path && path::parent(other) == path.as_str()
                        });
                        let expected = if has_children || path == "/" {
                            Err(ErrorCode::NotEmpty)
                        } else {
                            Ok(())
                        };
                        if path != "/" {
                            proptest::prop_assert_eq!(table.remove(path).map(|_| ()), expected);
                            if expected.is_ok() {
                                model.remove(path);
                            }
                        }
                    }
                }
            }
            proptest::prop_assert_eq!(table.len(), model.len());
            for path in &model {
                let node = table.get(path);
                proptest::prop_assert!(node.is_some(), "{} lost", path);
                let node = node.unwrap();
                let children: Vec<String> =
                    names(&table, path).into_iter().map(|name| path::join(path, &name)).collect();
                let expected: Vec<String> = model
                    .iter()
                    .filter(|other| *other != path && path::parent(other) == path.as_str())
                    .cloned()
                    .collect();
                proptest::prop_assert_eq!(children, expected);
                for (position, slot) in node.child_slots().iter().enumerate() {
                    proptest::prop_assert_eq!(table.at(*slot).slot_in_parent as usize, position);
                }
            }
            proptest::prop_assert_eq!(table.iter().count(), model.len());
        }
    }

    #[test]
    fn equality_ignores_slots_and_child_order() {
        let mut one = ZnodeTable::default();
        let mut other = ZnodeTable::default();
        for table in [&mut one, &mut other] {
            table.insert(znode("/")).unwrap();
        }
        for path in ["/a", "/b", "/junk"] {
            one.insert(znode(path)).unwrap();
        }
        one.remove("/junk").unwrap();
        for path in ["/b", "/a"] {
            other.insert(znode(path)).unwrap();
        }
        assert_eq!(one, other);
        other.get_mut("/a").unwrap().version = 1;
        assert_ne!(one, other);
    }
}
