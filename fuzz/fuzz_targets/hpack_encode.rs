//! HPACK encoder round trip: arbitrary header lists, over several blocks of one connection and
//! with `SETTINGS_HEADER_TABLE_SIZE` changes between blocks, are encoded with our `Encoder` and
//! decoded with both our `Decoder` and loona-hpack's (an independent implementation). Both must
//! decode every block, to exactly the list that was encoded; a field passed as sensitive (and
//! every `authorization`) comes back never-indexed from ours; a block is never much larger than
//! its fields.
//!
//! Names and values are mostly drawn from a list of common ones (static table entries, names the
//! encoder never indexes or treats specially, repeated custom fields), so the static, dynamic
//! and name-only index paths and evictions all run; arbitrary bytes fill the rest (HPACK treats
//! names and values as opaque octets, and so do both decoders).
#![no_main]

#[path = "common/hpack_pair.rs"]
mod hpack_pair;

use bytes::BytesMut;
use hpack_pair::{Pair, Step};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use protocols::http2::hpack::Encoder;

/// `SETTINGS_HEADER_TABLE_SIZE` choices sent by the decoding side.
const TABLE_SIZES: [usize; 6] = [0, 1, 64, 256, 4096, 65536];

const NAMES: [&[u8]; 24] = [
    b":method",
    b":path",
    b":status",
    b":authority",
    b":scheme",
    b"accept-encoding",
    b"content-type",
    b"content-length",
    b"cookie",
    b"set-cookie",
    b"authorization",
    b"proxy-authorization",
    b"user-agent",
    b"x-request-id",
    b"x-forwarded-for",
    b"grpc-status",
    b"te",
    b"x-custom",
    b"x-custom-2",
    b"etag",
    b"via",
    b"b3",
    b"",
    b"www-authenticate",
];

const VALUES: [&[u8]; 16] = [
    b"",
    b"GET",
    b"POST",
    b"/",
    b"/index.html",
    b"200",
    b"404",
    b"http",
    b"https",
    b"gzip, deflate",
    b"application/grpc",
    b"trailers",
    b"a-long-cookie-value-of-more-than-twenty-octets",
    b"short",
    b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    b"\x00\xff\r\n \t",
];

#[derive(Arbitrary, Debug)]
struct Input {
    blocks: Vec<Block>,
}

#[derive(Arbitrary, Debug)]
struct Block {
    /// A new `SETTINGS_HEADER_TABLE_SIZE` (index into `TABLE_SIZES`) before this block, applied
    /// to both decoders and then to the encoder (as when the peer acknowledges SETTINGS).
    settings: Option<u8>,
    fields: Vec<Field>,
}

#[derive(Arbitrary, Debug)]
struct Field {
    name: Text,
    value: Text,
    sensitive: bool,
}

#[derive(Arbitrary, Debug)]
enum Text {
    Common(u8),
    Bytes(Vec<u8>),
}

impl Text {
    fn bytes<'a>(&'a self, common: &[&'static [u8]]) -> &'a [u8] {
        match self {
            Self::Common(i) => common[usize::from(*i) % common.len()],
            Self::Bytes(b) => b,
        }
    }
}

fuzz_target!(|input: Input| {
    let mut enc = Encoder::new();
    let mut pair = Pair::new(4096);
    let mut wire = BytesMut::new();
    for block in &input.blocks {
        // A header block carries at least one field (a HEADERS frame has pseudo-headers); a
        // block of nothing but a size update is refused by loona (see `common/hpack_pair.rs`).
        if block.fields.is_empty() {
            continue;
        }
        if let Some(s) = block.settings {
            let n = TABLE_SIZES[usize::from(s) % TABLE_SIZES.len()];
            pair.set_max_table_size(n);
            enc.set_max_table_size(n);
        }
        let fields: Vec<(&[u8], &[u8], bool)> = block
            .fields
            .iter()
            .map(|f| (f.name.bytes(&NAMES), f.value.bytes(&VALUES), f.sensitive))
            .collect();
        wire.clear();
        enc.encode(fields.iter().copied(), &mut wire);
        // Two size updates at most, then per field at most a 5-octet index or a flag octet plus
        // two 5-octet lengths; strings are never longer coded than plain.
        let bound = 12
            + fields
                .iter()
                .map(|(n, v, _)| n.len() + v.len() + 11)
                .sum::<usize>();
        assert!(wire.len() <= bound, "{} octets for {fields:?}", wire.len());
        let Step::Decoded(back) = pair.decode(&wire) else {
            panic!("our encoding of {fields:?} is refused: {:02x?}", &wire[..]);
        };
        assert_eq!(back.len(), fields.len(), "field count for {fields:?}");
        for ((n1, v1, s1), (n2, v2, s2)) in fields.iter().zip(&back) {
            assert_eq!((*n1, *v1), (&n2[..], &v2[..]));
            assert!(!*s1 || *s2, "a sensitive field stays never-indexed");
            if *n1 == b"authorization" || *n1 == b"proxy-authorization" {
                assert!(*s2, "credentials are sent never-indexed");
            }
        }
    }
});
