//! Flow control (RFC 9113 sections 5.2, 6.9, 6.9.1): the send windows the peer grants us and
//! the receive windows we grant it, per stream and for the connection.
//!
//! Owns WINDOW_UPDATE in both directions: a received one opens a send window (or is a
//! FLOW_CONTROL_ERROR past 2^31-1), and octets the application releases go back to the peer
//! once half a window is pending. DATA debits its windows where it is sent or received, and a
//! change of SETTINGS_INITIAL_WINDOW_SIZE (section 6.9.2) is applied with the other SETTINGS.

use super::{ConnError, ConnErrorKind, Connection, DEFAULT_WINDOW, Event};
use crate::http2::frame::{MAX_WINDOW_SIZE, Reason, StreamId, WindowUpdate};

impl Connection {
    /// Octets [`Self::send_data`] could send on `stream` right now.
    pub fn send_capacity(&self, stream: StreamId) -> usize {
        self.key(stream)
            .and_then(|k| self.streams.get(k))
            .map_or(0, |s| {
                usize::try_from(s.send_window.min(self.conn_send_window).max(0)).unwrap_or(0)
            })
    }

    /// The application consumed `n` octets of [`Event::Data`] on `stream`: reopen the windows
    /// (WINDOW_UPDATE once half a window is pending). Call it for every delivered octet, also
    /// after the stream ended.
    pub fn release_capacity(&mut self, stream: StreamId, n: u32) {
        match self.key(stream) {
            Some(key) => self.release(key, n),
            None => self.release_conn(n),
        }
    }

    pub(super) fn recv_window_update(&mut self, w: WindowUpdate) -> Result<(), ConnError> {
        let inc = i64::from(w.increment);
        if w.stream_id.is_zero() {
            // Section 6.9.1: "If a sender receives a WINDOW_UPDATE that causes a flow-control
            // window to exceed this maximum, it MUST terminate either the stream or the
            // connection, as appropriate ... with an error code of FLOW_CONTROL_ERROR".
            if self.conn_send_window + inc > i64::from(MAX_WINDOW_SIZE) {
                self.counters.flow_control_errors += 1;
                return Err(self.fail(Reason::FLOW_CONTROL_ERROR, ConnErrorKind::WindowOverflow));
            }
            self.conn_send_window += inc;
            self.events.push_back(Event::WindowOpened(StreamId::ZERO));
            return Ok(());
        }
        let Some(key) = self.key(w.stream_id) else {
            if self.is_idle(w.stream_id) {
                return Err(self.fail(Reason::PROTOCOL_ERROR, ConnErrorKind::IdleStream));
            }
            return Ok(());
        };
        let Some(s) = self.streams.get_mut(key) else {
            return Ok(());
        };
        if s.is_local_idle() {
            return Err(self.fail(Reason::PROTOCOL_ERROR, ConnErrorKind::IdleStream));
        }
        if s.send_window + inc > i64::from(MAX_WINDOW_SIZE) {
            self.counters.flow_control_errors += 1;
            return self.peer_fault(w.stream_id, Reason::FLOW_CONTROL_ERROR);
        }
        s.send_window += inc;
        self.events.push_back(Event::WindowOpened(w.stream_id));
        Ok(())
    }

    pub(super) fn release(&mut self, key: usize, n: u32) {
        self.release_conn(n);
        let target = self.config.initial_window_size;
        let Some(s) = self.streams.get_mut(key) else {
            return;
        };
        if s.recv_closed {
            return;
        }
        s.unreleased = s.unreleased.saturating_add(n);
        if s.unreleased >= target / 2 {
            let inc = s.unreleased;
            s.unreleased = 0;
            s.recv_window += i64::from(inc);
            WindowUpdate::new(s.id, inc).encode(&mut self.out);
        }
    }

    pub(super) fn release_conn(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        self.conn_unreleased = self.conn_unreleased.saturating_add(n);
        let target = self.config.connection_window_size.max(DEFAULT_WINDOW);
        if self.conn_unreleased >= target / 2 {
            let inc = self.conn_unreleased.min(MAX_WINDOW_SIZE);
            self.conn_unreleased = 0;
            self.conn_recv_window += i64::from(inc);
            WindowUpdate::new(StreamId::ZERO, inc).encode(&mut self.out);
        }
    }

    /// The receive window a new stream starts with: the peer may use the default until it
    /// acknowledges our SETTINGS.
    pub(super) fn local_initial_window(&self) -> u32 {
        if self.local_settings_acked {
            self.config.initial_window_size
        } else {
            self.config.initial_window_size.max(DEFAULT_WINDOW)
        }
    }
}
