//! A tiny blocking raw-frame HTTP/2 client for the conformance suite (`h2_conformance.rs`).
//!
//! It speaks h2c with prior knowledge over a real TCP socket and lets a test write any bytes,
//! valid or not: frames are built by hand ([`frame`] and the `send_*` helpers), header blocks
//! with the project's HPACK encoder ([`H2::block`]) or as plain literals ([`literal_block`]).
//! Every read is bounded by [`WAIT`]; the `expect_*` helpers panic with a log of what the peer
//! sent when the required reaction does not come.
//!
//! It does not validate what the peer sends beyond what a test asserts, and it never answers
//! on its own except the SETTINGS ACK of the handshake and WINDOW_UPDATEs while
//! [`H2::expect_response`] reads a body.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use protocols::http2::hpack;

/// The client connection preface (RFC 9113 section 3.4), without the SETTINGS frame.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long a test waits for a reaction: generous, for a loaded 2-core CI machine.
pub const WAIT: Duration = Duration::from_secs(10);

/// Frame types (RFC 9113 section 6).
pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags.
pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// Error codes (RFC 9113 section 7).
pub mod code {
    pub const NO_ERROR: u32 = 0x0;
    pub const PROTOCOL_ERROR: u32 = 0x1;
    pub const INTERNAL_ERROR: u32 = 0x2;
    pub const FLOW_CONTROL_ERROR: u32 = 0x3;
    pub const STREAM_CLOSED: u32 = 0x5;
    pub const FRAME_SIZE_ERROR: u32 = 0x6;
    pub const REFUSED_STREAM: u32 = 0x7;
    pub const CANCEL: u32 = 0x8;
    pub const COMPRESSION_ERROR: u32 = 0x9;
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;
}

/// SETTINGS identifiers (RFC 9113 section 6.5.2).
pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// One frame as received. A field block split over CONTINUATION frames is joined into one
/// HEADERS frame (END_HEADERS set) and decoded into `fields`.
#[derive(Clone, Debug)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Bytes,
    /// Decoded fields of a HEADERS frame.
    pub fields: Vec<(String, String)>,
}

impl Frame {
    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }

    /// The error code of a RST_STREAM or GOAWAY frame.
    pub fn error_code(&self) -> Option<u32> {
        let at = match self.kind {
            kind::RST_STREAM => 0,
            kind::GOAWAY => 4,
            _ => return None,
        };
        let b = self.payload.get(at..at + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The last-stream-id of a GOAWAY frame.
    pub fn last_stream_id(&self) -> Option<u32> {
        let b = self.payload.get(..4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff)
    }

    /// The value of a decoded field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn describe(&self) -> String {
        let name = match self.kind {
            kind::DATA => "DATA",
            kind::HEADERS => "HEADERS",
            kind::PRIORITY => "PRIORITY",
            kind::RST_STREAM => "RST_STREAM",
            kind::SETTINGS => "SETTINGS",
            kind::PUSH_PROMISE => "PUSH_PROMISE",
            kind::PING => "PING",
            kind::GOAWAY => "GOAWAY",
            kind::WINDOW_UPDATE => "WINDOW_UPDATE",
            kind::CONTINUATION => "CONTINUATION",
            _ => "UNKNOWN",
        };
        let mut s = format!(
            "{name}(stream {}, flags {:#x}, len {})",
            self.stream,
            self.flags,
            self.payload.len()
        );
        if let Some(c) = self.error_code() {
            s.push_str(&format!(" code {c:#x}"));
        }
        if self.kind == kind::HEADERS {
            s.push_str(&format!(" {:?}", self.fields));
        }
        s
    }
}

/// What one read produced.
#[derive(Clone, Debug)]
pub enum Got {
    Frame(Frame),
    /// The peer closed the connection (EOF or reset).
    Closed,
    /// Nothing arrived before the deadline.
    Timeout,
}

