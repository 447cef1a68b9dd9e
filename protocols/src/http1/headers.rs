//! Shared head machinery for requests and responses: line-ending and size scan of a head, field
//! lines parsed and checked in one pass, offset spans, and the framing summary (Content-Length,
//! Transfer-Encoding, Connection, Host, Expect, Upgrade).
//!
//! Does not: parse start lines (see `request.rs`, `response.rs`) or decode bodies (`body.rs`).
//! Spec: RFC 9112 sections 2.2 (line endings, whitespace), 5 (field syntax, obs-fold),
//! 6.1-6.3 (Transfer-Encoding, Content-Length, message body length); RFC 9110 section 7.6.1
//! (Connection) and 7.2 (Host).

use super::Limits;

/// Body framing decided from the head (RFC 9112 section 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body follows the head.
    None,
    /// Exactly this many bytes of body follow.
    Length(u64),
    /// A chunked body follows (RFC 9112 section 7.1).
    Chunked,
    /// Responses only: the body runs until the server closes the connection.
    Close,
}

/// A byte range into a head's raw bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    /// The span of `part`, which must be a sub-slice of `base`.
    pub(crate) fn of(base: &[u8], part: &[u8]) -> Option<Self> {
        let start = (part.as_ptr() as usize).checked_sub(base.as_ptr() as usize)?;
        let end = start.checked_add(part.len())?;
        if end > base.len() {
            return None;
        }
        Some(Self {
            start: u32::try_from(start).ok()?,
            end: u32::try_from(end).ok()?,
        })
    }

    /// The bytes of this span in `raw` (empty if out of range, which cannot happen for spans
    /// made by [`Span::of`] over the same bytes).
    pub(crate) fn get(self, raw: &[u8]) -> &[u8] {
        raw.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

/// One field line: name as sent, value trimmed of OWS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) name: Span,
    pub(crate) value: Span,
}

/// A head-level problem shared by requests and responses; each side maps it to its own error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeadError {
    StartLineTooLong,
    TooLarge,
    TooManyFields,
    BareLf,
    BareCr,
    ObsFold,
    HeaderName,
    HeaderValue,
    ContentLength,
    TransferEncoding,
}

/// Where a complete head ends and how many field lines it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeadScan {
    /// Head length including the final CRLFCRLF.
    pub(crate) len: usize,
    /// Number of field lines (start line and final empty line excluded).
    pub(crate) fields: usize,
}

/// How far a head scan got; lets a later call over the same (grown) buffer resume instead of
/// rescanning, so a head trickling in byte by byte costs O(n), not O(n^2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ScanState {
    /// Next byte to examine.
    pos: usize,
    /// Start of the line `pos` is in.
    line_start: usize,
    /// Complete field lines seen.
    fields: usize,
    /// Index of the CR ending the start line, once that line is complete.
    start_line_end: Option<usize>,
}

impl ScanState {
    /// Index of the CR ending the start line, once that line is complete.
    pub(crate) fn start_line_end(&self) -> Option<usize> {
        self.start_line_end
    }
}

