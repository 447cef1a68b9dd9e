//! PROXY protocol versions 1 and 2: parse the header a load balancer puts in front of a
//! connection, and encode one for an upstream.
//!
//! Owns: signature detection ([`detect`]), the strict v1 text line and the v2 binary header
//! ([`parse`]), v2 TLV walking with bounds checks, CRC32C verification (`PP2_TYPE_CRC32C`), the
//! `PP2_TYPE_SSL` sub-TLVs ([`Ssl`]), and encoders ([`encode_v1`], [`encode_v2`]).
//!
//! Does not: read sockets, decide whether a listener requires or merely accepts the header, or
//! apply the addresses to a connection; that is the engine's `conn/` stage.
//!
//! Spec: HAProxy `doc/proxy-protocol.txt` ("The PROXY protocol, Versions 1 & 2"), section 2.1
//! (human-readable header format, v1) and section 2.2 (binary header format, v2), 2.2.1-2.2.7
//! (TLVs).

mod crc32c;
mod v1;
mod v2;

#[cfg(test)]
mod tests;

use core::fmt;
use std::net::{SocketAddrV4, SocketAddrV6};

use bytes::{Bytes, BytesMut};

pub use v1::encode_v1;
pub use v2::encode_v2;

/// The v1 header starts with these six bytes (spec 2.1).
pub const V1_PREFIX: &[u8; 6] = b"PROXY ";

/// The 12-byte v2 signature (spec 2.2).
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// Longest v1 header, CRLF included (spec 2.1: "a 108-byte buffer" holds 107 chars + NUL).
pub const V1_MAX_LEN: usize = 107;

/// Longest v2 header: 16 fixed bytes plus a 16-bit length.
pub const V2_MAX_LEN: usize = 16 + u16::MAX as usize;

/// Length of a `sun_path` in a v2 `AF_UNIX` address block (spec 2.2).
pub const UNIX_PATH_LEN: usize = 108;

/// What the v2 header says to do with the connection (spec 2.2, the low nibble of byte 13).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// Sent by the proxy for its own connections (health checks): use the real endpoints.
    Local,
    /// Relayed on behalf of another node: the addresses describe the original connection.
    Proxy,
}

/// A `sun_path` from a v2 `AF_UNIX` address block: 108 bytes, zero padded.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnixPath(pub [u8; UNIX_PATH_LEN]);

impl UnixPath {
    /// Builds a path from `path`, zero padded; `None` if it is longer than 108 bytes.
    pub fn new(path: &[u8]) -> Option<Self> {
        let mut raw = [0u8; UNIX_PATH_LEN];
        raw.get_mut(..path.len())?.copy_from_slice(path);
        Some(Self(raw))
    }

    /// The path without its trailing zero padding. An abstract socket keeps its leading NUL.
    pub fn as_bytes(&self) -> &[u8] {
        let end = self.0.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        self.0.get(..end).unwrap_or_default()
    }
}

impl fmt::Debug for UnixPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UnixPath({:?})",
            self.as_bytes().escape_ascii().to_string()
        )
    }
}

/// The original connection's endpoints, as far as the header states them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Addresses {
    /// v1 `UNKNOWN`, v2 `AF_UNSPEC`, or a v2 `LOCAL` command: use the socket's own endpoints.
    Unknown,
    /// TCP over IPv4 (v1 `TCP4`, v2 `0x11`).
    Tcp4 {
        /// Original client.
        src: SocketAddrV4,
        /// Original destination.
        dst: SocketAddrV4,
    },
    /// TCP over IPv6 (v1 `TCP6`, v2 `0x21`). Flow info and scope id are not carried (zero).
    Tcp6 {
        /// Original client.
        src: SocketAddrV6,
        /// Original destination.
        dst: SocketAddrV6,
    },
    /// UDP over IPv4 (v2 `0x12` only).
    Udp4 {
        /// Original client.
        src: SocketAddrV4,
        /// Original destination.
        dst: SocketAddrV4,
    },
    /// UDP over IPv6 (v2 `0x22` only).
    Udp6 {
        /// Original client.
        src: SocketAddrV6,
        /// Original destination.
        dst: SocketAddrV6,
    },
    /// `AF_UNIX` stream (v2 `0x31` only).
    UnixStream {
        /// Original client.
        src: UnixPath,
        /// Original destination.
        dst: UnixPath,
    },
    /// `AF_UNIX` datagram (v2 `0x32` only).
    UnixDgram {
        /// Original client.
        src: UnixPath,
        /// Original destination.
        dst: UnixPath,
    },
}

