//! RTSP over TLS (`rtsps://`, RFC 2326 §3.2; TLS 1.2 and 1.3, RFC 5246 and RFC 8446, through
//! rustls): the camera's certificate checked as the user chose ([`Trust`]), and a bridge for
//! retina, which speaks RTSP over plain TCP only and takes a URL, not a stream.
//!
//! The bridge (`rtsp/bridge/`) is a loopback listener that takes exactly one connection,
//! retina's, and checks that it comes from this process (its socket's inode among our own file
//! descriptors, Linux's `/proc/net/tcp`), so no other user of the machine can read the camera
//! through it; then it copies bytes between that connection and the TLS one, one copy each
//! way. Interleaved RTP and RTCP travel inside the RTSP connection (RFC 2326 §10.12): RTP over
//! UDP with `rtsps://` would be SRTP, which is not supported.

use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::Failed;
use crate::config::{Field, RecorderConfig};

/// The port of `rtsps://` URLs without one (RFC 2326 §3.2).
pub const DEFAULT_PORT: u16 = 322;

/// Which certificates a camera may present.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Trust {
    /// Those the system trusts (its CA store), for the URL's host name or IP address.
    #[default]
    System,
    /// Those this CA (a PEM file; a self-signed certificate is its own CA) signed.
    Ca(std::path::PathBuf),
    /// Exactly this certificate: the SHA-256 of its DER bytes.
    Fingerprint([u8; 32]),
    /// Any certificate: no check at all.
    Insecure,
}

/// `sha256:HEX` (colons between the bytes allowed, as `openssl x509 -fingerprint` prints them).
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], String> {
    let hex = text
        .strip_prefix("sha256:")
        .or_else(|| text.strip_prefix("SHA256:"))
        .ok_or("expected sha256:HEX, the SHA-256 of the certificate")?;
    let digits: String = hex.chars().filter(|c| *c != ':').collect();
    let bytes: Option<Vec<u8>> = (0..digits.len())
        .step_by(2)
        .map(|i| {
            digits
                .get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect();
    bytes
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| "expected 64 hex digits after sha256:".to_owned())
}

/// `sha256:` and the certificate's SHA-256, in hex: what `--tls-fingerprint` takes.
pub fn fingerprint(cert: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Connects to the camera over TCP and TLS, checking its certificate as `config` says. A
/// certificate that fails the check is a permanent error: no retry makes it pass.
pub(crate) async fn connect(
    config: &RecorderConfig,
    url: &url::Url,
) -> Result<TlsStream<TcpStream>, Failed> {
    over(config, url, super::dial(url).await?).await
}

/// TLS over `io`, a connection to `url`'s camera, its certificate checked as `config` says.
pub(crate) async fn over<S>(
    config: &RecorderConfig,
    url: &url::Url,
    io: S,
) -> Result<TlsStream<S>, Failed>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let (client, checked) = client_config(&config.tls, config)?;
    let connector = TlsConnector::from(Arc::new(client));
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| (format!("{host} is no host name for TLS"), true))?;
    connector.connect(name, io).await.map_err(|e| {
        let permanent = e
            .get_ref()
            .and_then(|i| i.downcast_ref::<rustls::Error>())
            .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)));
        (
            handshake_error(config, &e, permanent, checked.seen()),
            permanent,
        )
    })
}

/// The TLS handshake's failure, said for a person: for a certificate, what did not match and
/// how to pin it.
fn handshake_error(
    config: &RecorderConfig,
    e: &std::io::Error,
    certificate: bool,
    seen: Option<String>,
) -> String {
    let name = |f: Field| config.wording.of(f);
    if !certificate {
        return format!("failed the TLS handshake: {e}");
    }
    let why = e
        .get_ref()
        .and_then(|i| i.downcast_ref::<rustls::Error>())
        .map_or("unknown".to_owned(), |r| match r {
            rustls::Error::InvalidCertificate(c) => certificate_words(c),
            other => other.to_string(),
        });
    // The fingerprint (71 characters) on a line of its own: with it, the error would not fit.
    match seen {
        Some(pin) => {
            tracing::info!(
                "camera {}: its certificate is {pin}",
                config.source.host_port()
            );
            format!(
                "sent an untrusted certificate ({why}); pin it with {} (its fingerprint is in the \
                 line above), or trust its CA with {}",
                name(Field::TlsFingerprint),
                name(Field::TlsCa)
            )
        }
        None => format!("sent no certificate that can be checked ({why})"),
    }
}

