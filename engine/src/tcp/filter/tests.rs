//! The chain's decisions in memory, then the relay's copy path end to end: a proxy started
//! from TOML with the test-only probes (`test_checksum`, `test_frames`), real loopback
//! sockets, on both io drivers.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use super::probe::{Fnv, Report, take_report};
use super::*;
use crate::config::NetworkFilterConfig as C;

#[test]
fn needs_fold_into_a_path() {
    let ts = TcpStats::default();
    assert_eq!(Chain::empty().path(Dir::ToUpstream), Path::Splice(u64::MAX));
    let counts = Chain::new(&[C::ByteCounter, C::ByteCounter], &ts, &[], 0);
    assert_eq!(counts.path(Dir::ToUpstream), Path::Splice(u64::MAX));
    assert_eq!(counts.path(Dir::ToDownstream), Path::Splice(u64::MAX));
    let bytes = Chain::new(&[C::ByteCounter, C::TestChecksum], &ts, &[], 0);
    assert_eq!(bytes.path(Dir::ToUpstream), Path::Copy);
    assert_eq!(bytes.path(Dir::ToDownstream), Path::Copy);
    assert!(bytes.on_new_connection());
    bytes.on_close();
    // The frames probe reads a header (copy), then skips the body (splice, bounded).
    let frames = Chain::new(&[C::TestFrames, C::ByteCounter], &ts, &[], 0);
    assert!(frames.on_new_connection());
    assert_eq!(frames.path(Dir::ToUpstream), Path::Copy);
    assert_eq!(frames.path(Dir::ToDownstream), Path::Splice(u64::MAX));
    frames.on_bytes(Dir::ToUpstream, &[0, 1, 0, 4]);
    assert_eq!(frames.path(Dir::ToUpstream), Path::Splice(0x1_0000));
    frames.on_passed(Dir::ToUpstream, 0x8000);
    assert_eq!(frames.path(Dir::ToUpstream), Path::Splice(0x8000));
    // A rest shorter than a copy buffer is copied along.
    frames.on_passed(Dir::ToUpstream, 0x4001);
    assert_eq!(frames.path(Dir::ToUpstream), Path::Copy);
    frames.on_bytes(Dir::ToUpstream, &[0; 0x3fff]);
    assert_eq!(frames.path(Dir::ToUpstream), Path::Copy, "the next header");
    assert_eq!(ts.byte_counter_rx_bytes.get(), 0x1_0004);
    frames.on_close();
}

#[test]
fn one_chunk_is_split_between_headers_and_skipped_bodies() {
    let ts = TcpStats::default();
    let chain = Chain::new(&[C::TestFrames], &ts, &[], 0);
    assert!(chain.on_new_connection());
    // Three frames in one chunk (8-, 4- and 6-byte), the last header cut in two.
    let mut chunk = Vec::new();
    chunk.extend_from_slice(&8u32.to_be_bytes());
    chunk.extend_from_slice(b"body");
    chunk.extend_from_slice(&4u32.to_be_bytes());
    chunk.extend_from_slice(&[0, 0]);
    chain.on_bytes(Dir::ToUpstream, &chunk);
    assert_eq!(chain.path(Dir::ToUpstream), Path::Copy, "half a header");
    chain.on_bytes(Dir::ToUpstream, &[0, 6, b'x']);
    assert_eq!(
        chain.path(Dir::ToUpstream),
        Path::Copy,
        "1 byte to skip: copied"
    );
    chain.on_close();
    let mine =
        take_report(|r| matches!(r, Report::Frames { lengths, .. } if lengths == &[8, 4, 6]));
    assert_eq!(
        mine,
        Some(Report::Frames {
            lengths: vec![8, 4, 6],
            seen: 12,
            skipped: 5,
        })
    );
}

/// A backend echoing every connection until end of stream, then half-closing.
fn echo_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            thread::spawn(move || {
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = s.shutdown(Shutdown::Write);
            });
        }
    });
    addr
}

fn start(filters: &[&str], backend: SocketAddr, driver: crate::IoDriver) -> crate::Handle {
    let filters: String = filters
        .iter()
        .map(|f| format!("[[listeners.network_filters]]\nname = \"{f}\"\n"))
        .collect();
    let toml = format!(
        "workers = 1\n[admin]\naddress = \"127.0.0.1:0\"\n\
         [[listeners]]\nname = \"l\"\naddress = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"c\"\n\
         {filters}\
         [[clusters]]\nname = \"c\"\nendpoints = [\"{backend}\"]\n"
    );
    let cfg = crate::config::parse_str(&toml, "<test>").unwrap_or_else(|e| panic!("{e}"));
    crate::start(
        cfg,
        crate::StartOptions {
            driver,
            no_pinning: true,
        },
    )
    .unwrap()
}

