//! Connection tests: a client and a server driven against each other in memory, and raw-frame
//! tests of each connection- and stream-level rule, named after the RFC 9113 section.

use super::*;
use crate::http2::frame::{
    Continuation, Data, ErrorKind as FrameErrorKind, Frame, Head, Headers, Ping, Priority,
    RstStream, StreamDependency,
};
use proptest::prelude::*;
use std::collections::HashMap;

// ------------------------------------------------------------------ harness

/// Client and server exchanging bytes in memory (quinn-proto's `Pair::drive` idea).
struct Pair {
    client: Connection,
    server: Connection,
    client_events: VecDeque<Event>,
    server_events: VecDeque<Event>,
}

impl Pair {
    fn new(client: Config, server: Config) -> Self {
        let mut p = Self {
            client: Connection::new(Role::Client, client),
            server: Connection::new(Role::Server, server),
            client_events: VecDeque::new(),
            server_events: VecDeque::new(),
        };
        p.drive();
        // The SETTINGS exchange produced SettingsChanged (and maybe WindowOpened); drop them.
        p.client_events.clear();
        p.server_events.clear();
        p
    }

    /// Moves bytes both ways once; true if anything moved.
    fn step(&mut self) -> bool {
        let mut to_server = BytesMut::new();
        let mut to_client = BytesMut::new();
        self.client.poll_transmit(&mut to_server);
        self.server.poll_transmit(&mut to_client);
        let moved = !to_server.is_empty() || !to_client.is_empty();
        self.server.handle_bytes(&mut to_server).unwrap();
        self.client.handle_bytes(&mut to_client).unwrap();
        assert!(to_server.is_empty() && to_client.is_empty());
        while let Some(e) = self.client.poll_event() {
            self.client_events.push_back(e);
        }
        while let Some(e) = self.server.poll_event() {
            self.server_events.push_back(e);
        }
        moved
    }

    fn drive(&mut self) {
        for _ in 0..10_000 {
            if !self.step() {
                return;
            }
        }
        panic!("no quiescence");
    }
}

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// A received field list as owned pairs, for assertions.
fn list(fields: &Fields) -> Vec<(Bytes, Bytes)> {
    fields
        .iter()
        .map(|(n, v)| (Bytes::copy_from_slice(n), Bytes::copy_from_slice(v)))
        .collect()
}

fn fields(list: &[(&'static str, &'static str)]) -> Vec<(&'static [u8], &'static [u8])> {
    list.iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect()
}

const POST: &[(&str, &str)] = &[
    (":method", "POST"),
    (":scheme", "https"),
    (":path", "/upload"),
    (":authority", "example.com"),
];
const GET: &[(&str, &str)] = &[(":method", "GET"), (":scheme", "https"), (":path", "/")];

fn body(n: usize) -> Bytes {
    Bytes::from((0..n).map(|i| (i % 251) as u8).collect::<Vec<_>>())
}

// ------------------------------------------------------------------ pair tests

#[test]
fn pair_request_and_response_bodies_larger_than_windows_with_trailers() {
    let cfg = Config {
        connection_window_size: DEFAULT_WINDOW,
        ..Config::default()
    };
    let mut p = Pair::new(cfg, cfg);
    let id = p.client.open_stream().unwrap();
    assert_eq!(id, StreamId::new(1));
    assert_eq!(p.client.stream_state(id), Some(StreamState::Idle));
    p.client.send_headers(id, fields(POST), false).unwrap();
    assert_eq!(p.client.stream_state(id), Some(StreamState::Open));

    let req = body(300_000);
    let resp = body(200_000);
    let mut to_send = req.clone();
    let mut got_req = Vec::new();
    let mut got_resp = Vec::new();
    let mut resp_to_send: Option<Bytes> = None;
    let mut req_done = false;
    let mut resp_done = false;
    let mut trailers = None;
    let mut zero_sends = 0;
    for _ in 0..10_000 {
        if !to_send.is_empty() {
            let n = p.client.send_data(id, &mut to_send, true).unwrap();
            // Bounded by flow control: never more than a window at once.
            assert!(n <= DEFAULT_WINDOW as usize);
            if n == 0 {
                zero_sends += 1;
            }
        }
        if let Some(r) = resp_to_send.as_mut() {
            if !r.is_empty() {
                p.server.send_data(id, r, false).unwrap();
            } else if trailers.is_none() {
                p.server
                    .send_trailers(id, fields(&[("grpc-status", "0"), ("x-sum", "ok")]))
                    .unwrap();
                trailers = Some(());
            }
        }
        p.step();
        while let Some(e) = p.server_events.pop_front() {
            match e {
                Event::Headers {
                    stream,
                    fields,
                    end_stream,
                } => {
                    assert_eq!(stream, id);
                    assert!(!end_stream);
                    assert_eq!(list(&fields)[0], (b(":method"), b("POST")));
                    assert_eq!(fields.len(), 4);
                }
                Event::Data {
                    stream,
                    data,
                    end_stream,
                } => {
                    got_req.extend_from_slice(&data);
                    p.server.release_capacity(stream, data.len() as u32);
                    if end_stream {
                        req_done = true;
                        p.server
                            .send_headers(id, fields(&[(":status", "200")]), false)
                            .unwrap();
                        resp_to_send = Some(resp.clone());
                    }
                }
                Event::WindowOpened(_) => {}
                other => panic!("server got {other:?}"),
            }
        }
        while let Some(e) = p.client_events.pop_front() {
            match e {
                Event::Headers {
                    fields, end_stream, ..
                } => {
                    assert_eq!(list(&fields), vec![(b(":status"), b("200"))]);
                    assert!(!end_stream);
                }
                Event::Data {
                    stream,
                    data,
                    end_stream,
                } => {
                    assert!(!end_stream);
                    got_resp.extend_from_slice(&data);
                    p.client.release_capacity(stream, data.len() as u32);
                }
                Event::Trailers { stream, fields } => {
                    assert_eq!(stream, id);
                    assert_eq!(list(&fields)[0], (b("grpc-status"), b("0")));
                    resp_done = true;
                }
                Event::WindowOpened(_) => {}
                other => panic!("client got {other:?}"),
            }
        }
        if resp_done {
            break;
        }
    }
    assert!(req_done && resp_done);
    assert!(
        zero_sends > 0,
        "the sender must have been blocked by flow control"
    );
    assert_eq!(got_req, req);
    assert_eq!(got_resp, resp);
    // Both sides closed: the stream is gone everywhere.
    assert_eq!(p.client.stream_state(id), None);
    assert_eq!(p.server.stream_state(id), None);
    assert_eq!(p.client.active_streams(), 0);
    assert_eq!(p.server.active_streams(), 0);
    assert!(p.client.error().is_none() && p.server.error().is_none());
}

#[test]
fn pair_many_streams_get_without_body() {
    let mut p = Pair::new(Config::default(), Config::default());
    let ids: Vec<_> = (0..10)
        .map(|_| {
            let id = p.client.open_stream().unwrap();
            p.client.send_headers(id, fields(GET), true).unwrap();
            id
        })
        .collect();
    p.drive();
    let mut seen = Vec::new();
    while let Some(e) = p.server_events.pop_front() {
        let Event::Headers {
            stream, end_stream, ..
        } = e
        else {
            panic!("{e:?}")
        };
        assert!(end_stream);
        assert_eq!(
            p.server.stream_state(stream),
            Some(StreamState::HalfClosedRemote)
        );
        p.server
            .send_headers(stream, fields(&[(":status", "204")]), true)
            .unwrap();
        seen.push(stream);
    }
    assert_eq!(seen, ids);
    p.drive();
    assert_eq!(p.client_events.len(), 10);
    assert_eq!(p.client.active_streams(), 0);
    assert_eq!(p.server.active_streams(), 0);
}