/// Scans `buf` (which starts with the start line) for the end of the head, resuming from `st`.
///
/// RFC 9112 section 2.2: a bare CR is rejected, and we reject a bare LF too (the RFC allows
/// accepting it; smuggling defences are simpler if every hop agrees on CRLF only). Section 5.2:
/// a field line starting with SP/HTAB is obs-fold (or whitespace after the start line, 2.2) and
/// is rejected. Limits are enforced as soon as the buffered bytes already exceed them.
///
/// Every check is made in byte order and only looks at bytes up to the position it judges, so
/// the verdict is the same however the input was split across calls.
pub(crate) fn scan_head(
    buf: &[u8],
    limits: &Limits,
    max_start_line: usize,
    st: &mut ScanState,
) -> Result<Option<HeadScan>, HeadError> {
    if st.pos > buf.len() {
        // The caller consumed bytes since the last call: start over.
        *st = ScanState::default();
    }
    let max_fields = limits.max_headers;
    // While the start line is incomplete, look no further than its longest allowed end.
    let line_limit = max_start_line.saturating_add(2);
    let limit = |st: &ScanState| match st.start_line_end {
        None => limits.max_head.min(line_limit),
        Some(_) => limits.max_head,
    };
    loop {
        let window = buf.get(..limit(st)).unwrap_or(buf);
        let rest = window.get(st.pos..).unwrap_or_default();
        let Some(skip) = memchr::memchr2(b'\r', b'\n', rest) else {
            st.pos = window.len();
            break;
        };
        let i = st.pos + skip;
        st.pos = i;
        if rest.get(skip) == Some(&b'\n') {
            return Err(HeadError::BareLf);
        }
        let Some(&next) = window.get(i + 1) else {
            break;
        };
        if next != b'\n' {
            return Err(HeadError::BareCr);
        }
        if st.start_line_end.is_none() {
            st.start_line_end = Some(i);
        } else {
            if i == st.line_start {
                return Ok(Some(HeadScan {
                    len: i + 2,
                    fields: st.fields,
                }));
            }
            if matches!(window.get(st.line_start), Some(b' ' | b'\t')) {
                return Err(HeadError::ObsFold);
            }
            st.fields += 1;
            if st.fields > max_fields {
                return Err(HeadError::TooManyFields);
            }
        }
        st.pos = i + 2;
        st.line_start = st.pos;
    }
    // An incomplete line already starting with whitespace is obs-fold whatever follows.
    let window = buf.get(..limit(st)).unwrap_or(buf);
    if st.start_line_end.is_some() && matches!(window.get(st.line_start), Some(b' ' | b'\t')) {
        return Err(HeadError::ObsFold);
    }
    if buf.len() >= limit(st) {
        if st.start_line_end.is_none() && line_limit < limits.max_head {
            return Err(HeadError::StartLineTooLong);
        }
        return Err(HeadError::TooLarge);
    }
    Ok(None)
}

/// RFC 9110 section 5.6.2: `tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
/// "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA`. For building tables at compile time; at run
/// time, [`is_tchar`] looks a byte up in one.
pub(crate) const fn tchar_rule(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// [`tchar_rule`] as a table over every byte value, so the hot path tests a byte with one load
/// instead of a chain of comparisons.
#[allow(
    clippy::indexing_slicing,
    reason = "built at compile time; every index is below 128 of 256"
)]
static TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0u8;
    while b < 128 {
        table[b as usize] = tchar_rule(b);
        b += 1;
    }
    table
};

/// RFC 9110 section 5.6.2: `tchar`.
pub(crate) fn is_tchar(b: u8) -> bool {
    // Never `None`: the table has an entry for every byte value.
    TCHAR.get(usize::from(b)).copied().unwrap_or(false)
}

/// RFC 9110 section 5.6.2: `token = 1*tchar`. Looks at every byte (no early exit) so the
/// loop over a short field name stays branch-free.
pub(crate) fn is_token(v: &[u8]) -> bool {
    !v.is_empty() && v.iter().fold(true, |ok, &b| ok & is_tchar(b))
}

/// RFC 9110 section 5.5: every byte of `v` is a field-value byte. Eight bytes per step (most
/// values are too short for the compiler's vector loop), with no early exit.
pub(crate) fn is_field_value(v: &[u8]) -> bool {
    let mut chunks = v.chunks_exact(8);
    let mut ok = true;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        ok &= field_value_word(u64::from_le_bytes(word));
    }
    // The tail, padded with a field-value byte.
    let mut word = [b'a'; 8];
    let rest = chunks.remainder();
    if let Some(dst) = word.get_mut(..rest.len()) {
        dst.copy_from_slice(rest);
    }
    ok & field_value_word(u64::from_le_bytes(word))
}

