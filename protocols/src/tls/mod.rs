//! TLS ClientHello peeking: read SNI, ALPN and offered versions from the first bytes of a
//! connection without consuming them, so a listener can pick a certificate, a filter chain or
//! an upstream (SNI passthrough) before (or instead of) terminating TLS.
//!
//! Owns: TLS record framing for the first flight (RFC 8446 section 5.1, with the record
//! versions TLS 1.0-1.3 clients send), reassembly of a ClientHello split across several
//! records ([`client_hello_message`]), and the ClientHello fields routing needs (RFC 8446
//! section 4.1.2): `server_name` (RFC 6066 section 3), `application_layer_protocol_negotiation`
//! (RFC 7301 section 3.1) and `supported_versions` (RFC 8446 section 4.2.1).
//!
//! Does not: terminate TLS, check cipher suites, key shares or signatures (rustls does that
//! with the same bytes afterwards), or look at anything after the ClientHello. Every other
//! extension is only bounds-checked.
//!
//! Two entry points: [`peek_client_hello`] borrows from the caller's buffer and returns
//! [`Error::Fragmented`] for a ClientHello split across records; [`peek_client_hello_owned`]
//! handles both shapes and copies only the split case. Both decide from the first byte that a
//! connection is not TLS ([`Error::NotHandshake`]), so a protocol sniffer can use them as is.
//! Record versions below 0x0301 (SSL 3.0) and SSLv2-compatible hellos are refused.

#[cfg(test)]
mod tests;

use core::fmt;
use std::borrow::Cow;

use bytes::Bytes;

/// Record content type `handshake` (RFC 8446 section 5.1).
const CONTENT_HANDSHAKE: u8 = 22;
/// Handshake type `client_hello` (RFC 8446 section 4).
const CLIENT_HELLO: u8 = 1;
/// Record header: type(1) legacy_record_version(2) length(2).
const RECORD_HEADER_LEN: usize = 5;
/// RFC 8446 section 5.1: "The length MUST NOT exceed 2^14 bytes."
pub const MAX_RECORD_LEN: usize = 1 << 14;
/// Largest ClientHello body accepted, handshake header excluded. Real ones are under 2 KiB
/// (a post-quantum key share adds about 1.2 KiB); anything larger is refused, not buffered.
pub const MAX_HELLO_LEN: usize = 1 << 14;
/// Most records a ClientHello may be split across.
pub const MAX_RECORDS: usize = 32;
/// The most bytes a caller ever needs to buffer before [`peek_client_hello_owned`] decides.
pub const MAX_PEEK_LEN: usize = MAX_RECORDS * RECORD_HEADER_LEN + 4 + MAX_HELLO_LEN;

/// Extension `server_name` (RFC 6066 section 3).
pub const EXT_SERVER_NAME: u16 = 0;
/// Extension `application_layer_protocol_negotiation` (RFC 7301 section 3.1).
pub const EXT_ALPN: u16 = 16;
/// Extension `supported_versions` (RFC 8446 section 4.2.1).
pub const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// TLS 1.3's version number in `supported_versions`.
pub const TLS13: u16 = 0x0304;
/// TLS 1.2's version number.
pub const TLS12: u16 = 0x0303;

/// Why the first bytes are not an acceptable ClientHello. None is retryable with more bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The first record is not a handshake record: not TLS, or not a client's first flight.
    NotHandshake,
    /// A record version outside 0x0301..=0x0304.
    BadRecordVersion,
    /// A record length of 0 or above 2^14.
    BadRecordLength,
    /// The first handshake message is not a ClientHello.
    NotClientHello,
    /// The ClientHello body is longer than [`MAX_HELLO_LEN`].
    TooLarge,
    /// The ClientHello is split across more than [`MAX_RECORDS`] records.
    TooManyRecords,
    /// The ClientHello spans several records; use [`peek_client_hello_owned`].
    Fragmented,
    /// A length field disagrees with the bytes present (truncated or trailing bytes).
    BadLength,
    /// `legacy_session_id` longer than 32 bytes.
    BadSessionId,
    /// `cipher_suites` empty or of odd length.
    BadCipherSuites,
    /// `legacy_compression_methods` empty.
    BadCompression,
    /// The extensions block or one extension's framing is malformed.
    BadExtensions,
    /// `server_name`, `application_layer_protocol_negotiation` or `supported_versions` twice.
    DuplicateExtension,
    /// `server_name` malformed, two host names, or a host name that is not a DNS name.
    BadServerName,
    /// The ALPN protocol list is malformed or contains an empty name.
    BadAlpn,
    /// `supported_versions` malformed.
    BadSupportedVersions,
}

