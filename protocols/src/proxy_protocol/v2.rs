//! PROXY protocol v2: the binary header (spec 2.2) and its TLVs (2.2.1-2.2.7).
//!
//! 12-byte signature, version/command byte, family/protocol byte, 16-bit big-endian length of
//! the address block plus TLVs.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use bytes::{BufMut, BytesMut};

use super::crc32c::Crc32c;
use super::{Addresses, Command, Error, Header, Ssl, Tlv, UNIX_PATH_LEN, V2_SIGNATURE};

/// Signature, version/command, family, length.
const FIXED_LEN: usize = 16;

/// Spec 2.2: "the address block ... 12 bytes" for AF_INET, 36 for AF_INET6, 216 for AF_UNIX.
const INET_LEN: usize = 12;
const INET6_LEN: usize = 36;
const UNIX_LEN: usize = 2 * UNIX_PATH_LEN;

/// Checks byte 13 (version/command) and byte 14 (family/protocol) as soon as they arrive.
fn check_head(ver_cmd: Option<u8>, fam: Option<u8>) -> Result<(), Error> {
    if let Some(vc) = ver_cmd {
        // Spec 2.2: "The highest four bits contains the version ... \x2 ... Other values ...
        // must be rejected as invalid by receivers."
        if vc >> 4 != 2 {
            return Err(Error::V2BadVersion);
        }
        // "Other values are unassigned and must not be emitted by senders. Receivers must drop
        // connections presenting unexpected values here."
        if vc & 0x0f > 1 {
            return Err(Error::V2BadCommand);
        }
    }
    if let Some(fam) = fam {
        addr_len(fam)?;
    }
    Ok(())
}

/// Spec 2.2: only UNSPEC and the six TCP/UDP over INET/INET6/UNIX values are valid; "other
/// values are unspecified and must not be emitted ... and must be rejected as invalid by
/// receivers."
fn addr_len(fam: u8) -> Result<usize, Error> {
    match fam {
        0x00 => Ok(0),
        0x11 | 0x12 => Ok(INET_LEN),
        0x21 | 0x22 => Ok(INET6_LEN),
        0x31 | 0x32 => Ok(UNIX_LEN),
        _ => Err(Error::V2BadFamily),
    }
}

/// Parses a v2 header from the front of `src`, which [`super::detect`] found to start with
/// the signature.
pub(super) fn parse(src: &mut BytesMut) -> Result<Option<Header>, Error> {
    let Some(fixed) = src.first_chunk::<FIXED_LEN>() else {
        check_head(src.get(12).copied(), src.get(13).copied())?;
        return Ok(None);
    };
    let [.., ver_cmd, fam, hi, lo] = *fixed;
    check_head(Some(ver_cmd), Some(fam))?;
    let total = FIXED_LEN + usize::from(u16::from_be_bytes([hi, lo]));
    let Some(header) = src.get(..total) else {
        return Ok(None);
    };
    let body = header.get(FIXED_LEN..).unwrap_or_default();
    let need = addr_len(fam)?;
    let (addresses, tlv_start) = if ver_cmd & 0x0f == 1 {
        // Spec 2.2: "the receiver must ... drop the connection" when the length is smaller
        // than the address block of the family.
        let block = body.get(..need).ok_or(Error::V2ShortAddress)?;
        let addresses = decode_addresses(fam, block);
        let tlv_start = FIXED_LEN + need;
        check_tlvs(header, tlv_start)?;
        (addresses, tlv_start)
    } else {
        // Spec 2.2, LOCAL: "the receiver must accept this connection as valid and must use the
        // real connection endpoints and discard the protocol block including the family".
        // TLVs are kept only when the area after the family's block is well formed.
        let tlv_start = if body.len() >= need {
            FIXED_LEN + need
        } else {
            total
        };
        let tlv_start = if check_tlvs(header, tlv_start).is_ok() {
            tlv_start
        } else {
            total
        };
        (Addresses::Unknown, tlv_start)
    };
    let command = if ver_cmd & 0x0f == 1 {
        Command::Proxy
    } else {
        Command::Local
    };
    let raw = src.split_to(total).freeze();
    Ok(Some(Header {
        version: 2,
        command,
        addresses,
        tlvs: raw.slice(tlv_start..),
    }))
}

