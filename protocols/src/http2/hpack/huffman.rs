//! The HPACK Huffman code (RFC 7541 §5.2, Appendix B).
//!
//! Owns the canonical code table and the string coder: [`encode`], [`decode`] and
//! [`encoded_len`]. It does not decide whether a string is worth coding (the encoder does) and
//! does not read the length prefix of a string literal (the decoder does).
//!
//! Decoding is table driven: a 64-bit bit buffer and one lookup per 11 bits in a 2048-entry table
//! that yields up to two symbols at once (every code of up to 11 bits, which covers the common
//! header characters); for the rare longer codes a walk over the code lengths 12..=30 using the
//! canonical order of the code. All tables are built at compile time from [`ENCODE_TABLE`].

use bytes::{BufMut, BytesMut};

use super::Error;

/// RFC 7541 Appendix B: `(code, bit length)` per symbol; symbol 256 is EOS.
/// The code is canonical: codes grow with (length, symbol), which the decoder relies on.
pub const ENCODE_TABLE: [(u32, u8); 257] = [
    (0x00001ff8, 13), //   0
    (0x007fffd8, 23), //   1
    (0x0fffffe2, 28), //   2
    (0x0fffffe3, 28), //   3
    (0x0fffffe4, 28), //   4
    (0x0fffffe5, 28), //   5
    (0x0fffffe6, 28), //   6
    (0x0fffffe7, 28), //   7
    (0x0fffffe8, 28), //   8
    (0x00ffffea, 24), //   9
    (0x3ffffffc, 30), //  10
    (0x0fffffe9, 28), //  11
    (0x0fffffea, 28), //  12
    (0x3ffffffd, 30), //  13
    (0x0fffffeb, 28), //  14
    (0x0fffffec, 28), //  15
    (0x0fffffed, 28), //  16
    (0x0fffffee, 28), //  17
    (0x0fffffef, 28), //  18
    (0x0ffffff0, 28), //  19
    (0x0ffffff1, 28), //  20
    (0x0ffffff2, 28), //  21
    (0x3ffffffe, 30), //  22
    (0x0ffffff3, 28), //  23
    (0x0ffffff4, 28), //  24
    (0x0ffffff5, 28), //  25
    (0x0ffffff6, 28), //  26
    (0x0ffffff7, 28), //  27
    (0x0ffffff8, 28), //  28
    (0x0ffffff9, 28), //  29
    (0x0ffffffa, 28), //  30
    (0x0ffffffb, 28), //  31
    (0x00000014, 6),  //  32 ' '
    (0x000003f8, 10), //  33 '!'
    (0x000003f9, 10), //  34 '"'
    (0x00000ffa, 12), //  35 '#'
    (0x00001ff9, 13), //  36 '$'
    (0x00000015, 6),  //  37 '%'
    (0x000000f8, 8),  //  38 '&'
    (0x000007fa, 11), //  39 "'"
    (0x000003fa, 10), //  40 '('
    (0x000003fb, 10), //  41 ')'
    (0x000000f9, 8),  //  42 '*'
    (0x000007fb, 11), //  43 '+'
    (0x000000fa, 8),  //  44 ','
    (0x00000016, 6),  //  45 '-'
    (0x00000017, 6),  //  46 '.'
    (0x00000018, 6),  //  47 '/'
    (0x00000000, 5),  //  48 '0'
    (0x00000001, 5),  //  49 '1'
    (0x00000002, 5),  //  50 '2'
    (0x00000019, 6),  //  51 '3'
    (0x0000001a, 6),  //  52 '4'
    (0x0000001b, 6),  //  53 '5'
    (0x0000001c, 6),  //  54 '6'
    (0x0000001d, 6),  //  55 '7'
    (0x0000001e, 6),  //  56 '8'
    (0x0000001f, 6),  //  57 '9'
    (0x0000005c, 7),  //  58 ':'
    (0x000000fb, 8),  //  59 ';'
    (0x00007ffc, 15), //  60 '<'
    (0x00000020, 6),  //  61 '='
    (0x00000ffb, 12), //  62 '>'
    (0x000003fc, 10), //  63 '?'
    (0x00001ffa, 13), //  64 '@'
    (0x00000021, 6),  //  65 'A'
    (0x0000005d, 7),  //  66 'B'
    (0x0000005e, 7),  //  67 'C'
    (0x0000005f, 7),  //  68 'D'
    (0x00000060, 7),  //  69 'E'
    (0x00000061, 7),  //  70 'F'
    (0x00000062, 7),  //  71 'G'
    (0x00000063, 7),  //  72 'H'
    (0x00000064, 7),  //  73 'I'
    (0x00000065, 7),  //  74 'J'
    (0x00000066, 7),  //  75 'K'
    (0x00000067, 7),  //  76 'L'
    (0x00000068, 7),  //  77 'M'
    (0x00000069, 7),  //  78 'N'
    (0x0000006a, 7),  //  79 'O'
    (0x0000006b, 7),  //  80 'P'
    (0x0000006c, 7),  //  81 'Q'
    (0x0000006d, 7),  //  82 'R'
    (0x0000006e, 7),  //  83 'S'
    (0x0000006f, 7),  //  84 'T'
    (0x00000070, 7),  //  85 'U'
    (0x00000071, 7),  //  86 'V'
    (0x00000072, 7),  //  87 'W'
    (0x000000fc, 8),  //  88 'X'
    (0x00000073, 7),  //  89 'Y'
    (0x000000fd, 8),  //  90 'Z'
    (0x00001ffb, 13), //  91 '['
    (0x0007fff0, 19), //  92 '\\'
    (0x00001ffc, 13), //  93 ']'
    (0x00003ffc, 14), //  94 '^'
    (0x00000022, 6),  //  95 '_'
    (0x00007ffd, 15), //  96 '`'
    (0x00000003, 5),  //  97 'a'
    (0x00000023, 6),  //  98 'b'
    (0x00000004, 5),  //  99 'c'
    (0x00000024, 6),  // 100 'd'
    (0x00000005, 5),  // 101 'e'
    (0x00000025, 6),  // 102 'f'
    (0x00000026, 6),  // 103 'g'
    (0x00000027, 6),  // 104 'h'
    (0x00000006, 5),  // 105 'i'
    (0x00000074, 7),  // 106 'j'
    (0x00000075, 7),  // 107 'k'
    (0x00000028, 6),  // 108 'l'
    (0x00000029, 6),  // 109 'm'
    (0x0000002a, 6),  // 110 'n'
    (0x00000007, 5),  // 111 'o'
    (0x0000002b, 6),  // 112 'p'
    (0x00000076, 7),  // 113 'q'
    (0x0000002c, 6),  // 114 'r'
    (0x00000008, 5),  // 115 's'
    (0x00000009, 5),  // 116 't'
    (0x0000002d, 6),  // 117 'u'
    (0x00000077, 7),  // 118 'v'
    (0x00000078, 7),  // 119 'w'
    (0x00000079, 7),  // 120 'x'
    (0x0000007a, 7),  // 121 'y'
    (0x0000007b, 7),  // 122 'z'
    (0x00007ffe, 15), // 123 '{'
    (0x000007fc, 11), // 124 '|'
    (0x00003ffd, 14), // 125 '}'
    (0x00001ffd, 13), // 126 '~'
    (0x0ffffffc, 28), // 127
    (0x000fffe6, 20), // 128
    (0x003fffd2, 22), // 129
    (0x000fffe7, 20), // 130
    (0x000fffe8, 20), // 131
    (0x003fffd3, 22), // 132
    (0x003fffd4, 22), // 133
    (0x003fffd5, 22), // 134
    (0x007fffd9, 23), // 135
    (0x003fffd6, 22), // 136
    (0x007fffda, 23), // 137
    (0x007fffdb, 23), // 138
    (0x007fffdc, 23), // 139
    (0x007fffdd, 23), // 140
    (0x007fffde, 23), // 141
    (0x00ffffeb, 24), // 142
    (0x007fffdf, 23), // 143
    (0x00ffffec, 24), // 144
    (0x00ffffed, 24), // 145
    (0x003fffd7, 22), // 146
    (0x007fffe0, 23), // 147
    (0x00ffffee, 24), // 148
    (0x007fffe1, 23), // 149
    (0x007fffe2, 23), // 150
    (0x007fffe3, 23), // 151
    (0x007fffe4, 23), // 152
    (0x001fffdc, 21), // 153
    (0x003fffd8, 22), // 154
    (0x007fffe5, 23), // 155
    (0x003fffd9, 22), // 156
    (0x007fffe6, 23), // 157
    (0x007fffe7, 23), // 158
    (0x00ffffef, 24), // 159
    (0x003fffda, 22), // 160
    (0x001fffdd, 21), // 161
    (0x000fffe9, 20), // 162
    (0x003fffdb, 22), // 163
    (0x003fffdc, 22), // 164
    (0x007fffe8, 23), // 165
    (0x007fffe9, 23), // 166
    (0x001fffde, 21), // 167
    (0x007fffea, 23), // 168
    (0x003fffdd, 22), // 169
    (0x003fffde, 22), // 170
    (0x00fffff0, 24), // 171
    (0x001fffdf, 21), // 172
    (0x003fffdf, 22), // 173
    (0x007fffeb, 23), // 174
    (0x007fffec, 23), // 175
    (0x001fffe0, 21), // 176
    (0x001fffe1, 21), // 177
    (0x003fffe0, 22), // 178
    (0x001fffe2, 21), // 179
    (0x007fffed, 23), // 180
    (0x003fffe1, 22), // 181
    (0x007fffee, 23), // 182
    (0x007fffef, 23), // 183
    (0x000fffea, 20), // 184
    (0x003fffe2, 22), // 185
    (0x003fffe3, 22), // 186
    (0x003fffe4, 22), // 187
    (0x007ffff0, 23), // 188
    (0x003fffe5, 22), // 189
    (0x003fffe6, 22), // 190
    (0x007ffff1, 23), // 191
    (0x03ffffe0, 26), // 192
    (0x03ffffe1, 26), // 193
    (0x000fffeb, 20), // 194
    (0x0007fff1, 19), // 195
    (0x003fffe7, 22), // 196
    (0x007ffff2, 23), // 197
    (0x003fffe8, 22), // 198
    (0x01ffffec, 25), // 199
    (0x03ffffe2, 26), // 200
    (0x03ffffe3, 26), // 201
    (0x03ffffe4, 26), // 202
    (0x07ffffde, 27), // 203
    (0x07ffffdf, 27), // 204
    (0x03ffffe5, 26), // 205
    (0x00fffff1, 24), // 206
    (0x01ffffed, 25), // 207
    (0x0007fff2, 19), // 208
    (0x001fffe3, 21), // 209
    (0x03ffffe6, 26), // 210
    (0x07ffffe0, 27), // 211
    (0x07ffffe1, 27), // 212
    (0x03ffffe7, 26), // 213
    (0x07ffffe2, 27), // 214
    (0x00fffff2, 24), // 215
    (0x001fffe4, 21), // 216
    (0x001fffe5, 21), // 217
    (0x03ffffe8, 26), // 218
    (0x03ffffe9, 26), // 219
    (0x0ffffffd, 28), // 220
    (0x07ffffe3, 27), // 221
    (0x07ffffe4, 27), // 222
    (0x07ffffe5, 27), // 223
    (0x000fffec, 20), // 224
    (0x00fffff3, 24), // 225
    (0x000fffed, 20), // 226
    (0x001fffe6, 21), // 227
    (0x003fffe9, 22), // 228
    (0x001fffe7, 21), // 229
    (0x001fffe8, 21), // 230
    (0x007ffff3, 23), // 231
    (0x003fffea, 22), // 232
    (0x003fffeb, 22), // 233
    (0x01ffffee, 25), // 234
    (0x01ffffef, 25), // 235
    (0x00fffff4, 24), // 236
    (0x00fffff5, 24), // 237
    (0x03ffffea, 26), // 238
    (0x007ffff4, 23), // 239
    (0x03ffffeb, 26), // 240
    (0x07ffffe6, 27), // 241
    (0x03ffffec, 26), // 242
    (0x03ffffed, 26), // 243
    (0x07ffffe7, 27), // 244
    (0x07ffffe8, 27), // 245
    (0x07ffffe9, 27), // 246
    (0x07ffffea, 27), // 247
    (0x07ffffeb, 27), // 248
    (0x0ffffffe, 28), // 249
    (0x07ffffec, 27), // 250
    (0x07ffffed, 27), // 251
    (0x07ffffee, 27), // 252
    (0x07ffffef, 27), // 253
    (0x07fffff0, 27), // 254
    (0x03ffffee, 26), // 255
    (0x3fffffff, 30), // EOS
];

