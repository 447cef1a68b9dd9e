//! The process's allocator: mimalloc, asked the way its fast paths expect.
//!
//! `mimalloc::MiMalloc` sends every allocation through `mi_malloc_aligned`, whatever its
//! alignment. In mimalloc 3 that call takes the generic path whenever the thread's page for the
//! size class has no free block at hand or the size is above 1 KiB, and there a size whose
//! block is not a power of two is over-allocated and aligned by hand: measured with callgrind on
//! the h2c benchmark, 4.6 such allocations per request at about 250 instructions each (a
//! stream's task, read and write buffers). An alignment of at most 16 that is not above the
//! size is what `mi_malloc` already guarantees, so those go to `mi_malloc` and only the rare
//! larger alignments (timer entries, cache-padded stats) to the aligned calls.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// mimalloc's guaranteed alignment for a block of at least this many bytes (`MI_MAX_ALIGN_SIZE`).
const MIN_ALIGN: usize = 16;

/// The global allocator of the `ringway` binary.
pub struct Allocator;

/// Whether `mi_malloc` alone gives `layout` its alignment: mimalloc aligns every block to 16
/// bytes, and a smaller block to its size class, which is at least the (power-of-two) alignment
/// when the alignment is not above the size.
fn plain(align: usize, size: usize) -> bool {
    align <= MIN_ALIGN && align <= size
}

// SAFETY: every block comes from mimalloc with at least the layout's size and alignment (`plain`
// states when the unaligned calls suffice), and is freed or resized only by mimalloc.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain C calls; a null return is passed on as allocation failure.
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (GlobalAlloc's contract), so from mimalloc,
        // whose `mi_free` takes blocks of either kind.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`; the new block keeps the
        // alignment by the same rule as `alloc`.
        unsafe {
            if plain(layout.align(), new_size) {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_have_their_alignment_at_every_size() {
        let a = Allocator;
        for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
            for size in [1, 3, 8, 15, 16, 24, 100, 1000, 1500, 6000, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero size; the block is freed with the same layout.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    p.write_bytes(0xa5, size);
                    let q = a.realloc(p, layout, size * 3);
                    assert_eq!(q as usize % align, 0, "realloc {size} align {align}");
                    assert_eq!(*q, 0xa5);
                    a.dealloc(q, Layout::from_size_align(size * 3, align).unwrap());
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0);
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
