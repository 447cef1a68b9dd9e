//! Codec micro-benchmarks for `protocols/`: HTTP/1 head parse (against `httparse` alone) and
//! re-serialisation, chunked body decoding, HPACK decode and encode, HTTP/2 frame decoding.
//!
//! Owns: fixed, realistic inputs and a small timing loop (`std::time` + `black_box`, no
//! criterion). Each case first checks that the codec gives the expected answer on its input, so
//! a benchmark never measures an error path by accident. Does not: assert timings (DESIGN.md:
//! performance is measured, never asserted) or compare against other proxies (`bench/run.sh`).
//!
//! `cargo bench` measures each case for about `MICRO_SECS` seconds (default 1) and prints
//! ns/item, items/s and MB/s (input bytes per second). `cargo test --benches` runs every case a
//! few times only, as a smoke test.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use protocols::http1::{
    self, BodyDecoder, BodyEvent, BodyFraming, Limits, MethodKind, RequestParser, ResponseParser,
    encode,
};
use protocols::http2::frame::{self, Frame, StreamId};
use protocols::http2::Fields;
use protocols::http2::hpack::{Decoder, Encoder};

/// A browser-like GET through a proxy: 13 header fields, about 640 bytes.
const REQUEST: &[u8] = b"GET /api/v1/users/12345/profile?fields=name,email&lang=en HTTP/1.1\r\n\
Host: api.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/account/settings\r\n\
Cookie: session=8f2d1c0b9a7e6d5c4b3a2f1e0d9c8b7a; theme=dark; consent=1\r\n\
Connection: keep-alive\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
X-Request-Id: 5b3c1e9a-4f2d-4c7b-9e1a-2d3f4c5b6a7e\r\n\
X-Forwarded-For: 203.0.113.7\r\n\r\n";

/// A typical upstream response head (body not included).
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.22.1\r\n\
Date: Wed, 25 Nov 2026 12:00:00 GMT\r\n\
Content-Type: application/json; charset=utf-8\r\n\
Content-Length: 1234\r\n\
Connection: keep-alive\r\n\
Cache-Control: private, max-age=0, no-cache\r\n\
Vary: Accept-Encoding\r\n\
X-Content-Type-Options: nosniff\r\n\r\n";

/// One timed case: input bytes and items (heads, blocks, frames) processed per iteration.
struct Case {
    name: &'static str,
    bytes: usize,
    items: usize,
}

/// Runs `f` repeatedly: calibrates a batch size to about 10 ms, then takes the best of several
/// batches (the least disturbed by other load on the machine).
fn run(case: &Case, budget: Duration, mut f: impl FnMut()) {
    f(); // warm caches and allocator
    let mut batch = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        if t.elapsed() >= Duration::from_millis(10) || batch >= 1 << 30 {
            break;
        }
        batch *= 2;
    }
    let start = Instant::now();
    let mut best = f64::INFINITY;
    let mut rounds = 0;
    while rounds < 3 || start.elapsed() < budget {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() / batch as f64);
        rounds += 1;
        if budget.is_zero() {
            break;
        }
    }
    let per_item_ns = best * 1e9 / case.items as f64;
    let items_per_s = case.items as f64 / best;
    let mb_per_s = case.bytes as f64 / best / 1e6;
    println!(
        "{:<44} {:>10.1} ns/item {:>12.0} items/s {:>9.1} MB/s",
        case.name, per_item_ns, items_per_s, mb_per_s
    );
}

/// Refills `buf` with `input` (the parser splits the head off, so every round starts afresh).
fn refill(buf: &mut BytesMut, input: &[u8]) {
    buf.clear();
    buf.extend_from_slice(input);
}

fn h1_cases(budget: Duration) {
    let limits = Limits::default();
    let mut buf = BytesMut::with_capacity(4096);

    // Sanity: the inputs parse as expected.
    refill(&mut buf, REQUEST);
    let head = http1::parse_request(&mut buf, &limits).ok().flatten();
    let head = head.expect("REQUEST parses");
    assert_eq!(head.header_count(), 13);
    assert_eq!(head.authority(), b"api.example.com");
    refill(&mut buf, RESPONSE);
    let resp = http1::parse_response_for(&mut buf, MethodKind::Other, &limits)
        .ok()
        .flatten();
    assert_eq!(
        resp.expect("RESPONSE parses").framing(),
        BodyFraming::Length(1234)
    );

    let case = |name| Case {
        name,
        bytes: REQUEST.len(),
        items: 1,
    };
    run(&case("h1 request head: httparse alone"), budget, || {
        refill(&mut buf, REQUEST);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        let status = req.parse(black_box(&buf[..]));
        assert!(matches!(status, Ok(httparse::Status::Complete(_))));
        black_box(&req);
    });
    let mut parser = RequestParser::new();
    run(&case("h1 request head: RequestParser"), budget, || {
        refill(&mut buf, REQUEST);
        let head = parser.parse(black_box(&mut buf), &limits);
        black_box(head.ok().flatten().expect("parses"));
    });
    let mut out = BytesMut::with_capacity(4096);
    run(
        &case("h1 request head: parse + re-serialise"),
        budget,
        || {
            refill(&mut buf, REQUEST);
            let head = parser.parse(black_box(&mut buf), &limits);
            let head = head.ok().flatten().expect("parses");
            out.clear();
            encode::request_line(&mut out, head.method(), head.target());
            for (name, value) in head.headers() {
                encode::header(&mut out, name, value);
            }
            encode::end_head(&mut out);
            black_box(&out);
        },
    );
    let mut rparser = ResponseParser::new();
    run(
        &Case {
            name: "h1 response head: ResponseParser",
            bytes: RESPONSE.len(),
            items: 1,
        },
        budget,
        || {
            refill(&mut buf, RESPONSE);
            let head = rparser.parse(black_box(&mut buf), MethodKind::Other, &limits);
            black_box(head.ok().flatten().expect("parses"));
        },
    );
}

