//! PROXY protocol v1: the human-readable line (spec 2.1).
//!
//! `PROXY TCP4|TCP6 <src ip> <dst ip> <src port> <dst port>\r\n` or `PROXY UNKNOWN ...\r\n`,
//! at most 107 bytes. Parsing is strict: single spaces, addresses of the announced family,
//! decimal ports without leading zeros.

use core::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use bytes::BytesMut;

use super::{Addresses, Command, Error, Header, V1_MAX_LEN, V1_PREFIX};

/// Parses a v1 line from the front of `src`, which [`super::detect`] found to start with
/// `"PROXY "`.
pub(super) fn parse(src: &mut BytesMut) -> Result<Option<Header>, Error> {
    let window = src.get(..src.len().min(V1_MAX_LEN)).unwrap_or_default();
    // Spec 2.1: the line ends at the first CR, which must be followed by LF. A CR anywhere
    // else, or a bare LF, is refused even after `UNKNOWN` (whose text is otherwise ignored).
    let Some(cr) = window.iter().position(|&b| b == b'\r' || b == b'\n') else {
        // "the receiver ... knows it can stop reading after 107 bytes".
        return if src.len() >= V1_MAX_LEN {
            Err(Error::V1TooLong)
        } else {
            Ok(None)
        };
    };
    if window.get(cr) == Some(&b'\n') {
        return Err(Error::V1BadLineEnd);
    }
    let lf = cr + 1;
    if lf >= V1_MAX_LEN {
        return Err(Error::V1TooLong);
    }
    match src.get(lf) {
        None => return Ok(None),
        Some(b'\n') => {}
        Some(_) => return Err(Error::V1BadLineEnd),
    }
    let line = window.get(..cr).unwrap_or_default();
    let addresses = parse_line(line)?;
    let _ = src.split_to(lf + 1);
    Ok(Some(Header {
        version: 1,
        command: Command::Proxy,
        addresses,
        tlvs: Default::default(),
    }))
}

/// Parses the line without its CRLF.
fn parse_line(line: &[u8]) -> Result<Addresses, Error> {
    let rest = line
        .strip_prefix(V1_PREFIX.as_slice())
        .ok_or(Error::BadSignature)?;
    if let Some(after) = rest.strip_prefix(b"UNKNOWN") {
        // Spec 2.1: with UNKNOWN "the receiver must ignore anything presented before the CRLF".
        return match after.first() {
            None | Some(b' ') => Ok(Addresses::Unknown),
            Some(_) => Err(Error::V1BadProtocol),
        };
    }
    let mut fields = rest.split(|&b| b == b' ');
    let proto = fields.next().unwrap_or_default();
    let tcp6 = match proto {
        b"TCP4" => false,
        b"TCP6" => true,
        _ => return Err(Error::V1BadProtocol),
    };
    let mut next = || match fields.next() {
        Some(f) if !f.is_empty() => Ok(f),
        _ => Err(Error::V1BadSyntax),
    };
    let (src_ip, dst_ip, src_port, dst_port) = (next()?, next()?, next()?, next()?);
    if fields.next().is_some() {
        return Err(Error::V1BadSyntax);
    }
    let (src_port, dst_port) = (port(src_port)?, port(dst_port)?);
    if tcp6 {
        Ok(Addresses::Tcp6 {
            src: SocketAddrV6::new(ip::<Ipv6Addr>(src_ip)?, src_port, 0, 0),
            dst: SocketAddrV6::new(ip::<Ipv6Addr>(dst_ip)?, dst_port, 0, 0),
        })
    } else {
        Ok(Addresses::Tcp4 {
            src: SocketAddrV4::new(ip::<Ipv4Addr>(src_ip)?, src_port),
            dst: SocketAddrV4::new(ip::<Ipv4Addr>(dst_ip)?, dst_port),
        })
    }
}

fn ip<T: core::str::FromStr>(field: &[u8]) -> Result<T, Error> {
    // std's parsers are strict: IPv4 refuses leading zeros, a wrong family never parses.
    core::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(Error::V1BadAddress)
}

/// Spec 2.1: a decimal in 0..=65535; a leading zero is refused, as HAProxy does.
fn port(field: &[u8]) -> Result<u16, Error> {
    let valid = field.len() <= 5
        && field.iter().all(u8::is_ascii_digit)
        && (field.len() == 1 || field.first() != Some(&b'0'));
    if !valid {
        return Err(Error::V1BadPort);
    }
    let n = field
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n).map_err(|_| Error::V1BadPort)
}

/// Appends a v1 line for `addrs` to `dst`.
///
/// v1 only expresses TCP over IPv4 and IPv6; any other [`Addresses`] is written as
/// `PROXY UNKNOWN\r\n`. IPv6 flow info and scope id are not carried.
pub fn encode_v1(addrs: &Addresses, dst: &mut BytesMut) {
    // Writing to a BytesMut cannot fail (it grows), so the fmt::Result carries nothing.
    let _ = match addrs {
        Addresses::Tcp4 { src, dst: to } => write!(
            dst,
            "PROXY TCP4 {} {} {} {}\r\n",
            src.ip(),
            to.ip(),
            src.port(),
            to.port()
        ),
        Addresses::Tcp6 { src, dst: to } => write!(
            dst,
            "PROXY TCP6 {} {} {} {}\r\n",
            src.ip(),
            to.ip(),
            src.port(),
            to.port()
        ),
        _ => {
            dst.extend_from_slice(b"PROXY UNKNOWN\r\n");
            Ok(())
        }
    };
}
