//! gRPC: the length-prefixed message `Decoder`, `grpc-message` percent-coding and `grpc-timeout`
//! never panic, and:
//! - framing: decoding the whole input at once or fed in random pieces gives the same messages,
//!   verdict and leftover; every message re-encodes to exactly the bytes it was cut from; `peek`
//!   agrees with `decode`; `finish` refuses exactly a non-empty leftover;
//! - `decode_message(encode_message(x)) == x`, and the encoding is printable ASCII only;
//! - a parsed `grpc-timeout` formats to a value that parses to no shorter a duration.
//!
//! Input: `[split seed, limit selector, bytes...]`; the same bytes feed all three.
#![no_main]

#[path = "common/split.rs"]
mod split;

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use libfuzzer_sys::fuzz_target;
use protocols::grpc::{
    Decoder, FrameError, HEADER_LEN, Message, decode_message, encode_message, format_timeout,
    parse_timeout,
};

/// Everything a decoder produced for one input.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    messages: Vec<Message>,
    /// `Ok(())`: no error before the input ran out.
    verdict: Result<(), FrameError>,
    left: Vec<u8>,
}

fuzz_target!(|input: &[u8]| {
    let [seed, lsel, data @ ..] = input else {
        return;
    };
    let dec = Decoder::new([0, 1, 16, 256, 4 << 20][usize::from(lsel % 5)]);
    let whole = decode(dec, data, &[data.len()]);
    let split = decode(dec, data, &split::pieces(*seed, data.len()));
    assert_eq!(whole, split, "whole and split decoding differ");
    check_reencode(&whole, data);

    let escaped = encode_message(data);
    assert!(escaped.iter().all(|b| (0x20..=0x7e).contains(b)));
    assert_eq!(
        &decode_message(&escaped)[..],
        data,
        "percent-coding round trip"
    );
    let _ = decode_message(data);

    if let Ok(d) = parse_timeout(data) {
        let formatted = format_timeout(d);
        let back = parse_timeout(formatted.as_bytes()).expect("a formatted timeout parses");
        assert!(
            back >= d,
            "{d:?} formatted as {formatted:?} parses to {back:?}"
        );
        // Rounded up to the finest unit whose count fits in eight digits: at most one hour more.
        assert!(back - d <= Duration::from_secs(3600), "{d:?} -> {back:?}");
    }
});

/// Feeds `data` in `pieces`, taking every whole message as soon as it is there.
fn decode(dec: Decoder, data: &[u8], pieces: &[usize]) -> Outcome {
    let mut out = Outcome {
        messages: Vec::new(),
        verdict: Ok(()),
        left: Vec::new(),
    };
    let mut buf = BytesMut::new();
    let mut fed = 0;
    for &n in pieces {
        buf.put_slice(&data[fed..fed + n]);
        fed += n;
        loop {
            let before = buf.clone();
            let peeked = dec.peek(&buf);
            match dec.decode(&mut buf) {
                Ok(Some(m)) => {
                    assert_eq!(peeked, Ok(Some(m.payload.len())));
                    out.messages.push(m);
                }
                Ok(None) => {
                    assert_eq!(buf, before, "Ok(None) leaves the buffer untouched");
                    assert!(peeked.is_ok());
                    break;
                }
                Err(e) => {
                    assert_eq!(buf, before, "an error leaves the buffer untouched");
                    assert_eq!(peeked, Err(e));
                    // The caller stops here: what is left is this buffer and the unread rest.
                    out.verdict = Err(e);
                    out.left = [&buf[..], &data[fed..]].concat();
                    return out;
                }
            }
        }
    }
    assert_eq!(dec.finish(&buf).is_err(), !buf.is_empty());
    out.left = buf.to_vec();
    out
}

/// The messages, encoded again, are exactly the input bytes they were cut from.
fn check_reencode(outcome: &Outcome, data: &[u8]) {
    let mut wire = BytesMut::new();
    for m in &outcome.messages {
        assert!(HEADER_LEN + m.payload.len() <= data.len());
        m.encode(&mut wire).expect("a decoded message encodes");
    }
    assert_eq!(&wire[..], &data[..wire.len()], "re-encoding differs");
    assert_eq!(&outcome.left[..], &data[wire.len()..], "leftover");
}