/// A chunked body of `total` bytes in chunks of `chunk` bytes, then the last chunk.
fn chunked_body(total: usize, chunk: usize) -> Vec<u8> {
    let mut out = BytesMut::new();
    let data = vec![b'x'; chunk];
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk);
        encode::chunk_head(&mut out, n);
        out.extend_from_slice(&data[..n]);
        out.extend_from_slice(encode::CHUNK_END);
        left -= n;
    }
    out.extend_from_slice(encode::LAST_CHUNK);
    out.to_vec()
}

/// Decodes a whole chunked body; returns the number of data bytes.
fn decode_chunked(buf: &mut BytesMut) -> usize {
    let mut dec = BodyDecoder::new(BodyFraming::Chunked);
    let mut n = 0;
    loop {
        match dec.decode(buf) {
            Ok(BodyEvent::Data(d)) => n += d.len(),
            Ok(BodyEvent::End) => return n,
            Ok(BodyEvent::Trailers(_)) => {}
            Ok(BodyEvent::NeedMore) | Err(_) => panic!("complete body decodes"),
        }
    }
}

fn chunked_cases(budget: Duration) {
    let mut buf = BytesMut::with_capacity(1 << 20);
    for (name, total, chunk) in [
        ("h1 chunked decode: 64 KiB in 4 KiB chunks", 65536, 4096),
        ("h1 chunked decode: 4 KiB in 64 B chunks", 4096, 64),
    ] {
        let body = chunked_body(total, chunk);
        refill(&mut buf, &body);
        assert_eq!(decode_chunked(&mut buf), total);
        let case = Case {
            name,
            bytes: body.len(),
            items: total.div_ceil(chunk),
        };
        run(&case, budget, || {
            refill(&mut buf, &body);
            black_box(decode_chunked(black_box(&mut buf)));
        });
    }
}

/// Header lists of a browser's successive requests on one connection (what HPACK is good at).
fn request_lists() -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
    (0..16)
        .map(|i| {
            let mut fields: Vec<(Vec<u8>, Vec<u8>)> = vec![
                (b":method".to_vec(), b"GET".to_vec()),
                (b":scheme".to_vec(), b"https".to_vec()),
                (b":authority".to_vec(), b"api.example.com".to_vec()),
                (
                    b":path".to_vec(),
                    format!("/static/app/chunk-{i}.js?v=20261125").into_bytes(),
                ),
            ];
            for line in REQUEST.split(|&b| b == b'\n').skip(2) {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let Some(colon) = line.iter().position(|&b| b == b':') else {
                    continue;
                };
                let name = line[..colon].to_ascii_lowercase();
                if name == b"connection" || name == b"x-request-id" {
                    continue;
                }
                fields.push((name, line[colon + 2..].to_vec()));
            }
            fields.push((
                b"x-request-id".to_vec(),
                format!("5b3c1e9a-4f2d-4c7b-9e1a-{i:012}").into_bytes(),
            ));
            fields
        })
        .collect()
}

fn encode_all(lists: &[Vec<(Vec<u8>, Vec<u8>)>]) -> Vec<Bytes> {
    let mut enc = Encoder::new();
    lists
        .iter()
        .map(|fields| {
            let mut dst = BytesMut::new();
            enc.encode(
                fields.iter().map(|(n, v)| (&n[..], &v[..], false)),
                &mut dst,
            );
            dst.freeze()
        })
        .collect()
}

