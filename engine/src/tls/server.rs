//! Server-side TLS configuration: typed settings (from `[listeners.tls]`) -> certificates read
//! from PEM files -> the rustls [`ServerConfig`]s a listener hands to [`accept`](super::accept).
//!
//! Built once per configuration load, on the control thread; the workers share the result
//! through the config snapshot (`Arc`s). Certificate selection by SNI is [`SniResolver`]:
//! exact names first, then `*.suffix` wildcards (longest suffix first), then the default
//! certificate (the first one listed). Only TLS 1.2 and 1.3 exist here, with the `ring`
//! provider.
//!
//! Client certificates (mTLS, `client_ca`): rustls's webpki verifier checks the chain against
//! the configured CAs; [`ClientVerifier`] then checks `client_allowed_names` ([`identity`]).
//! A refused client gets the alert rustls picks (`certificate_required`, `unknown_ca`,
//! `bad_certificate`, ...).
//!
//! Certificate reload: the resolver ([`Certificates`]) holds the loaded certificates behind an
//! [`ArcSwap`]; [`ServerTls::reload_changed`] (called by the workers' housekeeping) rereads
//! them when a certificate or key file changed, so new handshakes use the new certificate while
//! established connections go on. If the new files do not load, the old certificates stay.

mod identity;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, DnsName, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{
    ClientHello, NoServerSessionStorage, ResolvesServerCert, WebPkiClientVerifier,
};
use rustls::server::{ServerConfig, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls::version::{TLS12, TLS13};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};

use super::ServerNames;
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
    /// PEM file of the CAs that issue client certificates (mTLS); `None`: no client
    /// certificate is asked for.
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: refuse clients without a certificate (`client_auth = "required"`);
    /// otherwise they are let in without an identity.
    pub client_cert_required: bool,
    /// With `client_ca`: a client certificate must name one of these (subject CN, or a
    /// subjectAltName DNS name or URI; exact, or `*.suffix`; lowercase). Empty: any verified
    /// certificate.
    pub client_allowed_names: Vec<String>,
}

/// How often [`ServerTls::reload_changed`] looks at the certificate files.
pub(crate) const CERTIFICATE_CHECK_INTERVAL: Duration = Duration::from_secs(2);

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
    /// The certificates served (shared by both configurations), reloaded when their files
    /// change.
    certs: Arc<Certificates>,
    /// Client certificates are asked for (`client_ca` is set).
    client_auth: bool,
}

impl ServerTls {
    /// Reads the certificates and builds the server configurations. Errors name the field
    /// (relative to the `tls` table) and, for files, the file.
    pub fn build(settings: &TlsSettings) -> Result<Self, TlsConfigError> {
        let provider = Arc::new(crypto_provider(settings.cipher_suites.as_deref())?);
        let stamps = stamps(&settings.certificates);
        let resolver = SniResolver::load(&settings.certificates, &provider)?;
        let certs = Arc::new(Certificates {
            current: ArcSwap::from_pointee(resolver),
            sources: settings.certificates.clone(),
            provider: provider.clone(),
            watch: Mutex::new(Watch {
                next: Instant::now() + CERTIFICATE_CHECK_INTERVAL,
                stamps,
            }),
        });
        let client_verifier = client_verifier(settings, &provider)?;
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
            .with_client_cert_verifier(client_verifier)
            .with_cert_resolver(certs.clone());
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
            certs,
            client_auth: settings.client_ca.is_some(),
        })
    }

    /// on the connection; when it cannot, `h2` is not offered in ALPN.
    pub fn server_config(&self, serve_h2: bool) -> &Arc<ServerConfig> {
        if serve_h2 {
            &self.with_h2
        } else {
            &self.without_h2
        }
    }

    /// Whether client certificates are asked for (mTLS).
    pub fn client_auth(&self) -> bool {
        self.client_auth
    }

    /// Rereads the certificates if a certificate or key file changed (size, modification
    /// time or inode) since the last look, at most once every 2 seconds
    /// (and by one caller at a time: the workers share this). `None`: not looked at, or
    /// nothing changed; `Some(Ok)`: new handshakes use the new certificates; `Some(Err)`: they
    /// did not load, the old ones stay (until the files change again).
    pub fn reload_changed(&self, now: Instant) -> Option<Result<(), TlsConfigError>> {
        let c = &self.certs;
        let mut watch = c.watch.try_lock().ok()?;
        if now < watch.next {
            return None;
        }
        watch.next = now + CERTIFICATE_CHECK_INTERVAL;
        let stamps = stamps(&c.sources);
        if stamps == watch.stamps {
            return None;
        }
        watch.stamps = stamps;
        Some(SniResolver::load(&c.sources, &c.provider).map(|r| c.current.store(Arc::new(r))))
    }

    /// The default certificate (leaf) served now, DER.
    pub fn default_certificate(&self) -> CertificateDer<'static> {
        self.certs.current.load().default.cert[0].clone()
    }

    /// The `x-forwarded-client-cert` value for a verified client chain (leaf first), in
    /// Envoy's format; `By` is the URI SAN of ringway's default certificate, if any.
    pub(crate) fn forwarded_client_cert(&self, chain: &[CertificateDer<'_>]) -> Option<Vec<u8>> {
        let leaf = chain.first()?;
        let current = self.certs.current.load();
        Some(identity::forwarded_client_cert(current.by.as_deref(), leaf))
    }
}

