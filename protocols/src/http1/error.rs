//! Typed errors of the HTTP/1 codec, one small `Copy` enum per layer (request head, response
//! head, body), each mapped to its wire reaction. Does not carry bytes or messages: the
//! variant says what was wrong.

use core::fmt;

/// Why a downstream request head was refused. [`RequestError::status`] gives the response status;
/// after any of these the connection must be closed, since framing is in doubt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// The request line is longer than `Limits::max_request_line` (414).
    RequestLineTooLong,
    /// The head is larger than `Limits::max_head` (431).
    HeadTooLarge,
    /// More header field lines than `Limits::max_headers` (431).
    TooManyHeaders,
    /// The request line is not `method SP target SP version` with single spaces (400).
    InvalidRequestLine,
    /// The method is not a token (400).
    InvalidMethod,
    /// The request target has a byte outside visible ASCII, a fragment, or a form not allowed
    /// for the method (400).
    InvalidTarget,
    /// A well-formed `HTTP/x.y` version other than 1.0 and 1.1 (505).
    UnsupportedVersion,
    /// The version is not of the form `HTTP/DIGIT.DIGIT` (400).
    InvalidVersion,
    /// A LF not preceded by CR (400).
    BareLf,
    /// A CR not followed by LF (400).
    BareCr,
    /// A field line starts with whitespace: obs-fold, or whitespace after the start line (400).
    ObsFold,
    /// A field name is empty, not a token, or followed by whitespace before the colon (400).
    InvalidHeaderName,
    /// A field value contains NUL, CR, LF or another control character except HTAB (400).
    InvalidHeaderValue,
    /// Content-Length is not a plain decimal that fits in a u64 (400).
    InvalidContentLength,
    /// Content-Length appears more than once, including as a list (400).
    DuplicateContentLength,
    /// Transfer-Encoding and Content-Length are both present (400).
    TeAndContentLength,
    /// Transfer-Encoding names a coding we do not implement or does not end in chunked (501).
    UnsupportedTransferCoding,
    /// Transfer-Encoding is malformed: empty element, parameters, repeated or non-final chunked (400).
    InvalidTransferEncoding,
    /// Transfer-Encoding in an HTTP/1.0 request (400).
    TransferEncodingInHttp10,
    /// An HTTP/1.1 request without Host (400).
    MissingHost,
    /// More than one Host field (400).
    DuplicateHost,
    /// The Host value (or the target's authority) is not `host[:port]` (400).
    InvalidHost,
}

