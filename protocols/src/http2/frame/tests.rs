//! RFC 9113 section 6 conformance tests for the frame codec, named after the section they cover.

use super::*;
use bytes::BufMut;
use proptest::prelude::*;

fn raw(kind: u8, fl: u8, stream: u32, payload: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    let len = payload.len() as u32;
    b.put_slice(&len.to_be_bytes()[1..]);
    b.put_u8(kind);
    b.put_u8(fl);
    b.put_u32(stream);
    b.put_slice(payload);
    b
}

fn dec(kind: u8, fl: u8, stream: u32, payload: &[u8]) -> Result<Frame, Error> {
    let mut b = raw(kind, fl, stream, payload);
    let f = decode(&mut b, DEFAULT_MAX_FRAME_SIZE).map(|f| f.expect("complete frame"));
    assert!(b.is_empty(), "frame fully consumed");
    f
}

fn conn_err(r: Result<Frame, Error>, reason: Reason) {
    let e = r.expect_err("must fail");
    assert_eq!(e.reason, reason, "{e:?}");
    assert_eq!(e.stream, None, "{e:?}");
}

fn stream_err(r: Result<Frame, Error>, stream: u32, reason: Reason) {
    let e = r.expect_err("must fail");
    assert_eq!(e.reason, reason, "{e:?}");
    assert_eq!(e.stream, Some(StreamId::new(stream)), "{e:?}");
}

fn round_trip(f: &Frame) -> Frame {
    let mut b = BytesMut::new();
    f.encode(&mut b);
    let out = decode(&mut b, MAX_MAX_FRAME_SIZE).unwrap().unwrap();
    assert!(b.is_empty());
    out
}

// ---- section 4: framing ----

#[test]
fn sec4_1_partial_header_needs_more() {
    let mut b = BytesMut::from(&[0u8, 0, 8, 6][..]);
    assert_eq!(decode(&mut b, DEFAULT_MAX_FRAME_SIZE), Ok(None));
    assert_eq!(b.len(), 4);
}

#[test]
fn sec4_1_partial_payload_needs_more() {
    let full = raw(6, 0, 0, &[1; 8]);
    let mut b = BytesMut::from(&full[..12]);
    assert_eq!(decode(&mut b, DEFAULT_MAX_FRAME_SIZE), Ok(None));
    assert_eq!(b.len(), 12);
    b.extend_from_slice(&full[12..]);
    assert!(matches!(
        decode(&mut b, DEFAULT_MAX_FRAME_SIZE),
        Ok(Some(Frame::Ping(_)))
    ));
}

#[test]
fn sec4_1_unknown_frame_type_ignored() {
    assert_eq!(dec(0xfa, 0xff, 3, b"whatever"), Ok(Frame::Unknown));
}

#[test]
fn sec4_1_unknown_flags_ignored() {
    let f = dec(6, 0xfe, 0, &[0; 8]).unwrap();
    assert_eq!(f, Frame::Ping(Ping::new([0; 8])));
    let f = dec(0, 0xf6, 1, b"x").unwrap();
    assert_eq!(
        f,
        Frame::Data(Data::new(StreamId::new(1), Bytes::from_static(b"x"), false))
    );
}

#[test]
fn sec4_1_reserved_bit_ignored() {
    let f = dec(0, 1, 0x8000_0005, b"ab").unwrap();
    let Frame::Data(d) = f else { panic!() };
    assert_eq!(d.stream_id, StreamId::new(5));
}

#[test]
fn sec4_2_frame_exceeding_max_frame_size() {
    let mut b = raw(0, 0, 1, &[0; 16_385]);
    let e = decode(&mut b, DEFAULT_MAX_FRAME_SIZE).unwrap_err();
    assert_eq!(e.reason, Reason::FRAME_SIZE_ERROR);
    assert_eq!(e.kind, ErrorKind::FrameTooLarge);
    assert!(e.is_connection_error());
    // Only the header is needed to refuse it.
    let mut b = BytesMut::from(&raw(0, 0, 1, &[0; 16_385])[..9]);
    assert!(decode(&mut b, DEFAULT_MAX_FRAME_SIZE).is_err());
    // Exactly the limit is fine.
    assert!(dec(0, 0, 1, &[0; 16_384]).is_ok());
}

