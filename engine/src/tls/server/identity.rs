//! A client certificate's identity (mTLS): the names `client_allowed_names` is matched
//! against (subject CN, subjectAltName DNS and URI names) and the `x-forwarded-client-cert`
//! value ringway sends upstream in Envoy's format:
//! `By=<our URI SAN>;Hash=<sha256 hex of the client's DER>;Subject="<RFC 2253 subject>";URI=<uri>;DNS=<dns>...`.
//!
//! The subject is formatted as RFC 4514 / RFC 2253 (last RDN first, `+` between the values of
//! one RDN, special characters escaped), as Envoy (OpenSSL's `XN_FLAG_RFC2253`) does. Only the
//! certificate's own bytes are parsed here, after rustls verified the chain; a certificate we
//! cannot parse has no names (it matches no allowed name) and is forwarded with its hash only.

use rustls::pki_types::CertificateDer;

/// The names of a verified client certificate.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The subject, RFC 2253 formatted (`CN=client,O=Example`).
    pub(crate) subject: String,
    /// The subject's common name(s), in certificate order.
    pub(crate) common_names: Vec<String>,
    /// subjectAltName DNS names.
    pub(crate) dns: Vec<String>,
    /// subjectAltName URIs.
    pub(crate) uris: Vec<String>,
}

impl Identity {
    /// Reads the names of `leaf`; an unparsable certificate gives an empty identity.
    pub(crate) fn of(leaf: &CertificateDer<'_>) -> Self {
        let Ok(cert) = webpki::EndEntityCert::try_from(leaf) else {
            return Self::default();
        };
        let mut common_names = Vec::new();
        let subject = format_name(cert.subject(), &mut common_names).unwrap_or_default();
        Self {
            subject,
            common_names,
            dns: cert.valid_dns_names().map(str::to_owned).collect(),
            uris: cert.valid_uri_names().map(str::to_owned).collect(),
        }
    }

    /// Whether one of the names matches one of `allowed` (lowercase; exact, or `*.suffix`
    /// matching any name that ends with `.suffix`). DNS names and CNs compare without case;
    /// URIs compare exactly.
    pub(crate) fn matches(&self, allowed: &[String]) -> bool {
        let fold = |name: &str| {
            allowed
                .iter()
                .any(|a| name_matches(a, &name.to_ascii_lowercase()))
        };
        self.common_names.iter().any(|n| fold(n))
            || self.dns.iter().any(|n| fold(n))
            || self.uris.iter().any(|u| allowed.iter().any(|a| a == u))
    }
}

/// `allowed` (lowercase) against `name` (lowercase): equal, or `*.suffix` and `name` is
/// `<something>.suffix`.
fn name_matches(allowed: &str, name: &str) -> bool {
    match allowed.strip_prefix("*.") {
        Some(suffix) => name
            .strip_suffix(suffix)
            .and_then(|head| head.strip_suffix('.'))
            .is_some_and(|head| !head.is_empty()),
        None => allowed == name,
    }
}