#[test]
fn sec8_2_1_send_headers_lowercasing_sends_lowercase_names() {
    let mut p = Pair::new(Config::default(), Config::default());
    let id = p.client.open_stream().unwrap();
    p.client.send_headers(id, fields(GET), true).unwrap();
    p.drive();
    let Some(Event::Headers { stream, .. }) = p.server_events.pop_front() else {
        panic!("no request");
    };
    p.server
        .send_headers_lowercasing(
            stream,
            fields(&[
                (":status", "200"),
                ("Content-Type", "text/plain"),
                ("x-Up", "1"),
            ]),
            true,
        )
        .unwrap();
    p.drive();
    let Some(Event::Headers { fields: got, .. }) = p.client_events.pop_front() else {
        panic!("no response");
    };
    assert_eq!(
        list(&got),
        [
            (b(":status"), b("200")),
            (b("content-type"), b("text/plain")),
            (b("x-up"), b("1")),
        ]
    );
}

#[test]
fn pair_informational_response_then_final() {
    let mut p = Pair::new(Config::default(), Config::default());
    let id = p.client.open_stream().unwrap();
    p.client.send_headers(id, fields(POST), false).unwrap();
    p.drive();
    p.server
        .send_headers(id, fields(&[(":status", "100")]), false)
        .unwrap();
    p.server
        .send_headers(
            id,
            fields(&[(":status", "200"), ("content-length", "2")]),
            false,
        )
        .unwrap();
    p.server.send_data(id, &mut b("ok"), true).unwrap();
    p.drive();
    let kinds: Vec<_> = p.client_events.drain(..).collect();
    assert!(matches!(&kinds[0], Event::Headers { fields, .. } if list(fields)[0].1 == "100"));
    assert!(matches!(&kinds[1], Event::Headers { fields, .. } if list(fields)[0].1 == "200"));
    assert!(matches!(
        &kinds[2],
        Event::Data {
            end_stream: true,
            ..
        }
    ));
    assert_eq!(
        p.client.stream_state(id),
        Some(StreamState::HalfClosedRemote)
    );
}

#[test]
fn pair_client_reset_reaches_server() {
    let mut p = Pair::new(Config::default(), Config::default());
    let id = p.client.open_stream().unwrap();
    p.client.send_headers(id, fields(GET), false).unwrap();
    p.drive();
    assert!(matches!(
        p.server_events.pop_front(),
        Some(Event::Headers { .. })
    ));
    p.client.reset(id, Reason::CANCEL).unwrap();
    assert_eq!(
        p.client.send_data(id, &mut b("x"), true),
        Err(SendError::NoSuchStream)
    );
    p.drive();
    assert_eq!(
        p.server_events.pop_front(),
        Some(Event::Reset {
            stream: id,
            reason: Reason::CANCEL,
            remote: true
        })
    );
    assert_eq!(p.server.stream_state(id), None);
    // The server's late response frames are ignored by the client, without error.
    assert_eq!(
        p.server
            .send_headers(id, fields(&[(":status", "200")]), true),
        Err(SendError::NoSuchStream)
    );
    assert_eq!(p.server.counters().resets_received, 1);
}

#[test]
fn pair_server_reset_reaches_client() {
    let mut p = Pair::new(Config::default(), Config::default());
    let id = p.client.open_stream().unwrap();
    p.client.send_headers(id, fields(POST), false).unwrap();
    p.drive();
    p.server.reset(id, Reason::REFUSED_STREAM).unwrap();
    // Client keeps sending before it hears of the reset: the server ignores it.
    p.client.send_data(id, &mut b("late"), false).unwrap();
    p.drive();
    assert_eq!(
        p.client_events.pop_front(),
        Some(Event::Reset {
            stream: id,
            reason: Reason::REFUSED_STREAM,
            remote: true
        })
    );
    assert!(p.server.error().is_none());
}

#[test]
fn pair_graceful_goaway_refuses_later_streams() {
    let mut p = Pair::new(Config::default(), Config::default());
    let first = p.client.open_stream().unwrap();
    p.client.send_headers(first, fields(GET), true).unwrap();
    p.drive();
    p.server_events.clear();
    // Stream 3 crosses the server's GOAWAY on the wire.
    let second = p.client.open_stream().unwrap();
    p.client.send_headers(second, fields(GET), true).unwrap();
    p.server.go_away(Reason::NO_ERROR);
    p.drive();
    assert!(
        p.server_events.is_empty(),
        "stream above GOAWAY last id is ignored"
    );
    assert_eq!(
        p.client_events.pop_front(),
        Some(Event::Reset {
            stream: second,
            reason: Reason::REFUSED_STREAM,
            remote: true
        })
    );
    assert_eq!(
        p.client_events.pop_front(),
        Some(Event::GoAway {
            last_stream: first,
            reason: Reason::NO_ERROR,
            debug_data: Bytes::new()
        })
    );
    assert_eq!(p.client.open_stream(), Err(SendError::GoingAway));
    // The first stream still completes.
    p.server
        .send_headers(first, fields(&[(":status", "200")]), true)
        .unwrap();
    p.drive();
    assert!(matches!(
        p.client_events.pop_front(),
        Some(Event::Headers {
            end_stream: true,
            ..
        })
    ));
}

#[test]
fn pair_ping_round_trip() {
    let mut p = Pair::new(Config::default(), Config::default());
    p.client.ping(*b"12345678");
    p.drive();
    assert_eq!(
        p.server_events.pop_front(),
        Some(Event::Ping {
            ack: false,
            payload: *b"12345678"
        })
    );
    assert_eq!(
        p.client_events.pop_front(),
        Some(Event::Ping {
            ack: true,
            payload: *b"12345678"
        })
    );
}

#[test]
fn sec6_9_2_peer_initial_window_bounds_send_data() {
    let server = Config {
        initial_window_size: 1000,
        ..Config::default()
    };
    let mut p = Pair::new(Config::default(), server);
    let id = p.client.open_stream().unwrap();
    p.client.send_headers(id, fields(POST), false).unwrap();
    assert_eq!(p.client.send_capacity(id), 1000);
    let mut data = body(5000);
    assert_eq!(p.client.send_data(id, &mut data, true).unwrap(), 1000);
    assert_eq!(data.len(), 4000);
    assert_eq!(p.client.send_data(id, &mut data, true).unwrap(), 0);
    assert_eq!(p.client.stream_state(id), Some(StreamState::Open));
}

#[test]
fn sec6_9_2_settings_change_applies_delta_to_open_streams() {
    let mut p = Pair::new(Config::default(), Config::default());
    let id = p.client.open_stream().unwrap();
    p.client.send_headers(id, fields(POST), false).unwrap();
    p.client.send_data(id, &mut body(1000), false).unwrap();
    assert_eq!(p.client.send_capacity(id), 64_535);
    // The server's new SETTINGS shrink the window by 60 000: capacity 4 535.
    let mut raw = BytesMut::new();
    frame::Settings {
        initial_window_size: Some(5535),
        ..Default::default()
    }
    .encode(&mut raw);
    p.client.handle_bytes(&mut raw).unwrap();
    assert_eq!(p.client.send_capacity(id), 4535);
}

#[test]
fn sec8_1_1_content_length_checked_across_pair() {
    let mut p = Pair::new(Config::default(), Config::default());
    let id = p.client.open_stream().unwrap();
    let mut f = fields(POST);
    f.push((b"content-length", b"10"));
    p.client.send_headers(id, f, false).unwrap();
    p.client.send_data(id, &mut b("short"), true).unwrap();
    p.drive();
    assert!(matches!(
        p.server_events.pop_front(),
        Some(Event::Headers { .. })
    ));
    assert_eq!(
        p.server_events.pop_front(),
        Some(Event::Reset {
            stream: id,
            reason: Reason::PROTOCOL_ERROR,
            remote: false
        })
    );
    assert!(matches!(
        p.client_events.pop_front(),
        Some(Event::Reset {
            reason: Reason::PROTOCOL_ERROR,
            remote: true,
            ..
        })
    ));
    assert_eq!(p.server.counters().malformed, 1);
}

