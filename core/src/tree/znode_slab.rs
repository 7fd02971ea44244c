//! Where a tree's znodes live: a slab of fixed-size chunks, each shared copy-on-write, so a
//! snapshot can keep every znode as it was while writes go on.
//!
//! Cloning the slab copies one pointer per chunk (245 at a million znodes). After that the
//! first write to a chunk copies that chunk (4,096 znodes, a fraction of a millisecond) and the
//! clone keeps the old one. A snapshot is encoded from such a clone on another thread: before,
//! it was encoded under the tree's read lock, and every write waited for the whole encode
//! (hundreds of milliseconds at a million znodes). A chunk nobody else holds is written in
//! place, so the copies happen only while a snapshot is being encoded.

use std::sync::Arc;

use super::znode::Znode;

/// A znode's place in the slab.
pub(super) type Slot = u32;

/// Znodes per slab chunk: a chunk is allocated whole and never grows, so growing the tree
/// never copies znodes and wastes at most one partly used chunk.
pub(super) const CHUNK_ZNODES: usize = 4096;

/// Up to `CHUNK_ZNODES` znodes; `None` is a free slot.
struct Chunk(Vec<Option<Znode>>);

/// A copy made for a write while a snapshot holds the original: with the full capacity, so
/// the slab's last chunk still never reallocates as it fills.
impl Clone for Chunk {
    fn clone(&self) -> Chunk {
        let mut znodes = Vec::with_capacity(CHUNK_ZNODES);
        znodes.extend(self.0.iter().cloned());
        Chunk(znodes)
    }
}

/// The znodes of a tree by slot. `Clone` is cheap and gives an unchanging view (see the
/// module doc).
#[derive(Clone, Default)]
pub(super) struct ZnodeSlab {
    chunks: Vec<Arc<Chunk>>,
}

impl ZnodeSlab {
    /// The znode in `slot`, which must be in use.
    pub(super) fn at(&self, slot: Slot) -> &Znode {
        self.chunks[slot as usize / CHUNK_ZNODES].0[slot as usize % CHUNK_ZNODES]
            .as_ref()
            .expect("the slot is in use")
    }

    /// The znode in `slot`, which must be in use, to change; copies its chunk first if a
    /// snapshot still holds it.
    pub(super) fn at_mut(&mut self, slot: Slot) -> &mut Znode {
        self.entry_mut(slot).as_mut().expect("the slot is in use")
    }

    fn entry_mut(&mut self, slot: Slot) -> &mut Option<Znode> {
        let chunk = Arc::make_mut(&mut self.chunks[slot as usize / CHUNK_ZNODES]);
        &mut chunk.0[slot as usize % CHUNK_ZNODES]
    }

    /// Puts `znode` in `slot`, a free slot the slab already has.
    pub(super) fn put(&mut self, slot: Slot, znode: Znode) {
        let entry = self.entry_mut(slot);
        debug_assert!(entry.is_none(), "slot {slot} is in use");
        *entry = Some(znode);
    }

    /// Puts `znode` in a new slot at the end, growing the slab by a chunk when the last is full.
    pub(super) fn push(&mut self, znode: Znode) -> Slot {
        if self
            .chunks
            .last()
            .is_none_or(|chunk| chunk.0.len() == CHUNK_ZNODES)
        {
            self.chunks
                .push(Arc::new(Chunk(Vec::with_capacity(CHUNK_ZNODES))));
        }
        let chunk_index = self.chunks.len() - 1;
        let chunk = Arc::make_mut(&mut self.chunks[chunk_index]);
        chunk.0.push(Some(znode));
        let slot = chunk_index * CHUNK_ZNODES + chunk.0.len() - 1;
        Slot::try_from(slot).expect("fewer than 2^32 znodes")
    }

    /// Takes the znode out of `slot`, which becomes free.
    pub(super) fn take(&mut self, slot: Slot) -> Znode {
        self.entry_mut(slot).take().expect("the slot is in use")
    }

    /// The children of `znode`, in no particular order.
    pub(super) fn children<'a>(&'a self, znode: &'a Znode) -> impl Iterator<Item = &'a Znode> {
        znode.child_slots().iter().map(|slot| self.at(*slot))
    }