/// The end-of-string symbol, which must never appear in decoded data (§5.2).
const EOS: u16 = 256;
/// Bits looked up at once; codes up to this long are decoded by the table.
const FAST_BITS: u32 = 11;
/// The longest code (EOS and three rare bytes).
const MAX_LEN: usize = 30;

/// One entry per `FAST_BITS`-bit prefix: the first symbol (bits 0..8), a second symbol when its
/// code also fits in the prefix (8..16), the first code's length (16..21), the length of both
/// codes (21..26) and the number of symbols, 0..=2 (26..28). 0 symbols: the prefix starts a
/// code longer than `FAST_BITS`.
static FAST: [u32; 1 << FAST_BITS] = build_fast();

/// Canonical decoding data for codes longer than `FAST_BITS`.
struct Canonical {
    /// The first (smallest) code of each length.
    first: [u32; MAX_LEN + 1],
    /// How many codes have each length.
    count: [u16; MAX_LEN + 1],
    /// Where the symbols of each length start in `symbols`.
    offset: [u16; MAX_LEN + 1],
    /// Symbols in canonical order (length, then symbol).
    symbols: [u16; 257],
}

static CANONICAL: Canonical = build_canonical();

#[allow(
    clippy::indexing_slicing,
    reason = "const evaluation: an out-of-bounds index is a compile error, not a runtime panic"
)]
const fn build_fast() -> [u32; 1 << FAST_BITS] {
    let mut table = [0u32; 1 << FAST_BITS];
    let mut first = 0;
    while first < 256 {
        let (code1, len1) = ENCODE_TABLE[first];
        let len1 = len1 as u32;
        if len1 <= FAST_BITS {
            let spare1 = FAST_BITS - len1;
            let base1 = (code1 << spare1) as usize;
            let one = first as u32 | len1 << 16 | len1 << 21 | 1 << 26;
            let mut i = 0;
            while i < 1 << spare1 {
                table[base1 + i] = one;
                i += 1;
            }
            let mut second = 0;
            while second < 256 {
                let (code2, len2) = ENCODE_TABLE[second];
                let len2 = len2 as u32;
                if len2 <= spare1 {
                    let spare2 = spare1 - len2;
                    let base2 = base1 | (code2 << spare2) as usize;
                    let two = first as u32
                        | (second as u32) << 8
                        | len1 << 16
                        | (len1 + len2) << 21
                        | 2 << 26;
                    let mut j = 0;
                    while j < 1 << spare2 {
                        table[base2 + j] = two;
                        j += 1;
                    }
                }
                second += 1;
            }
        }
        first += 1;
    }
    table
}

