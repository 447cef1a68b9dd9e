//! ClientHello peeking against a captured real ClientHello and hand-built ones: fields,
//! every error, every split point, re-fragmentation across records, arbitrary input.

use proptest::prelude::*;

use super::*;

/// A ClientHello from OpenSSL 3.0.19, captured on this machine with
/// `openssl s_client -connect 127.0.0.1:44331 -servername example.com -alpn h2,http/1.1`
/// against a Python socket listener that wrote the received bytes to a file (335 bytes, one
/// record; nothing after it).
const OPENSSL_HELLO: &[&str] = &[
    "160301014a010001460303ab6f0cf7b3ebaf08bb9451cee1285ea0d00efa3d07fac81022ffe08c3d5a412120926407be",
    "4b31f9373a0b90de32be09ec31986e0b70c0e1a99bd2907a1a187457003e130213031301c02cc030009fcca9cca8ccaa",
    "c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010000bf",
    "00000010000e00000b6578616d706c652e636f6d000b000403000102000a00160014001d0017001e0019001801000101",
    "010201030104002300000010000e000c02683208687474702f312e310016000000170000000d002a0028040305030603",
    "080708080809080a080b080408050806040105010601030303010302040205020602002b000908030403030302030100",
    "2d00020101003300260024001d00204c9688c9237d8ece6f1843033a8bfe5df31597f649760e88e1750c1eec57a13a",
];