/// A parsed PROXY protocol header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// 1 or 2.
    pub version: u8,
    /// Always [`Command::Proxy`] for v1.
    pub command: Command,
    /// The original endpoints.
    pub addresses: Addresses,
    /// The raw v2 TLV area after the address block (empty for v1); walk it with [`Header::tlvs`].
    pub tlvs: Bytes,
}

/// The outcome of [`detect`]: which header, if any, a connection starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detect {
    /// Starts with `"PROXY "`.
    V1,
    /// Starts with the 12-byte v2 signature.
    V2,
    /// Cannot be a PROXY header: hand the bytes to the next stage untouched.
    NotProxy,
    /// Every byte so far matches a signature; read more to decide.
    NeedMore,
}

/// Why a header was refused. Every variant means "close the connection"; none is retryable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Neither the v1 prefix nor the v2 signature.
    BadSignature,
    /// v1: no CRLF within 107 bytes.
    V1TooLong,
    /// v1: a LF not preceded by CR, or a CR not followed by LF.
    V1BadLineEnd,
    /// v1: the protocol is not `TCP4`, `TCP6` or `UNKNOWN`.
    V1BadProtocol,
    /// v1: fields not separated by exactly one space, or a field missing or extra.
    V1BadSyntax,
    /// v1: an address that is not a valid IP of the announced family.
    V1BadAddress,
    /// v1: a port that is not a decimal in 0..=65535 without leading zeros.
    V1BadPort,
    /// v2: the version nibble is not 2.
    V2BadVersion,
    /// v2: the command nibble is neither LOCAL (0) nor PROXY (1).
    V2BadCommand,
    /// v2: the family/protocol byte is not one of the seven values the spec defines.
    V2BadFamily,
    /// v2: the length is smaller than the address block of the announced family.
    V2ShortAddress,
    /// v2: a TLV (or SSL sub-TLV) runs past the end of its area.
    V2TruncatedTlv,
    /// v2: a TLV whose value has the wrong size for its type (CRC32C is 4 bytes, SSL at least 5).
    V2BadTlvLength,
    /// v2: the CRC32C TLV does not match the header.
    V2ChecksumMismatch,
    /// Encode: the header would not fit the 16-bit v2 length, or a TLV value the 16-bit TLV length.
    TooLong,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadSignature => "not a PROXY protocol header",
            Self::V1TooLong => "PROXY v1 line longer than 107 bytes",
            Self::V1BadLineEnd => "PROXY v1 line not terminated by CRLF",
            Self::V1BadProtocol => "PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN",
            Self::V1BadSyntax => "PROXY v1 line has bad field separation",
            Self::V1BadAddress => "PROXY v1 address invalid for its family",
            Self::V1BadPort => "PROXY v1 port invalid",
            Self::V2BadVersion => "PROXY v2 version is not 2",
            Self::V2BadCommand => "PROXY v2 command is not LOCAL or PROXY",
            Self::V2BadFamily => "PROXY v2 address family/protocol invalid",
            Self::V2ShortAddress => "PROXY v2 length shorter than the address block",
            Self::V2TruncatedTlv => "PROXY v2 TLV truncated",
            Self::V2BadTlvLength => "PROXY v2 TLV value has the wrong length for its type",
            Self::V2ChecksumMismatch => "PROXY v2 CRC32C mismatch",
            Self::TooLong => "PROXY v2 header too long to encode",
        })
    }
}

impl std::error::Error for Error {}