// ------------------------------------------------------------------ raw-frame harness

/// A server that has read the client preface and an empty SETTINGS.
fn server_with(config: Config) -> Connection {
    let mut s = Connection::new(Role::Server, config);
    let mut input = BytesMut::from(&PREFACE[..]);
    frame::Settings::default().encode(&mut input);
    frame::Settings::ack().encode(&mut input);
    s.handle_bytes(&mut input).unwrap();
    let mut sink = BytesMut::new();
    s.poll_transmit(&mut sink);
    while s.poll_event().is_some() {}
    s
}

fn server() -> Connection {
    server_with(Config::default())
}

/// A client that has read the server's SETTINGS.
fn client() -> Connection {
    let mut c = Connection::new(Role::Client, Config::default());
    let mut input = BytesMut::new();
    frame::Settings::default().encode(&mut input);
    c.handle_bytes(&mut input).unwrap();
    let mut sink = BytesMut::new();
    c.poll_transmit(&mut sink);
    while c.poll_event().is_some() {}
    c
}

/// A peer-side HPACK encoder producing a field block.
fn block(enc: &mut hpack::Encoder, list: &[(&'static str, &'static str)]) -> Bytes {
    let mut out = BytesMut::new();
    enc.encode(
        list.iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes(), false)),
        &mut out,
    );
    out.freeze()
}

fn headers(
    enc: &mut hpack::Encoder,
    id: u32,
    list: &[(&'static str, &'static str)],
    end: bool,
) -> BytesMut {
    let mut out = BytesMut::new();
    Headers::new(StreamId::new(id), block(enc, list), end).encode(&mut out);
    out
}

fn data(id: u32, payload: &[u8], end: bool) -> BytesMut {
    let mut out = BytesMut::new();
    Data::new(StreamId::new(id), Bytes::copy_from_slice(payload), end).encode(&mut out);
    out
}

fn enc<F: Into<Frame>>(f: F) -> BytesMut {
    let mut out = BytesMut::new();
    f.into().encode(&mut out);
    out
}

impl From<RstStream> for Frame {
    fn from(f: RstStream) -> Self {
        Self::RstStream(f)
    }
}
impl From<WindowUpdate> for Frame {
    fn from(f: WindowUpdate) -> Self {
        Self::WindowUpdate(f)
    }
}
impl From<Ping> for Frame {
    fn from(f: Ping) -> Self {
        Self::Ping(f)
    }
}
impl From<frame::Settings> for Frame {
    fn from(f: frame::Settings) -> Self {
        Self::Settings(f)
    }
}

/// Frames the connection wants to send.
fn sent(c: &mut Connection) -> Vec<Frame> {
    let mut out = BytesMut::new();
    c.poll_transmit(&mut out);
    if out.starts_with(PREFACE) {
        let _ = out.split_to(PREFACE.len());
    }
    let mut v = Vec::new();
    while let Some(f) = frame::decode(&mut out, frame::MAX_MAX_FRAME_SIZE).unwrap() {
        v.push(f);
    }
    v
}

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// Feeds `input` and expects a connection error with `reason`, and a GOAWAY carrying it.
fn expect_conn_error(c: &mut Connection, mut input: BytesMut, reason: Reason) -> ConnError {
    let e = c.handle_bytes(&mut input).expect_err("connection error");
    assert_eq!(e.reason, reason, "{e:?}");
    let frames = sent(c);
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, Frame::GoAway(g) if g.reason == reason)),
        "{frames:?}"
    );
    // Closed for good.
    assert_eq!(c.handle_bytes(&mut BytesMut::new()), Err(e));
    e
}

/// Feeds `input` and expects RST_STREAM(`id`, `reason`) and no connection error.
fn expect_stream_error(c: &mut Connection, mut input: BytesMut, id: u32, reason: Reason) {
    c.handle_bytes(&mut input).expect("no connection error");
    let frames = sent(c);
    assert!(
        frames.iter().any(|f| matches!(f, Frame::RstStream(r)
            if r.stream_id == StreamId::new(id) && r.reason == reason)),
        "{frames:?}"
    );
    assert!(!frames.iter().any(|f| matches!(f, Frame::GoAway(_))));
}

// ------------------------------------------------------------------ section 3.4

#[test]
fn sec3_4_bad_preface() {
    let mut s = Connection::new(Role::Server, Config::default());
    let e = expect_conn_error(
        &mut s,
        BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]),
        Reason::PROTOCOL_ERROR,
    );
    assert_eq!(e.kind, ConnErrorKind::BadPreface);
}

#[test]
fn sec3_4_preface_in_pieces() {
    let mut s = Connection::new(Role::Server, Config::default());
    let mut a = BytesMut::from(&PREFACE[..10]);
    s.handle_bytes(&mut a).unwrap();
    let mut rest = BytesMut::from(&PREFACE[..]);
    frame::Settings::default().encode(&mut rest);
    s.handle_bytes(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert!(events(&mut s).contains(&Event::SettingsChanged));
    // Our SETTINGS, then the ACK of theirs.
    let frames = sent(&mut s);
    assert!(matches!(&frames[0], Frame::Settings(s) if !s.ack));
    assert!(frames.contains(&Frame::Settings(frame::Settings::ack())));
}

#[test]
fn sec3_4_first_frame_not_settings() {
    let mut s = Connection::new(Role::Server, Config::default());
    let mut input = BytesMut::from(&PREFACE[..]);
    input.extend_from_slice(&enc(Ping::new([0; 8])));
    let e = expect_conn_error(&mut s, input, Reason::PROTOCOL_ERROR);
    assert_eq!(e.kind, ConnErrorKind::SettingsExpected);
}

#[test]
fn sec3_4_client_sends_preface_and_settings() {
    let mut c = Connection::new(Role::Client, Config::default());
    let mut out = BytesMut::new();
    c.poll_transmit(&mut out);
    assert!(out.starts_with(PREFACE));
    let frames = sent(&mut Connection::new(Role::Client, Config::default()));
    let Frame::Settings(s) = &frames[0] else {
        panic!()
    };
    assert_eq!(s.enable_push, Some(false));
    assert_eq!(s.max_concurrent_streams, Some(100));
}

// ------------------------------------------------------------------ section 4 / 6 via conn

#[test]
fn sec4_2_frame_over_our_max_frame_size() {
    let mut s = server();
    let e = expect_conn_error(
        &mut s,
        data(1, &[0; 16_385], false),
        Reason::FRAME_SIZE_ERROR,
    );
    assert_eq!(e.kind, ConnErrorKind::Frame(FrameErrorKind::FrameTooLarge));
}

#[test]
fn sec6_5_3_settings_acked() {
    let mut s = server();
    let mut input = enc(frame::Settings {
        max_frame_size: Some(20_000),
        ..Default::default()
    });
    s.handle_bytes(&mut input).unwrap();
    assert_eq!(sent(&mut s), vec![Frame::Settings(frame::Settings::ack())]);
    assert_eq!(events(&mut s), vec![Event::SettingsChanged]);
}

#[test]
fn sec6_5_2_client_rejects_enable_push_1() {
    let mut c = Connection::new(Role::Client, Config::default());
    let input = enc(frame::Settings {
        enable_push: Some(true),
        ..Default::default()
    });
    expect_conn_error(&mut c, input, Reason::PROTOCOL_ERROR);
}

#[test]
fn sec8_4_server_rejects_push_promise() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let mut input = headers(&mut e, 1, GET, false);
    frame::PushPromise {
        stream_id: StreamId::new(1),
        promised_id: StreamId::new(2),
        end_headers: true,
        fragment: Bytes::new(),
        pad_len: None,
    }
    .encode(&mut input);
    let err = expect_conn_error(&mut s, input, Reason::PROTOCOL_ERROR);
    assert_eq!(err.kind, ConnErrorKind::PushPromise);
}

