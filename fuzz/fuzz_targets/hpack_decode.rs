//! HPACK: `Decoder::decode` never panics over a sequence of header blocks sharing one dynamic
//! table, and whatever it decodes survives `Encoder::encode` -> `Decoder::decode` unchanged
//! (names, values, order; a sensitive field stays sensitive).
//! Input: `[table size selector, list size selector, (block length, block)...]`.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use protocols::http2::Fields;
use protocols::http2::hpack::{Decoder, Encoder, Error};

fuzz_target!(|input: &[u8]| {
    let [tsel, lsel, rest @ ..] = input else {
        return;
    };
    let mut rest: &[u8] = rest;
    let table = [0, 64, 4096, 65536][usize::from(tsel % 4)];
    let max_list = [usize::MAX, 256, 16384][usize::from(lsel % 3)];
    let mut dec = Decoder::new(table);
    // The round trip runs on its own encoder/decoder pair with the default settings.
    let mut enc = Encoder::new();
    let mut check = Decoder::new(4096);
    while let [len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let block = &tail[..n];
        rest = &tail[n..];
        let mut fields = Fields::new();
        match dec.decode(block, max_list, &mut fields) {
            Ok(()) => round_trip(&mut enc, &mut check, &fields),
            // The block was decoded in full and the table is in sync: go on with the next.
            Err(Error::HeaderListTooLarge) => {
                assert_ne!(max_list, usize::MAX);
                // Nothing is stored past the limit (each field counts 32 octets more).
                assert!(fields.byte_len() + 32 * fields.len() <= max_list);
            }
            // A compression error ends the connection.
            Err(_) => return,
        }
    }
});

fn round_trip(enc: &mut Encoder, check: &mut Decoder, fields: &Fields) {
    let mut wire = BytesMut::new();
    let sensitive = |i| fields.is_sensitive(i);
    enc.encode(
        (fields.iter().enumerate()).map(|(i, (n, v))| (n, v, sensitive(i))),
        &mut wire,
    );
    let mut back = Fields::new();
    check
        .decode(&wire, usize::MAX, &mut back)
        .expect("our own encoding decodes");
    assert_eq!(back, *fields);
    for i in 0..fields.len() {
        assert!(!fields.is_sensitive(i) || back.is_sensitive(i), "a sensitive field stays never-indexed");
    }
}
