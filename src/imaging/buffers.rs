//! Reused buffers for downloaded and decoded pictures.
//!
//! A decoded 1080p picture is 6 MB, a 12 MP download 4.4 MB, a 2048² RGBA
//! picture 16 MiB: above the allocator's mmap threshold
//! (src/startup/allocator.rs), so a fresh buffer is a fresh mapping whose
//! every page faults in on first write, about a tenth of an update's CPU time.
//! The few buffers kept here stay mapped between updates instead. Kept: at
//! most [`KEPT`] buffers of 1–[`MAX_KEPT_BYTES`] bytes, [`KEPT_TOTAL_BYTES`]
//! together (decodes run one per core at a time), the largest first, so an
//! idle server holds at most a few tens of MiB more.

use std::sync::{Mutex, PoisonError};

use bytes::Bytes;

const KEPT: usize = 4;
const MIN_KEPT_BYTES: usize = 1 << 20;
const MAX_KEPT_BYTES: usize = 24 << 20;
const KEPT_TOTAL_BYTES: usize = 48 << 20;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// Resizers kept with their scratch buffers: the first pass of a 2048² RGBA
/// picture to 640 px writes 5 MiB, a fresh mapping (~1 300 page faults) every
/// update with a new resizer.
static RESIZERS: Mutex<Vec<fast_image_resize::Resizer>> = Mutex::new(Vec::new());

/// A resizer, with the scratch buffers of an earlier picture when one is kept.
pub(crate) fn resizer() -> fast_image_resize::Resizer {
    let kept = RESIZERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop();
    kept.unwrap_or_default()
}

/// Keeps `resizer` for the next picture: at most [`KEPT`] of them, each with
/// scratch buffers of at most [`MAX_KEPT_BYTES`] (larger ones are freed).
pub(crate) fn give_back_resizer(mut resizer: fast_image_resize::Resizer) {
    if resizer.size_of_internal_buffers() > MAX_KEPT_BYTES {
        resizer.reset_internal_buffers();
    }
    let mut kept = RESIZERS.lock().unwrap_or_else(PoisonError::into_inner);
    if kept.len() < KEPT {
        kept.push(resizer);
    }
}

/// A zeroed buffer of `len` bytes, reusing a kept one when one is large enough.
pub(crate) fn take(len: usize) -> Vec<u8> {
    let kept = {
        let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
        let fits = pool.iter().position(|buffer| buffer.capacity() >= len);
        fits.map(|i| pool.swap_remove(i))
    };
    match kept {
        Some(mut buffer) => {
            buffer.clear();
            buffer.resize(len, 0);
            buffer
        }
        None => vec![0; len],
    }
}

/// An empty buffer to download a picture into: the largest one kept, as the
/// size is not known yet (nothing kept: a new, empty one).
pub fn for_download() -> Vec<u8> {
    let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    let largest = (0..pool.len()).max_by_key(|&i| pool[i].capacity());
    let mut buffer = largest.map(|i| pool.swap_remove(i)).unwrap_or_default();
    buffer.clear();
    buffer
}

/// Hands the bytes of a download back once nothing else holds them (a copy
/// still shared elsewhere is left alone).
pub fn recycle(bytes: Bytes) {
    if let Some(buffer) = sole_owner(bytes) {
        give_back(buffer);
    }
}

/// The buffer behind `bytes`, when nothing else holds it.
fn sole_owner(bytes: Bytes) -> Option<Vec<u8>> {
    bytes.try_into_mut().ok().map(Vec::from)
}

/// Hands a buffer back for the next picture. Outside the kept sizes it is
/// freed; beyond [`KEPT`] buffers or [`KEPT_TOTAL_BYTES`], the smallest go.
pub(crate) fn give_back(buffer: Vec<u8>) {
    if !(MIN_KEPT_BYTES..=MAX_KEPT_BYTES).contains(&buffer.capacity()) {
        return;
    }
    let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    pool.push(buffer);
    pool.sort_unstable_by_key(|kept| std::cmp::Reverse(kept.capacity()));
    let mut total = 0;
    let within = pool
        .iter()
        .take(KEPT)
        .take_while(|kept| {
            total += kept.capacity();
            total <= KEPT_TOTAL_BYTES
        })
        .count();
    pool.truncate(within);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_buffer_carries_nothing_from_the_last_picture() {
        let len = 2 << 20;
        give_back(vec![0xAA; len]);
        let reused = take(len - 7);
        assert_eq!(reused.len(), len - 7);
        assert!(reused.iter().all(|&byte| byte == 0));
        // Too small or too large to keep: freed, never handed out again.
        give_back(vec![0xBB; 1024]);
        give_back(vec![0xCC; MAX_KEPT_BYTES + 1]);
        // Never more than the count and the total, however many come back.
        for _ in 0..3 {
            give_back(vec![0xDD; MAX_KEPT_BYTES]);
        }
        let kept = POOL.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(
            kept.iter()
                .all(|b| (MIN_KEPT_BYTES..=MAX_KEPT_BYTES).contains(&b.capacity()))
        );
        assert!(kept.len() <= KEPT);
        assert!(kept.iter().map(Vec::capacity).sum::<usize>() <= KEPT_TOTAL_BYTES);
    }

    #[test]
    fn a_download_is_reused_only_when_nothing_else_holds_it() {
        // Filled to its capacity, and (a kept buffer, larger than the
        // download) not: `Bytes` keeps the two differently.
        for (capacity, len) in [(3 << 20, 3 << 20), (8 << 20, 3 << 20)] {
            let mut download = Vec::with_capacity(capacity);
            download.resize(len, 0xDD);
            let address = download.as_ptr();
            let download = Bytes::from(download);
            let still_held = download.clone();
            assert!(
                sole_owner(download).is_none(),
                "shared bytes are not reused"
            );
            let buffer = sole_owner(still_held).expect("the last holder gives it back");
            assert_eq!(buffer.as_ptr(), address, "the same memory, not a copy");
            assert!(buffer.capacity() >= capacity);
        }
        assert!(for_download().is_empty(), "handed out empty");
    }
}