/// One stat from the admin API's `/stats` (0 when absent).
fn stat(h: &crate::Handle, name: &str) -> i64 {
    let mut s = TcpStream::connect(h.admin().unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// Sends `data` through the proxy to the echo backend (writing on a thread while reading);
/// `pause_after` splits the writes there with a pause, so a header arrives in two reads.
/// Returns the checksum of what came back.
fn echo_through(proxy: SocketAddr, data: Vec<u8>, pause_after: &[usize]) -> Fnv {
    let s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut w = s.try_clone().unwrap();
    let cuts = pause_after.to_vec();
    let writer = thread::spawn(move || {
        let mut at = 0;
        for cut in cuts.into_iter().chain([data.len()]) {
            w.write_all(&data[at..cut]).unwrap();
            at = cut;
            thread::sleep(Duration::from_millis(30));
        }
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut r = s;
    let mut got = Fnv::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("{e}"),
        }
    }
    writer.join().unwrap();
    got
}

/// Deterministic bytes (xorshift), so corruption or reordering changes the checksum.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn drivers() -> Vec<crate::IoDriver> {
    let mut d = vec![crate::IoDriver::Legacy];
    if monoio::utils::detect_uring() {
        d.push(crate::IoDriver::IoUring);
    }
    d
}

/// Waits (bounded) for this test's probe report: connections report when they close.
fn report(pick: impl Fn(&Report) -> bool) -> Report {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(r) = take_report(&pick) {
            return r;
        }
        assert!(Instant::now() < deadline, "no report");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_filter_that_needs_bytes_sees_them_all_through_the_copy_path() {
    const N: usize = (3 << 20) + 7;
    let backend = echo_backend();
    let data = pattern(N, 11);
    let mut sent = Fnv::new();
    sent.update(&data);
    for driver in drivers() {
        let h = start(&["test_checksum", "byte_counter"], backend, driver);
        let got = echo_through(h.listener("l").unwrap(), data.clone(), &[]);
        assert_eq!(got, sent, "{driver:?}: every byte back, in order");
        let r = report(|r| matches!(r, Report::Checksum { up, .. } if up.1 == N as u64));
        assert_eq!(
            r,
            Report::Checksum {
                up: (sent.0, sent.1),
                down: (sent.0, sent.1),
            },
            "{driver:?}: the filter saw every byte both ways"
        );
        assert_eq!(stat(&h, "tcp.l.network_filter_copy_cx"), 1, "{driver:?}");
        assert_eq!(
            stat(&h, "tcp.l.network_filter_copy_bytes"),
            2 * N as i64,
            "{driver:?}"
        );
        assert_eq!(
            stat(&h, "tcp.l.splice_cx_total"),
            0,
            "{driver:?}: never spliced"
        );
        assert_eq!(stat(&h, "tcp.l.byte_counter.rx_bytes"), N as i64);
        assert_eq!(stat(&h, "tcp.l.byte_counter.tx_bytes"), N as i64);
        h.shutdown();
    }
}

#[test]
fn skipped_bodies_are_spliced_and_headers_copied() {
    let bodies = [1 << 20, 10, (2 << 20) + 3, 0, 300 * 1024];
    let backend = echo_backend();
    let mut data = Vec::new();
    let mut pauses = Vec::new();
    for (i, &b) in bodies.iter().enumerate() {
        if i == 2 {
            pauses.push(data.len() + 2); // this header arrives in two reads
        }
        data.extend_from_slice(&(b as u32 + 4).to_be_bytes());
        data.extend_from_slice(&pattern(b, i as u64 + 1));
    }
    let total = data.len() as i64;
    let mut sent = Fnv::new();
    sent.update(&data);
    let lengths: Vec<u32> = bodies.iter().map(|&b| b as u32 + 4).collect();
    for driver in drivers() {
        let h = start(&["test_frames", "byte_counter"], backend, driver);
        let got = echo_through(h.listener("l").unwrap(), data.clone(), &pauses);
        assert_eq!(got, sent, "{driver:?}: every byte back, in order");
        let r = report(|r| matches!(r, Report::Frames { lengths: l, .. } if *l == lengths));
        assert_eq!(
            r,
            Report::Frames {
                lengths: lengths.clone(),
                seen: 4 * bodies.len() as u64,
                skipped: bodies.iter().sum::<usize>() as u64,
            },
            "{driver:?}: headers seen, bodies skipped"
        );
        assert_eq!(stat(&h, "tcp.l.network_filter_copy_cx"), 1, "{driver:?}");
        assert_eq!(stat(&h, "tcp.l.splice_cx_total"), 1, "{driver:?}");
        // Each header costs one copied chunk at most (a pooled buffer: 64 KiB at most); the
        // bodies and the whole way back are spliced.
        let copied = stat(&h, "tcp.l.network_filter_copy_bytes");
        assert!(
            (20..=5 * 64 * 1024).contains(&copied) && copied < total / 4,
            "{driver:?}: {copied} of {total} bytes copied"
        );
        assert_eq!(stat(&h, "tcp.l.byte_counter.rx_bytes"), total);
        assert_eq!(stat(&h, "tcp.l.byte_counter.tx_bytes"), total);
        h.shutdown();
    }
}