#[test]
fn sec4_3_undecodable_field_block() {
    let mut s = server();
    let mut input = BytesMut::new();
    // Indexed field 0 is never valid (RFC 7541 section 6.1).
    Headers::new(StreamId::new(1), Bytes::from_static(&[0x80]), true).encode(&mut input);
    let e = expect_conn_error(&mut s, input, Reason::COMPRESSION_ERROR);
    assert!(matches!(e.kind, ConnErrorKind::Compression(_)));
    assert_eq!(s.counters().compression_errors, 1);
}

// ------------------------------------------------------------------ section 6.10

#[test]
fn sec6_10_continuation_reassembled() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let blk = block(
        &mut e,
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/a/long/path"),
        ],
    );
    let mut input = BytesMut::new();
    let mut h = Headers::new(StreamId::new(1), blk.slice(..5), true);
    h.end_headers = false;
    h.encode(&mut input);
    let mid = Continuation {
        stream_id: StreamId::new(1),
        end_headers: false,
        fragment: blk.slice(5..10),
    };
    Frame::Continuation(mid).encode(&mut input);
    let last = Continuation {
        stream_id: StreamId::new(1),
        end_headers: true,
        fragment: blk.slice(10..),
    };
    Frame::Continuation(last).encode(&mut input);
    s.handle_bytes(&mut input).unwrap();
    let ev = events(&mut s);
    assert!(
        matches!(&ev[0], Event::Headers { end_stream: true, fields, .. } if list(fields)[2].1 == "/a/long/path")
    );
}

#[test]
fn sec6_10_other_frame_between_headers_and_continuation() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let mut input = BytesMut::new();
    let mut h = Headers::new(StreamId::new(1), block(&mut e, GET), true);
    h.end_headers = false;
    h.encode(&mut input);
    input.extend_from_slice(&enc(Ping::new([0; 8])));
    let err = expect_conn_error(&mut s, input, Reason::PROTOCOL_ERROR);
    assert_eq!(err.kind, ConnErrorKind::ContinuationExpected);
}

#[test]
fn sec6_10_continuation_on_other_stream() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let mut input = BytesMut::new();
    let mut h = Headers::new(StreamId::new(1), block(&mut e, GET), true);
    h.end_headers = false;
    h.encode(&mut input);
    Frame::Continuation(Continuation {
        stream_id: StreamId::new(3),
        end_headers: true,
        fragment: Bytes::new(),
    })
    .encode(&mut input);
    expect_conn_error(&mut s, input, Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_10_unknown_frame_between_headers_and_continuation() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let mut input = BytesMut::new();
    let mut h = Headers::new(StreamId::new(1), block(&mut e, GET), true);
    h.end_headers = false;
    h.encode(&mut input);
    Head::new(frame::Kind::Unknown(0xee), 0, StreamId::new(1), 0).encode(&mut input);
    expect_conn_error(&mut s, input, Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_10_continuation_without_headers() {
    let mut s = server();
    let input = enc(Frame::Continuation(Continuation {
        stream_id: StreamId::new(1),
        end_headers: true,
        fragment: Bytes::new(),
    }));
    let e = expect_conn_error(&mut s, input, Reason::PROTOCOL_ERROR);
    assert_eq!(e.kind, ConnErrorKind::UnexpectedContinuation);
}

#[test]
fn mitigation_continuation_flood_frame_count() {
    let mut s = server();
    let mut input = BytesMut::new();
    let mut h = Headers::new(StreamId::new(1), Bytes::new(), true);
    h.end_headers = false;
    h.encode(&mut input);
    for _ in 0..=Config::default().max_continuation_frames {
        Frame::Continuation(Continuation {
            stream_id: StreamId::new(1),
            end_headers: false,
            fragment: Bytes::new(),
        })
        .encode(&mut input);
    }
    let e = expect_conn_error(&mut s, input, Reason::ENHANCE_YOUR_CALM);
    assert_eq!(e.kind, ConnErrorKind::ContinuationFlood);
    assert_eq!(s.counters().continuation_flood, 1);
}

#[test]
fn mitigation_continuation_flood_block_size() {
    let mut s = server();
    let mut input = BytesMut::new();
    let mut h = Headers::new(StreamId::new(1), Bytes::from(vec![0u8; 16_000]), true);
    h.end_headers = false;
    h.encode(&mut input);
    for _ in 0..2 {
        Frame::Continuation(Continuation {
            stream_id: StreamId::new(1),
            end_headers: false,
            fragment: Bytes::from(vec![0u8; 16_000]),
        })
        .encode(&mut input);
    }
    let e = expect_conn_error(&mut s, input, Reason::ENHANCE_YOUR_CALM);
    assert_eq!(e.kind, ConnErrorKind::ContinuationFlood);
}

// ------------------------------------------------------------------ section 5.1 / 5.1.1

#[test]
fn sec5_1_1_stream_id_lower_than_previous() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let mut input = headers(&mut e, 5, GET, true);
    input.extend_from_slice(&headers(&mut e, 3, GET, true));
    let err = expect_conn_error(&mut s, input, Reason::PROTOCOL_ERROR);
    assert_eq!(err.kind, ConnErrorKind::BadStreamId);
}

#[test]
fn sec5_1_1_even_stream_id_from_client() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let err = expect_conn_error(
        &mut s,
        headers(&mut e, 2, GET, true),
        Reason::PROTOCOL_ERROR,
    );
    assert_eq!(err.kind, ConnErrorKind::BadStreamId);
}

#[test]
fn sec5_1_1_client_streams_must_start_in_order() {
    let mut c = client();
    let a = c.open_stream().unwrap();
    let bb = c.open_stream().unwrap();
    c.send_headers(bb, fields(GET), true).unwrap();
    assert_eq!(
        c.send_headers(a, fields(GET), true),
        Err(SendError::OutOfOrder)
    );
}

#[test]
fn sec5_1_data_on_idle_stream() {
    let mut s = server();
    let e = expect_conn_error(&mut s, data(1, b"x", false), Reason::PROTOCOL_ERROR);
    assert_eq!(e.kind, ConnErrorKind::IdleStream);
}

#[test]
fn sec6_4_rst_stream_on_idle_stream() {
    let mut s = server();
    let input = enc(RstStream::new(StreamId::new(1), Reason::CANCEL));
    expect_conn_error(&mut s, input, Reason::PROTOCOL_ERROR);
}

#[test]
fn sec5_1_window_update_on_idle_stream() {
    let mut s = server();
    let input = enc(WindowUpdate::new(StreamId::new(7), 1));
    expect_conn_error(&mut s, input, Reason::PROTOCOL_ERROR);
}

#[test]
fn sec5_1_priority_on_idle_stream_allowed() {
    let mut s = server();
    let mut input = BytesMut::new();
    Priority {
        stream_id: StreamId::new(9),
        dependency: StreamDependency {
            dependency: StreamId::ZERO,
            weight: 1,
            exclusive: false,
        },
    }
    .encode(&mut input);
    s.handle_bytes(&mut input).unwrap();
    assert!(sent(&mut s).is_empty());
}