fn hpack_cases(budget: Duration) {
    let lists = request_lists();
    let blocks = encode_all(&lists);
    let encoded: usize = blocks.iter().map(Bytes::len).sum();
    let plain: usize = lists.iter().flatten().map(|(n, v)| n.len() + v.len()).sum();

    // Sanity: the blocks decode back to the lists.
    let mut dec = Decoder::new(4096);
    for (block, fields) in blocks.iter().zip(&lists) {
        let mut got = Fields::new();
        dec.decode(block, 1 << 20, &mut got).expect("decodes");
        let got: Vec<_> = got.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        assert_eq!(&got, fields);
    }

    run(
        &Case {
            name: "hpack decode: 16 request blocks (one conn)",
            bytes: encoded,
            items: blocks.len(),
        },
        budget,
        || {
            let mut dec = Decoder::new(4096);
            for block in &blocks {
                let mut fields = Fields::with_capacity(512, 16);
                let r = dec.decode(black_box(block), 1 << 20, &mut fields);
                assert!(r.is_ok());
                black_box(fields.byte_len());
            }
        },
    );
    let mut dst = BytesMut::with_capacity(8192);
    run(
        &Case {
            name: "hpack encode: 16 request lists (plain MB/s)",
            bytes: plain,
            items: lists.len(),
        },
        budget,
        || {
            let mut enc = Encoder::new();
            for fields in &lists {
                dst.clear();
                enc.encode(
                    fields.iter().map(|(n, v)| (&n[..], &v[..], false)),
                    black_box(&mut dst),
                );
            }
            black_box(&dst);
        },
    );
}

/// A server's typical frame mix: SETTINGS, WINDOW_UPDATE, then per stream a HEADERS block and
/// DATA frames, plus a PING.
fn frame_stream() -> (Vec<u8>, usize) {
    let mut out = BytesMut::new();
    let mut count = 0;
    let settings = frame::Settings {
        max_concurrent_streams: Some(100),
        initial_window_size: Some(1 << 20),
        ..Default::default()
    };
    Frame::Settings(settings).encode(&mut out);
    Frame::WindowUpdate(frame::WindowUpdate {
        stream_id: StreamId::ZERO,
        increment: 1 << 24,
    })
    .encode(&mut out);
    count += 2;
    let blocks = encode_all(&request_lists());
    let payload = vec![0x5au8; 16384];
    for (i, block) in blocks.iter().enumerate() {
        let id = StreamId::new(1 + 2 * i as u32);
        Frame::Headers(frame::Headers::new(id, block.clone(), false)).encode(&mut out);
        for last in [false, false, false, true] {
            Frame::Data(frame::Data::new(id, Bytes::from(payload.clone()), last)).encode(&mut out);
        }
        count += 5;
    }
    Frame::Ping(frame::Ping {
        ack: false,
        payload: *b"ringway!",
    })
    .encode(&mut out);
    count += 1;
    (out.to_vec(), count)
}

fn decode_frames(buf: &mut BytesMut) -> usize {
    let mut n = 0;
    while let Ok(Some(f)) = frame::decode(buf, frame::DEFAULT_MAX_FRAME_SIZE) {
        black_box(&f);
        n += 1;
    }
    n
}

fn frame_cases(budget: Duration) {
    let (wire, count) = frame_stream();
    let mut buf = BytesMut::with_capacity(wire.len());
    refill(&mut buf, &wire);
    assert_eq!(decode_frames(&mut buf), count);
    assert!(buf.is_empty());
    run(
        &Case {
            name: "h2 frame decode: mixed, 16 KiB DATA",
            bytes: wire.len(),
            items: count,
        },
        budget,
        || {
            refill(&mut buf, &wire);
            black_box(decode_frames(black_box(&mut buf)));
        },
    );
    // Header-only frames: the per-frame overhead without the payload copy into `buf`.
    let mut small = BytesMut::new();
    for i in 0..64u32 {
        Frame::WindowUpdate(frame::WindowUpdate {
            stream_id: StreamId::new(2 * i + 1),
            increment: 65535,
        })
        .encode(&mut small);
    }
    let small = small.to_vec();
    run(
        &Case {
            name: "h2 frame decode: WINDOW_UPDATE x64",
            bytes: small.len(),
            items: 64,
        },
        budget,
        || {
            refill(&mut buf, &small);
            black_box(decode_frames(black_box(&mut buf)));
        },
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not: then one quick pass.
    let measuring = std::env::args().any(|a| a == "--bench");
    let budget = if measuring {
        let secs: f64 = std::env::var("MICRO_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1.0);
        Duration::from_secs_f64(secs)
    } else {
        Duration::ZERO
    };
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |group: &str| filter.is_empty() || filter.iter().any(|f| group.contains(f));
    if !measuring {
        println!("(smoke run: `cargo bench` to measure)");
    }
    if wanted("h1") {
        h1_cases(budget);
    }
    if wanted("chunked") {
        chunked_cases(budget);
    }
    if wanted("hpack") {
        hpack_cases(budget);
    }
    if wanted("h2frame") {
        frame_cases(budget);
    }
}
