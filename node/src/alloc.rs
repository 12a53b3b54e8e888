//! The memory allocator's settings for a long-running role.

/// Blocks of this size and larger get their own mapping, returned to the kernel when freed.
pub const MMAP_THRESHOLD: usize = 1024 * 1024;

/// Fixes glibc malloc's mmap threshold at [`MMAP_THRESHOLD`]. By default glibc raises the
/// threshold to the size of each large block that is freed (up to 32 MiB), so after the first
/// 5 MiB S3 upload part every later part, and every large mail buffer, is carved from the heap
/// arenas, one per thread, whose pages stay with the process: ingest's peak for a 41 MiB mail
/// streamed to S3 was +12.6 MiB, with the threshold fixed +8.1 MiB (`bench/worker_memory.py`,
/// docs/decisions.md). Blocks under 1 MiB, all of a small mail's, are unaffected. Call it once,
/// first thing in `main`, before any thread starts. Elsewhere than glibc: nothing.
#[allow(unsafe_code)]
pub fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets a malloc parameter; it is called once, before any other
    // thread exists, with a valid parameter and value (glibc returns 0 on an error, ignored:
    // the default then stays).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
    }
}
