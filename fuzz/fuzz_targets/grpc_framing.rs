//! gRPC helpers: the length-prefixed message `Decoder` never panics; the whole input and the
//! same bytes fed in two pieces give the same messages and the same verdict; every message
//! re-encodes to exactly the bytes it consumed; an error consumes nothing. The same bytes also
//! go through the `grpc-timeout` parser (format -> parse is never shorter), `grpc-status` and
//! content-type checks, and `grpc-message` decoding (encode -> decode is the identity).
//! Input: `[limit selector, split selector, bytes...]`.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use protocols::grpc::{self, Code, Decoder, FrameError, Message};

/// Every message off the front of `src`, then the verdict: `Ok` when the rest is incomplete.
fn drain(d: &Decoder, src: &mut BytesMut, out: &mut Vec<Message>) -> Result<(), FrameError> {
    loop {
        let before = src.len();
        let peeked = d.peek(src);
        match d.decode(src) {
            Ok(Some(m)) => {
                let used = before - src.len();
                assert_eq!(used, grpc::HEADER_LEN + m.payload.len());
                assert_eq!(peeked, Ok(Some(m.payload.len())));
                assert!(m.payload.len() <= d.max_message_size());
                out.push(m);
            }
            Ok(None) => {
                assert_eq!(src.len(), before, "incomplete: nothing consumed");
                return Ok(());
            }
            Err(e) => {
                assert_eq!(src.len(), before, "an error consumes nothing");
                assert_eq!(peeked, Err(e), "peek sees the error decode sees");
                return Err(e);
            }
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let [limit, split, data @ ..] = input else {
        return;
    };
    let max = [grpc::DEFAULT_MAX_MESSAGE_SIZE, 0, 16, usize::MAX][usize::from(limit % 4)];
    let d = Decoder::new(max);

    // Whole input at once.
    let mut whole = BytesMut::from(data);
    let mut msgs = Vec::new();
    let verdict = drain(&d, &mut whole, &mut msgs);
    if verdict.is_ok() {
        let fin = d.finish(&whole);
        assert_eq!(fin.is_ok(), whole.is_empty());
    }

    // The same bytes in two pieces.
    let cut = usize::from(*split) * data.len() / 255;
    let mut piece = BytesMut::from(&data[..cut]);
    let mut msgs2 = Vec::new();
    let mut verdict2 = drain(&d, &mut piece, &mut msgs2);
    piece.extend_from_slice(&data[cut..]);
    if verdict2.is_ok() {
        verdict2 = drain(&d, &mut piece, &mut msgs2);
    }
    assert_eq!(verdict, verdict2);
    assert_eq!(msgs, msgs2);
    assert_eq!(whole, piece, "same leftover");

    // Re-encoding gives back exactly the consumed bytes.
    let mut again = BytesMut::new();
    for m in &msgs {
        m.encode(&mut again)
            .expect("a decoded message fits Message-Length");
    }
    assert_eq!(&again[..], &data[..data.len() - whole.len()]);

    // grpc-timeout: accepted values are at most 9 bytes; format -> parse never shortens.
    if let Ok(t) = grpc::parse_timeout(data) {
        assert!(data.len() <= grpc::MAX_TIMEOUT_DIGITS + 1);
        let f = grpc::format_timeout(t);
        let back = grpc::parse_timeout(f.as_bytes()).expect("formatted timeouts parse");
        assert!(back >= t);
        assert_eq!(grpc::format_timeout(back), f, "format is a fixed point");
    }

    // grpc-status and content-type never panic; a parsed code prints as its number.
    if let Some(code) = Code::parse(data) {
        assert_eq!(Code::from_u32(u32::from(code.as_u8())), Some(code));
        assert!(data.ends_with(code.as_header_value()));
    }
    let _ = grpc::is_grpc_content_type(data);

    // grpc-message: decoding never panics and never grows; encoding round-trips.
    assert!(grpc::decode_message(data).len() <= data.len());
    let enc = grpc::encode_message(data);
    assert!(enc.iter().all(|b| (0x20..=0x7E).contains(b)));
    assert_eq!(&*grpc::decode_message(&enc), data);
});
