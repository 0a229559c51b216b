//! glibc malloc settings for a long-running server with many short sessions.
//!
//! Measured (bench/memory.py, docs/benchmarks.md "Memory"): with glibc's
//! defaults, memory freed when sessions end stays resident. glibc gives each
//! thread that allocates under contention an arena of its own (up to 8 per core;
//! tokio's blocking pool runs every local file read and write on threads of its
//! own), raises its mmap threshold to the largest block freed so far (so the
//! 256 KiB transfer chunks move from mmap, returned at free, into the arenas), and
//! returns arena memory only from the top of a heap. So:
//! - few arenas ([`ARENAS`]): less memory stranded in idle threads' arenas;
//! - a fixed mmap threshold ([`MMAP_THRESHOLD`]): S3 parts and other large
//!   buffers are mapped and unmapped, never kept in an arena;
//! - `malloc_trim` shortly after sessions end, which also releases free pages in
//!   the middle of the heaps.
//!
//! Elsewhere (another libc) these are no-ops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Malloc arenas at most: the main one and one more (tokio's two workers on two
/// cores rarely contend on malloc for long).
pub const ARENAS: i32 = 2;
/// Blocks at least this large are mmapped and given back when freed.
pub const MMAP_THRESHOLD: i32 = 1 << 20;
/// How long after a session ends free memory is given back (one trim for many
/// sessions ending together).
const TRIM_DELAY: Duration = Duration::from_secs(1);

static TRIM_PENDING: AtomicBool = AtomicBool::new(false);

/// Applies the settings; call once, as early as possible (arenas made before
/// stay).
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; any value is accepted
    // or refused with 0.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        // Set explicitly too, so glibc keeps both fixed instead of raising them.
        libc::mallopt(libc::M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD);
    }
}

/// A session ended: give free memory back to the system soon (once for many).
pub fn session_ended() {
    if TRIM_PENDING.swap(true, Ordering::AcqRel) {
        return;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(async {
                tokio::time::sleep(TRIM_DELAY).await;
                TRIM_PENDING.store(false, Ordering::Release);
                // It walks every heap: off the async workers.
                let _ = tokio::task::spawn_blocking(trim).await;
            });
        }
        Err(_) => TRIM_PENDING.store(false, Ordering::Release),
    }
}

/// Returns free heap pages to the system.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