impl Error {
    /// The TLS alert (RFC 8446 section 6.2) a terminating endpoint would send for this error.
    pub fn alert(self) -> u8 {
        match self {
            Self::NotHandshake | Self::NotClientHello | Self::Fragmented => 10, // unexpected_message
            Self::BadRecordLength | Self::TooLarge => 22,                       // record_overflow
            Self::BadRecordVersion => 70,                                       // protocol_version
            Self::DuplicateExtension | Self::BadServerName => 47,               // illegal_parameter
            _ => 50,                                                            // decode_error
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotHandshake => "TLS: first record is not a handshake record",
            Self::BadRecordVersion => "TLS: record version not in 0x0301..=0x0304",
            Self::BadRecordLength => "TLS: record length 0 or above 2^14",
            Self::NotClientHello => "TLS: first handshake message is not a ClientHello",
            Self::TooLarge => "TLS: ClientHello too large",
            Self::TooManyRecords => "TLS: ClientHello split across too many records",
            Self::Fragmented => "TLS: ClientHello spans several records",
            Self::BadLength => "TLS: ClientHello length fields inconsistent",
            Self::BadSessionId => "TLS: legacy_session_id longer than 32 bytes",
            Self::BadCipherSuites => "TLS: cipher_suites empty or odd length",
            Self::BadCompression => "TLS: legacy_compression_methods empty",
            Self::BadExtensions => "TLS: extensions malformed",
            Self::DuplicateExtension => "TLS: extension repeated",
            Self::BadServerName => "TLS: server_name malformed or not a DNS host name",
            Self::BadAlpn => "TLS: ALPN protocol list malformed",
            Self::BadSupportedVersions => "TLS: supported_versions malformed",
        })
    }
}

impl std::error::Error for Error {}

/// The ALPN `ProtocolNameList` of a ClientHello (RFC 7301 section 3.1), validated: every
/// name is 1..=255 bytes and the list is exactly covered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alpn<'a>(&'a [u8]);

impl<'a> Alpn<'a> {
    /// The raw list, without its 2-byte length.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// The protocol names in the client's order of preference.
    pub fn iter(&self) -> AlpnIter<'a> {
        AlpnIter(self.0)
    }

    /// True if the client offers `protocol` (e.g. `b"h2"`).
    pub fn contains(&self, protocol: &[u8]) -> bool {
        self.iter().any(|p| p == protocol)
    }
}

impl<'a> IntoIterator for Alpn<'a> {
    type Item = &'a [u8];
    type IntoIter = AlpnIter<'a>;

    fn into_iter(self) -> AlpnIter<'a> {
        self.iter()
    }
}

/// Iterator over the names of an [`Alpn`] list.
#[derive(Clone, Debug)]
pub struct AlpnIter<'a>(&'a [u8]);

impl<'a> Iterator for AlpnIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, rest) = self.0.split_first()?;
        let (name, rest) = rest.split_at_checked(usize::from(len))?;
        self.0 = rest;
        Some(name)
    }
}

