//! HTTP/2 frames: `frame::decode` never panics, consumes exactly one frame (nothing for
//! FRAME_SIZE_ERROR or an incomplete frame), and decode -> encode -> decode is a fixed point for
//! every known frame type. Input: `[max frame size selector, bytes...]`.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use protocols::http2::frame::{self, ErrorKind, Frame, MAX_MAX_FRAME_SIZE};

fuzz_target!(|input: &[u8]| {
    let [sel, data @ ..] = input else { return };
    let max = [frame::DEFAULT_MAX_FRAME_SIZE, 0, 9, 1 << 20][usize::from(sel % 4)];
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        let declared = buf
            .get(..3)
            .map(|l| 9 + (usize::from(l[0]) << 16 | usize::from(l[1]) << 8 | usize::from(l[2])));
        match frame::decode(&mut buf, max) {
            Ok(None) => {
                assert_eq!(buf.len(), before, "incomplete: nothing consumed");
                assert!(declared.is_none_or(|d| d > before));
                return;
            }
            Err(e) if e.kind == ErrorKind::FrameTooLarge => {
                assert_eq!(buf.len(), before, "FRAME_SIZE_ERROR consumes nothing");
                assert!(e.is_connection_error());
                return;
            }
            Err(e) => {
                assert_eq!(
                    Some(before - buf.len()),
                    declared,
                    "an error consumes its frame"
                );
                if let Some(id) = e.stream {
                    assert!(!id.is_zero(), "a stream error names a stream");
                }
            }
            Ok(Some(f)) => {
                assert_eq!(Some(before - buf.len()), declared, "one frame consumed");
                round_trip(&f);
            }
        }
    }
});

fn round_trip(f: &Frame) {
    let mut wire = BytesMut::new();
    f.encode(&mut wire);
    if matches!(f, Frame::Unknown) {
        assert!(wire.is_empty());
        return;
    }
    let again = frame::decode(&mut wire, MAX_MAX_FRAME_SIZE)
        .expect("an encoded frame decodes")
        .expect("an encoded frame is complete");
    assert!(wire.is_empty(), "encode wrote exactly one frame");
    assert_eq!(&again, f);
}
