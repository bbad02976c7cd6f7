//! The binary's allocator: mimalloc, told to hand freed memory back to the
//! system after 10 ms instead of its default 1 s (v3's; v2's was 10 ms).
//!
//! A replay frees a batch's records, documents and history as the next
//! batch is decoded; with the default delay those pages are still counted
//! against the process when the next batch peaks. At 10 ms `replay` of a
//! 1M-record day peaks ~40 MiB lower (~190 MiB instead of ~233) for ~5 % of
//! its speed; 1 ms saves little more and costs ~14 % (BENCHMARKS.md).
//! `MIMALLOC_PURGE_DELAY` in the environment still wins (`=1000` for the
//! old speed, `=0` for the least memory).

use std::os::raw::{c_int, c_long};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mi_option_t` (v2 and v3 alike;
/// libmimalloc-sys does not export the option constants, and builds v3).
const PURGE_DELAY: c_int = 15;
/// mimalloc's documented default for it, in ms: the check that
/// [`PURGE_DELAY`] names the option we mean.
const DEFAULT_PURGE_DELAY_MS: c_long = 1000;
const PURGE_DELAY_MS: c_long = 10;

extern "C" {
    fn mi_option_get(option: c_int) -> c_long;
    fn mi_option_set(option: c_int, value: c_long);
}

/// Purge freed pages after [`PURGE_DELAY_MS`], unless the environment says
/// otherwise. Returns the delay in force, in ms.
pub fn return_freed_memory_promptly() -> c_long {
    // SAFETY: plain option reads and writes of the linked mimalloc; they
    // take effect at its next purge and are safe at any time.
    unsafe {
        let now = mi_option_get(PURGE_DELAY);
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() && now == DEFAULT_PURGE_DELAY_MS {
            mi_option_set(PURGE_DELAY, PURGE_DELAY_MS);
        }
        mi_option_get(PURGE_DELAY)
    }
}
