//! HTTP/2 request head: `http2::request_head` never panics over any field list, and a head it
//! accepts reads back what it was given: the method and target, every regular field except
//! `host` (the authority stands for it) and the cookie crumbs (joined into one field), within
//! the limits it was built under.
//! Input: `[flags, (name selector, name length, name, value length, value)...]`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocols::http1::Limits;
use protocols::http2::{Fields, request_head};

/// Names most heads carry, so short inputs reach past the pseudo-header checks.
const NAMES: [&[u8]; 8] = [
    b":method",
    b":path",
    b":authority",
    b":scheme",
    b"host",
    b"cookie",
    b"content-length",
    b"expect",
];

fuzz_target!(|input: &[u8]| {
    let [flags, rest @ ..] = input else {
        return;
    };
    let mut rest: &[u8] = rest;
    let mut fields = Fields::new();
    while let [sel, len, tail @ ..] = rest {
        let (name, tail): (&[u8], &[u8]) = match NAMES.get(usize::from(*sel)) {
            Some(name) => (name, tail),
            None => {
                let n = usize::from(*len).min(tail.len());
                (&tail[..n], &tail[n..])
            }
        };
        let [vlen, tail @ ..] = tail else {
            break;
        };
        let n = usize::from(*vlen).min(tail.len());
        fields.push(name, &tail[..n]);
        rest = &tail[n..];
    }
    let limits = if flags & 2 == 0 {
        Limits::default()
    } else {
        Limits {
            max_request_line: 64,
            max_head: 256,
            max_headers: 4,
        }
    };
    let head = match request_head(fields.clone(), flags & 1 == 1, &limits) {
        Ok(head) => head,
        Err((_, back)) => {
            // A refusal gives the fields back as they were.
            assert_eq!(back, fields);
            assert_eq!(back.byte_len(), fields.byte_len());
            return;
        }
    };
    let pseudo = |name: &[u8]| fields.value_of(name);
    assert_eq!(Some(head.method()), pseudo(b":method"));
    let target = if head.is_connect() {
        pseudo(b":authority")
    } else {
        pseudo(b":path")
    };
    assert_eq!(Some(head.target()), target);
    assert!(head.header_count() <= limits.max_headers);
    let kept = fields
        .iter()
        .filter(|(n, _)| !n.starts_with(b":") && *n != b"host" && *n != b"cookie");
    for (name, value) in kept {
        assert!(
            head.headers().any(|(n, v)| n == name && v == value),
            "field lost"
        );
    }
    let crumbs = fields.iter().filter(|(n, _)| *n == b"cookie").count();
    assert_eq!(
        head.headers().filter(|(n, _)| *n == b"cookie").count(),
        usize::from(crumbs > 0)
    );
});
