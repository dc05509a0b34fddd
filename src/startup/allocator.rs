//! How the process's memory allocator is set up.
//!
//! glibc's malloc serves blocks above its mmap threshold with their own
//! mappings, returned to the system when freed, but it raises that threshold
//! (up to 32 MiB) each time such a block is freed. After the first picture,
//! download and decode buffers of a few MiB therefore came from the heap arenas,
//! one per busy thread, and stayed there: 32 updates of a 12 MP picture at once
//! peaked at 128–135 MiB, against 68 MiB with the threshold fixed at 1 MiB
//! (bench/run.sh, row 6).

/// Fixes glibc's mmap threshold at 1 MiB, unless `MALLOC_MMAP_THRESHOLD_` says
/// otherwise. Elsewhere (musl, other systems) it does nothing.
pub fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        const THRESHOLD: libc::c_int = 1 << 20;
        // SAFETY: mallopt only sets a parameter of the allocator, which takes
        // it under its own lock; no memory is touched.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD);
        }
    }
}