/// Walks the TLV area `header[start..]`: bounds, sizes of typed TLVs, and the CRC32C.
fn check_tlvs(header: &[u8], start: usize) -> Result<(), Error> {
    let mut pos = start;
    while pos < header.len() {
        let Some(&[kind, hi, lo]) = header.get(pos..).and_then(|r| r.first_chunk::<3>()) else {
            return Err(Error::V2TruncatedTlv);
        };
        let value_at = pos + 3;
        let end = value_at + usize::from(u16::from_be_bytes([hi, lo]));
        let value = header.get(value_at..end).ok_or(Error::V2TruncatedTlv)?;
        match kind {
            Tlv::CRC32C => {
                // Spec 2.2.3: "a 32-bit number storing the CRC32c checksum of the PROXY
                // protocol header ... computed ... with the checksum field set to 0 ... If the
                // checksum does not match, the receiver must drop the connection."
                let Ok(&expect) = <&[u8; 4]>::try_from(value) else {
                    return Err(Error::V2BadTlvLength);
                };
                let actual = Crc32c::new()
                    .update(header.get(..value_at).unwrap_or_default())
                    .update(&[0; 4])
                    .update(header.get(end..).unwrap_or_default())
                    .finish();
                if actual != u32::from_be_bytes(expect) {
                    return Err(Error::V2ChecksumMismatch);
                }
            }
            Tlv::SSL => {
                // Spec 2.2.5: client(1), verify(4), then sub-TLVs within the value.
                for sub in Ssl::parse(value)?.tlvs() {
                    sub?;
                }
            }
            _ => {}
        }
        pos = end;
    }
    Ok(())
}

fn decode_addresses(fam: u8, block: &[u8]) -> Addresses {
    fn v4(b: &[u8]) -> (SocketAddrV4, SocketAddrV4) {
        let mut a = [0u8; INET_LEN];
        a.copy_from_slice(b.get(..INET_LEN).unwrap_or(&[0; INET_LEN]));
        let [s0, s1, s2, s3, d0, d1, d2, d3, sp0, sp1, dp0, dp1] = a;
        (
            SocketAddrV4::new(
                Ipv4Addr::new(s0, s1, s2, s3),
                u16::from_be_bytes([sp0, sp1]),
            ),
            SocketAddrV4::new(
                Ipv4Addr::new(d0, d1, d2, d3),
                u16::from_be_bytes([dp0, dp1]),
            ),
        )
    }
    fn v6(b: &[u8]) -> (SocketAddrV6, SocketAddrV6) {
        let field = |at: usize| -> [u8; 16] {
            b.get(at..at + 16)
                .and_then(|s| s.try_into().ok())
                .unwrap_or_default()
        };
        let port = |at: usize| -> u16 {
            b.get(at..at + 2)
                .and_then(|s| s.try_into().ok())
                .map_or(0, u16::from_be_bytes)
        };
        (
            SocketAddrV6::new(Ipv6Addr::from(field(0)), port(32), 0, 0),
            SocketAddrV6::new(Ipv6Addr::from(field(16)), port(34), 0, 0),
        )
    }
    fn unix(b: &[u8]) -> (super::UnixPath, super::UnixPath) {
        let path = |at: usize| {
            super::UnixPath(
                b.get(at..at + UNIX_PATH_LEN)
                    .and_then(|s| s.try_into().ok())
                    .unwrap_or([0; UNIX_PATH_LEN]),
            )
        };
        (path(0), path(UNIX_PATH_LEN))
    }
    match fam {
        0x11 => {
            let (src, dst) = v4(block);
            Addresses::Tcp4 { src, dst }
        }
        0x12 => {
            let (src, dst) = v4(block);
            Addresses::Udp4 { src, dst }
        }
        0x21 => {
            let (src, dst) = v6(block);
            Addresses::Tcp6 { src, dst }
        }
        0x22 => {
            let (src, dst) = v6(block);
            Addresses::Udp6 { src, dst }
        }
        0x31 => {
            let (src, dst) = unix(block);
            Addresses::UnixStream { src, dst }
        }
        0x32 => {
            let (src, dst) = unix(block);
            Addresses::UnixDgram { src, dst }
        }
        _ => Addresses::Unknown,
    }
}

