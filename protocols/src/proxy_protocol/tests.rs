//! Spec vectors, every error, round trips, split points and arbitrary input for the PROXY
//! protocol parser and encoders.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use bytes::BytesMut;
use proptest::prelude::*;

use super::*;

fn parse_all(bytes: &[u8]) -> Result<Option<Header>, Error> {
    parse(&mut BytesMut::from(bytes))
}

fn v4(a: [u8; 4], port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::from(a), port)
}

fn v6(s: &str, port: u16) -> SocketAddrV6 {
    SocketAddrV6::new(s.parse().unwrap(), port, 0, 0)
}

/// Every proper prefix of `wire` is `Ok(None)`; the whole of it plus `tail` parses to the same
/// header as `wire` alone and leaves exactly `tail`.
fn check_split_points(wire: &[u8]) -> Header {
    for n in 0..wire.len() {
        let mut buf = BytesMut::from(&wire[..n]);
        assert_eq!(parse(&mut buf), Ok(None), "prefix of {n} bytes");
        assert_eq!(&buf[..], &wire[..n], "a partial parse must not consume");
    }
    let tail = b"GET / HTTP/1.1\r\n\r\n";
    let mut buf = BytesMut::from(wire);
    buf.extend_from_slice(tail);
    let header = parse(&mut buf).unwrap().unwrap();
    assert_eq!(&buf[..], tail);
    assert_eq!(parse_all(wire).unwrap().unwrap(), header);
    header
}

// ---- v1: spec 2.1 examples, byte for byte ----

#[test]
fn v1_spec_worst_case_tcp4() {
    let wire = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    assert_eq!(wire.len(), 56); // spec: "worst case (optional fields set to 0xff)"
    let h = check_split_points(wire);
    assert_eq!(h.version, 1);
    assert_eq!(h.command, Command::Proxy);
    let addrs = Addresses::Tcp4 {
        src: v4([255; 4], 65535),
        dst: v4([255; 4], 65535),
    };
    assert_eq!(h.addresses, addrs);
    assert!(h.tlvs.is_empty());
    let mut out = BytesMut::new();
    encode_v1(&addrs, &mut out);
    assert_eq!(&out[..], wire);
}

#[test]
fn v1_spec_worst_case_tcp6() {
    let wire = b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_eq!(wire.len(), 104);
    let h = check_split_points(wire);
    let all = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let addrs = Addresses::Tcp6 {
        src: v6(all, 65535),
        dst: v6(all, 65535),
    };
    assert_eq!(h.addresses, addrs);
    let mut out = BytesMut::new();
    encode_v1(&addrs, &mut out);
    assert_eq!(&out[..], wire);
}

#[test]
fn v1_spec_unknown_short_and_worst_case() {
    let h = check_split_points(b"PROXY UNKNOWN\r\n");
    assert_eq!(h.addresses, Addresses::Unknown);
    let wire = b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_eq!(wire.len(), V1_MAX_LEN); // spec: the 107-byte worst case
    assert_eq!(check_split_points(wire).addresses, Addresses::Unknown);
    let mut out = BytesMut::new();
    encode_v1(&Addresses::Unknown, &mut out);
    assert_eq!(&out[..], b"PROXY UNKNOWN\r\n");
}

