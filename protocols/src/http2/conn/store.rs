//! The stream store (RFC 9113 sections 5.1, 5.1.1, 5.1.2): the slab of live streams, the id
//! to slab-key map, stream states, who may open which id, and the concurrency limits.
//!
//! Owns inserting, looking up and removing streams and the short memory of recently closed
//! ids. It does not read or emit frames: the receive and send code drive the state changes,
//! and flow control owns the windows kept in each [`Stream`].

use super::{Connection, INITIAL_MAX_SEND_STREAMS, Role, SendError, StreamState};
use crate::http2::frame::StreamId;

/// How many closed stream ids are remembered to tell "closed" from "reset by us".
pub(super) const RECENTLY_CLOSED: usize = 256;

/// A stream that is not closed (closed streams are not stored).
pub(super) struct Stream {
    pub(super) id: StreamId,
    pub(super) peer_initiated: bool,
    pub(super) headers_sent: bool,
    /// Final head received (request, or non-1xx response).
    pub(super) headers_received: bool,
    pub(super) send_closed: bool,
    pub(super) recv_closed: bool,
    pub(super) send_window: i64,
    pub(super) recv_window: i64,
    pub(super) unreleased: u32,
    pub(super) content_length: Option<u64>,
    pub(super) received: u64,
    pub(super) is_head: bool,
}

impl Stream {
    pub(super) fn new(
        id: StreamId,
        peer_initiated: bool,
        send_window: u32,
        recv_window: u32,
    ) -> Self {
        Self {
            id,
            peer_initiated,
            headers_sent: false,
            headers_received: false,
            send_closed: false,
            recv_closed: false,
            send_window: i64::from(send_window),
            recv_window: i64::from(recv_window),
            unreleased: 0,
            content_length: None,
            received: 0,
            is_head: false,
        }
    }

    pub(super) fn is_local_idle(&self) -> bool {
        !self.peer_initiated && !self.headers_sent
    }

    fn state(&self) -> StreamState {
        match (self.send_closed, self.recv_closed) {
            _ if self.is_local_idle() => StreamState::Idle,
            (true, _) => StreamState::HalfClosedLocal,
            (false, true) => StreamState::HalfClosedRemote,
            (false, false) => StreamState::Open,
        }
    }
}

impl Connection {
    /// True when [`Self::open_stream`] would succeed now (client only): no GOAWAY either way,
    /// no error, and the peer's SETTINGS_MAX_CONCURRENT_STREAMS not reached.
    pub fn can_open_stream(&self) -> bool {
        self.role == Role::Client
            && self.error.is_none()
            && !self.is_going_away()
            && self.local_active < self.send_stream_limit()
            && self.next_local_id <= StreamId::MAX.get()
    }

    /// Reserves the next client stream id (client only). Send its HEADERS with
    /// [`Self::send_headers`], in the order the streams were opened.
    pub fn open_stream(&mut self) -> Result<StreamId, SendError> {
        self.check_open()?;
        if self.role != Role::Client {
            return Err(SendError::NotClient);
        }
        if self.is_going_away() {
            return Err(SendError::GoingAway);
        }
        if self.local_active >= self.send_stream_limit() {
            return Err(SendError::StreamLimit);
        }
        if self.next_local_id > StreamId::MAX.get() {
            return Err(SendError::IdsExhausted);
        }
        let id = StreamId::new(self.next_local_id);
        self.next_local_id += 2;
        self.insert(Stream::new(
            id,
            false,
            self.peer.initial_window_size,
            self.local_initial_window(),
        ));
        Ok(id)
    }

    /// Streams not yet closed.
    pub fn active_streams(&self) -> usize {
        self.streams.len()
    }

    /// The state of a stream, `None` once closed (or never opened).
    pub fn stream_state(&self, stream: StreamId) -> Option<StreamState> {
        self.key(stream)
            .and_then(|k| self.streams.get(k))
            .map(Stream::state)
    }

    /// How many streams we may have open: the peer's SETTINGS_MAX_CONCURRENT_STREAMS, and until
    /// its SETTINGS arrive, [`INITIAL_MAX_SEND_STREAMS`] rather than the unlimited initial value
    /// (section 5.1.2), so a burst on a new connection is not refused wholesale.
    fn send_stream_limit(&self) -> u32 {
        if self.settings_received {
            self.peer.max_concurrent_streams
        } else {
            self.peer
                .max_concurrent_streams
                .min(INITIAL_MAX_SEND_STREAMS)
        }
    }

    pub(super) fn key(&self, id: StreamId) -> Option<usize> {
        self.ids.get(&id.get()).copied()
    }

    pub(super) fn is_peer_id(&self, id: StreamId) -> bool {
        match self.role {
            Role::Server => id.is_client_initiated(),
            Role::Client => id.is_server_initiated(),
        }
    }

    /// Section 5.1: idle means never opened (ids below an opened one are implicitly closed).
    pub(super) fn is_idle(&self, id: StreamId) -> bool {
        if self.is_peer_id(id) {
            id.get() > self.last_peer_id
        } else {
            id.get() > self.last_local_started
        }
    }

    pub(super) fn insert(&mut self, s: Stream) {
        let id = s.id.get();
        if s.peer_initiated {
            self.peer_active += 1;
        } else {
            self.local_active += 1;
        }
        let key = self.streams.insert(s);
        self.ids.insert(id, key);
    }

    pub(super) fn remove(&mut self, key: usize, reset_by_us: bool) {
        if !self.streams.contains(key) {
            return;
        }
        let s = self.streams.remove(key);
        self.ids.remove(&s.id.get());
        if s.peer_initiated {
            self.peer_active = self.peer_active.saturating_sub(1);
        } else {
            self.local_active = self.local_active.saturating_sub(1);
        }
        if self.recently_closed.len() >= RECENTLY_CLOSED {
            self.recently_closed.pop_front();
        }
        self.recently_closed.push_back((s.id, reset_by_us));
    }

    pub(super) fn close_send(&mut self, key: usize) {
        let Some(s) = self.streams.get_mut(key) else {
            return;
        };
        s.send_closed = true;
        if s.recv_closed {
            self.remove(key, false);
        }
    }

    pub(super) fn close_recv(&mut self, key: usize) {
        let Some(s) = self.streams.get_mut(key) else {
            return;
        };
        s.recv_closed = true;
        if s.send_closed {
            self.remove(key, false);
        }
    }
}