impl RequestError {
    /// The HTTP status to answer with (400, 414, 431, 501 or 505).
    pub fn status(self) -> u16 {
        match self {
            Self::RequestLineTooLong => 414,
            Self::HeadTooLarge | Self::TooManyHeaders => 431,
            Self::UnsupportedTransferCoding => 501,
            Self::UnsupportedVersion => 505,
            _ => 400,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::RequestLineTooLong => "request line too long",
            Self::HeadTooLarge => "request head too large",
            Self::TooManyHeaders => "too many header fields",
            Self::InvalidRequestLine => "malformed request line",
            Self::InvalidMethod => "invalid method",
            Self::InvalidTarget => "invalid request target",
            Self::UnsupportedVersion => "unsupported HTTP version",
            Self::InvalidVersion => "invalid HTTP version",
            Self::BareLf => "bare LF in head",
            Self::BareCr => "bare CR in head",
            Self::ObsFold => "obsolete line folding",
            Self::InvalidHeaderName => "invalid header name",
            Self::InvalidHeaderValue => "invalid header value",
            Self::InvalidContentLength => "invalid Content-Length",
            Self::DuplicateContentLength => "duplicate Content-Length",
            Self::TeAndContentLength => "both Transfer-Encoding and Content-Length",
            Self::UnsupportedTransferCoding => "unsupported transfer coding",
            Self::InvalidTransferEncoding => "invalid Transfer-Encoding",
            Self::TransferEncodingInHttp10 => "Transfer-Encoding in HTTP/1.0 request",
            Self::MissingHost => "missing Host",
            Self::DuplicateHost => "duplicate Host",
            Self::InvalidHost => "invalid Host",
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for RequestError {}

/// Why an upstream response head was refused; the proxy answers 502 and closes the upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseError {
    /// The head is larger than `Limits::max_head`.
    HeadTooLarge,
    /// More header field lines than `Limits::max_headers`.
    TooManyHeaders,
    /// The status line is not `version SP 3DIGIT [SP reason]`.
    InvalidStatusLine,
    /// The version is not exactly `HTTP/1.0` or `HTTP/1.1`.
    InvalidVersion,
    /// The status code is not three digits in 100..=999.
    InvalidStatus,
    /// A LF not preceded by CR.
    BareLf,
    /// A CR not followed by LF.
    BareCr,
    /// A field line starts with whitespace (obs-fold).
    ObsFold,
    /// A field name is empty, not a token, or followed by whitespace before the colon.
    InvalidHeaderName,
    /// A field value contains a control character other than HTAB.
    InvalidHeaderValue,
    /// Content-Length is not a plain decimal that fits in a u64.
    InvalidContentLength,
    /// Several Content-Length values that differ.
    DuplicateContentLength,
    /// Transfer-Encoding and Content-Length are both present.
    TeAndContentLength,
    /// Transfer-Encoding is malformed: empty element, parameters, repeated or non-final chunked.
    InvalidTransferEncoding,
    /// Transfer-Encoding in an HTTP/1.0 response.
    TransferEncodingInHttp10,
}

impl ResponseError {
    fn as_str(self) -> &'static str {
        match self {
            Self::HeadTooLarge => "response head too large",
            Self::TooManyHeaders => "too many header fields",
            Self::InvalidStatusLine => "malformed status line",
            Self::InvalidVersion => "invalid HTTP version",
            Self::InvalidStatus => "invalid status code",
            Self::BareLf => "bare LF in head",
            Self::BareCr => "bare CR in head",
            Self::ObsFold => "obsolete line folding",
            Self::InvalidHeaderName => "invalid header name",
            Self::InvalidHeaderValue => "invalid header value",
            Self::InvalidContentLength => "invalid Content-Length",
            Self::DuplicateContentLength => "conflicting Content-Length",
            Self::TeAndContentLength => "both Transfer-Encoding and Content-Length",
            Self::InvalidTransferEncoding => "invalid Transfer-Encoding",
            Self::TransferEncodingInHttp10 => "Transfer-Encoding in HTTP/1.0 response",
        }
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for ResponseError {}

/// Why a message body could not be decoded; framing is lost, so the connection must close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// The peer closed before a Content-Length or chunked body was complete.
    Incomplete,
    /// The chunk size is not 1*HEXDIG, or is followed by something other than `;` or CRLF.
    InvalidChunkSize,
    /// The chunk size has more than 16 hex digits (would not fit a u64).
    ChunkSizeOverflow,
    /// A chunk extension is not `;name[=token|quoted-string]`.
    InvalidChunkExtension,
    /// A chunk-size line is longer than [`crate::http1::MAX_CHUNK_LINE`].
    ChunkLineTooLong,
    /// Chunk data is not followed by CRLF.
    MissingChunkCrlf,
    /// A LF not preceded by CR in chunk framing or trailers.
    BareLf,
    /// A CR not followed by LF in chunk framing or trailers.
    BareCr,
    /// A trailer field line is malformed (name not a token, bad value, obs-fold).
    InvalidTrailer,
    /// The trailer section is larger than [`crate::http1::MAX_TRAILERS`].
    TrailersTooLarge,
}

impl BodyError {
    fn as_str(self) -> &'static str {
        match self {
            Self::Incomplete => "connection closed mid-body",
            Self::InvalidChunkSize => "invalid chunk size",
            Self::ChunkSizeOverflow => "chunk size overflow",
            Self::InvalidChunkExtension => "invalid chunk extension",
            Self::ChunkLineTooLong => "chunk size line too long",
            Self::MissingChunkCrlf => "chunk data not followed by CRLF",
            Self::BareLf => "bare LF in chunked framing",
            Self::BareCr => "bare CR in chunked framing",
            Self::InvalidTrailer => "invalid trailer field",
            Self::TrailersTooLarge => "trailer section too large",
        }
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for BodyError {}