#[allow(
    clippy::indexing_slicing,
    reason = "const evaluation: an out-of-bounds index is a compile error, not a runtime panic"
)]
const fn build_canonical() -> Canonical {
    let mut count = [0u16; MAX_LEN + 1];
    let mut sym = 0;
    while sym < ENCODE_TABLE.len() {
        count[ENCODE_TABLE[sym].1 as usize] += 1;
        sym += 1;
    }
    let mut offset = [0u16; MAX_LEN + 1];
    let mut total = 0;
    let mut len = 0;
    while len <= MAX_LEN {
        offset[len] = total;
        total += count[len];
        len += 1;
    }
    let mut symbols = [0u16; 257];
    let mut cursor = offset;
    sym = 0;
    while sym < ENCODE_TABLE.len() {
        let len = ENCODE_TABLE[sym].1 as usize;
        symbols[cursor[len] as usize] = sym as u16;
        cursor[len] += 1;
        sym += 1;
    }
    let mut first = [0u32; MAX_LEN + 1];
    len = 0;
    while len <= MAX_LEN {
        if count[len] > 0 {
            first[len] = ENCODE_TABLE[symbols[offset[len] as usize] as usize].0;
        }
        len += 1;
    }
    Canonical {
        first,
        count,
        offset,
        symbols,
    }
}

