//! HPACK: `Decoder::decode` never panics over a sequence of header blocks sharing one dynamic
//! table, and whatever it decodes survives `Encoder::encode` -> `Decoder::decode` unchanged
//! (names, values, order; a sensitive field stays sensitive).
//! Input: `[table size selector, list size selector, (block length, block)...]`.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use protocols::http2::hpack::{Decoder, Encoder, Error};

type Field = (Bytes, Bytes, bool);

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
        let block = Bytes::copy_from_slice(&tail[..n]);
        rest = &tail[n..];
        let mut fields: Vec<Field> = Vec::new();
        match dec.decode(&block, max_list, |n, v, s| fields.push((n, v, s))) {
            Ok(()) => round_trip(&mut enc, &mut check, &fields),
            // The block was decoded in full and the table is in sync: go on with the next.
            Err(Error::HeaderListTooLarge) => assert_ne!(max_list, usize::MAX),
            // A compression error ends the connection.
            Err(_) => return,
        }
    }
});

fn round_trip(enc: &mut Encoder, check: &mut Decoder, fields: &[Field]) {
    let mut wire = BytesMut::new();
    enc.encode(
        fields.iter().map(|(n, v, s)| (&n[..], &v[..], *s)),
        &mut wire,
    );
    let mut back: Vec<Field> = Vec::new();
    check
        .decode(&wire.freeze(), usize::MAX, |n, v, s| back.push((n, v, s)))
        .expect("our own encoding decodes");
    assert_eq!(back.len(), fields.len());
    for ((n1, v1, s1), (n2, v2, s2)) in fields.iter().zip(&back) {
        assert_eq!((n1, v1), (n2, v2));
        assert!(!*s1 || *s2, "a sensitive field stays never-indexed");
    }
}