#[test]
fn sec5_1_half_closed_remote_data_is_stream_closed() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let mut input = headers(&mut e, 1, GET, true);
    input.extend_from_slice(&data(1, b"x", false));
    expect_stream_error(&mut s, input, 1, Reason::STREAM_CLOSED);
}

#[test]
fn sec5_1_headers_on_stream_closed_by_end_stream_is_connection_error() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    s.handle_bytes(&mut headers(&mut e, 1, GET, true)).unwrap();
    s.send_headers(StreamId::new(1), fields(&[(":status", "204")]), true)
        .unwrap();
    sent(&mut s);
    assert_eq!(s.stream_state(StreamId::new(1)), None);
    // DATA on the closed stream stays a stream error (section 6.1) ...
    expect_stream_error(&mut s, data(1, b"x", true), 1, Reason::STREAM_CLOSED);
    // ... a new field block on it is a reused id: a connection error.
    let err = expect_conn_error(&mut s, headers(&mut e, 1, GET, true), Reason::STREAM_CLOSED);
    assert_eq!(err.kind, ConnErrorKind::BadStreamId);
}

#[test]
fn sec5_1_headers_on_stream_reset_by_peer_is_connection_error() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let mut input = headers(&mut e, 1, POST, false);
    input.extend_from_slice(&enc(RstStream::new(StreamId::new(1), Reason::CANCEL)));
    s.handle_bytes(&mut input).unwrap();
    sent(&mut s);
    expect_conn_error(&mut s, headers(&mut e, 1, GET, true), Reason::STREAM_CLOSED);
}

#[test]
fn sec5_1_frames_after_our_reset_are_ignored() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let mut input = headers(&mut e, 1, POST, false);
    s.handle_bytes(&mut input).unwrap();
    s.reset(StreamId::new(1), Reason::CANCEL).unwrap();
    sent(&mut s);
    let mut late = data(1, &[1; 1000], false);
    late.extend_from_slice(&headers(&mut e, 1, &[("x", "y")], true));
    s.handle_bytes(&mut late).unwrap();
    assert!(sent(&mut s).is_empty());
    assert!(s.error().is_none());
}

#[test]
fn sec5_1_2_concurrent_stream_limit_refused() {
    let mut s = server_with(Config {
        max_concurrent_streams: 1,
        ..Config::default()
    });
    let mut e = hpack::Encoder::new();
    let mut input = headers(&mut e, 1, POST, false);
    input.extend_from_slice(&headers(&mut e, 3, POST, false));
    expect_stream_error(&mut s, input, 3, Reason::REFUSED_STREAM);
    assert_eq!(s.counters().streams_refused, 1);
    assert_eq!(s.counters().streams_accepted, 1);
}

// ------------------------------------------------------------------ section 6.9 flow control

#[test]
fn sec6_9_data_beyond_stream_window() {
    let mut s = server_with(Config {
        initial_window_size: 100,
        ..Config::default()
    });
    let mut e = hpack::Encoder::new();
    let mut input = headers(&mut e, 1, POST, false);
    input.extend_from_slice(&data(1, &[0; 101], false));
    expect_stream_error(&mut s, input, 1, Reason::FLOW_CONTROL_ERROR);
    assert_eq!(s.counters().flow_control_errors, 1);
}

#[test]
fn sec6_9_data_beyond_connection_window() {
    let mut s = server_with(Config {
        initial_window_size: 200_000,
        connection_window_size: DEFAULT_WINDOW,
        ..Config::default()
    });
    let mut e = hpack::Encoder::new();
    let mut input = headers(&mut e, 1, POST, false);
    for _ in 0..3 {
        input.extend_from_slice(&data(1, &[0; 16_384], false));
    }
    // Exactly the 65 535 octet connection window is fine; one more is not.
    input.extend_from_slice(&data(1, &[0; 16_383], false));
    s.handle_bytes(&mut input).unwrap();
    let e = expect_conn_error(&mut s, data(1, &[0; 1], false), Reason::FLOW_CONTROL_ERROR);
    assert_eq!(e.kind, ConnErrorKind::FlowControl);
}

#[test]
fn sec6_9_2_small_initial_window_applies_after_ack() {
    let cfg = Config {
        initial_window_size: 100,
        ..Config::default()
    };
    let mut s = Connection::new(Role::Server, cfg);
    let mut e = hpack::Encoder::new();
    let mut input = BytesMut::from(&PREFACE[..]);
    frame::Settings::default().encode(&mut input);
    // Before the client acknowledges our SETTINGS it may use the default 65 535 window.
    input.extend_from_slice(&headers(&mut e, 1, POST, false));
    input.extend_from_slice(&data(1, &[0; 1000], false));
    s.handle_bytes(&mut input).unwrap();
    assert!(
        !sent(&mut s)
            .iter()
            .any(|f| matches!(f, Frame::RstStream(_)))
    );
    // After the ACK the window is 100 - 1000 + 65 535 - 65 535 < 0: no more DATA fits.
    let mut input = enc(frame::Settings::ack());
    input.extend_from_slice(&data(1, &[0; 1], false));
    expect_stream_error(&mut s, input, 1, Reason::FLOW_CONTROL_ERROR);
}

#[test]
fn mitigation_peer_caused_resets_count_as_rapid_reset() {
    let mut s = server_with(Config {
        max_rapid_resets: 3,
        ..Config::default()
    });
    let mut e = hpack::Encoder::new();
    let mut input = BytesMut::new();
    // Each stream is malformed (DATA beyond content-length), so we reset it ourselves.
    for i in 0..4u32 {
        let id = 2 * i + 1;
        let mut f = POST.to_vec();
        f.push(("content-length", "0"));
        input.extend_from_slice(&headers(&mut e, id, &f, false));
        input.extend_from_slice(&data(id, b"x", false));
    }
    let err = expect_conn_error(&mut s, input, Reason::ENHANCE_YOUR_CALM);
    assert_eq!(err.kind, ConnErrorKind::RapidReset);
    assert_eq!(s.counters().malformed, 4);
}

#[test]
fn sec6_9_padding_counts_and_is_returned() {
    let mut s = server_with(Config {
        initial_window_size: 100,
        ..Config::default()
    });
    let mut e = hpack::Encoder::new();
    let mut input = headers(&mut e, 1, POST, false);
    let mut d = Data::new(StreamId::new(1), Bytes::from_static(b"abc"), false);
    d.pad_len = Some(96); // 1 + 3 + 96 = 100: exactly the window.
    d.encode(&mut input);
    s.handle_bytes(&mut input).unwrap();
    assert!(s.error().is_none());
    let ev = events(&mut s);
    assert!(matches!(&ev[1], Event::Data { data, .. } if data == "abc"));
    // The 97 padding octets were given back to the stream window.
    let frames = sent(&mut s);
    assert!(frames.contains(&Frame::WindowUpdate(WindowUpdate::new(
        StreamId::new(1),
        97
    ))));
}

#[test]
fn sec6_9_release_capacity_sends_window_update() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let mut input = headers(&mut e, 1, POST, false);
    input.extend_from_slice(&data(1, &[0; 16_384], false));
    input.extend_from_slice(&data(1, &[0; 16_384], false));
    s.handle_bytes(&mut input).unwrap();
    s.release_capacity(StreamId::new(1), 30_000);
    assert!(sent(&mut s).is_empty(), "below half a window: batched");
    s.release_capacity(StreamId::new(1), 2_768);
    assert_eq!(
        sent(&mut s),
        vec![Frame::WindowUpdate(WindowUpdate::new(
            StreamId::new(1),
            32_768
        ))]
    );
}

#[test]
fn sec6_9_1_window_update_overflow_connection() {
    let mut s = server();
    let input = enc(WindowUpdate::new(StreamId::ZERO, MAX_WINDOW_SIZE));
    let e = expect_conn_error(&mut s, input, Reason::FLOW_CONTROL_ERROR);
    assert_eq!(e.kind, ConnErrorKind::WindowOverflow);
}

