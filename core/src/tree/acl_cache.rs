//! Interning of ACLs, so znodes with equal ACLs share one allocation.
//!
//! Most trees use a handful of distinct ACLs across millions of znodes (ZooKeeper keeps a
//! reference-counted `ReferenceCountedACLCache` for the same reason). Here the `Arc` itself is
//! the reference count: the cache holds one reference and each znode one, so an entry whose
//! count falls to 1 is used by no znode and is dropped.

use std::collections::HashSet;
use std::sync::Arc;

use crate::proto::Acl;

/// The distinct ACLs in use by a tree's znodes.
#[derive(Debug, Default)]
pub(super) struct AclCache {
    entries: HashSet<Arc<[Acl]>, ahash::RandomState>,
}

impl AclCache {
    /// The shared copy of `acl`, added to the cache if it is new.
    pub(super) fn intern(&mut self, acl: &[Acl]) -> Arc<[Acl]> {
        if let Some(shared) = self.entries.get(acl) {
            return Arc::clone(shared);
        }
        let shared: Arc<[Acl]> = acl.into();
        self.entries.insert(Arc::clone(&shared));
        shared
    }

    /// Gives back a znode's reference; forgets the ACL when no znode uses it any more.
    pub(super) fn release(&mut self, acl: Arc<[Acl]>) {
        // 2 = the cache's reference and the one being released.
        if Arc::strong_count(&acl) == 2 {
            self.entries.remove(&*acl);
        }
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
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(cache.len(), 2);
        cache.release(a);
        assert_eq!(cache.len(), 2, "b still uses it");
        cache.release(b);
        assert_eq!(cache.len(), 1);
        cache.release(c);
        assert_eq!(cache.len(), 0);
    }
}
