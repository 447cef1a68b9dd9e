//! HPACK conformance tests, named after the RFC 7541 section they check, plus property tests.

use bytes::BytesMut;
use proptest::prelude::*;

use super::encoder::HuffmanPolicy;
use super::table::DynamicTable;
use super::*;
use crate::http2::Fields;

type Field = (Vec<u8>, Vec<u8>, bool);

fn unhex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn decode(d: &mut Decoder, block: &[u8]) -> Result<Vec<Field>, Error> {
    decode_limited(d, block, usize::MAX)
}

fn decode_limited(d: &mut Decoder, block: &[u8], limit: usize) -> Result<Vec<Field>, Error> {
    let mut out = Fields::new();
    d.decode(block, limit, &mut out)?;
    Ok(triples(&out))
}

fn triples(fields: &Fields) -> Vec<Field> {
    (fields.iter().enumerate())
        .map(|(i, (n, v))| (n.to_vec(), v.to_vec(), fields.is_sensitive(i)))
        .collect()
}

fn encode(e: &mut Encoder, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut dst = BytesMut::new();
    e.encode(
        fields
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes(), false)),
        &mut dst,
    );
    dst.to_vec()
}

fn table_of(t: &DynamicTable) -> Vec<(String, String)> {
    t.iter()
        .map(|e| {
            (
                String::from_utf8(e.name.to_vec()).unwrap(),
                String::from_utf8(e.value.to_vec()).unwrap(),
            )
        })
        .collect()
}

fn plain(fields: &[Field]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(n, v, _)| {
            (
                String::from_utf8(n.clone()).unwrap(),
                String::from_utf8(v.clone()).unwrap(),
            )
        })
        .collect()
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// One step of an Appendix C sequence.
struct Example {
    section: &'static str,
    fields: &'static [(&'static str, &'static str)],
    block: &'static str,
    table: &'static [(&'static str, &'static str)],
    size: usize,
}

