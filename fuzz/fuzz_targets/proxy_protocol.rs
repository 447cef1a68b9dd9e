//! PROXY protocol v1/v2 parser: never panics, consumes exactly the header, and
//! parse -> encode -> parse is a fixed point.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use protocols::proxy_protocol::{self, Command, Detect, Header, Tlv};

fuzz_target!(|data: &[u8]| {
    let detected = proxy_protocol::detect(data);
    let mut buf = BytesMut::from(data);
    match proxy_protocol::parse(&mut buf) {
        Ok(Some(header)) => {
            assert!(matches!(detected, Detect::V1 | Detect::V2));
            let used = data.len() - buf.len();
            assert!(used > 0);
            assert_eq!(&buf[..], &data[used..], "only the header is consumed");
            // A proper prefix of a header is never an error and never a header.
            let mut short = BytesMut::from(&data[..used - 1]);
            assert_eq!(proxy_protocol::parse(&mut short), Ok(None));
            round_trip(&header);
        }
        Ok(None) => assert_eq!(&buf[..], data),
        Err(_) => {
            assert_eq!(&buf[..], data, "an error consumes nothing");
            assert_ne!(detected, Detect::NeedMore);
        }
    }
});

fn encode(h: &Header) -> Option<BytesMut> {
    let mut wire = BytesMut::new();
    if h.version == 1 {
        proxy_protocol::encode_v1(&h.addresses, &mut wire);
    } else {
        let tlvs: Vec<(u8, &[u8])> = h
            .tlvs()
            .map(|t| t.map(|t| (t.kind, t.value)))
            .collect::<Result<_, _>>()
            .expect("parse validated the TLV area");
        // Two CRC32C TLVs can only both verify by a 2^-64 accident; the encoder refuses them.
        proxy_protocol::encode_v2(h.command, &h.addresses, &tlvs, &mut wire).ok()?;
    }
    Some(wire)
}

fn round_trip(h: &Header) {
    let Some(wire) = encode(h) else { return };
    let mut again = wire.clone();
    let h2 = proxy_protocol::parse(&mut again)
        .expect("an encoded header parses")
        .expect("an encoded header is complete");
    assert!(again.is_empty());
    assert_eq!(h2.version, h.version);
    assert_eq!(h2.command, h.command);
    assert_eq!(h2.addresses, h.addresses);
    if h.version == 2 {
        // Same TLVs, except that CRC32C values are recomputed over the new bytes.
        let plain = |h: &Header| -> Vec<(u8, Vec<u8>)> {
            h.tlvs()
                .map(Result::unwrap)
                .filter(|t| t.kind != Tlv::CRC32C)
                .map(|t| (t.kind, t.value.to_vec()))
                .collect()
        };
        assert_eq!(plain(&h2), plain(h));
        if h.command == Command::Proxy {
            assert_eq!(h2.tlvs.len(), h.tlvs.len());
        }
    }
    assert_eq!(
        encode(&h2).as_deref(),
        Some(&wire[..]),
        "encode is a fixed point"
    );
}
