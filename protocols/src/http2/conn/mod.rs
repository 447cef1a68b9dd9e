//! The HTTP/2 connection state machine (RFC 9113 sections 3.4, 5, 6, 8), both roles, sans-IO.
//!
//! Owns the connection preface, SETTINGS exchange, stream states (section 5.1) and identifiers
//! (5.1.1), concurrency limits (5.1.2), flow control (5.2, 6.9), CONTINUATION sequencing
//! (6.10), HPACK contexts, message checks (8.1-8.3, see [`Malformed`]) and the abuse
//! mitigations counted in [`Counters`] (rapid reset, CONTINUATION flood, HPACK bomb,
//! SETTINGS/PING flood, empty DATA flood, stream refusal).
//!
//! Bytes go in through [`Connection::handle_bytes`], application events come out of
//! [`Connection::poll_event`], the application acts with `send_*`, `reset`, `go_away` and
//! `release_capacity`, and [`Connection::poll_transmit`] hands out the bytes to write.
//! It does not own sockets, timers, routing, or priorities (the deprecated RFC 7540 tree is
//! parsed and ignored); server push is never used and a received PUSH_PROMISE is refused.

mod flow;
mod ids;
mod send;
mod store;
mod validate;

#[cfg(test)]
mod tests;

pub use ids::{StreamIdHasher, StreamIdMap};
pub use validate::Malformed;

use super::frame::{
    self, Continuation, Data, Frame, GoAway, Headers, MAX_WINDOW_SIZE, Ping, Reason, RstStream,
    StreamId, WindowUpdate,
};
use super::hpack;
use bytes::{Buf, Bytes, BytesMut};
use slab::Slab;
use std::collections::VecDeque;
use store::Stream;
use validate::Section;

/// The client connection preface (section 3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The initial flow-control window of every stream and the connection (section 6.9.2).
pub const DEFAULT_WINDOW: u32 = 65_535;
/// DATA payloads at least this long are queued without copying.
pub const ZERO_COPY_MIN: usize = 1024;
/// Streams a client opens before the server's SETTINGS say how many it takes (as the h2 crate).
pub const INITIAL_MAX_SEND_STREAMS: u32 = 100;

/// Which end of the connection this is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// Sends the preface, opens odd streams.
    Client,
    /// Expects the preface, answers streams opened by the client.
    Server,
}

/// Local settings and mitigation limits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Config {
    /// SETTINGS_MAX_CONCURRENT_STREAMS we advertise and enforce.
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE we advertise: each stream's receive window (65 535 applies
    /// until the peer acknowledges our SETTINGS).
    pub initial_window_size: u32,
    /// Receive window of the whole connection (raised from 65 535 by a WINDOW_UPDATE).
    pub connection_window_size: u32,
    /// SETTINGS_MAX_FRAME_SIZE we advertise and enforce (16 384 ..= 16 777 215).
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce on decoded lists (HPACK bomb).
    pub max_header_list_size: u32,
    /// SETTINGS_HEADER_TABLE_SIZE we advertise: our HPACK decoder's table limit.
    pub header_table_size: u32,
    /// Largest encoded field block (HEADERS + CONTINUATION octets) accepted.
    pub max_header_block_size: u32,
    /// Most CONTINUATION frames accepted for one field block.
    pub max_continuation_frames: u32,
    /// Peer resets of its own streams tolerated per `rapid_reset_window` streams it opens.
    pub max_rapid_resets: u32,
    /// Number of peer-opened streams after which the reset count starts over.
    pub rapid_reset_window: u32,
    /// SETTINGS and PING acknowledgements that may wait unsent before the peer is told to calm.
    pub max_pending_acks: u32,
    /// Consecutive empty DATA frames without END_STREAM tolerated.
    pub max_empty_data_frames: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 100,
            initial_window_size: DEFAULT_WINDOW,
            connection_window_size: 1 << 20,
            max_frame_size: frame::DEFAULT_MAX_FRAME_SIZE,
            max_header_list_size: 16 << 10,
            header_table_size: 4096,
            max_header_block_size: 32 << 10,
            max_continuation_frames: 32,
            max_rapid_resets: 100,
            rapid_reset_window: 200,
            max_pending_acks: 64,
            max_empty_data_frames: 100,
        }
    }
}