/// The fields of a ClientHello that routing needs, borrowed from the handshake message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientHello<'a> {
    /// `legacy_version`: 0x0303 from TLS 1.2 and 1.3 clients.
    pub legacy_version: u16,
    /// `legacy_session_id`, 0..=32 bytes.
    pub session_id: &'a [u8],
    /// `cipher_suites`, raw: big-endian `u16` pairs.
    pub cipher_suites: &'a [u8],
    /// The `host_name` from `server_name`, raw ASCII as sent (compare case-insensitively);
    /// checked to be a DNS name: labels of 1..=63 letters, digits or hyphens, at most 253
    /// bytes, no trailing dot, not an IPv4 literal.
    pub server_name: Option<&'a [u8]>,
    /// The ALPN offer, if the extension is present.
    pub alpn: Option<Alpn<'a>>,
    /// `supported_versions`, raw big-endian `u16` pairs, if the extension is present.
    pub supported_versions: Option<&'a [u8]>,
}

impl<'a> ClientHello<'a> {
    /// Parses one complete handshake message: the 4-byte handshake header and exactly the body
    /// it announces (as returned by [`client_hello_message`]).
    pub fn parse(message: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader(message);
        if r.u8(Error::BadLength)? != CLIENT_HELLO {
            return Err(Error::NotClientHello);
        }
        let [a, b, c] = r.array::<3>(Error::BadLength)?;
        let body_len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
        if body_len > MAX_HELLO_LEN {
            return Err(Error::TooLarge);
        }
        if body_len != r.0.len() {
            return Err(Error::BadLength);
        }
        let legacy_version = u16::from_be_bytes(r.array::<2>(Error::BadLength)?);
        r.array::<32>(Error::BadLength)?; // random
        // RFC 8446 4.1.2: opaque legacy_session_id<0..32>;
        let session_id = r.vec8(Error::BadLength)?;
        if session_id.len() > 32 {
            return Err(Error::BadSessionId);
        }
        // CipherSuite cipher_suites<2..2^16-2>;
        let cipher_suites = r.vec16(Error::BadLength)?;
        if cipher_suites.is_empty() || cipher_suites.len() % 2 != 0 {
            return Err(Error::BadCipherSuites);
        }
        // opaque legacy_compression_methods<1..2^8-1>;
        if r.vec8(Error::BadLength)?.is_empty() {
            return Err(Error::BadCompression);
        }
        let mut hello = Self {
            legacy_version,
            session_id,
            cipher_suites,
            server_name: None,
            alpn: None,
            supported_versions: None,
        };
        // RFC 5246 7.4.1.2: a TLS 1.2 ClientHello may end here, without extensions.
        if r.0.is_empty() {
            return Ok(hello);
        }
        let mut exts = Reader(r.vec16(Error::BadLength)?);
        if !r.0.is_empty() {
            return Err(Error::BadLength);
        }
        let (mut sni, mut alpn, mut versions) = (false, false, false);
        while !exts.0.is_empty() {
            let kind = u16::from_be_bytes(exts.array::<2>(Error::BadExtensions)?);
            let data = exts.vec16(Error::BadExtensions)?;
            // RFC 8446 4.2: "There MUST NOT be more than one extension of the same type in a
            // given extension block." Checked for the ones read here; a second SNI is how
            // routing confusion would be attempted.
            let seen = match kind {
                EXT_SERVER_NAME => &mut sni,
                EXT_ALPN => &mut alpn,
                EXT_SUPPORTED_VERSIONS => &mut versions,
                _ => continue,
            };
            if core::mem::replace(seen, true) {
                return Err(Error::DuplicateExtension);
            }
            match kind {
                EXT_SERVER_NAME => hello.server_name = parse_server_name(data)?,
                EXT_ALPN => hello.alpn = Some(parse_alpn(data)?),
                _ => hello.supported_versions = Some(parse_supported_versions(data)?),
            }
        }
        Ok(hello)
    }

