//! Interning of ACLs, so znodes with equal ACLs share one allocation.
//!
//! Most trees use a handful of distinct ACLs across millions of znodes (ZooKeeper keeps a
//! reference-counted `ReferenceCountedACLCache` for the same reason). The cache counts znodes
//! itself rather than trusting `Arc::strong_count`, because watch events and pending changes
//! hold clones too; an entry no znode uses is dropped.

use super::shared_acl::SharedAcl;
use std::collections::HashMap;

use crate::proto::Acl;

/// The distinct ACLs in use by a tree's znodes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct AclCache {
    /// Each distinct ACL and the number of znodes using it.
    entries: HashMap<SharedAcl, u64, ahash::RandomState>,
}

impl AclCache {
    /// The shared copy of `acl`, added to the cache if it is new.
    pub(super) fn intern(&mut self, acl: &[Acl]) -> SharedAcl {
        if let Some((shared, users)) = self.entries.get_key_value(acl) {
            let shared = shared.clone();
            *self.entries.get_mut(acl).expect("just found") = users + 1;
            return shared;
        }
        let shared: SharedAcl = acl.into();
        self.entries.insert(shared.clone(), 1);
        shared
    }

    /// Gives back a znode's reference; forgets the ACL when no znode uses it any more.
    pub(super) fn release(&mut self, acl: SharedAcl) {
        let Some(users) = self.entries.get_mut(&*acl) else {
            debug_assert!(false, "released an ACL the cache does not hold");
            return;
        };
        *users -= 1;
        if *users == 0 {
            self.entries.remove(&*acl);
        }
    }

    /// Adds `users` znodes to `shared`'s count, adding the entry if it is new (rebuilding the
    /// cache from a snapshot, where every znode using it is counted first). Returns the copy the
    /// cache holds, which is `shared` unless an equal ACL was already there.
    pub(super) fn add_users(&mut self, shared: SharedAcl, users: u64) -> SharedAcl {
        if let Some((held, count)) = self.entries.get_key_value(&*shared) {
            let held = held.clone();
            let count = count + users;
            self.entries.insert(held.clone(), count);
            return held;
        }
        self.entries.insert(shared.clone(), users);
        shared
    }

    /// Every distinct ACL with the number of znodes using it, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&SharedAcl, u64)> + '_ {
        self.entries.iter().map(|(acl, users)| (acl, *users))
    }

    /// The number of distinct ACLs.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_acls_share_one_allocation_until_released() {
        let mut cache = AclCache::default();
        let a = cache.intern(&Acl::open_unsafe());
        let b = cache.intern(&Acl::open_unsafe());
        let c = cache.intern(&Acl::read_unsafe());
        assert!(SharedAcl::ptr_eq(&a, &b));
        assert_eq!(cache.len(), 2);
        cache.release(a);
        assert_eq!(cache.len(), 2, "b still uses it");
        cache.release(b);
        assert_eq!(cache.len(), 1);
        cache.release(c);
        assert_eq!(cache.len(), 0);
    }
}
