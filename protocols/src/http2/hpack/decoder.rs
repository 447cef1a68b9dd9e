//! The HPACK decoder (RFC 7541 §3, §5, §6) and the RFC 9113 §8.2.1 field checks.
//!
//! Owns the peer-to-us dynamic table and turns one complete header block into a packed
//! [`Fields`] list, every name and value copied into its one buffer. It does not reassemble
//! CONTINUATION frames, and it does not judge names or values (uppercase names,
//! pseudo-headers): that is a stream error the caller decides with [`is_valid_name`] and
//! [`is_valid_value`], not a compression error.

use bytes::BytesMut;

use super::table::{DynamicTable, ENTRY_OVERHEAD, STATIC_LEN, STATIC_TABLE, static_get};
use super::{DEFAULT_TABLE_SIZE, Error, huffman};
use crate::http2::Fields;

/// Continuation octets allowed after a full prefix: 5 x 7 bits covers 2^32 - 1 (§5.1).
const MAX_CONTINUATION: usize = 5;

/// The octets of every static entry's name and value.
#[allow(
    clippy::indexing_slicing,
    reason = "computed at compile time over the STATIC_LEN entries"
)]
const STATIC_BYTES: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < STATIC_LEN {
        let (name, value) = STATIC_TABLE[i];
        n += name.len() + value.len();
        i += 1;
    }
    n
};

/// The static table (Appendix A) with each entry's name and value back to back, so that an
/// indexed static field is copied in one piece: the octets, and per entry where it starts,
/// where its name ends and where its value ends.
struct PackedStatic {
    bytes: [u8; STATIC_BYTES],
    spans: [[u16; 3]; STATIC_LEN],
}

#[allow(
    clippy::indexing_slicing,
    reason = "built at compile time from STATIC_TABLE, within the lengths it sums"
)]
static PACKED_STATIC: PackedStatic = {
    let mut packed = PackedStatic {
        bytes: [0; STATIC_BYTES],
        spans: [[0; 3]; STATIC_LEN],
    };
    let mut at = 0;
    let mut i = 0;
    while i < STATIC_LEN {
        let (name, value) = STATIC_TABLE[i];
        let start = at;
        let mut j = 0;
        while j < name.len() {
            packed.bytes[at] = name[j];
            at += 1;
            j += 1;
        }
        let name_end = at;
        j = 0;
        while j < value.len() {
            packed.bytes[at] = value[j];
            at += 1;
            j += 1;
        }
        packed.spans[i] = [start as u16, name_end as u16, at as u16];
        i += 1;
    }
    packed
};

/// The static entry at the 1-based `index` as one slice of name and value, and the name's
/// length.
fn static_field(index: usize) -> Option<(&'static [u8], usize)> {
    let [start, name_end, end] = *PACKED_STATIC.spans.get(index.checked_sub(1)?)?;
    let field = PACKED_STATIC
        .bytes
        .get(usize::from(start)..usize::from(end))?;
    Some((field, usize::from(name_end - start)))
}

/// Decodes header blocks from one peer, keeping the dynamic table in step with its encoder.
#[derive(Debug)]
pub struct Decoder {
    table: DynamicTable,
    /// Our `SETTINGS_HEADER_TABLE_SIZE`: the ceiling for the peer's size updates.
    max_allowed: usize,
}

impl Decoder {
    /// A decoder for a connection whose `SETTINGS_HEADER_TABLE_SIZE` is `max_table_size`.
    ///
    /// The table itself starts at the protocol's initial 4096 octets (RFC 9113 §6.5.2), as the
    /// peer's encoder does, and changes only when the peer signals a size update (§4.2), which
    /// must not exceed `max_table_size`.
    pub fn new(max_table_size: usize) -> Self {
        Self {
            table: DynamicTable::new(DEFAULT_TABLE_SIZE),
            max_allowed: max_table_size,
        }
    }

    /// Changes our `SETTINGS_HEADER_TABLE_SIZE` (call when the peer acknowledges it). Later size
    /// updates above `n` are refused. The table keeps its current size until the peer's encoder
    /// signals the change, as §4.2 requires it to.
    pub fn set_max_table_size(&mut self, n: usize) {
        self.max_allowed = n;
    }

    /// The dynamic table, for tests.
    #[cfg(test)]
    pub(crate) fn table(&self) -> &DynamicTable {
        &self.table
    }