    /// The host name as `&str` (it is ASCII by construction).
    pub fn server_name_str(&self) -> Option<&'a str> {
        self.server_name.and_then(|n| core::str::from_utf8(n).ok())
    }

    /// True if `supported_versions` lists `version`.
    pub fn offers_version(&self, version: u16) -> bool {
        self.supported_versions.is_some_and(|v| {
            v.chunks_exact(2)
                .any(|p| p == version.to_be_bytes().as_slice())
        })
    }

    /// True if the client offers TLS 1.3 (RFC 8446 4.2.1: only via `supported_versions`).
    pub fn offers_tls13(&self) -> bool {
        self.offers_version(TLS13)
    }

    /// True if the client offers ALPN `protocol`.
    pub fn offers_alpn(&self, protocol: &[u8]) -> bool {
        self.alpn.is_some_and(|a| a.contains(protocol))
    }

    /// True if the client offers cipher suite `suite`.
    pub fn offers_cipher_suite(&self, suite: u16) -> bool {
        self.cipher_suites
            .chunks_exact(2)
            .any(|p| p == suite.to_be_bytes().as_slice())
    }
}

/// RFC 6066 section 3: `ServerName server_name_list<1..2^16-1>`, each `name_type` then
/// `HostName<1..2^16-1>` for `host_name(0)`.
fn parse_server_name(data: &[u8]) -> Result<Option<&[u8]>, Error> {
    let mut r = Reader(data);
    let mut list = Reader(r.vec16(Error::BadServerName)?);
    if !r.0.is_empty() || list.0.is_empty() {
        return Err(Error::BadServerName);
    }
    let mut host = None;
    while !list.0.is_empty() {
        let name_type = list.u8(Error::BadServerName)?;
        let name = list.vec16(Error::BadServerName)?;
        if name_type != 0 {
            continue;
        }
        // "The ServerNameList MUST NOT contain more than one name of the same name_type."
        if host.is_some() || !is_dns_name(name) {
            return Err(Error::BadServerName);
        }
        host = Some(name);
    }
    Ok(host)
}

/// A DNS host name as RFC 6066 allows in `HostName`: ASCII letters, digits and hyphens in
/// dot-separated labels of 1..=63 bytes, 253 bytes at most, "without a trailing dot", and
/// "literal IPv4 and IPv6 addresses are not permitted" (an all-digit last label is refused;
/// IPv6 already fails the character set).
fn is_dns_name(name: &[u8]) -> bool {
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let mut last_all_digits = false;
    for label in name.split(|&b| b == b'.') {
        if label.is_empty()
            || label.len() > 63
            || !label
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return false;
        }
        last_all_digits = label.iter().all(u8::is_ascii_digit);
    }
    !last_all_digits
}

/// RFC 7301 section 3.1: `ProtocolName protocol_name_list<2..2^16-1>`, each
/// `opaque ProtocolName<1..2^8-1>`.
fn parse_alpn(data: &[u8]) -> Result<Alpn<'_>, Error> {
    let mut r = Reader(data);
    let list = r.vec16(Error::BadAlpn)?;
    if !r.0.is_empty() || list.len() < 2 {
        return Err(Error::BadAlpn);
    }
    let mut names = Reader(list);
    while !names.0.is_empty() {
        if names.vec8(Error::BadAlpn)?.is_empty() {
            return Err(Error::BadAlpn);
        }
    }
    Ok(Alpn(list))
}

/// RFC 8446 section 4.2.1: `ProtocolVersion versions<2..254>` in a ClientHello.
fn parse_supported_versions(data: &[u8]) -> Result<&[u8], Error> {
    let mut r = Reader(data);
    let list = r.vec8(Error::BadSupportedVersions)?;
    if !r.0.is_empty() || list.len() < 2 || list.len() % 2 != 0 {
        return Err(Error::BadSupportedVersions);
    }
    Ok(list)
}

/// A bounds-checked cursor; every read names the error to report when bytes run out.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize, err: Error) -> Result<&'a [u8], Error> {
        let (head, rest) = self.0.split_at_checked(n).ok_or(err)?;
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, err: Error) -> Result<[u8; N], Error> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(err)?;
        self.0 = rest;
        Ok(*head)
    }

    fn u8(&mut self, err: Error) -> Result<u8, Error> {
        let [b] = self.array::<1>(err)?;
        Ok(b)
    }

    fn vec8(&mut self, err: Error) -> Result<&'a [u8], Error> {
        let n = self.u8(err)?;
        self.bytes(usize::from(n), err)
    }

    fn vec16(&mut self, err: Error) -> Result<&'a [u8], Error> {
        let n = u16::from_be_bytes(self.array::<2>(err)?);
        self.bytes(usize::from(n), err)
    }
}