/// Classifies the first bytes of a connection without consuming them.
///
/// Decides as soon as one byte disagrees with both signatures, so a listener that merely
/// accepts PROXY headers never waits on a client that sends something else.
pub fn detect(src: &[u8]) -> Detect {
    /// `Some(true)`: the whole signature is present; `Some(false)`: a prefix of it; `None`: no.
    fn matches(src: &[u8], sig: &[u8]) -> Option<bool> {
        let n = src.len().min(sig.len());
        (src.get(..n) == sig.get(..n)).then_some(n == sig.len())
    }
    if src.is_empty() {
        return Detect::NeedMore;
    }
    match (matches(src, V1_PREFIX), matches(src, V2_SIGNATURE)) {
        (Some(true), _) => Detect::V1,
        (_, Some(true)) => Detect::V2,
        (None, None) => Detect::NotProxy,
        _ => Detect::NeedMore,
    }
}

/// Parses a v1 or v2 header from the front of `src`.
///
/// `Ok(None)` means every byte so far is plausible and more are needed (at most
/// [`V1_MAX_LEN`] for v1, [`V2_MAX_LEN`] for v2). On success the header's bytes are split off
/// `src`; what follows (the client's first payload bytes) stays. On error `src` is untouched.
pub fn parse(src: &mut BytesMut) -> Result<Option<Header>, Error> {
    match detect(src) {
        Detect::V1 => v1::parse(src),
        Detect::V2 => v2::parse(src),
        Detect::NeedMore => Ok(None),
        Detect::NotProxy => Err(Error::BadSignature),
    }
}

/// One v2 TLV (spec 2.2): a type byte and its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The `PP2_TYPE_*` byte; see the associated constants.
    pub kind: u8,
    /// The value, `length` bytes.
    pub value: &'a [u8],
}

impl Tlv<'_> {
    /// `PP2_TYPE_ALPN`: the negotiated application protocol.
    pub const ALPN: u8 = 0x01;
    /// `PP2_TYPE_AUTHORITY`: the host name the client asked for (SNI).
    pub const AUTHORITY: u8 = 0x02;
    /// `PP2_TYPE_CRC32C`: a 4-byte big-endian CRC32C of the whole header.
    pub const CRC32C: u8 = 0x03;
    /// `PP2_TYPE_NOOP`: padding, ignored.
    pub const NOOP: u8 = 0x04;
    /// `PP2_TYPE_UNIQUE_ID`: an opaque connection id of up to 128 bytes.
    pub const UNIQUE_ID: u8 = 0x05;
    /// `PP2_TYPE_SSL`: TLS details; see [`Ssl`].
    pub const SSL: u8 = 0x20;
    /// `PP2_SUBTYPE_SSL_VERSION`: e.g. `TLSv1.3`.
    pub const SSL_VERSION: u8 = 0x21;
    /// `PP2_SUBTYPE_SSL_CN`: the client certificate's Common Name.
    pub const SSL_CN: u8 = 0x22;
    /// `PP2_SUBTYPE_SSL_CIPHER`: e.g. `ECDHE-RSA-AES128-GCM-SHA256`.
    pub const SSL_CIPHER: u8 = 0x23;
    /// `PP2_SUBTYPE_SSL_SIG_ALG`: the certificate's signature algorithm.
    pub const SSL_SIG_ALG: u8 = 0x24;
    /// `PP2_SUBTYPE_SSL_KEY_ALG`: the certificate's key algorithm.
    pub const SSL_KEY_ALG: u8 = 0x25;
    /// `PP2_TYPE_NETNS`: the network namespace name.
    pub const NETNS: u8 = 0x30;
}

/// Iterator over a TLV area; yields `Err(V2TruncatedTlv)` once and stops on a short TLV.
#[derive(Clone, Debug)]
pub struct Tlvs<'a> {
    rest: &'a [u8],
}

impl<'a> Tlvs<'a> {
    /// Walks `area`, a sequence of `type(1) length(2, big endian) value(length)`.
    pub fn new(area: &'a [u8]) -> Self {
        Self { rest: area }
    }
}

impl<'a> Iterator for Tlvs<'a> {
    type Item = Result<Tlv<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let Some((&[kind, hi, lo], tail)) = self.rest.split_first_chunk::<3>() else {
            // A non-empty remainder shorter than a TLV head.
            self.rest = &[];
            return Some(Err(Error::V2TruncatedTlv));
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let Some((value, rest)) = tail.split_at_checked(len) else {
            self.rest = &[];
            return Some(Err(Error::V2TruncatedTlv));
        };
        self.rest = rest;
        Some(Ok(Tlv { kind, value }))
    }
}

