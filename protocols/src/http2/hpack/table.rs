//! HPACK indexing tables (RFC 7541 §2.3, §4, Appendix A).
//!
//! Owns the static table and the dynamic table: entry size accounting (name + value + 32,
//! §4.1), insertion with eviction of the oldest entries (§4.4), and resizing (§4.3). It does not
//! decide what to insert or when a resize is allowed; the encoder and decoder do.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// The per-entry overhead added to name and value lengths (§4.1).
pub(crate) const ENTRY_OVERHEAD: usize = 32;
/// Entries in the static table.
pub(crate) const STATIC_LEN: usize = 61;

/// RFC 7541 Appendix A: the static table; index `i` (1-based) is `STATIC_TABLE[i - 1]`.
pub(crate) static STATIC_TABLE: [(&[u8], &[u8]); STATIC_LEN] = [
    (b":authority", b""),                   // 1
    (b":method", b"GET"),                   // 2
    (b":method", b"POST"),                  // 3
    (b":path", b"/"),                       // 4
    (b":path", b"/index.html"),             // 5
    (b":scheme", b"http"),                  // 6
    (b":scheme", b"https"),                 // 7
    (b":status", b"200"),                   // 8
    (b":status", b"204"),                   // 9
    (b":status", b"206"),                   // 10
    (b":status", b"304"),                   // 11
    (b":status", b"400"),                   // 12
    (b":status", b"404"),                   // 13
    (b":status", b"500"),                   // 14
    (b"accept-charset", b""),               // 15
    (b"accept-encoding", b"gzip, deflate"), // 16
    (b"accept-language", b""),              // 17
    (b"accept-ranges", b""),                // 18
    (b"accept", b""),                       // 19
    (b"access-control-allow-origin", b""),  // 20
    (b"age", b""),                          // 21
    (b"allow", b""),                        // 22
    (b"authorization", b""),                // 23
    (b"cache-control", b""),                // 24
    (b"content-disposition", b""),          // 25
    (b"content-encoding", b""),             // 26
    (b"content-language", b""),             // 27
    (b"content-length", b""),               // 28
    (b"content-location", b""),             // 29
    (b"content-range", b""),                // 30
    (b"content-type", b""),                 // 31
    (b"cookie", b""),                       // 32
    (b"date", b""),                         // 33
    (b"etag", b""),                         // 34
    (b"expect", b""),                       // 35
    (b"expires", b""),                      // 36
    (b"from", b""),                         // 37
    (b"host", b""),                         // 38
    (b"if-match", b""),                     // 39
    (b"if-modified-since", b""),            // 40
    (b"if-none-match", b""),                // 41
    (b"if-range", b""),                     // 42
    (b"if-unmodified-since", b""),          // 43
    (b"last-modified", b""),                // 44
    (b"link", b""),                         // 45
    (b"location", b""),                     // 46
    (b"max-forwards", b""),                 // 47
    (b"proxy-authenticate", b""),           // 48
    (b"proxy-authorization", b""),          // 49
    (b"range", b""),                        // 50
    (b"referer", b""),                      // 51
    (b"refresh", b""),                      // 52
    (b"retry-after", b""),                  // 53
    (b"server", b""),                       // 54
    (b"set-cookie", b""),                   // 55
    (b"strict-transport-security", b""),    // 56
    (b"transfer-encoding", b""),            // 57
    (b"user-agent", b""),                   // 58
    (b"vary", b""),                         // 59
    (b"via", b""),                          // 60
    (b"www-authenticate", b""),             // 61
];

/// The static indexes `first..=last` whose name is `name`.
fn static_name_range(name: &[u8]) -> Option<(usize, usize)> {
    Some(match name {
        b":authority" => (1, 1),
        b":method" => (2, 3),
        b":path" => (4, 5),
        b":scheme" => (6, 7),
        b":status" => (8, 14),
        b"accept-charset" => (15, 15),
        b"accept-encoding" => (16, 16),
        b"accept-language" => (17, 17),
        b"accept-ranges" => (18, 18),
        b"accept" => (19, 19),
        b"access-control-allow-origin" => (20, 20),
        b"age" => (21, 21),
        b"allow" => (22, 22),
        b"authorization" => (23, 23),
        b"cache-control" => (24, 24),
        b"content-disposition" => (25, 25),
        b"content-encoding" => (26, 26),
        b"content-language" => (27, 27),
        b"content-length" => (28, 28),
        b"content-location" => (29, 29),
        b"content-range" => (30, 30),
        b"content-type" => (31, 31),
        b"cookie" => (32, 32),
        b"date" => (33, 33),
        b"etag" => (34, 34),
        b"expect" => (35, 35),
        b"expires" => (36, 36),
        b"from" => (37, 37),
        b"host" => (38, 38),
        b"if-match" => (39, 39),
        b"if-modified-since" => (40, 40),
        b"if-none-match" => (41, 41),
        b"if-range" => (42, 42),
        b"if-unmodified-since" => (43, 43),
        b"last-modified" => (44, 44),
        b"link" => (45, 45),
        b"location" => (46, 46),
        b"max-forwards" => (47, 47),
        b"proxy-authenticate" => (48, 48),
        b"proxy-authorization" => (49, 49),
        b"range" => (50, 50),
        b"referer" => (51, 51),
        b"refresh" => (52, 52),
        b"retry-after" => (53, 53),
        b"server" => (54, 54),
        b"set-cookie" => (55, 55),
        b"strict-transport-security" => (56, 56),
        b"transfer-encoding" => (57, 57),
        b"user-agent" => (58, 58),
        b"vary" => (59, 59),
        b"via" => (60, 60),
        b"www-authenticate" => (61, 61),
        _ => return None,
    })
}