    /// Decodes one complete header block, appending its fields to `out` in order. A literal
    /// never indexed (§6.2.3), which a proxy must forward the same way, is marked
    /// ([`Fields::is_sensitive`]).
    ///
    /// Every name and value is copied into `out`'s one buffer: plain literals from `src`,
    /// Huffman-coded ones decoded straight into it, table references from the table (a copy of a
    /// few octets costs less than sharing them). Nothing in `out` refers to `src` or the table.
    ///
    /// Once the header list size (the sum of name + value + 32 per field) exceeds
    /// `max_list_size`, no more fields are stored; the rest of the block is still decoded so the
    /// dynamic table stays in sync, and the result is [`Error::HeaderListTooLarge`] unless a
    /// compression error comes first. What is stored is bounded by `max_list_size` and the work
    /// by the size of `src`, whatever the fields expand to: a table reference past the limit is
    /// not copied. On any error the fields already appended to `out` must be discarded.
    pub fn decode(
        &mut self,
        src: &[u8],
        max_list_size: usize,
        out: &mut Fields,
    ) -> Result<(), Error> {
        let mut pos = 0;
        let mut budget = Budget {
            used: 0,
            // Offsets in `out` are u32; the limit keeps them in range.
            max: max_list_size.min(u32::MAX as usize),
            over: false,
        };
        let mut at_start = true;
        while let Some(&first) = src.get(pos) {
            if first & 0x80 != 0 {
                // §6.1 Indexed Header Field.
                let index = decode_int(src, &mut pos, 7)?;
                let start = out.buf.len();
                if index <= STATIC_LEN {
                    let (field, name_len) = static_field(index).ok_or(Error::InvalidIndex)?;
                    if budget.fits(field.len()) {
                        out.buf.extend_from_slice(field);
                        out.push_slot(start, start + name_len, false);
                    }
                } else {
                    let entry = self
                        .table
                        .get(index - STATIC_LEN - 1)
                        .ok_or(Error::InvalidIndex)?;
                    if budget.fits(entry.name.len() + entry.value.len()) {
                        out.buf.extend_from_slice(&entry.name);
                        out.buf.extend_from_slice(&entry.value);
                        out.push_slot(start, start + entry.name.len(), false);
                    }
                }
            } else if first & 0x40 != 0 {
                // §6.2.1 Literal Header Field with Incremental Indexing: decoded into `out`
                // even past the limit, to be copied into the table, then dropped.
                let start = out.buf.len();
                let name_end = self.literal(src, &mut pos, 6, out, true)?;
                let field = out.buf.get(start..).unwrap_or_default();
                let (name, value) = field.split_at_checked(name_end - start).unwrap_or_default();
                self.table.insert(name, value, |_, _| {});
                if budget.fits(field.len()) {
                    out.push_slot(start, name_end, false);
                } else {
                    out.buf.truncate(start);
                }
            } else if first & 0x20 != 0 {
                // §6.3 Dynamic Table Size Update.
                // §4.2: "This dynamic table size update MUST occur at the beginning of the
                // first header block following the change to the dynamic table size."
                if !at_start {
                    return Err(Error::TableSizeUpdateNotAtStart);
                }
                let size = decode_int(src, &mut pos, 5)?;
                // §6.3: "The new maximum size MUST be lower than or equal to the limit
                // determined by the protocol using HPACK."
                if size > self.max_allowed {
                    return Err(Error::TableSizeUpdateTooLarge);
                }
                self.table.set_max_size(size, |_, _| {});
                continue;
            } else {
                // §6.2.2 Literal Header Field without Indexing (0000), §6.2.3 Never Indexed (0001).
                let never_indexed = first & 0x10 != 0;
                let start = out.buf.len();
                // Past the limit a name from the table is not copied: the field is dropped.
                let name_end = self.literal(src, &mut pos, 4, out, !budget.over)?;
                if budget.fits(out.buf.len() - start) {
                    out.push_slot(start, name_end, never_indexed);
                } else {
                    out.buf.truncate(start);
                }
            }
            at_start = false;
        }
        if budget.over {
            Err(Error::HeaderListTooLarge)
        } else {
            Ok(())
        }
    }