#[test]
fn sec4_2_stream_error_consumes_frame_so_decoding_continues() {
    let mut b = raw(8, 0, 3, &[0, 0, 0, 0]);
    b.extend_from_slice(&raw(6, 0, 0, &[7; 8]));
    let e = decode(&mut b, DEFAULT_MAX_FRAME_SIZE).unwrap_err();
    assert_eq!(e.stream, Some(StreamId::new(3)));
    assert_eq!(
        decode(&mut b, DEFAULT_MAX_FRAME_SIZE),
        Ok(Some(Frame::Ping(Ping::new([7; 8]))))
    );
}

// ---- 6.1 DATA ----

#[test]
fn sec6_1_data_on_stream_zero() {
    conn_err(dec(0, 0, 0, b"x"), Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_1_data_padding_stripped_and_counted() {
    let Frame::Data(d) = dec(0, 0x9, 1, &[2, b'h', b'i', 0, 0]).unwrap() else {
        panic!()
    };
    assert_eq!(&d.data[..], b"hi");
    assert!(d.end_stream);
    assert_eq!(d.pad_len, Some(2));
    assert_eq!(d.flow_len(), 5);
}

#[test]
fn sec6_1_data_padding_equal_to_payload() {
    conn_err(dec(0, 0x8, 1, &[3, 0, 0]), Reason::PROTOCOL_ERROR);
    conn_err(dec(0, 0x8, 1, &[1]), Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_1_data_padding_exactly_remaining_is_ok() {
    let Frame::Data(d) = dec(0, 0x8, 1, &[2, 0, 0]).unwrap() else {
        panic!()
    };
    assert!(d.data.is_empty());
    assert_eq!(d.flow_len(), 3);
}

#[test]
fn sec6_1_data_padded_without_pad_length() {
    conn_err(dec(0, 0x8, 1, &[]), Reason::FRAME_SIZE_ERROR);
}

// ---- 6.2 HEADERS ----

#[test]
fn sec6_2_headers_on_stream_zero() {
    conn_err(dec(1, 0x4, 0, b"\x82"), Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_2_headers_padding_too_long() {
    conn_err(
        dec(1, 0x8 | 0x4, 1, &[4, 0x82, 0, 0]),
        Reason::PROTOCOL_ERROR,
    );
}

#[test]
fn sec6_2_headers_padding_eats_priority() {
    // 1 pad length + 5 priority + 1 fragment octet, pad length 2 leaves -1 for the fragment.
    conn_err(
        dec(1, 0x28 | 0x4, 1, &[2, 0, 0, 0, 0, 16, 0x82]),
        Reason::PROTOCOL_ERROR,
    );
}

#[test]
fn sec6_2_headers_priority_too_short() {
    conn_err(dec(1, 0x20 | 0x4, 1, &[0, 0, 0]), Reason::FRAME_SIZE_ERROR);
}

#[test]
fn sec6_2_headers_with_priority_and_padding() {
    let Frame::Headers(h) = dec(1, 0x2d, 3, &[1, 0x80, 0, 0, 1, 15, 0x82, 0]).unwrap() else {
        panic!()
    };
    assert!(h.end_stream && h.end_headers);
    assert_eq!(&h.fragment[..], &[0x82]);
    assert_eq!(
        h.priority,
        Some(StreamDependency {
            dependency: StreamId::new(1),
            weight: 15,
            exclusive: true
        })
    );
    assert_eq!(h.pad_len, Some(1));
}

#[test]
fn sec5_3_1_headers_self_dependency() {
    stream_err(
        dec(1, 0x24, 3, &[0, 0, 0, 3, 15, 0x82]),
        3,
        Reason::PROTOCOL_ERROR,
    );
}

// ---- 6.3 PRIORITY ----

#[test]
fn sec6_3_priority_on_stream_zero() {
    conn_err(dec(2, 0, 0, &[0, 0, 0, 1, 0]), Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_3_priority_length_not_5() {
    stream_err(dec(2, 0, 1, &[0, 0, 0, 3]), 1, Reason::FRAME_SIZE_ERROR);
    stream_err(
        dec(2, 0, 1, &[0, 0, 0, 3, 0, 0]),
        1,
        Reason::FRAME_SIZE_ERROR,
    );
}

#[test]
fn sec5_3_1_priority_self_dependency() {
    stream_err(dec(2, 0, 5, &[0, 0, 0, 5, 0]), 5, Reason::PROTOCOL_ERROR);
}

// ---- 6.4 RST_STREAM ----

#[test]
fn sec6_4_rst_stream_on_stream_zero() {
    conn_err(dec(3, 0, 0, &[0, 0, 0, 8]), Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_4_rst_stream_length_not_4() {
    conn_err(dec(3, 0, 1, &[0, 0, 8]), Reason::FRAME_SIZE_ERROR);
    conn_err(dec(3, 0, 1, &[0, 0, 0, 0, 8]), Reason::FRAME_SIZE_ERROR);
}

#[test]
fn sec6_4_rst_stream_unknown_code_kept() {
    let f = dec(3, 0, 1, &[0, 0, 0x12, 0x34]).unwrap();
    assert_eq!(
        f,
        Frame::RstStream(RstStream::new(StreamId::new(1), Reason::new(0x1234)))
    );
}

// ---- 6.5 SETTINGS ----

#[test]
fn sec6_5_settings_on_non_zero_stream() {
    conn_err(dec(4, 0, 1, &[]), Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_5_settings_length_not_multiple_of_6() {
    conn_err(dec(4, 0, 0, &[0, 3, 0, 0, 0]), Reason::FRAME_SIZE_ERROR);
    conn_err(
        dec(4, 0, 0, &[0, 3, 0, 0, 0, 1, 0]),
        Reason::FRAME_SIZE_ERROR,
    );
}

#[test]
fn sec6_5_settings_ack_with_payload() {
    conn_err(dec(4, 1, 0, &[0, 3, 0, 0, 0, 1]), Reason::FRAME_SIZE_ERROR);
}

#[test]
fn sec6_5_settings_ack_empty() {
    assert_eq!(dec(4, 1, 0, &[]), Ok(Frame::Settings(Settings::ack())));
}

#[test]
fn sec6_5_2_enable_push_not_0_or_1() {
    conn_err(dec(4, 0, 0, &[0, 2, 0, 0, 0, 2]), Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_5_2_initial_window_size_too_large() {
    conn_err(
        dec(4, 0, 0, &[0, 4, 0x80, 0, 0, 0]),
        Reason::FLOW_CONTROL_ERROR,
    );
    let Frame::Settings(s) = dec(4, 0, 0, &[0, 4, 0x7f, 0xff, 0xff, 0xff]).unwrap() else {
        panic!()
    };
    assert_eq!(s.initial_window_size, Some(MAX_WINDOW_SIZE));
}

#[test]
fn sec6_5_2_max_frame_size_out_of_range() {
    conn_err(
        dec(4, 0, 0, &[0, 5, 0, 0, 0x3f, 0xff]),
        Reason::PROTOCOL_ERROR,
    );
    conn_err(dec(4, 0, 0, &[0, 5, 1, 0, 0, 0]), Reason::PROTOCOL_ERROR);
    assert!(dec(4, 0, 0, &[0, 5, 0, 0, 0x40, 0]).is_ok());
    assert!(dec(4, 0, 0, &[0, 5, 0, 0xff, 0xff, 0xff]).is_ok());
}

#[test]
fn sec6_5_2_unknown_settings_ignored() {
    let Frame::Settings(s) = dec(
        4,
        0,
        0,
        &[0, 0x42, 0xff, 0xff, 0xff, 0xff, 0, 3, 0, 0, 0, 9],
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(s.max_concurrent_streams, Some(9));
    assert_eq!(s.iter().count(), 1);
}

#[test]
fn sec6_5_3_later_value_wins() {
    let Frame::Settings(s) = dec(4, 0, 0, &[0, 3, 0, 0, 0, 1, 0, 3, 0, 0, 0, 2]).unwrap() else {
        panic!()
    };
    assert_eq!(s.max_concurrent_streams, Some(2));
}

// ---- 6.6 PUSH_PROMISE ----

#[test]
fn sec6_6_push_promise_on_stream_zero() {
    conn_err(dec(5, 4, 0, &[0, 0, 0, 2, 0x82]), Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_6_push_promise_padding_too_long() {
    conn_err(
        dec(5, 0xc, 1, &[3, 0, 0, 0, 2, 0x82]),
        Reason::PROTOCOL_ERROR,
    );
}

#[test]
fn sec6_6_push_promise_too_short() {
    conn_err(dec(5, 4, 1, &[0, 0, 2]), Reason::FRAME_SIZE_ERROR);
}

#[test]
fn sec6_6_push_promise_parsed() {
    let Frame::PushPromise(p) = dec(5, 0xc, 1, &[1, 0, 0, 0, 2, 0x82, 0]).unwrap() else {
        panic!()
    };
    assert_eq!(p.promised_id, StreamId::new(2));
    assert_eq!(&p.fragment[..], &[0x82]);
    assert!(p.end_headers);
}

// ---- 6.7 PING ----

#[test]
fn sec6_7_ping_on_non_zero_stream() {
    conn_err(dec(6, 0, 1, &[0; 8]), Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_7_ping_length_not_8() {
    conn_err(dec(6, 0, 0, &[0; 7]), Reason::FRAME_SIZE_ERROR);
    conn_err(dec(6, 0, 0, &[0; 9]), Reason::FRAME_SIZE_ERROR);
}

#[test]
fn sec6_7_ping_ack_flag() {
    assert_eq!(dec(6, 1, 0, &[5; 8]), Ok(Frame::Ping(Ping::pong([5; 8]))));
}

// ---- 6.8 GOAWAY ----

#[test]
fn sec6_8_goaway_on_non_zero_stream() {
    conn_err(dec(7, 0, 1, &[0; 8]), Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_8_goaway_too_short() {
    conn_err(dec(7, 0, 0, &[0; 7]), Reason::FRAME_SIZE_ERROR);
}

#[test]
fn sec6_8_goaway_debug_data() {
    let Frame::GoAway(g) = dec(7, 0, 0, &[0x80, 0, 0, 9, 0, 0, 0, 0xb, b'h', b'i']).unwrap() else {
        panic!()
    };
    assert_eq!(g.last_stream_id, StreamId::new(9));
    assert_eq!(g.reason, Reason::ENHANCE_YOUR_CALM);
    assert_eq!(&g.debug_data[..], b"hi");
}

// ---- 6.9 WINDOW_UPDATE ----

#[test]
fn sec6_9_window_update_length_not_4() {
    conn_err(dec(8, 0, 0, &[0, 0, 1]), Reason::FRAME_SIZE_ERROR);
    conn_err(dec(8, 0, 1, &[0, 0, 0, 0, 1]), Reason::FRAME_SIZE_ERROR);
}

#[test]
fn sec6_9_window_update_zero_increment_on_stream() {
    stream_err(dec(8, 0, 7, &[0, 0, 0, 0]), 7, Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_9_window_update_zero_increment_on_connection() {
    conn_err(dec(8, 0, 0, &[0, 0, 0, 0]), Reason::PROTOCOL_ERROR);
    // The reserved bit alone is still a zero increment.
    conn_err(dec(8, 0, 0, &[0x80, 0, 0, 0]), Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_9_window_update_reserved_bit_ignored() {
    let f = dec(8, 0, 0, &[0x80, 0, 0, 5]).unwrap();
    assert_eq!(f, Frame::WindowUpdate(WindowUpdate::new(StreamId::ZERO, 5)));
}

// ---- 6.10 CONTINUATION ----

#[test]
fn sec6_10_continuation_on_stream_zero() {
    conn_err(dec(9, 4, 0, &[0x82]), Reason::PROTOCOL_ERROR);
}

// ---- splitting helpers ----

fn decode_all(mut b: BytesMut, max: u32) -> Vec<Frame> {
    let mut out = Vec::new();
    while let Some(f) = decode(&mut b, max).unwrap() {
        out.push(f);
    }
    assert!(b.is_empty());
    out
}

#[test]
fn sec6_10_headers_split_into_continuations() {
    let block: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
    let h = Headers::new(StreamId::new(1), Bytes::from(block.clone()), true);
    let mut b = BytesMut::new();
    h.encode_split(16_384, &mut b);
    let frames = decode_all(b, 16_384);
    assert_eq!(frames.len(), 3);
    let mut got = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        match f {
            Frame::Headers(h) => {
                assert_eq!(i, 0);
                assert!(h.end_stream && !h.end_headers);
                got.extend_from_slice(&h.fragment);
            }
            Frame::Continuation(c) => {
                assert_eq!(c.end_headers, i == 2);
                got.extend_from_slice(&c.fragment);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, block);
}

#[test]
fn sec6_10_small_headers_single_frame() {
    let h = Headers::new(StreamId::new(1), Bytes::from_static(b"\x82\x84"), false);
    let mut b = BytesMut::new();
    h.encode_split(16_384, &mut b);
    assert_eq!(decode_all(b, 16_384), vec![Frame::Headers(h)]);
}

#[test]
fn sec6_6_push_promise_split() {
    let p = PushPromise {
        stream_id: StreamId::new(1),
        promised_id: StreamId::new(2),
        end_headers: true,
        fragment: Bytes::from(vec![7u8; 20_000]),
        pad_len: None,
    };
    let mut b = BytesMut::new();
    p.encode_split(16_384, &mut b);
    let frames = decode_all(b, 16_384);
    assert_eq!(frames.len(), 2);
    let Frame::PushPromise(first) = &frames[0] else {
        panic!()
    };
    assert_eq!(first.fragment.len(), 16_380);
    assert!(!first.end_headers);
}

#[test]
fn sec6_1_data_split() {
    let body = vec![9u8; 40_000];
    let mut b = BytesMut::new();
    Data::encode_split(StreamId::new(3), &body, true, 16_384, &mut b);
    let frames = decode_all(b, 16_384);
    assert_eq!(frames.len(), 3);
    let mut total = 0;
    for (i, f) in frames.iter().enumerate() {
        let Frame::Data(d) = f else { panic!() };
        assert_eq!(d.end_stream, i == 2);
        total += d.data.len();
    }
    assert_eq!(total, body.len());
    let mut b = BytesMut::new();
    Data::encode_split(StreamId::new(3), &[], true, 16_384, &mut b);
    assert_eq!(
        decode_all(b, 16_384),
        vec![Frame::Data(Data::new(StreamId::new(3), Bytes::new(), true))]
    );
}

// ---- properties ----

fn stream() -> impl Strategy<Value = StreamId> {
    (1u32..=0x7fff_ffff).prop_map(StreamId::new)
}

fn dep(own: StreamId) -> impl Strategy<Value = StreamDependency> {
    (0u32..=0x7fff_ffff, any::<u8>(), any::<bool>())
        .prop_filter("no self dependency", move |(d, _, _)| *d != own.get())
        .prop_map(|(d, weight, exclusive)| StreamDependency {
            dependency: StreamId::new(d),
            weight,
            exclusive,
        })
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn frame() -> impl Strategy<Value = Frame> {
    let settings = (
        any::<bool>(),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(0..=MAX_WINDOW_SIZE),
        proptest::option::of(DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(ack, a, b, c, d, e, f, g)| {
            if ack {
                Settings::ack()
            } else {
                Settings {
                    ack,
                    header_table_size: a,
                    enable_push: b,
                    max_concurrent_streams: c,
                    initial_window_size: d,
                    max_frame_size: e,
                    max_header_list_size: f,
                    enable_connect_protocol: g,
                }
            }
        });
    prop_oneof![
        (
            stream(),
            bytes(300),
            any::<bool>(),
            proptest::option::of(any::<u8>())
        )
            .prop_map(|(s, data, end_stream, pad_len)| Frame::Data(Data {
                stream_id: s,
                data,
                end_stream,
                pad_len
            })),
        stream()
            .prop_flat_map(|s| (
                Just(s),
                proptest::option::of(dep(s)),
                any::<bool>(),
                any::<bool>(),
                bytes(300),
                proptest::option::of(any::<u8>())
            ))
            .prop_map(
                |(s, priority, end_stream, end_headers, fragment, pad_len)| {
                    Frame::Headers(Headers {
                        stream_id: s,
                        priority,
                        end_stream,
                        end_headers,
                        fragment,
                        pad_len,
                    })
                }
            ),
        stream()
            .prop_flat_map(|s| (Just(s), dep(s)))
            .prop_map(|(stream_id, dependency)| Frame::Priority(Priority {
                stream_id,
                dependency
            })),
        (stream(), any::<u32>())
            .prop_map(|(s, r)| Frame::RstStream(RstStream::new(s, Reason::new(r)))),
        settings.prop_map(Frame::Settings),
        (
            stream(),
            stream(),
            any::<bool>(),
            bytes(300),
            proptest::option::of(any::<u8>())
        )
            .prop_map(|(stream_id, promised_id, end_headers, fragment, pad_len)| {
                Frame::PushPromise(PushPromise {
                    stream_id,
                    promised_id,
                    end_headers,
                    fragment,
                    pad_len,
                })
            }),
        (any::<bool>(), any::<[u8; 8]>())
            .prop_map(|(ack, payload)| Frame::Ping(Ping { ack, payload })),
        (any::<u32>(), any::<u32>(), bytes(100)).prop_map(|(l, r, debug_data)| {
            Frame::GoAway(GoAway {
                last_stream_id: StreamId::new(l),
                reason: Reason::new(r),
                debug_data,
            })
        }),
        (0u32..=0x7fff_ffff, 1u32..=0x7fff_ffff)
            .prop_map(|(s, i)| Frame::WindowUpdate(WindowUpdate::new(StreamId::new(s), i))),
        (stream(), any::<bool>(), bytes(300)).prop_map(|(stream_id, end_headers, fragment)| {
            Frame::Continuation(Continuation {
                stream_id,
                end_headers,
                fragment,
            })
        }),
    ]
}

proptest! {
    #[test]
    fn prop_encode_decode_round_trip(f in frame()) {
        prop_assert_eq!(round_trip(&f), f);
    }

    #[test]
    fn prop_arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512),
                                        max in prop_oneof![Just(0u32), Just(16), Just(16_384)]) {
        let mut b = BytesMut::from(&input[..]);
        // Decode until need-more or a connection error; stream errors consume the frame.
        for _ in 0..input.len() + 1 {
            match decode(&mut b, max) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) if e.is_connection_error() => break,
                Err(_) => {}
            }
        }
    }

    #[test]
    fn prop_arbitrary_frame_bodies_never_panic(kind in 0u8..12, fl in any::<u8>(), s in any::<u32>(),
                                               payload in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut b = raw(kind, fl, s, &payload);
        let _ = decode(&mut b, DEFAULT_MAX_FRAME_SIZE);
        prop_assert!(b.is_empty());
    }

    #[test]
    fn prop_headers_split_reassembles(len in 0usize..70_000, max in 16_384u32..40_000,
                                      pad in proptest::option::of(any::<u8>())) {
        let block = Bytes::from((0..len).map(|i| i as u8).collect::<Vec<_>>());
        let mut h = Headers::new(StreamId::new(1), block.clone(), false);
        h.pad_len = pad;
        let mut b = BytesMut::new();
        h.encode_split(max, &mut b);
        let mut got = Vec::new();
        let mut frames = 0;
        let mut ended = false;
        while let Some(f) = decode(&mut b, max).unwrap() {
            prop_assert!(!ended);
            frames += 1;
            match f {
                Frame::Headers(h) => { prop_assert_eq!(frames, 1); ended = h.end_headers; got.extend_from_slice(&h.fragment) }
                Frame::Continuation(c) => { ended = c.end_headers; got.extend_from_slice(&c.fragment) }
                other => prop_assert!(false, "{:?}", other),
            }
        }
        prop_assert!(ended);
        prop_assert_eq!(&got[..], &block[..]);
    }
}
