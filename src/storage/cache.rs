//! A bounded in-memory cache of avatar variants in front of the blob store.
//!
//! Variants are content-addressed and never change, so a cached copy can never
//! be stale and needs no invalidation: the only policy is the size bound. Entries
//! are evicted oldest-inserted first (FIFO); a hot variant that was evicted comes
//! back on its next read. Lookups take one short mutex hold and no allocation.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;

use crate::imaging::AvatarSize;

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
    map: HashMap<Key, Bytes>,
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

    /// Content ids are 32 hex characters (128 bits); anything else is never cached.
    fn key(avatar_id: &str, size: AvatarSize) -> Option<Key> {
        if avatar_id.len() != 32 {
            return None;
        }
        u128::from_str_radix(avatar_id, 16)
            .ok()
            .map(|id| (id, size))
    }

    pub fn get(&self, avatar_id: &str, size: AvatarSize) -> Option<Bytes> {
        let key = Self::key(avatar_id, size)?;
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.map.get(&key).cloned()
    }

    pub fn insert(&self, avatar_id: &str, size: AvatarSize, jpeg: Bytes) {
        let Some(key) = Self::key(avatar_id, size) else {
            return;
        };
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

    const A: &str = "0123456789abcdef0123456789abcdef";
    const B: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn hits_misses_and_the_size_bound() {
        let cache = VariantCache::new(800);
        assert!(cache.get(A, AvatarSize::S132).is_none());
        cache.insert(A, AvatarSize::S132, Bytes::from(vec![1; 100]));
        assert_eq!(cache.get(A, AvatarSize::S132).unwrap().len(), 100);
        assert!(cache.get(A, AvatarSize::S46).is_none());
        assert!(cache.get(B, AvatarSize::S132).is_none());
        // Over 1/8 of the budget: not cached.
        cache.insert(B, AvatarSize::Big, Bytes::from(vec![2; 101]));
        assert!(cache.get(B, AvatarSize::Big).is_none());
        // Filling past the budget evicts the oldest first.
        for size in [AvatarSize::S96, AvatarSize::S64, AvatarSize::S46] {
            cache.insert(A, size, Bytes::from(vec![3; 100]));
        }
        for size in AvatarSize::ALL {
            cache.insert(B, size, Bytes::from(vec![4; 100]));
        }
        let inner = cache.inner.lock().unwrap();
        assert!(inner.bytes <= 800);
        drop(inner);
        assert!(cache.get(A, AvatarSize::S132).is_none());
        assert!(cache.get(B, AvatarSize::S46).is_some());
        // Ids that are not content ids are ignored.
        cache.insert("../etc", AvatarSize::S132, Bytes::from_static(b"x"));
        assert!(cache.get("../etc", AvatarSize::S132).is_none());
    }
}
