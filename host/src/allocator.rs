//! mimalloc's settings for training: the binary's allocator (`main.rs`).
//!
//! Each training step frees and allocates the same few megabyte-sized activation buffers.
//! mimalloc returns freed pages to the kernel after its purge delay (1 s); the kernel then
//! zeroes them again, as transparent huge pages, when they are next touched: about 9,000 page
//! faults in a 7-second benchmark of the reference network, against 600 with purging off.
//! A training process reuses those pages within milliseconds, so it keeps them.
#![allow(unsafe_code)]

/// `mi_option_purge_delay` in the `mi_option_t` enum of mimalloc 3 (`mimalloc.h`).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// Its default there, in milliseconds: the check that [`PURGE_DELAY`] names that option.
const DEFAULT_PURGE_DELAY_MS: std::ffi::c_long = 1000;

/// Turns mimalloc's purging of freed pages off; leaves every option as it is when the option
/// at [`PURGE_DELAY`] does not hold that option's default (another mimalloc, or a
/// `MIMALLOC_PURGE_DELAY` the user set).
pub fn keep_freed_pages() {
    // SAFETY: both calls read or write one entry of mimalloc's option table, by an index
    // inside it; mimalloc allows options to be changed at run time.
    unsafe {
        if libmimalloc_sys::mi_option_get(PURGE_DELAY) == DEFAULT_PURGE_DELAY_MS {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_named() {
        // The index names mimalloc 3's purge delay: it holds that option's documented default
        // (unless the environment sets it), and it reads back what was set.
        // SAFETY: as in `keep_freed_pages`.
        let before = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(before, DEFAULT_PURGE_DELAY_MS);
        }
        keep_freed_pages();
        let after = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        assert_eq!(
            after,
            if before == DEFAULT_PURGE_DELAY_MS {
                -1
            } else {
                before
            }
        );
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, before) };
    }
}
