//! SETTINGS frames (RFC 9113 section 6.5) and the defined parameters (section 6.5.2).
//!
//! Owns parsing, value range checks and encoding. Does not apply settings or track ACKs; the
//! connection does.

use super::{
    DEFAULT_MAX_FRAME_SIZE, Error, ErrorKind, Head, Kind, MAX_MAX_FRAME_SIZE, MAX_WINDOW_SIZE,
    Reason, StreamId, flags,
};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// One known SETTINGS parameter (section 6.5.2; 0x8 from RFC 8441).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Setting {
    /// SETTINGS_HEADER_TABLE_SIZE (0x1).
    HeaderTableSize(u32),
    /// SETTINGS_ENABLE_PUSH (0x2).
    EnablePush(bool),
    /// SETTINGS_MAX_CONCURRENT_STREAMS (0x3).
    MaxConcurrentStreams(u32),
    /// SETTINGS_INITIAL_WINDOW_SIZE (0x4).
    InitialWindowSize(u32),
    /// SETTINGS_MAX_FRAME_SIZE (0x5).
    MaxFrameSize(u32),
    /// SETTINGS_MAX_HEADER_LIST_SIZE (0x6).
    MaxHeaderListSize(u32),
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (0x8, RFC 8441).
    EnableConnectProtocol(bool),
}

impl Setting {
    /// Parses one identifier/value pair; `Ok(None)` for unknown identifiers.
    pub fn parse(id: u16, value: u32) -> Result<Option<Self>, Error> {
        let bad = |reason| Err(Error::conn(reason, ErrorKind::BadSettingValue));
        Ok(Some(match id {
            0x1 => Self::HeaderTableSize(value),
            0x2 => match value {
                0 => Self::EnablePush(false),
                1 => Self::EnablePush(true),
                // Section 6.5.2: "Any value other than 0 or 1 MUST be treated as a connection
                // error of type PROTOCOL_ERROR."
                _ => return bad(Reason::PROTOCOL_ERROR),
            },
            0x3 => Self::MaxConcurrentStreams(value),
            0x4 => {
                // Section 6.5.2: "Values above the maximum flow-control window size of 2^31-1
                // MUST be treated as a connection error of type FLOW_CONTROL_ERROR."
                if value > MAX_WINDOW_SIZE {
                    return bad(Reason::FLOW_CONTROL_ERROR);
                }
                Self::InitialWindowSize(value)
            }
            0x5 => {
                // Section 6.5.2: "Values outside this range MUST be treated as a connection
                // error of type PROTOCOL_ERROR." (range 2^14 ..= 2^24-1)
                if !(DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&value) {
                    return bad(Reason::PROTOCOL_ERROR);
                }
                Self::MaxFrameSize(value)
            }
            0x6 => Self::MaxHeaderListSize(value),
            0x8 => match value {
                0 => Self::EnableConnectProtocol(false),
                1 => Self::EnableConnectProtocol(true),
                // RFC 8441 section 3: other values are a PROTOCOL_ERROR.
                _ => return bad(Reason::PROTOCOL_ERROR),
            },
            // Section 6.5.2: "An endpoint that receives a SETTINGS frame with any unknown or
            // unsupported identifier MUST ignore that setting."
            _ => return Ok(None),
        }))
    }
}

/// A SETTINGS frame; `None` fields were not present.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Settings {
    /// ACK flag; an ACK carries no parameters.
    pub ack: bool,
    /// SETTINGS_HEADER_TABLE_SIZE.
    pub header_table_size: Option<u32>,
    /// SETTINGS_ENABLE_PUSH.
    pub enable_push: Option<bool>,
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    pub max_concurrent_streams: Option<u32>,
    /// SETTINGS_INITIAL_WINDOW_SIZE.
    pub initial_window_size: Option<u32>,
    /// SETTINGS_MAX_FRAME_SIZE.
    pub max_frame_size: Option<u32>,
    /// SETTINGS_MAX_HEADER_LIST_SIZE.
    pub max_header_list_size: Option<u32>,
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441).
    pub enable_connect_protocol: Option<bool>,
}

