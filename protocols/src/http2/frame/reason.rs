//! HTTP/2 error codes (RFC 9113 section 7), carried by RST_STREAM and GOAWAY.
//!
//! Owns the `Reason` newtype and its named constants. Does not decide which error a condition
//! maps to; that is the job of the frame and connection code.

use core::fmt;

/// An HTTP/2 error code (RFC 9113 section 7). Unknown codes are kept as-is: "Unknown or
/// unsupported error codes MUST NOT trigger any special behavior."
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reason(u32);

impl Reason {
    /// The associated condition is not a result of an error.
    pub const NO_ERROR: Self = Self(0x0);
    /// The endpoint detected an unspecific protocol error.
    pub const PROTOCOL_ERROR: Self = Self(0x1);
    /// The endpoint encountered an unexpected internal error.
    pub const INTERNAL_ERROR: Self = Self(0x2);
    /// The endpoint detected that its peer violated the flow-control protocol.
    pub const FLOW_CONTROL_ERROR: Self = Self(0x3);
    /// The endpoint sent a SETTINGS frame but did not receive a response in a timely manner.
    pub const SETTINGS_TIMEOUT: Self = Self(0x4);
    /// The endpoint received a frame after a stream was half-closed.
    pub const STREAM_CLOSED: Self = Self(0x5);
    /// The endpoint received a frame with an invalid size.
    pub const FRAME_SIZE_ERROR: Self = Self(0x6);
    /// The endpoint refused the stream prior to performing any application processing.
    pub const REFUSED_STREAM: Self = Self(0x7);
    /// The endpoint uses this error code to indicate that the stream is no longer needed.
    pub const CANCEL: Self = Self(0x8);
    /// The endpoint is unable to maintain the field section compression context.
    pub const COMPRESSION_ERROR: Self = Self(0x9);
    /// The connection established in response to a CONNECT request was reset or closed.
    pub const CONNECT_ERROR: Self = Self(0xa);
    /// The endpoint detected that its peer is exhibiting a behavior that might be generating
    /// excessive load.
    pub const ENHANCE_YOUR_CALM: Self = Self(0xb);
    /// The underlying transport has properties that do not meet minimum security requirements.
    pub const INADEQUATE_SECURITY: Self = Self(0xc);
    /// The endpoint requires that HTTP/1.1 be used instead of HTTP/2.
    pub const HTTP_1_1_REQUIRED: Self = Self(0xd);

    /// Wraps a raw error code as found on the wire.
    pub const fn new(code: u32) -> Self {
        Self(code)
    }

    /// The raw error code.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The RFC name of a known code, `None` for codes this implementation does not know.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            _ => return None,
        })
    }
}

impl From<u32> for Reason {
    fn from(code: u32) -> Self {
        Self(code)
    }
}

impl From<Reason> for u32 {
    fn from(reason: Reason) -> Self {
        reason.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "unknown error code {:#x}", self.0),
        }
    }
}

impl fmt::Debug for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Reason({:#x})", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sec7_known_codes_display_their_names() {
        assert_eq!(Reason::NO_ERROR.to_string(), "NO_ERROR");
        assert_eq!(Reason::HTTP_1_1_REQUIRED.to_string(), "HTTP_1_1_REQUIRED");
        assert_eq!(Reason::ENHANCE_YOUR_CALM.get(), 0xb);
    }

    #[test]
    fn sec7_unknown_codes_are_kept() {
        let r = Reason::from(0xdead);
        assert_eq!(r.get(), 0xdead);
        assert_eq!(r.name(), None);
        assert_eq!(r.to_string(), "unknown error code 0xdead");
    }
}