/// The `x-forwarded-client-cert` value for the client certificate `leaf`; `by`: the URI SAN
/// of the certificate ringway presented, if it has one.
pub(crate) fn forwarded_client_cert(by: Option<&str>, leaf: &CertificateDer<'_>) -> Vec<u8> {
    let id = Identity::of(leaf);
    let mut out = String::with_capacity(160 + id.subject.len());
    if let Some(by) = by {
        out.push_str("By=");
        push_value(&mut out, by);
        out.push(';');
    }
    out.push_str("Hash=");
    for b in sha256(leaf.as_ref()) {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out.push_str(";Subject=\"");
    for c in id.subject.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    // Envoy forwards the first URI SAN and every DNS SAN.
    if let Some(uri) = id.uris.first() {
        out.push_str(";URI=");
        push_value(&mut out, uri);
    }
    for dns in &id.dns {
        out.push_str(";DNS=");
        push_value(&mut out, dns);
    }
    // Header values cannot carry control characters; certificates could.
    out.into_bytes()
        .into_iter()
        .map(|b| if b < 0x20 || b == 0x7f { b'?' } else { b })
        .collect()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `v`, quoted when it holds an XFCC separator (`,` `;` `=` or a quote).
fn push_value(out: &mut String, v: &str) {
    if v.contains([',', ';', '=', '"']) {
        out.push('"');
        for c in v.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push_str(v);
    }
}

/// SHA-256 of `data` with the `ring` provider's hash (no extra dependency).
fn sha256(data: &[u8]) -> Vec<u8> {
    use rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
    match TLS13_AES_128_GCM_SHA256.tls13() {
        Some(suite) => suite.common.hash_provider.hash(data).as_ref().to_vec(),
        None => Vec::new(),
    }
}

/// One DER element: tag, contents, the whole element (header and contents), and what
/// follows it.
type Element<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

/// Splits the first DER element off `input`. `None`: malformed.
fn der_element(input: &[u8]) -> Option<Element<'_>> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // high tag numbers do not occur in names
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    Some((tag, &rest[..len], &input[..header + len], &rest[len..]))
}

/// Formats a Name's contents (the RDN sequence, without the outer SEQUENCE) as RFC 2253;
/// collects the CN values into `cns`.
fn format_name(mut der: &[u8], cns: &mut Vec<String>) -> Option<String> {
    let mut rdns = Vec::new();
    while !der.is_empty() {
        let (tag, mut set, _, rest) = der_element(der)?;
        if tag != 0x31 {
            return None;
        }
        der = rest;
        let mut parts = Vec::new();
        while !set.is_empty() {
            let (tag, atv, _, rest) = der_element(set)?;
            if tag != 0x30 {
                return None;
            }
            set = rest;
            let (tag, oid, _, after) = der_element(atv)?;
            if tag != 0x06 {
                return None;
            }
            let (vtag, value, whole, _) = der_element(after)?;
            let text = string_value(vtag, value);
            if oid == OID_CN {
                if let Some(t) = &text {
                    cns.push(t.clone());
                }
            }
            let mut part = match short_name(oid) {
                Some(name) => name.to_owned(),
                None => dotted_oid(oid)?,
            };
            part.push('=');
            match (short_name(oid), text) {
                (Some(_), Some(t)) => escape_into(&mut part, &t),
                // RFC 2253 2.4: unknown types and non-string values as #hex of the BER.
                _ => {
                    part.push('#');
                    for b in whole {
                        part.push(char::from(HEX[usize::from(b >> 4)]));
                        part.push(char::from(HEX[usize::from(b & 0xf)]));
                    }
                }
            }
            parts.push(part);
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

const OID_CN: &[u8] = &[0x55, 0x04, 0x03];

/// RFC 4514's short names (and OpenSSL's `emailAddress`).
fn short_name(oid: &[u8]) -> Option<&'static str> {
    Some(match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x09] => "STREET",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID",
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress",
        _ => return None,
    })
}

/// An OID in dotted decimal (`2.5.4.3`).
fn dotted_oid(oid: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for &b in oid {
        acc = acc.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
    }
    if arcs.is_empty() {
        return None;
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// The text of a directory string value; `None` for other types.
fn string_value(tag: u8, value: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, T61String (taken as Latin-1), IA5String
        0x0c | 0x13 | 0x16 => std::str::from_utf8(value).ok().map(str::to_owned),
        0x14 => Some(value.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16BE
        0x1e if value.len().is_multiple_of(2) => {
            let units = value
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        _ => None,
    }
}

/// Appends `value` escaped as RFC 2253 section 2.4 says.
fn escape_into(out: &mut String, value: &str) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    use super::*;

    fn cert(params: CertificateParams) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn subject_and_sans_are_read() {
        let mut p = CertificateParams::new(vec!["a.example".into()]).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CountryName, "US");
        p.distinguished_name
            .push(DnType::OrganizationName, "Acme, Inc.");
        p.distinguished_name.push(DnType::CommonName, "client one");
        p.subject_alt_names.push(SanType::URI(
            "spiffe://example.org/ns/a".try_into().unwrap(),
        ));
        let id = Identity::of(&cert(p));
        assert_eq!(id.subject, "CN=client one,O=Acme\\, Inc.,C=US");
        assert_eq!(id.common_names, ["client one"]);
        assert_eq!(id.dns, ["a.example"]);
        assert_eq!(id.uris, ["spiffe://example.org/ns/a"]);
        assert!(id.matches(&["client one".into()]));
        assert!(id.matches(&["*.example".into()]));
        assert!(id.matches(&["spiffe://example.org/ns/a".into()]));
        assert!(!id.matches(&["*.a.example".into(), "b.example".into()]));
        assert!(!id.matches(&["spiffe://example.org/ns/b".into()]));
    }

    #[test]
    fn wildcards_need_a_label_before_the_suffix() {
        assert!(name_matches("*.example", "a.example"));
        assert!(name_matches("*.example", "b.a.example"));
        assert!(!name_matches("*.example", "example"));
        assert!(!name_matches("*.example", ".example"));
        assert!(!name_matches("*.example", "aexample"));
        assert!(name_matches("a.example", "a.example"));
    }

    #[test]
    fn forwarded_value_has_envoys_fields() {
        let mut p = CertificateParams::new(vec!["a.example".into(), "b.example".into()]).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, "c\"1");
        p.subject_alt_names
            .push(SanType::URI("spiffe://example.org/a".try_into().unwrap()));
        let leaf = cert(p);
        let v = String::from_utf8(forwarded_client_cert(Some("spiffe://proxy"), &leaf)).unwrap();
        let hash: String = sha256(leaf.as_ref())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hash.len(), 64);
        assert_eq!(
            v,
            format!(
                "By=spiffe://proxy;Hash={hash};Subject=\"CN=c\\\\\\\"1\";URI=spiffe://example.org/a;DNS=a.example;DNS=b.example"
            )
        );
    }

    #[test]
    fn malformed_names_give_nothing() {
        let mut cns = Vec::new();
        assert_eq!(format_name(&[0x31, 0x05, 0x30], &mut cns), None);
        assert_eq!(format_name(&[], &mut cns).as_deref(), Some(""));
        assert_eq!(dotted_oid(&[0x55, 0x04, 0x03]).as_deref(), Some("2.5.4.3"));
        assert_eq!(
            Identity::of(&CertificateDer::from(vec![1, 2, 3])),
            Identity::default()
        );
    }
}