    /// Reads a literal representation's name (indexed or literal) and value (§6.2), appending
    /// both to `out`'s buffer; returns where the name ends (and the value starts). A name from
    /// a table is checked but only copied when `copy_indexed_name`.
    fn literal(
        &self,
        src: &[u8],
        pos: &mut usize,
        prefix: u8,
        out: &mut Fields,
        copy_indexed_name: bool,
    ) -> Result<usize, Error> {
        let index = decode_int(src, pos, prefix)?;
        if index == 0 {
            read_string(src, pos, &mut out.buf)?;
        } else if index <= STATIC_LEN {
            let (name, _) = static_get(index).ok_or(Error::InvalidIndex)?;
            if copy_indexed_name {
                out.buf.extend_from_slice(name);
            }
        } else {
            let entry = self
                .table
                .get(index - STATIC_LEN - 1)
                .ok_or(Error::InvalidIndex)?;
            if copy_indexed_name {
                out.buf.extend_from_slice(&entry.name);
            }
        }
        let name_end = out.buf.len();
        read_string(src, pos, &mut out.buf)?;
        Ok(name_end)
    }
}

/// The header list size of one block against its limit.
struct Budget {
    used: usize,
    max: usize,
    /// The limit was passed: no later field is stored.
    over: bool,
}

impl Budget {
    /// Adds a field of `len` octets of name and value; whether it may be stored.
    fn fits(&mut self, len: usize) -> bool {
        self.used = self.used.saturating_add(len + ENTRY_OVERHEAD);
        self.over |= self.used > self.max;
        !self.over
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DEFAULT_TABLE_SIZE)
    }
}

/// Decodes a prefixed integer (§5.1) whose first octet is `src[*pos]`, using its low `prefix`
/// bits, and advances `pos` past it.
///
/// Refuses values above 2^32 - 1 and more than 5 continuation octets, so that a stream of
/// `0x80` octets cannot make the decoder loop or overflow.
pub(crate) fn decode_int(src: &[u8], pos: &mut usize, prefix: u8) -> Result<usize, Error> {
    let mask = u8::MAX >> (8 - prefix);
    let first = *src.get(*pos).ok_or(Error::Truncated)?;
    *pos += 1;
    let mut value = u64::from(first & mask);
    if value < u64::from(mask) {
        return Ok(value as usize);
    }
    for i in 0..MAX_CONTINUATION {
        let b = *src.get(*pos).ok_or(Error::Truncated)?;
        *pos += 1;
        value += u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return match u32::try_from(value) {
                Ok(v) => usize::try_from(v).map_err(|_| Error::IntegerOverflow),
                Err(_) => Err(Error::IntegerOverflow),
            };
        }
    }
    Err(Error::IntegerOverflow)
}

/// Reads a string literal (§5.2) at `src[*pos]` and appends it to `dst`: copied when plain,
/// decoded straight into `dst` when Huffman coded.
fn read_string(src: &[u8], pos: &mut usize, dst: &mut BytesMut) -> Result<(), Error> {
    let huffman_coded = src.get(*pos).ok_or(Error::Truncated)? & 0x80 != 0;
    let len = decode_int(src, pos, 7)?;
    let start = *pos;
    let end = start.checked_add(len).ok_or(Error::Truncated)?;
    let raw = src.get(start..end).ok_or(Error::Truncated)?;
    *pos = end;
    if huffman_coded {
        huffman::decode(raw, dst)
    } else {
        dst.extend_from_slice(raw);
        Ok(())
    }
}

/// Whether `name` is a valid HTTP/2 field name (RFC 9113 §8.2.1): non-empty, no octet in
/// 0x00-0x20, 0x41-0x5a (uppercase) or 0x7f-0xff, and no colon except one leading colon of a
/// pseudo-header (which must have more after it).
pub fn is_valid_name(name: &[u8]) -> bool {
    let rest = match name {
        [b':', rest @ ..] => rest,
        _ => name,
    };
    !rest.is_empty()
        && rest
            .iter()
            .all(|&b| matches!(b, 0x21..=0x40 | 0x5b..=0x7e) && b != b':')
}

/// Whether `value` is a valid HTTP/2 field value (RFC 9113 §8.2.1): no NUL, CR or LF, and no
/// leading or trailing space or tab.
pub fn is_valid_value(value: &[u8]) -> bool {
    let edge_ok = |b: Option<&u8>| !matches!(b, Some(b' ' | b'\t'));
    edge_ok(value.first())
        && edge_ok(value.last())
        && !value.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_static_entries_are_the_static_table() {
        for index in 1..=STATIC_LEN {
            let (name, value) = static_get(index).unwrap();
            let (field, name_len) = static_field(index).unwrap();
            assert_eq!(field.split_at(name_len), (name, value), "index {index}");
        }
        assert_eq!(static_field(0), None);
        assert_eq!(static_field(STATIC_LEN + 1), None);
    }
}