    /// The children of `znode`, sorted by name (what getChildren answers and snapshots write).
    ///
    /// Each child is read once, for a key of its name's first 16 bytes; the sort compares keys
    /// and reads names again only where keys tie. Comparing names alone reads two znodes per
    /// comparison, scattered over the slab: at 700,000 children that held the driver (which
    /// answers reads behind writes) long enough for the followers to elect a new leader.
    pub(super) fn sorted_children<'a>(&'a self, znode: &'a Znode) -> Vec<&'a Znode> {
        // Siblings share the parent's path and a '/', so path order is name order.
        let name_from = znode.path_as_bytes().len() + usize::from(znode.path() != "/");
        let mut keyed: Vec<(u128, &Znode)> = self
            .children(znode)
            .map(|child| (name_key(&child.path_as_bytes()[name_from..]), child))
            .collect();
        keyed.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| a.1.path_as_bytes().cmp(b.1.path_as_bytes()))
        });
        keyed.into_iter().map(|(_, child)| child).collect()
    }

    /// Calls `visit` on `root` and every znode below it, in pre-order (a parent before its
    /// subtree) with children by name: the order snapshots are written in.
    pub(super) fn visit_in_preorder(&self, root: Slot, visit: &mut dyn FnMut(&Znode)) {
        let root = self.at(root);
        visit(root);
        // A stack of sorted child lists rather than recursion: trees can be deep.
        let mut pending = vec![self.sorted_children(root).into_iter()];
        while let Some(children) = pending.last_mut() {
            let Some(node) = children.next() else {
                pending.pop();
                continue;
            };
            visit(node);
            if node.num_children() > 0 {
                pending.push(self.sorted_children(node).into_iter());
            }
        }
    }

    /// Every znode, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Znode> {
        self.chunks
            .iter()
            .flat_map(|chunk| chunk.0.iter().flatten())
    }

    /// Every znode, to change data or Stat fields (not paths or children).
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Znode> {
        self.chunks
            .iter_mut()
            .flat_map(|chunk| Arc::make_mut(chunk).0.iter_mut().flatten())
    }

    /// Chunks allocated, and slots used in the last one.
    #[cfg(test)]
    pub(super) fn shape(&self) -> (usize, usize) {
        (
            self.chunks.len(),
            self.chunks.last().map_or(0, |chunk| chunk.0.len()),
        )
    }

    /// How many chunks this slab shares with `other`.
    #[cfg(test)]
    fn chunks_shared_with(&self, other: &ZnodeSlab) -> usize {
        self.chunks
            .iter()
            .zip(&other.chunks)
            .filter(|(mine, theirs)| Arc::ptr_eq(mine, theirs))
            .count()
    }
}

/// A name's first 16 bytes as a big-endian number, zero-padded: keys order as the names do
/// wherever they differ, since no name holds a NUL (path::validate).
fn name_key(name: &[u8]) -> u128 {
    let mut key = [0u8; 16];
    let length = name.len().min(16);
    key[..length].copy_from_slice(&name[..length]);
    u128::from_be_bytes(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Acl;

    fn znode(path: &str) -> Znode {
        Znode::new(path, Some(b"d"), Acl::open_unsafe().into(), 0, 1, 1)
    }

    /// A clone costs no znode copy; a write copies only the chunk it lands in, and neither
    /// side sees the other's changes.
    #[test]
    fn a_clone_shares_chunks_until_one_side_writes_to_them() {
        let mut slab = ZnodeSlab::default();
        for index in 0..CHUNK_ZNODES * 2 + 1 {
            slab.push(znode(&format!("/z{index}")));
        }
        let frozen = slab.clone();
        assert_eq!(slab.chunks_shared_with(&frozen), 3);

        slab.at_mut(5).version = 7;
        let taken = slab.take(CHUNK_ZNODES as Slot * 2);
        assert_eq!(taken.path(), format!("/z{}", CHUNK_ZNODES * 2));
        assert_eq!(slab.chunks_shared_with(&frozen), 1);
        assert_eq!(slab.at(5).version, 7);
        assert_eq!(frozen.at(5).version, 0);
        assert_eq!(frozen.at(CHUNK_ZNODES as Slot * 2).path(), taken.path());

        // The copied last chunk still fills to its capacity without moving.
        let slot = slab.push(znode("/new"));
        assert_eq!(slot as usize, CHUNK_ZNODES * 2 + 1);
        assert_eq!(slab.shape(), (3, 2));
        assert_eq!(frozen.shape(), (3, 1));
        assert_eq!(frozen.iter().count(), CHUNK_ZNODES * 2 + 1);
        assert_eq!(slab.iter().count(), CHUNK_ZNODES * 2 + 1);
    }
}
