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
/// Buffers provided at first. Whenever more than half of those provided are out (filled by
/// the kernel and not yet given back), as many again are provided, up to `ENTRIES`. The
/// kernel takes buffers in ring order, so every buffer provided is soon touched: a worker
/// whose arrivals never pile up keeps 64 KiB of them resident, not the whole 1 MiB.
const FIRST: u16 = 16;
/// Bytes in each buffer.
pub(crate) const BUF_SIZE: u32 = 4096;

/// A registered ring of provided buffers, all the same size.
pub(crate) struct BufRing {
    ring: *mut BufRingEntry,
    bufs: *mut u8,
    /// The next entry the application fills (the kernel consumes from its head).
    tail: u16,
    /// Buffers `0..provided` are in circulation.
    provided: u16,
    /// Of those, the ones the kernel filled that have not been given back.
    out: u16,
    /// Buffers filled since the last [`release_if_quiet`](Self::release_if_quiet).
    fills: u32,
    /// The buffers' pages were given back and nothing was filled since.
    released: bool,
}

impl BufRing {
    fn ring_layout() -> Layout {
        Layout::from_size_align(ENTRIES as usize * std::mem::size_of::<BufRingEntry>(), 4096)
            .expect("layout")
    }

    fn bufs_len() -> usize {
        ENTRIES as usize * BUF_SIZE as usize
    }

    /// A ring with its first buffers provided, registered with `uring`; `None` where the kernel
    /// has no buffer rings (before 5.19) or refuses it.
    pub(crate) fn register(uring: &IoUring) -> Option<Self> {
        // SAFETY: the layout has a non-zero size.
        let ring = unsafe { alloc_zeroed(Self::ring_layout()) } as *mut BufRingEntry;
        if ring.is_null() {
            return None;
        }
        // Mapped, not allocated: its pages are given back with `madvise` while it is quiet,
        // which must not touch memory an allocator manages.
        // SAFETY: an anonymous private mapping; the result is checked.
        let bufs = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                Self::bufs_len(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if bufs == libc::MAP_FAILED {
            unsafe { dealloc(ring as *mut u8, Self::ring_layout()) };
            return None;
        }
        let bufs = bufs as *mut u8;
        let mut me = BufRing {
            ring,
            bufs,
            tail: 0,
            provided: 0,
            out: 0,
            fills: 0,
            released: false,
        };
        // SAFETY: the ring's memory lives until `Drop`, which runs after the uring is gone
        // (the driver drops its ring first).
        let registered = unsafe { uring.submitter().register_buf_ring(ring as u64, ENTRIES, BGID) };
        if registered.is_err() {
            return None; // Drop frees the memory
        }
        me.provide(FIRST);
        Some(me)
    }

    /// Puts buffers `provided..to` in circulation.
    fn provide(&mut self, to: u16) {
        for bid in self.provided..to {
            self.push(bid);
        }
        self.provided = to;
        self.publish();
    }

    /// Buffers in circulation: `FIRST`, or the most that were ever needed.
    pub(crate) fn provided(&self) -> usize {
        self.provided as usize
    }

    /// Notes a completion: with a buffer, the kernel filled it; more are provided when more
    /// than half are out.
    pub(crate) fn filled(&mut self, flags: u32) {
        if buffer_of(flags).is_none() {
            return;
        }
        self.out += 1;
        self.fills += 1;
        self.released = false;
        if self.out > self.provided / 2 && self.provided < ENTRIES {
            self.provide((self.provided * 2).min(ENTRIES));
        }
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

    /// Gives the buffers' pages back to the system when none was filled since the last call
    /// and none is out, so that a worker gone quiet holds none of them (the kernel faults in
    /// fresh zeroed pages as it fills buffers again). `settled`: no completion is waiting to
    /// be reaped, in the ring or overflowed, so every filled buffer is counted in `out`. The
    /// ring must defer its task work (`IORING_SETUP_DEFER_TASKRUN`), so that the kernel fills
    /// buffers only inside `io_uring_enter` and none is being filled now.
    /// Whether the pages were given back.
    pub(crate) fn release_if_quiet(&mut self, settled: bool) -> bool {
        let quiet = self.fills == 0;
        self.fills = 0;
        if !quiet || !settled || self.out != 0 || self.released {
            return false;
        }
        // SAFETY: the range is this ring's own mapping; no buffer in it holds bytes anyone
        // will read (none is out), and the kernel is not writing to it (above).
        let r = unsafe {
            libc::madvise(
                self.bufs as *mut libc::c_void,
                self.provided as usize * BUF_SIZE as usize,
                libc::MADV_DONTNEED,
            )
        };
        self.released = r == 0;
        self.released
    }

    /// Gives buffer `bid` back to the kernel.
    pub(crate) fn recycle(&mut self, bid: u16) {
        self.out -= 1;
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
        // SAFETY: allocated and mapped in `register`, with these sizes.
        unsafe {
            dealloc(self.ring as *mut u8, Self::ring_layout());
            libc::munmap(self.bufs as *mut libc::c_void, Self::bufs_len());
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