/// `(code, length)` of a byte.
#[inline]
fn code_of(byte: u8) -> (u64, u32) {
    match ENCODE_TABLE.get(usize::from(byte)) {
        Some(&(code, len)) => (u64::from(code), u32::from(len)),
        None => (0x3fff_ffff, 30), // unreachable: the table has 257 entries
    }
}

/// The number of octets [`encode`] produces for `src`.
pub fn encoded_len(src: &[u8]) -> usize {
    let bits: u64 = src.iter().map(|&b| u64::from(code_of(b).1)).sum();
    usize::try_from(bits.div_ceil(8)).unwrap_or(usize::MAX)
}

/// Appends the Huffman coding of `src` to `dst`, padded with the most significant bits of EOS
/// (all ones) to an octet boundary (§5.2). `dst` grows as needed; a caller that knows
/// [`encoded_len`] reserves it first.
pub fn encode(src: &[u8], dst: &mut BytesMut) {
    // The low `bits` bits of `acc` are pending output; bits above them are stale.
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in src {
        let (code, len) = code_of(b);
        acc = acc << len | code;
        bits += len;
        if bits >= 32 {
            bits -= 32;
            dst.put_u32((acc >> bits) as u32);
        }
    }
    if bits > 0 {
        let pad = (8 - bits % 8) % 8;
        acc = acc << pad | ((1 << pad) - 1);
        bits += pad;
        while bits >= 8 {
            bits -= 8;
            dst.put_u8((acc >> bits) as u8);
        }
    }
}

