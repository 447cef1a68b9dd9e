//! HTTP/2 message checks on decoded field sections (RFC 9113 sections 8.1, 8.2, 8.3).
//!
//! Owns the rules that make a request, response or trailer section malformed. Does not decode
//! HPACK and does not act on the result: a malformed message is a stream error of type
//! PROTOCOL_ERROR (section 8.1.1), which the connection sends.

use crate::http1::headers::{is_field_value, tchar_rule};
use crate::http2::Fields;

/// Why a field section is malformed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Malformed {
    /// A field name with uppercase or other forbidden octets (section 8.2.1).
    BadName,
    /// A field value with NUL, CR, LF or leading/trailing whitespace (section 8.2.1).
    BadValue,
    /// A connection-specific field such as `connection` (section 8.2.2).
    ConnectionSpecific,
    /// `te` with a value other than `trailers` (section 8.2.2).
    BadTe,
    /// A pseudo-header after a regular field (section 8.3).
    PseudoAfterRegular,
    /// An unknown pseudo-header, or one of the wrong message kind (section 8.3).
    UnknownPseudo,
    /// A pseudo-header given twice (section 8.3).
    DuplicatePseudo,
    /// A required pseudo-header missing or empty (sections 8.3.1, 8.3.2, 8.5).
    MissingPseudo,
    /// A pseudo-header in a trailer section (section 8.1).
    PseudoInTrailers,
    /// `content-length` that is not one decimal number (section 8.1.1).
    BadContentLength,
    /// `:status` that is not three digits (section 8.3.2).
    BadStatus,
    /// DATA length does not match `content-length` (section 8.1.1).
    ContentLengthMismatch,
    /// Trailers without END_STREAM, or DATA before HEADERS (section 8.1).
    BadFraming,
}

/// What the checks learned about a request or response head.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(super) struct HeadInfo {
    /// Value of `content-length`, if present.
    pub(super) content_length: Option<u64>,
    /// Request method was HEAD.
    pub(super) is_head: bool,
    /// Response `:status`, if a response.
    pub(super) status: Option<u16>,
}

/// Which kind of section is being checked.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Section {
    Request,
    Response,
    Trailers,
}

/// Byte class bits of [`CLASS`].
const H2_NAME: u8 = 1;
/// RFC 9110 5.6.2 `tchar`, what `request_head` requires of a name (as HTTP/1 does).
const TCHAR: u8 = 2;

/// Per byte: whether it may appear in an HTTP/2 field name ([`H2_NAME`]) and whether it is a
/// token character ([`TCHAR`]), so one pass over a name answers both.
///
/// Section 8.2.1: "A field name MUST NOT contain characters in the ranges 0x00-0x20, 0x41-0x5a,
/// or 0x7f-0xff (all ranges inclusive)." and "With the exception of pseudo-header fields
/// (Section 8.3), which have a name that starts with a single colon, field names MUST NOT
/// include a colon (ASCII COLON, 0x3a)." (pseudo-header names are checked apart).
#[allow(
    clippy::indexing_slicing,
    reason = "built at compile time; a u8 always indexes 256 entries"
)]
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0u8;
    loop {
        let h2 = b > 0x20 && !b.is_ascii_uppercase() && b < 0x7f && b != b':';
        let tchar = tchar_rule(b);
        t[b as usize] = if h2 { H2_NAME } else { 0 } | if tchar { TCHAR } else { 0 };
        if b == u8::MAX {
            break;
        }
        b += 1;
    }
    t
};

/// The classes every byte of `name` has: [`H2_NAME`] for a valid HTTP/2 name (when not
/// empty), [`TCHAR`] for a token. Looks at every byte, no early exit.
fn name_classes(name: &[u8]) -> u8 {
    (name.iter()).fold(H2_NAME | TCHAR, |acc, &b| {
        acc & CLASS.get(usize::from(b)).copied().unwrap_or(0)
    })
}