/// Checks the record header bytes present so far (0 to 5 of them).
fn check_record_header(h: &[u8]) -> Result<(), Error> {
    if h.first().is_some_and(|&t| t != CONTENT_HANDSHAKE) {
        return Err(Error::NotHandshake);
    }
    // legacy_record_version: 0x0301 (TLS 1.0, what TLS 1.3 clients send) up to 0x0304.
    if h.get(1).is_some_and(|&major| major != 3) || h.get(2).is_some_and(|&m| !(1..=4).contains(&m))
    {
        return Err(Error::BadRecordVersion);
    }
    if let Some(&[_, _, _, hi, lo]) = h.first_chunk::<RECORD_HEADER_LEN>() {
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        // RFC 8446 5.1: "The length MUST NOT exceed 2^14 bytes"; "Implementations MUST NOT
        // send zero-length fragments of Handshake types".
        if len == 0 || len > MAX_RECORD_LEN {
            return Err(Error::BadRecordLength);
        }
    }
    Ok(())
}

/// Where the ClientHello's bytes are in `buf`: up to [`MAX_RECORDS`] fragment ranges.
struct Located {
    frags: [(usize, usize); MAX_RECORDS],
    count: usize,
    len: usize,
}

/// Walks the records at the front of `buf` until the first handshake message is complete.
fn locate(buf: &[u8]) -> Result<Option<Located>, Error> {
    let mut loc = Located {
        frags: [(0, 0); MAX_RECORDS],
        count: 0,
        len: 0,
    };
    let mut head = [0u8; 4];
    let mut head_len = 0;
    let mut collected = 0;
    let mut msg_len = None;
    let mut pos = 0;
    loop {
        let rec = buf.get(pos..).unwrap_or_default();
        check_record_header(rec)?;
        let Some(&[_, _, _, hi, lo]) = rec.first_chunk::<RECORD_HEADER_LEN>() else {
            return Ok(None);
        };
        // RFC 8446 5.1: handshake messages "MUST NOT be interleaved with other record types";
        // the next record is checked as a handshake record by the loop.
        let Some(slot) = loc.frags.get_mut(loc.count) else {
            return Err(Error::TooManyRecords);
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let start = pos + RECORD_HEADER_LEN;
        let avail = buf.get(start..).unwrap_or_default();
        let frag = avail.get(..len).unwrap_or(avail);
        *slot = (start, start + frag.len());
        loc.count += 1;
        for &b in frag.iter().take(4 - head_len) {
            if let Some(h) = head.get_mut(head_len) {
                *h = b;
            }
            head_len += 1;
        }
        if head_len >= 1 && head.first() != Some(&CLIENT_HELLO) {
            return Err(Error::NotClientHello);
        }
        if head_len == 4 && msg_len.is_none() {
            let [_, a, b, c] = head;
            let body = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
            if body > MAX_HELLO_LEN {
                return Err(Error::TooLarge);
            }
            msg_len = Some(4 + body);
        }
        collected += frag.len();
        if let Some(m) = msg_len
            && collected >= m
        {
            loc.len = m;
            return Ok(Some(loc));
        }
        if frag.len() < len {
            return Ok(None);
        }
        pos = start + len;
    }
}

/// The first handshake message (4-byte header included), borrowed when it lies within one
/// record, reassembled into an owned buffer when it spans several.
///
/// `Ok(None)`: everything so far is plausible; read more (never more than [`MAX_PEEK_LEN`]
/// bytes in all). Bytes after the ClientHello are not looked at.
pub fn client_hello_message(buf: &[u8]) -> Result<Option<Cow<'_, [u8]>>, Error> {
    let Some(loc) = locate(buf)? else {
        return Ok(None);
    };
    let frags = loc.frags.get(..loc.count).unwrap_or_default();
    if let [(start, _)] = frags {
        return Ok(Some(Cow::Borrowed(
            buf.get(*start..start + loc.len).unwrap_or_default(),
        )));
    }
    let mut msg = Vec::with_capacity(loc.len);
    for &(start, end) in frags {
        let take = (end - start).min(loc.len - msg.len());
        msg.extend_from_slice(buf.get(start..start + take).unwrap_or_default());
    }
    Ok(Some(Cow::Owned(msg)))
}