/// A response read by [`H2::expect_response`].
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Builds one frame: the 9-octet header and `payload`.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("payload fits 24 bits");
    assert!(len < 1 << 24, "payload fits 24 bits");
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A SETTINGS payload.
pub fn settings_payload(settings: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::with_capacity(settings.len() * 6);
    for (id, v) in settings {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    p
}

/// A PRIORITY payload (also the priority fields of HEADERS); `weight` is the wire value 0..=255.
pub fn priority_payload(dependency: u32, weight: u8, exclusive: bool) -> [u8; 5] {
    let dep = dependency | if exclusive { 0x8000_0000 } else { 0 };
    let d = dep.to_be_bytes();
    [d[0], d[1], d[2], d[3], weight]
}

/// Appends an HPACK integer with an `n`-bit prefix (RFC 7541 section 5.1).
pub fn hpack_int(out: &mut Vec<u8>, mut value: usize, n: u8, first: u8) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128 + 128) as u8);
        value /= 128;
    }
    out.push(value as u8);
}

/// Appends an HPACK string literal (RFC 7541 section 5.2), Huffman coded when `huffman`.
pub fn hpack_string(out: &mut Vec<u8>, s: &[u8], huffman: bool) {
    if huffman {
        let mut enc = BytesMut::new();
        hpack::huffman::encode(s, &mut enc);
        hpack_int(out, enc.len(), 7, 0x80);
        out.extend_from_slice(&enc);
    } else {
        hpack_int(out, s.len(), 7, 0);
        out.extend_from_slice(s);
    }
}

/// A header block of literals without indexing, new names (RFC 7541 section 6.2.2): it leaves
/// both dynamic tables untouched, so it can be sent whether or not the peer decodes it.
pub fn literal_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in fields {
        out.push(0x00);
        hpack_string(&mut out, n.as_bytes(), false);
        hpack_string(&mut out, v.as_bytes(), false);
    }
    out
}

/// A raw HTTP/2 client connection.
pub struct H2 {
    sock: TcpStream,
    rbuf: BytesMut,
    /// The HPACK encoder for our requests ([`Self::block`]).
    pub encoder: hpack::Encoder,
    decoder: hpack::Decoder,
    /// The server's SETTINGS, in order received.
    pub server_settings: Vec<(u16, u32)>,
    /// Everything received, for failure messages.
    log: Vec<String>,
    closed: bool,
}

impl H2 {
    /// A TCP connection; nothing sent yet.
    pub fn connect(addr: SocketAddr) -> Self {
        let sock = TcpStream::connect(addr).expect("connect");
        sock.set_nodelay(true).expect("nodelay");
        Self {
            sock,
            rbuf: BytesMut::with_capacity(32 * 1024),
            encoder: hpack::Encoder::new(),
            decoder: hpack::Decoder::new(hpack::DEFAULT_TABLE_SIZE),
            server_settings: Vec::new(),
            log: Vec::new(),
            closed: false,
        }
    }

    /// Connects, sends the preface with an empty SETTINGS frame and completes the handshake.
    pub fn handshake(addr: SocketAddr) -> Self {
        Self::handshake_with(addr, &[])
    }