/// Whether all eight bytes of `x` are field-value bytes: each at least SP but not DEL, or HTAB.
/// Every per-byte sum stays below 0x100, so no carry crosses into the next byte.
fn field_value_word(x: u64) -> bool {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    // High bit of each byte: set when the byte is not zero.
    let nonzero = |y: u64| ((y & LOW7) + LOW7) | y;
    // b >= 0x20: (b & 0x7f) + 0x60 reaches 0x80 exactly when b & 0x7f >= 0x20; or b >= 0x80.
    let at_least_sp = ((x & LOW7) + 0x60 * ONES) | x;
    let not_del = nonzero(x ^ (0x7f * ONES));
    let tab = !nonzero(x ^ (0x09 * ONES));
    ((at_least_sp & not_del) | tab) & HIGH == HIGH
}

/// Trims optional whitespace (SP / HTAB) from both ends.
pub(crate) fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Validates one `field-name ":" OWS field-value OWS` line (no CRLF), as used for trailers.
pub(crate) fn is_valid_field_line(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let (name, value) = line.split_at(colon);
    is_token(name) && is_field_value(value.get(1..).unwrap_or_default())
}

/// The transfer codings we can forward before the final `chunked` (RFC 9110 section 18.6 registry).
fn is_known_coding(c: &[u8]) -> bool {
    [
        &b"gzip"[..],
        b"deflate",
        b"compress",
        b"x-gzip",
        b"x-compress",
    ]
    .iter()
    .any(|k| c.eq_ignore_ascii_case(k))
}

/// What the Transfer-Encoding list says about framing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum TransferCoding {
    /// No Transfer-Encoding field.
    #[default]
    Absent,
    /// The final coding is `chunked`; `unknown` if an earlier coding is not a registered one.
    Chunked { unknown: bool },
    /// The final coding is not `chunked` (`unknown` if any coding is not a registered one).
    NotChunked { unknown: bool },
}

/// Accumulates Transfer-Encoding elements across all its field lines, in order.
#[derive(Clone, Copy, Debug, Default)]
struct TeState {
    present: bool,
    chunked_seen: bool,
    last_chunked: bool,
    unknown: bool,
}

impl TeState {
    /// RFC 9112 section 6.1: `transfer-coding` list. We are stricter than the ABNF on purpose:
    /// empty elements, parameters, quoted strings, `chunked` twice or not last are refused,
    /// since those are the classic smuggling obfuscations.
    fn add(&mut self, value: &[u8]) -> Result<(), HeadError> {
        self.present = true;
        for element in value.split(|&b| b == b',') {
            let coding = trim_ows(element);
            if !is_token(coding) {
                return Err(HeadError::TransferEncoding);
            }
            if self.chunked_seen {
                // RFC 9112 section 6.1: a sender MUST NOT apply chunked more than once, and
                // chunked MUST be the final coding of a request.
                return Err(HeadError::TransferEncoding);
            }
            if coding.eq_ignore_ascii_case(b"chunked") {
                self.chunked_seen = true;
                self.last_chunked = true;
            } else {
                self.last_chunked = false;
                if !is_known_coding(coding) {
                    self.unknown = true;
                }
            }
        }
        Ok(())
    }

    fn result(self) -> TransferCoding {
        if !self.present {
            TransferCoding::Absent
        } else if self.last_chunked {
            TransferCoding::Chunked {
                unknown: self.unknown,
            }
        } else {
            TransferCoding::NotChunked {
                unknown: self.unknown,
            }
        }
    }
}