/// Encodes and decodes an Appendix C sequence on one encoder/decoder pair, checking the exact
/// bytes, the decoded fields and both tables after every block. `first_prefix` is what the
/// encoder must emit before the first block (a size update for the 256-octet examples).
fn run(
    examples: &[Example],
    table_size: usize,
    index_all: bool,
    huffman: HuffmanPolicy,
    first_prefix: &str,
) {
    let mut enc = Encoder::new();
    enc.set_policy(index_all, huffman);
    enc.set_max_table_size(table_size);
    let mut dec = Decoder::new(table_size);
    for (i, ex) in examples.iter().enumerate() {
        let mut want = if i == 0 {
            unhex(first_prefix)
        } else {
            Vec::new()
        };
        want.extend(unhex(ex.block));
        let got = encode(&mut enc, ex.fields);
        assert_eq!(hex(&got), hex(&want), "{} encoded bytes", ex.section);
        let fields = decode(&mut dec, &want).unwrap();
        assert_eq!(
            plain(&fields),
            owned(ex.fields),
            "{} decoded fields",
            ex.section
        );
        assert!(fields.iter().all(|f| !f.2), "{} sensitive", ex.section);
        assert_eq!(
            table_of(dec.table()),
            owned(ex.table),
            "{} decoder table",
            ex.section
        );
        assert_eq!(
            dec.table().size(),
            ex.size,
            "{} decoder table size",
            ex.section
        );
        assert_eq!(
            table_of(enc.table()),
            owned(ex.table),
            "{} encoder table",
            ex.section
        );
        assert_eq!(
            enc.table().size(),
            ex.size,
            "{} encoder table size",
            ex.section
        );
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ---- Appendix C.1: integer representation (§5.1) ----

#[test]
fn rfc7541_c_1_integer_examples() {
    let mut dst = BytesMut::new();
    encoder::encode_int(10, 5, 0, &mut dst);
    assert_eq!(&dst[..], [0x0a]);
    dst.clear();
    encoder::encode_int(1337, 5, 0, &mut dst);
    assert_eq!(&dst[..], [0x1f, 0x9a, 0x0a]);
    dst.clear();
    encoder::encode_int(42, 8, 0, &mut dst);
    assert_eq!(&dst[..], [0x2a]);
    let mut pos = 0;
    assert_eq!(
        decoder::decode_int(&[0xff, 0x9a, 0x0a], &mut pos, 5),
        Ok(1337)
    );
    assert_eq!(pos, 3);
}

#[test]
fn rfc7541_5_1_integer_round_trip_and_overflow() {
    for prefix in 1..=8u8 {
        for v in [
            0usize,
            1,
            30,
            31,
            32,
            126,
            127,
            128,
            255,
            256,
            16_383,
            16_384,
            1 << 21,
            u32::MAX as usize,
        ] {
            let mut dst = BytesMut::new();
            encoder::encode_int(v, prefix, 0, &mut dst);
            let mut pos = 0;
            assert_eq!(
                decoder::decode_int(&dst, &mut pos, prefix),
                Ok(v),
                "prefix {prefix} value {v}"
            );
            assert_eq!(pos, dst.len());
            // Every truncation is Truncated, never a wrong value.
            for cut in 0..dst.len() {
                let mut pos = 0;
                assert_eq!(
                    decoder::decode_int(&dst[..cut], &mut pos, prefix),
                    Err(Error::Truncated)
                );
            }
        }
    }
    // 2^32 does not fit.
    let mut dst = BytesMut::new();
    encoder::encode_int(1 << 32, 5, 0, &mut dst);
    assert_eq!(
        decoder::decode_int(&dst, &mut 0, 5),
        Err(Error::IntegerOverflow)
    );
    // Six continuation octets are refused even when the value would be small.
    assert_eq!(
        decoder::decode_int(&[0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], &mut 0, 5),
        Err(Error::IntegerOverflow)
    );
    // Five are fine.
    assert_eq!(
        decoder::decode_int(&[0x1f, 0x80, 0x80, 0x80, 0x80, 0x00], &mut 0, 5),
        Ok(31)
    );
    // An endless run of continuation octets stops at the limit.
    let mut block = vec![0xff];
    block.extend([0xff; 64]);
    assert_eq!(
        decode(&mut Decoder::new(4096), &block),
        Err(Error::IntegerOverflow)
    );
}

// ---- Appendix C.2: one representation each (§6.1, §6.2.1-§6.2.3) ----

#[test]
fn rfc7541_c_2_1_literal_with_indexing() {
    let bytes = "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572";
    let mut enc = Encoder::new();
    enc.set_policy(false, HuffmanPolicy::Never);
    assert_eq!(
        hex(&encode(&mut enc, &[("custom-key", "custom-header")])),
        hex(&unhex(bytes))
    );
    let mut dec = Decoder::new(4096);
    let fields = decode(&mut dec, &unhex(bytes)).unwrap();
    assert_eq!(
        fields,
        [(b"custom-key".to_vec(), b"custom-header".to_vec(), false)]
    );
    assert_eq!(
        table_of(dec.table()),
        owned(&[("custom-key", "custom-header")])
    );
    assert_eq!(dec.table().size(), 55);
}

#[test]
fn rfc7541_c_2_2_literal_without_indexing() {
    let bytes = "040c 2f73 616d 706c 652f 7061 7468";
    let mut enc = Encoder::new();
    enc.set_policy(false, HuffmanPolicy::Never);
    // `:path` is never indexed by policy, which is exactly this example.
    assert_eq!(
        hex(&encode(&mut enc, &[(":path", "/sample/path")])),
        hex(&unhex(bytes))
    );
    let mut dec = Decoder::new(4096);
    let fields = decode(&mut dec, &unhex(bytes)).unwrap();
    assert_eq!(
        fields,
        [(b":path".to_vec(), b"/sample/path".to_vec(), false)]
    );
    assert_eq!(dec.table().len(), 0);
}

#[test]
fn rfc7541_c_2_3_literal_never_indexed() {
    let bytes = "1008 7061 7373 776f 7264 0673 6563 7265 74";
    let mut enc = Encoder::new();
    enc.set_policy(false, HuffmanPolicy::Never);
    let mut dst = BytesMut::new();
    enc.encode([(&b"password"[..], &b"secret"[..], true)], &mut dst);
    assert_eq!(hex(&dst), hex(&unhex(bytes)));
    assert_eq!(enc.table().len(), 0);
    let mut dec = Decoder::new(4096);
    let fields = decode(&mut dec, &unhex(bytes)).unwrap();
    assert_eq!(fields, [(b"password".to_vec(), b"secret".to_vec(), true)]);
    assert_eq!(dec.table().len(), 0);
}

#[test]
fn rfc7541_c_2_4_indexed() {
    let mut enc = Encoder::new();
    assert_eq!(encode(&mut enc, &[(":method", "GET")]), [0x82]);
    let mut dec = Decoder::new(4096);
    assert_eq!(
        decode(&mut dec, &[0x82]).unwrap(),
        [(b":method".to_vec(), b"GET".to_vec(), false)]
    );
    assert_eq!(dec.table().len(), 0);
}

// ---- Appendix C.3 / C.4: requests ----

const REQUEST_1: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
];
const REQUEST_2: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const REQUEST_3: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];
const AFTER_REQUEST_1: &[(&str, &str)] = &[(":authority", "www.example.com")];
const AFTER_REQUEST_2: &[(&str, &str)] = &[
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];
const AFTER_REQUEST_3: &[(&str, &str)] = &[
    ("custom-key", "custom-value"),
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];

#[test]
fn rfc7541_c_3_requests_without_huffman() {
    run(
        &[
            Example {
                section: "C.3.1",
                fields: REQUEST_1,
                block: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                table: AFTER_REQUEST_1,
                size: 57,
            },
            Example {
                section: "C.3.2",
                fields: REQUEST_2,
                block: "8286 84be 5808 6e6f 2d63 6163 6865",
                table: AFTER_REQUEST_2,
                size: 110,
            },
            Example {
                section: "C.3.3",
                fields: REQUEST_3,
                block: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
                table: AFTER_REQUEST_3,
                size: 164,
            },
        ],
        4096,
        false,
        HuffmanPolicy::Never,
        "",
    );
}