#[test]
fn sec6_9_1_window_update_overflow_stream() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let mut input = headers(&mut e, 1, POST, false);
    input.extend_from_slice(&enc(WindowUpdate::new(StreamId::new(1), MAX_WINDOW_SIZE)));
    expect_stream_error(&mut s, input, 1, Reason::FLOW_CONTROL_ERROR);
}

#[test]
fn sec6_9_2_initial_window_change_overflow() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let mut input = headers(&mut e, 1, POST, false);
    input.extend_from_slice(&enc(WindowUpdate::new(
        StreamId::new(1),
        MAX_WINDOW_SIZE - DEFAULT_WINDOW,
    )));
    s.handle_bytes(&mut input).unwrap();
    let settings = enc(frame::Settings {
        initial_window_size: Some(DEFAULT_WINDOW + 1),
        ..Default::default()
    });
    expect_conn_error(&mut s, settings, Reason::FLOW_CONTROL_ERROR);
}

#[test]
fn sec6_9_zero_increment_on_stream_is_stream_error() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let mut input = headers(&mut e, 1, POST, false);
    let mut wu = BytesMut::new();
    Head::new(frame::Kind::WindowUpdate, 0, StreamId::new(1), 4).encode(&mut wu);
    wu.extend_from_slice(&[0, 0, 0, 0]);
    input.extend_from_slice(&wu);
    expect_stream_error(&mut s, input, 1, Reason::PROTOCOL_ERROR);
}

// ------------------------------------------------------------------ section 8 messages

#[test]
fn sec8_2_1_uppercase_field_name() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let input = headers(
        &mut e,
        1,
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            ("X-Up", "1"),
        ],
        true,
    );
    expect_stream_error(&mut s, input, 1, Reason::PROTOCOL_ERROR);
    assert_eq!(s.counters().malformed, 1);
    assert!(
        events(&mut s).is_empty(),
        "a refused request never reaches the application"
    );
}

#[test]
fn sec8_2_2_connection_header() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let mut f = GET.to_vec();
    f.push(("connection", "keep-alive"));
    expect_stream_error(
        &mut s,
        headers(&mut e, 1, &f, true),
        1,
        Reason::PROTOCOL_ERROR,
    );
}

#[test]
fn sec8_3_1_missing_path() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let input = headers(&mut e, 1, &[(":method", "GET"), (":scheme", "https")], true);
    expect_stream_error(&mut s, input, 1, Reason::PROTOCOL_ERROR);
}

#[test]
fn sec8_3_2_response_without_status() {
    let mut c = client();
    let id = c.open_stream().unwrap();
    c.send_headers(id, fields(GET), true).unwrap();
    sent(&mut c);
    let mut e = hpack::Encoder::new();
    expect_stream_error(
        &mut c,
        headers(&mut e, 1, &[("server", "x")], true),
        1,
        Reason::PROTOCOL_ERROR,
    );
    assert!(matches!(
        events(&mut c).as_slice(),
        [Event::Reset {
            reason: Reason::PROTOCOL_ERROR,
            remote: false,
            ..
        }]
    ));
}

#[test]
fn sec8_1_trailers_without_end_stream() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let mut input = headers(&mut e, 1, POST, false);
    input.extend_from_slice(&headers(&mut e, 1, &[("x-trailer", "1")], false));
    expect_stream_error(&mut s, input, 1, Reason::PROTOCOL_ERROR);
}

#[test]
fn sec8_1_trailers_delivered() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let mut input = headers(&mut e, 1, POST, false);
    input.extend_from_slice(&data(1, b"body", false));
    input.extend_from_slice(&headers(&mut e, 1, &[("x-trailer", "1")], true));
    s.handle_bytes(&mut input).unwrap();
    let ev = events(&mut s);
    assert_eq!(
        ev[2],
        Event::Trailers {
            stream: StreamId::new(1),
            fields: [("x-trailer", "1")].into_iter().collect()
        }
    );
    assert_eq!(
        s.stream_state(StreamId::new(1)),
        Some(StreamState::HalfClosedRemote)
    );
}

#[test]
fn sec8_1_1_data_beyond_content_length() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let mut f = POST.to_vec();
    f.push(("content-length", "3"));
    let mut input = headers(&mut e, 1, &f, false);
    input.extend_from_slice(&data(1, b"four", false));
    expect_stream_error(&mut s, input, 1, Reason::PROTOCOL_ERROR);
}

#[test]
fn sec8_1_1_head_response_content_length_without_body() {
    let mut c = client();
    let id = c.open_stream().unwrap();
    c.send_headers(
        id,
        fields(&[(":method", "HEAD"), (":scheme", "https"), (":path", "/")]),
        true,
    )
    .unwrap();
    sent(&mut c);
    let mut e = hpack::Encoder::new();
    let mut input = headers(
        &mut e,
        1,
        &[(":status", "200"), ("content-length", "1234")],
        true,
    );
    c.handle_bytes(&mut input).unwrap();
    assert!(sent(&mut c).is_empty());
    assert!(matches!(
        events(&mut c).as_slice(),
        [Event::Headers {
            end_stream: true,
            ..
        }]
    ));
}

// ------------------------------------------------------------------ mitigations

#[test]
fn mitigation_hpack_bomb_header_list_too_large() {
    let mut s = server_with(Config {
        max_header_list_size: 200,
        ..Config::default()
    });
    let mut e = hpack::Encoder::new();
    let big: &'static str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut f = GET.to_vec();
    f.push(("x-big", big));
    f.push(("x-big2", big));
    let mut input = headers(&mut e, 1, &f, true);
    // The connection stays usable: the next request decodes fine.
    input.extend_from_slice(&headers(&mut e, 3, GET, true));
    expect_stream_error(&mut s, input, 1, Reason::PROTOCOL_ERROR);
    assert_eq!(s.counters().header_list_too_large, 1);
    let ev = events(&mut s);
    assert!(matches!(&ev[..], [Event::Headers { stream, .. }] if *stream == StreamId::new(3)));
}

#[test]
fn mitigation_rapid_reset() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let mut input = BytesMut::new();
    let max = Config::default().max_rapid_resets;
    for i in 0..=max {
        let id = 2 * i + 1;
        input.extend_from_slice(&headers(&mut e, id, GET, false));
        input.extend_from_slice(&enc(RstStream::new(StreamId::new(id), Reason::CANCEL)));
    }
    let err = expect_conn_error(&mut s, input, Reason::ENHANCE_YOUR_CALM);
    assert_eq!(err.kind, ConnErrorKind::RapidReset);
    assert_eq!(s.counters().rapid_reset, 1);
    assert_eq!(s.counters().resets_received, u64::from(max) + 1);
}

#[test]
fn mitigation_rapid_reset_window_forgets_old_resets() {
    let cfg = Config {
        max_rapid_resets: 5,
        rapid_reset_window: 10,
        ..Config::default()
    };
    let mut s = server_with(cfg);
    let mut e = hpack::Encoder::new();
    // 5 resets in every 10 streams never exceeds the limit.
    for i in 0..100u32 {
        let id = 2 * i + 1;
        let mut input = headers(&mut e, id, GET, false);
        if i % 2 == 0 {
            input.extend_from_slice(&enc(RstStream::new(StreamId::new(id), Reason::CANCEL)));
        } else {
            s.handle_bytes(&mut input).unwrap();
            s.send_headers(StreamId::new(id), fields(&[(":status", "200")]), true)
                .unwrap();
            input = data(id, b"", true);
        }
        s.handle_bytes(&mut input).unwrap();
        sent(&mut s);
    }
    assert!(s.error().is_none());
}

