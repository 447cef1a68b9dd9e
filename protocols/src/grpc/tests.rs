//! Spec vectors and round trips for the gRPC helpers.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;

use super::*;

// ---- framing ----

#[test]
fn decodes_the_spec_layout() {
    // Compressed-Flag 0, Message-Length 3 (big-endian), then the message.
    let mut src = BytesMut::from(&b"\x00\x00\x00\x00\x03abc"[..]);
    let m = Decoder::default().decode(&mut src).unwrap().unwrap();
    assert_eq!(m, Message::new(false, &b"abc"[..]));
    assert!(src.is_empty());
    Decoder::default().finish(&src).unwrap();
}

#[test]
fn compressed_flag_one_is_reported_and_others_refused() {
    let mut src = BytesMut::from(&b"\x01\x00\x00\x00\x01z"[..]);
    let m = Decoder::default().decode(&mut src).unwrap().unwrap();
    assert!(m.compressed);
    assert_eq!(&m.payload[..], b"z");
    for flag in [2u8, 0x80, 0xFF] {
        let mut src = BytesMut::from(&[flag, 0, 0, 0, 0][..]);
        assert_eq!(
            Decoder::default().decode(&mut src),
            Err(FrameError::InvalidCompressedFlag(flag))
        );
        assert_eq!(src.len(), 5, "an error consumes nothing");
    }
}

#[test]
fn empty_messages_and_several_per_buffer() {
    let mut src = BytesMut::new();
    Message::new(false, Bytes::new()).encode(&mut src).unwrap();
    Message::new(true, &b"hello"[..]).encode(&mut src).unwrap();
    Message::new(false, &b"!"[..]).encode(&mut src).unwrap();
    src.put_slice(b"\x00\x00\x00"); // start of a fourth prefix
    let d = Decoder::default();
    assert_eq!(d.decode(&mut src).unwrap().unwrap().payload.len(), 0);
    let m = d.decode(&mut src).unwrap().unwrap();
    assert!(m.compressed);
    assert_eq!(&m.payload[..], b"hello");
    assert_eq!(&d.decode(&mut src).unwrap().unwrap().payload[..], b"!");
    assert_eq!(d.decode(&mut src), Ok(None));
    assert_eq!(src.len(), 3, "an incomplete prefix stays");
    assert_eq!(d.finish(&src), Err(FrameError::Truncated));
}

#[test]
fn bytes_arriving_one_at_a_time() {
    let mut wire = BytesMut::new();
    Message::new(false, vec![7u8; 300])
        .encode(&mut wire)
        .unwrap();
    let d = Decoder::default();
    let mut src = BytesMut::new();
    for (i, b) in wire.iter().enumerate() {
        src.put_u8(*b);
        let got = d.decode(&mut src).unwrap();
        if i + 1 < wire.len() {
            assert_eq!(got, None, "byte {i}");
        } else {
            assert_eq!(got.unwrap().payload, Bytes::from(vec![7u8; 300]));
        }
    }
}

#[test]
fn the_limit_is_checked_from_the_prefix_alone() {
    let d = Decoder::new(10);
    let mut src = BytesMut::from(&b"\x00\x00\x00\x00\x0A0123456789"[..]);
    assert_eq!(d.decode(&mut src).unwrap().unwrap().payload.len(), 10);
    let mut src = BytesMut::from(&b"\x00\x00\x00\x00\x0B"[..]);
    let err = d.decode(&mut src).unwrap_err();
    assert_eq!(err, FrameError::TooLarge { len: 11, max: 10 });
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(d.peek(&src), Err(err));
    let mut src = BytesMut::from(&b"\x00\xFF\xFF\xFF\xFF"[..]);
    assert_eq!(
        Decoder::default().decode(&mut src),
        Err(FrameError::TooLarge {
            len: u64::from(u32::MAX),
            max: DEFAULT_MAX_MESSAGE_SIZE as u64
        })
    );
    assert_eq!(
        Decoder::new(usize::MAX).peek(&src),
        Ok(Some(u32::MAX as usize))
    );
    assert_eq!(d.peek(b"\x00\x00"), Ok(None));
}

#[test]
fn header_encoding() {
    assert_eq!(encode_header(false, 0), Ok([0, 0, 0, 0, 0]));
    assert_eq!(encode_header(true, 0x0102_0304), Ok([1, 1, 2, 3, 4]));
    assert_eq!(
        encode_header(false, u32::MAX as usize + 1),
        Err(FrameError::TooLarge {
            len: u64::from(u32::MAX) + 1,
            max: u64::from(u32::MAX)
        })
    );
    assert_eq!(FrameError::Truncated.code(), Code::Internal);
}

