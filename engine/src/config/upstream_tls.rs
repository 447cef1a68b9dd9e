//! A cluster's `tls = { sni, ca, cert, key, alpn, verify }` -> [`ClientTls`]: defaults, checks,
//! file paths resolved against the config file's directory, then the files are read and the
//! rustls client configuration built by [`crate::tls`]. A file that cannot be read or parsed
//! is a config error at the field that names it.

use std::path::Path;

use super::UpstreamProtocol;
use super::error::FieldError;
use super::raw::RawClusterTls;
use crate::tls::{ALPN_H2, ALPN_HTTP11, ClientTls, ClientTlsSettings, check_server_name};

/// `verify`: upstream certificates are verified unless turned off.
pub const DEFAULT_VERIFY: bool = true;
/// Longest ALPN protocol id (RFC 7301 section 3.1: 1..=255 bytes).
const MAX_ALPN_ID: usize = 255;

/// Validates the `tls` table of the cluster at `cluster` (`clusters[0]`) and builds the client
/// side.
pub(super) fn client_tls(
    raw: &RawClusterTls,
    cluster: &str,
    protocol: UpstreamProtocol,
    dir: &Path,
) -> Result<ClientTls, FieldError> {
    let at = &format!("{cluster}.tls");
    let settings = settings(raw, at, protocol, dir)?;
    ClientTls::build(&settings).map_err(|e| FieldError::new(format!("{at}.{}", e.field), e.reason))
}

fn settings(
    raw: &RawClusterTls,
    at: &str,
    protocol: UpstreamProtocol,
    dir: &Path,
) -> Result<ClientTlsSettings, FieldError> {
    let path = |p: &Option<String>, field: &str| match p.as_deref() {
        None => Ok(None),
        Some("") => Err(FieldError::new(
            format!("{at}.{field}"),
            "must not be empty",
        )),
        Some(p) => Ok(Some(dir.join(p))),
    };
    let sni = match &raw.sni {
        None => None,
        Some(name) => {
            let name =
                check_server_name(name).map_err(|why| FieldError::new(format!("{at}.sni"), why))?;
            if name.starts_with("*.") {
                return Err(FieldError::new(
                    format!("{at}.sni"),
                    format!("{name:?}: a server name to send cannot be a wildcard"),
                ));
            }
            Some(name)
        }
    };
    let verify = raw.verify.unwrap_or(DEFAULT_VERIFY);
    let ca = path(&raw.ca, "ca")?;
    let client_cert = match (path(&raw.cert, "cert")?, path(&raw.key, "key")?) {
        (None, None) => None,
        (Some(c), Some(k)) => Some((c, k)),
        (Some(_), None) => {
            return Err(FieldError::new(
                format!("{at}.key"),
                "a client certificate needs its key: key = \"...\"",
            ));
        }
        (None, Some(_)) => {
            return Err(FieldError::new(
                format!("{at}.cert"),
                "a client key needs its certificate: cert = \"...\"",
            ));
        }
    };
    let alpn = match &raw.alpn {
        Some(ids) => alpn(ids, &format!("{at}.alpn"), protocol)?,
        None => match protocol {
            UpstreamProtocol::Http1 => vec![ALPN_HTTP11.to_vec()],
            UpstreamProtocol::Http2 => vec![ALPN_H2.to_vec()],
        },
    };
    Ok(ClientTlsSettings {
        sni,
        ca,
        client_cert,
        alpn,
        verify,
        required_alpn: (protocol == UpstreamProtocol::Http2).then(|| ALPN_H2.to_vec()),
    })
}

/// ALPN ids: unique, 1..=255 bytes; an HTTP/2 cluster must offer `h2`, an HTTP/1 one must
/// not (it could not speak it).
fn alpn(ids: &[String], at: &str, protocol: UpstreamProtocol) -> Result<Vec<Vec<u8>>, FieldError> {
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let at = format!("{at}[{i}]");
        if id.is_empty() || id.len() > MAX_ALPN_ID {
            return Err(FieldError::new(
                at,
                format!("an ALPN protocol id is 1..={MAX_ALPN_ID} bytes"),
            ));
        }
        if out.iter().any(|p| p == id.as_bytes()) {
            return Err(FieldError::new(at, format!("{id:?} is listed twice")));
        }
        if protocol == UpstreamProtocol::Http1 && id.as_bytes() == ALPN_H2 {
            return Err(FieldError::new(
                at,
                "\"h2\" needs protocol = \"http2\" on the cluster",
            ));
        }
        out.push(id.as_bytes().to_vec());
    }
    if protocol == UpstreamProtocol::Http2 && !out.iter().any(|p| p == ALPN_H2) {
        return Err(FieldError::new(
            at,
            "a protocol = \"http2\" cluster must offer \"h2\"",
        ));
    }
    Ok(out)
}