#[test]
fn mitigation_ping_flood() {
    let mut s = server();
    let mut input = BytesMut::new();
    for _ in 0..=Config::default().max_pending_acks {
        input.extend_from_slice(&enc(Ping::new([1; 8])));
    }
    let e = expect_conn_error(&mut s, input, Reason::ENHANCE_YOUR_CALM);
    assert_eq!(e.kind, ConnErrorKind::AckFlood);
    assert_eq!(s.counters().ack_flood, 1);
}

#[test]
fn mitigation_ping_answered_when_drained() {
    let mut s = server();
    for _ in 0..1000 {
        let mut input = enc(Ping::new([1; 8]));
        s.handle_bytes(&mut input).unwrap();
        assert_eq!(sent(&mut s), vec![Frame::Ping(Ping::pong([1; 8]))]);
    }
}

#[test]
fn mitigation_settings_flood() {
    let mut s = server();
    let mut input = BytesMut::new();
    for _ in 0..=Config::default().max_pending_acks {
        input.extend_from_slice(&enc(frame::Settings::default()));
    }
    let e = expect_conn_error(&mut s, input, Reason::ENHANCE_YOUR_CALM);
    assert_eq!(e.kind, ConnErrorKind::AckFlood);
}

#[test]
fn mitigation_empty_data_flood() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let mut input = headers(&mut e, 1, POST, false);
    for _ in 0..=Config::default().max_empty_data_frames {
        input.extend_from_slice(&data(1, b"", false));
    }
    let err = expect_conn_error(&mut s, input, Reason::ENHANCE_YOUR_CALM);
    assert_eq!(err.kind, ConnErrorKind::EmptyDataFlood);
    assert_eq!(s.counters().empty_data_flood, 1);
}

#[test]
fn sec6_8_frames_on_streams_above_our_goaway_are_ignored() {
    let mut s = server();
    let mut e = hpack::Encoder::new();
    let mut input = headers(&mut e, 1, POST, false);
    s.handle_bytes(&mut input).unwrap();
    s.go_away(Reason::NO_ERROR);
    assert!(
        matches!(sent(&mut s).as_slice(), [Frame::GoAway(g)] if g.last_stream_id == StreamId::new(1))
    );
    let mut late = headers(&mut e, 3, POST, false);
    late.extend_from_slice(&data(3, b"ignored", true));
    late.extend_from_slice(&data(1, b"kept", true));
    s.handle_bytes(&mut late).unwrap();
    assert!(sent(&mut s).is_empty());
    let ev = events(&mut s);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(
        matches!(&ev[1], Event::Data { stream, end_stream: true, .. } if *stream == StreamId::new(1))
    );
}

#[test]
fn goaway_with_error_closes() {
    let mut s = server();
    s.go_away(Reason::INTERNAL_ERROR);
    assert!(
        matches!(sent(&mut s).as_slice(), [Frame::GoAway(g)] if g.reason == Reason::INTERNAL_ERROR)
    );
    assert_eq!(s.error().map(|e| e.kind), Some(ConnErrorKind::Closed));
}

proptest! {
    #[test]
    fn prop_arbitrary_input_never_panics(input in proptest::collection::vec(any::<u8>(), 0..2048),
                                         split in 0usize..2048) {
        let mut s = server();
        let mut all = BytesMut::from(&input[..]);
        let tail = all.split_off(split.min(all.len()));
        let mut a = all;
        let r = s.handle_bytes(&mut a);
        if r.is_ok() {
            a.extend_from_slice(&tail);
            let _ = s.handle_bytes(&mut a);
        }
        let mut out = BytesMut::new();
        s.poll_transmit(&mut out);
        while s.poll_event().is_some() {}
    }

    #[test]
    fn prop_arbitrary_frames_never_panic(frames in proptest::collection::vec(
        (0u8..11, any::<u8>(), 0u32..8, proptest::collection::vec(any::<u8>(), 0..40)), 0..40)) {
        let mut s = server();
        let mut c = client();
        let id = c.open_stream().unwrap();
        c.send_headers(id, fields(GET), false).unwrap();
        for conn in [&mut s, &mut c] {
            let mut input = BytesMut::new();
            for (kind, fl, stream, payload) in &frames {
                Head::new(frame::Kind::from_u8(*kind), *fl, StreamId::new(*stream), payload.len() as u32).encode(&mut input);
                input.extend_from_slice(payload);
            }
            let _ = conn.handle_bytes(&mut input);
            let mut out = BytesMut::new();
            conn.poll_transmit(&mut out);
        }
    }
}

#[test]
fn mitigation_hpack_bomb_indexed_references() {
    let mut s = server();
    // RFC 7541 by hand: a literal with incremental indexing inserts a 3 000 octet value
    // (section 6.2.1), then nine one-octet references to dynamic index 62 (section 6.1)
    // each decode to 3 KB: 30 KB from a 3 KB block.
    let mut blk = vec![0x82, 0x87, 0x84, 0x40, 6];
    blk.extend_from_slice(b"x-bomb");
    blk.extend_from_slice(&[0x7f, 0xb9, 0x16]); // 127 + 2873 = 3000
    blk.extend_from_slice(&[b'a'; 3000]);
    blk.extend_from_slice(&[0xbe; 9]);
    assert!(blk.len() < 3100);
    let mut input = BytesMut::new();
    Headers::new(StreamId::new(1), Bytes::from(blk), true).encode(&mut input);
    // Stream 3 references the entry once: 3 KB fits the 16 KiB list limit.
    Headers::new(
        StreamId::new(3),
        Bytes::from_static(&[0x82, 0x87, 0x84, 0xbe]),
        true,
    )
    .encode(&mut input);
    expect_stream_error(&mut s, input, 1, Reason::PROTOCOL_ERROR);
    assert_eq!(s.counters().header_list_too_large, 1);
    // HPACK stayed in sync: stream 3 decodes, with the indexed field.
    let ev = events(&mut s);
    let [Event::Headers { stream, fields, .. }] = &ev[..] else {
        panic!("{ev:?}")
    };
    assert_eq!(*stream, StreamId::new(3));
    assert_eq!(list(fields)[3].0, "x-bomb");
    assert_eq!(list(fields)[3].1.len(), 3000);
}

