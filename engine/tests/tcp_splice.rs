//! The TCP proxy's zero-copy relay (splice, used when client and upstream are both plain
//! TCP) end to end on loopback: both directions streaming at once with checksums, a
//! half-close while the other direction still streams, an upstream reset mid-transfer, and
//! many idle relayed connections that must not cost a kernel thread each. Peers are plain
//! std sockets. `RINGWAY_TEST_DRIVER=legacy` runs them on the epoll driver.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use support::{Proxy, tcp_backend};

fn tcp_config(endpoint: SocketAddr) -> String {
    format!(
        r#"workers = 1
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "l"
address = "127.0.0.1:0"
protocol = "tcp"
cluster = "c"

[[clusters]]
name = "c"
endpoints = ["{endpoint}"]
connect_timeout = "2s"
"#
    )
}

/// A deterministic byte stream (xorshift) so corruption or reordering changes the checksum.
fn pattern(seed: u64, buf: &mut [u8]) -> u64 {
    let mut x = seed | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
    x
}

/// FNV-1a over a stream, and its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sum(u64, u64);
impl Sum {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325, 0)
    }
    fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        self.1 += data.len() as u64;
    }
}

/// Writes `total` pattern bytes from `seed` in 1 MiB chunks; returns their checksum.
fn send_pattern(w: &mut TcpStream, seed: u64, total: usize) -> std::io::Result<Sum> {
    let mut chunk = vec![0u8; 1 << 20];
    let (mut seed, mut sum, mut sent) = (seed, Sum::new(), 0);
    while sent < total {
        seed = pattern(seed, &mut chunk);
        let n = chunk.len().min(total - sent);
        sum.update(&chunk[..n]);
        w.write_all(&chunk[..n])?;
        sent += n;
    }
    Ok(sum)
}

/// Reads to end of stream; returns the checksum.
fn read_all(r: &mut TcpStream) -> std::io::Result<Sum> {
    let mut buf = vec![0u8; 1 << 20];
    let mut sum = Sum::new();
    loop {
        match r.read(&mut buf)? {
            0 => return Ok(sum),
            n => sum.update(&buf[..n]),
        }
    }
}

#[test]
fn both_directions_stream_at_once_with_checksums() {
    const TOTAL: usize = 64 << 20;
    // The backend sends its own stream while it reads the client's, then reports what it got.
    let (got_tx, got_rx) = mpsc::channel();
    let got_tx = std::sync::Mutex::new(got_tx);
    let be = tcp_backend(move |s| {
        let mut r = s.try_clone().unwrap();
        let reader = thread::spawn(move || read_all(&mut r).unwrap());
        let mut w = s;
        send_pattern(&mut w, 99, TOTAL).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
        let got = reader.join().unwrap();
        got_tx.lock().unwrap().send(got).unwrap();
    });
    let proxy = Proxy::start(&tcp_config(be));
    let s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let sum = send_pattern(&mut w, 7, TOTAL).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
        sum
    });
    let mut r = s;
    let down = read_all(&mut r).unwrap();
    let up = writer.join().unwrap();
    let backend_got = got_rx.recv_timeout(Duration::from_secs(60)).unwrap();

    let mut expect_down = Sum::new();
    let mut chunk = vec![0u8; 1 << 20];
    let mut seed = 99;
    for _ in 0..TOTAL >> 20 {
        seed = pattern(seed, &mut chunk);
        expect_down.update(&chunk);
    }
    assert_eq!(backend_got, up, "client -> backend: every byte, in order");
    assert_eq!(down, expect_down, "backend -> client: every byte, in order");
    proxy.eventually("bytes counted both ways", |p| {
        p.stat("tcp.l.downstream_cx_rx_bytes_total") == TOTAL as i64
            && p.stat("tcp.l.downstream_cx_tx_bytes_total") == TOTAL as i64
            && p.stat("cluster.c.upstream_cx_tx_bytes_total") == TOTAL as i64
            && p.stat("cluster.c.upstream_cx_rx_bytes_total") == TOTAL as i64
            && p.stat("tcp.l.downstream_cx_active") == 0
    });
    // Both sides plain TCP: relayed with splice, through a pipe per direction.
    assert_eq!(proxy.stat("tcp.l.splice_cx_total"), 1);
    assert_eq!(proxy.stat("tcp.l.splice_fallback"), 0);
    assert!(proxy.stat("tcp.l.splice_pipes_created") >= 2);
}

