//! A per-thread free list of reusable values that lets go of what an idle spell did not use.
//!
//! Owns: [`FreeList`]. A pool sized for bursts keeps its peak after the burst is over: 64 read
//! buffers are 1 MiB, which 5,000 idle connections would then carry at about 200 bytes each.
//! So the list tracks its low-water mark, the fewest values it held since the last
//! [`FreeList::trim`]: that many were not needed by anyone in the whole interval and are
//! dropped. Under steady load the list runs near empty and nothing is dropped; once traffic
//! stops, the next trim empties it. Does not: allocate values (callers make them when the list
//! is empty) or decide what may be reused.

/// Values kept for reuse, at most `max`, newest on top.
pub(crate) struct FreeList<T> {
    items: Vec<T>,
    max: usize,
    /// The fewest values held since the last trim.
    low: usize,
}

impl<T> FreeList<T> {
    /// An empty list that keeps at most `max` values.
    pub(crate) const fn new(max: usize) -> Self {
        Self {
            items: Vec::new(),
            max,
            low: 0,
        }
    }

    /// The most recently returned value, if any.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let v = self.items.pop();
        self.low = self.low.min(self.items.len());
        v
    }

    /// Keep `v` for reuse, unless the list is full (then it is dropped).
    pub(crate) fn push(&mut self, v: T) {
        if self.items.len() < self.max {
            self.items.push(v);
        }
    }

    /// Drop the values no `pop` reached since the last trim (the oldest ones), and start a new
    /// interval. Called once a second by the worker's housekeeping.
    pub(crate) fn trim(&mut self) {
        let unused = self.low.min(self.items.len());
        self.items.drain(..unused);
        if self.items.is_empty() {
            self.items.shrink_to_fit();
        }
        self.low = self.items.len();
    }

    /// The values held now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether a value is held now ([`Self::pop`] would return one).
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_drops_what_an_interval_did_not_use() {
        let mut l = FreeList::new(8);
        for i in 0..6 {
            l.push(i);
        }
        // First interval: the mark starts at zero, so nothing is known to be unused.
        l.trim();
        assert_eq!(l.len(), 6);
        // Busy interval: down to 2 held, then all back.
        let taken: Vec<_> = (0..4).filter_map(|_| l.pop()).collect();
        for v in taken {
            l.push(v);
        }
        l.trim();
        assert_eq!(l.len(), 4, "the 2 never taken are dropped");
        // Idle interval: nothing taken, all dropped.
        l.trim();
        assert_eq!(l.len(), 0);
        // A full list drops what comes back beyond its size.
        for i in 0..10 {
            l.push(i);
        }
        assert_eq!(l.len(), 8);
        assert_eq!(l.pop(), Some(7), "newest on top");
    }
}
