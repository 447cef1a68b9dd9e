//! Request head parsing (RFC 9112 sections 2-3, 5-6): request line, target forms, Host and the
//! request's body framing, with the strictness a proxy needs to refuse every smuggling shape.
//!
//! Owns: [`parse_request`] and [`RequestHead`]. Does not: decode the body (see `BodyDecoder`),
//! normalise or percent-decode the path, or rewrite any field.

use bytes::{Buf, Bytes, BytesMut};

use super::headers::{
    self, BodyFraming, HeadError, ScanState, Span, Summary, TransferCoding, is_token,
    is_valid_authority,
};
use super::{Limits, RequestError, Version, is_version_shaped};
use crate::http::{RequestHead, TargetForm};

impl From<HeadError> for RequestError {
    fn from(e: HeadError) -> Self {
        match e {
            HeadError::StartLineTooLong => Self::RequestLineTooLong,
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

/// Parse one request head from the front of `src`.
///
/// `Ok(None)`: more bytes are needed; errors come early when the buffered bytes already break a
/// limit or a rule. Leading empty lines (CRLF) before the request line are consumed and ignored
/// (RFC 9112 section 2.2), even when `Ok(None)` is returned. On success the head's bytes are split
/// off `src` (zero copy) and any following bytes (body, pipelined requests) stay in `src`.
///
/// Each call rescans the buffered head; a connection should prefer [`RequestParser`], which
/// resumes where the last call stopped.
pub fn parse_request(
    src: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<RequestHead>, RequestError> {
    RequestParser::new().parse(src, limits)
}

/// Incremental form of [`parse_request`]: remembers how far the head was scanned, so a head that
/// arrives in many small reads is scanned once (a slowloris costs O(n), not O(n^2)).
///
/// Between calls the caller may only append to `src`; after a head is returned (or an error) the
/// parser is ready for the next head on the same connection.
#[derive(Clone, Debug, Default)]
pub struct RequestParser {
    scan: ScanState,
}

impl RequestParser {
    /// A parser at the start of a head.
    pub fn new() -> Self {
        Self::default()
    }

    /// Same contract and result as [`parse_request`].
    pub fn parse(
        &mut self,
        src: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Option<RequestHead>, RequestError> {
        // RFC 9112 section 2.2: a server SHOULD ignore at least one empty line (CRLF) received
        // prior to the request-line.
        loop {
            match (src.first(), src.get(1)) {
                (Some(b'\r'), Some(b'\n')) => {
                    src.advance(2);
                    self.scan = ScanState::default();
                }
                (Some(b'\r'), None) | (None, _) => return Ok(None),
                (Some(b'\r'), Some(_)) => return Err(RequestError::BareCr),
                (Some(b'\n'), _) => return Err(RequestError::BareLf),
                _ => break,
            }
        }
        let parsed = parse_in_place(src, limits, &mut self.scan);
        if !matches!(parsed, Ok(None)) {
            self.scan = ScanState::default();
        }
        let Some(parsed) = parsed? else {
            return Ok(None);
        };
        let raw = src.split_to(parsed.len).freeze();
        Ok(Some(RequestHead { raw, ..parsed.head }))
    }
}

/// A head parsed over the borrowed buffer, waiting for its bytes to be split off.
struct Parsed {
    len: usize,
    head: RequestHead,
}

fn parse_in_place(
    buf: &[u8],
    limits: &Limits,
    st: &mut ScanState,
) -> Result<Option<Parsed>, RequestError> {
    // RFC 9112 section 3: the request line. 414 as soon as it is longer than allowed, even
    // before its CRLF arrives (scan_head reports it).
    let scan = headers::scan_head(buf, limits, limits.max_request_line, st);
    let Some(line_end) = st.start_line_end() else {
        scan?;
        return Ok(None);
    };
    let line = buf.get(..line_end).unwrap_or_default();
    if line.len() > limits.max_request_line {
        return Err(RequestError::RequestLineTooLong);
    }
    // The request line is judged before later lines, so the verdict does not depend on how
    // the bytes were split across reads.
    let (method, target, version) = split_request_line(line)?;
    let t = parse_target(buf, method, target)?;
    let Some(scan) = scan? else {
        return Ok(None);
    };
    let head_bytes = buf.get(..scan.len).unwrap_or_default();

    let (fields, summary) = headers::parse_fields(head_bytes, line_end + 2, scan.fields)?;

    let method_span = span(head_bytes, method)?;
    let target_span = span(head_bytes, target)?;
    let authority = check_host(head_bytes, version, &summary, t.authority)?;
    let framing = request_framing(version, &summary)?;
    let keep_alive = match version {
        Version::Http11 => !summary.connection_close,
        Version::Http10 => summary.connection_keep_alive && !summary.connection_close,
    };
    let http11 = version == Version::Http11;
    Ok(Some(Parsed {
        len: scan.len,
        head: RequestHead {
            raw: Bytes::new(),
            method: method_span,
            target: target_span,
            path: t.path,
            query: t.query,
            authority,
            form: t.form,
            version,
            fields,
            framing,
            keep_alive,
            connection_other: summary.connection_other,
            expect_continue: http11 && summary.expect_continue,
            upgrade: if http11 && summary.connection_upgrade {
                summary.upgrade
            } else {
                None
            },
            text: true,
        },
    }))
}

fn span(base: &[u8], part: &[u8]) -> Result<Span, RequestError> {
    Span::of(base, part).ok_or(RequestError::InvalidRequestLine)
}

/// RFC 9112 section 3: `request-line = method SP request-target SP HTTP-version`, single SP.
fn split_request_line(line: &[u8]) -> Result<(&[u8], &[u8], Version), RequestError> {
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::InvalidRequestLine);
    };
    if method.is_empty() || target.is_empty() || version.contains(&b' ') {
        return Err(RequestError::InvalidRequestLine);
    }
    // RFC 9110 section 9.1: method = token.
    if !is_token(method) {
        return Err(RequestError::InvalidMethod);
    }
    // RFC 9112 section 2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT; we serve 1.0 and 1.1.
    let version = match Version::from_bytes(version) {
        Some(v) => v,
        None if is_version_shaped(version) => return Err(RequestError::UnsupportedVersion),
        None => return Err(RequestError::InvalidVersion),
    };
    Ok((method, target, version))
}

struct Target {
    form: TargetForm,
    path: Option<Span>,
    query: Span,
    authority: Option<Span>,
}

/// RFC 9112 section 3.2: origin-form, absolute-form (http/https), authority-form (CONNECT only)
/// and asterisk-form (OPTIONS only). Bytes must be visible ASCII; no fragment is allowed.
fn parse_target(base: &[u8], method: &[u8], target: &[u8]) -> Result<Target, RequestError> {
    let bad = RequestError::InvalidTarget;
    if !is_target_text(target) {
        return Err(bad);
    }
    let sp = |part: &[u8]| Span::of(base, part).ok_or(bad);
    if method == b"CONNECT" {
        // RFC 9112 section 3.2.3: authority-form is only used for CONNECT, which uses only it.
        if !is_valid_authority(target, true) {
            return Err(bad);
        }
        return Ok(Target {
            form: TargetForm::Authority,
            path: Some(Span::default()),
            query: Span::default(),
            authority: Some(sp(target)?),
        });
    }
    if target.first() == Some(&b'/') {
        let (path, query) = split_query(target);
        return Ok(Target {
            form: TargetForm::Origin,
            path: Some(sp(path)?),
            query: query.map(sp).transpose()?.unwrap_or_default(),
            authority: None,
        });
    }
    if target == b"*" {
        // RFC 9112 section 3.2.4: asterisk-form is only used for a server-wide OPTIONS.
        if method != b"OPTIONS" {
            return Err(bad);
        }
        return Ok(Target {
            form: TargetForm::Asterisk,
            path: Some(sp(target)?),
            query: Span::default(),
            authority: None,
        });
    }
    // RFC 9112 section 3.2.2: absolute-form = absolute-URI; we proxy http and https only.
    let rest = strip_prefix_ci(target, b"http://")
        .or_else(|| strip_prefix_ci(target, b"https://"))
        .ok_or(bad)?;
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let (authority, path_query) = rest.split_at(end);
    // RFC 9110 section 4.2.1: an http URI has a non-empty host and no userinfo we would honour.
    if !is_valid_authority(authority, false) {
        return Err(bad);
    }
    let (path, query) = split_query(path_query);
    Ok(Target {
        form: TargetForm::Absolute,
        path: if path.is_empty() {
            None
        } else {
            Some(sp(path)?)
        },
        query: query.map(sp).transpose()?.unwrap_or_default(),
        authority: Some(sp(authority)?),
    })
}

/// A request target's bytes: visible ASCII only, and no fragment (RFC 9112 section 3.2; the
/// same rule for an HTTP/2 `:path`, RFC 9113 8.3.1).
pub(crate) fn is_target_text(target: &[u8]) -> bool {
    target.iter().all(|&b| (0x21..=0x7e).contains(&b)) && !target.contains(&b'#')
}

/// The path and the query (without its `?`, `None` when there is no `?`) of a target.
pub(crate) fn split_query(v: &[u8]) -> (&[u8], Option<&[u8]>) {
    match v.iter().position(|&b| b == b'?') {
        Some(i) => {
            let (path, q) = v.split_at(i);
            (path, q.get(1..))
        }
        None => (v, None),
    }
}

fn strip_prefix_ci<'a>(v: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let (head, rest) = v.split_at_checked(prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then_some(rest)
}

/// RFC 9112 section 3.2: a server MUST respond 400 to an HTTP/1.1 request without Host, or with
/// more than one Host, or with an invalid Host. The target's authority, when there is one, wins.
fn check_host(
    base: &[u8],
    version: Version,
    s: &Summary,
    target_authority: Option<Span>,
) -> Result<Span, RequestError> {
    if s.host_count > 1 {
        return Err(RequestError::DuplicateHost);
    }
    let host = match s.host {
        Some(span) => {
            let v = span.get(base);
            // An empty Host is allowed when the target URI has no authority (RFC 9110 7.2).
            if !v.is_empty() && !is_valid_authority(v, false) {
                return Err(RequestError::InvalidHost);
            }
            span
        }
        None if version == Version::Http11 => return Err(RequestError::MissingHost),
        None => Span::default(),
    };
    Ok(target_authority.unwrap_or(host))
}

/// RFC 9112 section 6.3 for requests: Transfer-Encoding (chunked last) > Content-Length > none.
fn request_framing(version: Version, s: &Summary) -> Result<BodyFraming, RequestError> {
    if let TransferCoding::Chunked { unknown } | TransferCoding::NotChunked { unknown } =
        s.transfer_coding
    {
        // RFC 9112 section 6.1: Transfer-Encoding in HTTP/1.0 means faulty framing.
        if version == Version::Http10 {
            return Err(RequestError::TransferEncodingInHttp10);
        }
        // RFC 9112 section 6.1: a server MAY reject a request with both; a proxy must not
        // forward both. We reject, closing the smuggling shape outright.
        if s.content_length_count > 0 {
            return Err(RequestError::TeAndContentLength);
        }
        // RFC 9112 section 6.1: a coding the server does not understand -> 501; section 6.3:
        // chunked not final -> length unknown, refuse.
        return match s.transfer_coding {
            TransferCoding::Chunked { .. } if !unknown => Ok(BodyFraming::Chunked),
            _ => Err(RequestError::UnsupportedTransferCoding),
        };
    }
    match s.content_length {
        // RFC 9112 section 6.3: several Content-Length values (even equal ones, or "5, 5") are
        // refused in requests; the RFC allows collapsing equal values, we do not.
        Some(_) if s.content_length_count > 1 => Err(RequestError::DuplicateContentLength),
        Some(n) => Ok(BodyFraming::Length(n)),
        None => Ok(BodyFraming::None),
    }
}
