//! `SharedAcl`: one ACL shared by every znode, Stat change and pending change that uses it.
//!
//! A thin pointer (8 bytes; `Arc<[Acl]>` is 16), because every znode holds one and a tree may
//! hold millions of znodes. It hashes and compares as the `[Acl]` it holds, so a cache keyed
//! by it can be searched with a plain slice.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use crate::proto::Acl;

/// An ACL, reference-counted and immutable.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedAcl(Arc<Vec<Acl>>);

impl SharedAcl {
    /// True when both are the same allocation (not merely equal).
    pub fn ptr_eq(a: &SharedAcl, b: &SharedAcl) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// The allocation's address: an identity for tables keyed by allocation.
    pub fn address(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }
}

impl Deref for SharedAcl {
    type Target = [Acl];

    fn deref(&self) -> &[Acl] {
        &self.0
    }
}

impl Borrow<[Acl]> for SharedAcl {
    fn borrow(&self) -> &[Acl] {
        &self.0
    }
}

/// As the slice hashes, which `Borrow<[Acl]>` requires.
impl Hash for SharedAcl {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.as_slice().hash(state);
    }
}

impl From<Vec<Acl>> for SharedAcl {
    fn from(acl: Vec<Acl>) -> SharedAcl {
        SharedAcl(Arc::new(acl))
    }
}

impl From<&[Acl]> for SharedAcl {
    fn from(acl: &[Acl]) -> SharedAcl {
        SharedAcl(Arc::new(acl.to_vec()))
    }
}

impl fmt::Debug for SharedAcl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.as_slice().fmt(f)
    }
}
