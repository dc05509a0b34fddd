//! A bounded in-memory cache of avatar variants in front of the blob store.
//!
//! Variants are content-addressed and never change, so a cached copy can never
//! be stale and needs no invalidation: the only policy is the size bound. Entries
//! are evicted oldest-inserted first (FIFO); a hot variant that was evicted comes
//! back on its next read. Lookups take one short mutex hold and no allocation.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;

use crate::domain::{AvatarId, AvatarSize};

/// 32 MiB ≈ 6 000 avatars' `132` variants, or ≈ 450 complete five-size sets.
pub const DEFAULT_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// (content id as a number, size).
type Key = (u128, AvatarSize);

pub struct VariantCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// foldhash, seeded per process: SipHash took longer than the rest of
    /// the lookup, and the keys are content ids, not chosen by clients.
    map: HashMap<Key, Bytes, foldhash::fast::RandomState>,
    order: VecDeque<Key>,
    bytes: usize,
}

impl VariantCache {
    pub fn new(max_bytes: usize) -> Self {
        VariantCache {
            max_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn get(&self, avatar_id: AvatarId, size: AvatarSize) -> Option<Bytes> {
        let key = (avatar_id.as_u128(), size);
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.map.get(&key).cloned()
    }

    /// Drops every cached variant of `avatar_id` (its blobs were deleted).
    pub fn forget(&self, avatar_id: AvatarId) {
        let id = avatar_id.as_u128();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for size in AvatarSize::ALL {
            if let Some(gone) = inner.map.remove(&(id, size)) {
                inner.bytes -= gone.len();
            }
        }
        inner.order.retain(|(key, _)| *key != id);
    }

    pub fn insert(&self, avatar_id: AvatarId, size: AvatarSize, jpeg: Bytes) {
        let key = (avatar_id.as_u128(), size);
        if jpeg.len() > self.max_bytes / 8 {
            return; // never let one object take a large share of the budget
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.map.contains_key(&key) {
            return;
        }
        inner.bytes += jpeg.len();
        inner.map.insert(key, jpeg);
        inner.order.push_back(key);
        while inner.bytes > self.max_bytes {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some(evicted) = inner.map.remove(&old) {
                inner.bytes -= evicted.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_misses_and_the_size_bound() {
        let a = AvatarId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let b = AvatarId::parse("fedcba9876543210fedcba9876543210").unwrap();
        let cache = VariantCache::new(800);
        assert!(cache.get(a, AvatarSize::S132).is_none());
        cache.insert(a, AvatarSize::S132, Bytes::from(vec![1; 100]));
        assert_eq!(cache.get(a, AvatarSize::S132).unwrap().len(), 100);
        assert!(cache.get(a, AvatarSize::S46).is_none());
        assert!(cache.get(b, AvatarSize::S132).is_none());
        // Over 1/8 of the budget: not cached.
        cache.insert(b, AvatarSize::Big, Bytes::from(vec![2; 101]));
        assert!(cache.get(b, AvatarSize::Big).is_none());
        // Filling past the budget evicts the oldest first.
        for size in [AvatarSize::S96, AvatarSize::S64, AvatarSize::S46] {
            cache.insert(a, size, Bytes::from(vec![3; 100]));
        }
        for size in AvatarSize::ALL {
            cache.insert(b, size, Bytes::from(vec![4; 100]));
        }
        let inner = cache.inner.lock().unwrap();
        assert!(inner.bytes <= 800);
        drop(inner);
        assert!(cache.get(a, AvatarSize::S132).is_none());
        assert!(cache.get(b, AvatarSize::S46).is_some());
    }
}