/// Runs `bodies.len()` concurrent POSTs with echo responses through a pair and checks every
/// byte arrives, whatever the windows and frame sizes.
fn echo_exchange(bodies: &[usize], window: u32, conn_window: u32, frame_size: u32) {
    let cfg = Config {
        initial_window_size: window,
        connection_window_size: conn_window,
        max_frame_size: frame_size,
        ..Config::default()
    };
    let mut p = Pair::new(cfg, cfg);
    let mut pending: Vec<(StreamId, Bytes)> = Vec::new();
    for &n in bodies {
        let id = p.client.open_stream().unwrap();
        p.client.send_headers(id, fields(POST), false).unwrap();
        pending.push((id, body(n)));
    }
    let expect: HashMap<StreamId, Bytes> = pending.iter().cloned().collect();
    let mut server_got: HashMap<StreamId, Vec<u8>> = HashMap::new();
    let mut replies: Vec<(StreamId, Bytes)> = Vec::new();
    let mut client_got: HashMap<StreamId, Vec<u8>> = HashMap::new();
    let mut done = 0;
    for _ in 0..100_000 {
        for (id, rest) in &mut pending {
            if !rest.is_empty() || p.client.stream_state(*id) == Some(StreamState::Open) {
                p.client.send_data(*id, rest, true).unwrap();
            }
        }
        pending.retain(|(id, _)| p.client.stream_state(*id) == Some(StreamState::Open));
        for (id, rest) in &mut replies {
            p.server.send_data(*id, rest, true).unwrap();
        }
        replies.retain(|(_, rest)| !rest.is_empty());
        p.step();
        while let Some(e) = p.server_events.pop_front() {
            if let Event::Data {
                stream,
                data,
                end_stream,
            } = e
            {
                server_got
                    .entry(stream)
                    .or_default()
                    .extend_from_slice(&data);
                p.server.release_capacity(stream, data.len() as u32);
                if end_stream {
                    p.server
                        .send_headers(stream, fields(&[(":status", "200")]), false)
                        .unwrap();
                    let echo = Bytes::from(server_got.remove(&stream).unwrap_or_default());
                    let mut echo2 = echo.clone();
                    p.server.send_data(stream, &mut echo2, true).unwrap();
                    if !echo2.is_empty() {
                        replies.push((stream, echo2));
                    }
                }
            }
        }
        while let Some(e) = p.client_events.pop_front() {
            match e {
                Event::Data {
                    stream,
                    data,
                    end_stream,
                } => {
                    client_got
                        .entry(stream)
                        .or_default()
                        .extend_from_slice(&data);
                    p.client.release_capacity(stream, data.len() as u32);
                    if end_stream {
                        assert_eq!(&client_got[&stream][..], &expect[&stream][..]);
                        done += 1;
                    }
                }
                Event::Headers { .. } | Event::WindowOpened(_) => {}
                other => panic!("{other:?}"),
            }
        }
        if done == bodies.len() {
            assert_eq!(p.client.active_streams(), 0);
            assert_eq!(p.server.active_streams(), 0);
            return;
        }
    }
    panic!("stalled: {done} of {} done", bodies.len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn prop_pair_echo_never_stalls_or_corrupts(
        bodies in proptest::collection::vec(0usize..200_000, 1..6),
        window in prop_oneof![Just(DEFAULT_WINDOW), 65_535u32..300_000],
        conn_window in prop_oneof![Just(DEFAULT_WINDOW), 65_535u32..1_000_000],
        frame_size in prop_oneof![Just(16_384u32), 16_384u32..100_000],
    ) {
        echo_exchange(&bodies, window, conn_window, frame_size);
    }
}

#[test]
fn vectored_transmit_shares_data_payloads() {
    let mut c = client();
    let id = c.open_stream().unwrap();
    c.send_headers(id, fields(POST), false).unwrap();
    let payload = body(40_000);
    let mut rest = payload.clone();
    assert_eq!(c.send_data(id, &mut rest, true).unwrap(), 40_000);
    c.ping([9; 8]);
    let mut pieces = Vec::new();
    let n = c.poll_transmit_vectored(&mut pieces);
    assert!(!c.wants_write());
    let range = payload.as_ptr() as usize..payload.as_ptr() as usize + payload.len();
    let shared: usize = pieces
        .iter()
        .filter(|p| range.contains(&(p.as_ptr() as usize)))
        .map(Bytes::len)
        .sum();
    assert_eq!(
        shared, 40_000,
        "every DATA payload is a slice of the caller's buffer"
    );
    let mut wire = BytesMut::new();
    for p in &pieces {
        wire.extend_from_slice(p);
    }
    assert_eq!(wire.len(), n);
    let mut frames = Vec::new();
    while let Some(f) = frame::decode(&mut wire, frame::MAX_MAX_FRAME_SIZE).unwrap() {
        frames.push(f);
    }
    let mut got = Vec::new();
    for f in &frames[1..4] {
        let Frame::Data(d) = f else { panic!("{f:?}") };
        got.extend_from_slice(&d.data);
    }
    assert_eq!(got, payload);
    assert!(matches!(&frames[3], Frame::Data(d) if d.end_stream));
    assert_eq!(frames[4], Frame::Ping(Ping::new([9; 8])));
}

#[test]
fn sec5_1_2_client_assumes_100_streams_until_the_server_settings_arrive() {
    let mut c = Connection::new(Role::Client, Config::default());
    for _ in 0..INITIAL_MAX_SEND_STREAMS {
        let id = c.open_stream().expect("within the initial limit");
        c.send_headers(id, fields(&[(":method", "GET")]), true)
            .unwrap();
    }
    assert!(!c.can_open_stream());
    assert_eq!(c.open_stream(), Err(SendError::StreamLimit));
    // The server allows 500: more streams may open.
    let mut input = enc(frame::Settings {
        max_concurrent_streams: Some(500),
        ..frame::Settings::default()
    });
    c.handle_bytes(&mut input).unwrap();
    assert!(c.can_open_stream());
    assert!(c.open_stream().is_ok());
}

/// A field block within the peer's frame size goes out as one HEADERS frame with END_HEADERS
/// (and END_STREAM when asked); a larger one as HEADERS + CONTINUATION frames within it, whose
/// fragments together decode to the fields sent.
#[test]
fn sec6_10_sent_field_block_is_split_only_over_the_frame_size() {
    let mut c = client();
    let id = c.open_stream().unwrap();
    c.send_headers(id, fields(GET), true).unwrap();
    let frames = sent(&mut c);
    let [Frame::Headers(h)] = &frames[..] else {
        panic!("{frames:?}")
    };
    assert!(h.end_headers && h.end_stream);
    let mut dec = hpack::Decoder::default();
    let mut decoded = Fields::new();
    dec.decode(&h.fragment, usize::MAX, &mut decoded).unwrap();
    assert!(decoded.iter().eq(fields(GET)));

    let big = "v".repeat(40_000);
    let id = c.open_stream().unwrap();
    let list = [
        (&b":method"[..], &b"POST"[..]),
        (b":scheme", b"https"),
        (b":path", b"/upload"),
        (b":authority", b"example.com"),
        (b"x-big", big.as_bytes()),
    ];
    c.send_headers(id, list, false).unwrap();
    let frames = sent(&mut c);
    let [Frame::Headers(h), rest @ ..] = &frames[..] else {
        panic!("{frames:?}")
    };
    assert!(!h.end_headers && !h.end_stream);
    assert_eq!(h.fragment.len(), frame::DEFAULT_MAX_FRAME_SIZE as usize);
    let mut block = h.fragment.to_vec();
    for (i, f) in rest.iter().enumerate() {
        let Frame::Continuation(cont) = f else {
            panic!("{f:?}")
        };
        assert_eq!(cont.end_headers, i == rest.len() - 1);
        assert!(cont.fragment.len() <= frame::DEFAULT_MAX_FRAME_SIZE as usize);
        block.extend_from_slice(&cont.fragment);
    }
    let mut decoded = Fields::new();
    dec.decode(&block, usize::MAX, &mut decoded).unwrap();
    assert!(decoded.iter().eq(list));
}

#[test]
fn buffered_counts_queued_octets_until_they_are_handed_out() {
    let mut p = Pair::new(Config::default(), Config::default());
    p.drive();
    let id = p.client.open_stream().unwrap();
    p.client.send_headers(id, fields(POST), false).unwrap();
    let mut out = BytesMut::new();
    p.client.poll_transmit(&mut out);
    assert_eq!(p.client.buffered(), 0);
    // A small payload is copied into the frame buffer, a large one queued as a slice.
    p.client.send_data(id, &mut body(100), false).unwrap();
    assert_eq!(p.client.buffered(), 9 + 100);
    p.client.send_data(id, &mut body(20_000), false).unwrap();
    let frames = 20_000usize.div_ceil(16_384);
    assert_eq!(p.client.buffered(), 9 + 100 + frames * 9 + 20_000);
    let mut pieces = Vec::new();
    let n = p.client.poll_transmit_vectored(&mut pieces);
    assert_eq!(n, 9 + 100 + frames * 9 + 20_000);
    assert_eq!(p.client.buffered(), 0);
}
