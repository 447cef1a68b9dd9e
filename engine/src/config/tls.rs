//! `[listeners.tls]` -> [`ServerTls`]: defaults, bounds, file paths resolved against the
//! config file's directory, then the certificates are read and the rustls configurations
//! built by [`crate::tls`]. A certificate or key that cannot be read or parsed is a config
//! error at the field that names it.

use std::path::Path;
use std::time::Duration;

use super::error::FieldError;
use super::raw::RawTls;
use super::{ListenerProtocol, validate::parse_duration};
use crate::tls::{
    ALPN_H2, ALPN_HTTP11, CertificateSource, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_SESSION_CACHE_SIZE,
    ServerTls, TlsSettings, TlsVersion, check_server_name,
};

/// `min_version`.
pub const DEFAULT_MIN_VERSION: TlsVersion = TlsVersion::Tls12;
/// `session_tickets`.
pub const DEFAULT_SESSION_TICKETS: bool = true;
/// Largest `session_cache_size` (rustls sizes the cache up front).
pub const MAX_SESSION_CACHE_SIZE: u32 = 100_000;
/// Longest ALPN protocol id (RFC 7301 section 3.1: 1..=255 bytes).
const MAX_ALPN_ID: usize = 255;

/// Validates the `[listeners.tls]` of the listener at `listener` (`listeners[0]`) and builds
/// the server side.
pub(super) fn server_tls(
    raw: &RawTls,
    listener: &str,
    protocol: ListenerProtocol,
    dir: &Path,
) -> Result<ServerTls, FieldError> {
    let at = &format!("{listener}.tls");
    let settings = settings(raw, at, protocol, dir)?;
    ServerTls::build(&settings).map_err(|e| FieldError::new(format!("{at}.{}", e.field), e.reason))
}

