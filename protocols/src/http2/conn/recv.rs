//! What the peer sends us (RFC 9113 sections 3.4, 4.3, 5.1, 5.1.1, 6, 8.1): the preface and
//! each frame's effect on the connection and its streams.
//!
//! Owns the preface check and the SETTINGS-first rule (section 3.4), CONTINUATION reassembly
//! (6.10), HPACK decoding of field blocks and the message checks of [`super::validate`],
//! content-length accounting (8.1.1), the peer's SETTINGS (6.5, including the window change of
//! 6.9.2) and PING with their acknowledgements, GOAWAY from the peer (6.8), and the limits on
//! abuse by the peer (rapid reset, CONTINUATION flood, SETTINGS/PING flood, empty DATA flood,
//! HPACK bomb). A received WINDOW_UPDATE goes to flow control; the RST_STREAM and GOAWAY that
//! answer errors are written by the send code.

use super::store::Stream;
use super::validate::{self, Section};
use super::{ConnError, ConnErrorKind, Connection, DEFAULT_WINDOW, Event, PREFACE, Role};
use crate::http2::frame::{
    self, Continuation, Data, Frame, GoAway, Headers, MAX_WINDOW_SIZE, Ping, Reason, RstStream,
    StreamId,
};
use crate::http2::{Fields, hpack};
use bytes::{Buf, Bytes, BytesMut};

/// Fields a decoded field block has room for before its list grows (most heads have fewer).
const FIELDS_CAPACITY: usize = 16;
/// Octets a decoded field block has room for at least before its buffer grows.
const FIELD_BYTES_MIN: usize = 512;

/// A field block being reassembled from HEADERS + CONTINUATION.
pub(super) struct Partial {
    stream: StreamId,
    end_stream: bool,
    block: BytesMut,
    frames: u32,
}

impl Connection {
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
        // Most heads fit: one allocation each for the octets and the offsets, no regrowth. A
        // block decodes to about twice its size, more when it references the tables; the head
        // built from a request keeps room for `host` and joined cookies.
        let bytes = block.len().saturating_mul(2).max(FIELD_BYTES_MIN);
        let mut fields = Fields::with_capacity(bytes, FIELDS_CAPACITY);
        let limit = self.config.max_header_list_size as usize;
        let too_large = match self.decoder.decode(&block, limit, &mut fields) {
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
        mut fields: Fields,
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
        let Ok(info) = validate::check(&mut fields, Section::Request) else {
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
        mut fields: Fields,
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
        let Ok(info) = validate::check(&mut fields, section) else {
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

    fn malformed(&mut self, id: StreamId) -> Result<(), ConnError> {
        self.counters.malformed += 1;
        // Section 8.1.1: "Malformed requests or responses that are detected MUST be treated as
        // a stream error of type PROTOCOL_ERROR."
        self.peer_fault(id, Reason::PROTOCOL_ERROR)
    }

    /// A stream error the peer caused. Such resets share the rapid-reset budget, so a peer
    /// cannot make us reset streams cheaply instead of resetting them itself ("MadeYouReset").
    pub(super) fn peer_fault(&mut self, id: StreamId, reason: Reason) -> Result<(), ConnError> {
        self.stream_error(id, reason);
        self.resets_in_window += 1;
        if self.resets_in_window > self.config.max_rapid_resets {
            self.counters.rapid_reset += 1;
            return Err(self.fail(Reason::ENHANCE_YOUR_CALM, ConnErrorKind::RapidReset));
        }
        Ok(())
    }
}