/// Something the application should know about.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Event {
    /// A request head (server), a response head (client; 1xx heads come first, each as its own
    /// event with `end_stream == false`).
    Headers {
        /// Stream.
        stream: StreamId,
        /// Decoded fields in order, pseudo-headers first.
        fields: Vec<(Bytes, Bytes)>,
        /// No body follows.
        end_stream: bool,
    },
    /// Body bytes. Hand every byte back with [`Connection::release_capacity`].
    Data {
        /// Stream.
        stream: StreamId,
        /// Payload without padding.
        data: Bytes,
        /// Last body bytes.
        end_stream: bool,
    },
    /// A trailer section; always ends the stream's incoming side.
    Trailers {
        /// Stream.
        stream: StreamId,
        /// Decoded fields.
        fields: Vec<(Bytes, Bytes)>,
    },
    /// The stream is gone: reset by the peer (`remote`), by us after a stream error, or refused
    /// by the peer's GOAWAY (REFUSED_STREAM, safe to retry).
    Reset {
        /// Stream.
        stream: StreamId,
        /// Error code.
        reason: Reason,
        /// True if the peer ended it.
        remote: bool,
    },
    /// The peer is closing; streams above `last_stream` that we opened were reported as reset.
    GoAway {
        /// Highest stream of ours the peer may still process.
        last_stream: StreamId,
        /// Error code.
        reason: Reason,
        /// Opaque diagnostics.
        debug_data: Bytes,
    },
    /// Send capacity grew on a stream, or on the connection (stream 0).
    WindowOpened(StreamId),
    /// The peer's SETTINGS were applied (and acknowledged).
    SettingsChanged,
    /// A PING arrived (already answered when `ack` is false) or our PING was answered.
    Ping {
        /// True for an answer to our PING.
        ack: bool,
        /// Opaque data.
        payload: [u8; 8],
    },
}

/// What ended the connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ConnErrorKind {
    /// A frame broke a rule of section 4 or 6.
    Frame(frame::ErrorKind),
    /// The client preface was wrong (section 3.4).
    BadPreface,
    /// The first frame was not SETTINGS (section 3.4).
    SettingsExpected,
    /// Another frame came between HEADERS and its CONTINUATION frames (section 6.10).
    ContinuationExpected,
    /// CONTINUATION without a preceding unfinished HEADERS (section 6.10).
    UnexpectedContinuation,
    /// The field block could not be decoded (section 4.3).
    Compression(hpack::Error),
    /// A new stream id not above the previous one, or of the wrong parity (section 5.1.1).
    BadStreamId,
    /// A frame other than HEADERS/PRIORITY on an idle stream (section 5.1).
    IdleStream,
    /// The peer sent more than our connection window (section 6.9).
    FlowControl,
    /// A window went above 2^31-1 (section 6.9.1, 6.9.2).
    WindowOverflow,
    /// PUSH_PROMISE received; push is disabled (section 8.4).
    PushPromise,
    /// A SETTINGS value not allowed for this role (section 6.5.2).
    BadSetting,
    /// Too many streams reset by the peer (CVE-2023-44487).
    RapidReset,
    /// Too many CONTINUATION frames or octets in one field block.
    ContinuationFlood,
    /// Too many SETTINGS/PING acknowledgements waiting.
    AckFlood,
    /// Too many empty DATA frames.
    EmptyDataFlood,
    /// The application called [`Connection::go_away`] with an error or the connection failed
    /// earlier; nothing more is processed.
    Closed,
}

/// A connection error: GOAWAY with `reason` has been queued for [`Connection::poll_transmit`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ConnError {
    /// Error code sent in GOAWAY.
    pub reason: Reason,
    /// What went wrong.
    pub kind: ConnErrorKind,
}

impl core::fmt::Display for ConnError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "h2 connection error {}: {:?}", self.reason, self.kind)
    }
}

impl std::error::Error for ConnError {}

/// Why a send call was refused (nothing was queued).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SendError {
    /// No such open stream.
    NoSuchStream,
    /// We already ended our side of the stream.
    SendClosed,
    /// DATA or trailers before HEADERS.
    HeadersNotSent,
    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS is reached.
    StreamLimit,
    /// GOAWAY was sent or received: no new streams.
    GoingAway,
    /// Stream ids are used up (section 5.1.1); open a new connection.
    IdsExhausted,
    /// Only clients open streams.
    NotClient,
    /// Streams must start (send HEADERS) in the order they were opened (section 5.1.1).
    OutOfOrder,
    /// The connection has failed.
    Closed,
}

/// Mitigation and error counters for stats.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Counters {
    /// Frames decoded.
    pub frames_received: u64,
    /// Streams opened by the peer and accepted.
    pub streams_accepted: u64,
    /// Peer streams refused with REFUSED_STREAM (concurrency limit).
    pub streams_refused: u64,
    /// RST_STREAM received.
    pub resets_received: u64,
    /// RST_STREAM sent (by the application or after a stream error).
    pub resets_sent: u64,
    /// Malformed messages (section 8.1.1).
    pub malformed: u64,
    /// Flow-control violations (stream or connection).
    pub flow_control_errors: u64,
    /// Connections closed for rapid reset.
    pub rapid_reset: u64,
    /// Connections closed for CONTINUATION flood.
    pub continuation_flood: u64,
    /// Field blocks whose decoded list exceeded SETTINGS_MAX_HEADER_LIST_SIZE (HPACK bomb).
    pub header_list_too_large: u64,
    /// Field blocks that failed to decode (COMPRESSION_ERROR).
    pub compression_errors: u64,
    /// Connections closed for SETTINGS/PING flood.
    pub ack_flood: u64,
    /// Connections closed for empty DATA flood.
    pub empty_data_flood: u64,
}

