//! The protocol-neutral request head: what the router, the filters and both upstream codecs
//! read, whichever protocol the request came in on.
//!
//! Owns: [`RequestHead`]. One buffer holds every byte of the head and the head keeps `u32`
//! offset spans into it, so reading a field copies nothing and a head is one allocation for its
//! bytes plus one for its field list. For HTTP/1 the buffer is the head as received (split off
//! the connection's read buffer, [`crate::http1::RequestParser`]); for HTTP/2 it is the buffer
//! the decoded fields are packed into ([`crate::http2::request_head`]). An HTTP/2 request is
//! never written as HTTP/1 text and parsed again.
//!
//! Does not: parse anything (each codec builds heads), or rewrite fields: the engine applies
//! its edits while writing the head for the next hop.

use std::ops::Range;

use bytes::Bytes;

use crate::http1::headers::{self, Field, Span};
pub use crate::http1::{BodyFraming, Limits, RequestError, Version};

/// Which of the four request-target forms (RFC 9112 section 3.2) was used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TargetForm {
    Origin,
    Absolute,
    Authority,
    Asterisk,
}

/// A request head: one buffer ([`RequestHead::raw`]) plus offsets into it. Accessors return
/// slices of that buffer; nothing is copied. Built by [`crate::http1::RequestParser`] and
/// [`crate::http2::request_head`].
#[derive(Clone, Debug)]
pub struct RequestHead {
    pub(crate) raw: Bytes,
    pub(crate) method: Span,
    pub(crate) target: Span,
    /// `None`: absolute-form with an empty path, which means `/`.
    pub(crate) path: Option<Span>,
    pub(crate) query: Span,
    pub(crate) authority: Span,
    pub(crate) form: TargetForm,
    pub(crate) version: Version,
    pub(crate) fields: Vec<Field>,
    pub(crate) framing: BodyFraming,
    pub(crate) keep_alive: bool,
    /// A Connection token other than `close`, `keep-alive` and `upgrade` was seen.
    pub(crate) connection_other: bool,
    pub(crate) expect_continue: bool,
    pub(crate) upgrade: Option<Span>,
    /// [`Self::raw`] is the head as received in HTTP/1 text (not HTTP/2 fields packed).
    pub(crate) text: bool,
}

impl RequestHead {
    /// The method as sent (case-sensitive, RFC 9110 section 9.1).
    pub fn method(&self) -> &[u8] {
        self.method.get(&self.raw)
    }

    /// Whether the method is `HEAD` (its response has no body).
    pub fn is_head(&self) -> bool {
        self.method() == b"HEAD"
    }

    /// Whether the method is `CONNECT` (the target is an authority, a 2xx makes a tunnel).
    pub fn is_connect(&self) -> bool {
        self.method() == b"CONNECT"
    }

    /// The request target as sent.
    pub fn target(&self) -> &[u8] {
        self.target.get(&self.raw)
    }

    /// The path without the query: as sent for origin-form, `/` for an absolute-form target with
    /// an empty path, `*` for asterisk-form and empty for CONNECT's authority-form.
    pub fn path(&self) -> &[u8] {
        match self.path {
            Some(span) => span.get(&self.raw),
            None => b"/",
        }
    }

    /// The query without the `?`, empty if there is none.
    pub fn query(&self) -> &[u8] {
        self.query.get(&self.raw)
    }

    /// The authority of an absolute-form or authority-form target if present (RFC 9112 section
    /// 3.2.2: it wins over Host), else the Host value (empty for HTTP/1.0 without Host).
    pub fn authority(&self) -> &[u8] {
        self.authority.get(&self.raw)
    }

    /// Whether the target was in absolute-form (`http://host/path`), as sent to a forward proxy.
    pub fn is_absolute_form(&self) -> bool {
        self.form == TargetForm::Absolute
    }

    /// Whether the target was `*` (asterisk-form, OPTIONS only).
    pub fn is_asterisk_form(&self) -> bool {
        self.form == TargetForm::Asterisk
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

    /// The body framing: `None`, `Length` or `Chunked` (a request is never close-delimited).
    pub fn framing(&self) -> BodyFraming {
        self.framing
    }

    /// Whether the connection may carry another request after this one (RFC 9112 section 9.3):
    /// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    pub fn is_keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Whether an HTTP/1.1 request carries `Expect: 100-continue` (RFC 9110 section 10.1.1).
    pub fn expects_continue(&self) -> bool {
        self.expect_continue
    }

    /// The Upgrade value when an HTTP/1.1 request's Connection lists `upgrade` (RFC 9110
    /// section 7.8); an HTTP/1.0 Upgrade is ignored as the RFC requires.
    pub fn upgrade(&self) -> Option<&[u8]> {
        self.upgrade.map(|s| s.get(&self.raw))
    }

    /// The tokens of every Connection field: hop-by-hop field names a proxy must strip (RFC 9110
    /// section 7.6.1), plus `close` / `keep-alive` / `upgrade`.
    pub fn connection_tokens(&self) -> impl Iterator<Item = &[u8]> {
        headers::connection_tokens(&self.raw, &self.fields)
    }

    /// Whether a Connection field lists `name` (matched ASCII case-insensitively): a field a
    /// proxy must not forward. Same answer as searching [`Self::connection_tokens`], without
    /// the scan for heads whose Connection fields hold only `close`, `keep-alive`, `upgrade`.
    pub fn connection_lists(&self, name: &[u8]) -> bool {
        headers::connection_lists(&self.raw, &self.fields, self.connection_other, name)
    }

    /// Where field line `index` lies in [`Self::raw`], from its name to its CRLF included: the
    /// line exactly as received, optional whitespace and all. `None` for a head that did not
    /// come as HTTP/1 text (an HTTP/2 head's buffer holds no lines) or past the last field.
    /// Consecutive fields' lines are adjacent: `field_line(i).end == field_line(i + 1).start`.
    pub fn field_line(&self, index: usize) -> Option<Range<usize>> {
        if !self.text {
            return None;
        }
        let start = self.fields.get(index)?.name.start as usize;
        let end = match self.fields.get(index + 1) {
            Some(next) => next.name.start as usize,
            // The head ends with the last field's CRLF, then the empty line's.
            None => self.raw.len().checked_sub(2)?,
        };
        Some(start..end)
    }

    /// The buffer the head's spans point into: for HTTP/1 the whole head as received, from the
    /// request line to the final CRLFCRLF; for HTTP/2 the decoded fields packed end to end.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }
}