#[test]
fn rfc7541_c_4_requests_with_huffman() {
    // The default policy (index, Huffman when shorter) reproduces the RFC bytes exactly.
    run(
        &[
            Example {
                section: "C.4.1",
                fields: REQUEST_1,
                block: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
                table: AFTER_REQUEST_1,
                size: 57,
            },
            Example {
                section: "C.4.2",
                fields: REQUEST_2,
                block: "8286 84be 5886 a8eb 1064 9cbf",
                table: AFTER_REQUEST_2,
                size: 110,
            },
            Example {
                section: "C.4.3",
                fields: REQUEST_3,
                block: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
                table: AFTER_REQUEST_3,
                size: 164,
            },
        ],
        4096,
        false,
        HuffmanPolicy::Shorter,
        "",
    );
}

// ---- Appendix C.5 / C.6: responses with a 256-octet table (eviction) ----

const RESPONSE_1: &[(&str, &str)] = &[
    (":status", "302"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RESPONSE_2: &[(&str, &str)] = &[
    (":status", "307"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RESPONSE_3: &[(&str, &str)] = &[
    (":status", "200"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
    ("location", "https://www.example.com"),
    ("content-encoding", "gzip"),
    (
        "set-cookie",
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    ),
];
const AFTER_RESPONSE_1: &[(&str, &str)] = &[
    ("location", "https://www.example.com"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("cache-control", "private"),
    (":status", "302"),
];
const AFTER_RESPONSE_2: &[(&str, &str)] = &[
    (":status", "307"),
    ("location", "https://www.example.com"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("cache-control", "private"),
];
const AFTER_RESPONSE_3: &[(&str, &str)] = &[
    (
        "set-cookie",
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    ),
    ("content-encoding", "gzip"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
];

/// The size update to 256 that our encoder sends before the first block once the peer's
/// setting is 256 (§6.3: 001 11111, then 256 - 31 = 225 = 0xe1 0x01).
const UPDATE_TO_256: &str = "3fe1 01";

#[test]
fn rfc7541_c_5_responses_without_huffman() {
    run(
        &[
            Example {
                section: "C.5.1",
                fields: RESPONSE_1,
                block: "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 \
                        3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 \
                        7777 2e65 7861 6d70 6c65 2e63 6f6d",
                table: AFTER_RESPONSE_1,
                size: 222,
            },
            Example {
                section: "C.5.2",
                fields: RESPONSE_2,
                block: "4803 3330 37c1 c0bf",
                table: AFTER_RESPONSE_2,
                size: 222,
            },
            Example {
                section: "C.5.3",
                fields: RESPONSE_3,
                block: "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 \
                        3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a \
                        584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 \
                        3630 303b 2076 6572 7369 6f6e 3d31",
                table: AFTER_RESPONSE_3,
                size: 215,
            },
        ],
        256,
        true,
        HuffmanPolicy::Never,
        UPDATE_TO_256,
    );
}

#[test]
fn rfc7541_c_6_responses_with_huffman() {
    run(
        &[
            Example {
                section: "C.6.1",
                fields: RESPONSE_1,
                block: "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 \
                        66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
                table: AFTER_RESPONSE_1,
                size: 222,
            },
            Example {
                section: "C.6.2",
                fields: RESPONSE_2,
                block: "4883 640e ffc1 c0bf",
                table: AFTER_RESPONSE_2,
                size: 222,
            },
            Example {
                section: "C.6.3",
                fields: RESPONSE_3,
                block: "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a \
                        839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 \
                        72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
                table: AFTER_RESPONSE_3,
                size: 215,
            },
        ],
        256,
        true,
        HuffmanPolicy::Always,
        UPDATE_TO_256,
    );
}

// ---- §5.2: Huffman ----

#[test]
fn rfc7541_5_2_huffman_rfc_strings() {
    for (coded, text) in [
        ("f1e3 c2e5 f23a 6ba0 ab90 f4ff", "www.example.com"),
        ("a8eb 1064 9cbf", "no-cache"),
        ("25a8 49e9 5ba9 7d7f", "custom-key"),
        ("25a8 49e9 5bb8 e8b4 bf", "custom-value"),
        ("6402", "302"),
        ("aec3 771a 4b", "private"),
        (
            "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
            "Mon, 21 Oct 2013 20:13:21 GMT",
        ),
        (
            "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3",
            "https://www.example.com",
        ),
        ("9bd9 ab", "gzip"),
    ] {
        let mut out = BytesMut::new();
        huffman::decode(&unhex(coded), &mut out).unwrap();
        assert_eq!(&out[..], text.as_bytes());
        let mut enc = BytesMut::new();
        huffman::encode(text.as_bytes(), &mut enc);
        assert_eq!(hex(&enc), hex(&unhex(coded)));
        assert_eq!(huffman::encoded_len(text.as_bytes()), enc.len());
    }
}

#[test]
fn rfc7541_5_2_huffman_round_trip_every_byte() {
    // Each byte alone (each code, short and long, at the start of the input) ...
    for b in 0..=255u8 {
        let mut enc = BytesMut::new();
        huffman::encode(&[b], &mut enc);
        let mut dec = BytesMut::new();
        huffman::decode(&enc, &mut dec).unwrap();
        assert_eq!(&dec[..], [b], "byte {b}");
    }
    // ... and all of them in a row, at every bit alignment, appended after existing output.
    let all: Vec<u8> = (0..=255u8).collect();
    for shift in 0..8 {
        let input: Vec<u8> = std::iter::repeat_n(b'0', shift)
            .chain(all.iter().copied())
            .collect();
        let mut enc = BytesMut::new();
        huffman::encode(&input, &mut enc);
        assert_eq!(huffman::encoded_len(&input), enc.len());
        let mut dec = BytesMut::from(&b"prefix"[..]);
        huffman::decode(&enc, &mut dec).unwrap();
        assert_eq!(&dec[6..], &input[..]);
        assert_eq!(&dec[..6], b"prefix");
    }
}

#[test]
fn rfc7541_5_2_huffman_table_is_canonical() {
    // The long-code decoder relies on codes growing with (length, symbol).
    let mut order: Vec<usize> = (0..257).collect();
    order.sort_by_key(|&s| (huffman::ENCODE_TABLE[s].1, s));
    let mut code = 0u32;
    let mut len = huffman::ENCODE_TABLE[order[0]].1;
    for (k, &s) in order.iter().enumerate() {
        let (c, l) = huffman::ENCODE_TABLE[s];
        if k > 0 {
            code = (code + 1) << (l - len);
        }
        len = l;
        assert_eq!(c, code, "symbol {s}");
    }
    assert_eq!(huffman::ENCODE_TABLE[256], (0x3fff_ffff, 30));
}

#[test]
fn rfc7541_5_2_huffman_padding_longer_than_7_bits_is_an_error() {
    // 'a' is 00011 (5 bits); a whole octet of ones after it is 8+ bits of padding.
    let mut out = BytesMut::new();
    assert_eq!(
        huffman::decode(&[0b0001_1111, 0xff], &mut out),
        Err(Error::InvalidHuffman)
    );
    // A lone all-ones octet: 8 bits of padding.
    assert_eq!(
        huffman::decode(&[0xff], &mut out),
        Err(Error::InvalidHuffman)
    );
    assert_eq!(
        huffman::decode(&[0xff, 0xff], &mut out),
        Err(Error::InvalidHuffman)
    );
    assert!(out.is_empty());
    // 3 bits of padding are fine.
    huffman::decode(&[0b0001_1111], &mut out).unwrap();
    assert_eq!(&out[..], b"a");
}

#[test]
fn rfc7541_5_2_huffman_padding_not_all_ones_is_an_error() {
    let mut out = BytesMut::new();
    // 'a' then padding 110.
    assert_eq!(
        huffman::decode(&[0b0001_1110], &mut out),
        Err(Error::InvalidHuffman)
    );
    // 'a' then padding 000: that is an incomplete code, not EOS bits.
    assert_eq!(
        huffman::decode(&[0b0001_1000], &mut out),
        Err(Error::InvalidHuffman)
    );
    assert!(out.is_empty());
}

#[test]
fn rfc7541_5_2_huffman_eos_in_string_is_an_error() {
    // EOS (30 ones) then 2 bits of padding.
    let mut out = BytesMut::new();
    assert_eq!(
        huffman::decode(&[0xff, 0xff, 0xff, 0xff], &mut out),
        Err(Error::InvalidHuffman)
    );
    // 'a' (00011), EOS, then 5 bits padding: 40 bits.
    let bits: u64 = (0b00011 << 35) | (0x3fff_ffff << 5) | 0b11111;
    let bytes = &bits.to_be_bytes()[3..];
    assert_eq!(huffman::decode(bytes, &mut out), Err(Error::InvalidHuffman));
    // The same through the decoder is a compression error.
    let mut block = vec![0x00, 0x81, 0x1f]; // literal, Huffman name "a"
    block.extend([0x84, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(
        decode(&mut Decoder::new(4096), &block),
        Err(Error::InvalidHuffman)
    );
}

// ---- §4: the dynamic table ----

#[test]
fn rfc7541_4_1_entry_size_and_4_4_eviction() {
    let mut t = DynamicTable::new(100);
    let mut evicted = Vec::new();
    assert_eq!(
        t.insert(b"aaaa", b"bbbb", |id, _| evicted.push(id)),
        Some(0)
    ); // 40
    assert_eq!(
        t.insert(b"cccc", b"dddd", |id, _| evicted.push(id)),
        Some(1)
    ); // 80
    assert_eq!(t.size(), 80);
    assert_eq!(
        t.insert(b"eeee", b"ffff", |id, _| evicted.push(id)),
        Some(2)
    );
    assert_eq!(evicted, [0]);
    assert_eq!(t.size(), 80);
    assert_eq!(&t.get(0).unwrap().name[..], b"eeee");
    assert_eq!(&t.get(1).unwrap().name[..], b"cccc");
    assert_eq!(t.position_of(0), None);
    assert_eq!(t.position_of(1), Some(1));
    // §4.4: an entry larger than the table empties it.
    assert_eq!(
        t.insert(&[b'x'; 60], &[b'y'; 9], |id, _| evicted.push(id)),
        None
    );
    assert_eq!(t.len(), 0);
    assert_eq!(t.size(), 0);
    assert_eq!(evicted, [0, 1, 2]);
}

#[test]
fn rfc7541_4_4_entry_larger_than_table_empties_it_in_the_decoder() {
    let mut dec = Decoder::new(4096);
    decode(
        &mut dec,
        &unhex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
    )
    .unwrap();
    assert_eq!(dec.table().len(), 1);
    let mut enc = BytesMut::new();
    let big = vec![b'v'; 4096];
    // A literal with indexing of a 4096-octet value: 4 + 4096 + 32 > 4096.
    encoder::encode_int(0, 6, 0x40, &mut enc);
    encoder::encode_int(4, 7, 0, &mut enc);
    enc.extend_from_slice(b"name");
    encoder::encode_int(big.len(), 7, 0, &mut enc);
    enc.extend_from_slice(&big);
    let fields = decode(&mut dec, &enc).unwrap();
    assert_eq!(fields[0].1.len(), 4096);
    assert_eq!(dec.table().len(), 0);
    assert_eq!(dec.table().size(), 0);
}

#[test]
fn rfc7541_4_2_size_update_above_setting_is_an_error() {
    let mut dec = Decoder::new(4096);
    let mut block = BytesMut::new();
    encoder::encode_int(4097, 5, 0x20, &mut block);
    assert_eq!(
        decode(&mut dec, &block),
        Err(Error::TableSizeUpdateTooLarge)
    );
    // Up to the setting is fine, and raises the table's maximum above the initial 4096.
    dec.set_max_table_size(8192);
    assert_eq!(decode(&mut dec, &block), Ok(vec![]));
    assert_eq!(dec.table().max_size(), 4097);
    // Lowering the setting bounds later updates.
    dec.set_max_table_size(100);
    let mut block = BytesMut::new();
    encoder::encode_int(101, 5, 0x20, &mut block);
    assert_eq!(
        decode(&mut dec, &block),
        Err(Error::TableSizeUpdateTooLarge)
    );
}

#[test]
fn rfc7541_4_2_size_update_only_at_start_of_block() {
    let mut dec = Decoder::new(4096);
    // Two updates, then a field: fine (§6.3 allows the minimum then the final size).
    assert_eq!(
        decode(&mut dec, &[0x20, 0x3f, 0xe1, 0x1f, 0x82]).unwrap(),
        [(b":method".to_vec(), b"GET".to_vec(), false)]
    );
    // A field, then an update: refused (RFC 7541 §4.2, RFC 9113 §4.3).
    assert_eq!(
        decode(&mut dec, &[0x82, 0x20]),
        Err(Error::TableSizeUpdateNotAtStart)
    );
}

#[test]
fn rfc7541_4_2_size_update_evicts() {
    let mut dec = Decoder::new(4096);
    decode(
        &mut dec,
        &unhex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"),
    )
    .unwrap();
    assert_eq!(dec.table().size(), 57);
    decode(&mut dec, &[0x20]).unwrap(); // size 0
    assert_eq!(dec.table().len(), 0);
    assert_eq!(decode(&mut dec, &[0xbe]), Err(Error::InvalidIndex));
}

#[test]
fn rfc7541_4_2_encoder_signals_minimum_then_final_size() {
    let mut enc = Encoder::new();
    let mut dec = Decoder::new(4096);
    let block = encode(&mut enc, &[("x-a", "1")]);
    decode(&mut dec, &block).unwrap();
    assert_eq!(enc.table().len(), 1);
    // The peer shrinks to 0 then goes back to 4096 between two blocks.
    enc.set_max_table_size(0);
    enc.set_max_table_size(4096);
    let block = encode(&mut enc, &[("x-a", "1")]);
    assert_eq!(&block[..4], [0x20, 0x3f, 0xe1, 0x1f]);
    let fields = decode(&mut dec, &block).unwrap();
    assert_eq!(plain(&fields), owned(&[("x-a", "1")]));
    // Both re-inserted the field after the flush.
    assert_eq!(table_of(dec.table()), table_of(enc.table()));
    assert_eq!(dec.table().len(), 1);
    // No change, no update; a larger setting than the encoder's cap is no change either.
    enc.set_max_table_size(1 << 20);
    let block = encode(&mut enc, &[("x-a", "1")]);
    assert_eq!(block, [0xbe]);
}

// ---- §2.3.3: index address space ----

#[test]
fn rfc7541_2_3_3_index_zero_is_an_error() {
    assert_eq!(
        decode(&mut Decoder::new(4096), &[0x80]),
        Err(Error::InvalidIndex)
    );
}

#[test]
fn rfc7541_2_3_3_index_beyond_tables_is_an_error() {
    let mut dec = Decoder::new(4096);
    assert_eq!(
        decode(&mut dec, &[0xbd]).unwrap(),
        [(b"www-authenticate".to_vec(), b"".to_vec(), false)]
    );
    assert_eq!(decode(&mut dec, &[0xbe]), Err(Error::InvalidIndex)); // 62, empty dynamic table
    // Literal name references are checked too.
    assert_eq!(decode(&mut dec, &[0x7e, 0x00]), Err(Error::InvalidIndex)); // 6.2.1, name 62
    assert_eq!(
        decode(&mut dec, &[0x0f, 0x2f, 0x00]),
        Err(Error::InvalidIndex)
    ); // 6.2.2, name 62
    decode(
        &mut dec,
        &unhex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
    )
    .unwrap();
    assert_eq!(
        decode(&mut dec, &[0xbe, 0x0f, 0x2f, 0x01, b'x']).unwrap(),
        [
            (b"custom-key".to_vec(), b"custom-header".to_vec(), false),
            (b"custom-key".to_vec(), b"x".to_vec(), false),
        ]
    );
    assert_eq!(decode(&mut dec, &[0xbf]), Err(Error::InvalidIndex)); // 63
}

// ---- §6: representations, truncation, zero copy ----

#[test]
fn rfc7541_6_truncated_blocks_are_errors() {
    let full = unhex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d");
    for cut in 4..full.len() {
        assert_eq!(
            decode(&mut Decoder::new(4096), &full[..cut]),
            Err(Error::Truncated),
            "cut {cut}"
        );
    }
    assert_eq!(decode(&mut Decoder::new(4096), &[]), Ok(vec![]));
}

#[test]
fn rfc7541_6_2_plain_literals_are_copied_into_the_block_buffer() {
    let src = unhex("040c 2f73 616d 706c 652f 7061 7468");
    let range = src.as_ptr_range();
    let mut out = Fields::new();
    Decoder::new(4096)
        .decode(&src, usize::MAX, &mut out)
        .unwrap();
    let (name, v) = out.get(0).unwrap();
    assert_eq!((name, v), (&b":path"[..], &b"/sample/path"[..]));
    // Nothing refers to the block: it can be dropped or reused once decoded.
    assert!(!range.contains(&v.as_ptr()));
    assert_eq!(out.byte_len(), name.len() + v.len());
}

#[test]
fn rfc7541_5_2_huffman_strings_of_a_block_share_one_buffer() {
    // `:method: GET`, then C.4.3's last field (Huffman-coded name and value): decoded back to
    // back into the list's one buffer, after the static entry's copy.
    let src = unhex("82 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf");
    let mut out = Fields::new();
    let mut dec = Decoder::new(4096);
    dec.decode(&src, usize::MAX, &mut out).unwrap();
    let (method, get) = out.get(0).unwrap();
    let (name, value) = out.get(1).unwrap();
    assert_eq!((method, get), (&b":method"[..], &b"GET"[..]));
    assert_eq!((name, value), (&b"custom-key"[..], &b"custom-value"[..]));
    assert_eq!(method.as_ptr_range().end, get.as_ptr());
    assert_eq!(get.as_ptr_range().end, name.as_ptr());
    assert_eq!(name.as_ptr_range().end, value.as_ptr());
    assert_eq!(out.byte_len(), ":methodGETcustom-keycustom-value".len());
}

#[test]
fn rfc7541_6_2_3_sensitive_fields_are_never_indexed() {
    let mut enc = Encoder::new();
    let mut dec = Decoder::new(4096);
    let mut dst = BytesMut::new();
    enc.encode(
        [
            (&b"x-secret"[..], &b"hunter2"[..], true),
            (
                &b"authorization"[..],
                &b"Bearer abcdefghijklmnopqrstuvwxyz"[..],
                false,
            ),
            (&b"cookie"[..], &b"a=1"[..], false),
            (&b":method"[..], &b"GET"[..], true),
        ],
        &mut dst,
    );
    assert_eq!(enc.table().len(), 0);
    let fields = decode(&mut dec, &dst).unwrap();
    assert_eq!(
        fields.iter().map(|f| f.2).collect::<Vec<_>>(),
        [true, true, true, true]
    );
    assert_eq!(&fields[3].1[..], b"GET");
    assert_eq!(dec.table().len(), 0);
}

#[test]
fn encode_lowercasing_equals_encode_of_lowercased_names() {
    // Mixed case, lowercase, a pseudo-header, and a name longer than the stack room; twice,
    // so the second block hits the dynamic table.
    let long = format!("X-{}", "Long-Name".repeat(10));
    let given: Vec<(String, String)> = [
        (":status", "200"),
        ("Server", "nginx/1.22.1"),
        ("content-type", "text/plain"),
        ("Content-Length", "37"),
        ("ETag", "\"abc\""),
        (long.as_str(), "v"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    let (mut mixed, mut lower) = (Encoder::new(), Encoder::new());
    let mut decoder = Decoder::new(4096);
    for _ in 0..2 {
        let mut a = BytesMut::new();
        mixed.encode_lowercasing(
            given
                .iter()
                .map(|(n, v)| (n.as_bytes(), v.as_bytes(), false)),
            &mut a,
        );
        let lowered: Vec<(String, String)> = given
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        let mut b = BytesMut::new();
        lower.encode(
            lowered
                .iter()
                .map(|(n, v)| (n.as_bytes(), v.as_bytes(), false)),
            &mut b,
        );
        assert_eq!(hex(&a), hex(&b));
        let got = decode(&mut decoder, &a).unwrap();
        assert!(
            got.iter()
                .all(|(n, _, _)| !n.iter().any(u8::is_ascii_uppercase))
        );
    }
}

#[test]
fn encoder_policy_skips_volatile_and_large_fields() {
    let mut enc = Encoder::new();
    let mut dec = Decoder::new(4096);
    let big = "v".repeat(1100);
    let fields = [
        (":path", "/a/b?c=d"),
        ("content-length", "1234"),
        ("x-big", big.as_str()),
        ("user-agent", "curl/8"),
    ];
    let block = encode(&mut enc, &fields);
    assert_eq!(table_of(enc.table()), owned(&[("user-agent", "curl/8")]));
    assert_eq!(plain(&decode(&mut dec, &block).unwrap()), owned(&fields));
    // Sent again: the indexed field costs one octet.
    let block = encode(&mut enc, &[("user-agent", "curl/8")]);
    assert_eq!(block, [0xbe]);
    // A new value for a static name takes the static name index (user-agent is 58) ...
    let block = encode(&mut enc, &[("user-agent", "curl/9")]);
    assert_eq!(block[0], 0x40 | 58);
    // ... and a new value for a name only in the dynamic table takes the dynamic one.
    encode(&mut enc, &[("x-app", "a")]);
    let block = encode(&mut enc, &[("x-app", "b")]);
    assert_eq!(block[0], 0x40 | 62);
    assert_eq!(
        table_of(enc.table())[..2],
        owned(&[("x-app", "b"), ("x-app", "a")])
    );
}

// ---- HPACK bomb ----

#[test]
fn hpack_bomb_is_refused_and_the_table_stays_in_sync() {
    let mut enc = Encoder::new();
    enc.set_policy(true, HuffmanPolicy::Never);
    let mut dec = Decoder::new(4096);
    let value = "x".repeat(4000);
    let block = encode(&mut enc, &[("bomb", &value)]);
    decode(&mut dec, &block).unwrap();
    assert_eq!(dec.table().len(), 1);
    // 16 KiB of one-octet references to a 4 KiB entry: 64 MiB of header list.
    let mut block = vec![0xbe; 16 * 1024];
    // Then a literal with indexing the decoder must still apply.
    block.extend(unhex(
        "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
    ));
    let mut out = Fields::new();
    let r = dec.decode(&block, 16 * 1024, &mut out);
    assert_eq!(r, Err(Error::HeaderListTooLarge));
    assert!(!r.unwrap_err().is_compression_error());
    assert_eq!(out.len(), 4); // 4 x 4036 fits in 16 KiB, the fifth does not
    assert_eq!(out.byte_len(), 4 * 4004, "nothing stored past the limit");
    assert_eq!(dec.table().len(), 2);
    assert_eq!(&dec.table().get(0).unwrap().name[..], b"custom-key");
}

#[test]
fn hpack_bomb_of_literals_naming_a_table_entry_stores_nothing_past_the_limit() {
    let mut dec = Decoder::new(4096);
    let name = "n".repeat(4000);
    // A literal with indexing, plain name of length 127 + 0x21 + 0x1e * 128 = 4000.
    let mut block = vec![0x40, 0x7f, 0xa1, 0x1e];
    block.extend(name.as_bytes());
    block.push(0x00);
    decode(&mut dec, &block).unwrap();
    // Literals without indexing (§6.2.2) and never indexed (§6.2.3), named by index 62.
    let mut block = Vec::new();
    for _ in 0..8 * 1024 {
        block.extend([0x0f, 0x2f, 0x00, 0x1f, 0x2f, 0x00]);
    }
    let mut out = Fields::new();
    let r = dec.decode(&block, 16 * 1024, &mut out);
    assert_eq!(r, Err(Error::HeaderListTooLarge));
    assert_eq!(out.len(), 4);
    assert_eq!(out.byte_len(), 4 * 4000);
    assert!(out.is_sensitive(1) && !out.is_sensitive(0));
}

// ---- RFC 9113 §8.2.1 field checks ----

#[test]
fn rfc9113_8_2_1_field_name_and_value_checks() {
    for ok in [
        &b"content-type"[..],
        b":path",
        b"x-a_b.c~1",
        b"!#$%&'*+-.^_`|~",
    ] {
        assert!(is_valid_name(ok), "{ok:?}");
    }
    for bad in [
        &b""[..],
        b":",
        b"Content-Type",
        b"a b",
        b"a:b",
        b"::path",
        b"a\x7f",
        b"\xc3\xa9",
        b"a\0",
    ] {
        assert!(!is_valid_name(bad), "{bad:?}");
    }
    for ok in [&b""[..], b"a", b"a b", b"\x80\xff", b"x\ty"] {
        assert!(is_valid_value(ok), "{ok:?}");
    }
    for bad in [&b" a"[..], b"a ", b"\ta", b"a\r\nb", b"a\0"] {
        assert!(!is_valid_value(bad), "{bad:?}");
    }
}

// ---- properties ----

fn field_strategy() -> impl Strategy<Value = Field> {
    let name = prop_oneof![
        // Repeated names and values, to exercise dynamic references.
        prop::sample::select(vec![
            b":method".to_vec(),
            b":path".to_vec(),
            b"user-agent".to_vec(),
            b"x-custom".to_vec(),
            b"cookie".to_vec(),
            b"content-type".to_vec(),
        ]),
        prop::collection::vec(b'a'..=b'z', 1..12),
        prop::collection::vec(any::<u8>(), 0..20),
    ];
    let value = prop_oneof![
        prop::sample::select(vec![
            b"GET".to_vec(),
            b"/".to_vec(),
            b"text/html".to_vec(),
            b"v1".to_vec()
        ]),
        prop::collection::vec(any::<u8>(), 0..40),
        prop::collection::vec(b' '..=b'~', 0..300),
    ];
    (name, value, prop::bool::weighted(0.1))
}

/// Between blocks the peer may change its `SETTINGS_HEADER_TABLE_SIZE`.
fn block_strategy() -> impl Strategy<Value = (Option<usize>, Vec<Field>)> {
    (
        prop::option::weighted(
            0.15,
            prop::sample::select(vec![0usize, 64, 256, 1000, 4096, 65536]),
        ),
        prop::collection::vec(field_strategy(), 0..16),
    )
}

proptest! {
    #[test]
    fn prop_encode_decode_round_trip_across_blocks(blocks in prop::collection::vec(block_strategy(), 1..12)) {
        let mut enc = Encoder::new();
        let mut dec = Decoder::new(65536);
        for (resize, fields) in &blocks {
            if let Some(n) = resize {
                enc.set_max_table_size(*n);
            }
            let mut dst = BytesMut::new();
            enc.encode(fields.iter().map(|(n, v, s)| (&n[..], &v[..], *s)), &mut dst);
            let got = decode(&mut dec, &dst).unwrap();
            prop_assert_eq!(got.len(), fields.len());
            for (g, f) in got.iter().zip(fields) {
                prop_assert_eq!(&g.0, &f.0);
                prop_assert_eq!(&g.1, &f.1);
                // Sensitive fields stay sensitive; others may be marked by policy.
                prop_assert!(g.2 || !f.2);
            }
            prop_assert_eq!(table_of_raw(dec.table()), table_of_raw(enc.table()));
            prop_assert_eq!(dec.table().size(), enc.table().size());
        }
    }

    #[test]
    fn prop_huffman_round_trip(s in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut enc = BytesMut::new();
        huffman::encode(&s, &mut enc);
        prop_assert_eq!(enc.len(), huffman::encoded_len(&s));
        let mut dec = BytesMut::new();
        huffman::decode(&enc, &mut dec).unwrap();
        prop_assert_eq!(&dec[..], &s[..]);
    }

    #[test]
    fn prop_arbitrary_bytes_never_panic(blocks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..6)) {
        let mut dec = Decoder::new(4096);
        for block in &blocks {
            let _ = decode_limited(&mut dec, block, 8192);
            prop_assert!(dec.table().size() <= dec.table().max_size());
        }
        for block in &blocks {
            let mut out = BytesMut::new();
            let _ = huffman::decode(block, &mut out);
        }
    }

    #[test]
    fn prop_huffman_decode_matches_bitwise_reference(s in prop::collection::vec(any::<u8>(), 0..40)) {
        let mut out = BytesMut::new();
        let fast = huffman::decode(&s, &mut out).map(|()| out.to_vec());
        prop_assert_eq!(fast, reference_huffman_decode(&s));
    }
}

fn table_of_raw(t: &DynamicTable) -> Vec<(Vec<u8>, Vec<u8>)> {
    t.iter()
        .map(|e| (e.name.to_vec(), e.value.to_vec()))
        .collect()
}

/// A slow bit-at-a-time decoder straight from §5.2, to cross-check the table-driven one on
/// arbitrary (mostly invalid) input.
fn reference_huffman_decode(src: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let (mut code, mut len) = (0u32, 0u8);
    let (mut ones, mut pending) = (true, 0u32);
    for i in 0..src.len() * 8 {
        let bit = u32::from(src[i / 8] >> (7 - i % 8) & 1);
        code = code << 1 | bit;
        len += 1;
        pending += 1;
        ones &= bit == 1;
        if let Some(sym) = (0..257).find(|&s| huffman::ENCODE_TABLE[s] == (code, len)) {
            if sym == 256 {
                return Err(Error::InvalidHuffman);
            }
            out.push(sym as u8);
            (code, len, ones, pending) = (0, 0, true, 0);
        } else if len > 30 {
            return Err(Error::InvalidHuffman);
        }
    }
    if pending > 7 || !ones {
        return Err(Error::InvalidHuffman);
    }
    Ok(out)
}