proptest! {
    #[test]
    fn framing_round_trips_across_any_split(
        msgs in prop::collection::vec((any::<bool>(), prop::collection::vec(any::<u8>(), 0..200)), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut wire = BytesMut::new();
        for (c, p) in &msgs {
            Message::new(*c, p.clone()).encode(&mut wire).unwrap();
        }
        let cut = cut.index(wire.len() + 1);
        let d = Decoder::new(200);
        let mut src = BytesMut::from(&wire[..cut]);
        let mut got = Vec::new();
        while let Some(m) = d.decode(&mut src).unwrap() {
            got.push(m);
        }
        src.extend_from_slice(&wire[cut..]);
        while let Some(m) = d.decode(&mut src).unwrap() {
            got.push(m);
        }
        d.finish(&src).unwrap();
        let want: Vec<Message> = msgs.into_iter().map(|(c, p)| Message::new(c, p)).collect();
        prop_assert_eq!(got, want);
    }
}

// ---- grpc-timeout ----

#[test]
fn parses_every_unit() {
    let cases: [(&[u8], Duration); 7] = [
        (b"1H", Duration::from_secs(3600)),
        (b"2M", Duration::from_secs(120)),
        (b"3S", Duration::from_secs(3)),
        (b"4m", Duration::from_millis(4)),
        (b"5u", Duration::from_micros(5)),
        (b"6n", Duration::from_nanos(6)),
        (b"000000200m", Duration::from_millis(200)),
    ];
    for (text, want) in &cases[..6] {
        assert_eq!(parse_timeout(text), Ok(*want), "{:?}", text.escape_ascii());
    }
    // Nine bytes of digits is one too many, even with leading zeros.
    assert_eq!(parse_timeout(cases[6].0), Err(TimeoutError::TooManyDigits));
    assert_eq!(parse_timeout(b"0000200m"), Ok(Duration::from_millis(200)));
    assert_eq!(
        parse_timeout(b"99999999H"),
        Ok(Duration::from_secs(99_999_999 * 3600))
    );
    assert_eq!(
        parse_timeout(b"99999999n"),
        Ok(Duration::from_nanos(99_999_999))
    );
    assert_eq!(parse_timeout(b"0S"), Ok(Duration::ZERO));
}

#[test]
fn refuses_malformed_timeouts() {
    let cases: [(&[u8], TimeoutError); 11] = [
        (b"", TimeoutError::Empty),
        (b"S", TimeoutError::Empty),
        (b"10", TimeoutError::InvalidUnit),
        (b"10s", TimeoutError::InvalidUnit),
        (b"10h", TimeoutError::InvalidUnit),
        (b"10 S", TimeoutError::InvalidDigit),
        (b" 10S", TimeoutError::InvalidDigit),
        (b"10S ", TimeoutError::InvalidUnit),
        (b"-1S", TimeoutError::InvalidDigit),
        (b"+1S", TimeoutError::InvalidDigit),
        (b"123456789S", TimeoutError::TooManyDigits),
    ];
    for (text, want) in cases {
        assert_eq!(parse_timeout(text), Err(want), "{:?}", text.escape_ascii());
    }
}

#[test]
fn formats_in_the_finest_unit_that_fits() {
    let cases: [(Duration, &str); 10] = [
        (Duration::ZERO, "0n"),
        (Duration::from_nanos(6), "6n"),
        (Duration::from_millis(99), "99000000n"),
        (Duration::from_millis(200), "200000u"),
        (Duration::from_secs(5), "5000000u"),
        (Duration::from_secs(100), "100000m"),
        (Duration::from_secs(100_000), "100000S"),
        (Duration::from_secs(100_000_000), "1666667M"),
        (Duration::from_secs(99_999_999 * 3600), "99999999H"),
        (Duration::MAX, "99999999H"),
    ];
    for (d, want) in cases {
        let f = format_timeout(d);
        assert_eq!(f.as_str(), want, "{d:?}");
        assert_eq!(f.as_bytes(), want.as_bytes());
        assert_eq!(f.to_string(), want);
    }
    // Rounded up, never down: the peer's deadline is not earlier than ours.
    assert_eq!(
        format_timeout(Duration::from_nanos(100_000_001)).as_str(),
        "100001u"
    );
}

proptest! {
    #[test]
    fn format_then_parse_is_never_shorter(nanos in any::<u64>()) {
        let d = Duration::from_nanos(nanos);
        let f = format_timeout(d);
        prop_assert!(f.as_bytes().len() <= MAX_TIMEOUT_DIGITS + 1);
        let back = parse_timeout(f.as_bytes()).unwrap();
        prop_assert!(back >= d);
        // One unit of rounding at most; a value in a unit coarser than `n` is at least 10^5
        // (the finer unit overflowed eight digits), so that is under 10^-5 relative.
        prop_assert!(back - d <= d / 100_000 + Duration::from_nanos(1));
    }

    #[test]
    fn parse_then_format_is_a_fixed_point(text in "[0-9]{1,8}[HMSmun]") {
        let d = parse_timeout(text.as_bytes()).unwrap();
        let f = format_timeout(d);
        prop_assert_eq!(parse_timeout(f.as_bytes()).unwrap(), d);
    }
}

// ---- status codes and content type ----

#[test]
fn codes_have_their_numbers_and_names() {
    let names = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    for (n, name) in names.iter().enumerate() {
        let code = Code::from_u32(n as u32).unwrap();
        assert_eq!(code.as_u8() as usize, n);
        assert_eq!(code.name(), *name);
        assert_eq!(code.to_string(), *name);
        assert_eq!(code.as_header_value(), n.to_string().as_bytes());
        assert_eq!(Code::parse(n.to_string().as_bytes()), Some(code));
    }
    assert_eq!(Code::from_u32(17), None);
    assert_eq!(Code::from_u32(u32::MAX), None);
    assert_eq!(Code::DeadlineExceeded.as_u8(), 4);
    assert_eq!(Code::Unavailable.as_u8(), 14);
    assert_eq!(Code::Unimplemented.as_u8(), 12);
    for bad in [
        &b""[..],
        b"17",
        b"99",
        b"014",
        b"-1",
        b"+1",
        b" 1",
        b"1 ",
        b"x",
    ] {
        assert_eq!(Code::parse(bad), None, "{:?}", bad.escape_ascii());
    }
    assert_eq!(Code::parse(b"04"), Some(Code::DeadlineExceeded));
}

#[test]
fn http_status_mapping() {
    let cases = [
        (400, Code::Internal),
        (401, Code::Unauthenticated),
        (403, Code::PermissionDenied),
        (404, Code::Unimplemented),
        (429, Code::Unavailable),
        (502, Code::Unavailable),
        (503, Code::Unavailable),
        (504, Code::Unavailable),
        (200, Code::Unknown),
        (405, Code::Unknown),
        (500, Code::Unknown),
        (0, Code::Unknown),
        (u16::MAX, Code::Unknown),
    ];
    for (status, code) in cases {
        assert_eq!(Code::from_http_status(status), code, "{status}");
    }
}

#[test]
fn grpc_content_types() {
    for yes in [
        &b"application/grpc"[..],
        b"application/grpc+proto",
        b"application/grpc+json",
        b"application/grpc+custom",
        b"application/grpc;charset=utf-8",
        b"Application/GRPC",
    ] {
        assert!(is_grpc_content_type(yes), "{:?}", yes.escape_ascii());
    }
    for no in [
        &b""[..],
        b"application/grp",
        b"application/grpc-web",
        b"application/grpc-web+proto",
        b"application/grpcx",
        b"application/json",
        b" application/grpc",
        b"text/grpc",
    ] {
        assert!(!is_grpc_content_type(no), "{:?}", no.escape_ascii());
    }
}

// ---- grpc-message ----

#[test]
fn message_percent_encoding() {
    assert!(matches!(
        encode_message(b"plain text ~!"),
        std::borrow::Cow::Borrowed(_)
    ));
    assert_eq!(&*encode_message(b"100%"), b"100%25");
    assert_eq!(&*encode_message(b"a\r\nb\tc"), b"a%0D%0Ab%09c");
    assert_eq!(
        &*encode_message("café ☺".as_bytes()),
        b"caf%C3%A9 %E2%98%BA"
    );
    assert_eq!(&*encode_message(b"\x7f\x00\xff"), b"%7F%00%FF");
}

#[test]
fn message_percent_decoding_keeps_broken_escapes() {
    assert!(matches!(
        decode_message(b"no escapes"),
        std::borrow::Cow::Borrowed(_)
    ));
    assert_eq!(
        &*decode_message(b"caf%C3%A9 %e2%98%ba"),
        "café ☺".as_bytes()
    );
    assert_eq!(&*decode_message(b"100%25"), b"100%");
    assert_eq!(&*decode_message(b"%"), b"%");
    assert_eq!(&*decode_message(b"a%4"), b"a%4");
    assert_eq!(&*decode_message(b"%zz%41"), b"%zzA");
    assert_eq!(&*decode_message(b"%%41"), b"%A");
    assert_eq!(&*decode_message(b"%41%"), b"A%");
}

proptest! {
    #[test]
    fn message_encoding_round_trips(msg in prop::collection::vec(any::<u8>(), 0..100)) {
        let enc = encode_message(&msg);
        prop_assert!(enc.iter().all(|&b| (0x20..=0x7E).contains(&b)));
        prop_assert_eq!(&*decode_message(&enc), &msg[..]);
    }
}
