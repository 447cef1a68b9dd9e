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
//!
//! This file holds the [`Connection`] struct, the public types, the constructor and the
//! connection-level queries; the methods live with the part of the machine they drive:
//! `recv.rs` what the peer sends, `send.rs` what we send and the output queue, `flow.rs` the
//! flow-control windows, `store.rs` the streams, their ids and states. `validate.rs` checks
//! decoded field sections, `ids.rs` is the stream-id map, `tests.rs` the RFC-section suite.

mod flow;
mod ids;
mod recv;
mod send;
mod store;
mod validate;

#[cfg(test)]
mod tests;

pub use ids::{StreamIdHasher, StreamIdMap};
pub use validate::Malformed;

use super::frame::{self, MAX_WINDOW_SIZE, Reason, StreamId, WindowUpdate};
use super::{Fields, hpack};
use bytes::{Bytes, BytesMut};
use recv::Partial;
use slab::Slab;
use std::collections::VecDeque;
use store::Stream;

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
        fields: Fields,
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
        fields: Fields,
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
    /// Octets in `queue`.
    queued: usize,
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
            queued: 0,
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
