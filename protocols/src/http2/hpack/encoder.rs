//! The HPACK encoder (RFC 7541 §4, §5, §6) and its indexing policy.
//!
//! Owns the us-to-peer dynamic table and turns fields into one header block. It does not split
//! the block into HEADERS/CONTINUATION frames and does not validate or lowercase names: the
//! caller passes valid HTTP/2 fields.
//!
//! Policy, in order, per field:
//! 1. `sensitive` fields, `authorization`, `proxy-authorization` and cookies shorter than 20
//!    octets (§7.1.3) are sent as literals never indexed (§6.2.3), so every intermediary keeps
//!    them out of its tables too.
//! 2. A field in the static table, or in the dynamic table, is sent as an index (§6.1).
//! 3. Otherwise it is a literal (§6.2.1 or §6.2.2) with the name taken from the static table
//!    when possible, else from the dynamic table. It is added to the dynamic table unless its
//!    entry would take more than a quarter of the table, or its name has a value that changes
//!    per request ([`NO_INDEX`]: `:path`, `content-length`, `cookie`, request ids, ...), which
//!    would only churn the table, all the more on a connection that a proxy shares between
//!    many clients.
//! 4. Strings are Huffman coded when that is strictly shorter.
//!
//! The encoder's table is capped at 4096 octets whatever the peer allows (as nghttp2 does): a
//! larger table buys little and costs memory per connection.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use bytes::{BufMut, BytesMut};

use super::table::{DynamicTable, ENTRY_OVERHEAD, Entry, STATIC_LEN, StaticMatch, static_find};
use super::{DEFAULT_TABLE_SIZE, huffman};
use crate::http2::fields::lowercase8;

/// The largest dynamic table the encoder uses, whatever the peer's setting.
const MAX_ENCODER_TABLE: usize = DEFAULT_TABLE_SIZE;

/// Names whose values are (nearly) unique per message: never added to the dynamic table.
const NO_INDEX: &[&[u8]] = &[
    b":path",
    b"age",
    b"content-length",
    b"content-range",
    b"cookie",
    b"etag",
    b"if-modified-since",
    b"if-none-match",
    b"last-modified",
    b"location",
    b"set-cookie",
    b"x-request-id",
    b"traceparent",
    b"x-b3-traceid",
    b"x-b3-spanid",
    b"x-b3-parentspanid",
    b"b3",
];

/// Names always sent as literals never indexed (§7.1.3).
const NEVER_INDEX: &[&[u8]] = &[b"authorization", b"proxy-authorization"];

/// Names up to this long are lowercased on the stack by [`Encoder::encode_lowercasing`] (longer
/// ones, rare, in an allocation). A multiple of 8: the name is lowercased in whole words.
const LOWERCASE_ROOM: usize = 64;

/// Cookies shorter than this are sent never indexed: short values are easy to guess (§7.1.3).
const SHORT_COOKIE: usize = 20;

/// When to Huffman-code strings; only the RFC 7541 Appendix C tests pick anything but `Shorter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HuffmanPolicy {
    /// When strictly shorter than the plain string.
    Shorter,
    /// Never (Appendix C.2, C.3, C.5).
    #[cfg(test)]
    Never,
    /// Always (Appendix C.4, C.6).
    #[cfg(test)]
    Always,
}

/// A hasher for keys that already are hashes.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type IdMap = HashMap<u64, u64, BuildHasherDefault<IdentityHasher>>;

/// A pending dynamic table size update (§4.2, §6.3).
#[derive(Clone, Copy, Debug)]
struct SizeUpdate {
    /// The smallest size since the last block.
    min: usize,
    /// The size now.
    last: usize,
}

/// Encodes header blocks for one peer, keeping the dynamic table in step with its decoder.
#[derive(Debug)]
pub struct Encoder {
    table: DynamicTable,
    /// hash(name, value) -> absolute id of the newest entry with that hash.
    by_field: IdMap,
    /// hash(name) -> absolute id of the newest entry with that name hash.
    by_name: IdMap,
    pending: Option<SizeUpdate>,
    huffman: HuffmanPolicy,
    index_all: bool,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// An encoder with the protocol's initial 4096-octet table.
    pub fn new() -> Self {
        Self {
            table: DynamicTable::new(DEFAULT_TABLE_SIZE),
            by_field: IdMap::default(),
            by_name: IdMap::default(),
            pending: None,
            huffman: HuffmanPolicy::Shorter,
            index_all: false,
        }
    }