/// The client certificate verifier of `settings`: none without `client_ca`.
fn client_verifier(
    settings: &TlsSettings,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsConfigError> {
    let Some(ca) = &settings.client_ca else {
        return Ok(WebPkiClientVerifier::no_client_auth());
    };
    let mut roots = RootCertStore::empty();
    for cert in read_chain(ca, "client_ca")? {
        roots.add(cert).map_err(|e| {
            TlsConfigError::new(
                "client_ca",
                format!("{}: not a CA certificate: {e}", ca.display()),
            )
        })?;
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let builder = if settings.client_cert_required {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    let inner = builder
        .build()
        .map_err(|e| TlsConfigError::new("client_ca", format!("{}: {e}", ca.display())))?;
    Ok(Arc::new(ClientVerifier {
        inner,
        allowed: settings.client_allowed_names.clone(),
    }))
}

/// rustls's webpki client verifier, then `client_allowed_names`.
#[derive(Debug)]
struct ClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    /// Lowercase; empty: any verified certificate.
    allowed: Vec<String>,
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if !self.allowed.is_empty() && !identity::Identity::of(end_entity).matches(&self.allowed) {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            ));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// What identifies a version of a file: modification time, size, inode. `None`: unreadable.
type Stamp = Option<(SystemTime, u64, u64)>;

/// The stamps of every certificate and key file, in order.
fn stamps(sources: &[CertificateSource]) -> Vec<Stamp> {
    use std::os::unix::fs::MetadataExt;
    sources
        .iter()
        .flat_map(|s| [&s.cert, &s.key])
        .map(|p| {
            let m = std::fs::metadata(p).ok()?;
            Some((m.modified().ok()?, m.len(), m.ino()))
        })
        .collect()
}

/// The certificates a listener serves, swapped whole on reload.
#[derive(Debug)]
struct Certificates {
    current: ArcSwap<SniResolver>,
    /// Where they are read from.
    sources: Vec<CertificateSource>,
    provider: Arc<CryptoProvider>,
    watch: Mutex<Watch>,
}

/// When the files were last looked at, and what they were.
#[derive(Debug)]
struct Watch {
    /// Do not look before this.
    next: Instant,
    stamps: Vec<Stamp>,
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().pick(hello.server_name()).clone())
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
pub(super) fn read_chain(
    path: &Path,
    field: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
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
pub(super) fn read_key(path: &Path, field: &str) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
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

/// Picks a certificate by the client's SNI ([`ServerNames`]), else the default.
#[derive(Debug)]
pub(crate) struct SniResolver {
    names: ServerNames<Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
    /// The default certificate's first URI SAN (`By` of `x-forwarded-client-cert`).
    by: Option<String>,
}

impl SniResolver {
    fn load(
        sources: &[CertificateSource],
        provider: &CryptoProvider,
    ) -> Result<Self, TlsConfigError> {
        let mut by_name = ServerNames::new();
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
                by_name.insert(&name, certified.clone());
                owner.insert(name, (i, explicit));
            }
            default.get_or_insert(certified);
        }
        let Some(default) = default else {
            return Err(TlsConfigError::new(
                "certificates",
                "at least one certificate is needed",
            ));
        };
        let by = webpki::EndEntityCert::try_from(&default.cert[0])
            .ok()
            .and_then(|c| c.valid_uri_names().next().map(str::to_owned));
        Ok(Self {
            names: by_name,
            default,
            by,
        })
    }

    /// The certificate for `sni` (any case): exact, then the longest matching `*.suffix`, then
    /// the default.
    pub(crate) fn pick(&self, sni: Option<&str>) -> &Arc<CertifiedKey> {
        sni.and_then(|name| self.names.get(name))
            .unwrap_or(&self.default)
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