/// RFC 9110 section 8.6: `Content-Length = 1*DIGIT`; a list is tolerated here only so the caller
/// can decide about duplicates.
pub(crate) fn parse_content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// Facts about the fields that framing, connection management and routing need.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Summary {
    /// The first Content-Length value.
    pub(crate) content_length: Option<u64>,
    /// How many Content-Length values were seen (list elements count separately).
    pub(crate) content_length_count: u32,
    /// Whether the Content-Length values differ.
    pub(crate) content_length_differs: bool,
    pub(crate) transfer_coding: TransferCoding,
    pub(crate) host: Option<Span>,
    pub(crate) host_count: u32,
    pub(crate) connection_close: bool,
    pub(crate) connection_keep_alive: bool,
    pub(crate) connection_upgrade: bool,
    /// A Connection token other than `close`, `keep-alive` and `upgrade`: a field it names
    /// must be stripped by a proxy (RFC 9110 section 7.6.1).
    pub(crate) connection_other: bool,
    pub(crate) expect_continue: bool,
    pub(crate) upgrade: Option<Span>,
}

/// Parses the `count` field lines of a head that [`scan_head`] accepted, the first starting at
/// `head[start]`, into spans over `head`, and builds the [`Summary`].
///
/// The scan already judged every line ending (CRLF only), obs-fold and the number of lines, so
/// each line is known to end at its CR. A line is `field-name ":" OWS field-value OWS`
/// (RFC 9112 section 5): the name `1*tchar` up to the colon (no whitespace before it, RFC 9112
/// section 5.1), the value, trimmed of OWS, only field-value bytes (RFC 9110 section 5.5).
/// One pass per line: a name is classified by its length first, so a field that framing does
/// not care about costs one comparison at most.
pub(crate) fn parse_fields(
    head: &[u8],
    start: usize,
    count: usize,
) -> Result<(Vec<Field>, Summary), HeadError> {
    let mut fields = Vec::with_capacity(count);
    let mut s = Summary::default();
    let mut te = TeState::default();
    let mut pos = start;
    for _ in 0..count {
        let rest = head.get(pos..).unwrap_or_default();
        let line_len = memchr::memchr(b'\r', rest).ok_or(HeadError::HeaderName)?;
        let line = rest.get(..line_len).unwrap_or_default();
        let colon = memchr::memchr(b':', line).ok_or(HeadError::HeaderName)?;
        let (name, value) = line.split_at(colon);
        if !is_token(name) {
            return Err(HeadError::HeaderName);
        }
        let value = trim_ows(value.get(1..).unwrap_or_default());
        if !is_field_value(value) {
            return Err(HeadError::HeaderValue);
        }
        let (Some(name_span), Some(value_span)) = (Span::of(head, name), Span::of(head, value))
        else {
            return Err(HeadError::HeaderValue);
        };
        fields.push(Field {
            name: name_span,
            value: value_span,
        });
        pos += line_len + 2;
        match name.len() {
            14 if is_name(name, b"content-length") => {
                for element in value.split(|&b| b == b',') {
                    let n =
                        parse_content_length(trim_ows(element)).ok_or(HeadError::ContentLength)?;
                    match s.content_length {
                        Some(first) if first != n => s.content_length_differs = true,
                        Some(_) => {}
                        None => s.content_length = Some(n),
                    }
                    s.content_length_count = s.content_length_count.saturating_add(1);
                }
            }
            17 if is_name(name, b"transfer-encoding") => te.add(value)?,
            4 if is_name(name, b"host") => {
                s.host_count = s.host_count.saturating_add(1);
                if s.host.is_none() {
                    s.host = Some(value_span);
                }
            }
            10 if is_name(name, b"connection") => {
                for token in list_elements(value) {
                    match token.len() {
                        5 if is_name(token, b"close") => s.connection_close = true,
                        10 if is_name(token, b"keep-alive") => s.connection_keep_alive = true,
                        7 if is_name(token, b"upgrade") => s.connection_upgrade = true,
                        _ => s.connection_other = true,
                    }
                }
            }
            6 if is_name(name, b"expect") && value.eq_ignore_ascii_case(b"100-continue") => {
                s.expect_continue = true;
            }
            7 if is_name(name, b"upgrade") && s.upgrade.is_none() => s.upgrade = Some(value_span),
            _ => {}
        }
    }
    s.transfer_coding = te.result();
    Ok((fields, s))
}