    /// Applies the peer's `SETTINGS_HEADER_TABLE_SIZE`. The table shrinks now; the next block
    /// starts with the size update(s) §4.2 requires: the smallest size since the last block,
    /// then the final one.
    pub fn set_max_table_size(&mut self, n: usize) {
        let n = n.min(MAX_ENCODER_TABLE);
        if self.pending.is_none() && n == self.table.max_size() {
            return;
        }
        let update = self.pending.get_or_insert(SizeUpdate { min: n, last: n });
        update.min = update.min.min(n);
        update.last = n;
        let Self {
            table,
            by_field,
            by_name,
            ..
        } = self;
        table.set_max_size(n, |id, e| forget(by_field, by_name, id, e));
    }

    /// Test knobs to reproduce RFC 7541 Appendix C byte for byte: index every field that fits,
    /// and code strings per `huffman`.
    #[cfg(test)]
    pub(crate) fn set_policy(&mut self, index_all: bool, huffman: HuffmanPolicy) {
        self.index_all = index_all;
        self.huffman = huffman;
    }

    /// The dynamic table, for tests.
    #[cfg(test)]
    pub(crate) fn table(&self) -> &DynamicTable {
        &self.table
    }

    /// Encodes one header block of `(name, value, sensitive)` fields into `dst`.
    pub fn encode<'a>(
        &mut self,
        headers: impl IntoIterator<Item = (&'a [u8], &'a [u8], bool)>,
        dst: &mut BytesMut,
    ) {
        self.encode_size_update(dst);
        for (name, value, sensitive) in headers {
            self.encode_field(name, value, sensitive, dst);
        }
    }

    /// [`Self::encode`] for names that may hold uppercase letters (an HTTP/1 head's): each
    /// name is lowercased as it is encoded (RFC 9113 section 8.2.1), so the caller need not
    /// copy the list first to lowercase it.
    pub fn encode_lowercasing<'a>(
        &mut self,
        headers: impl IntoIterator<Item = (&'a [u8], &'a [u8], bool)>,
        dst: &mut BytesMut,
    ) {
        self.encode_size_update(dst);
        let mut lower = [0u8; LOWERCASE_ROOM];
        for (name, value, sensitive) in headers {
            let n = name.len();
            // Copied, then lowercased eight octets at a time over whole words of the buffer
            // (octets past the name are scratch), rather than a byte at a time.
            match lower.get_mut(..n) {
                Some(low) => low.copy_from_slice(name),
                None => {
                    self.encode_field(&name.to_ascii_lowercase(), value, sensitive, dst);
                    continue;
                }
            }
            let words = n.div_ceil(8) * 8;
            for w in lower
                .get_mut(..words)
                .unwrap_or_default()
                .chunks_exact_mut(8)
            {
                let mut x = [0u8; 8];
                x.copy_from_slice(w);
                w.copy_from_slice(&lowercase8(u64::from_le_bytes(x)).to_le_bytes());
            }
            self.encode_field(lower.get(..n).unwrap_or_default(), value, sensitive, dst);
        }
    }

    /// The size update(s) a block starts with after the table size changed (section 4.2).
    fn encode_size_update(&mut self, dst: &mut BytesMut) {
        if let Some(update) = self.pending.take() {
            if update.min < update.last {
                encode_int(update.min, 5, 0x20, dst);
            }
            encode_int(update.last, 5, 0x20, dst);
        }
    }

    fn encode_field(&mut self, name: &[u8], value: &[u8], sensitive: bool, dst: &mut BytesMut) {
        let never_index = sensitive
            || NEVER_INDEX.contains(&name)
            || (name == b"cookie" && value.len() < SHORT_COOKIE);
        // A field the dynamic table holds is in no static entry (only literals are added to
        // it), so which table is searched first changes no output: pseudo-header fields are
        // mostly static entries (`:method: GET`, `:status: 200`), others mostly repeats of a
        // dynamic entry or literals, and the static table is searched only when needed.
        let mut in_static = None;
        let mut field_hash = None;
        if !never_index {
            if name.first() == Some(&b':') {
                let found = static_find(name, value);
                if let StaticMatch::Full(index) = found {
                    encode_int(index, 7, 0x80, dst);
                    return;
                }
                in_static = Some(found);
            }
            let hash = hash_field(name, value);
            field_hash = Some(hash);
            if let Some(i) = self.find(&self.by_field, hash, |e| {
                *e.name == *name && *e.value == *value
            }) {
                encode_int(STATIC_LEN + 1 + i, 7, 0x80, dst);
                return;
            }
        }
        let in_static = in_static.unwrap_or_else(|| static_find(name, value));
        if let StaticMatch::Full(index) = in_static
            && !never_index
        {
            encode_int(index, 7, 0x80, dst);
            return;
        }
        let mut name_hash = None;
        let name_index = match in_static {
            StaticMatch::Full(i) | StaticMatch::Name(i) => i,
            StaticMatch::None => {
                let hash = hash_name(name);
                name_hash = Some(hash);
                self.find(&self.by_name, hash, |e| *e.name == *name)
                    .map_or(0, |i| STATIC_LEN + 1 + i)
            }
        };
        let index = !never_index && self.should_index(name, value);
        let (prefix, flags) = match (never_index, index) {
            (true, _) => (4, 0x10),
            (false, true) => (6, 0x40),
            (false, false) => (4, 0x00),
        };
        encode_int(name_index, prefix, flags, dst);
        if name_index == 0 {
            self.encode_string(name, dst);
        }
        self.encode_string(value, dst);
        if index {
            let field_hash = field_hash.unwrap_or_else(|| hash_field(name, value));
            let name_hash = name_hash.unwrap_or_else(|| hash_name(name));
            let Self {
                table,
                by_field,
                by_name,
                ..
            } = self;
            if let Some(id) = table.insert(name, value, |id, e| forget(by_field, by_name, id, e)) {
                by_field.insert(field_hash, id);
                by_name.insert(name_hash, id);
            }
        }
    }

    /// Whether a literal field should be added to the dynamic table (see the module policy).
    fn should_index(&self, name: &[u8], value: &[u8]) -> bool {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        if self.index_all {
            return size <= self.table.max_size();
        }
        size <= self.table.max_size() / 4 && !NO_INDEX.contains(&name)
    }

    /// The position of the entry `map` holds for `hash`, if it is still there and `matches`.
    fn find(&self, map: &IdMap, hash: u64, matches: impl Fn(&Entry) -> bool) -> Option<usize> {
        let id = *map.get(&hash)?;
        let i = self.table.position_of(id)?;
        self.table.get(i).filter(|e| matches(e)).map(|_| i)
    }

    /// Writes a string literal (§5.2), Huffman coded per the policy.
    fn encode_string(&self, s: &[u8], dst: &mut BytesMut) {
        // Measured once: it decides, then prefixes the coded string.
        let coded_len = huffman::encoded_len(s);
        let use_huffman = match self.huffman {
            HuffmanPolicy::Shorter => coded_len < s.len(),
            #[cfg(test)]
            HuffmanPolicy::Never => false,
            #[cfg(test)]
            HuffmanPolicy::Always => true,
        };
        if use_huffman {
            encode_int(coded_len, 7, 0x80, dst);
            dst.reserve(coded_len);
            huffman::encode(s, dst);
        } else {
            encode_int(s.len(), 7, 0, dst);
            dst.extend_from_slice(s);
        }
    }
}