fn certificate_words(e: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match e {
        C::Expired | C::ExpiredContext { .. } => "expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "not valid yet".into(),
        C::UnknownIssuer => "an unknown CA".into(),
        C::NotValidForName | C::NotValidForNameContext { .. } => "for another host name".into(),
        C::BadSignature => "a bad signature".into(),
        C::Revoked => "revoked".into(),
        C::ApplicationVerificationFailure => "not the one pinned".into(),
        other => crate::rtsp::retina_messages::plain(&other.to_string()),
    }
}

/// rustls's client config for `trust`, and its verifier (which keeps the fingerprint of the
/// certificate it was shown, so that a refusal can say how to pin it).
fn client_config(
    trust: &Trust,
    config: &RecorderConfig,
) -> Result<(rustls::ClientConfig, Arc<Checked>), Failed> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| (format!("cannot speak TLS: {e}"), true))?;
    let webpki = |store: RootCertStore| {
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(store),
            provider.clone(),
        )
        .build()
        .map_err(|e| (format!("has no CA to check it against: {e}"), true))
    };
    let check = match trust {
        Trust::System => Check::WebPki(webpki(system_roots())?),
        Trust::Ca(path) => Check::WebPki(webpki(ca_roots(path, config).map_err(|e| (e, true))?)?),
        Trust::Fingerprint(pin) => Check::Pin(*pin),
        Trust::Insecure => Check::Any,
    };
    let checked = Arc::new(Checked {
        check,
        provider,
        seen: std::sync::Mutex::new(None),
    });
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(checked.clone())
        .with_no_client_auth();
    Ok((config, checked))
}

/// rustls's cryptography from *ring*: it builds in seconds with no C toolchain beyond cc,
/// where aws-lc-rs needs CMake and minutes on this project's machine. rustls deprecates it for
/// its lack of post-quantum key exchange, which no camera offers.
#[allow(deprecated)]
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's CA store (`/etc/ssl/certs` and the like, as OpenSSL would find it).
fn system_roots() -> RootCertStore {
    let mut store = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = store.add_parsable_certificates(found.certs);
    tracing::debug!("{added} CA certificates from the system's store");
    store
}

fn ca_roots(path: &Path, config: &RecorderConfig) -> Result<RootCertStore, String> {
    use rustls::pki_types::pem::PemObject as _;
    let setting = config.wording.of(Field::TlsCa);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<_, _>>())
        .map_err(|e| {
            format!(
                "needs {setting} {}, which cannot be read: {e}",
                path.display()
            )
        })?;
    let mut store = RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "needs a CA, and {setting} {} holds none",
            path.display()
        ));
    }
    Ok(store)
}

/// How a camera's certificate is checked.
#[derive(Debug)]
enum Check {
    /// Against CAs, for the URL's host (webpki).
    WebPki(Arc<rustls::client::WebPkiServerVerifier>),
    /// Exactly this certificate (SHA-256 of its DER).
    Pin([u8; 32]),
    /// Not at all.
    Any,
}

/// The verifier: the check asked for, the handshake's signatures checked as usual, and the
/// fingerprint of the certificate shown noted.
#[derive(Debug)]
struct Checked {
    check: Check,
    provider: Arc<rustls::crypto::CryptoProvider>,
    seen: std::sync::Mutex<Option<String>>,
}

impl Checked {
    fn seen(&self) -> Option<String> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl ServerCertVerifier for Checked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest = ring::digest::digest(&ring::digest::SHA256, end_entity.as_ref());
        *self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(fingerprint(end_entity));
        match &self.check {
            Check::WebPki(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            Check::Pin(pin) if digest.as_ref() != pin => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
            Check::Pin(_) | Check::Any => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_round_trip() -> Result<(), String> {
        let shown = fingerprint(b"certificate");
        assert_eq!(fingerprint(&[]).len(), "sha256:".len() + 64);
        let pin = parse_fingerprint(&shown)?;
        assert_eq!(fingerprint(b"certificate"), shown);
        let colons: String = shown.as_bytes()["sha256:".len()..]
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).to_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(parse_fingerprint(&format!("SHA256:{colons}"))?, pin);
        assert!(parse_fingerprint("md5:00").is_err());
        assert!(parse_fingerprint("sha256:abcd").is_err());
        Ok(())
    }
}
