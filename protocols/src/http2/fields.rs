//! An HTTP/2 field list packed into one buffer (RFC 9113 8.2): what the HPACK decoder writes a
//! header block into, what the connection hands to the application, and what the application
//! fills to send a head or trailers.
//!
//! Owns: [`Fields`]. Every name and value sits back to back in one byte buffer and the list keeps
//! `u32` offsets into it, so a field list costs one allocation for its bytes and one for its
//! offsets, whatever the number of fields: no allocation or reference count per field. A request
//! head is built over the same buffer without copying ([`crate::http2::request_head`]).
//!
//! Does not: judge names or values (`conn::validate` does for received lists), or encode them
//! ([`crate::http2::hpack::Encoder`]).

use std::fmt;

use bytes::BytesMut;

/// Where one field is in [`Fields::buf`]: the value follows the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) start: u32,
    pub(crate) name_end: u32,
    pub(crate) end: u32,
    /// Received as a literal never indexed (RFC 7541 §6.2.3).
    pub(crate) sensitive: bool,
}

/// A field list, pseudo-header fields first when it is a head: one buffer of names and values
/// and the offsets of each field. Offsets are `u32`: a list holds at most 4 GiB, far above any
/// header list size limit.
#[derive(Clone, Default)]
pub struct Fields {
    pub(crate) buf: BytesMut,
    pub(crate) slots: Vec<Slot>,
    /// Every regular (non-pseudo) name is a token and every regular value an RFC 9110 field
    /// value: learned by the connection's checks (`conn::validate`) in their one pass, so that
    /// `request_head` need not look at the octets again. Cleared by every push.
    pub(crate) http1_valid: bool,
}

impl Fields {
    /// An empty list that allocates nothing until the first field.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty list with room for `bytes` octets of names and values and `fields` fields.
    pub fn with_capacity(bytes: usize, fields: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(bytes),
            slots: Vec::with_capacity(fields),
            http1_valid: false,
        }
    }

    /// Appends `name: value` as given.
    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(name);
        let name_end = self.buf.len();
        self.buf.extend_from_slice(value);
        self.push_slot(start, name_end, false);
    }

    /// Appends a field whose value is `parts` concatenated, with the name ASCII-lowercased as
    /// HTTP/2 requires (RFC 9113 8.2.1: "field names MUST be converted to lowercase").
    pub fn push_lowercase(&mut self, name: &[u8], parts: &[&[u8]]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(name);
        if let Some(name) = self.buf.get_mut(start..) {
            make_lowercase(name);
        }
        let name_end = self.buf.len();
        for part in parts {
            self.buf.extend_from_slice(part);
        }
        self.push_slot(start, name_end, false);
    }

    /// Records the field whose name is `buf[start..name_end]` and whose value runs from there to
    /// the end of the buffer.
    pub(crate) fn push_slot(&mut self, start: usize, name_end: usize, sensitive: bool) {
        self.http1_valid = false;
        self.slots.push(Slot {
            start: start as u32,
            name_end: name_end as u32,
            end: self.buf.len() as u32,
            sensitive,
        });
    }

    /// The name and value of `slot`.
    fn at(&self, slot: &Slot) -> (&[u8], &[u8]) {
        let at = |a: u32, b: u32| self.buf.get(a as usize..b as usize).unwrap_or_default();
        (at(slot.start, slot.name_end), at(slot.name_end, slot.end))
    }

    /// The fields in order, as `(name, value)`.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + Clone {
        self.slots.iter().map(|s| self.at(s))
    }

    /// The field at position `i`.
    pub fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.slots.get(i).map(|s| self.at(s))
    }

    /// The value of the first field named `name` (compared exactly: HTTP/2 names are lowercase).
    pub fn value_of(&self, name: &[u8]) -> Option<&[u8]> {
        self.iter().find(|&(n, _)| n == name).map(|(_, v)| v)
    }

    /// Whether the field at position `i` was received as a literal never indexed (RFC 7541
    /// §6.2.3), which a proxy should forward the same way.
    pub fn is_sensitive(&self, i: usize) -> bool {
        self.slots.get(i).is_some_and(|s| s.sensitive)
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The octets of the buffer: every name and value (and those of removed fields).
    pub fn byte_len(&self) -> usize {
        self.buf.len()
    }

    /// Keeps only the fields for which `keep(name, value)` is true. The removed fields' octets
    /// stay in the buffer until [`Self::clear`].
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8], &[u8]) -> bool) {
        let buf = &self.buf;
        self.slots.retain(|s| {
            let at = |a: u32, b: u32| buf.get(a as usize..b as usize).unwrap_or_default();
            keep(at(s.start, s.name_end), at(s.name_end, s.end))
        });
    }

    /// Removes every field, keeping the allocations.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.slots.clear();
        self.http1_valid = false;
    }
}

