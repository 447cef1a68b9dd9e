//! HPACK differential: our `Decoder` and loona-hpack's decode the same header blocks of one
//! connection and must agree on success or failure and on the decoded list (see
//! `common/hpack_pair.rs` for what is configured alike and which differences are excluded).
//!
//! Input, by its first byte:
//! - `0x80` bit set, raw mode: `[mode, table size sel, (block length, block)...]`, like
//!   `hpack_decode`, so RFC 7541 Appendix C blocks serve as seeds.
//! - otherwise, structured mode: the rest is read with `arbitrary` as a list of blocks, each a
//!   list of representations (§6: indexed, literal with/without/never indexing with an indexed
//!   or literal name, size update, or raw bytes) whose integers may carry redundant
//!   continuation octets and whose strings are plain, Huffman coded by our encoder, or
//!   arbitrary bytes flagged as Huffman; a block may be cut short.
#![no_main]

#[path = "common/hpack_pair.rs"]
mod hpack_pair;

use bytes::{BufMut, BytesMut};
use hpack_pair::{Pair, Step};
use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use protocols::http2::hpack::huffman;

/// `SETTINGS_HEADER_TABLE_SIZE` choices. Kept at most 8192: a one-octet reference to a 4 KiB
/// entry already expands a 4 KiB input to 16 MiB in loona, which copies every field.
const TABLE_SIZES: [usize; 4] = [0, 64, 4096, 8192];

#[derive(Arbitrary, Debug)]
struct Input {
    table: u8,
    blocks: Vec<Block>,
}

#[derive(Arbitrary, Debug)]
struct Block {
    /// A new `SETTINGS_HEADER_TABLE_SIZE` (index into `TABLE_SIZES`) before this block.
    settings: Option<u8>,
    reps: Vec<Rep>,
    /// Octets cut off the end when below 4.
    cut: u8,
}

#[derive(Arbitrary, Debug)]
enum Rep {
    Indexed(Int),
    Literal { kind: Kind, name: Name, value: Str },
    SizeUpdate(Int),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Kind {
    Incremental,
    NotIndexed,
    NeverIndexed,
}

#[derive(Arbitrary, Debug)]
enum Name {
    Indexed(Int),
    Literal(Str),
}

#[derive(Arbitrary, Debug)]
struct Str {
    bytes: Vec<u8>,
    coding: Coding,
}

#[derive(Arbitrary, Debug)]
enum Coding {
    Plain,
    /// Coded with our Huffman encoder (a valid code).
    Huffman,
    /// The bytes as they are, flagged as Huffman (mostly invalid padding or EOS).
    HuffmanFlagged,
}

#[derive(Arbitrary, Debug)]
struct Int {
    value: IntValue,
    /// Redundant continuation octets (`pad % 4`) added when the value overflows the prefix.
    pad: u8,
}

#[derive(Arbitrary, Debug)]
enum IntValue {
    Small(u8),
    Wide(u16),
    Any(u32),
}

fuzz_target!(|input: &[u8]| {
    match input {
        [mode, rest @ ..] if mode & 0x80 != 0 => raw(rest),
        [_, rest @ ..] => {
            if let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(rest)) {
                structured(&input);
            }
        }
        [] => {}
    }
});

fn raw(input: &[u8]) {
    let [tsel, rest @ ..] = input else {
        return;
    };
    let mut rest: &[u8] = rest;
    let mut pair = Pair::new(TABLE_SIZES[usize::from(tsel % 4)]);
    while let [len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (block, next) = tail.split_at(n);
        rest = next;
        if let Step::Closed = pair.decode(block) {
            return;
        }
    }
}

fn structured(input: &Input) {
    let mut pair = Pair::new(TABLE_SIZES[usize::from(input.table % 4)]);
    let mut wire = BytesMut::new();
    for block in &input.blocks {
        if let Some(s) = block.settings {
            pair.set_max_table_size(TABLE_SIZES[usize::from(s % 4)]);
        }
        wire.clear();
        for rep in &block.reps {
            rep.encode(&mut wire);
        }
        if block.cut < 4 {
            let keep = wire.len().saturating_sub(usize::from(block.cut));
            wire.truncate(keep);
        }
        if let Step::Closed = pair.decode(&wire) {
            return;
        }
    }
}

impl Rep {
    fn encode(&self, dst: &mut BytesMut) {
        match self {
            Self::Indexed(i) => i.encode(7, 0x80, dst),
            Self::Literal { kind, name, value } => {
                let (prefix, flags) = match kind {
                    Kind::Incremental => (6, 0x40),
                    Kind::NotIndexed => (4, 0x00),
                    Kind::NeverIndexed => (4, 0x10),
                };
                match name {
                    Name::Indexed(i) => i.encode(prefix, flags, dst),
                    Name::Literal(s) => {
                        dst.put_u8(flags);
                        s.encode(dst);
                    }
                }
                value.encode(dst);
            }
            Self::SizeUpdate(i) => i.encode(5, 0x20, dst),
            Self::Raw(bytes) => dst.put_slice(bytes),
        }
    }
}

impl Str {
    fn encode(&self, dst: &mut BytesMut) {
        match self.coding {
            Coding::Plain => {
                encode_int(self.bytes.len(), 0, 7, 0x00, dst);
                dst.put_slice(&self.bytes);
            }
            Coding::Huffman => {
                encode_int(huffman::encoded_len(&self.bytes), 0, 7, 0x80, dst);
                huffman::encode(&self.bytes, dst);
            }
            Coding::HuffmanFlagged => {
                encode_int(self.bytes.len(), 0, 7, 0x80, dst);
                dst.put_slice(&self.bytes);
            }
        }
    }
}

impl Int {
    fn encode(&self, prefix: u8, flags: u8, dst: &mut BytesMut) {
        let value = match self.value {
            IntValue::Small(v) => usize::from(v),
            IntValue::Wide(v) => usize::from(v),
            IntValue::Any(v) => v as usize,
        };
        encode_int(value, usize::from(self.pad % 4), prefix, flags, dst);
    }
}

/// RFC 7541 §5.1 integer with `pad` redundant continuation octets (only when the value does not
/// fit the prefix: otherwise it has no continuation to pad).
fn encode_int(value: usize, pad: usize, prefix: u8, flags: u8, dst: &mut BytesMut) {
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
    if pad == 0 {
        dst.put_u8(rest as u8);
        return;
    }
    dst.put_u8(0x80 | rest as u8);
    for _ in 1..pad {
        dst.put_u8(0x80);
    }
    dst.put_u8(0);
}