/// Whether `name` (a field name or a list element of a field value) is `lower` (lowercase
/// letters and `-`) in any case. Against such bytes `b | 0x20` folds case exactly: the only
/// other byte it maps onto one of them is CR (onto `-`), which no field line holds. No early
/// exit, so a comparison with a literal compiles to a few wide operations.
fn is_name(name: &[u8], lower: &[u8]) -> bool {
    debug_assert!(lower.iter().all(|&b| b.is_ascii_lowercase() || b == b'-'));
    name.len() == lower.len()
        && name
            .iter()
            .zip(lower)
            .fold(true, |ok, (&a, &b)| ok & (a | 0x20 == b))
}

/// The non-empty, OWS-trimmed elements of a comma-separated list value.
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// Fields in order as `(name, value)` slices of `raw`.
pub(crate) fn iter_fields<'a>(
    raw: &'a [u8],
    fields: &'a [Field],
) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    fields
        .iter()
        .map(move |f| (f.name.get(raw), f.value.get(raw)))
}

/// The first value whose name equals `lowercase_name` ASCII case-insensitively.
pub(crate) fn find_field<'a>(
    raw: &'a [u8],
    fields: &'a [Field],
    lowercase_name: &[u8],
) -> Option<&'a [u8]> {
    iter_fields(raw, fields)
        .find(|(n, _)| n.eq_ignore_ascii_case(lowercase_name))
        .map(|(_, v)| v)
}

/// Whether a Connection field lists `name` (RFC 9110 section 7.6.1), in O(1) for the usual
/// head: `connection_other` says whether any token besides `close`, `keep-alive` and
/// `upgrade` was seen, so only those three names (or a head with other tokens) need the scan.
pub(crate) fn connection_lists(
    raw: &[u8],
    fields: &[Field],
    connection_other: bool,
    name: &[u8],
) -> bool {
    let common = [&b"close"[..], b"keep-alive", b"upgrade"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(name));
    (common || connection_other)
        && connection_tokens(raw, fields).any(|t| t.eq_ignore_ascii_case(name))
}

/// Tokens of every Connection field, in order.
pub(crate) fn connection_tokens<'a>(
    raw: &'a [u8],
    fields: &'a [Field],
) -> impl Iterator<Item = &'a [u8]> {
    iter_fields(raw, fields)
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
        .flat_map(|(_, v)| list_elements(v))
}

/// RFC 3986 section 3.2.2 `reg-name` bytes (unreserved, pct-encoded, sub-delims).
fn is_reg_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

/// RFC 9110 section 7.2 / RFC 3986 section 3.2: `uri-host [ ":" port ]` with a non-empty host,
/// no userinfo; `require_port` for CONNECT's authority-form (RFC 9112 section 3.2.3).
pub(crate) fn is_valid_authority(v: &[u8], require_port: bool) -> bool {
    let (host_ok, port) = if let [b'[', rest @ ..] = v {
        let Some(close) = rest.iter().position(|&b| b == b']') else {
            return false;
        };
        let (literal, after) = rest.split_at(close);
        let ok = !literal.is_empty()
            && literal
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        match after {
            [b']'] => (ok, None),
            [b']', b':', port @ ..] => (ok, Some(port)),
            _ => return false,
        }
    } else {
        let (host, port) = match v.iter().rposition(|&b| b == b':') {
            Some(i) => {
                let (h, p) = v.split_at(i);
                (h, p.get(1..))
            }
            None => (v, None),
        };
        (
            !host.is_empty() && host.iter().all(|&b| is_reg_name_byte(b)),
            port,
        )
    };
    let port_ok = match port {
        None => !require_port,
        Some(p) => {
            (!p.is_empty() || !require_port) && p.len() <= 5 && p.iter().all(u8::is_ascii_digit)
        }
    };
    host_ok && port_ok
}