/// Two lists are equal when they hold the same fields in the same order, wherever the octets
/// sit in their buffers.
impl PartialEq for Fields {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Fields {}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            }))
            .finish()
    }
}

impl<N: AsRef<[u8]>, V: AsRef<[u8]>> Extend<(N, V)> for Fields {
    fn extend<I: IntoIterator<Item = (N, V)>>(&mut self, iter: I) {
        for (n, v) in iter {
            self.push(n.as_ref(), v.as_ref());
        }
    }
}

impl<N: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(N, V)> for Fields {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut fields = Self::new();
        fields.extend(iter);
        fields
    }
}

/// ASCII-lowercases `b` in place, eight bytes at a time.
fn make_lowercase(b: &mut [u8]) {
    let mut words = b.chunks_exact_mut(8);
    for w in &mut words {
        let mut x = [0u8; 8];
        x.copy_from_slice(w);
        w.copy_from_slice(&lowercase8(u64::from_le_bytes(x)).to_le_bytes());
    }
    words.into_remainder().make_ascii_lowercase();
}

/// Each byte of `x` ASCII-lowercased (`A`-`Z` plus 0x20, every other byte as it is).
pub(crate) fn lowercase8(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES * 0x80;
    // The low seven bits of each byte: adding below 0x80 to them never carries across bytes.
    let low7 = x & !HIGH;
    let from_a = low7 + ONES * (0x80 - u64::from(b'A'));
    let past_z = low7 + ONES * (0x80 - u64::from(b'Z') - 1);
    let upper = from_a & !past_z & !x & HIGH;
    x | (upper >> 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercased_a_word_at_a_time_like_byte_by_byte() {
        // Every byte value, at every position of a word and in the tail.
        let all: Vec<u8> = (0..=255u8).collect();
        for len in [0, 1, 7, 8, 9, 16, 17, 256] {
            for start in 0..8 {
                let src: Vec<u8> = all.iter().cycle().skip(start).take(len).copied().collect();
                let mut got = src.clone();
                make_lowercase(&mut got);
                assert_eq!(got, src.to_ascii_lowercase(), "len {len} start {start}");
            }
        }
        let mut packed = Fields::new();
        packed.push_lowercase(b"X-Forwarded-FOR", &[b"1.2.3.4"]);
        for name in ["Content-Type", "X-Custom-Thing", "already-lower"] {
            packed.push_lowercase(name.as_bytes(), &[]);
        }
        let names: Vec<_> = packed.iter().map(|(n, _)| n).collect();
        let want: [&[u8]; 4] = [
            b"x-forwarded-for",
            b"content-type",
            b"x-custom-thing",
            b"already-lower",
        ];
        assert_eq!(names, want);
        assert_eq!(packed.get(0).map(|(_, v)| v), Some(&b"1.2.3.4"[..]));
    }

    #[test]
    fn fields_are_read_back_in_order_and_compare_by_content() {
        let mut a = Fields::with_capacity(64, 4);
        a.push(b":status", b"200");
        a.push(b"X-Kept", b"as given");
        a.push_lowercase(b"Grpc-Status", &[b"1", b"4"]);
        assert_eq!(a.len(), 3);
        assert_eq!(a.get(1), Some((&b"X-Kept"[..], &b"as given"[..])));
        assert_eq!(a.value_of(b"grpc-status"), Some(&b"14"[..]));
        assert_eq!(a.get(3), None);
        assert!(!a.is_sensitive(0));
        a.retain(|n, _| n != b"X-Kept");
        let b: Fields = [(":status", "200"), ("grpc-status", "14")]
            .into_iter()
            .collect();
        assert_eq!(a, b);
        assert!(
            a.byte_len() > b.byte_len(),
            "removed octets stay until cleared"
        );
        a.clear();
        assert!(a.is_empty() && a.byte_len() == 0);
    }
}