#[test]
fn half_close_while_the_other_direction_streams() {
    const DOWN: usize = 32 << 20;
    // The backend streams to the client while it reads the client's few bytes and their end
    // of stream; after its own stream it tells how many bytes it got, then closes.
    let be = tcp_backend(|s| {
        let mut r = s.try_clone().unwrap();
        let reader = thread::spawn(move || read_all(&mut r).unwrap());
        let mut w = s;
        send_pattern(&mut w, 5, DOWN).unwrap();
        let got = reader.join().unwrap();
        w.write_all(format!("|got {}", got.1).as_bytes()).unwrap();
    });
    let proxy = Proxy::start(&tcp_config(be));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(&[b'x'; 100_000]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    // Read slowly at first so the backend's stream is still going when the close arrives.
    let mut head = vec![0u8; 64 * 1024];
    s.read_exact(&mut head).unwrap();
    thread::sleep(Duration::from_millis(200));
    let mut rest = Vec::with_capacity(DOWN);
    s.read_to_end(&mut rest).unwrap();
    let total = head.len() + rest.len();
    let trailer = b"|got 100000";
    assert_eq!(
        total,
        DOWN + trailer.len(),
        "the whole stream and the trailer"
    );
    assert!(
        rest.ends_with(trailer),
        "the backend saw the client's bytes and its close"
    );
}

#[test]
fn upstream_reset_mid_transfer_closes_the_client() {
    // The backend sends a little, then resets while the client is still sending.
    let be = tcp_backend(|mut s| {
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let _ = s.write_all(&[b'y'; 256 * 1024]);
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(s); // SO_LINGER 0: RST
    });
    let proxy = Proxy::start(&tcp_config(be));
    let s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn({
        let stop = Arc::clone(&stop);
        move || {
            let chunk = vec![b'x'; 64 * 1024];
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(60) {
                if w.write_all(&chunk).is_err() {
                    return true;
                }
            }
            false
        }
    });
    let mut r = s;
    let mut buf = vec![0u8; 64 * 1024];
    let started = Instant::now();
    let ended = loop {
        match r.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break false;
            }
            Err(_) => break true, // reset
        }
        if started.elapsed() > Duration::from_secs(60) {
            break false;
        }
    };
    assert!(ended, "the client's connection was closed");
    // The client's writes fail too once its side is gone (or the writer is told to stop).
    let write_failed = {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !writer.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::SeqCst);
        writer.join().unwrap()
    };
    assert!(write_failed, "writes to the closed connection fail");
    proxy.eventually("connection gone", |p| {
        p.stat("tcp.l.downstream_cx_active") == 0 && p.stat("cluster.c.upstream_cx_active") == 0
    });
}

/// Threads of this process (the engine runs in-process, so its io-wq workers count too).
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// One backend thread echoing on every connection with non-blocking sockets (no thread per
/// connection, so the thread count shows only the engine's). Stops when `stop` is set.
fn polling_echo(stop: Arc<AtomicBool>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        let mut conns: Vec<TcpStream> = Vec::new();
        let mut buf = [0u8; 4096];
        let started = Instant::now();
        while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(300) {
            let mut busy = false;
            while let Ok((s, _)) = l.accept() {
                s.set_nonblocking(true).unwrap();
                conns.push(s);
                busy = true;
            }
            conns.retain_mut(|s| match s.read(&mut buf) {
                Ok(0) => false,
                Ok(n) => {
                    busy = true;
                    s.set_nonblocking(false).unwrap();
                    let ok = s.write_all(&buf[..n]).is_ok();
                    s.set_nonblocking(true).unwrap();
                    ok
                }
                Err(e) => e.kind() == ErrorKind::WouldBlock,
            });
            if !busy {
                thread::sleep(Duration::from_millis(2));
            }
        }
    });
    addr
}

#[test]
fn many_idle_relayed_connections_stay_open_without_a_thread_each() {
    const N: usize = 200;
    let stop = Arc::new(AtomicBool::new(false));
    let be = polling_echo(Arc::clone(&stop));
    let proxy = Proxy::start(&tcp_config(be));
    // Warm up: one relayed round trip, so the engine's own threads exist before counting.
    {
        let mut s = TcpStream::connect(proxy.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"warm").unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
    }
    let before = threads();
    let mut conns = Vec::with_capacity(N);
    for i in 0..N {
        let mut s = TcpStream::connect(proxy.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let msg = format!("hello {i:04}");
        s.write_all(msg.as_bytes()).unwrap();
        let mut b = vec![0u8; msg.len()];
        s.read_exact(&mut b).unwrap();
        assert_eq!(b, msg.as_bytes());
        conns.push(s);
    }
    proxy.eventually("all relayed", |p| {
        p.stat("tcp.l.downstream_cx_active") == N as i64
    });
    // Idle: every relay direction now waits for its socket to become readable.
    thread::sleep(Duration::from_millis(1500));
    let idle = threads();
    assert!(
        idle < before + N / 2,
        "idle relayed connections hold no thread each: {before} threads before, {idle} with {N} idle"
    );
    for (i, s) in conns.iter_mut().enumerate() {
        let msg = format!("again {i:04}");
        s.write_all(msg.as_bytes()).unwrap();
        let mut b = vec![0u8; msg.len()];
        s.read_exact(&mut b).unwrap();
        assert_eq!(
            b,
            msg.as_bytes(),
            "connection {i} still works after the pause"
        );
    }
    // Idle connections hold no pipe: the pipes of the few moving at once are reused.
    let pipes = proxy.stat("tcp.l.splice_pipes_created");
    assert!(
        pipes < N as i64 / 2,
        "{pipes} pipes created for {N} connections"
    );
    assert_eq!(proxy.stat("tcp.l.splice_cx_total"), N as i64 + 1);
    drop(conns);
    proxy.eventually("all closed", |p| p.stat("tcp.l.downstream_cx_active") == 0);
    stop.store(true, Ordering::SeqCst);
}