/// The value of a `PP2_TYPE_SSL` TLV (spec 2.2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ssl<'a> {
    /// `PP2_CLIENT_*` bit field.
    pub client: u8,
    /// Zero if the client presented a certificate and it verified.
    pub verify: u32,
    /// The sub-TLV area (`PP2_SUBTYPE_SSL_*`).
    pub sub_tlvs: &'a [u8],
}

impl<'a> Ssl<'a> {
    /// `PP2_CLIENT_SSL`: the client connected over SSL/TLS.
    pub const CLIENT_SSL: u8 = 0x01;
    /// `PP2_CLIENT_CERT_CONN`: the client presented a certificate on this connection.
    pub const CLIENT_CERT_CONN: u8 = 0x02;
    /// `PP2_CLIENT_CERT_SESS`: the client presented a certificate at least once in the session.
    pub const CLIENT_CERT_SESS: u8 = 0x04;

    /// Splits an SSL TLV value into its fixed part and sub-TLVs.
    pub fn parse(value: &'a [u8]) -> Result<Self, Error> {
        let Some((&[client, a, b, c, d], sub_tlvs)) = value.split_first_chunk::<5>() else {
            return Err(Error::V2BadTlvLength);
        };
        Ok(Self {
            client,
            verify: u32::from_be_bytes([a, b, c, d]),
            sub_tlvs,
        })
    }

    /// True if the client used TLS and presented a certificate that verified.
    pub fn is_verified_client(&self) -> bool {
        self.client & Self::CLIENT_SSL != 0
            && self.client & Self::CLIENT_CERT_CONN != 0
            && self.verify == 0
    }

    /// Walks the sub-TLVs.
    pub fn tlvs(&self) -> Tlvs<'a> {
        Tlvs::new(self.sub_tlvs)
    }

    /// The first sub-TLV of type `kind`, if present and the area is well formed up to it.
    pub fn find(&self, kind: u8) -> Option<&'a [u8]> {
        find(self.tlvs(), kind)
    }

    /// `PP2_SUBTYPE_SSL_VERSION`.
    pub fn version(&self) -> Option<&'a [u8]> {
        self.find(Tlv::SSL_VERSION)
    }

    /// `PP2_SUBTYPE_SSL_CN`.
    pub fn common_name(&self) -> Option<&'a [u8]> {
        self.find(Tlv::SSL_CN)
    }

    /// `PP2_SUBTYPE_SSL_CIPHER`.
    pub fn cipher(&self) -> Option<&'a [u8]> {
        self.find(Tlv::SSL_CIPHER)
    }
}

fn find(tlvs: Tlvs<'_>, kind: u8) -> Option<&[u8]> {
    tlvs.map_while(Result::ok)
        .find(|t| t.kind == kind)
        .map(|t| t.value)
}

impl Header {
    /// Walks the v2 TLV area. [`parse`] has already checked it is well formed.
    pub fn tlvs(&self) -> Tlvs<'_> {
        Tlvs::new(&self.tlvs)
    }

    /// The value of the first TLV of type `kind`.
    pub fn find(&self, kind: u8) -> Option<&[u8]> {
        find(self.tlvs(), kind)
    }

    /// `PP2_TYPE_AUTHORITY`: the host name the client sent (usually its SNI).
    pub fn authority(&self) -> Option<&[u8]> {
        self.find(Tlv::AUTHORITY)
    }

    /// `PP2_TYPE_ALPN`: the application protocol negotiated with the client.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.find(Tlv::ALPN)
    }

    /// `PP2_TYPE_UNIQUE_ID`.
    pub fn unique_id(&self) -> Option<&[u8]> {
        self.find(Tlv::UNIQUE_ID)
    }

    /// `PP2_TYPE_NETNS`.
    pub fn netns(&self) -> Option<&[u8]> {
        self.find(Tlv::NETNS)
    }

    /// `PP2_TYPE_SSL`, split into its fixed part and sub-TLVs.
    pub fn ssl(&self) -> Option<Result<Ssl<'_>, Error>> {
        self.find(Tlv::SSL).map(Ssl::parse)
    }
}