fn openssl_hello() -> Vec<u8> {
    let hex: String = OPENSSL_HELLO.concat();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Splits a handshake message into records whose fragments have the given sizes (the last
/// one takes the rest).
fn records(msg: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = msg;
    for (i, &n) in sizes
        .iter()
        .chain(std::iter::repeat(&usize::MAX))
        .enumerate()
    {
        if rest.is_empty() && i > 0 {
            break;
        }
        let n = n.min(rest.len()).min(MAX_RECORD_LEN);
        let (frag, tail) = rest.split_at(n);
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&(frag.len() as u16).to_be_bytes());
        out.extend_from_slice(frag);
        rest = tail;
    }
    out
}

fn u16v(v: &[u8]) -> Vec<u8> {
    let mut out = (v.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(v);
    out
}

fn sni(names: &[(u8, &[u8])]) -> (u16, Vec<u8>) {
    let mut list = Vec::new();
    for &(t, n) in names {
        list.push(t);
        list.extend_from_slice(&u16v(n));
    }
    (EXT_SERVER_NAME, u16v(&list))
}

fn alpn(names: &[&[u8]]) -> (u16, Vec<u8>) {
    let mut list = Vec::new();
    for n in names {
        list.push(n.len() as u8);
        list.extend_from_slice(n);
    }
    (EXT_ALPN, u16v(&list))
}

fn versions(vs: &[u16]) -> (u16, Vec<u8>) {
    let mut v = vec![(vs.len() * 2) as u8];
    for x in vs {
        v.extend_from_slice(&x.to_be_bytes());
    }
    (EXT_SUPPORTED_VERSIONS, v)
}

/// A hand-built ClientHello.
#[derive(Clone)]
struct Hello {
    version: u16,
    session_id: Vec<u8>,
    suites: Vec<u8>,
    compression: Vec<u8>,
    exts: Option<Vec<(u16, Vec<u8>)>>,
}

impl Default for Hello {
    fn default() -> Self {
        Self {
            version: TLS12,
            session_id: vec![7; 32],
            suites: vec![0x13, 0x01, 0x13, 0x02],
            compression: vec![0],
            exts: Some(vec![
                sni(&[(0, b"Api.Example.com")]),
                (0x000a, vec![0, 2, 0, 0x1d]),
                alpn(&[b"h2", b"http/1.1"]),
                versions(&[TLS13, TLS12]),
            ]),
        }
    }
}

impl Hello {
    fn body(&self) -> Vec<u8> {
        let mut b = self.version.to_be_bytes().to_vec();
        b.extend_from_slice(&[0x42; 32]);
        b.push(self.session_id.len() as u8);
        b.extend_from_slice(&self.session_id);
        b.extend_from_slice(&u16v(&self.suites));
        b.push(self.compression.len() as u8);
        b.extend_from_slice(&self.compression);
        if let Some(exts) = &self.exts {
            let mut e = Vec::new();
            for (t, d) in exts {
                e.extend_from_slice(&t.to_be_bytes());
                e.extend_from_slice(&u16v(d));
            }
            b.extend_from_slice(&u16v(&e));
        }
        b
    }

    fn message(&self) -> Vec<u8> {
        message(&self.body())
    }

    fn wire(&self) -> Vec<u8> {
        records(&self.message(), &[])
    }

    fn with_ext(ext: (u16, Vec<u8>)) -> Self {
        Self {
            exts: Some(vec![ext]),
            ..Self::default()
        }
    }
}

fn message(body: &[u8]) -> Vec<u8> {
    let mut m = vec![CLIENT_HELLO];
    m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    m.extend_from_slice(body);
    m
}

#[test]
fn openssl_capture() {
    let wire = openssl_hello();
    assert_eq!(wire.len(), 335);
    let h = peek_client_hello(&wire).unwrap().unwrap();
    assert_eq!(h.legacy_version, TLS12);
    assert_eq!(h.server_name, Some(&b"example.com"[..]));
    assert_eq!(h.server_name_str(), Some("example.com"));
    let protos: Vec<&[u8]> = h.alpn.unwrap().into_iter().collect();
    assert_eq!(protos, [&b"h2"[..], b"http/1.1"]);
    assert!(h.offers_alpn(b"h2") && !h.offers_alpn(b"h3"));
    assert!(h.offers_tls13() && h.offers_version(0x0301) && !h.offers_version(0x0300));
    assert_eq!(h.session_id.len(), 32);
    assert_eq!(h.cipher_suites.len(), 62);
    assert!(h.offers_cipher_suite(0x1301) && !h.offers_cipher_suite(0x1305));
    // Owned form agrees.
    let owned = peek_client_hello_owned(&wire).unwrap().unwrap();
    assert_eq!(owned.as_client_hello(), h);
    assert_eq!(owned, OwnedClientHello::from(h));
}

#[test]
fn openssl_capture_every_prefix_needs_more() {
    let wire = openssl_hello();
    for n in 0..wire.len() {
        assert_eq!(peek_client_hello(&wire[..n]), Ok(None), "prefix {n}");
        assert_eq!(peek_client_hello_owned(&wire[..n]), Ok(None), "prefix {n}");
    }
}

#[test]
fn openssl_capture_refragmented_at_every_point() {
    let wire = openssl_hello();
    let msg = &wire[5..];
    let want = peek_client_hello(&wire).unwrap().unwrap();
    for split in 1..msg.len() {
        let two = records(msg, &[split]);
        assert_eq!(
            peek_client_hello(&two),
            Err(Error::Fragmented),
            "split {split}"
        );
        let owned = peek_client_hello_owned(&two).unwrap().unwrap();
        assert_eq!(owned.as_client_hello(), want, "split {split}");
        for n in 0..two.len() {
            assert_eq!(
                peek_client_hello_owned(&two[..n]),
                Ok(None),
                "split {split} prefix {n}"
            );
        }
    }
}

#[test]
fn built_hello_fields_and_trailing_bytes() {
    let mut wire = Hello::default().wire();
    // Bytes after the ClientHello (0-RTT data, garbage) are not looked at.
    wire.extend_from_slice(&[23, 3, 3, 0, 0, 0xff]);
    let h = peek_client_hello(&wire).unwrap().unwrap();
    assert_eq!(h.server_name, Some(&b"Api.Example.com"[..]));
    assert!(h.offers_alpn(b"http/1.1") && h.offers_tls13());
    assert_eq!(h.session_id, &[7; 32]);
    // A record that goes on past the hello.
    let mut msg = Hello::default().message();
    msg.extend_from_slice(&[0x0f, 0, 0, 0]);
    assert!(peek_client_hello(&records(&msg, &[])).unwrap().is_some());
}

#[test]
fn tls12_hello_without_extensions() {
    let hello = Hello {
        exts: None,
        session_id: vec![],
        ..Hello::default()
    };
    let wire = hello.wire();
    let h = peek_client_hello(&wire).unwrap().unwrap();
    assert_eq!(
        (h.server_name, h.alpn, h.supported_versions),
        (None, None, None)
    );
    assert!(!h.offers_tls13() && !h.offers_alpn(b"h2"));
    // An empty extensions block is fine too.
    let hello = Hello {
        exts: Some(vec![]),
        ..Hello::default()
    };
    assert!(peek_client_hello(&hello.wire()).unwrap().is_some());
}

#[test]
fn sni_with_other_name_types_and_bounds() {
    let hello = Hello::with_ext(sni(&[(1, b"\xff\xff"), (0, b"a.b")]));
    assert_eq!(
        peek_client_hello(&hello.wire())
            .unwrap()
            .unwrap()
            .server_name,
        Some(&b"a.b"[..])
    );
    let hello = Hello::with_ext(sni(&[(1, b"x")]));
    assert_eq!(
        peek_client_hello(&hello.wire())
            .unwrap()
            .unwrap()
            .server_name,
        None
    );
    let label = [b'a'; 63];
    let mut name = Vec::new();
    for _ in 0..3 {
        name.extend_from_slice(&label);
        name.push(b'.');
    }
    name.extend_from_slice(&[b'b'; 61]);
    assert_eq!(name.len(), 253);
    let hello = Hello::with_ext(sni(&[(0, &name)]));
    assert!(peek_client_hello(&hello.wire()).unwrap().is_some());
    name.push(b'c');
    let hello = Hello::with_ext(sni(&[(0, &name)]));
    assert_eq!(peek_client_hello(&hello.wire()), Err(Error::BadServerName));
}

#[test]
fn dns_names() {
    for ok in [
        &b"a"[..],
        b"example.com",
        b"xn--bcher-kva.example",
        b"a-b.c9",
        b"1.2.3.a",
        b"123.com",
    ] {
        assert!(is_dns_name(ok), "{}", ok.escape_ascii());
    }
    let long_label = [b'a'; 64];
    for bad in [
        &b""[..],
        b"example.com.",
        b".example.com",
        b"a..b",
        b"under_score.com",
        b"sp ace.com",
        b"1.2.3.4",
        b"::1",
        b"[::1]",
        b"caf\xc3\xa9.com",
        b"a\0b",
        &long_label,
    ] {
        assert!(!is_dns_name(bad), "{}", bad.escape_ascii());
    }
}

#[test]
fn errors() {
    let good = Hello::default();
    let body = good.body();
    let record_with = |msg: &[u8]| records(msg, &[]);
    let mut cases: Vec<(Vec<u8>, Error)> = vec![
        (b"GET / HTTP/1.1\r\n".to_vec(), Error::NotHandshake),
        (vec![23], Error::NotHandshake),
        (vec![22, 2], Error::BadRecordVersion),
        (vec![22, 3, 0], Error::BadRecordVersion),
        (vec![22, 3, 5], Error::BadRecordVersion),
        (vec![22, 3, 1, 0, 0], Error::BadRecordLength),
        (vec![22, 3, 1, 0x40, 0x01], Error::BadRecordLength),
        (vec![22, 3, 1, 0, 4, 2], Error::NotClientHello),
        (vec![22, 3, 1, 0, 4, 1, 0, 0x40, 0x01], Error::TooLarge),
        (
            record_with(&message(&body[..body.len() - 1])),
            Error::BadLength,
        ),
        (record_with(&message(&body[..30])), Error::BadLength),
        (record_with(&message(&[])), Error::BadLength),
    ];
    // Trailing bytes after the extensions block, inside the ClientHello body.
    let mut trailing = body;
    trailing.push(0);
    cases.push((record_with(&message(&trailing)), Error::BadLength));
    let field_cases: Vec<(Hello, Error)> = vec![
        (
            Hello {
                session_id: vec![0; 33],
                ..Hello::default()
            },
            Error::BadSessionId,
        ),
        (
            Hello {
                suites: vec![],
                ..Hello::default()
            },
            Error::BadCipherSuites,
        ),
        (
            Hello {
                suites: vec![0x13, 0x01, 0x13],
                ..Hello::default()
            },
            Error::BadCipherSuites,
        ),
        (
            Hello {
                compression: vec![],
                ..Hello::default()
            },
            Error::BadCompression,
        ),
        (
            Hello {
                exts: Some(vec![
                    sni(&[(0, b"a.com")]),
                    (5, vec![]),
                    sni(&[(0, b"b.com")]),
                ]),
                ..Hello::default()
            },
            Error::DuplicateExtension,
        ),
        (
            Hello {
                exts: Some(vec![alpn(&[b"h2"]), alpn(&[b"h2"])]),
                ..Hello::default()
            },
            Error::DuplicateExtension,
        ),
        (
            Hello {
                exts: Some(vec![versions(&[TLS13]), versions(&[TLS12])]),
                ..Hello::default()
            },
            Error::DuplicateExtension,
        ),
        (
            Hello::with_ext(sni(&[(0, b"a.com"), (0, b"b.com")])),
            Error::BadServerName,
        ),
        (
            Hello::with_ext(sni(&[(0, b"1.2.3.4")])),
            Error::BadServerName,
        ),
        (Hello::with_ext(sni(&[(0, b"")])), Error::BadServerName),
        (Hello::with_ext(sni(&[])), Error::BadServerName),
        (
            Hello::with_ext((EXT_SERVER_NAME, vec![])),
            Error::BadServerName,
        ),
        (
            Hello::with_ext((EXT_SERVER_NAME, vec![0, 5, 0, 0, 1, b'a'])),
            Error::BadServerName,
        ),
        (
            Hello::with_ext((EXT_SERVER_NAME, vec![0, 4, 0, 0, 1, b'a', 0])),
            Error::BadServerName,
        ),
        (Hello::with_ext(alpn(&[])), Error::BadAlpn),
        (Hello::with_ext(alpn(&[b"h2", b""])), Error::BadAlpn),
        (
            Hello::with_ext((EXT_ALPN, vec![0, 3, 2, b'h', b'2', 0])),
            Error::BadAlpn,
        ),
        (
            Hello::with_ext((EXT_ALPN, vec![0, 3, 3, b'h', b'2'])),
            Error::BadAlpn,
        ),
        (Hello::with_ext(versions(&[])), Error::BadSupportedVersions),
        (
            Hello::with_ext((EXT_SUPPORTED_VERSIONS, vec![3, 3, 4, 3])),
            Error::BadSupportedVersions,
        ),
        (
            Hello::with_ext((EXT_SUPPORTED_VERSIONS, vec![2, 3, 4, 0])),
            Error::BadSupportedVersions,
        ),
    ];
    for (h, e) in field_cases {
        cases.push((h.wire(), e));
    }
    // Extension framing broken inside a well-sized extensions block.
    for raw in [&[0u8][..], &[0, 5, 0], &[0, 5, 0, 2, 0], &[0, 5, 0, 0, 0]] {
        let mut body = Hello {
            exts: None,
            ..Hello::default()
        }
        .body();
        body.extend_from_slice(&u16v(raw));
        cases.push((record_with(&message(&body)), Error::BadExtensions));
    }
    // Interleaving: the second record of a split hello is not a handshake record.
    let mut split = records(&good.message(), &[10]);
    split[5 + 10] = 23;
    cases.push((split, Error::NotHandshake));
    for (wire, err) in cases {
        assert_eq!(
            peek_client_hello(&wire),
            Err(err),
            "{:02x?}",
            &wire[..wire.len().min(64)]
        );
        assert_eq!(peek_client_hello_owned(&wire), Err(err));
    }
}

#[test]
fn fragmented_malformed_hello_reports_the_real_error() {
    let hello = Hello {
        session_id: vec![0; 33],
        ..Hello::default()
    };
    let wire = records(&hello.message(), &[20]);
    assert_eq!(peek_client_hello(&wire), Err(Error::BadSessionId));
}

#[test]
fn record_limits() {
    let msg = Hello::default().message();
    assert!(msg.len() > MAX_RECORDS);
    let ones = vec![1; MAX_RECORDS - 1];
    let ok = records(&msg, &ones);
    assert!(peek_client_hello_owned(&ok).unwrap().is_some());
    let ones = vec![1; MAX_RECORDS];
    let too_many = records(&msg, &ones);
    assert_eq!(
        peek_client_hello_owned(&too_many),
        Err(Error::TooManyRecords)
    );
    // The handshake header itself split across records.
    let owned = peek_client_hello_owned(&records(&msg, &[1, 2, 1]))
        .unwrap()
        .unwrap();
    assert_eq!(owned.server_name.as_deref(), Some(&b"Api.Example.com"[..]));

    // The largest hello accepted: a 16 KiB body, in two records.
    let pad = MAX_HELLO_LEN - Hello::default().body().len() - 4;
    let mut big = Hello::default();
    big.exts.as_mut().unwrap().push((21, vec![0; pad]));
    let msg = big.message();
    assert_eq!(msg.len(), 4 + MAX_HELLO_LEN);
    let wire = records(&msg, &[]);
    assert!(wire.len() <= MAX_PEEK_LEN);
    assert!(peek_client_hello_owned(&wire).unwrap().is_some());
    big.exts.as_mut().unwrap().push((22, vec![]));
    assert_eq!(peek_client_hello_owned(&big.wire()), Err(Error::TooLarge));
}

#[test]
fn parse_rejects_mislabelled_messages() {
    assert_eq!(ClientHello::parse(&[]), Err(Error::BadLength));
    assert_eq!(
        ClientHello::parse(&[2, 0, 0, 0]),
        Err(Error::NotClientHello)
    );
    let mut msg = Hello::default().message();
    msg.push(0);
    assert_eq!(ClientHello::parse(&msg), Err(Error::BadLength));
}

#[test]
fn error_alerts_and_display() {
    assert_eq!(Error::NotHandshake.alert(), 10);
    assert_eq!(Error::BadRecordLength.alert(), 22);
    assert_eq!(Error::BadServerName.alert(), 47);
    assert_eq!(Error::BadAlpn.alert(), 50);
    assert_eq!(Error::BadRecordVersion.alert(), 70);
    assert!(Error::Fragmented.to_string().contains("several records"));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = peek_client_hello(&bytes);
        let _ = peek_client_hello_owned(&bytes);
    }

    #[test]
    fn record_shaped_garbage_never_panics(
        body in proptest::collection::vec(any::<u8>(), 0..600),
        splits in proptest::collection::vec(1usize..64, 0..8),
    ) {
        // A well-framed handshake message of garbage, split at random: exercises the body
        // parser rather than the record checks.
        let wire = records(&message(&body), &splits);
        let borrowed = peek_client_hello(&wire);
        let owned = peek_client_hello_owned(&wire);
        match (borrowed, owned) {
            (Ok(Some(b)), Ok(Some(o))) => prop_assert_eq!(o.as_client_hello(), b),
            (Err(Error::Fragmented), Ok(Some(_))) => {}
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (b, o) => prop_assert!(false, "borrowed {:?} owned {:?}", b, o),
        }
    }

    #[test]
    fn any_fragmentation_gives_the_same_hello(
        splits in proptest::collection::vec(1usize..40, 0..(MAX_RECORDS - 1)),
        name in "[a-z0-9]{1,20}(\\.[a-z0-9-]{1,20}){0,3}\\.[a-z]{2,6}",
        protos in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..20), 0..4),
    ) {
        let mut exts = vec![sni(&[(0, name.as_bytes())])];
        let names: Vec<&[u8]> = protos.iter().map(Vec::as_slice).collect();
        if !names.is_empty() {
            exts.push(alpn(&names));
        }
        let hello = Hello { exts: Some(exts), ..Hello::default() };
        let wire = records(&hello.message(), &splits);
        let h = peek_client_hello_owned(&wire).unwrap().unwrap();
        prop_assert_eq!(h.server_name.as_deref(), Some(name.as_bytes()));
        let got: Vec<&[u8]> = h.as_client_hello().alpn.map(|a| a.iter().collect()).unwrap_or_default();
        prop_assert_eq!(got, names);
    }
}
