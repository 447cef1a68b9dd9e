//! Response head parsing (RFC 9112 sections 4-6): status line, fields and the response's body
//! framing, which depends on the request method and the status code.
//!
//! Owns: [`parse_response`], [`parse_response_for`] and [`ResponseHead`]. Does not: decode the
//! body (see `BodyDecoder`), or decide retries; upstream errors map to 502 in the engine.

use bytes::{Bytes, BytesMut};

use super::headers::{
    self, BodyFraming, Field, HeadError, ScanState, Span, Summary, TransferCoding,
};
use super::{Limits, ResponseError, Version};

/// What the request this response answers was, as far as response framing cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodKind {
    /// A HEAD request: the response has no body whatever its fields say.
    Head,
    /// A CONNECT request: a 2xx response has no body, a tunnel follows.
    Connect,
    /// Any other method.
    Other,
}

/// A parsed response head: the raw bytes of the whole head plus offsets into them.
#[derive(Clone, Debug)]
pub struct ResponseHead {
    raw: Bytes,
    status: u16,
    reason: Span,
    version: Version,
    fields: Vec<Field>,
    framing: BodyFraming,
    keep_alive: bool,
    /// A Connection token other than `close`, `keep-alive` and `upgrade` was seen.
    connection_other: bool,
    upgrade: Option<Span>,
}

impl ResponseHead {
    /// The status code, 100..=999.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase as sent (may be empty).
    pub fn reason(&self) -> &[u8] {
        self.reason.get(&self.raw)
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The fields in order: names as sent, values trimmed of OWS.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        headers::iter_fields(&self.raw, &self.fields)
    }

    /// The number of field lines.
    pub fn header_count(&self) -> usize {
        self.fields.len()
    }

    /// The first value of the field named `lowercase_name` (matched ASCII case-insensitively).
    pub fn header(&self, lowercase_name: &[u8]) -> Option<&[u8]> {
        headers::find_field(&self.raw, &self.fields, lowercase_name)
    }

    /// The body framing (RFC 9112 section 6.3).
    pub fn framing(&self) -> BodyFraming {
        self.framing
    }

    /// Whether the upstream connection may be reused after this response: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`, never when the body is
    /// close-delimited.
    pub fn is_keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Whether this is an interim 1xx response (another head follows, except after 101).
    pub fn is_informational(&self) -> bool {
        (100..200).contains(&self.status)
    }

    /// The Upgrade value of a `101 Switching Protocols` whose Connection lists `upgrade`.
    pub fn upgrade(&self) -> Option<&[u8]> {
        self.upgrade.map(|s| s.get(&self.raw))
    }

    /// The tokens of every Connection field (hop-by-hop field names to strip).
    pub fn connection_tokens(&self) -> impl Iterator<Item = &[u8]> {
        headers::connection_tokens(&self.raw, &self.fields)
    }

    /// Whether a Connection field lists `name` (matched ASCII case-insensitively): a field a
    /// proxy must not forward. Same answer as searching [`Self::connection_tokens`], without
    /// the scan for heads whose Connection fields hold only `close`, `keep-alive`, `upgrade`.
    pub fn connection_lists(&self, name: &[u8]) -> bool {
        headers::connection_lists(&self.raw, &self.fields, self.connection_other, name)
    }

    /// The whole head as received, from the status line to the final CRLFCRLF.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }
}

impl From<HeadError> for ResponseError {
    fn from(e: HeadError) -> Self {
        match e {
            HeadError::StartLineTooLong => Self::HeadTooLarge,
            HeadError::TooLarge => Self::HeadTooLarge,
            HeadError::TooManyFields => Self::TooManyHeaders,
            HeadError::BareLf => Self::BareLf,
            HeadError::BareCr => Self::BareCr,
            HeadError::ObsFold => Self::ObsFold,
            HeadError::HeaderName => Self::InvalidHeaderName,
            HeadError::HeaderValue => Self::InvalidHeaderValue,
            HeadError::ContentLength => Self::InvalidContentLength,
            HeadError::TransferEncoding => Self::InvalidTransferEncoding,
        }
    }
}

/// Parse one response head from the front of `src`.
///
/// `request_method_head`: the request was HEAD (no body whatever the fields say). 1xx, 204 and
/// 304 have no body; without Content-Length or Transfer-Encoding the body is close-delimited.
/// Use [`parse_response_for`] for responses to CONNECT. `Ok(None)`: more bytes are needed. On
/// success the head is split off `src` (zero copy) and the body bytes stay in `src`.
pub fn parse_response(
    src: &mut BytesMut,
    request_method_head: bool,
    limits: &Limits,
) -> Result<Option<ResponseHead>, ResponseError> {
    let kind = if request_method_head {
        MethodKind::Head
    } else {
        MethodKind::Other
    };
    parse_response_for(src, kind, limits)
}

/// [`parse_response`] for any request method; a 2xx to CONNECT has no body (a tunnel follows).
pub fn parse_response_for(
    src: &mut BytesMut,
    method: MethodKind,
    limits: &Limits,
) -> Result<Option<ResponseHead>, ResponseError> {
    ResponseParser::new().parse(src, method, limits)
}

/// Incremental form of [`parse_response_for`]: remembers how far the head was scanned, so a head
/// that arrives in many small reads is scanned once.
///
/// Between calls the caller may only append to `src`; after a head is returned (or an error) the
/// parser is ready for the next head (e.g. the final response after a 1xx).
#[derive(Clone, Debug, Default)]
pub struct ResponseParser {
    scan: ScanState,
}

