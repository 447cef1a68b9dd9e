//! Server-side TLS configuration: typed settings (from `[listeners.tls]`) -> certificates read
//! from PEM files -> the rustls [`ServerConfig`]s a listener hands to [`accept`](super::accept).
//!
//! Built once per configuration load, on the control thread; the workers share the result
//! through the config snapshot (`Arc`s). Certificate selection by SNI is [`SniResolver`]:
//! exact names first, then `*.suffix` wildcards (longest suffix first), then the default
//! certificate (the first one listed). Only TLS 1.2 and 1.3 exist here, with the `ring`
//! provider.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, DnsName, PrivateKeyDer};
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert};
use rustls::server::{ServerConfig, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls::version::{TLS12, TLS13};

use super::error::TlsConfigError;

/// ALPN protocol id of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN protocol id of HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";
/// `handshake_timeout` (Envoy's `transport_socket_connect_timeout` is unset by default; nginx
/// and HAProxy bound the handshake by their client timeouts, 60s/10s; we take 10s).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// `session_cache_size`: sessions remembered per listener for ID-based resumption (rustls's
/// default size).
pub const DEFAULT_SESSION_CACHE_SIZE: usize = 256;

/// The lowest TLS version a listener accepts (the highest is always 1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2 (RFC 5246) and 1.3.
    Tls12,
    /// TLS 1.3 (RFC 8446) only.
    Tls13,
}

/// One certificate chain and its key, and the server names it answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSource {
    /// PEM file with the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Names (`a.example`, `*.b.example`, lowercase) chosen by SNI; `None` takes the DNS names
    /// of the certificate's subjectAltName extension.
    pub server_names: Option<Vec<String>>,
}

/// Validated TLS settings of a listener, before any file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// At least one; the first is the default for clients without (or with an unknown) SNI.
    pub certificates: Vec<CertificateSource>,
    /// ALPN protocol ids offered, in preference order; empty: no ALPN.
    pub alpn: Vec<Vec<u8>>,
    /// Lowest version accepted.
    pub min_version: TlsVersion,
    /// IANA names of the cipher suites allowed (rustls's spelling, such as
    /// `TLS13_AES_128_GCM_SHA256`); `None`: the provider's defaults.
    pub cipher_suites: Option<Vec<String>>,
    /// Issue stateless session tickets (RFC 5077 / RFC 8446 4.6.1).
    pub session_tickets: bool,
    /// Sessions kept for ID-based resumption; 0 disables the cache.
    pub session_cache_size: usize,
    /// Time allowed for a handshake.
    pub handshake_timeout: Duration,
}

/// A listener's built TLS server side. Cloning shares everything (certificates, ticket keys,
/// session cache).
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// ALPN as configured.
    with_h2: Arc<ServerConfig>,
    /// ALPN as configured minus `h2` (the same `Arc` when `h2` is not configured).
    without_h2: Arc<ServerConfig>,
    /// Time allowed for a handshake.
    pub handshake_timeout: Duration,
}

impl ServerTls {
    /// Reads the certificates and builds the server configurations. Errors name the field
    /// (relative to the `tls` table) and, for files, the file.
    pub fn build(settings: &TlsSettings) -> Result<Self, TlsConfigError> {
        let provider = Arc::new(crypto_provider(settings.cipher_suites.as_deref())?);
        let resolver = Arc::new(SniResolver::load(&settings.certificates, &provider)?);
        let versions: &[&rustls::SupportedProtocolVersion] = match settings.min_version {
            TlsVersion::Tls12 => &[&TLS13, &TLS12],
            TlsVersion::Tls13 => &[&TLS13],
        };
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| {
                let field = match settings.cipher_suites {
                    Some(_) => "cipher_suites",
                    None => "min_version",
                };
                TlsConfigError::new(field, format!("no usable protocol version: {e}"))
            })?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        if settings.session_cache_size == 0 {
            config.session_storage = Arc::new(NoServerSessionStorage {});
        } else {
            config.session_storage = ServerSessionMemoryCache::new(settings.session_cache_size);
        }
        if settings.session_tickets {
            config.ticketer = provider::Ticketer::new().map_err(|e| {
                TlsConfigError::new("session_tickets", format!("no ticket keys: {e}"))
            })?;
        } else if settings.session_cache_size == 0 {
            // Nothing to resume from: TLS 1.3 tickets would only waste bytes.
            config.send_tls13_tickets = 0;
        }
        config.alpn_protocols = settings.alpn.clone();
        let with_h2 = Arc::new(config);
        let without_h2 = if settings.alpn.iter().any(|p| p == ALPN_H2) {
            let mut config = (*with_h2).clone();
            config.alpn_protocols.retain(|p| p != ALPN_H2);
            Arc::new(config)
        } else {
            with_h2.clone()
        };
        Ok(Self {
            with_h2,
            without_h2,
            handshake_timeout: settings.handshake_timeout,
        })
    }

    /// The configuration to accept with: `serve_h2` says whether the caller can serve HTTP/2
    /// on the connection; when it cannot, `h2` is not offered in ALPN.
    pub fn server_config(&self, serve_h2: bool) -> &Arc<ServerConfig> {
        if serve_h2 {
            &self.with_h2
        } else {
            &self.without_h2
        }
    }
}