/// Stream state (section 5.1); closed streams are not stored.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StreamState {
    /// Opened locally with [`Connection::open_stream`], HEADERS not sent yet.
    Idle,
    /// Both sides may send.
    Open,
    /// We sent END_STREAM.
    HalfClosedLocal,
    /// The peer sent END_STREAM.
    HalfClosedRemote,
}

/// A field block being reassembled from HEADERS + CONTINUATION.
struct Partial {
    stream: StreamId,
    end_stream: bool,
    block: BytesMut,
    frames: u32,
}

/// What the peer told us in SETTINGS.
struct PeerSettings {
    max_concurrent_streams: u32,
    initial_window_size: u32,
    max_frame_size: u32,
    max_header_list_size: Option<u32>,
}

/// One HTTP/2 connection, either role.
pub struct Connection {
    role: Role,
    config: Config,
    peer: PeerSettings,
    preface_pending: bool,
    settings_received: bool,
    local_settings_acked: bool,
    error: Option<ConnError>,
    streams: Slab<Stream>,
    ids: StreamIdMap<usize>,
    /// Closed ids, true if we reset them (their late frames are ignored).
    recently_closed: VecDeque<(StreamId, bool)>,
    next_local_id: u32,
    last_local_started: u32,
    last_peer_id: u32,
    local_active: u32,
    peer_active: u32,
    conn_send_window: i64,
    conn_recv_window: i64,
    conn_unreleased: u32,
    continuation: Option<Partial>,
    decoder: hpack::Decoder,
    encoder: hpack::Encoder,
    /// Frames being built.
    out: BytesMut,
    /// Finished pieces in wire order: sealed `out` runs and DATA payloads shared, not copied.
    queue: VecDeque<Bytes>,
    events: VecDeque<Event>,
    pending_acks: u32,
    goaway_sent: Option<StreamId>,
    goaway_received: Option<StreamId>,
    resets_in_window: u32,
    streams_in_window: u32,
    empty_data_frames: u32,
    counters: Counters,
}