/// Appends the decoding of the Huffman-coded `src` to `dst`.
///
/// Fails with [`Error::InvalidHuffman`] when the padding is longer than 7 bits or not all ones,
/// or when the data contains EOS (§5.2); `dst` is then left as it was.
pub fn decode(src: &[u8], dst: &mut BytesMut) -> Result<(), Error> {
    let start = dst.len();
    // Every code is at least 5 bits long; one octet of slack for the two-symbol writes.
    dst.resize(start + src.len() * 8 / 5 + 1, 0);
    let n = match dst.get_mut(start..) {
        Some(out) => decode_into(src, out),
        None => Err(Error::InvalidHuffman),
    };
    match n {
        Ok(n) => {
            dst.truncate(start + n);
            Ok(())
        }
        Err(e) => {
            dst.truncate(start);
            Err(e)
        }
    }
}

/// Decodes `src` into `out` (at least `src.len() * 8 / 5 + 1` long), returning the length
/// written.
fn decode_into(src: &[u8], out: &mut [u8]) -> Result<usize, Error> {
    // The top `bits` bits of `acc` are undecoded input. Bits below them are either zero or
    // the input that follows, so reloading them with OR is harmless.
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    let mut pos = 0;
    let mut n = 0;
    loop {
        if bits < 32 {
            if let Some(word) = src.get(pos..).and_then(|rest| rest.first_chunk::<8>()) {
                acc |= u64::from_be_bytes(*word) >> bits;
                let whole = (63 - bits) / 8;
                pos += whole as usize;
                bits += whole * 8;
            } else {
                while bits <= 56 {
                    let Some(&b) = src.get(pos) else { break };
                    acc |= u64::from(b) << (56 - bits);
                    pos += 1;
                    bits += 8;
                }
            }
        }
        // While input remains, `bits >= 32`, enough for any code; so a code longer than `bits`
        // means the input ended inside it, which must be padding.
        let entry = FAST
            .get((acc >> (64 - FAST_BITS)) as usize)
            .copied()
            .unwrap_or(0);
        let symbols = entry >> 26;
        if bits >= FAST_BITS && symbols != 0 {
            // Both symbols are written; the second only counts when there is one.
            let Some([a, b]) = out.get_mut(n..).and_then(|s| s.first_chunk_mut::<2>()) else {
                return Err(Error::InvalidHuffman);
            };
            *a = entry as u8;
            *b = (entry >> 8) as u8;
            n += symbols as usize;
            let len = (entry >> 21) & 0x1f;
            acc <<= len;
            bits -= len;
            continue;
        }
        if bits == 0 {
            return Ok(n);
        }
        let (sym, len) = if symbols != 0 {
            // The tail: take only the first symbol, which the zero bits below `bits` cannot
            // have changed (prefix code); its length says whether it is really there.
            ((entry & 0xff) as u16, (entry >> 16) & 0x1f)
        } else {
            decode_long(acc, bits)
        };
        if len > bits {
            // §5.2: "A padding strictly longer than 7 bits MUST be treated as a decoding
            // error." "A padding not corresponding to the most significant bits of the code
            // for the EOS symbol MUST be treated as a decoding error."
            let ones = !0u64 << (64 - bits);
            return if bits <= 7 && acc & ones == ones {
                Ok(n)
            } else {
                Err(Error::InvalidHuffman)
            };
        }
        // §5.2: "A Huffman-encoded string literal containing the EOS symbol MUST be treated as
        // a decoding error."
        if sym == EOS {
            return Err(Error::InvalidHuffman);
        }
        let Some(slot) = out.get_mut(n) else {
            return Err(Error::InvalidHuffman);
        };
        *slot = sym as u8;
        n += 1;
        acc <<= len;
        bits -= len;
    }
}

/// Decodes a code longer than `FAST_BITS` at the top of `acc`, or returns a length above
/// `bits` when the available bits do not complete one.
#[cold]
fn decode_long(acc: u64, bits: u32) -> (u16, u32) {
    let c = &CANONICAL;
    let mut len = FAST_BITS + 1;
    while len as usize <= MAX_LEN && len <= bits {
        let code = (acc >> (64 - len)) as u32;
        let l = len as usize;
        let (Some(&first), Some(&count), Some(&offset)) =
            (c.first.get(l), c.count.get(l), c.offset.get(l))
        else {
            break;
        };
        let delta = code.wrapping_sub(first);
        if delta < u32::from(count) {
            let at = usize::from(offset) + delta as usize;
            return (c.symbols.get(at).copied().unwrap_or(EOS), len);
        }
        len += 1;
    }
    (EOS, u32::MAX)
}