/// The `ring` provider, restricted to the named cipher suites when a list is given (in the
/// provider's preference order; rustls prefers the client's order anyway).
fn crypto_provider(names: Option<&[String]>) -> Result<CryptoProvider, TlsConfigError> {
    let mut p = provider::default_provider();
    let Some(names) = names else { return Ok(p) };
    if names.is_empty() {
        return Err(TlsConfigError::new(
            "cipher_suites",
            "must name at least one cipher suite (or be left out for the defaults)",
        ));
    }
    for (i, name) in names.iter().enumerate() {
        let known = p
            .cipher_suites
            .iter()
            .any(|s| s.suite().as_str() == Some(name.as_str()));
        if !known {
            let all: Vec<&str> = p
                .cipher_suites
                .iter()
                .filter_map(|s| s.suite().as_str())
                .collect();
            return Err(TlsConfigError::new(
                format!("cipher_suites[{i}]"),
                format!(
                    "unknown cipher suite {name:?}; supported: {}",
                    all.join(", ")
                ),
            ));
        }
    }
    p.cipher_suites.retain(|s| {
        s.suite()
            .as_str()
            .is_some_and(|n| names.iter().any(|x| x == n))
    });
    Ok(p)
}

/// Reads a PEM certificate chain, leaf first.
fn read_chain(path: &Path, field: &str) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let bad = |why: String| TlsConfigError::new(field, format!("{}: {why}", path.display()));
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(pem_reason(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(pem_reason(&e)))?;
    if chain.is_empty() {
        return Err(bad("no CERTIFICATE section in the file".into()));
    }
    Ok(chain)
}

/// Reads a PEM private key.
fn read_key(path: &Path, field: &str) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| TlsConfigError::new(field, format!("{}: {}", path.display(), pem_reason(&e))))
}

fn pem_reason(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::Io(io) => format!("cannot read: {io}"),
        E::NoItemsFound => "no PEM section of the expected kind in the file".into(),
        other => format!("not valid PEM: {other}"),
    }
}

/// Picks a certificate by the client's SNI. Names are stored lowercase; wildcards are stored
/// without their `*.`.
#[derive(Debug)]
pub(crate) struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl SniResolver {
    fn load(
        sources: &[CertificateSource],
        provider: &CryptoProvider,
    ) -> Result<Self, TlsConfigError> {
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        // Where each name came from: explicit names must be unique; SAN-derived names go to
        // the first certificate that has them.
        let mut owner: HashMap<String, (usize, bool)> = HashMap::new();
        let mut default = None;
        for (i, src) in sources.iter().enumerate() {
            let at = format!("certificates[{i}]");
            let chain = read_chain(&src.cert, &format!("{at}.cert"))?;
            let key = read_key(&src.key, &format!("{at}.key"))?;
            let names: Vec<(String, String)> = match &src.server_names {
                Some(names) => names
                    .iter()
                    .enumerate()
                    .map(|(j, n)| (format!("{at}.server_names[{j}]"), n.clone()))
                    .collect(),
                None => san_dns_names(&chain[0])
                    .map_err(|why| {
                        TlsConfigError::new(
                            format!("{at}.cert"),
                            format!("{}: {why}", src.cert.display()),
                        )
                    })?
                    .into_iter()
                    .map(|n| (format!("{at}.cert"), n))
                    .collect(),
            };
            let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
                TlsConfigError::new(
                    format!("{at}.key"),
                    format!(
                        "{} does not fit {}: {e}",
                        src.key.display(),
                        src.cert.display()
                    ),
                )
            })?;
            let certified = Arc::new(certified);
            let explicit = src.server_names.is_some();
            for (field, name) in names {
                let name = name.to_ascii_lowercase();
                if let Some(&(first, first_explicit)) = owner.get(&name) {
                    if explicit && first_explicit {
                        return Err(TlsConfigError::new(
                            field,
                            format!("server name {name:?} is also in certificates[{first}]"),
                        ));
                    }
                    continue;
                }
                owner.insert(name.clone(), (i, explicit));
                match name.strip_prefix("*.") {
                    Some(suffix) => wildcard.insert(suffix.to_owned(), certified.clone()),
                    None => exact.insert(name, certified.clone()),
                };
            }
            default.get_or_insert(certified);
        }
        let Some(default) = default else {
            return Err(TlsConfigError::new(
                "certificates",
                "at least one certificate is needed",
            ));
        };
        Ok(Self {
            exact,
            wildcard,
            default,
        })
    }

    /// The certificate for `sni` (any case): exact, then the longest matching `*.suffix`, then
    /// the default.
    pub(crate) fn pick(&self, sni: Option<&str>) -> &Arc<CertifiedKey> {
        let Some(name) = sni else {
            return &self.default;
        };
        let lower;
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = name.to_ascii_lowercase();
            lower.as_str()
        } else {
            name
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        if let Some(c) = self.exact.get(name) {
            return c;
        }
        let mut rest = name;
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(c) = self.wildcard.get(parent) {
                return c;
            }
            rest = parent;
        }
        &self.default
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.pick(hello.server_name()).clone())
    }
}

/// The DNS names (including `*.` wildcards) in a certificate's subjectAltName extension.
fn san_dns_names(leaf: &CertificateDer<'_>) -> Result<Vec<String>, String> {
    let cert = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| format!("cannot parse the certificate: {e}"))?;
    Ok(cert.valid_dns_names().map(str::to_owned).collect())
}

/// Checks a configured server name: a DNS name or `*.` followed by one; returns it lowercase.
pub fn check_server_name(name: &str) -> Result<String, String> {
    let lower = name.to_ascii_lowercase();
    let base = lower.strip_prefix("*.").unwrap_or(&lower);
    if base.contains('*') {
        return Err(format!(
            "{name:?}: a wildcard is only allowed as the whole first label (\"*.example.com\")"
        ));
    }
    if DnsName::try_from(base).is_err() || base.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!("{name:?} is not a DNS name"));
    }
    Ok(lower)
}