/// Drops the map entries that point at evicted entry `id`; a newer entry with the same key
/// has replaced its id already and stays.
fn forget(by_field: &mut IdMap, by_name: &mut IdMap, id: u64, entry: &Entry) {
    let field_hash = hash_field(&entry.name, &entry.value);
    if by_field.get(&field_hash) == Some(&id) {
        by_field.remove(&field_hash);
    }
    let name_hash = hash_name(&entry.name);
    if by_name.get(&name_hash) == Some(&id) {
        by_name.remove(&name_hash);
    }
}

/// The key of a (name, value) pair in `by_field`.
fn hash_field(name: &[u8], value: &[u8]) -> u64 {
    finish(mix_bytes(mix_bytes(0, name), value))
}

/// The key of a name in `by_name`.
fn hash_name(name: &[u8]) -> u64 {
    finish(mix_bytes(0, name))
}

/// FxHash's multiplier (rustc's hasher): odd, with well-spread bits.
const FX: u64 = 0x517c_c1b7_2722_0a95;

/// Mixes `bytes` and their length into `h`, eight bytes per step. Not keyed, and need not be:
/// the maps only propose a candidate entry that is then compared in full, so a collision only
/// costs compression, and the table holds a few hundred entries at most (SipHash cost about
/// 2,000 instructions per proxied HTTP/2 response here).
fn mix_bytes(mut h: u64, bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(FX);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        if let Some(dst) = word.get_mut(..rest.len()) {
            dst.copy_from_slice(rest);
        }
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(FX);
    }
    (h.rotate_left(5) ^ bytes.len() as u64).wrapping_mul(FX)
}

/// Folds the well-mixed high bits into the low ones, which pick the map's bucket.
fn finish(h: u64) -> u64 {
    h ^ (h >> 29)
}

/// Writes `value` as a prefixed integer (§5.1) with `prefix` bits, the octet's high bits being
/// `flags`.
pub(crate) fn encode_int(value: usize, prefix: u8, flags: u8, dst: &mut BytesMut) {
    let mask = (1usize << prefix) - 1;
    if value < mask {
        dst.put_u8(flags | value as u8);
        return;
    }
    dst.put_u8(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        dst.put_u8(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    dst.put_u8(rest as u8);
}