#[test]
fn v1_spec_example_with_payload() {
    let mut buf =
        BytesMut::from(&b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n"[..]);
    let h = parse(&mut buf).unwrap().unwrap();
    assert_eq!(
        h.addresses,
        Addresses::Tcp4 {
            src: v4([192, 168, 0, 1], 56324),
            dst: v4([192, 168, 0, 11], 443)
        }
    );
    assert_eq!(&buf[..], b"GET / HTTP/1.1\r\n");
}

#[test]
fn v1_short_ipv6_forms_and_port_zero() {
    let h = parse_all(b"PROXY TCP6 ::1 2001:db8::ffff:1.2.3.4 0 80\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(
        h.addresses,
        Addresses::Tcp6 {
            src: v6("::1", 0),
            dst: v6("2001:db8::ffff:102:304", 80)
        }
    );
}

#[test]
fn v1_encode_other_families_as_unknown() {
    let mut out = BytesMut::new();
    let p = UnixPath::new(b"/run/x.sock").unwrap();
    encode_v1(&Addresses::UnixStream { src: p, dst: p }, &mut out);
    assert_eq!(&out[..], b"PROXY UNKNOWN\r\n");
}

#[test]
fn v1_errors() {
    let cases: &[(&[u8], Error)] = &[
        (b"GET / HTTP/1.1\r\n", Error::BadSignature),
        (b"PROXX TCP4", Error::BadSignature),
        (b"proxy TCP4", Error::BadSignature),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", Error::V1BadLineEnd),
        (b"PROXY TCP4 1.2.3.4\rX", Error::V1BadLineEnd),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", Error::V1BadLineEnd),
        (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", Error::V1BadProtocol),
        (b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", Error::V1BadProtocol),
        (b"PROXY UNKNOWNX\r\n", Error::V1BadProtocol),
        (b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", Error::V1BadProtocol),
        (b"PROXY \r\n", Error::V1BadProtocol),
        (b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", Error::V1BadSyntax),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", Error::V1BadSyntax),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", Error::V1BadSyntax),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", Error::V1BadSyntax),
        (b"PROXY TCP4\r\n", Error::V1BadSyntax),
        (b"PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", Error::V1BadSyntax),
        (b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", Error::V1BadAddress),
        (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", Error::V1BadAddress),
        (b"PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n", Error::V1BadAddress),
        (b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", Error::V1BadAddress),
        (b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", Error::V1BadAddress),
        (b"PROXY TCP6 [::1] ::2 1 2\r\n", Error::V1BadAddress),
        (b"PROXY TCP6 ::1%eth0 ::2 1 2\r\n", Error::V1BadAddress),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.\xff 1 2\r\n",
            Error::V1BadAddress,
        ),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", Error::V1BadPort),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", Error::V1BadPort),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n", Error::V1BadPort),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", Error::V1BadPort),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2a\r\n", Error::V1BadPort),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 000080\r\n", Error::V1BadPort),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", Error::V1BadPort),
    ];
    for &(wire, err) in cases {
        let mut buf = BytesMut::from(wire);
        assert_eq!(parse(&mut buf), Err(err), "{}", wire.escape_ascii());
        assert_eq!(&buf[..], wire, "an error must not consume");
    }
}

/// Fuzzing regression (proxy_protocol target): a CR not followed by LF inside an `UNKNOWN`
/// line was accepted on the whole input but refused on a prefix of it.
#[test]
fn v1_bare_cr_after_unknown_is_refused() {
    let wire = b"PROXY UNKNOWN fnff:ffff 6\rJ\r\n";
    assert_eq!(parse_all(wire), Err(Error::V1BadLineEnd));
    for n in 0..wire.len() {
        assert!(
            matches!(parse_all(&wire[..n]), Ok(None) | Err(Error::V1BadLineEnd)),
            "{n}"
        );
    }
    assert_eq!(parse_all(b"PROXY UNKNOWN\n"), Err(Error::V1BadLineEnd));
    assert_eq!(
        parse_all(b"PROXY UNKNOWN a\nb\r\n"),
        Err(Error::V1BadLineEnd)
    );
    assert_eq!(parse_all(b"PROXY UNKNOWN \r"), Ok(None));
}

#[test]
fn v1_too_long() {
    // 106 bytes without LF: still waiting; 107: refused.
    let mut line = b"PROXY UNKNOWN ".to_vec();
    line.resize(106, b'a');
    assert_eq!(parse_all(&line), Ok(None));
    line.push(b'a');
    assert_eq!(parse_all(&line), Err(Error::V1TooLong));
    // A 108-byte line whose LF is byte 108 is refused too.
    let mut line = b"PROXY UNKNOWN ".to_vec();
    line.resize(106, b'a');
    line.extend_from_slice(b"\r\n");
    assert_eq!(parse_all(&line), Err(Error::V1TooLong));
}

// ---- v2: spec 2.2 layouts, byte for byte ----

/// v2 PROXY TCP4 192.168.0.1:56324 -> 192.168.0.11:443 with an AUTHORITY TLV and a CRC32C TLV
/// (0xbb56885c, computed by an independent bitwise Python implementation of CRC-32C).
const V2_TCP4_CRC: &str = "0d0a0d0a000d0a515549540a21110021c0a80001c0a8000bdc0401bb\
                           02000b6578616d706c652e636f6d030004bb56885c";

fn unhex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    s.chunks(2)
        .map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn sig_with(rest: &[u8]) -> Vec<u8> {
    let mut v = V2_SIGNATURE.to_vec();
    v.extend_from_slice(rest);
    v
}

#[test]
fn v2_tcp4_with_authority_and_crc() {
    let wire = unhex(V2_TCP4_CRC);
    let h = check_split_points(&wire);
    assert_eq!(h.version, 2);
    assert_eq!(h.command, Command::Proxy);
    let addrs = Addresses::Tcp4 {
        src: v4([192, 168, 0, 1], 56324),
        dst: v4([192, 168, 0, 11], 443),
    };
    assert_eq!(h.addresses, addrs);
    assert_eq!(h.authority(), Some(&b"example.com"[..]));
    assert_eq!(h.find(Tlv::CRC32C), Some(&[0xbb, 0x56, 0x88, 0x5c][..]));
    assert_eq!(h.alpn(), None);
    // The encoder fills in the same checksum.
    let mut out = BytesMut::new();
    encode_v2(
        Command::Proxy,
        &addrs,
        &[(Tlv::AUTHORITY, b"example.com"), (Tlv::CRC32C, &[0; 4])],
        &mut out,
    )
    .unwrap();
    assert_eq!(&out[..], &wire[..]);
}

#[test]
fn v2_checksum_mismatch_on_any_flipped_bit() {
    let wire = unhex(V2_TCP4_CRC);
    // Flip one bit in each byte after the fixed part except the TLV heads (which would change
    // the structure instead): addresses, authority value and the checksum itself.
    for i in (16..28).chain(31..42).chain(45..49) {
        let mut bad = wire.clone();
        bad[i] ^= 0x01;
        assert_eq!(parse_all(&bad), Err(Error::V2ChecksumMismatch), "byte {i}");
    }
}

#[test]
fn v2_tcp6_exact() {
    let mut wire = sig_with(&[0x21, 0x21, 0x00, 0x24]);
    wire.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets());
    wire.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    wire.extend_from_slice(&[0x30, 0x39, 0x01, 0xbb]);
    let h = check_split_points(&wire);
    let addrs = Addresses::Tcp6 {
        src: v6("2001:db8::1", 12345),
        dst: v6("::1", 443),
    };
    assert_eq!(h.addresses, addrs);
    let mut out = BytesMut::new();
    encode_v2(Command::Proxy, &addrs, &[], &mut out).unwrap();
    assert_eq!(out[..], wire[..]);
}

#[test]
fn v2_udp_and_unix() {
    let udp4 = Addresses::Udp4 {
        src: v4([10, 0, 0, 1], 53),
        dst: v4([10, 0, 0, 2], 5353),
    };
    let mut wire = sig_with(&[
        0x21, 0x12, 0x00, 0x0c, 10, 0, 0, 1, 10, 0, 0, 2, 0, 53, 0x14, 0xe9,
    ]);
    assert_eq!(check_split_points(&wire).addresses, udp4);

    let p = UnixPath::new(b"/run/client.sock").unwrap();
    let q = UnixPath::new(b"\0abstract").unwrap();
    assert_eq!(p.as_bytes(), b"/run/client.sock");
    assert_eq!(q.as_bytes(), b"\0abstract");
    assert!(UnixPath::new(&[b'a'; 109]).is_none());
    wire = sig_with(&[0x21, 0x32, 0x00, 0xd8]);
    wire.extend_from_slice(&p.0);
    wire.extend_from_slice(&q.0);
    assert_eq!(wire.len(), 16 + 216);
    assert_eq!(
        check_split_points(&wire).addresses,
        Addresses::UnixDgram { src: p, dst: q }
    );
}

#[test]
fn v2_local_and_unspec() {
    // LOCAL, AF_UNSPEC, no address block: the health-check form.
    let h = check_split_points(&sig_with(&[0x20, 0x00, 0x00, 0x00]));
    assert_eq!(
        (h.command, h.addresses),
        (Command::Local, Addresses::Unknown)
    );
    let mut out = BytesMut::new();
    encode_v2(Command::Local, &Addresses::Unknown, &[], &mut out).unwrap();
    assert_eq!(out[..], sig_with(&[0x20, 0x00, 0x00, 0x00])[..]);

    // PROXY with AF_UNSPEC: addresses unknown, TLVs still read.
    let h = check_split_points(&sig_with(&[
        0x21, 0x00, 0x00, 0x05, 0x01, 0x00, 0x02, b'h', b'2',
    ]));
    assert_eq!(
        (h.command, h.addresses.clone()),
        (Command::Proxy, Addresses::Unknown)
    );
    assert_eq!(h.alpn(), Some(&b"h2"[..]));

    // LOCAL with a family and a short block is still accepted (spec: discard the block).
    let h = parse_all(&sig_with(&[0x20, 0x11, 0x00, 0x03, 1, 2, 3]))
        .unwrap()
        .unwrap();
    assert_eq!(
        (h.command, h.addresses, &h.tlvs[..]),
        (Command::Local, Addresses::Unknown, &[][..])
    );
    // LOCAL with a full block and TLVs keeps the TLVs but not the addresses.
    let mut wire = sig_with(&[0x20, 0x11, 0x00, 0x12, 1, 1, 1, 1, 2, 2, 2, 2, 0, 1, 0, 2]);
    wire.extend_from_slice(&[0x02, 0x00, 0x03, b'a', b'.', b'b']);
    let h = parse_all(&wire).unwrap().unwrap();
    assert_eq!(
        (h.addresses.clone(), h.authority()),
        (Addresses::Unknown, Some(&b"a.b"[..]))
    );
}

#[test]
fn v2_ssl_tlv() {
    let mut ssl = vec![0x07, 0, 0, 0, 0];
    ssl.extend_from_slice(&[0x21, 0x00, 0x07]);
    ssl.extend_from_slice(b"TLSv1.3");
    ssl.extend_from_slice(&[0x22, 0x00, 0x06]);
    ssl.extend_from_slice(b"client");
    let addrs = Addresses::Tcp4 {
        src: v4([1, 2, 3, 4], 1),
        dst: v4([5, 6, 7, 8], 2),
    };
    let mut out = BytesMut::new();
    let tlvs: &[(u8, &[u8])] = &[
        (Tlv::SSL, &ssl),
        (Tlv::NOOP, &[0; 3]),
        (Tlv::UNIQUE_ID, b"id-1"),
        (Tlv::NETNS, b"ns"),
    ];
    encode_v2(Command::Proxy, &addrs, tlvs, &mut out).unwrap();
    let h = check_split_points(&out);
    let s = h.ssl().unwrap().unwrap();
    assert!(s.is_verified_client());
    assert_eq!(s.version(), Some(&b"TLSv1.3"[..]));
    assert_eq!(s.common_name(), Some(&b"client"[..]));
    assert_eq!(s.cipher(), None);
    assert_eq!(h.unique_id(), Some(&b"id-1"[..]));
    assert_eq!(h.netns(), Some(&b"ns"[..]));
    let kinds: Vec<u8> = h.tlvs().map(|t| t.unwrap().kind).collect();
    assert_eq!(kinds, [Tlv::SSL, Tlv::NOOP, Tlv::UNIQUE_ID, Tlv::NETNS]);
    // Unverified: verify non-zero.
    let s = Ssl::parse(&[0x03, 0, 0, 0, 1]).unwrap();
    assert!(!s.is_verified_client());
}

#[test]
fn v2_errors() {
    let tcp4_block = [1u8, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2];
    let with_tlvs = |tlvs: &[u8]| {
        let mut v = sig_with(&[0x21, 0x11]);
        v.extend_from_slice(&((12 + tlvs.len()) as u16).to_be_bytes());
        v.extend_from_slice(&tcp4_block);
        v.extend_from_slice(tlvs);
        v
    };
    let mut bad_sig = sig_with(&[0x21, 0x00, 0x00, 0x00]);
    bad_sig[11] = b'X';
    let cases: Vec<(Vec<u8>, Error)> = vec![
        (bad_sig, Error::BadSignature),
        (sig_with(&[0x11]), Error::V2BadVersion),
        (sig_with(&[0x31, 0x11, 0x00, 0x00]), Error::V2BadVersion),
        (sig_with(&[0x22]), Error::V2BadCommand),
        (sig_with(&[0x2f, 0x00, 0x00, 0x00]), Error::V2BadCommand),
        (sig_with(&[0x21, 0x13]), Error::V2BadFamily),
        (sig_with(&[0x21, 0x10, 0x00, 0x00]), Error::V2BadFamily),
        (sig_with(&[0x21, 0x01, 0x00, 0x00]), Error::V2BadFamily),
        (sig_with(&[0x21, 0x41, 0x00, 0x00]), Error::V2BadFamily),
        (sig_with(&[0x20, 0x23]), Error::V2BadFamily),
        (
            sig_with(&[0x21, 0x11, 0x00, 0x0b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
            Error::V2ShortAddress,
        ),
        (
            sig_with(&[
                0x21, 0x21, 0x00, 0x0c, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
            ]),
            Error::V2ShortAddress,
        ),
        (sig_with(&[0x21, 0x31, 0x00, 0x00]), Error::V2ShortAddress),
        (with_tlvs(&[0x01, 0x00]), Error::V2TruncatedTlv),
        (with_tlvs(&[0x01]), Error::V2TruncatedTlv),
        (
            with_tlvs(&[0x01, 0x00, 0x03, b'h', b'2']),
            Error::V2TruncatedTlv,
        ),
        (
            with_tlvs(&[0x04, 0x00, 0x00, 0x01, 0x00, 0x05, b'h']),
            Error::V2TruncatedTlv,
        ),
        (
            with_tlvs(&[0x03, 0x00, 0x03, 0, 0, 0]),
            Error::V2BadTlvLength,
        ),
        (
            with_tlvs(&[0x03, 0x00, 0x05, 0, 0, 0, 0, 0]),
            Error::V2BadTlvLength,
        ),
        (
            with_tlvs(&[0x20, 0x00, 0x04, 1, 0, 0, 0]),
            Error::V2BadTlvLength,
        ),
        (
            with_tlvs(&[0x20, 0x00, 0x07, 1, 0, 0, 0, 0, 0x21, 0x00]),
            Error::V2TruncatedTlv,
        ),
        (
            with_tlvs(&[0x03, 0x00, 0x04, 0, 0, 0, 0]),
            Error::V2ChecksumMismatch,
        ),
    ];
    for (wire, err) in cases {
        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(parse(&mut buf), Err(err), "{:02x?}", wire);
        assert_eq!(buf[..], wire[..], "an error must not consume");
    }
}

#[test]
fn v2_encode_errors() {
    let big = vec![0u8; 65536];
    let mut out = BytesMut::from(&b"keep"[..]);
    let a = Addresses::Unknown;
    assert_eq!(
        encode_v2(Command::Proxy, &a, &[(0xe0, &big)], &mut out),
        Err(Error::TooLong)
    );
    let half = vec![0u8; 40000];
    let two: &[(u8, &[u8])] = &[(0xe0, &half), (0xe1, &half)];
    assert_eq!(
        encode_v2(Command::Proxy, &a, two, &mut out),
        Err(Error::TooLong)
    );
    let crc3: &[(u8, &[u8])] = &[(Tlv::CRC32C, &[0; 3])];
    assert_eq!(
        encode_v2(Command::Proxy, &a, crc3, &mut out),
        Err(Error::V2BadTlvLength)
    );
    let crc2: &[(u8, &[u8])] = &[(Tlv::CRC32C, &[0; 4]), (Tlv::CRC32C, &[0; 4])];
    assert_eq!(
        encode_v2(Command::Proxy, &a, crc2, &mut out),
        Err(Error::V2BadTlvLength)
    );
    assert_eq!(&out[..], b"keep");
    // The largest header that fits: 65535 bytes of TLV area.
    let max = vec![0u8; 65535 - 3];
    encode_v2(Command::Proxy, &a, &[(0xe0, &max)], &mut out).unwrap();
    assert_eq!(out.len(), 4 + V2_MAX_LEN);
    let _ = out.split_to(4);
    assert_eq!(
        parse(&mut out).unwrap().unwrap().find(0xe0).unwrap().len(),
        65532
    );
}

#[test]
fn tlv_iterator_reports_truncation_once() {
    let mut it = Tlvs::new(&[0x01, 0x00, 0x01, b'x', 0x02, 0x00]);
    assert_eq!(
        it.next(),
        Some(Ok(Tlv {
            kind: 1,
            value: b"x"
        }))
    );
    assert_eq!(it.next(), Some(Err(Error::V2TruncatedTlv)));
    assert_eq!(it.next(), None);
    assert_eq!(Tlvs::new(&[]).next(), None);
}

#[test]
fn detect_decides_early() {
    assert_eq!(detect(b""), Detect::NeedMore);
    assert_eq!(detect(b"PRO"), Detect::NeedMore);
    assert_eq!(detect(b"PROXY"), Detect::NeedMore);
    assert_eq!(detect(b"PROXY "), Detect::V1);
    assert_eq!(detect(b"\r\n\r\n"), Detect::NeedMore);
    assert_eq!(detect(V2_SIGNATURE), Detect::V2);
    assert_eq!(detect(b"G"), Detect::NotProxy);
    assert_eq!(detect(b"PROXZ"), Detect::NotProxy);
    assert_eq!(detect(b"\r\n\r\n\0\r\nQUIX"), Detect::NotProxy);
    assert_eq!(detect(&[0x16, 0x03, 0x01]), Detect::NotProxy); // a TLS record
}

#[test]
fn error_display_is_distinct() {
    let all = [
        Error::BadSignature,
        Error::V1TooLong,
        Error::V1BadLineEnd,
        Error::V1BadProtocol,
        Error::V1BadSyntax,
        Error::V1BadAddress,
        Error::V1BadPort,
        Error::V2BadVersion,
        Error::V2BadCommand,
        Error::V2BadFamily,
        Error::V2ShortAddress,
        Error::V2TruncatedTlv,
        Error::V2BadTlvLength,
        Error::V2ChecksumMismatch,
        Error::TooLong,
    ];
    let msgs: std::collections::HashSet<String> = all.iter().map(ToString::to_string).collect();
    assert_eq!(msgs.len(), all.len());
}

// ---- properties ----

fn arb_v4() -> impl Strategy<Value = SocketAddrV4> {
    (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, p)| v4(a, p))
}

fn arb_v6() -> impl Strategy<Value = SocketAddrV6> {
    (any::<[u8; 16]>(), any::<u16>())
        .prop_map(|(a, p)| SocketAddrV6::new(Ipv6Addr::from(a), p, 0, 0))
}

fn arb_unix() -> impl Strategy<Value = UnixPath> {
    proptest::collection::vec(any::<u8>(), 0..=UNIX_PATH_LEN)
        .prop_map(|p| UnixPath::new(&p).unwrap())
}

fn arb_addresses() -> impl Strategy<Value = Addresses> {
    prop_oneof![
        Just(Addresses::Unknown),
        (arb_v4(), arb_v4()).prop_map(|(src, dst)| Addresses::Tcp4 { src, dst }),
        (arb_v6(), arb_v6()).prop_map(|(src, dst)| Addresses::Tcp6 { src, dst }),
        (arb_v4(), arb_v4()).prop_map(|(src, dst)| Addresses::Udp4 { src, dst }),
        (arb_v6(), arb_v6()).prop_map(|(src, dst)| Addresses::Udp6 { src, dst }),
        (arb_unix(), arb_unix()).prop_map(|(src, dst)| Addresses::UnixStream { src, dst }),
        (arb_unix(), arb_unix()).prop_map(|(src, dst)| Addresses::UnixDgram { src, dst }),
    ]
}

/// TLVs whose types carry no structure the parser checks (SSL and CRC32C are tested apart).
fn arb_tlvs() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
    proptest::collection::vec(
        (
            any::<u8>().prop_filter("structured", |k| *k != Tlv::SSL && *k != Tlv::CRC32C),
            proptest::collection::vec(any::<u8>(), 0..40),
        ),
        0..6,
    )
}

proptest! {
    #[test]
    fn v1_round_trip(addrs in prop_oneof![
        Just(Addresses::Unknown),
        (arb_v4(), arb_v4()).prop_map(|(src, dst)| Addresses::Tcp4 { src, dst }),
        (arb_v6(), arb_v6()).prop_map(|(src, dst)| Addresses::Tcp6 { src, dst }),
    ], tail in proptest::collection::vec(any::<u8>(), 0..20)) {
        let mut buf = BytesMut::new();
        encode_v1(&addrs, &mut buf);
        prop_assert!(buf.len() <= V1_MAX_LEN);
        buf.extend_from_slice(&tail);
        let h = parse(&mut buf).unwrap().unwrap();
        prop_assert_eq!(h.version, 1);
        prop_assert_eq!(h.addresses, addrs);
        prop_assert_eq!(&buf[..], &tail[..]);
    }

    #[test]
    fn v2_round_trip(
        local in any::<bool>(),
        addrs in arb_addresses(),
        tlvs in arb_tlvs(),
        crc in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..20),
    ) {
        let cmd = if local { Command::Local } else { Command::Proxy };
        let mut list: Vec<(u8, &[u8])> = tlvs.iter().map(|(k, v)| (*k, &v[..])).collect();
        if crc {
            list.push((Tlv::CRC32C, &[0; 4]));
        }
        let mut buf = BytesMut::new();
        encode_v2(cmd, &addrs, &list, &mut buf).unwrap();
        let wire_len = buf.len();
        buf.extend_from_slice(&tail);
        let h = parse(&mut buf).unwrap().unwrap();
        prop_assert_eq!(&buf[..], &tail[..]);
        prop_assert_eq!(h.version, 2);
        prop_assert_eq!(h.command, cmd);
        prop_assert_eq!(&h.addresses, if local { &Addresses::Unknown } else { &addrs });
        let got: Vec<(u8, &[u8])> = h.tlvs().map(|t| t.map(|t| (t.kind, t.value)).unwrap()).collect();
        let want: Vec<(u8, &[u8])> = list.iter().map(|&(k, v)| (k, v)).filter(|(k, _)| *k != Tlv::CRC32C).collect();
        let got_plain: Vec<(u8, &[u8])> = got.iter().copied().filter(|(k, _)| *k != Tlv::CRC32C).collect();
        prop_assert_eq!(got_plain, want);
        prop_assert_eq!(wire_len, 16 + h.tlvs.len() + match (&addrs, local) {
            (Addresses::Unknown, _) => 0,
            (Addresses::Tcp4 { .. } | Addresses::Udp4 { .. }, _) => 12,
            (Addresses::Tcp6 { .. } | Addresses::Udp6 { .. }, _) => 36,
            _ => 216,
        });
    }

    #[test]
    fn v2_split_points(addrs in arb_addresses(), tlvs in arb_tlvs()) {
        let list: Vec<(u8, &[u8])> = tlvs.iter().map(|(k, v)| (*k, &v[..])).collect();
        let mut wire = BytesMut::new();
        encode_v2(Command::Proxy, &addrs, &list, &mut wire).unwrap();
        let h = check_split_points(&wire);
        prop_assert_eq!(h.addresses, addrs);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = detect(&bytes);
        let mut buf = BytesMut::from(&bytes[..]);
        if let Ok(Some(h)) = parse(&mut buf) {
            for t in h.tlvs() { let _ = t; }
            let _ = h.ssl();
        } else {
            prop_assert_eq!(&buf[..], &bytes[..]);
        }
    }

    #[test]
    fn signature_prefixed_garbage_never_panics(
        v2 in any::<bool>(),
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut wire = if v2 { V2_SIGNATURE.to_vec() } else { V1_PREFIX.to_vec() };
        wire.extend_from_slice(&bytes);
        let mut buf = BytesMut::from(&wire[..]);
        match parse(&mut buf) {
            Ok(Some(h)) => {
                prop_assert!(buf.len() < wire.len());
                for t in h.tlvs() { prop_assert!(t.is_ok()); }
                if let Some(ssl) = h.ssl() { for t in ssl.unwrap().tlvs() { prop_assert!(t.is_ok()); } }
            }
            Ok(None) | Err(_) => prop_assert_eq!(&buf[..], &wire[..]),
        }
    }
}