fn settings(
    raw: &RawTls,
    at: &str,
    protocol: ListenerProtocol,
    dir: &Path,
) -> Result<TlsSettings, FieldError> {
    if raw.certificates.is_empty() {
        return Err(FieldError::new(
            format!("{at}.certificates"),
            "at least one certificate is needed: certificates = [{ cert = \"...\", key = \"...\" }]",
        ));
    }
    let mut certificates = Vec::with_capacity(raw.certificates.len());
    for (i, c) in raw.certificates.iter().enumerate() {
        let at = format!("{at}.certificates[{i}]");
        let path = |p: &str, field: &str| {
            if p.is_empty() {
                return Err(FieldError::new(
                    format!("{at}.{field}"),
                    "must not be empty",
                ));
            }
            Ok(dir.join(p))
        };
        let server_names = match &c.server_names {
            None => None,
            Some(names) if names.is_empty() => {
                return Err(FieldError::new(
                    format!("{at}.server_names"),
                    "must name at least one server (or be left out to use the certificate's names)",
                ));
            }
            Some(names) => Some(
                names
                    .iter()
                    .enumerate()
                    .map(|(j, n)| {
                        check_server_name(n)
                            .map_err(|why| FieldError::new(format!("{at}.server_names[{j}]"), why))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        certificates.push(CertificateSource {
            cert: path(&c.cert, "cert")?,
            key: path(&c.key, "key")?,
            server_names,
        });
    }
    let alpn = match &raw.alpn {
        Some(ids) => alpn(ids, &format!("{at}.alpn"), protocol)?,
        // A TCP listener does not know what it carries: no ALPN unless configured.
        None if protocol == ListenerProtocol::Tcp => Vec::new(),
        None => vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()],
    };
    let min_version = match raw.min_version.as_deref() {
        None => DEFAULT_MIN_VERSION,
        Some("1.2") => TlsVersion::Tls12,
        Some("1.3") => TlsVersion::Tls13,
        Some(other) => {
            return Err(FieldError::new(
                format!("{at}.min_version"),
                format!(
                    "must be \"1.2\" or \"1.3\" (older versions are not supported), not {other:?}"
                ),
            ));
        }
    };
    let session_cache_size = match raw.session_cache_size {
        None => DEFAULT_SESSION_CACHE_SIZE,
        Some(n) if n <= MAX_SESSION_CACHE_SIZE => n as usize,
        Some(n) => {
            return Err(FieldError::new(
                format!("{at}.session_cache_size"),
                format!("must be 0..={MAX_SESSION_CACHE_SIZE}, not {n}"),
            ));
        }
    };
    let handshake_timeout = match &raw.handshake_timeout {
        None => DEFAULT_HANDSHAKE_TIMEOUT,
        Some(d) => {
            let field = format!("{at}.handshake_timeout");
            let d = parse_duration(d, &field)?;
            if d == Duration::ZERO {
                return Err(FieldError::new(field, "must be greater than 0s"));
            }
            d
        }
    };
    let (client_ca, client_cert_required, client_allowed_names) = client_auth(raw, at, dir)?;
    Ok(TlsSettings {
        certificates,
        alpn,
        min_version,
        cipher_suites: raw.cipher_suites.clone(),
        session_tickets: raw.session_tickets.unwrap_or(DEFAULT_SESSION_TICKETS),
        session_cache_size,
        handshake_timeout,
        client_ca,
        client_cert_required,
        client_allowed_names,
    })
}

/// `client_ca`, `client_auth` (`"required"`, the default, or `"optional"`) and
/// `client_allowed_names`; the last two need the first.
fn client_auth(
    raw: &RawTls,
    at: &str,
    dir: &Path,
) -> Result<(Option<std::path::PathBuf>, bool, Vec<String>), FieldError> {
    let Some(ca) = &raw.client_ca else {
        for (set, field) in [
            (raw.client_auth.is_some(), "client_auth"),
            (raw.client_allowed_names.is_some(), "client_allowed_names"),
        ] {
            if set {
                return Err(FieldError::new(
                    format!("{at}.{field}"),
                    "needs client_ca (the CAs that issue client certificates)",
                ));
            }
        }
        return Ok((None, false, Vec::new()));
    };
    if ca.is_empty() {
        return Err(FieldError::new(
            format!("{at}.client_ca"),
            "must not be empty",
        ));
    }
    let required = match raw.client_auth.as_deref() {
        None | Some("required") => true,
        Some("optional") => false,
        Some(other) => {
            return Err(FieldError::new(
                format!("{at}.client_auth"),
                format!("must be \"required\" or \"optional\", not {other:?}"),
            ));
        }
    };
    let mut allowed = Vec::new();
    for (i, name) in raw.client_allowed_names.iter().flatten().enumerate() {
        let lower = name.to_ascii_lowercase();
        let base = lower.strip_prefix("*.").unwrap_or(&lower);
        if base.is_empty() || base.contains('*') {
            return Err(FieldError::new(
                format!("{at}.client_allowed_names[{i}]"),
                format!("{name:?}: a name, or \"*.\" followed by a suffix"),
            ));
        }
        // URIs compare exactly; names without case.
        allowed.push(if name.contains(':') {
            name.clone()
        } else {
            lower
        });
    }
    if raw.client_allowed_names.as_ref().is_some_and(Vec::is_empty) {
        return Err(FieldError::new(
            format!("{at}.client_allowed_names"),
            "must name at least one identity (or be left out to accept any verified certificate)",
        ));
    }
    Ok((Some(dir.join(ca)), required, allowed))
}

/// ALPN ids: unique, 1..=255 bytes; an HTTP listener offers only what it can speak.
fn alpn(ids: &[String], at: &str, protocol: ListenerProtocol) -> Result<Vec<Vec<u8>>, FieldError> {
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let at = format!("{at}[{i}]");
        if id.is_empty() || id.len() > MAX_ALPN_ID {
            return Err(FieldError::new(at, "an ALPN protocol id is 1 to 255 bytes"));
        }
        if protocol == ListenerProtocol::Http
            && id.as_bytes() != ALPN_H2
            && id.as_bytes() != ALPN_HTTP11
        {
            return Err(FieldError::new(
                at,
                format!("http listeners speak \"h2\" and \"http/1.1\", not {id:?}"),
            ));
        }
        if out.iter().any(|o| o == id.as_bytes()) {
            return Err(FieldError::new(at, format!("{id:?} is listed twice")));
        }
        out.push(id.as_bytes().to_vec());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use rcgen::{CertificateParams, KeyPair};

    use crate::config::{ConfigError, load_file, parse_str, parse_str_in};

    /// A private directory with a self-signed certificate for `a.example` and `*.b.example`
    /// (`a.pem`, `a-key.pem`) and one for `c.example` (`c.pem`, `c-key.pem`).
    struct Dir(PathBuf);

    impl Dir {
        fn new() -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "ringway-tls-config-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            for (name, sans) in [
                ("a", &["a.example", "*.b.example"][..]),
                ("c", &["c.example"]),
            ] {
                let key = KeyPair::generate().unwrap();
                let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
                let cert = CertificateParams::new(sans)
                    .unwrap()
                    .self_signed(&key)
                    .unwrap();
                std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
                std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem()).unwrap();
            }
            Self(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn listener(protocol: &str, tls: &str) -> String {
        let head = match protocol {
            "tcp" => "protocol = \"tcp\"\ncluster = \"c\"\n",
            _ => "",
        };
        format!(
            "[[clusters]]\nname = \"c\"\nendpoints = [\"127.0.0.1:9\"]\n\n\
             [[listeners]]\nname = \"l\"\naddress = \"127.0.0.1:0\"\n{head}\n\
             [listeners.tls]\n{tls}"
        )
    }

    fn err(dir: &Dir, text: &str) -> (usize, usize, String, String) {
        match parse_str_in(text, "t.toml", &dir.0) {
            Err(ConfigError::Invalid {
                line,
                column,
                path,
                reason,
                ..
            }) => (line, column, path, reason),
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("accepted:\n{text}"),
        }
    }

    #[test]
    fn documented_example_parses_with_relative_paths() {
        let dir = Dir::new();
        let text = listener(
            "http",
            "certificates = [\n\
             \x20 { cert = \"a.pem\", key = \"a-key.pem\", server_names = [\"a.example\", \"*.b.example\"] },\n\
             \x20 { cert = \"c.pem\", key = \"c-key.pem\" },\n\
             ]\n\
             alpn = [\"h2\", \"http/1.1\"]\n\
             min_version = \"1.3\"\n\
             cipher_suites = [\"TLS13_AES_128_GCM_SHA256\", \"TLS13_CHACHA20_POLY1305_SHA256\"]\n\
             session_tickets = false\n\
             session_cache_size = 1000\n\
             handshake_timeout = \"3s\"\n",
        );
        let path = dir.0.join("ringway.toml");
        std::fs::write(&path, &text).unwrap();
        let cfg = load_file(&path).unwrap();
        let tls = cfg.listeners[0].tls.as_ref().unwrap();
        assert_eq!(tls.handshake_timeout, std::time::Duration::from_secs(3));
        assert_eq!(
            tls.server_config(true).alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert_eq!(
            tls.server_config(false).alpn_protocols,
            vec![b"http/1.1".to_vec()]
        );
        // The raw config keeps what was written (for /config_dump).
        let raw = cfg.raw.listeners[0].tls.as_ref().unwrap();
        assert_eq!(raw.certificates[0].cert, "a.pem");

        // The same text elsewhere: relative paths are the file's, not the current directory's.
        assert!(parse_str(&text, "t.toml").is_err());
    }

    #[test]
    fn defaults_apply() {
        let dir = Dir::new();
        let cfg = parse_str_in(
            &listener(
                "http",
                "certificates = [{ cert = \"a.pem\", key = \"a-key.pem\" }]\n",
            ),
            "t.toml",
            &dir.0,
        )
        .unwrap();
        let tls = cfg.listeners[0].tls.as_ref().unwrap();
        assert_eq!(tls.handshake_timeout, crate::tls::DEFAULT_HANDSHAKE_TIMEOUT);
        assert_eq!(tls.server_config(true).alpn_protocols.len(), 2);
        assert!(tls.server_config(true).ticketer.enabled());

        // TCP listeners offer no ALPN unless told, and any protocol id when told.
        let cfg = parse_str_in(
            &listener(
                "tcp",
                "certificates = [{ cert = \"a.pem\", key = \"a-key.pem\" }]\n",
            ),
            "t.toml",
            &dir.0,
        )
        .unwrap();
        let tls = cfg.listeners[0].tls.as_ref().unwrap();
        assert!(tls.server_config(true).alpn_protocols.is_empty());
        let cfg = parse_str_in(
            &listener(
                "tcp",
                "certificates = [{ cert = \"a.pem\", key = \"a-key.pem\" }]\nalpn = [\"imap\"]\n",
            ),
            "t.toml",
            &dir.0,
        )
        .unwrap();
        let tls = cfg.listeners[0].tls.as_ref().unwrap();
        assert_eq!(
            tls.server_config(false).alpn_protocols,
            vec![b"imap".to_vec()]
        );

        // Client certificates: asked for with client_ca (required by default).
        assert!(!tls.client_auth());
        let cfg = parse_str_in(
            &listener(
                "http",
                "certificates = [{ cert = \"a.pem\", key = \"a-key.pem\" }]\n\
                 client_ca = \"c.pem\"\n\
                 client_allowed_names = [\"*.Example\", \"spiffe://x/Y\"]\n",
            ),
            "t.toml",
            &dir.0,
        )
        .unwrap();
        assert!(cfg.listeners[0].tls.as_ref().unwrap().client_auth());

        // No [listeners.tls]: plaintext.
        assert!(
            parse_str(crate::config::DEFAULT_CONFIG, "d")
                .unwrap()
                .listeners[0]
                .tls
                .is_none()
        );
    }

    #[test]
    fn errors_are_located_and_name_the_file() {
        let dir = Dir::new();
        let cert = "certificates = [{ cert = \"a.pem\", key = \"a-key.pem\" }]\n";
        // Line numbers: the [listeners.tls] header is on line 9, its first field on line 10.
        let cases: Vec<(String, usize, &str, &str)> = vec![
            (
                "certificates = [{ cert = \"missing.pem\", key = \"a-key.pem\" }]\n".into(),
                10,
                "listeners[0].tls.certificates[0].cert",
                "missing.pem: cannot read",
            ),
            (
                "certificates = [{ cert = \"a.pem\", key = \"c-key.pem\" }]\n".into(),
                10,
                "listeners[0].tls.certificates[0].key",
                "does not fit",
            ),
            (
                "certificates = [{ cert = \"a-key.pem\", key = \"a-key.pem\" }]\n".into(),
                10,
                "listeners[0].tls.certificates[0].cert",
                "a-key.pem",
            ),
            (
                "certificates = [{ cert = \"a.pem\", key = \"a-key.pem\", server_names = [\"a.*.x\"] }]\n"
                    .into(),
                10,
                "listeners[0].tls.certificates[0].server_names[0]",
                "wildcard",
            ),
            (
                "certificates = []\n".into(),
                10,
                "listeners[0].tls.certificates",
                "at least one",
            ),
            (
                format!("{cert}min_version = \"1.1\"\n"),
                11,
                "listeners[0].tls.min_version",
                "\"1.2\" or \"1.3\"",
            ),
            (
                format!("{cert}alpn = [\"http/1.1\", \"h3\"]\n"),
                11,
                "listeners[0].tls.alpn[1]",
                "http listeners speak",
            ),
            (
                format!("{cert}alpn = [\"h2\", \"h2\"]\n"),
                11,
                "listeners[0].tls.alpn[1]",
                "twice",
            ),
            (
                format!("{cert}handshake_timeout = \"0s\"\n"),
                11,
                "listeners[0].tls.handshake_timeout",
                "greater than 0s",
            ),
            (
                format!("{cert}handshake_timeout = \"soon\"\n"),
                11,
                "listeners[0].tls.handshake_timeout",
                "",
            ),
            (
                format!("{cert}cipher_suites = [\"RC4-MD5\"]\n"),
                11,
                "listeners[0].tls.cipher_suites[0]",
                "unknown cipher suite",
            ),
            (
                format!("{cert}session_cache_size = 100000000\n"),
                11,
                "listeners[0].tls.session_cache_size",
                "0..=",
            ),
            (
                format!("{cert}client_auth = \"optional\"\n"),
                11,
                "listeners[0].tls.client_auth",
                "needs client_ca",
            ),
            (
                format!("{cert}client_allowed_names = [\"a.example\"]\n"),
                11,
                "listeners[0].tls.client_allowed_names",
                "needs client_ca",
            ),
            (
                format!("{cert}client_ca = \"missing-ca.pem\"\n"),
                11,
                "listeners[0].tls.client_ca",
                "missing-ca.pem: cannot read",
            ),
            (
                format!("{cert}client_ca = \"a.pem\"\nclient_auth = \"sometimes\"\n"),
                12,
                "listeners[0].tls.client_auth",
                "\"required\" or \"optional\"",
            ),
            (
                format!("{cert}client_ca = \"a.pem\"\nclient_allowed_names = []\n"),
                12,
                "listeners[0].tls.client_allowed_names",
                "at least one",
            ),
            (
                format!("{cert}client_ca = \"a.pem\"\nclient_allowed_names = [\"a.*.example\"]\n"),
                12,
                "listeners[0].tls.client_allowed_names[0]",
                "suffix",
            ),
            (
                format!("{cert}verify_client = true\n"),
                11,
                "listeners[0].tls.verify_client",
                "unknown field",
            ),
        ];
        for (tls, line, path, reason) in cases {
            let text = listener("http", &tls);
            let (l, c, p, r) = err(&dir, &text);
            assert_eq!((l, p.as_str()), (line, path), "{text}\n{r}");
            assert!(c >= 1);
            assert!(r.contains(reason), "{path}: {r}");
        }
    }
}
