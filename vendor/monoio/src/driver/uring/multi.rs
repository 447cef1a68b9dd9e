//! ringway patch: a ring of provided buffers and multishot receives that fill them.
//!
//! A multishot receive is armed once and posts a completion each time bytes arrive, each in a
//! buffer the kernel takes from the ring; the poll it arms stays armed. A connection that
//! waits for its next request therefore costs no submission, no failed receive attempt and no
//! poll arming per request, and holds no buffer of its own while it waits.

use std::{
    alloc::{alloc_zeroed, dealloc, Layout},
    collections::VecDeque,
    io,
    sync::atomic::{AtomicU16, Ordering},
    task::Waker,
};

use io_uring::{cqueue, types::BufRingEntry, IoUring};

/// The buffer group of the ring's provided buffers.
pub(crate) const BGID: u16 = 0;
/// Buffers in the ring (a power of two).
const ENTRIES: u16 = 256;
/// Bytes in each buffer.
pub(crate) const BUF_SIZE: u32 = 4096;

/// A registered ring of provided buffers, all the same size.
pub(crate) struct BufRing {
    ring: *mut BufRingEntry,
    bufs: *mut u8,
    /// The next entry the application fills (the kernel consumes from its head).
    tail: u16,
}

impl BufRing {
    fn ring_layout() -> Layout {
        Layout::from_size_align(ENTRIES as usize * std::mem::size_of::<BufRingEntry>(), 4096)
            .expect("layout")
    }

    fn bufs_layout() -> Layout {
        Layout::from_size_align(ENTRIES as usize * BUF_SIZE as usize, 4096).expect("layout")
    }

    /// A ring with every buffer provided, registered with `uring`; `None` where the kernel
    /// has no buffer rings (before 5.19) or refuses it.
    pub(crate) fn register(uring: &IoUring) -> Option<Self> {
        // SAFETY: both layouts have a non-zero size.
        let ring = unsafe { alloc_zeroed(Self::ring_layout()) } as *mut BufRingEntry;
        if ring.is_null() {
            return None;
        }
        let bufs = unsafe { alloc_zeroed(Self::bufs_layout()) };
        if bufs.is_null() {
            unsafe { dealloc(ring as *mut u8, Self::ring_layout()) };
            return None;
        }
        let mut me = BufRing {
            ring,
            bufs,
            tail: 0,
        };
        // SAFETY: the ring's memory lives until `Drop`, which runs after the uring is gone
        // (the driver drops its ring first).
        let registered = unsafe { uring.submitter().register_buf_ring(ring as u64, ENTRIES, BGID) };
        if registered.is_err() {
            return None; // Drop frees the memory
        }
        for bid in 0..ENTRIES {
            me.push(bid);
        }
        me.publish();
        Some(me)
    }

    fn push(&mut self, bid: u16) {
        let slot = (self.tail & (ENTRIES - 1)) as usize;
        // SAFETY: `slot` < ENTRIES; the kernel only reads entries before the published tail.
        let e = unsafe { &mut *self.ring.add(slot) };
        e.set_addr(self.bufs as u64 + bid as u64 * BUF_SIZE as u64);
        e.set_len(BUF_SIZE);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field overlays the first entry's reserved field; the kernel reads
        // it with acquire semantics.
        unsafe {
            let tail = BufRingEntry::tail(self.ring) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }

    /// Gives buffer `bid` back to the kernel.
    pub(crate) fn recycle(&mut self, bid: u16) {
        self.push(bid);
        self.publish();
    }

    /// The first `len` bytes of buffer `bid`, as the kernel filled them.
    pub(crate) fn data(&self, bid: u16, len: u32) -> &[u8] {
        let len = len.min(BUF_SIZE) as usize;
        let bid = bid % ENTRIES;
        // SAFETY: in bounds; the kernel gave the buffer back with this completion and does
        // not write it again until it is recycled.
        unsafe { std::slice::from_raw_parts(self.bufs.add(bid as usize * BUF_SIZE as usize), len) }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `register` with these layouts.
        unsafe {
            dealloc(self.ring as *mut u8, Self::ring_layout());
            dealloc(self.bufs, Self::bufs_layout());
        }
    }
}

/// The completions of a multishot operation not yet taken by its owner.
pub(crate) struct MultiState {
    pub(crate) queue: VecDeque<(io::Result<u32>, u32)>,
    pub(crate) waker: Option<Waker>,
    /// The owner is gone: completions give their buffers straight back, and the entry is
    /// removed with the last one. Holds what must live until then (the socket).
    pub(crate) ignored: Option<Box<dyn std::any::Any>>,
}

impl MultiState {
    pub(crate) fn new() -> Self {
        MultiState {
            queue: VecDeque::new(),
            waker: None,
            ignored: None,
        }
    }
}

/// Whether a multishot completion is its last.
pub(crate) fn is_last(flags: u32) -> bool {
    !cqueue::more(flags)
}

/// The provided buffer a completion filled, if any.
pub(crate) fn buffer_of(flags: u32) -> Option<u16> {
    cqueue::buffer_select(flags)
}

/// Gives back to `bufs` the buffer a completion with `flags` filled, if it filled one.
pub(crate) fn give_back(bufs: Option<&mut BufRing>, flags: u32) {
    if let (Some(bid), Some(bufs)) = (buffer_of(flags), bufs) {
        bufs.recycle(bid);
    }
}