impl ResponseParser {
    /// A parser at the start of a head.
    pub fn new() -> Self {
        Self::default()
    }

    /// Same contract and result as [`parse_response_for`].
    pub fn parse(
        &mut self,
        src: &mut BytesMut,
        method: MethodKind,
        limits: &Limits,
    ) -> Result<Option<ResponseHead>, ResponseError> {
        let parsed = parse_in_place(src, method, limits, &mut self.scan);
        if !matches!(parsed, Ok(None)) {
            self.scan = ScanState::default();
        }
        let Some((len, head)) = parsed? else {
            return Ok(None);
        };
        let raw = src.split_to(len).freeze();
        Ok(Some(ResponseHead { raw, ..head }))
    }
}

fn parse_in_place(
    buf: &[u8],
    method: MethodKind,
    limits: &Limits,
    st: &mut ScanState,
) -> Result<Option<(usize, ResponseHead)>, ResponseError> {
    let scan = headers::scan_head(buf, limits, limits.max_head, st);
    // Check the status line as soon as it is complete, before the rest of the head.
    let Some(line_end) = st.start_line_end() else {
        scan?;
        return Ok(None);
    };
    let (version, status, reason) = parse_status_line(buf.get(..line_end).unwrap_or_default())?;
    let Some(scan) = scan? else {
        return Ok(None);
    };
    let head_bytes = buf.get(..scan.len).unwrap_or_default();

    let (fields, summary) = headers::parse_fields(head_bytes, line_end + 2, scan.fields)?;
    let reason = Span::of(head_bytes, reason).ok_or(ResponseError::InvalidStatusLine)?;
    let framing = response_framing(version, status, method, &summary)?;
    let keep_alive = framing != BodyFraming::Close
        && match version {
            Version::Http11 => !summary.connection_close,
            Version::Http10 => summary.connection_keep_alive && !summary.connection_close,
        };
    let upgrade = if status == 101 && summary.connection_upgrade {
        summary.upgrade
    } else {
        None
    };
    Ok(Some((
        scan.len,
        ResponseHead {
            raw: Bytes::new(),
            status,
            reason,
            version,
            fields,
            framing,
            keep_alive,
            connection_other: summary.connection_other,
            upgrade,
        },
    )))
}

/// RFC 9112 section 4: `status-line = HTTP-version SP status-code SP [ reason-phrase ]`; a
/// missing final SP before an empty reason is tolerated (common in the wild).
fn parse_status_line(line: &[u8]) -> Result<(Version, u16, &[u8]), ResponseError> {
    let (version, rest) = line
        .split_at_checked(8)
        .ok_or(ResponseError::InvalidStatusLine)?;
    let version = Version::from_bytes(version).ok_or(ResponseError::InvalidVersion)?;
    let (code, reason) = match rest {
        // `tail` (not a literal empty slice) so the reason's span stays inside the head.
        [b' ', a, b, c, tail @ ..] if tail.is_empty() => ([*a, *b, *c], tail),
        [b' ', a, b, c, b' ', reason @ ..] => ([*a, *b, *c], reason),
        _ => return Err(ResponseError::InvalidStatusLine),
    };
    if !code.iter().all(u8::is_ascii_digit) {
        return Err(ResponseError::InvalidStatus);
    }
    let status = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    // RFC 9110 section 15: status codes are 100..=599 in use; the syntax allows up to 999.
    if status < 100 {
        return Err(ResponseError::InvalidStatus);
    }
    // RFC 9112 section 4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ).
    if !headers::is_field_value(reason) {
        return Err(ResponseError::InvalidStatusLine);
    }
    Ok((version, status, reason))
}

/// RFC 9112 section 6.3, in order: HEAD / 1xx / 204 / 304 -> none; 2xx to CONNECT -> none
/// (tunnel); Transfer-Encoding chunked last -> chunked, other codings -> close-delimited;
/// Content-Length -> length; else close-delimited.
fn response_framing(
    version: Version,
    status: u16,
    method: MethodKind,
    s: &Summary,
) -> Result<BodyFraming, ResponseError> {
    let te_present = s.transfer_coding != TransferCoding::Absent;
    // Refuse the smuggling shapes whatever the status: a peer that sends them is confused.
    if te_present && s.content_length_count > 0 {
        return Err(ResponseError::TeAndContentLength);
    }
    if te_present && version == Version::Http10 {
        return Err(ResponseError::TransferEncodingInHttp10);
    }
    // RFC 9112 section 6.3 item 5: differing Content-Length values are unrecoverable; equal
    // repeated values may be collapsed.
    if s.content_length_differs {
        return Err(ResponseError::DuplicateContentLength);
    }
    if method == MethodKind::Head || status < 200 || status == 204 || status == 304 {
        return Ok(BodyFraming::None);
    }
    if method == MethodKind::Connect && (200..300).contains(&status) {
        return Ok(BodyFraming::None);
    }
    Ok(match (s.transfer_coding, s.content_length) {
        (TransferCoding::Chunked { .. }, _) => BodyFraming::Chunked,
        (TransferCoding::NotChunked { .. }, _) => BodyFraming::Close,
        (TransferCoding::Absent, Some(n)) => BodyFraming::Length(n),
        (TransferCoding::Absent, None) => BodyFraming::Close,
    })
}
