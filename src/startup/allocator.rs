//! How the process's memory allocator is set up.
//!
//! glibc's malloc serves blocks above its mmap threshold with their own
//! mappings, returned to the system when freed, but it raises that threshold
//! (up to 32 MiB) each time such a block is freed. After the first picture,
//! download and decode buffers of several MiB therefore came from the heap
//! arenas, one per busy thread, and stayed there: 32 updates of a 12 MP picture
//! at once peaked at 128–186 MiB. A fixed threshold returns them; the trim
//! threshold keeps the main heap's top (smaller, reused buffers) instead of
//! handing it back and faulting it in again on the next update. Measured with
//! bench/run.sh's rows 1 and 6 (1080p update CPU / peak RSS): 1 MiB + default
//! trim 55 ms / 70 MiB; 4 MiB + 64 MiB trim 45 ms / 109 MiB; glibc's own
//! behaviour 46 ms / 186 MiB.

/// Fixes glibc's mmap threshold at 4 MiB and its trim threshold at 64 MiB,
/// each unless its `MALLOC_…_` variable says otherwise. Elsewhere (musl, other
/// systems) it does nothing.
pub fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (variable, parameter, value) in [
        ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 4 << 20),
        ("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, 64 << 20),
    ] {
        if std::env::var_os(variable).is_none() {
            // SAFETY: mallopt only sets a parameter of the allocator, which
            // takes it under its own lock; no memory is touched.
            unsafe {
                libc::mallopt(parameter, value);
            }
        }
    }
}