impl Connection {
    /// Starts a connection. A client queues the preface; both queue their SETTINGS (and a
    /// connection WINDOW_UPDATE when `config.connection_window_size` exceeds 65 535).
    pub fn new(role: Role, config: Config) -> Self {
        let mut conn = Self {
            role,
            config,
            peer: PeerSettings {
                max_concurrent_streams: u32::MAX,
                initial_window_size: DEFAULT_WINDOW,
                max_frame_size: frame::DEFAULT_MAX_FRAME_SIZE,
                max_header_list_size: None,
            },
            preface_pending: role == Role::Server,
            settings_received: false,
            local_settings_acked: false,
            error: None,
            streams: Slab::new(),
            ids: StreamIdMap::default(),
            recently_closed: VecDeque::new(),
            next_local_id: if role == Role::Client { 1 } else { 2 },
            last_local_started: 0,
            last_peer_id: 0,
            local_active: 0,
            peer_active: 0,
            conn_send_window: i64::from(DEFAULT_WINDOW),
            conn_recv_window: i64::from(DEFAULT_WINDOW),
            conn_unreleased: 0,
            continuation: None,
            decoder: hpack::Decoder::new(config.header_table_size as usize),
            encoder: hpack::Encoder::new(),
            out: BytesMut::with_capacity(128),
            queue: VecDeque::new(),
            events: VecDeque::new(),
            pending_acks: 0,
            goaway_sent: None,
            goaway_received: None,
            resets_in_window: 0,
            streams_in_window: 0,
            empty_data_frames: 0,
            counters: Counters::default(),
        };
        if role == Role::Client {
            conn.out.extend_from_slice(PREFACE);
        }
        let mut s = frame::Settings::default();
        if config.header_table_size != 4096 {
            s.header_table_size = Some(config.header_table_size);
        }
        if role == Role::Client {
            s.enable_push = Some(false);
        }
        s.max_concurrent_streams = Some(config.max_concurrent_streams);
        if config.initial_window_size != DEFAULT_WINDOW {
            s.initial_window_size = Some(config.initial_window_size.min(MAX_WINDOW_SIZE));
        }
        if config.max_frame_size != frame::DEFAULT_MAX_FRAME_SIZE {
            s.max_frame_size = Some(config.max_frame_size);
        }
        s.max_header_list_size = Some(config.max_header_list_size);
        s.encode(&mut conn.out);
        let conn_window = config.connection_window_size.min(MAX_WINDOW_SIZE);
        if conn_window > DEFAULT_WINDOW {
            let inc = conn_window - DEFAULT_WINDOW;
            WindowUpdate::new(StreamId::ZERO, inc).encode(&mut conn.out);
            conn.conn_recv_window += i64::from(inc);
        }
        conn
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Mitigation and error counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The connection error, once one happened; the connection should be closed after
    /// [`Self::poll_transmit`] has flushed the GOAWAY.
    pub fn error(&self) -> Option<ConnError> {
        self.error
    }

    /// True once either side sent GOAWAY.
    pub fn is_going_away(&self) -> bool {
        self.goaway_sent.is_some() || self.goaway_received.is_some()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ------------------------------------------------------------------ input

    /// Consumes complete frames from the front of `src` (partial frames stay for the next call).
    /// Stream errors are handled inside (RST_STREAM queued, [`Event::Reset`]); a connection error
    /// queues GOAWAY and is returned now and by every later call.
    pub fn handle_bytes(&mut self, src: &mut BytesMut) -> Result<(), ConnError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.preface_pending {
            let n = src.len().min(PREFACE.len());
            // Section 3.4: "Clients and servers MUST treat an invalid connection preface as a
            // connection error of type PROTOCOL_ERROR."
            if src.get(..n) != PREFACE.get(..n) {
                return Err(self.fail(Reason::PROTOCOL_ERROR, ConnErrorKind::BadPreface));
            }
            if n < PREFACE.len() {
                return Ok(());
            }
            src.advance(PREFACE.len());
            self.preface_pending = false;
        }
        loop {
            match frame::decode(src, self.config.max_frame_size) {
                Ok(None) => return Ok(()),
                Ok(Some(f)) => {
                    self.counters.frames_received += 1;
                    self.recv_frame(f)?;
                }
                Err(e) => {
                    let kind = ConnErrorKind::Frame(e.kind);
                    match e.stream {
                        // A stream error inside a field block or before SETTINGS still breaks
                        // the connection rules (sections 6.10, 3.4). A self-dependent HEADERS
                        // lost its field block, which would desynchronise HPACK, so it is
                        // escalated to a connection error as section 5.4.1 allows.
                        Some(id)
                            if self.continuation.is_none()
                                && self.settings_received
                                && e.kind != frame::ErrorKind::SelfDependency =>
                        {
                            self.peer_fault(id, e.reason)?;
                        }
                        _ if !self.settings_received && e.stream.is_some() => {
                            return Err(self.fail(Reason::PROTOCOL_ERROR, kind));
                        }
                        _ => return Err(self.fail(e.reason, kind)),
                    }
                }
            }
        }
    }

    fn recv_frame(&mut self, f: Frame) -> Result<(), ConnError> {
        if let Some(p) = &self.continuation {
            // Section 6.2: "A HEADERS frame without the END_HEADERS flag set MUST be followed
            // by a CONTINUATION frame for the same stream. A receiver MUST treat the receipt of
            // any other type of frame or a frame on a different stream as a connection error of
            // type PROTOCOL_ERROR."
            return match f {
                Frame::Continuation(c) if c.stream_id == p.stream => self.recv_continuation(c),
                _ => Err(self.fail(Reason::PROTOCOL_ERROR, ConnErrorKind::ContinuationExpected)),
            };
        }
        if !self.settings_received && !matches!(&f, Frame::Settings(s) if !s.ack) {
            // Section 3.4: the preface of each side "MUST be" / "consists of" a SETTINGS frame
            // first; anything else is an invalid preface: "connection error of type
            // PROTOCOL_ERROR".
            return Err(self.fail(Reason::PROTOCOL_ERROR, ConnErrorKind::SettingsExpected));
        }
        match f {
            Frame::Data(d) => self.recv_data(d),
            Frame::Headers(h) => self.recv_headers(h),
            Frame::Priority(_) | Frame::Unknown => Ok(()),
            Frame::RstStream(r) => self.recv_reset(r),
            Frame::Settings(s) => self.recv_settings(&s),
            // Section 8.4: "A client cannot push. Thus, servers MUST treat the receipt of a
            // PUSH_PROMISE frame as a connection error of type PROTOCOL_ERROR." and section
            // 6.6: a client that disabled push MUST treat it "as a connection error of type
            // PROTOCOL_ERROR". We always disable push.
            Frame::PushPromise(_) => {
                Err(self.fail(Reason::PROTOCOL_ERROR, ConnErrorKind::PushPromise))
            }
            Frame::Ping(p) => self.recv_ping(p),
            Frame::GoAway(g) => {
                self.recv_goaway(g);
                Ok(())
            }
            Frame::WindowUpdate(w) => self.recv_window_update(w),
            // Section 6.10: a CONTINUATION not preceded by an unfinished HEADERS or
            // CONTINUATION on the same stream "MUST" be "a connection error of type
            // PROTOCOL_ERROR".
            Frame::Continuation(_) => Err(self.fail(
                Reason::PROTOCOL_ERROR,
                ConnErrorKind::UnexpectedContinuation,
            )),
        }
    }

    fn recv_headers(&mut self, h: Headers) -> Result<(), ConnError> {
        if h.end_headers {
            return self.recv_field_block(h.stream_id, h.end_stream, h.fragment);
        }
        if h.fragment.len() > self.config.max_header_block_size as usize {
            return Err(self.flood());
        }
        self.continuation = Some(Partial {
            stream: h.stream_id,
            end_stream: h.end_stream,
            block: BytesMut::from(&h.fragment[..]),
            frames: 0,
        });
        Ok(())
    }

    fn recv_continuation(&mut self, c: Continuation) -> Result<(), ConnError> {
        let Some(p) = self.continuation.as_mut() else {
            return Err(self.fail(
                Reason::PROTOCOL_ERROR,
                ConnErrorKind::UnexpectedContinuation,
            ));
        };
        p.frames += 1;
        p.block.extend_from_slice(&c.fragment);
        if p.frames > self.config.max_continuation_frames
            || p.block.len() > self.config.max_header_block_size as usize
        {
            return Err(self.flood());
        }
        if !c.end_headers {
            return Ok(());
        }
        let Some(p) = self.continuation.take() else {
            return Ok(());
        };
        self.recv_field_block(p.stream, p.end_stream, p.block.freeze())
    }

    fn flood(&mut self) -> ConnError {
        self.counters.continuation_flood += 1;
        self.fail(Reason::ENHANCE_YOUR_CALM, ConnErrorKind::ContinuationFlood)
    }

    /// Decodes a complete field block (always, to keep HPACK in sync) and applies it.
    fn recv_field_block(
        &mut self,
        id: StreamId,
        end_stream: bool,
        block: Bytes,
    ) -> Result<(), ConnError> {
        let mut fields = Vec::new();
        let limit = self.config.max_header_list_size as usize;
        let too_large = match self
            .decoder
            .decode(&block, limit, |n, v, _| fields.push((n, v)))
        {
            Ok(()) => false,
            Err(e) if e.is_compression_error() => {
                self.counters.compression_errors += 1;
                // Section 4.3: "A decoding error in a field block MUST be treated as a
                // connection error of type COMPRESSION_ERROR."
                return Err(self.fail(Reason::COMPRESSION_ERROR, ConnErrorKind::Compression(e)));
            }
            Err(_) => {
                self.counters.header_list_too_large += 1;
                true
            }
        };
        match self.key(id) {
            Some(key) => self.recv_headers_existing(key, fields, end_stream, too_large),
            None => self.recv_headers_new(id, fields, end_stream, too_large),
        }
    }

    fn recv_headers_new(
        &mut self,
        id: StreamId,
        fields: Vec<(Bytes, Bytes)>,
        end_stream: bool,
        too_large: bool,
    ) -> Result<(), ConnError> {
        if !self.is_peer_id(id) || self.role == Role::Client {
            // Our own id that is not open: closed, or never opened (idle).
            if self.is_idle(id) {
                return Err(self.fail(Reason::PROTOCOL_ERROR, ConnErrorKind::BadStreamId));
            }
            return self.recv_on_closed(id, true);
        }
        if id.get() <= self.last_peer_id {
            return self.recv_on_closed(id, true);
        }
        self.last_peer_id = id.get();
        // Section 6.8: streams above the last id of our GOAWAY are ignored.
        if self.goaway_sent.is_some_and(|last| id > last) {
            return Ok(());
        }
        self.streams_in_window += 1;
        if self.streams_in_window > self.config.rapid_reset_window {
            // A new window starts with this stream.
            self.streams_in_window = 1;
            self.resets_in_window = 0;
        }
        if too_large {
            return self.peer_fault(id, Reason::PROTOCOL_ERROR);
        }
        // Section 5.1.2: "An endpoint that receives a HEADERS frame that causes its advertised
        // concurrent stream limit to be exceeded MUST treat this as a stream error of type
        // PROTOCOL_ERROR or REFUSED_STREAM."
        if self.peer_active >= self.config.max_concurrent_streams {
            self.counters.streams_refused += 1;
            self.stream_error(id, Reason::REFUSED_STREAM);
            return Ok(());
        }
        let Ok(info) = validate::check(&fields, Section::Request) else {
            return self.malformed(id);
        };
        // Section 8.1.1: a content-length that does not match the DATA frames is malformed.
        if end_stream && info.content_length.is_some_and(|n| n != 0) {
            return self.malformed(id);
        }
        let mut s = Stream::new(
            id,
            true,
            self.peer.initial_window_size,
            self.local_initial_window(),
        );
        s.headers_received = true;
        s.recv_closed = end_stream;
        s.content_length = info.content_length;
        s.is_head = info.is_head;
        self.insert(s);
        self.counters.streams_accepted += 1;
        self.events.push_back(Event::Headers {
            stream: id,
            fields,
            end_stream,
        });
        Ok(())
    }

    fn recv_headers_existing(
        &mut self,
        key: usize,
        fields: Vec<(Bytes, Bytes)>,
        end_stream: bool,
        too_large: bool,
    ) -> Result<(), ConnError> {
        let Some(s) = self.streams.get(key) else {
            return Ok(());
        };
        let id = s.id;
        if s.is_local_idle() {
            return Err(self.fail(Reason::PROTOCOL_ERROR, ConnErrorKind::IdleStream));
        }
        // Section 5.1 half-closed (remote): "If an endpoint receives additional frames, other
        // than WINDOW_UPDATE, PRIORITY, or RST_STREAM, for a stream that is in this state, it
        // MUST respond with a stream error of type STREAM_CLOSED."
        if s.recv_closed {
            return self.peer_fault(id, Reason::STREAM_CLOSED);
        }
        if too_large {
            return self.peer_fault(id, Reason::PROTOCOL_ERROR);
        }
        let section = if s.headers_received || s.peer_initiated {
            Section::Trailers
        } else {
            Section::Response
        };
        let Ok(info) = validate::check(&fields, section) else {
            return self.malformed(id);
        };
        let event = match section {
            Section::Response => {
                let status = info.status.unwrap_or(0);
                if (100..200).contains(&status) {
                    // Section 8.1: an informational response cannot end the stream; section
                    // 8.6: 101 is not used in HTTP/2.
                    if end_stream || status == 101 {
                        return self.malformed(id);
                    }
                    self.events.push_back(Event::Headers {
                        stream: id,
                        fields,
                        end_stream,
                    });
                    return Ok(());
                }
                let Some(s) = self.streams.get_mut(key) else {
                    return Ok(());
                };
                s.headers_received = true;
                // HEAD, 204 and 304 responses carry no content whatever content-length says.
                s.content_length = if s.is_head || status == 204 || status == 304 {
                    Some(0)
                } else {
                    info.content_length
                };
                Event::Headers {
                    stream: id,
                    fields,
                    end_stream,
                }
            }
            _ => {
                // Section 8.1: the trailer section's HEADERS frame "MUST" carry END_STREAM.
                if !end_stream {
                    return self.malformed(id);
                }
                Event::Trailers { stream: id, fields }
            }
        };
        if end_stream && !self.content_length_ok(key, true) {
            return self.malformed(id);
        }
        self.events.push_back(event);
        if end_stream {
            self.close_recv(key);
        }
        Ok(())
    }

    fn content_length_ok(&self, key: usize, end: bool) -> bool {
        self.streams
            .get(key)
            .is_none_or(|s| match s.content_length {
                Some(n) if end => s.received == n,
                Some(n) => s.received <= n,
                None => true,
            })
    }

    fn recv_data(&mut self, d: Data) -> Result<(), ConnError> {
        let id = d.stream_id;
        let flow = d.flow_len();
        let len = u32::try_from(d.data.len()).unwrap_or(u32::MAX);
        // Section 6.9: "A receiver MAY respond with a stream error or connection error of type
        // FLOW_CONTROL_ERROR if it is unable to accept a frame" beyond the window it granted.
        if i64::from(flow) > self.conn_recv_window {
            self.counters.flow_control_errors += 1;
            return Err(self.fail(Reason::FLOW_CONTROL_ERROR, ConnErrorKind::FlowControl));
        }
        self.conn_recv_window -= i64::from(flow);
        if len == 0 && !d.end_stream {
            self.empty_data_frames += 1;
            if self.empty_data_frames > self.config.max_empty_data_frames {
                self.counters.empty_data_flood += 1;
                return Err(self.fail(Reason::ENHANCE_YOUR_CALM, ConnErrorKind::EmptyDataFlood));
            }
        } else if len > 0 {
            self.empty_data_frames = 0;
        }
        let Some(key) = self.key(id) else {
            // Discarded: the octets still count on the connection window, so give them back.
            self.release_conn(flow);
            // Section 5.1 idle: "Receiving any frame other than HEADERS or PRIORITY on a stream
            // in this state MUST be treated as a connection error of type PROTOCOL_ERROR."
            if self.is_idle(id) {
                return Err(self.fail(Reason::PROTOCOL_ERROR, ConnErrorKind::IdleStream));
            }
            return self.recv_on_closed(id, false);
        };
        let Some(s) = self.streams.get_mut(key) else {
            return Ok(());
        };
        if s.is_local_idle() {
            return Err(self.fail(Reason::PROTOCOL_ERROR, ConnErrorKind::IdleStream));
        }
        let reject = if s.recv_closed {
            Some(Reason::STREAM_CLOSED)
        } else if !s.headers_received {
            // Section 8.1: DATA before the (final) header section is malformed.
            self.counters.malformed += 1;
            Some(Reason::PROTOCOL_ERROR)
        } else if i64::from(flow) > s.recv_window {
            self.counters.flow_control_errors += 1;
            Some(Reason::FLOW_CONTROL_ERROR)
        } else {
            None
        };
        if let Some(reason) = reject {
            self.release_conn(flow);
            return self.peer_fault(id, reason);
        }
        s.recv_window -= i64::from(flow);
        s.received += u64::from(len);
        let padding = flow - len;
        if padding > 0 {
            // Padding is never delivered: return its window at once.
            self.release(key, padding);
        }
        if !self.content_length_ok(key, d.end_stream) {
            self.release_conn(len);
            return self.malformed(id);
        }
        self.events.push_back(Event::Data {
            stream: id,
            data: d.data,
            end_stream: d.end_stream,
        });
        if d.end_stream {
            self.close_recv(key);
        }
        Ok(())
    }

    /// HEADERS or DATA for a stream that is closed.
    fn recv_on_closed(&mut self, id: StreamId, is_headers: bool) -> Result<(), ConnError> {
        // Section 6.8: after our GOAWAY, frames on peer streams above its last id are ignored.
        if self.is_peer_id(id) && self.goaway_sent.is_some_and(|last| id > last) {
            return Ok(());
        }
        match self.recently_closed.iter().find(|(c, _)| *c == id) {
            // Section 5.1 closed: "An endpoint MUST ignore frames that it receives on closed
            // streams after it has sent a RST_STREAM frame."
            Some((_, true)) => Ok(()),
            // Section 5.1 closed: an endpoint "MAY treat receipt of any other type of frame on
            // a closed stream as a connection error (Section 5.4.1) of type STREAM_CLOSED". A
            // field block on a stream the peer itself ended (END_STREAM or RST_STREAM) cannot
            // be a race with a close of ours, only a reused stream id: a connection error.
            Some((_, false)) if is_headers => {
                Err(self.fail(Reason::STREAM_CLOSED, ConnErrorKind::BadStreamId))
            }
            // Section 6.1: DATA on a stream that is not "open" or "half-closed (local)" is a
            // stream error of type STREAM_CLOSED.
            Some((_, false)) => self.peer_fault(id, Reason::STREAM_CLOSED),
            // Section 5.1.1: "The identifier of a newly established stream MUST be numerically
            // greater than all streams that the initiating endpoint has opened or reserved.
            // ... An endpoint that receives an unexpected stream identifier MUST respond with a
            // connection error of type PROTOCOL_ERROR."
            None if is_headers => {
                Err(self.fail(Reason::PROTOCOL_ERROR, ConnErrorKind::BadStreamId))
            }
            // Closed too long ago to know how: answer, but do not blame the peer for it.
            None => {
                self.stream_error(id, Reason::STREAM_CLOSED);
                Ok(())
            }
        }
    }

    fn recv_reset(&mut self, r: RstStream) -> Result<(), ConnError> {
        let id = r.stream_id;
        self.counters.resets_received += 1;
        let Some(key) = self.key(id) else {
            // Section 6.4: "If a RST_STREAM frame identifying an idle stream is received, the
            // recipient MUST treat this as a connection error of type PROTOCOL_ERROR."
            if self.is_idle(id) {
                return Err(self.fail(Reason::PROTOCOL_ERROR, ConnErrorKind::IdleStream));
            }
            return Ok(());
        };
        let Some(s) = self.streams.get(key) else {
            return Ok(());
        };
        if s.is_local_idle() {
            return Err(self.fail(Reason::PROTOCOL_ERROR, ConnErrorKind::IdleStream));
        }
        let peer_initiated = s.peer_initiated;
        self.remove(key, false);
        self.events.push_back(Event::Reset {
            stream: id,
            reason: r.reason,
            remote: true,
        });
        if peer_initiated {
            self.resets_in_window += 1;
            if self.resets_in_window > self.config.max_rapid_resets {
                self.counters.rapid_reset += 1;
                return Err(self.fail(Reason::ENHANCE_YOUR_CALM, ConnErrorKind::RapidReset));
            }
        }
        Ok(())
    }

    fn recv_settings(&mut self, s: &frame::Settings) -> Result<(), ConnError> {
        if s.ack {
            // Section 6.9.2: our SETTINGS_INITIAL_WINDOW_SIZE applies from the ACK on; a
            // smaller value than the default shrinks the windows of streams opened before it.
            if !self.local_settings_acked && self.config.initial_window_size < DEFAULT_WINDOW {
                let delta = i64::from(DEFAULT_WINDOW - self.config.initial_window_size);
                for (_, st) in &mut self.streams {
                    st.recv_window -= delta;
                }
            }
            self.local_settings_acked = true;
            return Ok(());
        }
        self.settings_received = true;
        // Section 6.5.2: "A server MUST NOT explicitly set this value to 1. A server MAY choose
        // to omit this setting when it sends a SETTINGS frame, but if a server does include a
        // value, it MUST be 0. A client MUST treat receipt of a SETTINGS frame with
        // SETTINGS_ENABLE_PUSH set to 1 as a connection error of type PROTOCOL_ERROR."
        if self.role == Role::Client && s.enable_push == Some(true) {
            return Err(self.fail(Reason::PROTOCOL_ERROR, ConnErrorKind::BadSetting));
        }
        if let Some(n) = s.header_table_size {
            // Our encoder never uses more than the default table, whatever the peer allows.
            self.encoder
                .set_max_table_size((n as usize).min(hpack::DEFAULT_TABLE_SIZE));
        }
        if let Some(n) = s.max_concurrent_streams {
            self.peer.max_concurrent_streams = n;
        }
        if let Some(n) = s.max_frame_size {
            self.peer.max_frame_size = n;
        }
        if let Some(n) = s.max_header_list_size {
            self.peer.max_header_list_size = Some(n);
        }
        if let Some(n) = s.initial_window_size {
            let delta = i64::from(n) - i64::from(self.peer.initial_window_size);
            self.peer.initial_window_size = n;
            let mut overflow = false;
            for (_, st) in &mut self.streams {
                st.send_window += delta;
                overflow |= st.send_window > i64::from(MAX_WINDOW_SIZE);
            }
            // Section 6.9.2: "An endpoint MUST treat a change to SETTINGS_INITIAL_WINDOW_SIZE
            // that causes any flow-control window to exceed the maximum size as a connection
            // error of type FLOW_CONTROL_ERROR."
            if overflow {
                self.counters.flow_control_errors += 1;
                return Err(self.fail(Reason::FLOW_CONTROL_ERROR, ConnErrorKind::WindowOverflow));
            }
            if delta > 0 {
                let ids: Vec<_> = self.streams.iter().map(|(_, st)| st.id).collect();
                self.events.extend(ids.into_iter().map(Event::WindowOpened));
            }
        }
        // Section 6.5.3: "Upon receiving a SETTINGS frame with the ACK flag set ...". The
        // recipient "MUST immediately emit a SETTINGS frame with the ACK flag set".
        frame::Settings::ack().encode(&mut self.out);
        self.events.push_back(Event::SettingsChanged);
        self.count_ack()
    }

    fn count_ack(&mut self) -> Result<(), ConnError> {
        self.pending_acks += 1;
        if self.pending_acks > self.config.max_pending_acks {
            self.counters.ack_flood += 1;
            return Err(self.fail(Reason::ENHANCE_YOUR_CALM, ConnErrorKind::AckFlood));
        }
        Ok(())
    }

    fn recv_ping(&mut self, p: Ping) -> Result<(), ConnError> {
        self.events.push_back(Event::Ping {
            ack: p.ack,
            payload: p.payload,
        });
        if p.ack {
            return Ok(());
        }
        // Section 6.7: "Receivers of a PING frame that does not include an ACK flag MUST send a
        // PING frame with the ACK flag set in response, with an identical frame payload."
        Ping::pong(p.payload).encode(&mut self.out);
        self.count_ack()
    }

    fn recv_goaway(&mut self, g: GoAway) {
        let last = g.last_stream_id;
        self.goaway_received = Some(last);
        // Section 6.8: streams we opened above `last` were not processed; report them so the
        // application can retry them on another connection.
        let refused: Vec<usize> = self
            .streams
            .iter()
            .filter(|(_, s)| !s.peer_initiated && s.id > last)
            .map(|(k, _)| k)
            .collect();
        for key in refused {
            if let Some(s) = self.streams.get(key) {
                let id = s.id;
                self.remove(key, false);
                self.events.push_back(Event::Reset {
                    stream: id,
                    reason: Reason::REFUSED_STREAM,
                    remote: true,
                });
            }
        }
        self.events.push_back(Event::GoAway {
            last_stream: last,
            reason: g.reason,
            debug_data: g.debug_data,
        });
    }

    // ------------------------------------------------------------------ helpers

    fn malformed(&mut self, id: StreamId) -> Result<(), ConnError> {
        self.counters.malformed += 1;
        // Section 8.1.1: "Malformed requests or responses that are detected MUST be treated as
        // a stream error of type PROTOCOL_ERROR."
        self.peer_fault(id, Reason::PROTOCOL_ERROR)
    }

    /// A stream error the peer caused. Such resets share the rapid-reset budget, so a peer
    /// cannot make us reset streams cheaply instead of resetting them itself ("MadeYouReset").
    fn peer_fault(&mut self, id: StreamId, reason: Reason) -> Result<(), ConnError> {
        self.stream_error(id, reason);
        self.resets_in_window += 1;
        if self.resets_in_window > self.config.max_rapid_resets {
            self.counters.rapid_reset += 1;
            return Err(self.fail(Reason::ENHANCE_YOUR_CALM, ConnErrorKind::RapidReset));
        }
        Ok(())
    }
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("streams", &self.streams.len())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}