    /// Connects and handshakes with these SETTINGS: waits for the server's SETTINGS (which
    /// must be its first frame), acknowledges them, and waits for the ACK of ours.
    pub fn handshake_with(addr: SocketAddr, settings: &[(u16, u32)]) -> Self {
        let mut c = Self::connect(addr);
        for (id, v) in settings {
            if *id == setting::HEADER_TABLE_SIZE {
                c.decoder.set_max_table_size(*v as usize);
            }
        }
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(kind::SETTINGS, 0, 0, &settings_payload(settings)));
        c.send(&hello);
        let deadline = Instant::now() + WAIT;
        let (mut got_settings, mut got_ack) = (false, false);
        while !(got_settings && got_ack) {
            match c.read_until(deadline) {
                Got::Frame(f) if f.kind == kind::SETTINGS && !f.has(flag::ACK) => {
                    assert!(
                        got_settings || c.log.len() == 1,
                        "the server's first frame must be SETTINGS: {:?}",
                        c.log
                    );
                    let mut p = f.payload.clone();
                    while p.remaining() >= 6 {
                        c.server_settings.push((p.get_u16(), p.get_u32()));
                    }
                    got_settings = true;
                    c.send_settings_ack();
                }
                Got::Frame(f) if f.kind == kind::SETTINGS => got_ack = true,
                Got::Frame(f) if matches!(f.kind, kind::WINDOW_UPDATE | kind::PING) => {}
                other => panic!("handshake: unexpected {other:?}; log {:?}", c.log),
            }
        }
        c
    }

    /// A server setting, if it sent one.
    pub fn server_setting(&self, id: u16) -> Option<u32> {
        self.server_settings
            .iter()
            .rev()
            .find(|(i, _)| *i == id)
            .map(|(_, v)| *v)
    }

    /// Writes raw bytes. A failed write (the peer already closed) is ignored: the next read
    /// reports the close.
    pub fn send(&mut self, bytes: &[u8]) {
        if self.sock.write_all(bytes).is_err() {
            self.log.push("(write failed)".into());
        }
    }

    /// Writes one frame.
    pub fn send_frame(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        self.send(&frame(kind, flags, stream, payload));
    }

    /// HEADERS with END_HEADERS, plus END_STREAM when `end_stream`.
    pub fn send_headers(&mut self, stream: u32, block: &[u8], end_stream: bool) {
        let fl = flag::END_HEADERS | if end_stream { flag::END_STREAM } else { 0 };
        self.send_frame(kind::HEADERS, fl, stream, block);
    }

    /// Encodes `fields` and sends them as one HEADERS frame.
    pub fn send_request(&mut self, stream: u32, fields: &[(&str, &str)], end_stream: bool) {
        let block = self.block(fields);
        self.send_headers(stream, &block, end_stream);
    }

    pub fn send_data(&mut self, stream: u32, data: &[u8], end_stream: bool) {
        let fl = if end_stream { flag::END_STREAM } else { 0 };
        self.send_frame(kind::DATA, fl, stream, data);
    }

    pub fn send_continuation(&mut self, stream: u32, block: &[u8], end_headers: bool) {
        let fl = if end_headers { flag::END_HEADERS } else { 0 };
        self.send_frame(kind::CONTINUATION, fl, stream, block);
    }

    pub fn send_settings(&mut self, settings: &[(u16, u32)]) {
        self.send_frame(kind::SETTINGS, 0, 0, &settings_payload(settings));
    }

    pub fn send_settings_ack(&mut self) {
        self.send_frame(kind::SETTINGS, flag::ACK, 0, &[]);
    }

    pub fn send_ping(&mut self, data: [u8; 8]) {
        self.send_frame(kind::PING, 0, 0, &data);
    }

    pub fn send_window_update(&mut self, stream: u32, increment: u32) {
        self.send_frame(kind::WINDOW_UPDATE, 0, stream, &increment.to_be_bytes());
    }

    pub fn send_rst(&mut self, stream: u32, code: u32) {
        self.send_frame(kind::RST_STREAM, 0, stream, &code.to_be_bytes());
    }

    pub fn send_priority(&mut self, stream: u32, dependency: u32, weight: u8, exclusive: bool) {
        let p = priority_payload(dependency, weight, exclusive);
        self.send_frame(kind::PRIORITY, 0, stream, &p);
    }

    pub fn send_goaway(&mut self, last_stream: u32, code: u32, debug: &[u8]) {
        let mut p = last_stream.to_be_bytes().to_vec();
        p.extend_from_slice(&code.to_be_bytes());
        p.extend_from_slice(debug);
        self.send_frame(kind::GOAWAY, 0, 0, &p);
    }

    /// Encodes a header block with the project's HPACK encoder (stateful: send every block it
    /// makes, in order, so the peer's decoder stays in step).
    pub fn block(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut out = BytesMut::new();
        self.encoder.encode(
            fields
                .iter()
                .map(|(n, v)| (n.as_bytes(), v.as_bytes(), false)),
            &mut out,
        );
        out.to_vec()
    }

    // ------------------------------------------------------------------ reading

    /// The next frame, the close, or a timeout after [`WAIT`].
    pub fn read_frame(&mut self) -> Got {
        self.read_until(Instant::now() + WAIT)
    }

    /// The next frame (CONTINUATIONs joined into their HEADERS), or the close, or `Timeout`.
    pub fn read_until(&mut self, deadline: Instant) -> Got {
        let got = match self.read_raw(deadline) {
            Got::Frame(f) if f.kind == kind::HEADERS => self.finish_headers(f, deadline),
            other => other,
        };
        match &got {
            Got::Frame(f) => self.log.push(f.describe()),
            Got::Closed => self.log.push("(closed)".into()),
            Got::Timeout => self.log.push("(timeout)".into()),
        }
        got
    }

    fn finish_headers(&mut self, mut f: Frame, deadline: Instant) -> Got {
        let mut p = f.payload.clone();
        let pad = if f.has(flag::PADDED) && !p.is_empty() {
            usize::from(p.get_u8())
        } else {
            0
        };
        if f.has(flag::PRIORITY) && p.len() >= 5 {
            p.advance(5);
        }
        p.truncate(p.len().saturating_sub(pad));
        let mut block = BytesMut::from(&p[..]);
        while !f.has(flag::END_HEADERS) {
            match self.read_raw(deadline) {
                Got::Frame(c) if c.kind == kind::CONTINUATION && c.stream == f.stream => {
                    block.extend_from_slice(&c.payload);
                    f.flags |= c.flags & flag::END_HEADERS;
                }
                Got::Frame(c) => panic!(
                    "peer sent {} inside a field block; log {:?}",
                    c.describe(),
                    self.log
                ),
                other => return other,
            }
        }
        let block = block.freeze();
        let mut fields = protocols::http2::Fields::new();
        self.decoder
            .decode(&block, usize::MAX, &mut fields)
            .unwrap_or_else(|e| panic!("peer's field block does not decode: {e}"));
        f.payload = block;
        f.fields = (fields.iter())
            .map(|(n, v)| {
                let text = |b| String::from_utf8_lossy(b).into_owned();
                (text(n), text(v))
            })
            .collect();
        f.flags &= !(flag::PADDED | flag::PRIORITY);
        Got::Frame(f)
    }

    fn read_raw(&mut self, deadline: Instant) -> Got {
        loop {
            if self.rbuf.len() >= 9 {
                let len = (usize::from(self.rbuf[0]) << 16)
                    | (usize::from(self.rbuf[1]) << 8)
                    | usize::from(self.rbuf[2]);
                if self.rbuf.len() >= 9 + len {
                    let head = self.rbuf.split_to(9);
                    let payload = self.rbuf.split_to(len).freeze();
                    let stream =
                        u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
                    return Got::Frame(Frame {
                        kind: head[3],
                        flags: head[4],
                        stream,
                        payload,
                        fields: Vec::new(),
                    });
                }
            }
            if self.closed {
                return Got::Closed;
            }
            let now = Instant::now();
            if now >= deadline {
                return Got::Timeout;
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            self.sock.set_read_timeout(Some(wait)).expect("timeout");
            let mut buf = [0u8; 16 * 1024];
            match self.sock.read(&mut buf) {
                Ok(0) => self.closed = true,
                Ok(n) => self.rbuf.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.closed = true,
            }
        }
    }

    fn fail(&self, what: &str) -> ! {
        panic!("{what}; received: {:#?}", self.log)
    }

    // ------------------------------------------------------------------ expectations

    /// A connection error: GOAWAY with `code`, then the connection closes.
    pub fn expect_goaway(&mut self, code: u32) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.read_until(deadline) {
                Got::Frame(f) if f.kind == kind::GOAWAY => {
                    if f.error_code() != Some(code) {
                        self.fail(&format!("expected GOAWAY {code:#x}"));
                    }
                    return self.expect_closed();
                }
                Got::Frame(_) => {}
                Got::Closed => self.fail(&format!("closed without GOAWAY {code:#x}")),
                Got::Timeout => self.fail(&format!("timed out waiting for GOAWAY {code:#x}")),
            }
        }
    }

    /// A connection error where a plain close is enough: GOAWAY with `code`, or the close.
    pub fn expect_closed_or_goaway(&mut self, code: u32) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.read_until(deadline) {
                Got::Frame(f) if f.kind == kind::GOAWAY => {
                    if f.error_code() != Some(code) {
                        self.fail(&format!("expected GOAWAY {code:#x} or a close"));
                    }
                    return;
                }
                Got::Frame(_) => {}
                Got::Closed => return,
                Got::Timeout => self.fail(&format!("timed out waiting for GOAWAY {code:#x}")),
            }
        }
    }

    /// A stream error: RST_STREAM on `stream` with `code`; the connection stays up.
    pub fn expect_rst(&mut self, stream: u32, code: u32) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.read_until(deadline) {
                Got::Frame(f) if f.kind == kind::RST_STREAM && f.stream == stream => {
                    if f.error_code() != Some(code) {
                        self.fail(&format!("expected RST_STREAM {code:#x} on {stream}"));
                    }
                    return;
                }
                Got::Frame(f) if f.kind == kind::GOAWAY => self.fail(&format!(
                    "expected RST_STREAM {code:#x} on {stream}, got a connection error"
                )),
                Got::Frame(_) => {}
                Got::Closed => self.fail(&format!("closed; expected RST_STREAM on {stream}")),
                Got::Timeout => self.fail(&format!("timed out waiting for RST_STREAM on {stream}")),
            }
        }
    }

    /// A stream error the peer may escalate to a connection error (RFC 9113 section 5.4.1
    /// allows it, and some cases race with the stream closing): RST_STREAM on `stream` or
    /// GOAWAY, either with `code`.
    pub fn expect_stream_or_connection_error(&mut self, stream: u32, code: u32) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.read_until(deadline) {
                Got::Frame(f)
                    if f.kind == kind::GOAWAY
                        || (f.kind == kind::RST_STREAM && f.stream == stream) =>
                {
                    if f.error_code() != Some(code) {
                        self.fail(&format!("expected RST_STREAM/GOAWAY {code:#x}"));
                    }
                    return;
                }
                Got::Frame(_) => {}
                Got::Closed => self.fail(&format!("closed without RST_STREAM/GOAWAY {code:#x}")),
                Got::Timeout => self.fail(&format!("timed out waiting for {code:#x}")),
            }
        }
    }

    /// The connection closes (frames before the close, GOAWAY included, are skipped).
    pub fn expect_closed(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.read_until(deadline) {
                Got::Frame(_) => {}
                Got::Closed => return,
                Got::Timeout => self.fail("timed out waiting for the close"),
            }
        }
    }

    /// Reads raw bytes (not frames) until the peer closes; for a peer that may answer a bad
    /// preface with something that is not HTTP/2 at all.
    pub fn expect_closed_raw(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + WAIT;
        let mut all = std::mem::take(&mut self.rbuf).to_vec();
        loop {
            let now = Instant::now();
            if now >= deadline {
                panic!("timed out waiting for the close; read {all:?}");
            }
            self.sock
                .set_read_timeout(Some(deadline - now))
                .expect("timeout");
            let mut buf = [0u8; 4096];
            match self.sock.read(&mut buf) {
                Ok(0) => return all,
                Ok(n) => all.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return all,
            }
        }
    }

    /// The next frame that is not SETTINGS, WINDOW_UPDATE or PING: what the peer did.
    pub fn next_significant(&mut self) -> Got {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.read_until(deadline) {
                Got::Frame(f) if matches!(f.kind, kind::SETTINGS | kind::WINDOW_UPDATE) => {}
                Got::Frame(f) if f.kind == kind::PING && f.has(flag::ACK) => {}
                other => return other,
            }
        }
    }

    /// The PING ACK with `data`; any stream or connection error before it fails the test.
    pub fn expect_ping_ack(&mut self, data: [u8; 8]) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.read_until(deadline) {
                Got::Frame(f) if f.kind == kind::PING && f.has(flag::ACK) => {
                    if f.payload[..] != data {
                        self.fail(&format!("expected PING ACK with {data:?}"));
                    }
                    return;
                }
                Got::Frame(f) if matches!(f.kind, kind::GOAWAY | kind::RST_STREAM) => {
                    self.fail("expected the connection to carry on (PING ACK)")
                }
                Got::Frame(_) => {}
                Got::Closed => self.fail("closed; expected a PING ACK"),
                Got::Timeout => self.fail("timed out waiting for a PING ACK"),
            }
        }
    }

    /// Sends a PING and waits for its ACK: proves the connection is still fine and that no
    /// error was sent before.
    pub fn ping_roundtrip(&mut self) {
        let data = *b"h2check!";
        self.send_ping(data);
        self.expect_ping_ack(data);
    }

    /// The ACK of SETTINGS we sent.
    pub fn expect_settings_ack(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.read_until(deadline) {
                Got::Frame(f) if f.kind == kind::SETTINGS && f.has(flag::ACK) => return,
                Got::Frame(f) if matches!(f.kind, kind::GOAWAY | kind::RST_STREAM) => {
                    self.fail("expected a SETTINGS ACK")
                }
                Got::Frame(_) => {}
                Got::Closed => self.fail("closed; expected a SETTINGS ACK"),
                Got::Timeout => self.fail("timed out waiting for a SETTINGS ACK"),
            }
        }
    }

    /// The next DATA frame on `stream`, without sending WINDOW_UPDATE.
    pub fn expect_data(&mut self, stream: u32) -> Frame {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.read_until(deadline) {
                Got::Frame(f) if f.kind == kind::DATA && f.stream == stream => return f,
                Got::Frame(f) if f.kind == kind::GOAWAY => self.fail("expected DATA"),
                Got::Frame(f) if f.kind == kind::RST_STREAM && f.stream == stream => {
                    self.fail("expected DATA")
                }
                Got::Frame(_) => {}
                Got::Closed => self.fail("closed; expected DATA"),
                Got::Timeout => self.fail("timed out waiting for DATA"),
            }
        }
    }

    /// The response head on `stream`.
    pub fn expect_headers(&mut self, stream: u32) -> Frame {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.read_until(deadline) {
                Got::Frame(f) if f.kind == kind::HEADERS && f.stream == stream => return f,
                Got::Frame(f) if f.kind == kind::GOAWAY => self.fail("expected HEADERS"),
                Got::Frame(f) if f.kind == kind::RST_STREAM && f.stream == stream => {
                    self.fail("expected HEADERS")
                }
                Got::Frame(_) => {}
                Got::Closed => self.fail("closed; expected HEADERS"),
                Got::Timeout => self.fail("timed out waiting for HEADERS"),
            }
        }
    }

    /// The whole response on `stream` (1xx heads skipped), reopening both windows for every
    /// DATA frame. Frames of other streams are skipped.
    pub fn expect_response(&mut self, stream: u32) -> Response {
        let deadline = Instant::now() + WAIT;
        let mut resp: Option<Response> = None;
        loop {
            let f = match self.read_until(deadline) {
                Got::Frame(f) => f,
                Got::Closed => self.fail(&format!("closed; expected a response on {stream}")),
                Got::Timeout => self.fail(&format!("timed out; response on {stream}")),
            };
            if f.kind == kind::GOAWAY {
                self.fail(&format!("GOAWAY; expected a response on {stream}"));
            }
            if f.stream != stream {
                continue;
            }
            match f.kind {
                kind::RST_STREAM => self.fail(&format!("RST_STREAM; response on {stream}")),
                kind::HEADERS => match &mut resp {
                    None => {
                        let status: u16 = f
                            .field(":status")
                            .and_then(|s| s.parse().ok())
                            .unwrap_or_else(|| self.fail("response without :status"));
                        if (100..200).contains(&status) {
                            continue;
                        }
                        resp = Some(Response {
                            status,
                            headers: f.fields.clone(),
                            body: Vec::new(),
                            trailers: Vec::new(),
                        });
                    }
                    Some(r) => r.trailers = f.fields.clone(),
                },
                kind::DATA => {
                    let Some(r) = &mut resp else {
                        self.fail("DATA before the response head");
                    };
                    let mut p = f.payload.clone();
                    if f.has(flag::PADDED) && !p.is_empty() {
                        let pad = usize::from(p.get_u8());
                        p.truncate(p.len().saturating_sub(pad));
                    }
                    r.body.extend_from_slice(&p);
                    if !f.payload.is_empty() {
                        let n = u32::try_from(f.payload.len()).expect("frame length");
                        self.send_window_update(0, n);
                        if !f.has(flag::END_STREAM) {
                            self.send_window_update(stream, n);
                        }
                    }
                }
                _ => {}
            }
            if f.has(flag::END_STREAM) && matches!(f.kind, kind::HEADERS | kind::DATA) {
                return resp.unwrap_or_else(|| self.fail("stream ended without a response"));
            }
        }
    }
}