/// Appends a v2 header to `dst`: `cmd`, `addrs`, then `tlvs` as `(type, value)` in order.
///
/// A `PP2_TYPE_CRC32C` entry's value is ignored and replaced by the header's checksum (give
/// 4 zero bytes). [`Addresses::Unknown`] is sent as `AF_UNSPEC` with no address block.
///
/// # Errors
/// [`Error::TooLong`] if a value exceeds 65535 bytes or the whole header its 16-bit length;
/// [`Error::V2BadTlvLength`] for a CRC32C entry that is not 4 bytes or appears twice. On
/// error `dst` is unchanged.
pub fn encode_v2(
    cmd: Command,
    addrs: &Addresses,
    tlvs: &[(u8, &[u8])],
    dst: &mut BytesMut,
) -> Result<(), Error> {
    let (fam, block_len) = match addrs {
        Addresses::Unknown => (0x00, 0),
        Addresses::Tcp4 { .. } => (0x11, INET_LEN),
        Addresses::Udp4 { .. } => (0x12, INET_LEN),
        Addresses::Tcp6 { .. } => (0x21, INET6_LEN),
        Addresses::Udp6 { .. } => (0x22, INET6_LEN),
        Addresses::UnixStream { .. } => (0x31, UNIX_LEN),
        Addresses::UnixDgram { .. } => (0x32, UNIX_LEN),
    };
    let mut len = block_len;
    let mut crcs = 0;
    for &(kind, value) in tlvs {
        if value.len() > usize::from(u16::MAX) {
            return Err(Error::TooLong);
        }
        if kind == Tlv::CRC32C {
            crcs += 1;
            if value.len() != 4 || crcs > 1 {
                return Err(Error::V2BadTlvLength);
            }
        }
        len += 3 + value.len();
    }
    let len = u16::try_from(len).map_err(|_| Error::TooLong)?;

    let start = dst.len();
    dst.reserve(FIXED_LEN + usize::from(len));
    dst.put_slice(V2_SIGNATURE);
    dst.put_u8(match cmd {
        Command::Local => 0x20,
        Command::Proxy => 0x21,
    });
    dst.put_u8(fam);
    dst.put_u16(len);
    match addrs {
        Addresses::Unknown => {}
        Addresses::Tcp4 { src, dst: to } | Addresses::Udp4 { src, dst: to } => {
            dst.put_slice(&src.ip().octets());
            dst.put_slice(&to.ip().octets());
            dst.put_u16(src.port());
            dst.put_u16(to.port());
        }
        Addresses::Tcp6 { src, dst: to } | Addresses::Udp6 { src, dst: to } => {
            dst.put_slice(&src.ip().octets());
            dst.put_slice(&to.ip().octets());
            dst.put_u16(src.port());
            dst.put_u16(to.port());
        }
        Addresses::UnixStream { src, dst: to } | Addresses::UnixDgram { src, dst: to } => {
            dst.put_slice(&src.0);
            dst.put_slice(&to.0);
        }
    }
    let mut crc_at = None;
    for &(kind, value) in tlvs {
        dst.put_u8(kind);
        // Checked above: every value fits in 16 bits.
        dst.put_u16(value.len() as u16);
        if kind == Tlv::CRC32C {
            crc_at = Some(dst.len());
            dst.put_slice(&[0; 4]);
        } else {
            dst.put_slice(value);
        }
    }
    if let Some(at) = crc_at {
        let crc = Crc32c::new()
            .update(dst.get(start..).unwrap_or_default())
            .finish();
        if let Some(field) = dst.get_mut(at..at + 4) {
            field.copy_from_slice(&crc.to_be_bytes());
        }
    }
    Ok(())
}
