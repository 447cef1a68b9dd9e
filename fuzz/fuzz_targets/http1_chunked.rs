//! Chunked bodies: `BodyDecoder` over `BodyFraming::Chunked` never panics, and decoding the whole
//! input at once or fed in random pieces gives the same data, trailers, verdict and leftover.
//! Input: `[split seed, bytes...]`.
#![no_main]

#[path = "common/split.rs"]
mod split;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use protocols::http1::{BodyDecoder, BodyError, BodyEvent, BodyFraming};

/// Everything a decoder produced for one input.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    data: Vec<u8>,
    trailers: Option<Vec<u8>>,
    /// `Ok(true)`: complete; `Ok(false)`: still needs bytes at the end of the input.
    verdict: Result<bool, BodyError>,
    left: Vec<u8>,
}

fuzz_target!(|input: &[u8]| {
    let [seed, data @ ..] = input else { return };
    let whole = decode(data, &[data.len()]);
    let split = decode(data, &split::pieces(*seed, data.len()));
    assert_eq!(whole, split, "whole and split decoding differ");
});

/// Feeds `data` in `pieces`, decoding until the body ends or fails.
fn decode(data: &[u8], pieces: &[usize]) -> Outcome {
    let mut dec = BodyDecoder::new(BodyFraming::Chunked);
    let mut out = Outcome {
        data: Vec::new(),
        trailers: None,
        verdict: Ok(false),
        left: Vec::new(),
    };
    let mut buf = BytesMut::new();
    let mut fed = 0;
    'feed: for &n in pieces.iter().chain(std::iter::once(&0)) {
        buf.extend_from_slice(&data[fed..fed + n]);
        fed += n;
        loop {
            match dec.decode(&mut buf) {
                Ok(BodyEvent::Data(d)) => {
                    assert!(!d.is_empty(), "Data is never empty");
                    assert!(out.trailers.is_none(), "no data after trailers");
                    out.data.extend_from_slice(&d);
                }
                Ok(BodyEvent::Trailers(t)) => {
                    assert!(out.trailers.is_none(), "trailers once");
                    assert!(t.ends_with(b"\r\n"));
                    out.trailers = Some(t.to_vec());
                }
                Ok(BodyEvent::End) => {
                    assert!(dec.is_done());
                    assert_eq!(dec.decode(&mut buf), Ok(BodyEvent::End), "End is sticky");
                    assert_eq!(dec.eof(), Ok(()));
                    out.verdict = Ok(true);
                    break 'feed;
                }
                Ok(BodyEvent::NeedMore) => break,
                Err(e) => {
                    out.verdict = Err(e);
                    break 'feed;
                }
            }
        }
    }
    if out.verdict == Ok(false) {
        assert_eq!(
            dec.eof(),
            Err(BodyError::Incomplete),
            "a cut chunked body is incomplete"
        );
    }
    if out.verdict.is_ok() {
        buf.extend_from_slice(&data[fed..]);
        out.left = buf.to_vec();
    }
    out
}
