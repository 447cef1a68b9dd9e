//! What we send (RFC 9113 sections 5.4, 6.1, 6.2, 6.4, 6.7, 6.8, 6.10) and the output queue.
//!
//! Owns the application's send calls (HEADERS split into CONTINUATION to the peer's frame
//! size, DATA within the send windows, RST_STREAM, GOAWAY, PING), the error reactions of
//! section 5.4 (RST_STREAM for a stream error, GOAWAY for a connection error), and the queue
//! that [`Connection::poll_transmit`] drains: frames are built in `out`, sealed into `queue`,
//! and large DATA payloads are queued as slices of the caller's `Bytes`. Answers to the
//! peer's SETTINGS and PING are written by the receive code.

use super::store::{RECENTLY_CLOSED, Stream};
use super::{ConnError, ConnErrorKind, Connection, Event, SendError, ZERO_COPY_MIN};
use crate::http2::frame::{
    Data, GoAway, Head, Headers, Kind, Ping, Reason, RstStream, StreamId, flags,
};
use bytes::{BufMut, Bytes, BytesMut};

impl Connection {
    /// Sends a header section: the request (client), a response head or 1xx (server). Fields
    /// go out as given; the caller puts pseudo-headers first. Split into HEADERS +
    /// CONTINUATION to the peer's maximum frame size.
    pub fn send_headers<'a>(
        &mut self,
        stream: StreamId,
        fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        end_stream: bool,
    ) -> Result<(), SendError> {
        self.send_field_section(stream, fields, end_stream, false)
    }

    /// [`Self::send_headers`] for field names that may not be lowercase yet (an HTTP/1
    /// response head's, say): each is lowercased as it is encoded (section 8.2.1: "field
    /// names MUST be converted to lowercase when constructing an HTTP/2 message"), so the
    /// caller need not copy the list to lowercase it.
    pub fn send_headers_lowercasing<'a>(
        &mut self,
        stream: StreamId,
        fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        end_stream: bool,
    ) -> Result<(), SendError> {
        self.send_field_section(stream, fields, end_stream, true)
    }

    fn send_field_section<'a>(
        &mut self,
        stream: StreamId,
        fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        end_stream: bool,
        lowercase: bool,
    ) -> Result<(), SendError> {
        self.check_open()?;
        let key = self.key(stream).ok_or(SendError::NoSuchStream)?;
        let s = self.streams.get(key).ok_or(SendError::NoSuchStream)?;
        if s.send_closed {
            return Err(SendError::SendClosed);
        }
        if s.is_local_idle() {
            // Section 5.1.1: ids of new streams must increase.
            if stream.get() <= self.last_local_started {
                return Err(SendError::OutOfOrder);
            }
            self.last_local_started = stream.get();
        }
        let mut is_head = false;
        // The block is encoded where its HEADERS frame goes, after room for the frame header,
        // which is written once the block's length is known; only a block larger than one
        // frame is moved out and split into HEADERS + CONTINUATION.
        let frame_start = self.out.len();
        self.out.put_bytes(0, Head::LEN);
        let block_start = self.out.len();
        let fields = fields.into_iter().map(|(n, v)| {
            is_head |= n == b":method" && v == b"HEAD";
            (n, v, false)
        });
        if lowercase {
            self.encoder.encode_lowercasing(fields, &mut self.out);
        } else {
            self.encoder.encode(fields, &mut self.out);
        }
        let block_len = self.out.len() - block_start;
        match u32::try_from(block_len) {
            Ok(len) if len <= self.peer.max_frame_size => {
                let mut fl = flags::END_HEADERS;
                if end_stream {
                    fl |= flags::END_STREAM;
                }
                let head = Head::new(Kind::Headers, fl, stream, len).to_bytes();
                if let Some(dst) = self.out.get_mut(frame_start..block_start) {
                    dst.copy_from_slice(&head);
                }
            }
            _ => {
                let block = self.out.split_off(block_start).freeze();
                self.out.truncate(frame_start);
                Headers::new(stream, block, end_stream)
                    .encode_split(self.peer.max_frame_size, &mut self.out);
            }
        }
        if let Some(s) = self.streams.get_mut(key) {
            s.headers_sent = true;
            s.is_head |= is_head;
        }
        if end_stream {
            self.close_send(key);
        }
        Ok(())
    }

    /// Sends a trailer section, ending our side of the stream.
    pub fn send_trailers<'a>(
        &mut self,
        stream: StreamId,
        fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<(), SendError> {
        let s = self
            .key(stream)
            .and_then(|k| self.streams.get(k))
            .ok_or(SendError::NoSuchStream)?;
        if !s.headers_sent {
            return Err(SendError::HeadersNotSent);
        }
        self.send_headers(stream, fields, true)
    }

    /// Sends as much of `data` as both flow-control windows allow, advancing `data` past what
    /// was queued, and returns that count. END_STREAM is set only when all of `data` went out;
    /// an empty `data` with `end_stream` sends an empty final frame. On 0, wait for
    /// [`Event::WindowOpened`].
    pub fn send_data(
        &mut self,
        stream: StreamId,
        data: &mut Bytes,
        end_stream: bool,
    ) -> Result<usize, SendError> {
        self.check_open()?;
        let key = self.key(stream).ok_or(SendError::NoSuchStream)?;
        let s = self.streams.get_mut(key).ok_or(SendError::NoSuchStream)?;
        if s.send_closed {
            return Err(SendError::SendClosed);
        }
        if !s.headers_sent {
            return Err(SendError::HeadersNotSent);
        }
        let avail = usize::try_from(s.send_window.min(self.conn_send_window).max(0)).unwrap_or(0);
        let n = data.len().min(avail);
        let fin = end_stream && n == data.len();
        if n == 0 && !fin {
            return Ok(0);
        }
        let chunk = data.split_to(n);
        let n64 = i64::try_from(n).unwrap_or(i64::MAX);
        s.send_window -= n64;
        self.conn_send_window -= n64;
        self.queue_data(stream, chunk, fin);
        if fin {
            self.close_send(key);
        }
        Ok(n)
    }

    /// Resets a stream (RST_STREAM with `reason`); later frames on it are ignored.
    pub fn reset(&mut self, stream: StreamId, reason: Reason) -> Result<(), SendError> {
        self.check_open()?;
        let key = self.key(stream).ok_or(SendError::NoSuchStream)?;
        let idle = self.streams.get(key).is_some_and(Stream::is_local_idle);
        self.remove(key, true);
        // An idle stream was never seen by the peer: just forget it.
        if !idle {
            RstStream::new(stream, reason).encode(&mut self.out);
            self.counters.resets_sent += 1;
        }
        Ok(())
    }

    /// Sends GOAWAY naming the last peer stream we processed. With NO_ERROR, open streams
    /// finish and new peer streams are ignored; any other reason ends the connection.
    pub fn go_away(&mut self, reason: Reason) {
        if self.error.is_some() {
            return;
        }
        if reason != Reason::NO_ERROR {
            self.fail(reason, ConnErrorKind::Closed);
            return;
        }
        let last = StreamId::new(self.last_peer_id);
        GoAway::new(last, reason).encode(&mut self.out);
        self.goaway_sent = Some(last);
    }

    /// Sends a PING; the answer arrives as [`Event::Ping`] with `ack`.
    pub fn ping(&mut self, payload: [u8; 8]) {
        Ping::new(payload).encode(&mut self.out);
    }

    /// Moves every queued frame into `dst` (copying); returns the number of octets added.
    pub fn poll_transmit(&mut self, dst: &mut BytesMut) -> usize {
        self.pending_acks = 0;
        if self.queue.is_empty() && dst.is_empty() {
            std::mem::swap(dst, &mut self.out);
            return dst.len();
        }
        self.seal();
        self.queued = 0;
        let mut n = 0;
        for piece in self.queue.drain(..) {
            n += piece.len();
            dst.extend_from_slice(&piece);
        }
        n
    }

    /// Moves every queued frame into `dst` as pieces for a vectored write; large DATA payloads
    /// are slices of the caller's `Bytes`, never copied. Returns the number of octets added.
    pub fn poll_transmit_vectored(&mut self, dst: &mut Vec<Bytes>) -> usize {
        self.pending_acks = 0;
        self.seal();
        self.queued = 0;
        let mut n = 0;
        for piece in self.queue.drain(..) {
            n += piece.len();
            dst.push(piece);
        }
        n
    }

    /// True when [`Self::poll_transmit`] has bytes to hand out.
    pub fn wants_write(&self) -> bool {
        !self.out.is_empty() || !self.queue.is_empty()
    }

    /// Octets queued and not yet handed out by [`Self::poll_transmit`]: what the application
    /// bounds to keep a peer that reads slowly (or not at all) from making it buffer up to the
    /// whole flow-control window it advertised.
    pub fn buffered(&self) -> usize {
        self.out.len() + self.queued
    }

    fn seal(&mut self) {
        if !self.out.is_empty() {
            let piece = self.out.split().freeze();
            self.queued += piece.len();
            self.queue.push_back(piece);
        }
    }

    /// Queues DATA frames for `data`, each at most the peer's maximum frame size. Payloads of
    /// at least [`ZERO_COPY_MIN`] octets are queued as slices of `data`.
    fn queue_data(&mut self, stream: StreamId, data: Bytes, end_stream: bool) {
        let max = self.peer.max_frame_size as usize;
        if data.len() < ZERO_COPY_MIN {
            Data::encode_split(
                stream,
                &data,
                end_stream,
                self.peer.max_frame_size,
                &mut self.out,
            );
            return;
        }
        let mut rest = data;
        while !rest.is_empty() {
            let chunk = rest.split_to(rest.len().min(max));
            let fin = end_stream && rest.is_empty();
            let fl = if fin { flags::END_STREAM } else { 0 };
            let len = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            Head::new(Kind::Data, fl, stream, len).encode(&mut self.out);
            self.seal();
            self.queued += chunk.len();
            self.queue.push_back(chunk);
        }
    }

    pub(super) fn check_open(&self) -> Result<(), SendError> {
        if self.error.is_some() {
            return Err(SendError::Closed);
        }
        Ok(())
    }

    /// Section 5.4.2: answer a stream error with RST_STREAM; the application hears of it if it
    /// knew the stream.
    pub(super) fn stream_error(&mut self, id: StreamId, reason: Reason) {
        RstStream::new(id, reason).encode(&mut self.out);
        self.counters.resets_sent += 1;
        match self.key(id) {
            Some(key) => {
                self.remove(key, true);
                self.events.push_back(Event::Reset {
                    stream: id,
                    reason,
                    remote: false,
                });
            }
            None => {
                if !self.recently_closed.iter().any(|(c, _)| *c == id) {
                    if self.recently_closed.len() >= RECENTLY_CLOSED {
                        self.recently_closed.pop_front();
                    }
                    self.recently_closed.push_back((id, true));
                }
            }
        }
    }

    /// Section 5.4.1: queue GOAWAY with the last peer stream we processed and stop.
    pub(super) fn fail(&mut self, reason: Reason, kind: ConnErrorKind) -> ConnError {
        if let Some(e) = self.error {
            return e;
        }
        let e = ConnError { reason, kind };
        GoAway::new(StreamId::new(self.last_peer_id), reason).encode(&mut self.out);
        self.goaway_sent = Some(StreamId::new(self.last_peer_id));
        self.error = Some(e);
        self.continuation = None;
        e
    }
}
