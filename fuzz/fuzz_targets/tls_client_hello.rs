//! TLS ClientHello peeker: never panics; the borrowed and owned entry points agree; a complete
//! hello stays complete with more bytes after it.
//!
//! Input starting with 0x16 is a raw first flight. Anything else is `[split, body...]`: `body`
//! is wrapped as a ClientHello message in records of `split` bytes each (0: one record), so
//! the fuzzer reaches the extension parsers without having to learn the framing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocols::tls::{self, ClientHello, Error};

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((0x16, _)) => check(data),
        Some((&split, body)) if body.len() < 0x1_0000 => check(&wrap(body, usize::from(split))),
        _ => {}
    }
});

fn wrap(body: &[u8], split: usize) -> Vec<u8> {
    let mut msg = vec![1];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend_from_slice(body);
    let chunk = if split == 0 {
        tls::MAX_RECORD_LEN
    } else {
        split
    };
    let mut out = Vec::new();
    for frag in msg.chunks(chunk) {
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&(frag.len() as u16).to_be_bytes());
        out.extend_from_slice(frag);
    }
    out
}

fn check(wire: &[u8]) {
    let borrowed = tls::peek_client_hello(wire);
    let owned = tls::peek_client_hello_owned(wire);
    match (&borrowed, &owned) {
        (Ok(Some(b)), Ok(Some(o))) => {
            assert_eq!(&o.as_client_hello(), b);
            inspect(b);
        }
        (Err(Error::Fragmented), Ok(Some(o))) => inspect(&o.as_client_hello()),
        (Ok(None), Ok(None)) => {}
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("borrowed {borrowed:?} and owned {owned:?} disagree"),
    }
    if let Ok(Some(_)) = owned {
        let mut longer = wire.to_vec();
        longer.extend_from_slice(&[0x17, 3, 3, 0, 1, 0]);
        assert!(matches!(tls::peek_client_hello_owned(&longer), Ok(Some(_))));
    }
}

fn inspect(h: &ClientHello<'_>) {
    if let Some(name) = h.server_name {
        assert!(!name.is_empty() && name.len() <= 253);
        assert!(h.server_name_str().is_some());
    }
    if let Some(alpn) = h.alpn {
        let total: usize = alpn
            .iter()
            .map(|p| {
                assert!(!p.is_empty());
                p.len() + 1
            })
            .sum();
        assert_eq!(total, alpn.as_bytes().len(), "the list is exactly covered");
    }
    let _ = h.offers_tls13();
    assert!(h.session_id.len() <= 32);
    assert!(!h.cipher_suites.is_empty() && h.cipher_suites.len().is_multiple_of(2));
}