/// Section 8.2.1: "A field value MUST NOT contain the zero value (ASCII NUL, 0x00), line feed
/// (ASCII LF, 0x0a), or carriage return (ASCII CR, 0x0d) at any position." and "MUST NOT start
/// or end with an ASCII whitespace character (ASCII SP or HTAB, 0x20 or 0x09)."
///
/// `field_value`: whether `value` is an RFC 9110 field value (what `request_head` requires, as
/// HTTP/1 does). Such a value has no NUL, CR or LF, so the common case is one pass.
fn value_ok(value: &[u8], field_value: bool) -> bool {
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    (field_value || !value.iter().any(|&b| b == 0 || b == b'\n' || b == b'\r'))
        && !value.first().is_some_and(ws)
        && !value.last().is_some_and(ws)
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

/// Checks one field section. Returns what later checks need, and records in `fields` whether
/// every regular name is a token and every regular value an RFC 9110 field value (the HTTP/1
/// rules `request_head` applies), learned in the same pass.
pub(super) fn check(fields: &mut Fields, section: Section) -> Result<HeadInfo, Malformed> {
    let mut http1_valid = true;
    let mut info = HeadInfo::default();
    let mut regular_seen = false;
    let (mut method, mut scheme, mut path, mut authority, mut status) =
        (None, None, None, None, None);
    for (name, value) in fields.iter() {
        if let Some(pseudo) = name.strip_prefix(b":") {
            // Section 8.1: "Trailers MUST NOT include pseudo-header fields".
            if section == Section::Trailers {
                return Err(Malformed::PseudoInTrailers);
            }
            // Section 8.3: "All pseudo-header fields MUST appear in a field block before all
            // regular field lines. Any request or response that contains a pseudo-header field
            // that appears in a field block after a regular field line MUST be treated as
            // malformed."
            if regular_seen {
                return Err(Malformed::PseudoAfterRegular);
            }
            // Section 8.3: "Endpoints MUST treat a request or response that contains undefined
            // or invalid pseudo-header fields as malformed." and "The same pseudo-header field
            // name MUST NOT appear more than once in a field block."
            let slot = match (section, pseudo) {
                (Section::Request, b"method") => &mut method,
                (Section::Request, b"scheme") => &mut scheme,
                (Section::Request, b"path") => &mut path,
                (Section::Request, b"authority") => &mut authority,
                (Section::Response, b"status") => &mut status,
                _ => return Err(Malformed::UnknownPseudo),
            };
            if slot.replace(value).is_some() {
                return Err(Malformed::DuplicatePseudo);
            }
            if !value_ok(value, is_field_value(value)) {
                return Err(Malformed::BadValue);
            }
            continue;
        }
        regular_seen = true;
        let classes = name_classes(name);
        if name.is_empty() || classes & H2_NAME == 0 {
            return Err(Malformed::BadName);
        }
        let field_value = is_field_value(value);
        if !value_ok(value, field_value) {
            return Err(Malformed::BadValue);
        }
        http1_valid &= classes & TCHAR != 0 && field_value;
        match name {
            // Section 8.2.2: "An endpoint MUST NOT generate an HTTP/2 message containing
            // connection-specific header fields ... Any message containing connection-specific
            // header fields MUST be treated as malformed."
            b"connection" | b"proxy-connection" | b"keep-alive" | b"transfer-encoding"
            | b"upgrade" => return Err(Malformed::ConnectionSpecific),
            // Section 8.2.2: "The only exception to this is the TE header field, which MAY be
            // present in an HTTP/2 request; when it is, it MUST NOT contain any value other
            // than "trailers"."
            b"te" if section != Section::Request || value != b"trailers" => {
                return Err(Malformed::BadTe);
            }
            b"content-length" if section != Section::Trailers => {
                let n = parse_u64(value).ok_or(Malformed::BadContentLength)?;
                if info.content_length.is_some_and(|old| old != n) {
                    return Err(Malformed::BadContentLength);
                }
                info.content_length = Some(n);
            }
            _ => {}
        }
    }
    match section {
        Section::Request => {
            let method = method.ok_or(Malformed::MissingPseudo)?;
            info.is_head = method == b"HEAD";
            if method == b"CONNECT" {
                // Section 8.5: "The :scheme and :path pseudo-header fields MUST be omitted." and
                // ":authority ... MUST" be present.
                if scheme.is_some() || path.is_some() || authority.is_none_or(|a| a.is_empty()) {
                    return Err(Malformed::MissingPseudo);
                }
            } else {
                // Section 8.3.1: "All HTTP/2 requests MUST include exactly one valid value for
                // the :method, :scheme, and :path pseudo-header fields, unless they are CONNECT
                // requests" and ":path ... MUST NOT be empty" for http/https URIs.
                if scheme.is_none_or(|s| s.is_empty()) || path.is_none_or(|p| p.is_empty()) {
                    return Err(Malformed::MissingPseudo);
                }
            }
        }
        Section::Response => {
            // Section 8.3.2: "For HTTP/2 responses, a single :status pseudo-header field is
            // defined ... MUST be included in all responses; otherwise, the response is
            // malformed."
            let s = status.ok_or(Malformed::MissingPseudo)?;
            if s.len() != 3 {
                return Err(Malformed::BadStatus);
            }
            let code = parse_u64(s).ok_or(Malformed::BadStatus)?;
            info.status = u16::try_from(code).ok();
        }
        Section::Trailers => {}
    }
    fields.http1_valid = http1_valid;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(list: &[(&'static str, &'static str)]) -> Fields {
        list.iter().copied().collect()
    }

    const REQ: &[(&str, &str)] = &[(":method", "GET"), (":scheme", "https"), (":path", "/")];

    #[test]
    fn byte_classes_are_the_http2_name_rule_and_tchar() {
        for b in 0..=255u8 {
            let h2 = b > 0x20 && !b.is_ascii_uppercase() && b < 0x7f && b != b':';
            assert_eq!(CLASS[usize::from(b)] & H2_NAME != 0, h2, "{b:#x}");
            let tchar = crate::http1::headers::is_tchar(b);
            assert_eq!(CLASS[usize::from(b)] & TCHAR != 0, tchar, "{b:#x}");
        }
    }

    #[test]
    fn the_one_pass_learns_whether_names_are_tokens_and_values_field_values() {
        for (field, http1) in [
            (("x-a", "b c"), true),
            (("a(b", "v"), false),
            (("a", "v\x01"), false),
            (("a", "v\x7f"), false),
        ] {
            let mut l = REQ.to_vec();
            l.push(field);
            let mut fields = f(&l);
            assert!(check(&mut fields, Section::Request).is_ok(), "{field:?}");
            assert_eq!(fields.http1_valid, http1, "{field:?}");
            fields.push(b"x", b"y");
            assert!(!fields.http1_valid, "a push clears it");
        }
    }

    #[test]
    fn sec8_3_1_valid_request() {
        let mut l = REQ.to_vec();
        l.push(("content-length", "12"));
        l.push(("te", "trailers"));
        let info = check(&mut f(&l), Section::Request).unwrap();
        assert_eq!(info.content_length, Some(12));
    }

    #[test]
    fn sec8_2_1_uppercase_name() {
        let mut l = REQ.to_vec();
        l.push(("Host", "x"));
        assert_eq!(check(&mut f(&l), Section::Request), Err(Malformed::BadName));
    }

    #[test]
    fn sec8_2_1_name_with_colon_space_or_control() {
        for n in ["x:y", "x y", "x\ty", "x\u{7f}"] {
            let mut l = REQ.to_vec();
            l.push((n, "v"));
            assert_eq!(
                check(&mut f(&l), Section::Request),
                Err(Malformed::BadName),
                "{n:?}"
            );
        }
    }

    #[test]
    fn sec8_2_1_value_with_cr_or_edge_whitespace() {
        for v in ["a\rb", "a\nb", " a", "a\t", "a\0"] {
            let mut l = REQ.to_vec();
            l.push(("x", v));
            assert_eq!(
                check(&mut f(&l), Section::Request),
                Err(Malformed::BadValue),
                "{v:?}"
            );
        }
    }

    #[test]
    fn sec8_2_2_connection_specific_fields() {
        for n in [
            "connection",
            "keep-alive",
            "proxy-connection",
            "transfer-encoding",
            "upgrade",
        ] {
            let mut l = REQ.to_vec();
            l.push((n, "x"));
            assert_eq!(
                check(&mut f(&l), Section::Request),
                Err(Malformed::ConnectionSpecific)
            );
        }
    }

    #[test]
    fn sec8_2_2_te_other_than_trailers() {
        let mut l = REQ.to_vec();
        l.push(("te", "gzip"));
        assert_eq!(check(&mut f(&l), Section::Request), Err(Malformed::BadTe));
    }

    #[test]
    fn sec8_3_pseudo_after_regular() {
        let l = [
            (":method", "GET"),
            ("x", "y"),
            (":scheme", "https"),
            (":path", "/"),
        ];
        assert_eq!(
            check(&mut f(&l), Section::Request),
            Err(Malformed::PseudoAfterRegular)
        );
    }

    #[test]
    fn sec8_3_unknown_and_duplicate_pseudo() {
        let mut l = REQ.to_vec();
        l.insert(0, (":foo", "x"));
        assert_eq!(
            check(&mut f(&l), Section::Request),
            Err(Malformed::UnknownPseudo)
        );
        let mut l = REQ.to_vec();
        l.insert(0, (":path", "/a"));
        assert_eq!(
            check(&mut f(&l), Section::Request),
            Err(Malformed::DuplicatePseudo)
        );
        let l = [(":status", "200"), (":path", "/")];
        assert_eq!(
            check(&mut f(&l), Section::Response),
            Err(Malformed::UnknownPseudo)
        );
    }

    #[test]
    fn sec8_3_1_missing_pseudo() {
        let l = [(":method", "GET"), (":scheme", "https")];
        assert_eq!(
            check(&mut f(&l), Section::Request),
            Err(Malformed::MissingPseudo)
        );
        let l = [(":method", "GET"), (":scheme", "https"), (":path", "")];
        assert_eq!(
            check(&mut f(&l), Section::Request),
            Err(Malformed::MissingPseudo)
        );
    }

    #[test]
    fn sec8_5_connect_needs_only_authority() {
        let l = [(":method", "CONNECT"), (":authority", "a:443")];
        assert!(check(&mut f(&l), Section::Request).is_ok());
        let l = [
            (":method", "CONNECT"),
            (":authority", "a:443"),
            (":path", "/"),
        ];
        assert_eq!(
            check(&mut f(&l), Section::Request),
            Err(Malformed::MissingPseudo)
        );
    }

    #[test]
    fn sec8_3_2_response_status() {
        assert_eq!(
            check(&mut f(&[(":status", "204")]), Section::Response)
                .unwrap()
                .status,
            Some(204)
        );
        assert_eq!(
            check(&mut f(&[("x", "y")]), Section::Response),
            Err(Malformed::MissingPseudo)
        );
        assert_eq!(
            check(&mut f(&[(":status", "20")]), Section::Response),
            Err(Malformed::BadStatus)
        );
        assert_eq!(
            check(&mut f(&[(":status", "2x0")]), Section::Response),
            Err(Malformed::BadStatus)
        );
    }

    #[test]
    fn sec8_1_pseudo_in_trailers() {
        assert_eq!(
            check(&mut f(&[(":status", "200")]), Section::Trailers),
            Err(Malformed::PseudoInTrailers)
        );
        assert!(check(&mut f(&[("grpc-status", "0")]), Section::Trailers).is_ok());
    }

    #[test]
    fn sec8_1_1_bad_content_length() {
        let mut l = REQ.to_vec();
        l.push(("content-length", "1x"));
        assert_eq!(
            check(&mut f(&l), Section::Request),
            Err(Malformed::BadContentLength)
        );
        let mut l = REQ.to_vec();
        l.push(("content-length", "1"));
        l.push(("content-length", "2"));
        assert_eq!(
            check(&mut f(&l), Section::Request),
            Err(Malformed::BadContentLength)
        );
    }
}