/// Peeks at the ClientHello at the front of `buf` without consuming anything, borrowing the
/// fields from `buf`.
///
/// `Ok(None)` means read more. A ClientHello split across records yields
/// [`Error::Fragmented`]; call [`peek_client_hello_owned`] for those (or always).
pub fn peek_client_hello(buf: &[u8]) -> Result<Option<ClientHello<'_>>, Error> {
    match client_hello_message(buf)? {
        None => Ok(None),
        Some(Cow::Borrowed(msg)) => ClientHello::parse(msg).map(Some),
        Some(Cow::Owned(msg)) => {
            // Report a malformed hello as such rather than as merely fragmented.
            ClientHello::parse(&msg)?;
            Err(Error::Fragmented)
        }
    }
}

/// A ClientHello's routing fields, owned ([`Bytes`] slices of one buffer holding the message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedClientHello {
    /// `legacy_version`.
    pub legacy_version: u16,
    /// `legacy_session_id`.
    pub session_id: Bytes,
    /// `cipher_suites`, raw.
    pub cipher_suites: Bytes,
    /// The `host_name` from `server_name`, as in [`ClientHello::server_name`].
    pub server_name: Option<Bytes>,
    /// The raw ALPN `ProtocolNameList`, validated.
    pub alpn: Option<Bytes>,
    /// `supported_versions`, raw.
    pub supported_versions: Option<Bytes>,
}

impl OwnedClientHello {
    /// Borrows this as a [`ClientHello`], for its accessors.
    pub fn as_client_hello(&self) -> ClientHello<'_> {
        ClientHello {
            legacy_version: self.legacy_version,
            session_id: &self.session_id,
            cipher_suites: &self.cipher_suites,
            server_name: self.server_name.as_deref(),
            alpn: self.alpn.as_deref().map(Alpn),
            supported_versions: self.supported_versions.as_deref(),
        }
    }
}

impl From<ClientHello<'_>> for OwnedClientHello {
    fn from(h: ClientHello<'_>) -> Self {
        Self {
            legacy_version: h.legacy_version,
            session_id: Bytes::copy_from_slice(h.session_id),
            cipher_suites: Bytes::copy_from_slice(h.cipher_suites),
            server_name: h.server_name.map(Bytes::copy_from_slice),
            alpn: h.alpn.map(|a| Bytes::copy_from_slice(a.as_bytes())),
            supported_versions: h.supported_versions.map(Bytes::copy_from_slice),
        }
    }
}

/// Like [`peek_client_hello`], but also accepts a ClientHello split across up to
/// [`MAX_RECORDS`] records, returning owned fields. Copies the message once.
pub fn peek_client_hello_owned(buf: &[u8]) -> Result<Option<OwnedClientHello>, Error> {
    let Some(msg) = client_hello_message(buf)? else {
        return Ok(None);
    };
    let msg = Bytes::from(msg.into_owned());
    let h = ClientHello::parse(&msg)?;
    let slice = |s: &[u8]| msg.slice_ref(s);
    Ok(Some(OwnedClientHello {
        legacy_version: h.legacy_version,
        session_id: slice(h.session_id),
        cipher_suites: slice(h.cipher_suites),
        server_name: h.server_name.map(slice),
        alpn: h.alpn.map(|a| slice(a.as_bytes())),
        supported_versions: h.supported_versions.map(slice),
    }))
}