impl Settings {
    /// A SETTINGS acknowledgement.
    pub fn ack() -> Self {
        Self {
            ack: true,
            ..Self::default()
        }
    }

    /// Records one parameter; a later value for the same parameter wins (section 6.5.3:
    /// "processed in the order in which they appear").
    pub fn set(&mut self, setting: Setting) {
        match setting {
            Setting::HeaderTableSize(v) => self.header_table_size = Some(v),
            Setting::EnablePush(v) => self.enable_push = Some(v),
            Setting::MaxConcurrentStreams(v) => self.max_concurrent_streams = Some(v),
            Setting::InitialWindowSize(v) => self.initial_window_size = Some(v),
            Setting::MaxFrameSize(v) => self.max_frame_size = Some(v),
            Setting::MaxHeaderListSize(v) => self.max_header_list_size = Some(v),
            Setting::EnableConnectProtocol(v) => self.enable_connect_protocol = Some(v),
        }
    }

    /// Validates a SETTINGS payload.
    pub fn load(head: Head, mut payload: Bytes) -> Result<Self, Error> {
        // Section 6.5: "If an endpoint receives a SETTINGS frame whose Stream Identifier field
        // is anything other than 0x00, the endpoint MUST respond with a connection error of
        // type PROTOCOL_ERROR."
        if !head.stream_id.is_zero() {
            return Err(Error::conn(
                Reason::PROTOCOL_ERROR,
                ErrorKind::StreamIdNotZero,
            ));
        }
        if head.has(flags::ACK) {
            // Section 6.5: "Receipt of a SETTINGS frame with the ACK flag set and a length
            // field value other than 0 MUST be treated as a connection error of type
            // FRAME_SIZE_ERROR."
            if !payload.is_empty() {
                return Err(Error::conn(Reason::FRAME_SIZE_ERROR, ErrorKind::BadLength));
            }
            return Ok(Self::ack());
        }
        // Section 6.5: "A SETTINGS frame with a length other than a multiple of 6 octets MUST
        // be treated as a connection error of type FRAME_SIZE_ERROR."
        if !payload.len().is_multiple_of(6) {
            return Err(Error::conn(Reason::FRAME_SIZE_ERROR, ErrorKind::BadLength));
        }
        let mut out = Self::default();
        while payload.remaining() >= 6 {
            let id = payload.get_u16();
            let value = payload.get_u32();
            if let Some(s) = Setting::parse(id, value)? {
                out.set(s);
            }
        }
        Ok(out)
    }

    /// The present parameters, in identifier order.
    pub fn iter(&self) -> impl Iterator<Item = Setting> {
        [
            self.header_table_size.map(Setting::HeaderTableSize),
            self.enable_push.map(Setting::EnablePush),
            self.max_concurrent_streams
                .map(Setting::MaxConcurrentStreams),
            self.initial_window_size.map(Setting::InitialWindowSize),
            self.max_frame_size.map(Setting::MaxFrameSize),
            self.max_header_list_size.map(Setting::MaxHeaderListSize),
            self.enable_connect_protocol
                .map(Setting::EnableConnectProtocol),
        ]
        .into_iter()
        .flatten()
    }

    /// Appends the frame (ACK frames are written empty).
    pub fn encode(&self, dst: &mut BytesMut) {
        if self.ack {
            Head::new(Kind::Settings, flags::ACK, StreamId::ZERO, 0).encode(dst);
            return;
        }
        let n = u32::try_from(self.iter().count() * 6).unwrap_or(0);
        Head::new(Kind::Settings, 0, StreamId::ZERO, n).encode(dst);
        for s in self.iter() {
            let (id, v) = match s {
                Setting::HeaderTableSize(v) => (1, v),
                Setting::EnablePush(v) => (2, u32::from(v)),
                Setting::MaxConcurrentStreams(v) => (3, v),
                Setting::InitialWindowSize(v) => (4, v),
                Setting::MaxFrameSize(v) => (5, v),
                Setting::MaxHeaderListSize(v) => (6, v),
                Setting::EnableConnectProtocol(v) => (8, u32::from(v)),
            };
            dst.put_u16(id);
            dst.put_u32(v);
        }
    }
}
