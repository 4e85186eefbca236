//! The binaries' global allocator, and how soon it gives freed memory back.
//!
//! `faas-gateway` and `fwatchdog` allocate through mimalloc: per-thread
//! heaps, where glibc malloc's arena locks showed up as futex waits and
//! ~10% of the gateway's CPU under load (BENCHMARKS.md). mimalloc 3 keeps
//! memory freed by the program for 1 s before it returns it to the OS; a
//! gateway under churn then swung by 5–10 MiB between RSS samples 10 s
//! apart, which an operator reads as growth and a soak cannot tell from a
//! leak. Each binary therefore calls [`purge_promptly`] first thing in
//! `main`, which shortens the delay to [`PURGE_DELAY`].
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOCATOR: faas_upstream::allocator::Allocator = faas_upstream::allocator::Allocator;
//!
//! fn main() {
//!     faas_upstream::allocator::purge_promptly();
//!     // ...
//! }
//! ```
// The one reviewed use of mimalloc's C API: two calls, each with its
// SAFETY comment.
#![allow(unsafe_code)]

use std::time::Duration;

use libmimalloc_sys::{mi_option_get, mi_option_set, mi_option_t};

/// mimalloc as a Rust global allocator.
pub use mimalloc::MiMalloc as Allocator;

/// How long freed memory is kept before it goes back to the OS once
/// [`purge_promptly`] ran: 250 ms. Shorter costs time where a request
/// frees and a next one allocates again the same megabytes: with 10 ms
/// (mimalloc 2's default) a list of 10,000 functions took 23–26 ms
/// instead of 15.5–16.5 ms, the memory returned and faulted in again
/// between listings. With 250 ms a 30-minute soak's RSS stayed within
/// 29.9–33.8 MiB after its warm-up (BENCHMARKS.md, "10. Soak").
pub const PURGE_DELAY: Duration = Duration::from_millis(250);

/// The environment variable through which mimalloc reads its purge delay
/// (milliseconds) at start; when it is set, [`purge_promptly`] leaves the
/// operator's value.
pub const PURGE_DELAY_ENV: &str = "MIMALLOC_PURGE_DELAY";

/// `mi_option_purge_delay`'s index in `mi_option_t` (mimalloc.h, both
/// series): the Rust bindings do not name it. A test checks it against
/// the option's documented default.
const OPTION_PURGE_DELAY: mi_option_t = 15;

/// Sets mimalloc's purge delay to [`PURGE_DELAY`], unless
/// [`PURGE_DELAY_ENV`] is set. Memory freed before the call is purged on
/// the old schedule; call it first thing in `main`.
pub fn purge_promptly() {
    if std::env::var_os(PURGE_DELAY_ENV).is_some() {
        return;
    }
    let millis = PURGE_DELAY.as_millis() as std::ffi::c_long;
    // SAFETY: `mi_option_set` stores a value in mimalloc's option table; it
    // has no pointer arguments, takes any index below `_mi_option_last`
    // (15 is below it in both series) and may be called from any thread
    // at any time (the table's entries are read and written atomically).
    unsafe { mi_option_set(OPTION_PURGE_DELAY, millis) }
}

/// mimalloc's purge delay now in force.
pub fn purge_delay() -> Duration {
    // SAFETY: as in `purge_promptly`: a read of the option table, no
    // pointers, an index below `_mi_option_last`.
    let millis = unsafe { mi_option_get(OPTION_PURGE_DELAY) };
    Duration::from_millis(millis.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The name of the test below, run again by
    /// `an_operators_purge_delay_is_left_as_set` with the variable set.
    const INDEX_TEST: &str = "allocator::tests::the_index_is_the_purge_delay_and_purge_promptly_sets_it";

    // The only test of this binary that reads or sets the option. It is
    // also what proves the index: of all mimalloc 3's options only
    // `purge_delay` defaults to 1000.
    #[test]
    fn the_index_is_the_purge_delay_and_purge_promptly_sets_it() {
        if let Some(set) = std::env::var_os(PURGE_DELAY_ENV) {
            // The operator's value, read by mimalloc at start, wins and stays.
            let millis: u64 = set.to_str().and_then(|v| v.parse().ok()).expect("a number of milliseconds");
            assert_eq!(purge_delay(), Duration::from_millis(millis), "{PURGE_DELAY_ENV} read at start");
            purge_promptly();
            assert_eq!(purge_delay(), Duration::from_millis(millis), "{PURGE_DELAY_ENV} is set: its value stays");
            return;
        }
        assert_eq!(purge_delay(), Duration::from_secs(1), "mimalloc 3's default");
        purge_promptly();
        assert_eq!(purge_delay(), PURGE_DELAY);
    }

    /// The test above in a process of its own started with
    /// `MIMALLOC_PURGE_DELAY=77`: mimalloc reads its options when the
    /// process starts, so the variable cannot be set from within.
    #[test]
    fn an_operators_purge_delay_is_left_as_set() {
        if std::env::var_os(PURGE_DELAY_ENV).is_some() {
            return; // the outer run is the one that checks
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([INDEX_TEST, "--exact", "--test-threads=1"])
            .env(PURGE_DELAY_ENV, "77")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("1 passed"), "the test ran in the child: {stdout}");
    }
}