/// The static entry at the 1-based `index`.
pub(crate) fn static_get(index: usize) -> Option<(&'static [u8], &'static [u8])> {
    STATIC_TABLE.get(index.checked_sub(1)?).copied()
}

/// How a field matches the static table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StaticMatch {
    /// No entry has this name.
    None,
    /// The first entry with this name (1-based), none with this value.
    Name(usize),
    /// The entry with this name and value (1-based).
    Full(usize),
}

/// Looks `name: value` up in the static table.
pub(crate) fn static_find(name: &[u8], value: &[u8]) -> StaticMatch {
    let Some((first, last)) = static_name_range(name) else {
        return StaticMatch::None;
    };
    for index in first..=last {
        if static_get(index).is_some_and(|(_, v)| v == value) {
            return StaticMatch::Full(index);
        }
    }
    StaticMatch::Name(first)
}

/// One dynamic table entry. Name and value share one allocation owned by the table, so an
/// entry never pins the header block it was decoded from.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) name: Bytes,
    pub(crate) value: Bytes,
}

impl Entry {
    /// The entry's size as §4.1 counts it.
    pub(crate) fn size(&self) -> usize {
        self.name.len() + self.value.len() + ENTRY_OVERHEAD
    }
}

/// The dynamic table (§2.3.2): a FIFO of entries, newest first, bounded by `max_size` octets.
///
/// Each inserted entry also gets an absolute id (0, 1, 2, ... in insertion order) so the encoder
/// can keep lookup maps that survive the shifting of relative indexes.
#[derive(Debug)]
pub(crate) struct DynamicTable {
    entries: VecDeque<Entry>,
    size: usize,
    max_size: usize,
    inserted: u64,
}

impl DynamicTable {
    /// An empty table bounded by `max_size` octets.
    pub(crate) fn new(max_size: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            size: 0,
            max_size,
            inserted: 0,
        }
    }

    /// The sum of entry sizes (§4.1).
    #[cfg(test)]
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The current maximum size (§4.2).
    pub(crate) fn max_size(&self) -> usize {
        self.max_size
    }

    /// Number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entry at 0-based position `i`, 0 being the newest (dynamic index `62 + i`).
    pub(crate) fn get(&self, i: usize) -> Option<&Entry> {
        self.entries.get(i)
    }

    /// Entries, newest first.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// The position of the entry with absolute id `id`, if it is still in the table.
    pub(crate) fn position_of(&self, id: u64) -> Option<usize> {
        let i = usize::try_from(self.inserted.checked_sub(id)?.checked_sub(1)?).ok()?;
        (i < self.entries.len()).then_some(i)
    }

    /// Changes the maximum size, evicting the oldest entries until the table fits (§4.3).
    /// `on_evict` sees each evicted entry with its absolute id.
    pub(crate) fn set_max_size(&mut self, max_size: usize, on_evict: impl FnMut(u64, &Entry)) {
        self.max_size = max_size;
        self.evict_to(max_size, on_evict);
    }

    /// Inserts `name: value` as the newest entry, copying both, after evicting what is needed
    /// to make room (§4.4). An entry larger than the maximum size empties the table and is not
    /// inserted. Returns the new entry's absolute id when inserted.
    pub(crate) fn insert(
        &mut self,
        name: &[u8],
        value: &[u8],
        on_evict: impl FnMut(u64, &Entry),
    ) -> Option<u64> {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        if size > self.max_size {
            // §4.4: "an attempt to add an entry larger than the maximum size causes the table
            // to be emptied of all existing entries and results in an empty table."
            self.evict_to(0, on_evict);
            return None;
        }
        self.evict_to(self.max_size - size, on_evict);
        let mut buf = BytesMut::with_capacity(name.len() + value.len());
        buf.extend_from_slice(name);
        buf.extend_from_slice(value);
        let mut entry_name = buf.freeze();
        let entry_value = entry_name.split_off(name.len());
        self.entries.push_front(Entry {
            name: entry_name,
            value: entry_value,
        });
        self.size += size;
        let id = self.inserted;
        self.inserted += 1;
        Some(id)
    }

    /// Evicts the oldest entries until the size is at most `target`.
    fn evict_to(&mut self, target: usize, mut on_evict: impl FnMut(u64, &Entry)) {
        while self.size > target {
            let id = self.inserted - self.entries.len() as u64;
            let Some(entry) = self.entries.pop_back() else {
                self.size = 0;
                break;
            };
            self.size -= entry.size();
            on_evict(id, &entry);
        }
    }
}
